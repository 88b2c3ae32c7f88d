"""Real compositions rendered to audio with exact labels, for measuring an audio tagger and audio retrieval.

Experiment code, not part of the library; ``experiments/render_music.py`` is its command line and
``tests/experiments/test_render_music.py`` runs it small.

* **Pieces** come from the ``music21`` corpus (it ships inside the music21 wheel): Bach chorales, string
  quartet movements (Haydn, Mozart, Beethoven, Schumann), other classical pieces (keyboard works, songs,
  Monteverdi madrigals, Palestrina mass sections) and folk tunes (O'Neill's 1850, the Essen folksong
  collection, Ryan's Mammoth Collection, the American fife book). :data:`PIECES` is the fixed list they
  are drawn from; :func:`plan` draws them with a seeded RNG, so a seed always gives the same set.
* **Instrumentation** (:data:`CLASSES`) and **tempo** are chosen per render and written into a General MIDI
  file (:func:`midi_file`): the score's notes (its own tempo marks ignored) on the class's instruments
  (:data:`GM_PROGRAMS`, the one table of General MIDI program numbers), each part moved by octaves into
  its instrument's range. Keyboard, guitar, harp, choir and pad classes play every part; ``violin``,
  ``cello``, ``flute`` the top line (the highest note sounding in any part at each moment);
  ``string_quartet`` the parts by pitch on violins, violas, cello (pieces of several parts only);
  ``guitar_distorted`` the top line and the bass; ``synth_lead`` the top line on a sawtooth lead over
  every part on a pad. A *drum kit* render adds a
  steady beat on GM channel 10 (kick, snare, hi-hat, aligned to the score's bars), synthesized on its own
  and mixed 6 dB (RMS) under an otherwise identical render: every drum clip has a drum-less twin that
  differs from it by the drum track only.
* **Tempo** is set on the metrical beat: the quarter note, the dotted quarter in 6/8, 9/8, 12/8, the eighth
  in 2/8 and 3/8. ``slow`` is 56–66 beats per minute, ``fast`` 150–170.
* **Synthesis**: the ``fluidsynth`` command line (Debian ``fluidsynth``) in fast-render mode with the
  FluidR3 General MIDI SoundFont (``fluid-soundfont-gm``), at 44.1 kHz, float samples, reverb and chorus
  at their defaults. The command line rather than ``pyfluidsynth``: no Python binding to keep in step with
  the C library, offline rendering faster than real time that is bit-for-bit reproducible, and one
  process per clip (loading the SoundFont costs about 0.3 s). Then: mono (mean of the two channels),
  high-pass at 20 Hz (some GM patches carry a DC offset), leading silence cut (below −50 dB of the
  piece's peak), resampled to 16 kHz (polyphase, band-limited: FluidSynth's own resampling to 16 kHz
  would alias high partials), cut to the clip length (30 s; a piece shorter than that at the chosen tempo
  is looped on a whole number of bars), 50 ms fade-out.
* **Loudness**: RMS over the clip set to a target (default −20 dBFS), peaks held at or under a ceiling
  (default −1 dBFS) by a look-ahead peak limiter (50 ms hold and smoothing, no overshoot). At the default
  it rarely acts (a few dB on some harp and piano clips). For a loud target (e.g. −10 dBFS, like
  commercial masters) gain and limiting are repeated, at most six times, to bring the RMS to target;
  heavily limited clips may stay up to about 1.5 dB short. The manifest has each clip's real RMS, peak and
  the limiter's largest gain reduction.
* **Labels**: per clip, the class, its instruments and GM programs, tempo, drums, and the expected tags in
  musicnn's two vocabularies (MagnaTagATune ``MTT_LABELS`` and Million Song Dataset ``MSD_LABELS``):
  ``mtt_tags``/``msd_tags`` are true by construction (instruments, drums, tempo, voice or not, solo);
  ``mtt_style_tags``/``msd_style_tags`` are genre tags given by rule (``classical`` for a classical piece
  on classical instruments without drums, ``folk`` for a folk tune on acoustic instruments without drums,
  ``electronic`` for synths, ``rock`` for distorted guitar with drums, ``ambient`` for a slow synth pad),
  a judgement, kept apart.

Output (:func:`render_set`): ``<file>.wav`` (mono, 16 kHz, 16-bit PCM WAV), ``manifest.csv`` (one row per
clip; list fields joined by ``;``) and ``render_info.json`` (the parameters; a rerun into the same folder
must use the same ones). Reruns skip clips already rendered (each verified by reading it); every file is
written to a temporary sibling and renamed.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import shutil
import struct
import subprocess
import tempfile
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from melscribe.fileio import temp_sibling, write_text_atomic

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
SAMPLE_RATE = 16000
SYNTH_RATE = 44100
CLIP_SECONDS = 30.0
LOUDNESS_DBFS = -20.0
PEAK_DBFS = -1.0
#: RMS of the drum track relative to the piece's, in a drum render.
DRUM_LEVEL_DB = -6.0
SLOW_BPM = (56, 66)
FAST_BPM = (150, 170)
#: Fraction of the pieces drawn from each group.
GROUP_SHARES = {"chorale": 0.30, "quartet": 0.25, "classical": 0.20, "folk": 0.25}

#: General MIDI program numbers (0-based, i.e. the GM list's number minus one) of every instrument used.
GM_PROGRAMS = {
    "acoustic grand piano": 0,
    "harpsichord": 6,
    "church organ": 19,
    "acoustic guitar (nylon)": 24,
    "distortion guitar": 30,
    "violin": 40,
    "viola": 41,
    "cello": 42,
    "orchestral harp": 46,
    "choir aahs": 52,
    "flute": 73,
    "lead 2 (sawtooth)": 81,
    "pad 2 (warm)": 89,
}
#: The drum kit: GM channel 10 (index 9), standard kit; the GM percussion keys used.
DRUM_KIT = "standard drum kit"
DRUM_CHANNEL = 9
KICK, SNARE, CLOSED_HAT, CRASH = 36, 38, 42, 49
#: Playable MIDI pitch range of each instrument; a part is moved by octaves to fit it.
RANGES = {
    "acoustic grand piano": (21, 108),
    "harpsichord": (29, 89),
    "church organ": (36, 96),
    "acoustic guitar (nylon)": (40, 83),
    "distortion guitar": (40, 86),
    "violin": (55, 100),
    "viola": (48, 88),
    "cello": (36, 76),
    "orchestral harp": (24, 103),
    "choir aahs": (40, 81),
    "flute": (60, 96),
    "lead 2 (sawtooth)": (48, 96),
    "pad 2 (warm)": (36, 96),
}

NO_VOICE_MTT = ("no vocals", "no vocal", "no voice")
VOICE_MTT = ("choir", "choral", "vocal", "vocals", "voice", "singing")
DRUM_MTT = ("drums", "beat", "beats")


@dataclass(frozen=True)
class Instrumentation:
    """An instrumentation class: which instrument plays which part, and the tags true of it."""

    name: str
    #: ``all``: every part on ``instruments[0]``; ``melody``: the top line (:func:`skyline`) on
    #: ``instruments[0]``; ``quartet``: parts by pitch on violin, violin, viola, ..., cello; ``melody+bass``:
    #: the top line and the lowest part on ``instruments[0]``; ``lead+pad``: the top line on
    #: ``instruments[0]`` over every part on ``instruments[1]``.
    layout: str
    instruments: tuple[str, ...]
    mtt: tuple[str, ...]
    msd: tuple[str, ...] = ()
    acoustic: bool = True
    vocal: bool = False
    #: One instrument sounding (before drums are added).
    solo: bool = False
    #: Needs a piece of several parts (not a single-line folk tune).
    polyphonic: bool = False
    classical: bool = True

    def __post_init__(self) -> None:
        assert all(i in GM_PROGRAMS for i in self.instruments), self.instruments


CLASSES: dict[str, Instrumentation] = {c.name: c for c in (
    Instrumentation("piano", "all", ("acoustic grand piano",), ("piano",), solo=True),
    Instrumentation("harpsichord", "all", ("harpsichord",), ("harpsichord",), solo=True),
    Instrumentation("organ", "all", ("church organ",), (), solo=True),  # "organ" is in neither vocabulary
    Instrumentation("string_quartet", "quartet", ("violin", "viola", "cello"), ("strings", "violin", "cello"),
                    polyphonic=True),
    Instrumentation("violin", "melody", ("violin",), ("strings", "violin"), solo=True),
    Instrumentation("cello", "melody", ("cello",), ("strings", "cello"), solo=True),
    Instrumentation("flute", "melody", ("flute",), ("flute",), solo=True),
    Instrumentation("guitar_nylon", "all", ("acoustic guitar (nylon)",), ("guitar",), ("guitar",), solo=True),
    Instrumentation("guitar_distorted", "melody+bass", ("distortion guitar",), ("guitar",), ("guitar",),
                    acoustic=False, classical=False),
    Instrumentation("harp", "all", ("orchestral harp",), ("harp",), solo=True),
    Instrumentation("choir", "all", ("choir aahs",), VOICE_MTT, vocal=True),
    Instrumentation("synth_pad", "all", ("pad 2 (warm)",), ("synth",), acoustic=False, classical=False),
    Instrumentation("synth_lead", "lead+pad", ("lead 2 (sawtooth)", "pad 2 (warm)"), ("synth",),
                    acoustic=False, classical=False),
)}

#: The fixed list pieces are drawn from: (group, corpus path, or ``path#number`` for a tune of a collection).
#: Chorales and quartets and the classical group have several parts; folk tunes are single lines.
PIECES: tuple[tuple[str, str], ...] = tuple(
    [("chorale", f"bach/{b}.mxl") for b in (
        "bwv361", "bwv244.10", "bwv90.5", "bwv282", "bwv244.46", "bwv89.6", "bwv330", "bwv85.6", "bwv264",
        "bwv390", "bwv255", "bwv436", "bwv94.8", "bwv375", "bwv305", "bwv333", "bwv388", "bwv427",
        "bwv245.28", "bwv285", "bwv396", "bwv8.6", "bwv295", "bwv384", "bwv145.5", "bwv92.9", "bwv245.11",
        "bwv70.7", "bwv360", "bwv83.5", "bwv5.7", "bwv188.6", "bwv245.17", "bwv331", "bwv133.6")]
    + [("quartet", p) for p in (
        *(f"haydn/opus1no1/movement{i}.mxl" for i in range(1, 6)),
        *(f"haydn/opus74no1/movement{i}.mxl" for i in range(1, 5)),
        *(f"mozart/k155/movement{i}.mxl" for i in range(1, 4)),
        *(f"mozart/k156/movement{i}.mxl" for i in range(1, 5)),
        *(f"mozart/k458/movement{i}.mxl" for i in range(1, 5)),
        *(f"mozart/k80/movement{i}.mxl" for i in range(1, 5)),
        *(f"beethoven/opus18no1/movement{i}.mxl" for i in range(1, 5)),
        *(f"beethoven/opus59no2/movement{i}.mxl" for i in range(1, 5)),
        *(f"beethoven/opus59no3/movement{i}.mxl" for i in range(1, 5)),
        *(f"schumann_robert/opus41no1/movement{i}.mxl" for i in range(1, 6)))]
    + [("classical", p) for p in (
        "mozart/k545/movement1_exposition.mxl", "joplin/maple_leaf_rag.mxl", "chopin/mazurka06-2.krn",
        *(f"schumann_clara/polonaise_op1n{i}.mxl" for i in range(1, 5)),
        "cpebach/h186.mxl", "corelli/opus3no1/1grave.xml", "handel/rinaldo/Lascia_chio_pianga.mxl",
        "schubert/Lindenbaum.xml", "schumann_robert/dichterliebe_no2.xml", "verdi/laDonnaEMobile.mxl",
        "johnson_j_r/lift_every_voice.mxl",
        *(f"monteverdi/madrigal.{m}.mxl" for m in ("4.10", "4.9", "4.14", "4.17", "3.16", "3.17", "3.9", "4.12")),
        *(f"palestrina/{m}.krn" for m in ("Credo_81_b", "Credo_88_c", "Credo_15_d", "Credo_78_c", "Gloria_64",
                                          "Gloria_44_b", "Credo_72_a", "Sanctus_23")))]
    + [("folk", p) for p in (
        *(f"oneills1850/0001-0050.abc#{n}" for n in (14, 27, 15)),
        *(f"oneills1850/0101-0200.abc#{n}" for n in (127, 106, 196)),
        *(f"oneills1850/0301-0350.abc#{n}" for n in (315, 349, 302)),
        *(f"oneills1850/0501-0550.abc#{n}" for n in (517, 533, 521)),
        *(f"oneills1850/0626-0700.abc#{n}" for n in (698, 679, 640)),
        "essenFolksong/irl.abc#22", "essenFolksong/irl.abc#55", "essenFolksong/han1.abc#237",
        "essenFolksong/han1.abc#242", "essenFolksong/ballad10.abc#60", "essenFolksong/ballad10.abc#47",
        "essenFolksong/altdeu10.abc#70", "essenFolksong/altdeu10.abc#104", "essenFolksong/erk10.abc#378",
        "essenFolksong/erk10.abc#506", "essenFolksong/boehme10.abc#305", "essenFolksong/boehme10.abc#322",
        "essenFolksong/kinder0.abc#37", "essenFolksong/kinder0.abc#68", "essenFolksong/lot.abc#199",
        "essenFolksong/lot.abc#320",
        *(f"ryansMammoth/{t}.abc" for t in (
            "NeapolitanThreshersJig", "NationalHornpipe", "SundayIsMyWeddingDayJig", "GoAsYouPleaseHornpipe",
            "EmonAcnuckJig", "MyLoveIsOnTheOceanReel", "IdlewildJig", "ButterMilkMarysJig",
            "CorporalCaseysFancyReel", "GollihersFolicJig", "AlbemarleHornpipe", "FlatFootReel",
            "SentinelHornpipe", "KeltonsReel", "NorthernLightReel", "JohnnysGoneToFranceReel")),
        *(f"miscFolk/americanfifeopus.abc#{n}" for n in (9, 16, 127)))]
)


# ---------------------------------------------------------------------------------------------------------
# The plan: which pieces, which instrumentation and tempo for each


@dataclass(frozen=True)
class Render:
    """One clip to render: a piece, an instrumentation class, a tempo, with or without drums."""

    piece: str
    group: str
    instrumentation: str
    tempo_class: str
    bpm: int
    drums: bool = False

    @property
    def file(self) -> str:
        """Deterministic file name: piece, class, tempo (and ``drums``), slugified."""
        tail = "__drums" if self.drums else ""
        return f"{slug(self.piece)}__{self.instrumentation}__{self.tempo_class}{self.bpm}{tail}.wav"

    @property
    def twin(self) -> Render:
        """The same render with drums toggled."""
        return Render(self.piece, self.group, self.instrumentation, self.tempo_class, self.bpm, not self.drums)


def slug(piece: str) -> str:
    """``bach/bwv66.6.mxl`` → ``bach-bwv66.6``; ``oneills1850/0001-0050.abc#14`` → ``oneills1850-0001-0050-14``."""
    path, _, number = piece.partition("#")
    path = re.sub(r"\.(mxl|xml|musicxml|krn|abc|mid|midi)$", "", path)
    s = re.sub(r"[^A-Za-z0-9.]+", "-", f"{path}-{number}" if number else path)
    return s.strip("-.").lower()


def choose_pieces(n_pieces: int, seed: int = 0, pieces: Sequence[tuple[str, str]] = PIECES) -> list[tuple[str, str]]:
    """``n_pieces`` (group, piece) drawn without replacement from ``pieces``, each group getting its share
    of :data:`GROUP_SHARES` (largest remainders), in a seeded order."""
    groups = {g: [p for gg, p in pieces if gg == g] for g in GROUP_SHARES}
    groups = {g: ps for g, ps in groups.items() if ps}
    if n_pieces > sum(len(ps) for ps in groups.values()):
        raise ValueError(f"{n_pieces} pieces asked for, {sum(len(ps) for ps in groups.values())} in the list")
    total = sum(GROUP_SHARES[g] for g in groups)
    exact = {g: n_pieces * GROUP_SHARES[g] / total for g in groups}
    quota = {g: min(int(exact[g]), len(groups[g])) for g in groups}
    for g in sorted(groups, key=lambda g: -(exact[g] - int(exact[g]))):
        if sum(quota.values()) < n_pieces and quota[g] < len(groups[g]):
            quota[g] += 1
    while sum(quota.values()) < n_pieces:  # a small group ran out
        g = max((g for g in groups if quota[g] < len(groups[g])), key=lambda g: len(groups[g]) - quota[g])
        quota[g] += 1
    rng = np.random.default_rng(seed)
    chosen = []
    for g in groups:  # GROUP_SHARES order
        idx = rng.choice(len(groups[g]), size=quota[g], replace=False)
        chosen += [(g, groups[g][i]) for i in idx]
    return chosen


def plan(n_pieces: int = 40, seed: int = 0, per_piece: int = 6, drums_per_piece: int = 2,
         pieces: Sequence[tuple[str, str]] = PIECES, classes: Iterable[str] | None = None) -> list[Render]:
    """The renders of a set, a function of its arguments only.

    Each piece gets ``per_piece`` distinct classes (those used least so far, ties broken by the seeded RNG;
    ``string_quartet`` only for pieces of several parts), half of them slow and half fast (each class's
    slow/fast counts kept level), a tempo drawn in the class's range; then ``drums_per_piece`` of those
    renders (alternately a slow and a fast one, the class with the fewest drum clips at that tempo first)
    again with drums.
    """
    names = list(classes) if classes is not None else list(CLASSES)
    rng = np.random.default_rng([seed, 1])
    used = {c: 0 for c in names}
    slow_minus_fast = {c: 0 for c in names}
    drummed: dict = {c: 0 for c in names} | {(c, t): 0 for c in names for t in ("slow", "fast")}
    out: list[Render] = []
    for group, piece in choose_pieces(n_pieces, seed, pieces):
        compatible = [c for c in names if group != "folk" or not CLASSES[c].polyphonic]
        if per_piece > len(compatible):
            raise ValueError(f"{per_piece} classes per piece asked for, {len(compatible)} fit {piece}")
        ties = rng.random(len(compatible))
        chosen = [c for _, _, c in sorted(zip([used[c] for c in compatible], ties, compatible))][:per_piece]
        ties = rng.random(len(chosen))
        by_need = [c for _, _, c in sorted(zip([slow_minus_fast[c] for c in chosen], ties, chosen))]
        n_slow = per_piece // 2 + (int(rng.integers(2)) if per_piece % 2 else 0)
        slow = set(by_need[:n_slow])
        renders = []
        for c in chosen:
            used[c] += 1
            tempo = "slow" if c in slow else "fast"
            slow_minus_fast[c] += 1 if tempo == "slow" else -1
            lo, hi = SLOW_BPM if tempo == "slow" else FAST_BPM
            renders.append(Render(piece, group, c, tempo, int(rng.integers(lo, hi + 1))))
        out += renders
        ties = rng.random(len(renders))
        first = "slow" if rng.integers(2) else "fast"
        picked: list[Render] = []
        for k in range(min(drums_per_piece, len(renders))):
            want = first if k % 2 == 0 else ("fast" if first == "slow" else "slow")
            left = [i for i, r in enumerate(renders) if r not in picked]
            fits = [i for i in left if renders[i].tempo_class == want] or left
            i = min(fits, key=lambda i: (drummed[(renders[i].instrumentation, renders[i].tempo_class)],
                                         drummed[renders[i].instrumentation], ties[i]))
            picked.append(renders[i])
            drummed[(renders[i].instrumentation, renders[i].tempo_class)] += 1
            drummed[renders[i].instrumentation] += 1
        out += [r.twin for r in picked]
    return out


# ---------------------------------------------------------------------------------------------------------
# From a score to notes


@dataclass
class Music:
    """A score reduced to what rendering needs. Times in quarter lengths from the first note."""

    #: Each part's notes (onset, duration, MIDI pitch), in score order.
    parts: list[list[tuple[float, float, int]]]
    #: Loop period: the piece from its first note, rounded up to whole bars.
    period: float
    beat: float
    beat_name: str
    bar: float
    #: Offset of a downbeat, in [0, bar).
    downbeat: float
    time_signature: str
    title: str = ""


def load_piece(piece: str):
    """The music21 score of a corpus piece (``path`` or ``path#number``; a collection's first tune if it
    has several and no number is given)."""
    from music21 import corpus, stream

    path, _, number = piece.partition("#")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        score = corpus.parse(path, number=int(number)) if number else corpus.parse(path)
    if isinstance(score, stream.Opus):
        score = score.scores[0]
    return score


def beat_of(numerator: int, denominator: int) -> tuple[float, str]:
    """The metrical beat (quarter lengths, name) tempo is counted in: the dotted quarter in 6/8, 9/8,
    12/8, the eighth in other x/8 meters, the sixteenth in x/16, else the quarter note."""
    if denominator == 8 and numerator % 3 == 0 and numerator > 3:
        return 1.5, "dotted quarter"
    if denominator == 8:
        return 0.5, "eighth"
    if denominator == 16:
        return 0.25, "sixteenth"
    return 1.0, "quarter"


def music_from_score(score) -> Music:
    """Notes of every part (ties merged, grace notes and chord symbols left out), meter and title."""
    from music21 import stream

    if isinstance(score, stream.Opus):
        score = score.scores[0]
    containers = list(score.parts) or [score]
    parts: list[list[tuple[float, float, int]]] = []
    for part in containers:
        notes = []
        for el in part.stripTies().flatten().notes:
            if "ChordSymbol" in el.classes or not hasattr(el, "pitches"):
                continue
            dur = float(el.duration.quarterLength)
            if dur <= 0:
                continue
            notes += [(float(el.offset), dur, int(p.midi)) for p in el.pitches if p is not None]
        if notes:
            parts.append(sorted(notes))
    if not parts:
        raise ValueError("the score has no pitched notes")
    first = min(n[0] for p in parts for n in p)
    parts = [[(on - first, d, m) for on, d, m in p] for p in parts]
    end = max(on + d for p in parts for on, d, _ in p)

    ts = score.recurse().getElementsByClass("TimeSignature").first()
    num, den = (ts.numerator, ts.denominator) if ts is not None else (4, 4)
    bar = num * 4.0 / den
    beat, beat_name = beat_of(num, den)
    measures = list(containers[0].getElementsByClass("Measure"))
    downbeat_at = float(measures[1].offset) if len(measures) > 1 else 0.0
    downbeat = (downbeat_at - first) % bar
    period = math.ceil(end / bar - 1e-6) * bar
    meta = score.metadata
    title = (meta.title or meta.movementName or "") if meta is not None else ""
    if re.search(r"\.(mxl|xml|musicxml|krn|abc)$", title):  # a file name, not a title
        title = ""
    return Music(parts, period, beat, beat_name, bar, downbeat, f"{num}/{den}", title)


def skyline(parts: Sequence[list[tuple[float, float, int]]]) -> list[tuple[float, float, int]]:
    """The top line of the music: at every moment the highest note sounding in any part (a note that
    becomes the highest when a higher one ends is struck again there). Silent only where every part is."""
    notes = sorted(((on, on + d, m) for p in parts for on, d, m in p if d > 0), key=lambda n: (n[0], -n[2]))
    points = sorted({t for on, end, _ in notes for t in (on, end)})
    out: list[list] = []
    current = None  # index into notes of the note being played
    active: list[int] = []
    nxt = 0
    for t in points:
        active = [i for i in active if notes[i][1] > t]
        while nxt < len(notes) and notes[nxt][0] <= t:
            if notes[nxt][1] > t:
                active.append(nxt)
            nxt += 1
        top = max(active, key=lambda i: (notes[i][2], -notes[i][0]), default=None)
        if top == current:
            continue
        if out and out[-1][1] > t:
            out[-1][1] = t
        if top is not None:
            out.append([t, notes[top][1], notes[top][2]])
        current = top
    return [(on, end - on, m) for on, end, m in out if end > on]


def fit_range(notes: list[tuple[float, float, int]], instrument: str) -> list[tuple[float, float, int]]:
    """Move a part by whole octaves into the instrument's range (fewest notes outside, then smallest move);
    notes still outside are folded in by octaves."""
    lo, hi = RANGES[instrument]
    pitches = np.array([m for _, _, m in notes])
    best = min(range(-4, 5), key=lambda k: (int(((pitches + 12 * k < lo) | (pitches + 12 * k > hi)).sum()), abs(k)))
    out = []
    for on, d, m in notes:
        m += 12 * best
        while m < lo:
            m += 12
        while m > hi:
            m -= 12
        out.append((on, d, m))
    return out


def assign(music: Music, inst: Instrumentation) -> list[tuple[list[tuple[float, float, int]], str, int]]:
    """(notes, instrument, velocity) per MIDI channel for an instrumentation class."""
    parts = music.parts
    median = [float(np.median([m for _, _, m in p])) for p in parts]
    by_pitch = [parts[i] for i in sorted(range(len(parts)), key=lambda i: -median[i])]
    melody = skyline(parts)
    first = inst.instruments[0]
    if inst.layout == "all":
        lines = [(p, first, 80) for p in parts]
    elif inst.layout == "melody":
        lines = [(melody, first, 90)]
    elif inst.layout == "quartet":
        if len(parts) < 2:
            raise ValueError("a string quartet needs a piece of several parts")
        roles = (["violin", "cello"] if len(parts) == 2 else
                 ["violin", "viola", "cello"] if len(parts) == 3 else
                 ["violin", "violin"] + ["viola"] * (len(parts) - 3) + ["cello"])
        lines = [(p, r, 80) for p, r in zip(by_pitch, roles)]
    elif inst.layout == "melody+bass":
        lines = [(melody, first, 90)] + ([(by_pitch[-1], first, 75)] if len(parts) > 1 else [])
    elif inst.layout == "lead+pad":
        lines = [(melody, first, 90)] + [(p, inst.instruments[1], 62) for p in parts]
    else:
        raise ValueError(f"unknown layout {inst.layout!r}")
    return [(fit_range(notes, name), name, vel) for notes, name, vel in lines]


def instruments_of(music: Music, inst: Instrumentation, drums: bool) -> list[str]:
    """The instruments a render of ``music`` really uses (distinct, in order), the drum kit last."""
    names = list(dict.fromkeys(name for _, name, _ in assign(music, inst)))
    return names + ([DRUM_KIT] if drums else [])


# ---------------------------------------------------------------------------------------------------------
# MIDI


TICKS_PER_QUARTER = 480


def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def drum_pattern(music: Music, end: float) -> list[tuple[float, int, int]]:
    """A steady beat until ``end`` (quarter lengths): kick on the bar's first beat (and every other beat in
    even meters), snare on the others, closed hi-hat on every half beat (every third of a dotted beat), one
    crash on the first downbeat. Returns (time, key, velocity)."""
    beat, bar = music.beat, music.bar
    n_beats = max(1, round(bar / beat))
    sub = 3 if beat == 1.5 else 2
    hits: list[tuple[float, int, int]] = []
    k0 = math.ceil(-music.downbeat / beat - 1e-9)
    k = k0
    while True:
        t = music.downbeat + k * beat
        if t >= end:
            break
        j = k % n_beats
        if j == 0 or (n_beats != 3 and j % 2 == 0):
            hits.append((t, KICK, 96))
        else:
            hits.append((t, SNARE, 84))
        for s in range(sub):
            ts = t + s * beat / sub
            if ts < end:
                hits.append((ts, CLOSED_HAT, 64 if s == 0 else 50))
        k += 1
    crash = music.downbeat
    if crash < end:
        hits.append((crash, CRASH, 80))
    return hits


def midi_file(music: Music, inst: Instrumentation, bpm: float, drums: bool, seconds: float,
              notes: bool = True) -> bytes:
    """A format-0 Standard MIDI File: the piece (looped) on the class's instruments at ``bpm`` on the metrical
    beat (left out if not ``notes``), with a drum beat if asked, for ``seconds`` plus a second and a half
    (notes cut there)."""
    quarters_per_minute = bpm * music.beat
    end = (seconds + 1.5) * quarters_per_minute / 60.0
    events: list[tuple[int, int, bytes]] = []  # (tick, order, bytes): note-offs before note-ons at a tick

    def tick(q: float) -> int:
        return int(round(q * TICKS_PER_QUARTER))

    channels = [c for c in range(16) if c != DRUM_CHANNEL]
    lines = assign(music, inst)
    first = min(on for part, _, _ in lines for on, _, _ in part)  # the render starts with its first note
    if first > 0:
        lines = [([(on - first, d, m) for on, d, m in part], name, v) for part, name, v in lines]
        music = replace(music, downbeat=(music.downbeat - first) % music.bar)
    if not notes:
        lines = []
    for i, (part, name, velocity) in enumerate(lines):
        ch = channels[i % len(channels)]
        if i < len(channels):
            events += [(0, -1, bytes([0xB0 | ch, 0, 0])), (0, -1, bytes([0xB0 | ch, 32, 0])),
                       (0, -1, bytes([0xC0 | ch, GM_PROGRAMS[name]])), (0, -1, bytes([0xB0 | ch, 7, 100])),
                       (0, -1, bytes([0xB0 | ch, 10, 64]))]
        playing: dict[int, list] = {}  # pitch -> [on, off] of the last note of that pitch on this channel
        spans: list[list] = []
        for rep in range(math.ceil(end / music.period)):
            for on, d, m in part:
                on += rep * music.period
                if on >= end:
                    break
                span = [on, min(on + d, end), m]
                last = playing.get(m)
                if last is not None and last[1] > on:  # same pitch sounding again on this channel: end it here
                    last[1] = on
                playing[m] = span
                spans.append(span)
        for on, off, m in spans:
            if tick(off) > tick(on):
                events.append((tick(on), 1, bytes([0x90 | ch, m, velocity])))
                events.append((tick(off), 0, bytes([0x80 | ch, m, 0])))
    if drums:
        for t, key, velocity in drum_pattern(music, end):
            events.append((tick(t), 1, bytes([0x90 | DRUM_CHANNEL, key, velocity])))
            events.append((tick(t + min(0.25, music.beat / 4)), 0, bytes([0x80 | DRUM_CHANNEL, key, 0])))
    events.sort(key=lambda e: (e[0], e[1]))
    tempo = int(round(60_000_000 / quarters_per_minute))
    track = bytearray(_vlq(0) + b"\xff\x51\x03" + tempo.to_bytes(3, "big"))
    now = 0
    for t, _, data in events:
        track += _vlq(t - now) + data
        now = t
    track += _vlq(max(0, tick(end) - now)) + b"\xff\x2f\x00"
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_QUARTER)
    return header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track)


# ---------------------------------------------------------------------------------------------------------
# Audio


def fluidsynth_version() -> str:
    exe = shutil.which("fluidsynth")
    if exe is None:
        return ""
    out = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"version\s+([\d.]+)", out)
    return m.group(1) if m else out.strip().splitlines()[0] if out.strip() else ""


def synthesize(midi: bytes, soundfont: Path = SOUNDFONT, rate: int = SYNTH_RATE) -> np.ndarray:
    """Render a MIDI file with the ``fluidsynth`` command line (fast-render, float WAV); mono float64."""
    import soundfile as sf

    exe = shutil.which("fluidsynth")
    if exe is None:
        raise RuntimeError("fluidsynth is not installed (Debian: apt-get install fluidsynth fluid-soundfont-gm)")
    if not Path(soundfont).is_file():
        raise RuntimeError(f"no SoundFont at {soundfont} (Debian: apt-get install fluid-soundfont-gm)")
    with tempfile.TemporaryDirectory(prefix="melscribe-render-") as d:
        mid, wav = Path(d) / "in.mid", Path(d) / "out.wav"
        mid.write_bytes(midi)
        cmd = [exe, "-ni", "-q", "-F", str(wav), "-r", str(rate), "-T", "wav", "-O", "float", "-g", "0.5",
               "-o", "synth.cpu-cores=1", str(soundfont), str(mid)]
        done = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if done.returncode != 0 or not wav.is_file():
            raise RuntimeError(f"fluidsynth failed ({done.returncode}): {done.stderr.strip()[-500:]}")
        audio, sr = sf.read(wav, dtype="float64", always_2d=True)
    if sr != rate:
        raise RuntimeError(f"fluidsynth wrote {sr} Hz, asked for {rate}")
    return audio.mean(axis=1)


def db(x: float) -> float:
    return 20.0 * math.log10(max(x, 1e-12))


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def limit(x: np.ndarray, ceiling: float, window: int) -> tuple[np.ndarray, float]:
    """Look-ahead peak limiter: gain = (moving average over ``window`` of (moving minimum over ``window`` of
    the gain each sample needs)), which is never above what any sample needs; returns (audio, max gain
    reduction in dB)."""
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    need = np.minimum(1.0, ceiling / np.maximum(np.abs(x), 1e-12))
    if need.min() >= 1.0:
        return x, 0.0
    window |= 1
    gain = uniform_filter1d(minimum_filter1d(need, window, mode="nearest"), window, mode="nearest")
    gain = np.minimum(gain, need)  # rounding only
    return np.clip(x * gain, -ceiling, ceiling), -db(float(gain.min()))


def highpass(audio: np.ndarray, rate: int, cutoff: float = 20.0) -> np.ndarray:
    """Second-order Butterworth high-pass: takes out DC, which some GM synth patches carry."""
    from scipy.signal import butter, sosfilt

    return sosfilt(butter(2, cutoff, btype="highpass", fs=rate, output="sos"), audio)


def lead_in(audio: np.ndarray, rate: int, below_db: float = -50.0) -> int:
    """Index where the sound starts: 5 ms before the first sample above ``below_db`` of the peak."""
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    if peak <= 0:
        raise ValueError("the render is silent")
    return max(0, int(np.argmax(np.abs(audio) > peak * 10 ** (below_db / 20))) - int(0.005 * rate))


def master(audio: np.ndarray, rate: int, sr: int = SAMPLE_RATE, seconds: float = CLIP_SECONDS,
           loudness_dbfs: float = LOUDNESS_DBFS, peak_dbfs: float = PEAK_DBFS) -> tuple[np.ndarray, dict]:
    """Resample to ``sr``, cut to ``seconds`` with a 50 ms fade-out, set the RMS to ``loudness_dbfs`` with
    peaks limited to ``peak_dbfs``. Returns (float32 audio, stats)."""
    from scipy.signal import resample_poly

    g = math.gcd(sr, rate)
    y = resample_poly(audio, sr // g, rate // g) if sr != rate else np.asarray(audio, dtype=np.float64)
    if not len(y) or float(np.max(np.abs(y))) <= 0:
        raise ValueError("the render is silent")
    n = int(round(seconds * sr))
    if len(y) < n:
        raise ValueError(f"the render is {len(y) / sr:.2f} s after trimming, {seconds} s needed")
    y = y[:n].copy()
    fade = min(n, int(0.05 * sr))
    y[n - fade:] *= np.linspace(1.0, 0.0, fade)
    ceiling = 10 ** (peak_dbfs / 20)
    target = 10 ** (loudness_dbfs / 20)
    x = y * (target / max(rms(y), 1e-12))
    reduction = 0.0
    for _ in range(6):
        out, reduction = limit(x, ceiling, int(0.05 * sr))
        err = loudness_dbfs - db(rms(out))
        if abs(err) < 0.05:
            break
        x = x * 10 ** (err / 20)
    return out.astype(np.float32), {"rms_dbfs": round(db(rms(out)), 2),
                                    "peak_dbfs": round(db(float(np.max(np.abs(out)))), 2),
                                    "limiter_db": round(reduction, 2)}


# ---------------------------------------------------------------------------------------------------------
# Tags


def tags(render: Render, inst: Instrumentation | None = None) -> dict[str, list[str]]:
    """The expected tags of a render: true by construction (``mtt``, ``msd``) and by rule (``*_style``)."""
    inst = inst or CLASSES[render.instrumentation]
    mtt = list(inst.mtt) + (["solo"] if inst.solo and not render.drums else [])
    mtt += list(DRUM_MTT) if render.drums else []
    mtt += [render.tempo_class]
    mtt += [] if inst.vocal else list(NO_VOICE_MTT)
    msd = list(inst.msd) + ([] if inst.vocal else ["instrumental"]) + (["acoustic"] if inst.acoustic else [])
    mtt_style: list[str] = []
    msd_style: list[str] = []
    if inst.classical and render.group != "folk" and not render.drums:
        mtt_style.append("classical")
    if render.group == "folk" and inst.acoustic and not render.drums:
        msd_style.append("folk")
    if render.instrumentation in ("synth_pad", "synth_lead"):
        mtt_style.append("electronic")
        msd_style.append("electronic")
        if render.instrumentation == "synth_pad" and render.tempo_class == "slow" and not render.drums:
            mtt_style.append("ambient")
            msd_style.append("ambient")
    if render.instrumentation == "guitar_distorted" and render.drums:
        mtt_style.append("rock")
        msd_style.append("rock")
    dedup = lambda xs: list(dict.fromkeys(xs))  # noqa: E731
    return {"mtt_tags": dedup(mtt), "msd_tags": dedup(msd), "mtt_style_tags": dedup(mtt_style),
            "msd_style_tags": dedup(msd_style)}


# ---------------------------------------------------------------------------------------------------------
# A set


MANIFEST_FIELDS = ("file", "piece", "title", "group", "instrumentation", "instruments", "gm_programs",
                   "has_drums", "tempo_bpm", "beat", "tempo_class", "time_signature", "seconds",
                   "sample_rate", "rms_dbfs", "peak_dbfs", "limiter_db", "twin", "mtt_tags", "msd_tags",
                   "mtt_style_tags", "msd_style_tags")
LIST_FIELDS = ("instruments", "gm_programs", "mtt_tags", "msd_tags", "mtt_style_tags", "msd_style_tags")


@dataclass
class Settings:
    """What a set's audio depends on besides its plan (kept in ``render_info.json``)."""

    seconds: float = CLIP_SECONDS
    sample_rate: int = SAMPLE_RATE
    synth_rate: int = SYNTH_RATE
    loudness_dbfs: float = LOUDNESS_DBFS
    peak_dbfs: float = PEAK_DBFS
    drum_level_db: float = DRUM_LEVEL_DB
    soundfont: str = str(SOUNDFONT)


def render_clip(music: Music, render: Render, settings: Settings) -> tuple[np.ndarray, dict]:
    """The audio (float32, mono) of one render and its stats. Drums are synthesized on their own and
    added at ``settings.drum_level_db`` (RMS) under the drum-less render, so the pair differs by the drum
    track only."""
    inst = CLASSES[render.instrumentation]
    soundfont = Path(settings.soundfont)
    midi = midi_file(music, inst, render.bpm, False, settings.seconds)
    audio = highpass(synthesize(midi, soundfont, settings.synth_rate), settings.synth_rate)
    start = lead_in(audio, settings.synth_rate)  # of the piece alone, so that a drum clip and its twin align
    if render.drums:
        kit = highpass(synthesize(midi_file(music, inst, render.bpm, True, settings.seconds, notes=False),
                                  soundfont, settings.synth_rate), settings.synth_rate)
        n = max(len(audio), len(kit))
        audio, kit = np.pad(audio, (0, n - len(audio))), np.pad(kit, (0, n - len(kit)))
        clip = slice(start, start + int(settings.seconds * settings.synth_rate))
        audio = audio + kit * (rms(audio[clip]) / max(rms(kit[clip]), 1e-12) * 10 ** (settings.drum_level_db / 20))
    audio = audio[start:]
    return master(audio, settings.synth_rate, settings.sample_rate, settings.seconds, settings.loudness_dbfs,
                  settings.peak_dbfs)


def write_wav(path: Path, audio: np.ndarray, sr: int) -> None:
    """Write a 16-bit PCM WAV through a temporary sibling and a rename."""
    import soundfile as sf

    tmp = temp_sibling(path)
    try:
        sf.write(tmp, audio, sr, subtype="PCM_16", format="WAV")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def verify_wav(path: Path, settings: Settings) -> dict | None:
    """Stats of an existing clip if it is complete (readable, right rate, mono, full length, finite, not
    silent), else ``None``."""
    import soundfile as sf

    try:
        audio, sr = sf.read(path, dtype="float32", always_2d=True)
    except Exception:  # noqa: BLE001 - unreadable is simply "not done"
        return None
    n = int(round(settings.seconds * settings.sample_rate))
    if sr != settings.sample_rate or audio.shape != (n, 1) or not np.isfinite(audio).all():
        return None
    peak = float(np.max(np.abs(audio)))
    if peak <= 0:
        return None
    return {"rms_dbfs": round(db(rms(audio[:, 0])), 2), "peak_dbfs": round(db(peak), 2)}


def read_manifest(path: Path) -> list[dict]:
    """Rows of a ``manifest.csv``, list fields split."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k in LIST_FIELDS:
            r[k] = [x for x in r.get(k, "").split(";") if x]
    return rows


def write_manifest(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=MANIFEST_FIELDS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ";".join(map(str, r[k])) if k in LIST_FIELDS else r[k] for k in MANIFEST_FIELDS})
    write_text_atomic(path, buf.getvalue())


def check_info(out: Path, info: dict) -> None:
    """Write ``render_info.json``, or check that an existing one has the same parameters."""
    path = out / "render_info.json"
    if path.is_file():
        old = json.loads(path.read_text(encoding="utf-8"))
        keys = [k for k in info if k not in ("versions",)]
        diff = {k: (old.get(k), info[k]) for k in keys if old.get(k) != info[k]}
        if diff:
            raise ValueError(f"{out} holds a set rendered with other parameters ({diff}); "
                             "choose another --out or delete it")
    write_text_atomic(path, json.dumps(info, indent=1) + "\n")


def render_set(out: Path, renders: Sequence[Render], settings: Settings = Settings(),
               loader: Callable[[str], object] = load_piece, progress: bool = True,
               info: dict | None = None) -> list[dict]:
    """Render ``renders`` into ``out`` (resumable), write ``manifest.csv``; returns the manifest rows."""
    from tqdm.auto import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = [r.file for r in renders]
    if len(set(files)) != len(files):
        raise ValueError("two renders share a file name")
    check_info(out, {**(info or {}), **asdict(settings), "n_clips": len(renders),
                     "versions": versions(settings)})
    manifest = out / "manifest.csv"
    previous = {r["file"]: r for r in read_manifest(manifest)} if manifest.is_file() else {}
    planned = set(files)
    rows: dict[str, dict] = {}
    by_piece: dict[str, list[Render]] = {}
    for r in renders:
        by_piece.setdefault(r.piece, []).append(r)
    bar = tqdm(total=len(renders), desc="rendering", unit="clip", disable=not progress)
    done_since_write = 0
    for piece, todo in by_piece.items():
        music = None
        for r in todo:
            stats = verify_wav(out / r.file, settings)
            old = previous.get(r.file)
            if stats is not None and old is not None:
                rows[r.file] = {**old, **tags(r)}  # labels as the code gives them now, stats as rendered
                bar.update()
                continue
            if music is None:
                bar.set_postfix_str(slug(piece)[:40])
                music = music_from_score(loader(piece))
            if stats is None:
                audio, stats = render_clip(music, r, settings)
                write_wav(out / r.file, audio, settings.sample_rate)
            rows[r.file] = row(r, music, settings, stats, r.twin.file if r.twin.file in planned else "")
            done_since_write += 1
            if done_since_write >= 10:
                write_manifest(manifest, [rows[f] for f in files if f in rows])
                done_since_write = 0
            bar.update()
    bar.close()
    result = [rows[f] for f in files]
    write_manifest(manifest, result)
    return result


def row(render: Render, music: Music, settings: Settings, stats: dict, twin: str) -> dict:
    inst = CLASSES[render.instrumentation]
    names = instruments_of(music, inst, render.drums)
    return {
        "file": render.file, "piece": render.piece, "title": music.title, "group": render.group,
        "instrumentation": render.instrumentation, "instruments": names,
        "gm_programs": [GM_PROGRAMS[n] if n in GM_PROGRAMS else "drums" for n in names],
        "has_drums": render.drums, "tempo_bpm": render.bpm, "beat": music.beat_name,
        "tempo_class": render.tempo_class, "time_signature": music.time_signature,
        "seconds": settings.seconds, "sample_rate": settings.sample_rate,
        "rms_dbfs": stats.get("rms_dbfs", ""), "peak_dbfs": stats.get("peak_dbfs", ""),
        "limiter_db": stats.get("limiter_db", ""), "twin": twin, **tags(render, inst),
    }


def versions(settings: Settings) -> dict:
    """Versions of what the audio depends on (recorded, not checked on resume)."""
    try:
        import music21

        m21 = music21.__version__
    except ImportError:
        m21 = ""
    sf2 = Path(settings.soundfont)
    return {"fluidsynth": fluidsynth_version(), "music21": m21,
            "soundfont_bytes": sf2.stat().st_size if sf2.is_file() else None}


def summary(rows: Sequence[dict]) -> str:
    """Clips per class and tempo (with drums in brackets), as a Markdown table."""
    counts: dict[tuple[str, str, bool], int] = {}
    for r in rows:
        drums = r["has_drums"] in (True, "True")
        key = (r["instrumentation"], r["tempo_class"], drums)
        counts[key] = counts.get(key, 0) + 1
    lines = ["| class | slow | fast | of which drums (slow/fast) | total |", "|---|---|---|---|---|"]
    tot = [0, 0, 0, 0]
    for c in CLASSES:
        s = sum(v for (k, t, _), v in counts.items() if k == c and t == "slow")
        f = sum(v for (k, t, _), v in counts.items() if k == c and t == "fast")
        ds, df = counts.get((c, "slow", True), 0), counts.get((c, "fast", True), 0)
        if s + f:
            lines.append(f"| {c} | {s} | {f} | {ds}/{df} | {s + f} |")
            tot = [tot[0] + s, tot[1] + f, tot[2] + ds, tot[3] + df]
    lines.append(f"| all | {tot[0]} | {tot[1]} | {tot[2]}/{tot[3]} | {tot[0] + tot[1]} |")
    return "\n".join(lines)
