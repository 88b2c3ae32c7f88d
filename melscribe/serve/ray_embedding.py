"""Filling the embedding cache of an index build on Ray Data (``melscribe index build --engine ray``).

:func:`embed_with_ray` embeds the chunks of descriptor-set texts that :mod:`melscribe.serve.embedding_cache` lacks
as a Ray Dataset: one row per chunk, ``map_batches`` over a pool of actors that each hold one
:class:`~melscribe.encoding.encoder.TextEncoder`. Each finished chunk comes back to this process (the driver),
which writes it into the cache atomically; the index build that follows then reads every chunk instead of
encoding it. A killed build keeps the chunks written so far, and the next one embeds only the rest.

Without an address a local Ray is started on this machine's cores and shut down afterwards; with one
(``HOST:PORT`` of a cluster's head, ``auto``, or ``ray://HOST:10001``) the driver joins that cluster and leaves it
running. Every node then needs melscribe and the model (each exports its own ONNX graph under its own
``MELSCRIBE_HOME``); no shared filesystem is needed, since only the driver writes the cache. Shipping a chunk
back costs 12.6 MB (8,192 × 384 float32) against tens of seconds of encoding
(``experiments/results/ray_embedding.md``).

Every actor checks that its encoder embeds the probe text as the driver's does (the same weights, within the
ONNX export's tolerance); a node with another model is refused by name. With the ``onnx-int8`` backend each
text is encoded alone on a single-threaded session, so the chunks equal the local engine's bit for bit on the
same machine.

Fault tests stop the driver at :func:`~melscribe.fileio.pause_point` ``ray-chunk-written``, after it wrote a chunk.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Sequence

import numpy as np

from melscribe.config import available_cores
from melscribe.errors import DataError, InvalidRequestError, ModelUnavailableError
from melscribe.fileio import pause_point
from melscribe.serve import embedding_cache

log = logging.getLogger(__name__)

#: The embedding engines of an index build: ``local`` (this process, the default) and ``ray``.
ENGINES = ("local", "ray")


def embed_with_ray(encoder, texts: Sequence[str], *, address: str | None = None, workers: int | None = None,
                   batch_size: int = 64, progress: bool = True) -> Path:
    """Embed the chunks of ``texts`` missing from ``encoder``'s embedding cache on Ray and write them there;
    returns the chunk folder (:func:`~melscribe.serve.embedding_cache.cache_dir`). Starts no Ray when nothing
    is missing.

    ``address``: a Ray cluster to join (as ``ray.init`` takes it); ``None``: a local Ray on this machine's
    cores, shut down at the end (a Ray already initialised in this process is used as it is). ``workers``:
    actors, each with one encoder on ``cluster CPUs // workers`` cores (default: one actor per CPU); fewer
    when the cluster or the work is smaller. ``batch_size``: the encoder's batch (as the local engine's)."""
    folder = embedding_cache.cache_dir(encoder, texts)
    missing = embedding_cache.missing_chunks(encoder, texts)
    if not missing:
        return folder
    if workers is not None and workers < 1:
        raise InvalidRequestError(f"workers must be at least 1, not {workers}")
    ray = _import_ray()
    connected = _connect(ray, address)
    try:
        _fill(ray, encoder, texts, missing, folder, workers, batch_size, progress)
    finally:
        if connected:  # a local Ray stops; a joined cluster only loses this driver
            ray.shutdown()
    return folder


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise InvalidRequestError("the ray engine needs Ray Data: pip install 'melscribe[ray]'") from None
    return ray


def _connect(ray, address: str | None) -> bool:
    """Initialise Ray (a local one without ``address``); whether this call did (and must shut it down)."""
    if ray.is_initialized():
        return False
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
    if address is None:
        ray.init(address="local", num_cpus=available_cores(), include_dashboard=False, **quiet)
        return True
    _check_reachable(address)
    try:
        ray.init(address=address, **quiet)
    except Exception as e:  # ConnectionError, or a bad address: say which
        raise InvalidRequestError(f"cannot join the Ray cluster at {address}: {e}") from None
    return True


def _check_reachable(address: str) -> None:
    """Refuse at once a ``HOST:PORT`` address where nothing listens (``ray.init`` retries it for minutes)."""
    host, sep, port = address.split("://", 1)[-1].rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto" and the like: ray.init finds the cluster or says why not
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=10).close()
    except OSError as e:
        raise InvalidRequestError(f"cannot join the Ray cluster at {address}: nothing answers there "
                                  f"({e.strerror or e}); start it with `ray start --head`, or check the address") from None


def _fill(ray, encoder, texts: Sequence[str], missing: list[int], folder: Path, workers: int | None,
          batch_size: int, progress: bool) -> None:
    """Embed the ``missing`` chunks on the actor pool and write each into ``folder`` as it arrives."""
    from tqdm.auto import tqdm

    nodes = [int(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n["Alive"]]
    cpus = max(1, sum(nodes))
    workers = min(workers or cpus, len(missing))  # no more actors than chunks
    threads = max(1, min(max(nodes, default=1), cpus // workers))
    workers = max(1, min(workers, sum(c // threads for c in nodes)))  # as many as the nodes hold
    log.info("embedding %d of %d chunks on Ray: %d actors of %d cores", len(missing),
             embedding_cache.chunk_count(len(texts)), workers, threads)
    rows = [{"chunk": i, "texts": embedding_cache.chunk_texts(texts, i)} for i in missing]
    ds = ray.data.from_items(rows, override_num_blocks=len(rows))
    ds.context.enable_progress_bars = False  # the driver shows its own bar, per chunk
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
    ds = ds.map_batches(ChunkEmbedder, batch_size=1, num_cpus=threads,
                        compute=ray.data.ActorPoolStrategy(size=workers),
                        fn_constructor_kwargs={"source": encoder.source, "backend": encoder.backend,
                                               "probe": np.asarray(encoder.probe), "threads": threads,
                                               "batch_size": batch_size})
    with tqdm(total=len(missing), desc=f"Ray embedding ({workers} actors)", unit="chunk", disable=not progress) as bar:
        for row in ds.iter_rows():
            if row["problem"]:
                raise ModelUnavailableError(row["problem"])
            i = int(row["chunk"])
            part = np.asarray(row["embeddings"], dtype=np.float32)
            if part.shape != (len(embedding_cache.chunk_texts(texts, i)), encoder.dim):
                raise ModelUnavailableError(f"a Ray worker returned embeddings of shape {part.shape} for chunk {i}")
            problem = embedding_cache.write_chunk(embedding_cache.chunk_path(folder, i), part)
            if problem:
                raise DataError(f"cannot keep the Ray engine's embeddings under {folder} ({problem}): free space, "
                                "or set MELSCRIBE_HOME to a writable folder")
            pause_point("ray-chunk-written")
            bar.update()


class ChunkEmbedder:
    """A Ray Data actor: one encoder of ``source`` on ``backend`` (``threads`` onnxruntime threads), which
    embeds the chunks of its batches. Its encoder's probe must match ``probe`` (the driver's): else, or when
    the model cannot be loaded on its node, every batch answers the problem instead of embeddings."""

    def __init__(self, *, source: str, backend: str, probe: np.ndarray, threads: int, batch_size: int):
        from melscribe.encoding.encoder import TextEncoder
        from melscribe.encoding.onnx_backend import PROBE_TOLERANCE, THREADS_ENV

        os.environ[THREADS_ENV] = str(threads)
        self.batch_size, self.problem, self.dim = batch_size, "", len(probe)
        node = socket.gethostname()
        try:
            self.encoder = TextEncoder(source, backend=backend)
        except Exception as e:  # noqa: BLE001 - reported to the driver, which raises it plainly
            self.problem = f"the Ray worker on {node} cannot load {source} ({backend}): {e}"
            return
        got = np.asarray(self.encoder.probe)
        if got.shape != probe.shape or 1 - float(got @ probe) > PROBE_TOLERANCE:
            self.problem = (f"the Ray worker on {node} embeds with other weights than the driver's {source} "
                            f"({backend}): install the same model on every node")

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``batch``: one chunk (``chunk``, ``texts``) → ``chunk``, ``embeddings`` and ``problem`` ("" if none)."""
        chunk = [list(map(str, t)) for t in batch["texts"]]
        if self.problem:  # a placeholder row: the driver raises the problem
            parts = [np.zeros((1, self.dim), np.float32) for _ in chunk]
        else:
            parts = [self.encoder.encode(t, batch_size=self.batch_size) for t in chunk]
        return {"chunk": batch["chunk"], "embeddings": np.stack(parts), "problem": np.array([self.problem] * len(chunk))}
