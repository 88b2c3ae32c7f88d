"""Sub-commands of ``melscribe``: ``index build|info``, ``recommend``, ``serve``.

``register(subparsers)`` adds them to the ``melscribe`` argument parser; each sets ``func`` to its handler,
which takes the parsed arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

from melscribe.argtypes import float_in, int_in
from melscribe.audio.models import load_audio_model
from melscribe.audio.musicnn import TAGGERS
from melscribe.audio.tagger_space import DEFAULT_TAGGER
from melscribe.encoding.encoder import BACKENDS, SERVING_BACKEND, TextEncoder, default_model, encoder_name
from melscribe.serve.index import KINDS, DescriptorIndex
from melscribe.serve.batching import MAX_BATCH, MAX_QUEUE, MAX_WAIT_MS
from melscribe.errors import InvalidRequestError
from melscribe.serve.catalog import Catalog
from melscribe.serve.recommend import Recommender, resolve_fusion
from melscribe.serve.request_checks import MAX_RERANK
from melscribe.serve.results import Recommendation
from melscribe.serve.ray_embedding import ENGINES, embed_with_ray
from melscribe.serve.store_setup import DEFAULT_SPARSE, build_index, build_milvus_store, index_cache_dir, load_catalog
from melscribe.serve.store import parse_store


#: ``--catalog none``: no catalog file, only the audio of ``--audio-folder``.
NO_CATALOG = "none"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``index``, ``recommend`` and ``serve`` sub-commands."""
    p = subparsers.add_parser("index", help="build or describe the descriptor-set index",
                              description="Build the index of a catalog's descriptor sets, or describe one.")
    actions = p.add_subparsers(dest="index_command", required=True, metavar="ACTION")
    b = actions.add_parser("build", help="embed a catalog's descriptor sets and save the index",
                           description="Embed a catalog's descriptor sets and save the index (replacing any).")
    _add_source_arguments(b)
    b.add_argument("--engine", choices=ENGINES, default="local",
                   help="what embeds the descriptor sets: local (this process, the default) or ray (a Ray Data actor "
                        "pool, each actor with one encoder; a local Ray on this machine's cores, or the cluster of "
                        "--ray-address; no faster than local on one machine: for a cluster; see docs/serving.md)")
    b.add_argument("--ray-address", metavar="ADDR",
                   help="with --engine ray: join the Ray cluster at ADDR (HOST:PORT of its head, auto, or "
                        "ray://HOST:10001) instead of starting a local Ray; it is left running")
    b.add_argument("--ray-workers", type=int_in(1), metavar="N",
                   help="with --engine ray: N actors, each on the cluster's CPUs / N cores (default: one per CPU)")
    b.set_defaults(func=cmd_index_build)
    i = actions.add_parser("info", help="describe an index as JSON",
                           description="Describe the index of --index-dir, or the cached index of a model and catalog.")
    _add_source_arguments(i)
    i.set_defaults(func=cmd_index_info)

    p = subparsers.add_parser("recommend", help="recommend tracks for a request",
                              description="Recommend tracks of a catalog for a natural-language request.")
    p.add_argument("request", help="the request, in quotes")
    p.add_argument("-k", type=int_in(1), default=10, help="number of tracks (default 10)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--exclude-track", action="append", default=[], metavar="ID", help="never return this track")
    p.add_argument("--require", action="append", default=[], metavar="DESCRIPTOR",
                   help="return only tracks with this descriptor")
    p.add_argument("--exclude", action="append", default=[], metavar="DESCRIPTOR",
                   help="return no track with this descriptor")
    p.add_argument("--rerank", type=int_in(0, MAX_RERANK), default=0, metavar="N",
                   help="re-score the best N descriptor sets with the music cross-encoder (the teacher a GPL recipe "
                        "publishes beside the model, or --reranker); N = 50 adds about 280 ms a request on 2 CPU cores "
                        "(bench_rerank.md) (default 0: off)")
    _add_source_arguments(p, serving=True)
    p.set_defaults(func=cmd_recommend)

    p = subparsers.add_parser("serve", help="serve the HTTP API",
                              description="Serve the page at GET / (open it in a browser), POST /recommend, GET /audio/{track_id} "
                                          "and GET /health over HTTP (uvicorn).")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int_in(1, 65535), default=8000, help="port, 1 to 65535 (default 8000)")
    p.add_argument("--max-batch", type=int_in(1, 4096), default=MAX_BATCH,
                   help=f"most concurrent requests encoded as one batch (default {MAX_BATCH})")
    p.add_argument("--max-wait-ms", type=float_in(0, 60_000), default=MAX_WAIT_MS,
                   help=f"how long a request waits for others to share its batch (default {MAX_WAIT_MS} ms)")
    p.add_argument("--max-queue", type=int_in(1), default=MAX_QUEUE,
                   help=f"requests allowed to wait; beyond, the server answers 503 (default {MAX_QUEUE})")
    p.add_argument("--max-body-bytes", type=int_in(64), default=None, metavar="N",
                   help="refuse request bodies over N bytes with 413 (default 262144)")
    p.add_argument("--max-k", type=int_in(1), default=None, metavar="N", help="refuse k over N with 400 (default 1000)")
    _add_source_arguments(p, serving=True)
    p.set_defaults(func=cmd_serve)


def _add_source_arguments(p: argparse.ArgumentParser, *, serving: bool = False) -> None:
    p.add_argument("--model", help="sentence encoder name or folder (default: the trained bi-encoder under "
                                   "$MELSCRIBE_HOME if any, else the packaged all-MiniLM-L6-v2)")
    p.add_argument("--catalog", type=_catalog_arg,
                   help="catalog file: .csv, .jsonl or .parquet (default: MusicCaps); none: only the audio files of "
                        "--audio-folder")
    p.add_argument("--data-dir", help="data directory for the MusicCaps catalog (default: $MELSCRIBE_DATA)")
    p.add_argument("--index-dir", type=Path, help="index folder (default: a cache under $MELSCRIBE_HOME/indexes)")
    p.add_argument("--kind", choices=KINDS, default="auto",
                   help="index kind; auto: exact up to 20k sets, HNSW up to 500k, IVF above (default auto)")
    p.add_argument("--store", type=_store_arg, default="faiss", metavar="STORE",
                   help="where the descriptor sets are kept: faiss (an index in this process, the default), "
                        "milvus:PATH.db (Milvus Lite, a local file) or milvus://HOST:PORT (a Milvus server or cluster); "
                        "see docs/serving.md, Scaling out")
    p.add_argument("--backend", choices=BACKENDS, default=SERVING_BACKEND,
                   help="encoder backend: torch, onnx (same embeddings, faster), onnx-int8, static or student (the "
                        f"fast student trained with the model; see the README) (default {SERVING_BACKEND})")
    p.add_argument("--audio-folder", type=Path,
                   help="add the audio files under this folder (WAV, FLAC, OGG, MP3) as audio-only tracks, "
                        "described by --audio-model")
    p.add_argument("--audio-model", metavar="NAME", default=None,
                   help=f"audio model for --audio-folder: {', '.join(TAGGERS)} (a music tagger read offline, in the "
                        f"bi-encoder's space; default {DEFAULT_TAGGER}), clap or clap:NAME_OR_FOLDER")
    if serving:
        p.add_argument("--fusion", action=argparse.BooleanOptionalAction, default=None,
                       help="fuse the dense ranking with a lexical one (default: the fusion tuned by training when "
                            "the model has one, else none; --fusion without a tuned one: TF-IDF, equal-weight RRF)")
        p.add_argument("--no-intent", action="store_true",
                       help="do not read what requests reject (\"but not jazz\", \"no vocals\") to keep it out")
        p.add_argument("--reranker", help="music cross-encoder folder for re-ranking (default: the model's teacher/ "
                                          "if it has one); requests ask for it with rerank")


def _encoder(args: argparse.Namespace) -> TextEncoder:
    model = args.model or default_model()
    print(f"model: {encoder_name(model, args.backend)} ({args.backend} backend)", file=sys.stderr)
    return TextEncoder(model, backend=args.backend)


def _catalog_arg(value: str) -> Path | str:
    """``--catalog``: a file, or ``none`` for a catalog of ``--audio-folder`` alone."""
    return NO_CATALOG if value.lower() == NO_CATALOG else Path(value)


def _store_arg(value: str) -> str:
    """``--store``: checked here (a bad value is a usage error), passed on as written."""
    try:
        parse_store(value)
    except InvalidRequestError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return value


def _catalog_and_encoder(args: argparse.Namespace) -> tuple[Catalog, TextEncoder]:
    """The catalog the arguments name (with the audio of ``--audio-folder``) and the encoder."""
    if args.catalog == NO_CATALOG and not args.audio_folder:
        raise InvalidRequestError("--catalog none needs --audio-folder: a catalog of that folder's audio alone")
    # a catalog file is read before the model is loaded: a bad catalog fails fast
    catalog = None if args.catalog == NO_CATALOG else load_catalog(args.catalog, args.data_dir)
    encoder = _encoder(args)
    if args.audio_folder:
        model = load_audio_model(args.audio_model, encoder)
        print(f"audio model: {model.name}", file=sys.stderr)
        catalog = (Catalog.from_audio_folder(args.audio_folder, model) if catalog is None
                   else catalog.with_audio_folder(args.audio_folder, model))
    return catalog, encoder


def _recommender(args: argparse.Namespace) -> Recommender:
    return _recommender_of(args, *_catalog_and_encoder(args))


def _recommender_of(args: argparse.Namespace, catalog: Catalog, encoder: TextEncoder) -> Recommender:
    """The recommender over ``catalog`` and ``encoder`` (loading or building its index)."""
    return Recommender(encoder, catalog, index_dir=args.index_dir, index_kind=args.kind,
                       fusion=getattr(args, "fusion", None), intent=not getattr(args, "no_intent", False),
                       reranker=getattr(args, "reranker", None), store=args.store)


def cmd_index_build(args: argparse.Namespace) -> None:
    """``melscribe index build``: (re)build and save the index of a catalog."""
    if args.engine != "ray" and (args.ray_address or args.ray_workers):
        raise InvalidRequestError("--ray-address and --ray-workers go with --engine ray")
    catalog, encoder = _catalog_and_encoder(args)
    kind, address = parse_store(args.store)
    if kind == "milvus":
        if args.engine == "ray":  # the store's build then reads every embedding from the cache
            embed_with_ray(encoder, catalog.set_texts(), address=args.ray_address, workers=args.ray_workers)
        fusion = resolve_fusion(None, encoder.source)
        store = build_milvus_store(catalog, encoder, address, lexical_name=fusion.lexical if fusion else DEFAULT_SPARSE)
        print(f"Milvus store of {len(store)} descriptor sets ({len(catalog)} tracks) → {address}")
        return
    folder = args.index_dir or index_cache_dir(encoder.name, catalog.fingerprint(), args.kind)
    index = build_index(catalog, encoder, folder, args.kind, engine=args.engine, ray_address=args.ray_address,
                        ray_workers=args.ray_workers)
    print(f"{index.kind} index of {len(index)} descriptor sets ({len(catalog)} tracks) → {folder}")


def cmd_index_info(args: argparse.Namespace) -> None:
    """``melscribe index info``: describe an index as JSON (without loading the model)."""
    kind, address = parse_store(args.store)
    if kind == "milvus":
        from melscribe.serve.milvus_store import MilvusStore

        print(json.dumps(MilvusStore.open(address).info(), indent=2))
        return
    folder = args.index_dir
    if folder is None:
        catalog = load_catalog(args.catalog, args.data_dir)
        folder = index_cache_dir(encoder_name(args.model or default_model(), args.backend), catalog.fingerprint(),
                                 args.kind)
    print(json.dumps(DescriptorIndex.load(folder).info(), indent=2))


def cmd_recommend(args: argparse.Namespace) -> None:
    """``melscribe recommend``: print the top tracks for a request as a table or JSON."""
    rec = _recommender(args)
    results = rec.recommend(args.request, args.k, exclude_tracks=args.exclude_track,
                            require_descriptors=args.require, exclude_descriptors=args.exclude, rerank=args.rerank)
    if results.low_confidence:
        print("warning: low confidence: the request resembles nothing in the catalog (another language, emoji or "
              "gibberish?); these results are likely poor", file=sys.stderr)
    if args.json:
        intent = rec.parse_intent(args.request).to_dict() if rec.intent else None
        print(json.dumps(results.to_dict(args.request, args.k, rec.encoder.name, intent), indent=2))
        return
    if rec.intent:
        print(printable(f"intent: {rec.parse_intent(args.request).describe()}"))
    print(format_table(results))


def cmd_serve(args: argparse.Namespace) -> None:
    """``melscribe serve``: serve the HTTP API with uvicorn."""
    import uvicorn

    from melscribe.encoding.onnx_backend import SPIN_ENV
    from melscribe.serve import api

    # Under concurrent load spinning onnxruntime threads take the cores the server's other threads need:
    # 219 against 156 requests/s at concurrency 8 here (experiments/results/bench_recommend.md). One request
    # at a time (recommend(), the CLI) keeps spinning, the faster there.
    os.environ.setdefault(SPIN_ENV, "0")
    limits = {"max_body_bytes": args.max_body_bytes or api.MAX_BODY_BYTES, "max_k": args.max_k or api.MAX_K}
    # the catalog and the model are read first (a bad one fails here); the index is then built while the
    # server already listens, its /health saying "building"
    catalog, encoder = _catalog_and_encoder(args)
    app = api.create_app(lambda: _recommender_of(args, catalog, encoder), **limits, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
                         max_queue=args.max_queue)
    uvicorn.run(app, host=args.host, port=args.port, timeout_keep_alive=api.KEEP_ALIVE_S,
                timeout_graceful_shutdown=api.SHUTDOWN_S)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` without control characters (terminal escape codes in a catalog's titles never reach the
    terminal), each replaced by a space."""
    return _CONTROL.sub(" ", text)


def track_label(metadata) -> str:
    """How a track is named in the table: "artist – title", the title, or the link; "" if none is known."""
    title, artist = metadata.get("title"), metadata.get("artist")
    if title:
        return f"{artist} – {title}" if artist else str(title)
    return str(metadata.get("url") or "")


def format_table(results: list[Recommendation]) -> str:
    """Recommendations as an aligned text table: rank, score, track, its title or link (when the catalog has
    one), matched descriptors (and, for a track kept only to fill the list, the rejected ones it carries)."""
    if not results:
        return "no track matches"
    labels = [track_label(r.metadata) for r in results]
    named = any(labels)
    rows = [["rank", "score", "track"] + (["title / link"] if named else []) + ["matched descriptors"]]
    for r, label in zip(results, labels):
        carried = (r.intent or {}).get("carries_avoided") or ()
        explained = ", ".join(r.matched_descriptors) + (f"  [carries avoided: {', '.join(carried)}]" if carried else "")
        rows.append([str(r.rank), f"{r.score:.3f}", printable(r.track_id) + (" (audio)" if r.inferred else "")]
                    + ([printable(label)] if named else []) + [printable(explained)])
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]) - 1)]
    return "\n".join("  ".join([f"{row[0]:>{widths[0]}}", f"{row[1]:>{widths[1]}}"]
                               + [f"{cell:<{w}}" for cell, w in zip(row[2:-1], widths[2:])] + [row[-1]]).rstrip()
                     for row in rows)
