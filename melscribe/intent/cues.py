"""The lexicon of :mod:`melscribe.intent.rejections`: negation cues and the words around them. Word lists only,
grouped by the part they play in reading a rejection (cues before and after what they reject, replies,
prefixes, reductions, clause boundaries, fillers, words that name no sound, idioms that reject nothing); each
list says in its comment which round of issues 9 and 25 added what."""

from __future__ import annotations

import re


#: Word sequences that look like a negation but reject nothing; skipped whole.
NON_CUES = (
    "nothing but", "nothing else but", "all but", "not only", "not just", "not merely", "no doubt", "no matter",
    "no wonder", "no problem", "no worries", "no way", "not sure", "not bad", "no less", "more or less",
    "not to mention", "if not", "whether or not", "or not", "nothing beats", "nothing like", "nothing else",
    "nothing compares", "nothing more than", "no longer", "not least", "no one", "nobody", "don't know",
    "do not know", "dont know", "don't care", "dont care", "do not care", "don't mind", "dont mind",
    "do not mind", "doesn't matter", "does not matter", "can't wait", "cannot wait", "can't get enough",
    "cannot get enough", "don't stop", "won't stop", "never stop", "never gets old", "can't go wrong",
    "not a problem", "less than", "no sooner", "no need to", "not that i",
    # forum idioms and their apostrophe-less spellings (issue 25)
    "no end", "no idea", "no clue", "no rush", "no pressure", "no offense", "no offence", "no kidding", "no joke",
    "not gonna lie", "not going to lie", "no cap", "not picky", "never too late", "no wave", "without a doubt",
    "without doubt", "never get tired of", "never gets tired", "never tire of", "never get sick of",
    "no stranger to", "not a thing", "no surprise", "can't sit still", "cant sit still", "cannot sit still",
    "can't help", "cant help", "cant wait", "cant get enough", "dont know", "dont stop", "wont stop",
    "cant go wrong", "doesnt matter", "dont care", "dont mind", "not kidding", "not complaining",
    # round three: idioms of lasting liking ("never get old"), the prefix of "non stop" written apart
    "never get old", "never getting old", "never get boring", "never gets boring", "never goes out of style",
    "never go out of style", "never gets tiring", "never get tiring", "non stop",
    # round four: "nothing other than jazz" means only jazz
    "nothing other than", "nothing except", "nothing besides", "nothing apart from", "nothing aside from",
    "none other than", "no less than", "not ashamed", "no shame", "no skips", "no skip", "never skip",
    "less is more", "take away from", "takes away from", "taking away from", "took away from", "shy away from",
    "shies away from", "shying away from", "not take away", "cannot take away", "can't take away",
    # idioms that negate no sound; "it doesn't have to be jazz" leaves jazz welcome; not knowing or not finding
    # something is no rejection of it
    "no strings attached", "no holds barred", "no pun intended", "no brainer", "no-brainer", "no nonsense",
    "no-nonsense", "no frills", "no-frills", "no fuss", "not half bad", "no lie", "no regrets", "not even close",
    "nothing to lose", "nothing personal", "no hate", "no shade", "not hating", "no disrespect", "not a diss",
    "never ending", "never-ending", "no turning back", "no time to", "doesn't have to be", "doesnt have to be",
    "does not have to be", "don't have to be", "dont have to be", "doesn't need to be", "doesnt need to be",
    "needn't be", "not necessarily", "not strictly", "not exclusively", "not limited to", "not required",
    "never heard", "never really heard", "never listened to", "never really listened to", "haven't heard",
    "havent heard", "have not heard", "haven't listened to", "havent listened to", "have not listened to",
    "haven't really listened to", "havent really listened to", "never tried", "never explored",
    "not familiar with", "not very familiar with", "not too familiar with", "unfamiliar with",
    "can't find", "cant find", "cannot find", "couldn't find", "couldnt find", "can't seem to find",
    "cant seem to find", "haven't found", "havent found", "not finding", "can't decide", "cant decide",
    "can't choose", "cant choose", "can't remember", "cant remember", "don't remember", "dont remember",
    # liking said through a negation: "nothing against country", "never say no to sax", "vocals or no vocals"
    "not that i hate", "not that i dislike", "not that i don't like", "not that i dont like", "nothing against",
    "no problem with", "no issue with", "no issues with", "no objection to", "no complaints", "nothing wrong with",
    "never a bad", "never say no", "never said no", "never turn down", "can't say no", "cant say no", "or no",
    "with or without", "or without", "zero skips", "not a single bad", "not one bad", "never disappoints",
    "not against", "never find", "can never find", "can't believe", "cant believe", "cannot believe",
    "don't need", "dont need", "do not need", "doesn't need", "doesnt need", "does not need", "without further",
    "no question", "no preference", "no requirements", "no specific", "not picky about",
    # round five
    "never met a", "never met an", "none of the above", "no exceptions", "no exception",
)
#: Negation cues, longest first when matching; ``than`` is a cue only after "rather" in the same clause.
CUES = (
    "anything but", "everything but", "anything except", "everything except", "anything other than",
    "anything apart from", "but not", "and not", "except for", "except", "excluding", "other than",
    "instead of", "rather than", "in place of", "with no", "with zero", "no more", "nothing too",
    "nothing that", "nothing", "none of", "no", "not", "never", "without", "w/o", "minus", "free of", "lacking",
    "avoid", "avoiding", "skip", "skip the", "exclude", "leave out", "less", "hate", "dislike", "can't stand",
    "cannot stand", "can not stand", "tired of", "sick of", "don't", "dont", "do not", "doesn't", "doesnt",
    "does not", "isn't", "isnt", "is not", "aren't", "arent", "are not", "wasn't", "won't", "wont",
    "will not", "wouldn't", "shouldn't", "should not", "can't", "cannot", "didn't",
    # issue 25: exclusion phrases, aversion, degree, part of a whole, the prefix "non" written apart
    "outside of", "outside", "apart from", "aside from", "besides", "save for", "sans", "non",
    "gone off", "going off", "went off", "cant stand", "can't deal with", "cant deal with", "cannot deal with",
    "can't take", "cant take", "can't handle", "cant handle", "can't listen to", "cant listen to", "done with",
    "fed up with", "bored of", "bored with", "had it with", "had enough of", "allergic to", "no interest in",
    "never liked", "not into", "i'm over", "im over", "i am over", "so over", "am over", "totally over",
    "fewer", "lighter on", "light on", "go easy on", "easy on", "not as", "take out", "taking out", "cut out",
    "lose the", "ditch the", "strip out", "get rid of", "leave off", "steer clear of", "stay away from",
    "keep away from", "spare me", "not in the mood for", "not feeling", "hold the", "nix the",
    "anywhere but", "anyone but", "anybody but", "everywhere but", "loses the", "losing the", "but not as",
    "exhausted by", "exhausted with", "worn out on", "burnt out on", "burned out on", "burnt out by",
    "and not as",
    # round three: aversion verbs beside "hate"/"can't stand", intensified aversion, "over" after an adverb,
    # "all but the" (an exclusion, where "all but" alone means "almost")
    "despise", "despises", "detest", "detests", "loathe", "loathes", "abhor", "can't bear", "cant bear",
    "cannot bear", "can't tolerate", "cant tolerate", "cannot tolerate", "sick to death of", "sick and tired of",
    "bored to death of", "gone right off", "gone completely off", "gone totally off", "kinda over",
    "kind of over", "sorta over", "sort of over", "pretty over", "really over", "completely over", "all but the",
    "no longer into", "no longer a fan of",
    # round four, by family rather than by example: exclusion and its misspellings; aversion verbs and the
    # phrases people tire with; removal verbs (those that are also music nouns, "drop", "cut", "kill", only before
    # a determiner); degree verbs (tone down, dial back); apostrophe-less and misspelt negations
    "with the exception of", "exception of", "except for the", "exept", "exept for", "excpet", "execpt",
    "exsept", "excepting", "not including", "exclusive of", "barring", "beyond", "away from", "as opposed to",
    "in lieu of", "other then", "anything other then", "anything accept", "everything accept", "not counting",
    "leaving out", "leaving aside", "setting aside", "w/out",
    "hard pass on", "pass on", "i'll pass on", "enough with", "enough of", "turned off by", "put off by",
    "annoyed by", "irritated by", "bothered by", "weary of", "i'm through with", "im through with",
    "i am through with", "i'm finished with", "im finished with", "fed up of",
    "no fan of", "no love for", "no patience for", "zero patience for", "cringe at", "can't get into",
    "cant get into", "never got into", "hates", "hated", "hating", "dislikes", "disliked", "can do without",
    "could do without", "do away with", "ban", "banned", "nope to", "no thanks to", "no thank you to",
    "remove", "removes", "removing", "remove the", "eliminate", "eliminating", "omit", "omitting", "delete",
    "deleting", "ditch", "ditching", "scrap the", "axe the", "ax the", "nix", "cut the", "cut all the",
    "cut any", "drop the", "drop all the", "drop any", "kill the", "kill all the", "mute the", "muting the",
    "silence the", "strip the", "strip away the", "strip away", "strip all the", "take away the",
    "pull out the", "edit out", "edit out the", "filter out", "filter out the", "keep out", "keep out the",
    "tone down", "tone down the", "dial back", "dial back the", "dial back on", "dial down", "dial down the",
    "dial it back on", "turn down the", "scale back", "scale back on", "scale back the", "ease off",
    "ease off on", "ease off the", "ease up on", "cut down on", "cut back on", "back off on", "go light on",
    "hold back on", "less of", "not much", "not a lot of", "not so much", "barely any", "hardly any",
    "little to no", "as little", "fewer of", "softer on",
    "zero", "can't stomach", "cant stomach", "cannot stomach", "can't get behind", "cant get behind",
    "never warmed to", "never cared for", "never been a fan of", "outgrown", "grown out of", "moved on from",
    "moving on from", "need a break from", "a break from", "taking a break from", "different from",
    "different than", "had my fill of", "keep away", "no room for", "no place for", "no need for",
    "sick to my stomach of", "meh on", "meh to", "stay clear of", "keep clear of", "steer well clear of",
    "reduce the", "reduce", "reducing the",
    # round five (set 4's misses, by family): exclusion ("short of", "the only exception is", "excl."), aversion
    # ("done w", "had enough", "bored stiff of", "never been able to get into", "recoil at"), removal and degree
    # ("stripped of", "lose all the", "not to the point of")
    "short of", "only exception is", "the only exception is", "exception is", "exception being",
    "exceptions being", "sole exception of", "the sole exception of", "with the sole exception of", "excl",
    "done w", "fed up w", "had it w", "enough w", "had enough", "have had enough", "had my fill",
    "bored stiff of", "bored stiff by", "never been able to get into", "never could get into",
    "couldn't get into", "couldnt get into", "recoil at", "physically recoil at", "stripped of",
    "lose all the", "lose any", "lose those", "not to the point of being", "not to the point of",
    "minimal to no", "a minimum of", "but not to the point of being", "but not to the point of",
    "if i hear another", "if i have to hear another", "if i hear one more", "had it up to here with",
    "cut back the", "cut down the", "turn off the", "switch off the", "turn off", "free from", "devoid of",
    "void of",
    "ain't", "aint", "didnt", "couldn't", "couldnt", "wouldnt", "shouldnt", "wasnt", "weren't", "werent",
    "witout", "whithout", "withouth", "wihtout", "withot",
)
#: Cues of exclusion, after which "and" coordinates like "or" ("excluding house and trance").
LIST_CUES = frozenset({"anything but", "everything but", "anything except", "everything except", "except",
                       "except for", "excluding", "other than", "anything other than", "apart from",
                       "anything apart from", "aside from", "besides", "save for", "outside of", "anywhere but",
                       "none of", "with the exception of", "exception of", "except for the", "exept", "exept for",
                       "excpet", "execpt", "exsept", "excepting", "not including", "exclusive of", "barring",
                       "beyond", "as opposed to", "other then", "anything other then", "anything accept",
                       "everything accept", "not counting", "bar", "but"})
#: Cues that follow what they reject ("rap is not for me", "with the guitar solos cut out"): the phrase is
#: the words before them in the clause.
POSTPOSED_CUES = (
    "is not for me", "isn't for me", "isnt for me", "are not for me", "aren't for me", "arent for me",
    "not for me", "is not my thing", "isn't my thing", "isnt my thing", "not my thing", "cut out", "taken out",
    "left out", "removed", "stripped out", "gives me a headache", "give me a headache", "makes me cringe",
    "make me cringe", "gets on my nerves", "get on my nerves", "is overrated", "are overrated",
    # round four: what people say of a sound they dislike, after it
    "annoy me", "annoys me", "irritate me", "irritates me", "bug me", "bugs me", "bother me", "bothers me",
    "grate on me", "grates on me", "drive me crazy", "drives me crazy", "drive me nuts", "drives me nuts",
    "drive me mad", "drives me mad", "drive me up the wall", "drives me up the wall", "puts me off",
    "put me off", "turns me off", "turn me off", "bores me", "bore me", "does nothing for me",
    "do nothing for me", "doesn't do it for me", "doesnt do it for me", "don't do it for me",
    "dont do it for me", "is not my cup of tea", "isn't my cup of tea", "isnt my cup of tea",
    "not my cup of tea", "is not my jam", "isn't my jam", "isnt my jam", "not my jam", "isn't my style",
    "isnt my style", "not my style", "is annoying", "are annoying", "is irritating", "are irritating",
    "is grating", "are grating", "is unbearable", "are unbearable", "is cringe", "are cringe", "is cringey",
    "is cringy", "is the worst", "are the worst", "is overdone", "are overdone", "is played out",
    "are played out", "sucks", "is trash", "is garbage", "is awful", "are awful", "is terrible",
    "are terrible", "is a no", "is a no go", "is a hard no", "is a dealbreaker", "is a deal breaker",
    "is a turn off", "is a turnoff", "ruins it", "ruin it", "ruins everything", "gets old", "got old",
    "is getting old", "wore thin", "is wearing thin", "can go", "is too much", "are too much",
    "is way too much", "are way too much", "taken away", "taken off", "edited out", "filtered out",
    "cut away", "stripped away", "stripped off", "omitted", "eliminated", "deleted", "silenced", "muted",
    "dropped", "ditched", "scrapped", "toned down", "dialed back", "dialled back", "dialed down",
    "dialled down", "turned down", "turned off", "stripped", "gone",
    "excluded", "aside", "off the table", "is off the table", "are off the table", "off limits",
    "is off limits", "are off limits", "need not apply", "needs not apply", "makes my ears bleed",
    "make my ears bleed", "gives me the ick", "give me the ick", "is a no from me", "are a no from me",
    "a no from me", "is overplayed", "are overplayed", "to a minimum", "kept to a minimum", "minimal",
    "is not my vibe", "isn't my vibe", "isnt my vibe", "not my vibe", "not my bag", "not my speed",
    "getting stale", "is stale", "are stale", "is boring", "are boring", "gets boring", "get boring",
    "got boring", "is dated", "are dated", "no",
    "makes my skin crawl", "make my skin crawl", "freaks me out", "freak me out", "is my personal hell",
    "is my idea of hell", "is the most annoying", "are the most annoying", "gives me the creeps",
    "give me the creeps", "isn't doing it for me", "isnt doing it for me", "not doing it for me",
    "is banned", "are banned", "doesn't click with me", "doesnt click with me", "doesn't click for me",
    "never clicked with me", "never clicked for me", "didn't click with me", "didnt click with me",
    "isn't really my thing", "isnt really my thing", "isn't really my jam", "isnt really my jam",
    "not really my thing", "not really my jam", "not really my style", "not really my vibe", "not really for me",
    "never my thing", "never my scene", "never my jam", "not my scene", "isn't me", "isnt me", "is not me",
    "never really my thing", "away from me",
)
#: Postposed participles that are also adjectives or tell a story ("palm muted guitars", "the beat dropped"):
#: cues only after a determined noun ("the singer muted", "with the fiddle gone") that ends its clause.
DETERMINED_POSTPOSED = frozenset({"muted", "dropped", "stripped", "gone", "turned down", "turned off",
                                  "silenced", "ditched", "scrapped", "deleted", "cut away", "minimal"})
#: Postposed cues that must end their clause ("country aside, anything goes"; not "aside from").
CLAUSE_END_POSTPOSED = frozenset({"aside", "excluded", "no"})
#: Replies that reject the short clause before them ("techno? no thanks", "metal. hard pass").
REPLY_CUES = ("no thanks", "no thank you", "nope", "hard pass", "pass", "no way", "hell no", "please no", "nah",
              "no", "none", "hard no", "big no", "absolutely not", "not a chance", "no chance", "god no",
              "not for me", "not in this house", "nah thanks")
#: Replies that answer only a question or a heading ("vocals? no", "guitars: none").
WEAK_REPLIES = frozenset({"no", "none", "pass", "no way"})
#: Prefixes that negate the word they are joined to ("non-vocal", "nonelectric", "un-distorted", "unjazzy").
#: ``un`` joined without a hyphen only before an adjective ending (``-y``, ``-ed``, ``-ic``, ``-al``, ``-ish``):
#: "unjazzy", "unpoppy"; ``anti-`` with its hyphen ("anti-christmas"), except in names: "anti-folk" (a genre),
#: "anti-flag" (a band).
PREFIXED = re.compile(r"(non)-?([a-z][a-z0-9'-]{2,})|(un|anti)-([a-z][a-z0-9'-]{2,})|(un)([a-z]{3,}(?:y|ed|ic|al|ish))")
#: "no-" and "not too" joined by hyphens to the word they negate.
HYPHENED_NEGATION = re.compile(r"(no|not-too|not-so|nothing-too)-([a-z][a-z0-9'-]{2,})")
#: Words that look prefixed but negate no sound.
PREFIXED_STOPWORDS = frozenset("""
    nonstop non-stop nonetheless nonsense nonprofit non-profit nonfiction non-fiction nonchalant nonchalantly
    unplugged united unlimited unexpected unrelated unusual unreal unofficial unedited unfinished untitled
    unheard unreleased unsigned unsung underrated underground understated unhinged unsolicited unrestricted
    unemployed unmatched unparalleled unapologetic unapologetically unironically unironic uncharted uncut
    unabridged unrivalled unrivaled unbiased unlocked unsupervised anti-folk anti-flag anti-hero anti-heroes
    anti-pop anti-war anti-establishment anti-social anti-nowhere unchained unbroken unbreakable unstoppable
    no-wave no-brainer no-nonsense no-frills no-go no-show no-fuss no-holds-barred no-one no-name no-budget
    no-fi no-input
""".split())
#: Cues that reduce rather than remove; they reject without wanting a negative descriptor.
DEGREE_CUES = frozenset({"less", "nothing too", "fewer", "lighter on", "light on", "go easy on", "easy on",
                         "not as", "but not as", "and not as",
                         "tone down", "tone down the", "dial back", "dial back the", "dial back on", "dial down",
                         "dial down the", "dial it back on", "turn down the", "scale back", "scale back on",
                         "scale back the", "ease off", "ease off on", "ease off the", "ease up on", "cut down on",
                         "cut back on", "back off on", "go light on", "hold back on", "less of", "not much",
                         "not a lot of", "not so much", "barely any", "hardly any", "little to no", "as little",
                         "fewer of", "softer on", "toned down", "dialed back", "dialled back",
                         "dialed down", "dialled down", "turned down", "is too much", "are too much",
                         "is way too much", "are way too much", "to a minimum", "kept to a minimum", "minimal",
                         "reduce the", "reduce", "reducing the", "too", "minimal to no", "a minimum of",
                         "cut back the", "cut down the"})
#: Words that end a cue's scope (besides punctuation).
BOUNDARIES = frozenset("""
    but and with please that which who whose so because since for to while when where as just only though
    although yet instead rather i i'm i'd i'll me my we you your it it's give keep make let maybe perhaps
    something some lots plenty more over in on at from into like then than thanks thank also even still
    mostly mainly ideally preferably thx pls
    is are was were am lol lmao tbh imo idk after now anymore already today lately really honestly if ok okay
    plz haha these etc makes make gives give cuz cause tonight tomorrow rn atm sounding version versions
    what whats what's would could should might overall tho anything everything whatever oh ah uh um hmm yes by
    featuring including
    yeah yep
""".split())
#: Fillers skipped at the start of a scope ("not too sad", "don't want anything with bagpipes").
LEADING_FILLERS = tuple(sorted((tuple(f.split()) for f in """
    too|so|very|overly|really|particularly|especially|excessively|super|extremely|insanely|overtly|terribly|
    massively|ridiculously|at all|any|anything|something|stuff|a|an|the|much|many|
    more|of|with|that is|that's|that are|which is|is|are|be|being|been|sound|sounds|sounding|sound like|
    sounds like|like|have|has|having|use|uses|using|include|includes|including|contain|contains|containing|
    feature|features|featuring|want|wanna|need|like any|a fan of|fan of|big on|into|keen on|crazy about|fond of|
    hear|play|get|any of|the sound of|sound of|kind of|sort of|type of|heavy on|too much|too many|loads of|
    lots of|a lot of|add|put|my|those|these|such|even|all|any kind of|some|none|one|ones|this|it|them|
    want any|want to hear|care for|go for|go with|too heavy on|too much of|really|hearing|listening to|
    all of|all the|of the|the usual|usual|overly|as much|as|tons of|a bunch of|bunch of|liked|when songs have|
    when songs have a|when a song has|when a song has a|when there is|when there's|when theres|when it has|
    when they have|it when songs have|it when there's|it when|that sounds like|that sound like|that sounds|
    which sounds like|anything that sounds like|
    world of|the world of|realm of|the realm of|land of|whole|entire|digging|vibing with|vibing|loving|liking|
    feeling|really into|a huge fan of|huge fan of|a big fan of|big fan of|the biggest fan of|much of a fan of|
    much of|fussed on|fussed about|bothered about|more of|usual|typical|same old|those|endless|constant|
    all those|all that|the same|dig|vibe with|enjoy|looking for|looking for any|after|asking for|searching for|
    in need of|up for|down for|in the market for|the usual|that usual|your usual|my usual|that|do|
    think about|playing|put on|putting on|suggest|suggesting|recommend|recommending|send|sending|bring|
    throw in|bother with|quite|quite as|there is|there are|there's|theres|there is a|it when there is|it when there are|
    when there is|when there are|your|another|a trace of|trace of|any trace of|a hint of|hint of|
""".replace("\n", " ").split("|") if f.strip()), key=len, reverse=True))
#: Words dropped from the end of a rejected phrase ("no loud sounds" → "loud"), when something is left.
TRAILING_FILLERS = frozenset("""
    at all whatsoever please though thanks stuff things thing ones one music songs song tracks track tunes
    tune sounds sound vibe vibes type types kind style styles genre feel feeling movie film influence
    influences parts part bits bit elements element please either too much anymore world scene realm bubble
    lately stuff on top overall person guy gal girl fan fans lover head allowed permitted
""".split())
#: Nouns dropped from the end of a longer phrase that still name something alone ("no drum beats" → drum,
#: "ambient without beats" → beats; "the horn section" → horn).
TRAILING_NOUNS = frozenset("beats performance performances noodling section sections".split())
#: Words of opinion, not of sound, dropped from the start of a longer phrase ("minus the cheesy vocals" rejects
#: vocals, "without all the long solos" solos); alone they stay ("nothing cheesy").
EVALUATIVE = frozenset("""
    annoying long endless constant big huge overused overdone obnoxious generic boring tacky lame cringy cringey
    cringe corny terrible awful bad horrible irritating excessive fake stupid silly random same usual typical
    dreaded obligatory inevitable overwrought overblown pointless needless unnecessary cliche cliched predictable
    tired
""".split())
#: Words of opinion that also describe a sound: before a longer phrase each is rejected on its own as well
#: ("folk without the whiny vocals" rejects whiny and vocals; annotators name either).
SOUND_OPINIONS = frozenset("cheesy whiny screechy grating shrill tinny muddy harsh nasal squeaky".split())
#: ``X-free``/``X-less`` words that are not a rejection of a sound.
FREE_STOPWORDS = frozenset({"royalty", "copyright", "hands", "care", "stress", "worry", "duty", "tax", "gluten",
                            "sugar", "fat", "hassle", "ad", "ads", "risk", "trouble", "cost", "end", "time",
                            "home", "count", "name", "self", "use", "help", "rest", "need", "point", "life"})
#: Verbs that, first in a scope, show it is about the person rather than the music ("i don't speak spanish",
#: "i can't sleep without music", "don't judge me"): such a scope rejects nothing.
NON_MUSIC_VERBS = frozenset("""
    speak speaking judge post posted posting believe find sleep focus know think understand remember mean expect
    see watch read say saying pretend lie joke joking kid kidding worry rush work study drive go get got
    usually really actually even own have blame recall ask asking
""".split())
#: One-word phrases that name no sound and reject nothing ("fewer instruments", "less going on").
GENERIC_PHRASES = frozenset("""
    instruments instrument going happening everything things anything something stuff layers elements
    instrumentation
""".split())
#: Intensifiers after a cue ("not too heavy rock", "nothing so slow"): the cue then covers the adjective they
#: modify, the first word of its phrase, and the noun after it stays wanted.
INTENSIFIERS = frozenset("too so overly very particularly especially excessively super extremely insanely overtly "
                         "terribly massively ridiculously".split())
#: Words that make the word before them a modifier of what follows ("bass heavy hip hop", "guitar-driven rock"):
#: a scope keeps what comes before them only.
HEAVY_WORDS = frozenset("heavy driven based laden led focused centric forward dominated".split())
#: Sequences that end a scope when something precedes them ("a repetitive kind of house": house stays wanted,
#: "the bass a little": "a little" is how much).
SCOPE_STOPS = (("kind", "of"), ("sort", "of"), ("type", "of"), ("style", "of"), ("brand", "of"),
                ("flavour", "of"), ("flavor", "of"), ("a", "bit"), ("a", "little"), ("a", "tad"), ("a", "lot"),
                ("a", "touch"), ("a", "ton"), ("this", "time"), ("for", "once"), ("last", "night"), ("this", "week"),
                ("this", "month"), ("this", "year"), ("these", "days"), ("right", "now"))
#: Simple negators: when one opens a clause that goes on to an exclusion of everything ("not looking for
#: anything other than jazz", "don't want anything but folk") the two cancel out and nothing is rejected.
NEGATORS = frozenset({"not", "don't", "dont", "do not", "never", "no", "won't", "wont", "can't", "cant",
                       "doesn't", "doesnt", "isn't", "isnt", "aint", "ain't", "didnt", "didn't"})
#: Words before "but" and "bar" that make them exclusions ("any style but techno", "pick anything bar reggae").
ALL_WORDS = frozenset({"any", "every", "all", "whatever", "anything", "everything"})
ALL_OK = frozenset({"goes", "works", "is", "fine", "ok", "okay", "good", "great", "welcome", "cool", "else"})
KINDS = frozenset({"genre", "genres", "style", "styles", "kind", "kinds", "type", "types", "music", "sound",
                    "sounds", "artist", "artists", "band", "bands", "instrument", "instruments", "decade",
                    "era", "eras"})
MAX_SCOPE = 5
#: Determiners that make a noun before a participle the thing acted on ("the singer muted").
DETERMINERS = frozenset({"the", "all", "those", "these", "that", "any", "your", "their", "his", "her"})
#: Words before a participle's noun that also make it the thing acted on ("with vocals gone", "keep vocals minimal").
OPENERS = frozenset({"with", "keep", "keeping", "kept"})
#: Copulas between a postposed cue and what it rejects ("accordions are not my thing").
COPULAS = frozenset({"is", "are", "was", "were", "am", "be", "being", "been"})
BEFORE_POSTPOSED = COPULAS | {"way", "far", "just", "kinda", "a", "bit", "little", "much", "really", "simply",
                                "totally", "definitely", "honestly", "also", "still", "genuinely", "seriously",
                                "literally", "actually", "lowkey", "truly", "always", "usually", "sometimes"}
#: Words before a cue that go with it when the rejection is cut out of the request ("I don't want …").
SUBJECTS = frozenset({"i", "we", "i'm", "im", "i'd", "we'd", "i'll", "really", "just", "please", "definitely",
                       "that", "that's", "thats", "which", "who", "it", "it's", "but", "and", "i've", "ive",
                       "im", "so", "honestly", "totally", "kinda", "a", "bit", "little", "also"})
#: Words right after a scope that belong to the rejection ("no singing at all").
SCOPE_TAILS = (("at", "all"), ("whatsoever",), ("please",), ("though",), ("thanks",), ("thank", "you"))

#: Words that join "less" to say a sound is absent ("drumless", "beatless", "vocalless"): the lexicon's heads.
LESS_HEADS = frozenset({"drum", "beat", "vocal", "lyric", "word", "bass", "guitar", "percussion", "synth",
                         "piano", "rap", "sax", "string", "horn", "brass"})

#: Words before a cue that make it the start of a name ("a song called no surprises", "by nothing but thieves").
NAMERS = frozenset({"by", "called", "named", "titled"})

#: Common adjectives of quality with no telling ending (a comparison's standard is rejected after one).
QUALITIES = frozenset("""
    fast slow dark loud soft hard heavy sad happy intense mellow bright quiet busy sweet harsh raw chill calm
    upbeat angry gloomy grim light tense wild rough smooth clean dense sparse long short high low deep fierce
    brutal extreme cheesy cheery poppy noisy
""".split())

#: Verbs whose particle comes after their object ("turn the bass down", "take the vocals out"): with "down" or
#: "back" a reduction, with "out", "off" or "away" a removal.
PARTICLE_VERBS = frozenset("""
    turn turning tone toning dial dialing dialling scale scaling bring bringing knock knocking take taking pull
    pulling leave leaving switch switching cut cutting strip stripping edit editing filter filtering ease pare
    keep keeping
""".split())
PARTICLES = frozenset({"down", "back", "out", "off", "away"})
#: Objects of such a verb that are not sounds.
NOT_SOUNDS = frozenset({"lights", "light", "tv", "phone", "radio", "it", "them", "me", "us", "you", "him", "her",
                         "heat", "car", "trash", "dog", "kids", "time", "day", "night"})
