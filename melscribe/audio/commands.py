"""Sub-command ``melscribe audio tag``: a music tagger's tags for audio files, and the descriptor set each
file would get as an audio-only track."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from melscribe.argtypes import float_in, int_in
from melscribe.audio.musicnn import TAGGERS
from melscribe.audio.tagger_space import DEFAULT_MAX_TAGS, DEFAULT_TAGGER, DEFAULT_THRESHOLD

#: Tags shown per file in the table (``--json`` gives all of them).
TABLE_TAGS = 5


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``audio`` sub-command."""
    p = subparsers.add_parser("audio", help="tag audio files with a music tagger",
                              description="Audio files seen by melscribe's offline music tagger.")
    actions = p.add_subparsers(dest="audio_command", required=True, metavar="ACTION")
    t = actions.add_parser(
        "tag", help="tags and descriptors of audio files",
        description="For each audio file (or each audio file under a folder: WAV, FLAC, OGG, MP3), the tagger's "
                    "tags with their probabilities, and the descriptor set the file gets as an audio-only track. "
                    "Files that cannot be decoded are listed with the reason and make the exit status 1.")
    t.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="audio files or folders")
    t.add_argument("--model", default=DEFAULT_TAGGER, choices=TAGGERS, help=f"tagger (default {DEFAULT_TAGGER})")
    t.add_argument("--threshold", type=float_in(0, 1), default=DEFAULT_THRESHOLD,
                   help=f"least probability of a descriptor (default {DEFAULT_THRESHOLD})")
    t.add_argument("--max-tags", type=int_in(1), default=DEFAULT_MAX_TAGS,
                   help=f"most descriptors per file (default {DEFAULT_MAX_TAGS})")
    t.add_argument("--json", action="store_true",
                   help='one JSON array: [{"path", "tags": [[tag, probability], ...] best first, "descriptors"}, '
                        '...]; an undecodable file as {"path", "error"}')
    t.set_defaults(func=cmd_audio_tag)


def _files(paths: list[Path]) -> list[Path]:
    """The files named, and the audio files under the folders named, in the order given."""
    from melscribe.audio.files import audio_files

    out: list[Path] = []
    for p in paths:
        out += audio_files(p) if p.is_dir() else [p]
    return out


def cmd_audio_tag(args: argparse.Namespace) -> int:
    """``melscribe audio tag``: print each file's tags and descriptors; 1 when some file could not be decoded."""
    import numpy as np

    from melscribe.audio.musicnn import MusicnnTagger
    from melscribe.audio.tagger_space import TagDescriber, tag_files

    files = _files(args.paths)
    tagger = MusicnnTagger.load(args.model)
    describer = TagDescriber(tagger.tags, threshold=args.threshold, max_tags=args.max_tags)
    tagged = tag_files(tagger, files)
    by_path = {str(p): row for p, row in zip(tagged.paths, tagged.embeddings)}
    errors = {str(p): reason for p, reason in tagged.failures}
    rows = []
    for path in map(str, files):
        if path in errors:
            rows.append({"path": path, "error": errors[path]})
            continue
        probabilities = by_path[path]
        order = np.argsort(-probabilities, kind="stable")
        rows.append({"path": path,
                     "tags": [[tagger.tags[j], round(float(probabilities[j]), 4)] for j in order],
                     "descriptors": [d for d, _ in describer.describe(probabilities[None])[0]]})
    print(json.dumps(rows, indent=2) if args.json else format_tags(rows))
    for path, reason in errors.items():
        print(f"melscribe: cannot tag {path}: {reason}", file=sys.stderr)
    return 1 if errors else 0


def format_tags(rows: list[dict]) -> str:
    """The rows of ``audio tag`` as a readable listing: each file, its best tags, its descriptors."""
    lines = []
    for row in rows:
        lines.append(row["path"])
        if "error" in row:
            lines.append(f"  error: {row['error']}")
            continue
        lines.append("  tags:        " + ", ".join(f"{t} {p:.2f}" for t, p in row["tags"][:TABLE_TAGS]))
        lines.append("  descriptors: " + ", ".join(row["descriptors"]))
    return "\n".join(lines)
