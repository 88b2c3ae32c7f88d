"""Finding the rejections in a request's text: negation cues and the phrase each covers (see
:mod:`melscribe.intent.parser` for the rules). Works on the text alone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence


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
_WEAK_REPLIES = frozenset({"no", "none", "pass", "no way"})
#: Prefixes that negate the word they are joined to ("non-vocal", "nonelectric", "un-distorted", "unjazzy").
#: ``un`` joined without a hyphen only before an adjective ending (``-y``, ``-ed``, ``-ic``, ``-al``, ``-ish``):
#: "unjazzy", "unpoppy"; ``anti-`` with its hyphen ("anti-christmas"), except in names: "anti-folk" (a genre),
#: "anti-flag" (a band).
_PREFIXED = re.compile(r"(non)-?([a-z][a-z0-9'-]{2,})|(un|anti)-([a-z][a-z0-9'-]{2,})|(un)([a-z]{3,}(?:y|ed|ic|al|ish))")
#: "no-" and "not too" joined by hyphens to the word they negate.
_HYPHENED_NEGATION = re.compile(r"(no|not-too|not-so|nothing-too)-([a-z][a-z0-9'-]{2,})")
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
_SCOPE_STOPS = (("kind", "of"), ("sort", "of"), ("type", "of"), ("style", "of"), ("brand", "of"),
                ("flavour", "of"), ("flavor", "of"), ("a", "bit"), ("a", "little"), ("a", "tad"), ("a", "lot"),
                ("a", "touch"), ("a", "ton"), ("this", "time"), ("for", "once"), ("last", "night"), ("this", "week"),
                ("this", "month"), ("this", "year"), ("these", "days"), ("right", "now"))
#: Simple negators: when one opens a clause that goes on to an exclusion of everything ("not looking for
#: anything other than jazz", "don't want anything but folk") the two cancel out and nothing is rejected.
_NEGATORS = frozenset({"not", "don't", "dont", "do not", "never", "no", "won't", "wont", "can't", "cant",
                       "doesn't", "doesnt", "isn't", "isnt", "aint", "ain't", "didnt", "didn't"})
#: Words before "but" and "bar" that make them exclusions ("any style but techno", "pick anything bar reggae").
_ALL_WORDS = frozenset({"any", "every", "all", "whatever", "anything", "everything"})
_ALL_OK = frozenset({"goes", "works", "is", "fine", "ok", "okay", "good", "great", "welcome", "cool", "else"})
_KINDS = frozenset({"genre", "genres", "style", "styles", "kind", "kinds", "type", "types", "music", "sound",
                    "sounds", "artist", "artists", "band", "bands", "instrument", "instruments", "decade",
                    "era", "eras"})
_MAX_SCOPE = 5
#: Determiners that make a noun before a participle the thing acted on ("the singer muted").
_DETERMINERS = frozenset({"the", "all", "those", "these", "that", "any", "your", "their", "his", "her"})
#: Words before a participle's noun that also make it the thing acted on ("with vocals gone", "keep vocals minimal").
_OPENERS = frozenset({"with", "keep", "keeping", "kept"})
#: Copulas between a postposed cue and what it rejects ("accordions are not my thing").
_COPULAS = frozenset({"is", "are", "was", "were", "am", "be", "being", "been"})
_BEFORE_POSTPOSED = _COPULAS | {"way", "far", "just", "kinda", "a", "bit", "little", "much", "really", "simply",
                                "totally", "definitely", "honestly", "also", "still", "genuinely", "seriously",
                                "literally", "actually", "lowkey", "truly", "always", "usually", "sometimes"}
#: Words before a cue that go with it when the rejection is cut out of the request ("I don't want …").
_SUBJECTS = frozenset({"i", "we", "i'm", "im", "i'd", "we'd", "i'll", "really", "just", "please", "definitely",
                       "that", "that's", "thats", "which", "who", "it", "it's", "but", "and", "i've", "ive",
                       "im", "so", "honestly", "totally", "kinda", "a", "bit", "little", "also"})
#: Words right after a scope that belong to the rejection ("no singing at all").
_SCOPE_TAILS = (("at", "all"), ("whatsoever",), ("please",), ("though",), ("thanks",), ("thank", "you"))

_TOKEN = re.compile(r"[a-z0-9]+(?:['&/-][a-z0-9]+)*|[^\sa-z0-9]")


@dataclass(frozen=True)
class RejectedPhrase:
    """One rejection found in a request: the ``cue`` ("not"), the ``phrase`` it covers ("jazz"), and the
    character span of cue and scope in the (lower-cased) request."""

    cue: str
    phrase: str
    start: int
    end: int

    @property
    def degree(self) -> bool:
        """A reduction ("less guitar", "nothing too sad", "turn the bass down") rather than a removal."""
        return self.cue in DEGREE_CUES or self.cue.endswith(("… down", "… back"))


def _tokens(text: str) -> list[tuple[str, int, int]]:
    return [(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def _starts_with(tokens: Sequence[tuple[str, int, int]], i: int, seq: Sequence[str]) -> bool:
    return len(tokens) - i >= len(seq) and all(tokens[i + j][0] == w for j, w in enumerate(seq))


@lru_cache(maxsize=1)
def _cue_words() -> tuple[tuple[tuple[str, ...], str], ...]:
    seqs = [(tuple(_TOKEN.findall(c)), c) for c in CUES]
    return tuple(sorted(seqs, key=lambda s: -len(s[0])))


@lru_cache(maxsize=1)
def _non_cue_words() -> tuple[tuple[str, ...], ...]:
    return tuple(sorted((tuple(_TOKEN.findall(c)) for c in NON_CUES), key=len, reverse=True))


def _first_word_index(items: Sequence[tuple[tuple[str, ...], Any]]) -> dict[str, tuple[tuple[tuple[str, ...], Any], ...]]:
    """``(words, value)`` items by their first word, each word's items in the given order (longest first)."""
    out: dict[str, list] = {}
    for item in items:
        if item[0]:
            out.setdefault(item[0][0], []).append(item)
    return {w: tuple(v) for w, v in out.items()}


@lru_cache(maxsize=1)
def _cues_at() -> dict[str, tuple[tuple[tuple[str, ...], str], ...]]:
    return _first_word_index(_cue_words())


@lru_cache(maxsize=1)
def _non_cues_at() -> dict[str, tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]]:
    return _first_word_index([(seq, seq) for seq in _non_cue_words()])


def _match(index: dict[str, tuple], toks: Sequence[tuple[str, int, int]], i: int) -> tuple | None:
    """The first item of ``index`` (:func:`_first_word_index`) whose words start at token ``i``, or ``None``:
    only the items starting with token ``i``'s word are tried."""
    if not 0 <= i < len(toks):
        return None
    return next((item for item in index.get(toks[i][0], ()) if _starts_with(toks, i, item[0])), None)


def _is_boundary(tok: str) -> bool:
    return not tok[0].isalnum() or tok in BOUNDARIES


@lru_cache(maxsize=1)
def _may_reject() -> re.Pattern:
    """Matches any text in which :func:`find_rejections` can find a cue: a cue's words in sequence, "than"
    (of "rather than"), a "-free"/"-less" word, a word starting "non"/"un"/"anti-", or "over" opening a clause. Most requests have none, and are done in microseconds."""
    seqs = sorted({seq for seq, _ in _cue_words()} | {seq for seq, _ in _postposed_words()} | {("than",)}
                  | set(_reply_words()) | {("too",)},
                  key=lambda q: -sum(map(len, q)))
    alternatives = (r"\s*".join(map(re.escape, seq)) for seq in seqs)
    return re.compile(r"(?<![a-z0-9])(?:" + "|".join(alternatives) + r")(?![a-z0-9])|[a-z0-9]-(?:free|less)\b"
                      r"|[a-z]less\b|(?<![a-z0-9])(?:non|un)[a-z-]{3,}|(?<![a-z0-9])(?:anti|not?)-[a-z]"
                      r"|(?:^|[^\sa-z0-9'])\s*over\b"
                      r"|\b(?:any|all|every|whatever|anything|everything)(?:\s+[a-z]+){0,3}\s+(?:but|bar|save)\b"
                      r"|\b(?:nobody|no one)\s+[a-z]+ing\b"
                      r"|\b(?:" + "|".join(sorted(_PARTICLE_VERBS)) + r")\s[^.,;:!?]{1,40}?\b(?:down|back|out|off|away)\b")


def may_reject(request: str) -> bool:
    """Whether :func:`find_rejections` can find a rejection in ``request``: a quick pattern test (false for
    most requests, whose intent is then parsed without the encoder)."""
    return bool(_may_reject().search(request.lower().replace("’", "'")))


def find_rejections(request: str, limit: int | None = None) -> list[RejectedPhrase]:
    """The rejections of a request, in order: each cue with the phrase it covers (see the module doc); with
    ``limit``, the first ``limit`` only (the scan stops there). Works on the text alone; :class:`IntentParser`
    matches the phrases to a vocabulary."""
    if not may_reject(request):
        return []
    original = re.sub(r"\b([Ee]xcl)\.", r"\1 ", request.replace("’", "'"))  # "excl. ballads"
    text = original.lower()
    toks = _tokens(text)
    quoted = _quoted(text)
    out: list[RejectedPhrase] = []
    i, clause_start, previous_clause = 0, 0, 0
    while i < len(toks):
        tok = toks[i][0]
        if not tok[0].isalnum():
            if clause_start < i:
                previous_clause = clause_start
            clause_start = i + 1
            i += 1
            continue
        if any(a <= toks[i][1] < b for a, b in quoted):  # a title in quotes: '"no surprises" vibes'
            i += 1
            continue
        reply = _reply(toks, i, clause_start, previous_clause)
        if reply is not None:  # "techno? no thanks"
            name, start, stop, phrases = reply
            out.extend(RejectedPhrase(name, p, toks[start][1], toks[stop - 1][2]) for p in phrases)
            if limit is not None and len(out) >= limit:
                return out[:limit]
            i = stop
            continue
        if len(original) == len(text) and _names_something(original, toks, i):  # "songs by Nothing But Thieves"
            i += 1
            while i < len(toks) and original[toks[i][1]].isupper():
                i += 1
            continue
        hit = _match(_non_cues_at(), toks, i)
        non_cue = hit[0] if hit else None
        if non_cue in (("nobody",), ("no", "one")) and i + len(non_cue) < len(toks) \
                and toks[i + len(non_cue)][0].endswith("ing"):  # "nobody singing": a rejection after all
            j = i + len(non_cue)
            out.append(RejectedPhrase("no", toks[j][0], toks[i][1], toks[j][2]))
            i = j + 1
            continue
        if non_cue is not None and not any(len(seq) > len(non_cue) and _starts_with(toks, i, seq)
                                           for seq, _ in _cues_at().get(tok, ())):  # "all but the violin" is a cue
            i += len(non_cue)
            continue
        free = re.fullmatch(r"([a-z0-9][a-z0-9 '&/-]*?)-(?:free|less)", tok) or _joined_less(tok)
        if free and free.group(1) not in FREE_STOPWORDS:
            out.append(RejectedPhrase("-free", free.group(1).replace("-", " "), toks[i][1], toks[i][2]))
            i += 1
            continue
        prefixed = negated_by_prefix(tok)
        if prefixed:
            out.append(RejectedPhrase(prefixed[0], prefixed[1], toks[i][1], toks[i][2]))
            i += 1
            continue
        post = _postposed(toks, i, clause_start) or (
            _postposed(toks, i + 1, clause_start) if tok in _COPULAS and i + 1 < len(toks) else None)
        if post is not None:
            name, start, stop, phrases = post
            out.extend(RejectedPhrase(name, p, toks[start][1], toks[stop - 1][2]) for p in phrases)
            if limit is not None and len(out) >= limit:
                return out[:limit]
            i = stop
            continue
        split = _verb_particle(toks, i)
        if split is not None:  # "turn the bass down a notch", "take the vocals out"
            name, stop, phrases = split
            out.extend(RejectedPhrase(name, p, toks[i][1], toks[stop - 1][2]) for p in phrases)
            if limit is not None and len(out) >= limit:
                return out[:limit]
            i = stop
            continue
        cue = _match(_cues_at(), toks, i)
        if cue is None and tok == "than" and any(t[0] == "rather" for t in toks[clause_start:i]):
            cue = (("than",), "rather than")
        if cue is None and tok == "over" and i == clause_start:  # "over dubstep tbh"
            cue = (("over",), "over")
        if cue is None and tok in ("but", "bar", "save") and _after_all(toks, i, clause_start):  # "any style but techno"
            cue = ((tok,), tok)
        if cue is None:
            i += 1
            continue
        seq, name = cue
        j = i + len(seq)
        if len(seq) > 1 and _match(_non_cues_at(), toks, j - 1) is not None:  # "with no end"
            i = j
            continue
        if name in _NEGATORS:
            cancelled = _cancelling_exclusion(toks, j)
            if cancelled is not None:  # "not looking for anything other than jazz": jazz is wanted
                i = cancelled
                continue
            if name == "no" and j < len(toks) and toks[j][0].endswith("'s"):  # "no man's sky": a name
                i = j
                continue
        intensified = name == "nothing too" or (j < len(toks) and toks[j][0] in INTENSIFIERS)
        phrases, end = _word_scope(toks, j) if name == "non" else _scope(toks, j, name in LIST_CUES, intensified)
        if (name in DEGREE_CUES or name in ("not", "nothing too")) and len(phrases) == 1 \
                and _quality(phrases[0]):  # "not as aggressive as punk": punk too; not "less twang than country"
            standard, standard_end = _standard(toks, text, end)
            phrases, end = phrases + standard, max(end, standard_end)
        phrases = [p for p in phrases if p not in GENERIC_PHRASES]
        if not phrases or _followed_by(toks, end, "by"):  # "no scrubs by tlc", "not afraid by eminem": titles
            i = j
            continue
        start = i
        while start > clause_start and toks[start - 1][0] in _SUBJECTS:  # "I don't want…", "I'm not a fan of…"
            start -= 1
        out.extend(RejectedPhrase(name, p, toks[start][1], end) for p in phrases)
        if limit is not None and len(out) >= limit:
            return out[:limit]
        i = next((k for k in range(j, len(toks)) if toks[k][1] >= end), len(toks))
    return out


#: Words that join "less" to say a sound is absent ("drumless", "beatless", "vocalless"): the lexicon's heads.
_LESS_HEADS = frozenset({"drum", "beat", "vocal", "lyric", "word", "bass", "guitar", "percussion", "synth",
                         "piano", "rap", "sax", "string", "horn", "brass"})


def _joined_less(tok: str) -> re.Match | None:
    """``drumless``, ``beatless``: a lexicon head with "less" joined without a hyphen."""
    m = re.fullmatch(r"([a-z]{3,}?)s?less", tok)
    return m if m and m.group(1) in _LESS_HEADS else None


_QUOTED = re.compile(r'"[^"]{1,80}"|“[^”]{1,80}”|(?<![a-z0-9])\'[^\']{1,80}\'(?![a-z0-9])')
#: Words before a cue that make it the start of a name ("a song called no surprises", "by nothing but thieves").
_NAMERS = frozenset({"by", "called", "named", "titled"})


def _quoted(text: str) -> list[tuple[int, int]]:
    """The character spans of quotations in ``text`` (titles: '"no surprises" vibes')."""
    return [m.span() for m in _QUOTED.finditer(text)]


def _names_something(original: str, toks: Sequence[tuple[str, int, int]], i: int) -> bool:
    """Whether a cue at token ``i`` starts a name: after "by", "called", … or, in a request that uses capitals,
    capitalised and followed by a capitalised word in mid-sentence ("songs like No Doubt")."""
    if i == 0 or not toks[i][0][0].isalpha():
        return False
    if _match(_cues_at(), toks, i) is None and _match(_non_cues_at(), toks, i) is None:
        return False
    if toks[i - 1][0] in _NAMERS:
        return True
    nxt = i + 1
    return (toks[i - 1][0][0].isalnum() and original[toks[i][1]].isupper() and nxt < len(toks)
            and toks[nxt][0][0].isalpha() and original[toks[nxt][1]].isupper())


def _reply(toks: Sequence[tuple[str, int, int]], i: int, clause_start: int, previous_clause: int):
    """A reply at the start of a clause rejecting the short clause before it ("techno? no thanks"):
    ``(cue, start, stop, phrase)``, else ``None``."""
    if i != clause_start or i < 2:
        return None
    cue = next((c for c in _reply_words() if _starts_with(toks, i, c)), None)
    if cue is None:
        return None
    stop = i + len(cue)
    if stop < len(toks) and not _is_boundary(toks[stop][0]):
        return None
    if " ".join(cue) in _WEAK_REPLIES and toks[i - 1][0] not in ("?", ":"):  # "hello all. no, this isn't …"
        return None
    first = _skip_fillers(toks, previous_clause)
    last = i
    while last > first and not toks[last - 1][0][0].isalnum():
        last -= 1
    words_ = [t for t, *_ in toks[first:last]]
    if not 1 <= len(words_) <= 4 or any(_is_boundary(w) for w in words_):
        return None
    return " ".join(cue), previous_clause, stop, [" ".join(words_)]


@lru_cache(maxsize=1)
def _reply_words() -> tuple[tuple[str, ...], ...]:
    return tuple(sorted((tuple(_TOKEN.findall(c)) for c in REPLY_CUES), key=len, reverse=True))


def _after_all(toks: Sequence[tuple[str, int, int]], i: int, clause_start: int) -> bool:
    """Whether "but"/"bar" at token ``i`` excludes from everything: right after "anything", "all", … or after
    a kind ("style", "genre", …) that one of them opens, in the same clause ("any style but techno", "all
    genres bar country"), not "upbeat but mellow"."""
    if i == 0 or i - 1 < clause_start:
        return False
    k = i - 1
    while k > clause_start and toks[k][0] in _ALL_OK:  # "anything goes bar country", "everything is fine but …"
        k -= 1
    before = toks[k][0]
    if before in _ALL_WORDS:
        return True
    return before in _KINDS and any(t[0] in _ALL_WORDS for t in toks[max(clause_start, k - 3):k])


def _cancelling_exclusion(toks: Sequence[tuple[str, int, int]], j: int) -> int | None:
    """After a negator ending at token ``j``: the token after an exclusion of everything that follows within
    four words of its clause ("not looking for anything other than", "don't want anything but"), else ``None``."""
    for k in range(j, min(len(toks), j + 5)):
        if not toks[k][0][0].isalnum():
            return None
        cue = _match(_cues_at(), toks, k)
        if cue is not None and cue[1] in LIST_CUES and cue[1].startswith(("anything", "everything")):
            return k + len(cue[0])
    return None


def negated_by_prefix(tok: str) -> tuple[str, str] | None:
    """``(cue, word)`` of a prefixed word that negates the word it is joined to ("non-vocal" → vocal,
    "nonelectric" → electric, "un-distorted" → distorted, "unjazzy" → jazzy), else ``None``."""
    if tok in PREFIXED_STOPWORDS:
        return None
    m = _HYPHENED_NEGATION.fullmatch(tok)  # "no-vocal lofi", "not-too-sweet pop"
    if m:
        return (m.group(1) + "-", m.group(2).replace("-", " ")) if m.group(2) not in BOUNDARIES else None
    if "-" in tok and tok.split("-", 1)[0] not in ("non", "un", "anti"):
        return None
    m = _PREFIXED.fullmatch(tok)
    if not m:
        return None
    prefix = next(g for g in (m.group(1), m.group(3), m.group(5)) if g)
    word = next(g for g in (m.group(2), m.group(4), m.group(6)) if g)
    if word in PREFIXED_STOPWORDS or word in BOUNDARIES or (prefix == "un" and word.endswith("ly")):
        return None  # "unbelievably good": an adverb negates no sound
    if prefix == "non" and "-" not in tok and len(word) < 4:  # "noname", "nonce"
        return None
    return prefix + "-", word.replace("-", " ")


@lru_cache(maxsize=1)
def _postposed_words() -> tuple[tuple[tuple[str, ...], str], ...]:
    return tuple(sorted(((tuple(_TOKEN.findall(c)), c) for c in POSTPOSED_CUES), key=lambda s: -len(s[0])))


@lru_cache(maxsize=1)
def _postposed_at() -> dict[str, tuple[tuple[tuple[str, ...], str], ...]]:
    return _first_word_index(_postposed_words())


def _postposed(toks: Sequence[tuple[str, int, int]], i: int, clause_start: int):
    """A postposed cue at token ``i`` with the phrase before it in the clause: ``(cue, start, stop, phrase)``
    (token range of phrase and cue), or ``None``."""
    cue = _match(_postposed_at(), toks, i) or _too_much(toks, i)
    if cue is None:
        return None
    end = i
    while end > clause_start and toks[end - 1][0] in _BEFORE_POSTPOSED:  # "accordions are just not my thing"
        end -= 1
    start = end
    while start > clause_start and end - start < _MAX_SCOPE - 1 and not _is_boundary(toks[start - 1][0]):
        start -= 1
    stop = i + len(cue[0])
    ends_clause = stop >= len(toks) or _is_boundary(toks[stop][0])
    if cue[1] in DETERMINED_POSTPOSED:
        determined = toks[start][0] in _DETERMINERS or (start > 0 and toks[start - 1][0] in _OPENERS)
        if not determined or not ends_clause:
            return None
    if cue[1] in CLAUSE_END_POSTPOSED and not (ends_clause and (stop >= len(toks) or not toks[stop][0][0].isalnum()
                                                                or toks[stop][0] not in ("from", "of"))):
        return None
    if cue[1] == "no" and stop < len(toks) and toks[stop][0][0].isalnum():  # "strings no", not "god no more"
        return None
    phrases = _trimmed([t for t, *_ in toks[_skip_fillers(toks, start):end]])
    return (cue[1], start, i + len(cue[0]), phrases) if phrases else None


def _trimmed(words_: list[str]) -> list[str]:
    """The phrases of a scope's words: trailing words that name no sound dropped ("no loud sounds" → loud; "no
    drum beats" → drum, but "no beats" stays), words of opinion before a longer phrase dropped ("long solos" →
    solos) or, when they also describe a sound, rejected on their own ("whiny vocals" → whiny, vocals); none
    when nothing is left."""
    while len(words_) > 1 and (words_[-1] in TRAILING_FILLERS or words_[-1] in TRAILING_NOUNS) \
            and words_[-2:] != ["auto", "tune"]:
        words_ = words_[:-1]
    opinions = []
    while len(words_) > 1 and (words_[0] in EVALUATIVE or words_[0] in SOUND_OPINIONS):
        opinions += [words_[0]] if words_[0] in SOUND_OPINIONS else []
        words_ = words_[1:]
    if not words_ or (len(words_) == 1 and words_[0] in TRAILING_FILLERS):
        return []
    return opinions + [" ".join(words_)]


#: Common adjectives of quality with no telling ending (see :func:`_quality`).
_QUALITIES = frozenset("""
    fast slow dark loud soft hard heavy sad happy intense mellow bright quiet busy sweet harsh raw chill calm
    upbeat angry gloomy grim light tense wild rough smooth clean dense sparse long short high low deep fierce
    brutal extreme cheesy cheery poppy noisy
""".split())


def _quality(phrase: str) -> bool:
    """Whether a one-word phrase reads as a quality (an adjective: "dark", "aggressive", "poppy"), which a
    comparison measures against something rejected, rather than a sound ("less twang than normal country")."""
    return phrase in _QUALITIES or (" " not in phrase and phrase.endswith(
        ("y", "ive", "ic", "al", "ous", "ful", "ish", "ed", "ing", "er", "est", "ent", "ant", "ile")))


def _followed_by(toks: Sequence[tuple[str, int, int]], end: int, word: str) -> bool:
    """Whether the first token after character ``end`` is ``word``."""
    k = next((n for n, t in enumerate(toks) if t[1] >= end), len(toks))
    return k < len(toks) and toks[k][0] == word


def _standard(toks: Sequence[tuple[str, int, int]], text: str, end: int) -> tuple[list[str], int]:
    """What a comparison after a reduction is made with ("not as aggressive *as punk*", "less dark *than
    industrial*"): the phrases after "as"/"than" right at ``end``, and the end of the comparison."""
    if not (_followed_by(toks, end, "as") or _followed_by(toks, end, "than")):
        return [], end
    k = next(n for n, t in enumerate(toks) if t[1] >= end)
    phrases, stop = _scope(toks, k + 1)
    return phrases, stop


#: Verbs whose particle comes after their object ("turn the bass down", "take the vocals out"): with "down" or
#: "back" a reduction, with "out", "off" or "away" a removal.
_PARTICLE_VERBS = frozenset("""
    turn turning tone toning dial dialing dialling scale scaling bring bringing knock knocking take taking pull
    pulling leave leaving switch switching cut cutting strip stripping edit editing filter filtering ease pare
    keep keeping
""".split())
_PARTICLES = frozenset({"down", "back", "out", "off", "away"})
#: Objects of such a verb that are not sounds.
_NOT_SOUNDS = frozenset({"lights", "light", "tv", "phone", "radio", "it", "them", "me", "us", "you", "him", "her",
                         "heat", "car", "trash", "dog", "kids", "time", "day", "night"})


def _verb_particle(toks: Sequence[tuple[str, int, int]], i: int) -> tuple[str, int, list[str]] | None:
    """A verb at token ``i`` with its object between it and its particle ("turn the bass down a notch", "scale
    the strings back a bit", "leave the drums out"): ``(cue, stop, phrases)``, else ``None``."""
    if toks[i][0] not in _PARTICLE_VERBS:
        return None
    j = i + 1
    while j < len(toks) and toks[j][0] in ("the", "all", "those", "that", "any", "these"):
        j += 1
    k = j
    while k < len(toks) and k - j < 3 and toks[k][0][0].isalnum() and toks[k][0] not in _PARTICLES \
            and not _is_boundary(toks[k][0]):
        k += 1
    if k == j or k >= len(toks) or toks[k][0] not in _PARTICLES or j == i + 1 and toks[i][0] in ("keep", "keeping"):
        return None
    stop = k + 1
    for seq in (("a", "notch"), ("a", "bit"), ("a", "little"), ("a", "touch"), ("a", "tad")):
        if _starts_with(toks, stop, seq):
            stop += 2
    if any(t in _NOT_SOUNDS for t, *_ in toks[j:k]):  # "turn the lights off"
        return None
    phrases = _trimmed([t for t, *_ in toks[j:k]])
    return (f"{toks[i][0]} … {toks[k][0]}", stop, phrases) if phrases else None


def _too_much(toks: Sequence[tuple[str, int, int]], i: int) -> tuple[tuple[str, ...], str] | None:
    """"too" and an adjective after a copula, ending the clause or followed by "for me" ("dubstep is way too
    aggressive for me", "the drums are too loud"): a postposed reduction of what comes before, as
    ``(words, "too")``; else ``None``."""
    if toks[i][0] != "too" or i < 2 or i + 1 >= len(toks):
        return None
    k = i - 1
    if toks[k][0] in ("way", "far", "just", "a", "bit", "kinda", "little", "much"):
        k -= 1 + (toks[k][0] == "bit" and toks[k - 1][0] == "a")
    if k < 1 or toks[k][0] not in _COPULAS or not toks[i + 1][0][0].isalpha() or _is_boundary(toks[i + 1][0]):
        return None
    n = 2
    if _starts_with(toks, i + n, ("for", "me")) or _starts_with(toks, i + n, ("for", "my")):
        n += 2 if toks[i + n + 1][0] == "me" else 3
    if i + n < len(toks) and not _is_boundary(toks[i + n][0]):
        return None
    return tuple(t for t, *_ in toks[i:i + n]), "too"


def _word_scope(toks: Sequence[tuple[str, int, int]], j: int) -> tuple[list[str], int]:
    """The one word a prefix written apart covers ("non electronic dance music" → electronic)."""
    if j < len(toks) and toks[j][0][0].isalnum() and not _is_boundary(toks[j][0]) \
            and "non" + toks[j][0] not in PREFIXED_STOPWORDS:
        return [toks[j][0]], toks[j][2]
    return [], toks[j - 1][2]


def _skip_fillers(toks: Sequence[tuple[str, int, int]], j: int) -> int:
    moved = True
    while moved and j < len(toks):
        moved = False
        for f in LEADING_FILLERS:
            if _starts_with(toks, j, f):
                j += len(f)
                moved = True
                break
    return j


def _and_item(toks: Sequence[tuple[str, int, int]], j: int) -> bool:
    """Whether the words from ``j`` are one more item of a list: one or two words up to the clause's end,
    none of them a boundary, a filler or a cue ("… and trance", not "… and something upbeat")."""
    n = 0
    while j + n < len(toks) and toks[j + n][0][0].isalnum() and not _is_boundary(toks[j + n][0]):
        if n == 0 and (any(_starts_with(toks, j, f) for f in LEADING_FILLERS)
                       or _match(_cues_at(), toks, j) is not None):
            return False
        n += 1
    return 1 <= n <= 2


def _scope(toks: Sequence[tuple[str, int, int]], j: int, lists: bool = False,
           first_word: bool = False) -> tuple[list[str], int]:
    """The phrases covered from token ``j`` (split at "or"/"nor", and at "and" after a cue of exclusion:
    ``lists``), and the end offset of the scope; with ``first_word`` (a cue and an intensifier: "not too heavy
    rock"), the first phrase is its first word, and the scope ends there unless "or" follows."""
    phrases: list[str] = []
    end = toks[j - 1][2] if j else 0
    while True:
        j = _skip_fillers(toks, j)
        words_: list[str] = []
        limit = 1 if first_word and not phrases else _MAX_SCOPE
        while j < len(toks) and len(words_) < limit:
            t = toks[j][0]
            if t in ("or", "nor", "neither", "either") or _is_boundary(t):
                break
            if words_ and (_match(_cues_at(), toks, j) is not None
                           or any(_starts_with(toks, j, stop) for stop in _SCOPE_STOPS)):
                break
            head, _, tail = t.rpartition("-")
            if words_ and t in HEAVY_WORDS or head and tail in HEAVY_WORDS:  # "bass heavy hip hop": bass
                words_ += [head] if head else []
                end = toks[j][2]
                j += 1
                while j < len(toks) and not _is_boundary(toks[j][0]) and toks[j][0] not in ("or", "nor"):
                    j += 1  # what the modifier qualifies stays wanted
                break
            words_.append(t)
            end = toks[j][2]
            j += 1
        if words_ and words_[0] not in NON_MUSIC_VERBS:
            phrases += _trimmed(words_)
        if j < len(toks) and toks[j][0] in ("or", "nor"):
            j += 1
            continue
        if lists and phrases and j < len(toks) and toks[j][0] == "and" and _and_item(toks, j + 1):
            j += 1
            continue
        tail = next((t for t in _SCOPE_TAILS if _starts_with(toks, j, t)), None) if phrases else None
        if tail:
            end = toks[j + len(tail) - 1][2]
        return phrases, end
