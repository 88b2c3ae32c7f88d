"""Sub-commands of ``melscribe``: ``index build|info``, ``recommend``, ``serve``.

``register(subparsers)`` adds them to the ``melscribe`` argument parser; each sets ``func`` to its handler,
which takes the parsed arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .index import KINDS, DescriptorIndex, TextEncoder, default_model, display_name
from .recommend import Recommendation, Recommender, build_index, index_cache_dir, load_catalog


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``index``, ``recommend`` and ``serve`` sub-commands."""
    p = subparsers.add_parser("index", help="build or describe the descriptor-set index",
                              description="Build the index of a catalog's descriptor sets, or describe one.")
    actions = p.add_subparsers(dest="index_command", required=True, metavar="ACTION")
    b = actions.add_parser("build", help="embed a catalog's descriptor sets and save the index",
                           description="Embed a catalog's descriptor sets and save the index (replacing any).")
    _add_source_arguments(b)
    b.set_defaults(func=cmd_index_build)
    i = actions.add_parser("info", help="describe an index as JSON",
                           description="Describe the index of --index-dir, or the cached index of a model and catalog.")
    _add_source_arguments(i)
    i.set_defaults(func=cmd_index_info)

    p = subparsers.add_parser("recommend", help="recommend tracks for a request",
                              description="Recommend tracks of a catalog for a natural-language request.")
    p.add_argument("request", help="the request, in quotes")
    p.add_argument("-k", type=int, default=10, help="number of tracks (default 10)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--exclude-track", action="append", default=[], metavar="ID", help="never return this track")
    p.add_argument("--require", action="append", default=[], metavar="DESCRIPTOR",
                   help="return only tracks with this descriptor")
    p.add_argument("--exclude", action="append", default=[], metavar="DESCRIPTOR",
                   help="return no track with this descriptor")
    _add_source_arguments(p, serving=True)
    p.set_defaults(func=cmd_recommend)

    p = subparsers.add_parser("serve", help="serve the HTTP API",
                              description="Serve GET /health and POST /recommend over HTTP (uvicorn).")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--max-body-bytes", type=int, default=None, metavar="N",
                   help="refuse request bodies over N bytes with 413 (default 262144)")
    p.add_argument("--max-k", type=int, default=None, metavar="N", help="refuse k over N with 400 (default 1000)")
    _add_source_arguments(p, serving=True)
    p.set_defaults(func=cmd_serve)


def _add_source_arguments(p: argparse.ArgumentParser, *, serving: bool = False) -> None:
    p.add_argument("--model", help="sentence encoder name or folder (default: the trained bi-encoder under "
                                   "$MELSCRIBE_HOME if any, else the packaged all-MiniLM-L6-v2)")
    p.add_argument("--catalog", type=Path, help="catalog file: .csv, .jsonl or .parquet (default: MusicCaps)")
    p.add_argument("--data-dir", help="data directory for the MusicCaps catalog (default: $MELSCRIBE_DATA)")
    p.add_argument("--index-dir", type=Path, help="index folder (default: a cache under $MELSCRIBE_HOME/indexes)")
    p.add_argument("--kind", choices=KINDS, default="auto",
                   help="index kind; auto: exact up to 20k sets, HNSW up to 500k, IVF above (default auto)")
    if serving:
        p.add_argument("--fusion", action="store_true", help="fuse the dense ranking with TF-IDF (RRF)")
        p.add_argument("--audio-folder", type=Path, help="add the audio files of this folder as audio-only tracks")
        p.add_argument("--audio-model", help="CLAP checkpoint (name or folder) for --audio-folder "
                                             "(default: config.DEFAULT_CLAP)")


def _encoder(args: argparse.Namespace) -> TextEncoder:
    model = args.model or default_model()
    print(f"model: {display_name(model)}", file=sys.stderr)
    return TextEncoder(model)


def _recommender(args: argparse.Namespace) -> Recommender:
    catalog = load_catalog(args.catalog, args.data_dir)  # before the model: a bad catalog fails fast
    encoder = _encoder(args)
    if getattr(args, "audio_folder", None):
        from ..config import DEFAULT_CLAP
        from .audio import ClapAudioTextModel

        clap = ClapAudioTextModel.from_pretrained(args.audio_model or DEFAULT_CLAP)
        catalog = catalog.with_audio_folder(args.audio_folder, clap)
    return Recommender(encoder, catalog, index_dir=args.index_dir, index_kind=args.kind,
                       fusion=getattr(args, "fusion", False))


def cmd_index_build(args: argparse.Namespace) -> None:
    """``melscribe index build``: (re)build and save the index of a catalog."""
    catalog = load_catalog(args.catalog, args.data_dir)  # before the model: a bad catalog fails fast
    encoder = _encoder(args)
    folder = args.index_dir or index_cache_dir(encoder.name, catalog.fingerprint(), args.kind)
    index = build_index(catalog, encoder, folder, args.kind)
    print(f"{index.kind} index of {len(index)} descriptor sets ({len(catalog)} tracks) → {folder}")


def cmd_index_info(args: argparse.Namespace) -> None:
    """``melscribe index info``: describe an index as JSON (without loading the model)."""
    folder = args.index_dir
    if folder is None:
        catalog = load_catalog(args.catalog, args.data_dir)
        folder = index_cache_dir(display_name(args.model or default_model()), catalog.fingerprint(), args.kind)
    print(json.dumps(DescriptorIndex.load(folder).info(), indent=2))


def cmd_recommend(args: argparse.Namespace) -> None:
    """``melscribe recommend``: print the top tracks for a request as a table or JSON."""
    results = _recommender(args).recommend(args.request, args.k, exclude_tracks=args.exclude_track,
                                           require_descriptors=args.require, exclude_descriptors=args.exclude)
    if getattr(results, "low_confidence", False):
        print("warning: low confidence: the request resembles nothing in the catalog (another language, emoji or "
              "gibberish?); these results are likely poor", file=sys.stderr)
    print(json.dumps([r.to_dict() for r in results], indent=2) if args.json else format_table(results))


def cmd_serve(args: argparse.Namespace) -> None:
    """``melscribe serve``: serve the HTTP API with uvicorn."""
    import uvicorn

    from . import api

    limits = {"max_body_bytes": args.max_body_bytes or api.MAX_BODY_BYTES, "max_k": args.max_k or api.MAX_K}
    uvicorn.run(api.create_app(_recommender(args), **limits), host=args.host, port=args.port)


def format_table(results: list[Recommendation]) -> str:
    """Recommendations as an aligned text table: rank, score, track, matched descriptors."""
    if not results:
        return "no track matches"
    rows = [("rank", "score", "track", "matched descriptors")]
    rows += [(str(r.rank), f"{r.score:.3f}", r.track_id + (" (audio)" if r.inferred else ""),
              ", ".join(r.matched_descriptors)) for r in results]
    widths = [max(len(row[c]) for row in rows) for c in range(3)]
    return "\n".join(f"{a:>{widths[0]}}  {b:>{widths[1]}}  {c:<{widths[2]}}  {d}".rstrip() for a, b, c, d in rows)
