"""Render a seeded set of real compositions (music21 corpus) through a General MIDI SoundFont, with exact
instrument, tempo and drum labels, for measuring an audio tagger (musicnn MTT/MSD tags) and audio retrieval.

    python experiments/render_music.py [--seed 0] [--n-pieces 40] [--per-piece 6] [--drums-per-piece 2]
        [--seconds 30] [--loudness -20] [--peak -1] [--drum-level -6] [--small] [--out DIR]

Default: 40 pieces × (6 instrumentations + 2 of them again with drums) = 320 clips of 30 s, mono 16 kHz,
into ``$MELSCRIBE_HOME/renders/seed0`` (7 minutes on 2 CPU cores, 307 MB). ``--small``: 4 pieces ×
(4 + 1) = 20 clips of 10 s into ``.../seed0-small``. Reruns resume. The logic and the choices (pieces,
instrumentation classes, General MIDI programs, tempo, loudness, tags) are documented in
``experiments/rendering.py``.

Needs ``music21`` (pip) and ``fluidsynth`` + ``fluid-soundfont-gm`` (Debian).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rendering import (CLASSES, CLIP_SECONDS, DRUM_LEVEL_DB, LOUDNESS_DBFS, PEAK_DBFS, PIECES,  # noqa: E402
                       SOUNDFONT, Settings, plan, render_set, summary)

from melscribe.config import home_dir  # noqa: E402

SMALL = {"n_pieces": 4, "per_piece": 4, "drums_per_piece": 1, "seconds": 10.0}


def default_out(seed: int, small: bool, loudness: float, peak: float, drum_level: float) -> Path:
    """``$MELSCRIBE_HOME/renders/seed<SEED>``, with ``-small`` and any non-default level appended."""
    name = f"seed{seed}" + ("-small" if small else "")
    if loudness != LOUDNESS_DBFS or peak != PEAK_DBFS:
        name += f"-rms{loudness:g}-peak{peak:g}"
    if drum_level != DRUM_LEVEL_DB:
        name += f"-drums{drum_level:g}"
    return home_dir() / "renders" / name


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"Instrumentation classes: {', '.join(CLASSES)}. Pieces are drawn from a fixed list of "
               f"{len(PIECES)} corpus pieces (rendering.PIECES).")
    p.add_argument("--seed", type=int, default=0, help="seed of the choice of pieces, classes and tempi (default 0)")
    p.add_argument("--n-pieces", type=int, default=None, help="pieces drawn (default 40; 4 with --small)")
    p.add_argument("--per-piece", type=int, default=None,
                   help="instrumentation classes per piece, half slow, half fast (default 6; 4 with --small)")
    p.add_argument("--drums-per-piece", type=int, default=None,
                   help="renders of each piece repeated with a drum kit (default 2; 1 with --small)")
    p.add_argument("--seconds", type=float, default=None,
                   help=f"clip length (default {CLIP_SECONDS:g}; 10 with --small)")
    p.add_argument("--loudness", type=float, default=LOUDNESS_DBFS,
                   help=f"RMS of every clip in dBFS (default {LOUDNESS_DBFS:g}; e.g. -10 for a 'loud' set like "
                        "commercial masters)")
    p.add_argument("--peak", type=float, default=PEAK_DBFS,
                   help=f"peak ceiling in dBFS, held by a look-ahead limiter (default {PEAK_DBFS:g})")
    p.add_argument("--drum-level", type=float, default=DRUM_LEVEL_DB,
                   help=f"RMS of the drum track relative to the piece's, in dB (default {DRUM_LEVEL_DB:g})")
    p.add_argument("--small", action="store_true", help="a quick set: 4 pieces, 20 clips of 10 s")
    p.add_argument("--soundfont", type=Path, default=SOUNDFONT, help=f"General MIDI SoundFont (default {SOUNDFONT})")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default $MELSCRIBE_HOME/renders/seed<SEED>[-small][-rms<L>-peak<P>])")
    p.add_argument("--dry-run", action="store_true", help="print the plan's composition and exit")
    args = p.parse_args(argv)

    base = SMALL if args.small else {"n_pieces": 40, "per_piece": 6, "drums_per_piece": 2, "seconds": CLIP_SECONDS}
    n_pieces = args.n_pieces if args.n_pieces is not None else base["n_pieces"]
    per_piece = args.per_piece if args.per_piece is not None else base["per_piece"]
    drums = args.drums_per_piece if args.drums_per_piece is not None else base["drums_per_piece"]
    seconds = args.seconds if args.seconds is not None else base["seconds"]
    renders = plan(n_pieces, args.seed, per_piece, drums)
    if args.dry_run:
        rows = [{"instrumentation": r.instrumentation, "tempo_class": r.tempo_class, "has_drums": r.drums}
                for r in renders]
        print(f"{len(renders)} clips from {n_pieces} pieces\n{summary(rows)}")
        return 0
    if shutil.which("fluidsynth") is None or not args.soundfont.is_file():
        p.error(f"needs the fluidsynth command and {args.soundfont} "
                "(Debian: apt-get install fluidsynth fluid-soundfont-gm)")
    out = args.out or default_out(args.seed, args.small, args.loudness, args.peak, args.drum_level)
    settings = Settings(seconds=seconds, loudness_dbfs=args.loudness, peak_dbfs=args.peak,
                        drum_level_db=args.drum_level, soundfont=str(args.soundfont))
    info = {"seed": args.seed, "n_pieces": n_pieces, "per_piece": per_piece, "drums_per_piece": drums}
    t0 = time.perf_counter()
    rows = render_set(out, renders, settings, info=info)
    size = sum(f.stat().st_size for f in out.iterdir() if f.is_file())
    print(f"{len(rows)} clips in {out} ({size / 1e6:.0f} MB), {time.perf_counter() - t0:.0f} s\n{summary(rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
