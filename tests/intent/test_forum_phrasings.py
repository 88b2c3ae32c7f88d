"""Rejections in the phrasings people use on forums (issue 25): negating prefixes, exclusion phrases, aversion,
degree, part of a whole, postposed rejections, and ambiguous wordings that must exclude nothing. Examples are
written here (not taken from the evaluation sets) and their expectations checked by hand."""

from __future__ import annotations

import pytest

from melscribe.encoding.encoder import TextEncoder
from melscribe.intent.parser import IntentParser
from melscribe.intent.rejections import find_rejections, may_reject


def phrases(request: str) -> list[str]:
    return [r.phrase for r in find_rejections(request)]


@pytest.mark.parametrize("request_, expected", [
    ("non-vocal music for sleeping", ["vocal"]),
    ("some nonvocal house", ["vocal"]),
    ("non electronic dance music with a live band", ["electronic"]),        # the prefix covers one word
    ("a non-dance pop song", ["dance"]),
    ("unjazzy piano for a lobby", ["jazzy"]),
    ("un-distorted guitars", ["distorted"]),
    ("drumless lofi", ["drum"]),
    ("beatless ambient pads", ["beat"]),
    ("an anti-christmas playlist", ["christmas"]),
])
def test_negating_prefixes(request_: str, expected: list[str]) -> None:
    assert phrases(request_) == expected


@pytest.mark.parametrize("request_, expected", [
    ("something outside of hip hop", ["hip hop"]),
    ("any genre other than country", ["country"]),
    ("anything apart from techno", ["techno"]),
    ("all good except metal", ["metal"]),
    ("fine with all genres apart from opera are fine", ["opera"]),            # "are" ends the scope
    ("folk besides the irish stuff", ["irish"]),
    ("give me anything save for polka", ["polka"]),
    ("dance music excluding house and trance", ["house", "trance"]),          # "and" lists after exclusion
    ("everything except metal and something upbeat", ["metal"]),              # …not before a filler
    ("no vocals and upbeat drums", ["vocals"]),                               # …nor after other cues
    ("folk music from anywhere but ireland", ["ireland"]),
    ("outside the usual pop world", ["pop"]),
    ("anything aside from ska really", ["ska"]),
])
def test_exclusion_phrases(request_: str, expected: list[str]) -> None:
    assert phrases(request_) == expected


@pytest.mark.parametrize("request_, expected", [
    ("i've gone off pop lately", ["pop"]),
    ("sick of EDM", ["edm"]),
    ("I can't stand autotune", ["autotune"]),
    ("cant stand the sound of harmonica", ["harmonica"]),
    ("done with ballads for now", ["ballads"]),
    ("fed up with trap beats", ["trap"]),                                     # "beats" names no genre
    ("im over dubstep", ["dubstep"]),
    ("so over synth pop tbh", ["synth pop"]),
    ("bored of sad piano, something fun", ["sad piano"]),
    ("allergic to brass sections", ["brass"]),                           # "section" names no sound
    ("never liked accordion", ["accordion"]),
    ("rap is not for me", ["rap"]),                                           # postposed
    ("honestly country isnt my thing", ["country"]),
    ("the wobble bass gives me a headache", ["wobble bass"]),
    ("over dubstep tbh. some melodic electronic", ["dubstep"]),                # "over" opening a clause
    ("i hate when songs have a guitar solo", ["guitar solo"]),
    ("steer clear of bagpipes", ["bagpipes"]),
    ("not in the mood for reggae tonight", ["reggae"]),
    ("spare me the saxophone", ["saxophone"]),
])
def test_aversion(request_: str, expected: list[str]) -> None:
    assert phrases(request_) == expected


@pytest.mark.parametrize("request_, expected, degree", [
    ("less distortion on the guitars", ["distortion"], True),
    ("something not too loud", ["loud"], False),
    ("nothing too sugary", ["sugary"], True),
    ("rock with fewer drums", ["drums"], True),
    ("hip hop, lighter on the bass", ["bass"], True),
    ("not as fast as punk", ["fast", "punk"], True),                          # and what it is compared with
    ("not overly aggressive", ["aggressive"], False),
])
def test_comparatives_and_degree(request_: str, expected: list[str], degree: bool) -> None:
    found = find_rejections(request_)
    assert [r.phrase for r in found] == expected and found[0].degree is degree


@pytest.mark.parametrize("request_, expected", [
    ("jazz fusion without the jazz", ["jazz"]),
    ("like early deftones minus the growling", ["growling"]),
    ("bossa nova but take out the vocals", ["vocals"]),
    ("classic rock with the guitar solos cut out", ["guitar solos"]),        # postposed
    ("salsa with the horns taken out", ["horns"]),
    ("metal riffs without all the screaming on top", ["screaming"]),
    ("tango but lose the accordion", ["accordion"]),
])
def test_part_of_a_whole(request_: str, expected: list[str]) -> None:
    assert phrases(request_) == expected


@pytest.mark.parametrize("request_", [
    "no wave bands from new york",
    "no-wave weirdness",
    "bands like Nothing But Thieves",
    "no doubt about it, piano is best",
    "music that's not only for kids",
    "anti-folk like the moldy peaches",
    "songs over 5 minutes long",
    "anti-flag style punk",
    "non-stop party music",
    "nonstop techno",
    "unplugged rock sessions",
    "i can't get enough of banjo",
    "cant get enough of banjo",
    "i never get tired of flamenco",
    "music with no end, endless drones",
    "no idea what this genre is called",
    "not gonna lie i love cheesy pop",
    "without a doubt the best is jazz",
    "music you can't sit still to",
    "underrated gems, unreleased demos",
    "no rush, no pressure, thanks",
])
def test_ambiguous_wordings_reject_nothing(request_: str) -> None:
    assert find_rejections(request_) == []


def test_the_quick_test_sees_every_new_form() -> None:
    for request in ("drumless", "nonvocal", "unjazzy", "the vocals removed", "gone off pop", "apart from jazz"):
        assert may_reject(request), request
    assert not may_reject("upbeat tropical piano")


def test_a_long_request_is_read_to_its_end() -> None:
    request = ("so i have been looking for music to play at my cafe in the mornings, something warm and cozy " * 6
               + "but anything apart from jazz please")
    assert len(request.split()) > 100 and phrases(request) == ["jazz"]


# --- through the matcher: what gets excluded, and what stays wanted ---------------------------------------

VOCABULARY = [
    "no vocals", "instrumental", "female vocal", "male singer", "rap", "choir", "jazz", "smooth jazz",
    "jazz fusion", "fusion music", "funky", "pop", "synth pop", "dance pop", "dance", "country", "country music",
    "hip hop", "techno", "metal", "heavy metal", "punk", "punk rock", "autotune", "autotuned male vocal",
    "ballad", "loud", "soft", "distorted", "distortion guitar", "electric guitar", "drums", "acoustic drums",
    "piano", "growl", "deep growling", "guitar solo", "classic rock", "edm", "electronic dance music",
    "electronic", "electronic drums", "disco", "acoustic guitar", "folk", "kids song", "banjo", "post-punk",
    "irish folk music", "country folk music", "sad", "trumpets", "brass section", "french horn",
]


@pytest.fixture(scope="module")
def parser(encoder: TextEncoder) -> IntentParser:
    return IntentParser(VOCABULARY, None, encoder)


@pytest.mark.parametrize("request_, rejected, kept", [
    ("non-vocal music for sleeping", {"female vocal", "male singer", "rap", "choir"}, {"no vocals", "instrumental"}),
    ("a non-dance pop song", {"dance"}, {"pop"}),
    ("something outside of hip hop", {"hip hop"}, set()),
    ("sick of EDM, disco instead", {"edm", "electronic dance music"}, {"disco"}),
    ("I can't stand auto-tune", {"autotune", "autotuned male vocal"}, set()),
    ("i've gone off pop", {"pop", "synth pop", "dance pop"}, set()),
    ("rock with less distortion on the guitars", {"distorted", "distortion guitar"}, {"electric guitar"}),
    ("jazz fusion without the jazz", {"jazz", "smooth jazz"}, set()),
    ("like early deftones minus the growling", {"growl", "deep growling"}, set()),
    ("classic rock with the guitar solos cut out", {"guitar solo"}, {"classic rock", "electric guitar"}),
    ("folk music from anywhere but ireland", {"irish folk music"}, {"folk", "country folk music"}),
    ("jazz that's lighter on the horns", {"trumpets", "brass section", "french horn"}, {"jazz"}),
    # the whole is asked for and its part rejected: the whole is rejected too
    ("jazz fusion without the jazz", {"jazz fusion", "jazz"}, {"fusion music"}),
    ("country music minus the country", {"country music", "country", "country folk music"}, {"folk"}),
    # a reduction leaves what is asked for: sad is wanted, only less of it
    ("sad folk, but not as sad as a funeral", set(), {"sad"}),
])
def test_rejections_are_matched_with_scope(parser: IntentParser, request_: str, rejected: set[str],
                                           kept: set[str]) -> None:
    intent = parser.parse(request_)
    assert rejected <= set(intent.rejected)
    assert not kept & set(intent.rejected)


@pytest.mark.parametrize("request_", [
    "no wave and post-punk, raw and loud", "punk bands like nothing but thieves", "not only for kids, a kids song",
    "anti-folk with banjo", "non-stop techno", "no doubt about it, punk rock",
])
def test_ambiguous_requests_exclude_nothing(parser: IntentParser, request_: str) -> None:
    intent = parser.parse(request_)
    assert intent.empty and intent.rejected == ()
    assert intent.wanted  # and what they ask for is read


# --- round three (issue 25): phrasings the development sets showed missed, and their kin --------------------

@pytest.mark.parametrize("request_, expected", [
    ("i despise yodeling", ["yodeling"]),                                     # aversion verbs beside "hate"
    ("honestly i detest panpipes", ["panpipes"]),
    ("loathe kazoo solos", ["kazoo solos"]),
    ("can't bear harpsichord", ["harpsichord"]),
    ("cant tolerate whistling", ["whistling"]),
    ("sick to death of covers", ["covers"]),                                  # intensified aversion
    ("sick and tired of trance", ["trance"]),
    ("gone right off ska", ["ska"]),
    ("kinda over trap music", ["trap"]),                                      # "over" after an adverb
    ("i'm really over grunge", ["grunge"]),
    ("no longer into emo rap", ["emo rap"]),                                  # "no longer" + aversion
])
def test_aversion_round_three(request_: str, expected: list[str]) -> None:
    assert phrases(request_) == expected


@pytest.mark.parametrize("request_, expected", [
    ("every brass instrument, all but the tuba", ["tuba"]),                   # "all but the": an exclusion
    ("choral music all but the sopranos", ["sopranos"]),
])
def test_exclusion_round_three(request_: str, expected: list[str]) -> None:
    assert phrases(request_) == expected


@pytest.mark.parametrize("request_, expected", [
    ("not too fast jazz for dinner", ["fast"]),                                # an intensifier: the adjective only
    ("not so sad love songs", ["sad"]),
    ("nothing too loud techno", ["loud"]),
    ("not too loud or fast", ["loud", "fast"]),                                 # "or" still coordinates
    ("not very heavy on the drums", ["drums"]),                                 # a filler after the intensifier
])
def test_degree_round_three(request_: str, expected: list[str]) -> None:
    assert phrases(request_) == expected


@pytest.mark.parametrize("request_, expected", [
    ("grime without the mc", ["mc"]),
    ("house music, lose the piano and keep the bass", ["piano"]),
])
def test_part_round_three(request_: str, expected: list[str]) -> None:
    assert phrases(request_) == expected


@pytest.mark.parametrize("request_, expected", [
    ("non-orchestral trailer music", ["orchestral"]),
    ("non synth wave", ["synth"]),                                             # written apart: one word
])
def test_prefix_round_three(request_: str, expected: list[str]) -> None:
    assert phrases(request_) == expected


@pytest.mark.parametrize("request_", [
    "non stop eurobeat for the gym",                                           # "non-stop" written apart
    "songs that never get old",
    "tunes that never go out of style",
    "all but forgotten soul gems from the 60s",                                # "all but" = almost
    "fewer instruments, less going on",                                        # no sound named
    "no longer than five minutes please",
])
def test_ambiguous_round_three_reject_nothing(request_: str) -> None:
    assert find_rejections(request_) == []


ROUND_THREE_VOCABULARY = [
    "rock", "heavy rock", "heavy", "blues", "slow blues", "slow tempo", "fast tempo", "jazz", "rap", "rapping",
    "male vocal", "grime", "horror movie", "scary", "repetitive", "techno", "wobble bass", "dubstep", "violin",
    "strings", "string quartet", "cello", "ukulele", "synth pop", "pop", "guitar", "instrumental",
]


@pytest.fixture(scope="module")
def parser3(encoder: TextEncoder) -> IntentParser:
    return IntentParser(ROUND_THREE_VOCABULARY, None, encoder)


@pytest.mark.parametrize("request_, rejected, kept", [
    ("not too heavy rock for a long drive", {"heavy"}, {"rock"}),             # the genre stays wanted
    ("not so slow blues", {"slow tempo"}, {"blues"}),
    ("grime without the mc", {"rap", "rapping"}, {"grime"}),                  # mc → rap
    ("an epic score but nothing horror", {"horror movie", "scary"}, set()),   # horror ~ scary
    ("techno with less repetition", {"repetitive"}, {"techno"}),              # repetition ~ repetitive
    ("electronic, just not the wubs", {"wobble bass"}, set()),                # wubs ~ wobble
    ("string music, all but the violin", {"violin"}, {"cello", "string quartet"}),
    ("i despise synth pop", {"synth pop"}, {"guitar"}),
    ("im kinda over ukulele music", {"ukulele"}, set()),
])
def test_round_three_matched(parser3: IntentParser, request_: str, rejected: set[str], kept: set[str]) -> None:
    intent = parser3.parse(request_)
    assert rejected <= set(intent.rejected)
    assert not kept & set(intent.rejected)


@pytest.mark.parametrize("request_", [
    "non stop rock for the gym", "blues songs that never get old", "fewer instruments, less going on, strings",
    "jazz that never goes out of style",
])
def test_round_three_ambiguous_exclude_nothing(parser3: IntentParser, request_: str) -> None:
    intent = parser3.parse(request_)
    assert intent.empty and intent.rejected == ()


# --- round four (issue 25): cues by family (removal and degree verbs, replies, names, cancelling negations) ---

@pytest.mark.parametrize("request_, expected", [
    ("rock music, with the exception of grunge", ["grunge"]),
    ("pick anything bar reggae", ["reggae"]),                                   # "bar"/"but" after "anything"
    ("any style but techno please", ["techno"]),                                # …or after "any <kind>"
    ("all genres bar country", ["country"]),
    ("i listen to everything exept rap", ["rap"]),                              # misspelt
    ("beyond jazz what else has sax", ["jazz"]),
    ("something away from the usual lo-fi beats", ["lo-fi"]),
    ("country aside, anything goes", ["country"]),                              # postposed, clause end
    ("reggae excluded, anything else works", ["reggae"]),
    ("rap is off the table", ["rap"]),
])
def test_exclusion_round_four(request_: str, expected: list[str]) -> None:
    assert phrases(request_) == expected


@pytest.mark.parametrize("request_, expected", [
    ("hard pass on country", ["country"]),
    ("ugh enough with the bagpipes", ["bagpipes"]),
    ("i'm turned off by falsetto", ["falsetto"]),
    ("trumpets annoy me. soft jazz pls", ["trumpets"]),                          # postposed
    ("autotune makes my ears bleed", ["autotune"]),
    ("cant stomach screamo", ["screamo"]),
    ("techno? no thanks", ["techno"]),                                          # a reply to the clause before
    ("metal. hard pass", ["metal"]),
    ("i'm not looking for jazz, more like soul", ["jazz"]),                      # "looking for" is a filler
    ("zero autotune please", ["autotune"]),
    ("need a break from hip hop", ["hip hop"]),
])
def test_aversion_round_four(request_: str, expected: list[str]) -> None:
    assert phrases(request_) == expected


@pytest.mark.parametrize("request_, expected, degree", [
    ("dial back the drums a bit", ["drums"], True),                             # "a bit" says how much
    ("tone down the bass a little", ["bass"], True),
    ("keep the drums to a minimum", ["drums"], True),                           # postposed
    ("keep vocals minimal", ["vocals"], True),
    ("a little less bass heavy hip hop", ["bass"], True),                       # the modifier only: hip hop wanted
    ("a less repetitive kind of house", ["repetitive"], True),                  # "kind of" ends the scope
    ("not excessively fast edm", ["fast"], False),                              # an intensifier
    ("less vocals overall would be great", ["vocals"], True),
])
def test_degree_round_four(request_: str, expected: list[str], degree: bool) -> None:
    found = find_rejections(request_)
    assert [r.phrase for r in found] == expected and found[0].degree is degree


@pytest.mark.parametrize("request_, expected", [
    ("cut the vocals from hip hop and give me the beats", ["vocals"]),
    ("reggae but drop the bassline", ["bassline"]),
    ("country songs, just remove the steel guitar", ["steel guitar"]),
    ("salsa with the percussion stripped away", ["percussion"]),
    ("punk rock with the singer muted, just guitars", ["singer"]),              # a participle after "the X"
    ("bluegrass with the fiddle gone", ["fiddle"]),
    ("ska minus the horn section", ["horn"]),                                   # "section" names no sound
])
def test_part_round_four(request_: str, expected: list[str]) -> None:
    assert phrases(request_) == expected


@pytest.mark.parametrize("request_", [
    "not looking for anything other than jazz tonight",                        # the two negations cancel
    "i don't want anything but folk",
    "songs like No Doubt or Nothing But Thieves",                              # capitalised names
    "a song by nothing but thieves",                                           # after "by"
    '"no surprises" vibes',                                                    # a quoted title
    "no man's sky soundtrack vibes",                                           # a possessive: a name
    "no strings attached, just chill beats",
    "doesn't have to be jazz but something with sax",                          # jazz is welcome
    "i've never really listened to jazz, where do i start",
    "cant find good reggae anywhere",
    "less is more, minimalist piano",
    "with palm muted guitars and a loud drummer",                              # "muted" as an adjective
    "when the beat dropped everyone danced",                                   # a story, not a removal
    "nothing but love songs, nothing other than ballads",
    "don't let that take away from the vocals",
])
def test_ambiguous_round_four_reject_nothing(request_: str) -> None:
    assert find_rejections(request_) == []


def test_the_quick_test_sees_the_round_four_forms() -> None:
    for request in ("pick anything bar reggae", "any style but techno", "techno? nah", "trumpets annoy me",
                    "keep the drums to a minimum", "country aside"):
        assert may_reject(request), request
    assert not may_reject("upbeat but mellow piano, any tempo")


@pytest.mark.parametrize("request_, rejected, kept", [
    ("bluegrass with the fiddle removed", {"violin"}, {"guitar"}),            # fiddle ~ violin
    ("not a fan of opera", {"opera", "operatic"}, {"guitar"}),               # operatic ~ opera
    ("non danceable electronic music", {"dance"}, {"electronic"}),            # danceable ~ dance
    ("reggae but drop the bassline", {"bass line"}, {"reggae"}),              # bassline = bass line
    ("a little less bass heavy hip hop", {"bass"}, {"hip hop"}),
    ("not looking for anything other than jazz tonight", set(), {"jazz"}),
])
def test_round_four_matched(parser4: IntentParser, request_: str, rejected: set[str], kept: set[str]) -> None:
    intent = parser4.parse(request_)
    assert rejected <= set(intent.rejected)
    assert not kept & set(intent.rejected)


ROUND_FOUR_VOCABULARY = ["violin", "guitar", "opera", "operatic", "dance", "electronic", "bass line", "bass",
                         "reggae", "hip hop", "jazz"]


@pytest.fixture(scope="module")
def parser4(encoder: TextEncoder) -> IntentParser:
    return IntentParser(ROUND_FOUR_VOCABULARY, None, encoder)


@pytest.mark.parametrize("request_, expected", [
    ("disco minus the cheesy vocals", ["cheesy", "vocals"]),                    # a sound's opinion: both
    ("rock without the same boring riffs", ["riffs"]),                          # opinion words dropped…
    ("blues rock but without all the long solos", ["solos"]),
    ("nothing cheesy", ["cheesy"]),                                             # …unless alone
    ("not as aggressive as punk but still fast", ["aggressive", "punk"]),       # a quality's standard
    ("a little less dark than industrial", ["dark", "industrial"]),
    ("songs with a bit less twang than normal country", ["twang"]),            # a sound's standard is wanted
    ("dubstep is way too aggressive for me", ["dubstep"]),                      # "is too <adjective>"
    ("the drums are too loud in most rock", ["drums"]),
    ("accordions are not my thing", ["accordions"]),                            # a copula before the cue
    ("trap is getting stale", ["trap"]),
    ("vocals? no. beats? yes", ["vocals"]),                                     # a reply to a question
    ("guitars: none", ["guitars"]),
    ("piano yes, strings no", ["strings"]),
    ("no-vocal lofi", ["vocal"]),                                               # negations joined by hyphens
    ("not-too-sweet pop", ["sweet"]),
    ("i dont do heavy metal", ["heavy metal"]),
    ("indie but none of that whiny vocal stuff", ["whiny", "vocal"]),
    ("everything is fine but reggaeton", ["reggaeton"]),
    ("anything goes bar country", ["country"]),
    ("other than jazz anything works", ["jazz"]),
])
def test_round_four_scopes(request_: str, expected: list[str]) -> None:
    assert phrases(request_) == expected


@pytest.mark.parametrize("request_", [
    "hello music people. no, i love everything",                               # "no" after a statement
    "no-wave and no-brainer picks",
    "oh no, i love sad songs",                                                 # an interjection
    "it's not that i hate pop, i just want rock right now",                    # liking said through a negation
    "vocals or no vocals, whatever",
    "i have nothing against country",
    "i never say no to a good saxophone solo",
    "nothing wrong with a bit of autotune",
    "zero skips, all bangers",
    "unbelievably good guitar, undeniably catchy",                             # adverbs negate no sound
    "songs like no scrubs by tlc",                                             # a title before "by"
    "not afraid by eminem",
    "i don't speak spanish but i love latin music",                            # about the person, not the music
    "i can't sleep without music",
    "i'm not against vocals",
    "i can never find good ska",
    "i dont need lyrics to enjoy a song",
])
def test_round_four_replies_and_hyphens_reject_nothing(request_: str) -> None:
    assert find_rejections(request_) == []


# --- round five (issue 25): set 4's misses, by family ------------------------------------------------------

@pytest.mark.parametrize("request_, expected, degree", [
    ("all genres welcome short of dubstep lol", ["dubstep"], False),
    ("pick anything, only exception is bagpipes", ["bagpipes"], False),
    ("love songs, excl. ballads", ["ballads"], False),                          # an abbreviation's full stop
    ("im open to literally anything save the banjo", ["banjo"], False),
    ("done w sad music for the year", ["sad"], False),                          # "w" for "with"
    ("had enough lo-fi to last a lifetime", ["lo-fi"], False),
    ("bored stiff of trance", ["trance"], False),
    ("never been able to get into jazz", ["jazz"], False),
    ("organ music makes my skin crawl", ["organ"], False),
    ("dance music stripped of the big bass drops", ["bass drops"], False),
    ("flamenco but lose all the clapping", ["clapping"], False),
    ("can we turn the bass down a notch", ["bass"], True),                      # a verb and its particle
    ("orchestral but scale the strings back a bit", ["strings"], True),
    ("take the vocals out of motown soul", ["vocals"], False),
    ("switch the autotune off", ["autotune"], False),
    ("minimal to no percussion", ["percussion"], True),
    ("cut back the brass", ["brass"], True),
    ("if i hear another ukulele i'll scream", ["ukulele"], False),              # hyperbole
    ("i've had it up to here with trap", ["trap"], False),
    ("ska just isn't doing it for me anymore", ["ska"], False),                 # postposed
    ("synthwave doesn't click with me", ["synthwave"], False),
    ("techno isn't really my jam", ["techno"], False),
    ("trap just isn't me", ["trap"], False),
    ("death metal is banned in my car", ["death metal"], False),
    ("keep your banjos away from me", ["banjos"], False),
    ("opera? hard no", ["opera"], False),                                       # replies
    ("country music? not in this house", ["country music"], False),
    ("without a trace of autotune", ["autotune"], False),
    ("devoid of guitars", ["guitars"], False),
    ("purely instrumental, nobody singing", ["singing"], False),                # "nobody" + -ing
])
def test_round_five(request_: str, expected: list[str], degree: bool) -> None:
    found = find_rejections(request_)
    assert [r.phrase for r in found] == expected and found[0].degree is degree


@pytest.mark.parametrize("request_", [
    "turn the lights off and play some jazz",                                  # no sound is turned off
    "keep it down",
    "none of the above lol just surprise me with some jazz",
    "i never met a synth i didnt like",
    "noname and smino type rap",                                               # "non" needs four letters after it
    "unchained melody style doo wop",
    "minimal techno and minimal percussion",                                   # "minimal" alone describes
])
def test_round_five_reject_nothing(request_: str) -> None:
    assert find_rejections(request_) == []


ROUND_FIVE_VOCABULARY = ["christmas", "christmas music", "distorted guitar", "distortion", "synth pop", "synthpop",
                         "drum & bass", "percussion", "drums", "shaker", "minimal percussion", "soft drums", "edm",
                         "electronic dance music", "dance", "sad"]


@pytest.fixture(scope="module")
def parser5(encoder: TextEncoder) -> IntentParser:
    return IntentParser(ROUND_FIVE_VOCABULARY, None, encoder)


@pytest.mark.parametrize("request_, rejected, kept", [
    ("anti-xmas playlist", {"christmas", "christmas music"}, set()),           # xmas = christmas
    ("way less fuzz on the guitars", {"distortion", "distorted guitar"}, set()),  # fuzz ~ distortion
    ("80s stuff except synthpop", {"synth pop", "synthpop"}, set()),           # one spelling
    ("drum n bass makes my skin crawl", {"drum & bass"}, set()),
    ("no percussion", {"percussion", "drums", "shaker"}, set()),               # drums are percussion
    ("less percussion please", {"percussion", "drums"}, {"minimal percussion"}),  # what a reduction asks for
    ("non-dancey edm", {"dance"}, {"edm", "electronic dance music"}),          # a prefix qualifies what follows
])
def test_round_five_matched(parser5: IntentParser, request_: str, rejected: set[str], kept: set[str]) -> None:
    intent = parser5.parse(request_)
    assert rejected <= set(intent.rejected)
    assert not kept & set(intent.rejected)
