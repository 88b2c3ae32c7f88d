""":class:`MusicnnTagger`: 50-tag probabilities of 16 kHz audio from musicnn's pretrained models, in PyTorch.

The weights come from the PyPI package ``musicnn`` 0.1.0 (ISC licence), installed without its
TensorFlow dependency (``pip install --no-deps musicnn==0.1.0``). Its package is never imported:
its model folders are located through ``importlib.util.find_spec``, and its tag lists are read from
``configuration.py`` with :func:`ast.literal_eval`. The TensorFlow checkpoint is converted once
into a torch state dict and an ONNX graph of the network (sigmoid included), cached under
``<MELSCRIBE_HOME>/audio-models/<name>/`` (written atomically), beside a ``meta.json`` recording the
SHA-256 of the source checkpoint and of each cached file; a cache whose hashes do not match is
rebuilt with a warning.

Two backends run the network: ``"onnx"`` (default), ONNX Runtime, and ``"torch"``.
They agree within 1e-6; ONNX Runtime tags 2–3 times faster on a 2-core CPU
(``experiments/results/musicnn_faithful.md``).

A clip's tags are musicnn's taggram mean: log-mel frames (:mod:`.frontend`, float32 where musicnn
overflowed in float16), cut into non-overlapping 187-frame (~3 s) patches, sigmoid probabilities
per patch, averaged over the patches. ``experiments/musicnn_faithful.py`` checks the port against
the original TensorFlow graph.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from melscribe.audio.musicnn.checkpoint import DATA_FILE, INDEX_FILE, read_checkpoint
from melscribe.audio.musicnn.frontend import N_MELS, PATCH_FRAMES, SAMPLE_RATE, log_mel, patches
from melscribe.audio.musicnn.names import TAGGERS, MODELS
from melscribe.audio.musicnn.network import Musicnn, Vgg, build_network
from melscribe.config import home_dir
from melscribe.errors import DataError, InvalidRequestError
from melscribe.fileio import replace_dir, temp_sibling

INSTALL_HINT = "pip install --no-deps musicnn==0.1.0"
BACKENDS = ("onnx", "torch")
WEIGHTS_FILE, ONNX_FILE, META_FILE = "weights.pt", "model.onnx", "meta.json"
BATCH_PATCHES = 64
#: An export must give the network's probabilities this closely before it is cached.
EXPORT_TOLERANCE = 1e-5


class MusicnnTagger:
    """One of musicnn's four taggers (see :data:`TAGGERS`), ported to PyTorch; load with :meth:`load`."""

    sample_rate = SAMPLE_RATE

    def __init__(self, name: str, network: Musicnn | Vgg, tags: Sequence[str], session=None) -> None:
        self.name = name
        self.network = network.eval()
        self.tags: tuple[str, ...] = tuple(tags)
        self._session = session

    @property
    def backend(self) -> str:
        """``"onnx"`` when an ONNX Runtime session runs the network, else ``"torch"``."""
        return "torch" if self._session is None else "onnx"

    @classmethod
    def load(cls, name: str = "musicnn-mtt", *, cache_dir: str | os.PathLike | None = None,
             backend: str = "onnx") -> MusicnnTagger:
        """The tagger ``name`` on ``backend`` (one of :data:`BACKENDS`), its weights read from the cache
        under ``cache_dir`` (default ``<MELSCRIBE_HOME>/audio-models``) or converted from the installed
        ``musicnn`` package.

        Raises :class:`InvalidRequestError` for an unknown name or backend, :class:`DataError` when
        ``musicnn`` is not installed or its files are unreadable.
        """
        if name not in MODELS:
            raise InvalidRequestError(f"unknown musicnn tagger {name!r}; choose one of {', '.join(TAGGERS)}")
        if backend not in BACKENDS:
            raise InvalidRequestError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        folder_name, architecture, labels = MODELS[name]
        package = musicnn_package_dir()
        source = package / folder_name
        cache = Path(cache_dir) if cache_dir is not None else home_dir() / "audio-models"
        network = _cached_network(architecture, source, cache / name)
        session = _onnx_session(cache / name / ONNX_FILE) if backend == "onnx" else None
        return cls(name, network, read_labels(package, labels), session)

    def patch_probabilities(self, patches: np.ndarray) -> np.ndarray:
        """Sigmoid tag probabilities ``(n, 50)`` float32 of log-mel patches ``(n, 187, 96)``."""
        x = np.asarray(patches, dtype=np.float32)
        if x.ndim != 3 or x.shape[1:] != (PATCH_FRAMES, N_MELS):
            raise InvalidRequestError(f"patches must have shape (n, {PATCH_FRAMES}, {N_MELS}); got {x.shape}")
        out = np.empty((len(x), len(self.tags)), dtype=np.float32)
        for start in range(0, len(x), BATCH_PATCHES):
            chunk = np.ascontiguousarray(x[start : start + BATCH_PATCHES])
            out[start : start + len(chunk)] = self._run(chunk)
        return out

    def _run(self, chunk: np.ndarray) -> np.ndarray:
        """Probabilities of one chunk of patches through the session or the torch network."""
        if self._session is not None:
            return self._session.run(None, {"patches": chunk})[0]
        with torch.inference_mode():
            return torch.sigmoid(self.network(torch.from_numpy(chunk))).numpy()

    def tag_probabilities(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        """Tag probabilities ``(len(waveforms), 50)`` float32 of 16 kHz mono waveforms: the mean of the
        per-patch probabilities over each clip's 3-second patches.

        A clip shorter than one patch (~3 s) is repeated end to end to fill one (see
        :func:`.frontend.patches`). Raises :class:`InvalidRequestError` on an empty or non-mono waveform.
        """
        if isinstance(waveforms, np.ndarray) and waveforms.ndim == 1:
            raise InvalidRequestError("pass a list of waveforms, not one waveform")
        rows, group = [], []  # clips' patches gathered until they fill a batch
        for waveform in waveforms:
            group.append(patches(log_mel(waveform)))
            if sum(len(p) for p in group) >= BATCH_PATCHES:
                rows += self._clip_means(group)
                group = []
        rows += self._clip_means(group)
        return np.stack(rows) if rows else np.zeros((0, len(self.tags)), dtype=np.float32)

    def _clip_means(self, per_clip: list[np.ndarray]) -> list[np.ndarray]:
        """The mean probabilities over each clip's patches, the clips' patches run together."""
        if not per_clip:
            return []
        probabilities = self.patch_probabilities(np.concatenate(per_clip))
        bounds = np.cumsum([len(p) for p in per_clip])[:-1]
        return [p.mean(axis=0) for p in np.split(probabilities, bounds)]

    def __repr__(self) -> str:
        return f"MusicnnTagger({self.name!r}, {len(self.tags)} tags, backend={self.backend!r})"


def musicnn_package_dir() -> Path:
    """The installed ``musicnn`` package's folder, found without importing it (which imports TensorFlow)."""
    spec = importlib.util.find_spec("musicnn")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise DataError(f"the musicnn package (its pretrained weights) is not installed: {INSTALL_HINT}")
    return Path(locations[0])


def read_labels(package: Path, variable: str) -> tuple[str, ...]:
    """The tag list ``variable`` (``MTT_LABELS`` or ``MSD_LABELS``) of musicnn's ``configuration.py``."""
    path = package / "configuration.py"
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == variable for t in node.targets):
                return tuple(ast.literal_eval(node.value))
    except (OSError, SyntaxError, ValueError) as e:
        raise DataError(f"cannot read {variable} from {path}: {e}; reinstall with {INSTALL_HINT}") from None
    raise DataError(f"{path} defines no {variable}; reinstall with {INSTALL_HINT}")


def _cached_network(architecture: str, source: Path, cache: Path) -> Musicnn | Vgg:
    """The network from the cache at ``cache`` if it matches ``source``'s checkpoint, else converted anew."""
    source_sha = _checkpoint_sha256(source)
    if cache.exists():
        try:
            return _read_cache(architecture, cache, source_sha)
        except DataError as e:
            warnings.warn(f"{e}; rebuilding it", stacklevel=4)
    network = build_network(architecture, read_checkpoint(source))
    _write_cache(network, cache, source_sha)
    return network


def _checkpoint_sha256(source: Path) -> str:
    """SHA-256 over a checkpoint's ``.index`` then ``.data`` file; a DataError when one is missing."""
    digest = hashlib.sha256()
    for file in (INDEX_FILE, DATA_FILE):
        try:
            digest.update((source / file).read_bytes())
        except OSError as e:
            raise DataError(f"musicnn checkpoint file {source / file} is unreadable ({e.strerror}); "
                            f"reinstall with {INSTALL_HINT}") from None
    return digest.hexdigest()


def _read_cache(architecture: str, cache: Path, source_sha: str) -> Musicnn | Vgg:
    """The cached network, after checking the recorded hashes; a DataError when it is stale or corrupt."""
    try:
        meta = json.loads((cache / META_FILE).read_text(encoding="utf-8"))
        hashes = {file: _file_sha256(cache / file) for file in (WEIGHTS_FILE, ONNX_FILE)}
    except (OSError, ValueError) as e:
        raise DataError(f"the musicnn weight cache {cache} is unreadable ({e})") from None
    if meta.get("source_sha256") != source_sha:
        raise DataError(f"the musicnn weight cache {cache} was converted from another checkpoint")
    for file, sha in hashes.items():
        if meta.get("sha256", {}).get(file) != sha:
            raise DataError(f"the musicnn weight cache file {cache / file} is corrupt (SHA-256 mismatch)")
    network = {"musicnn": Musicnn, "vgg": Vgg}[architecture]()
    try:
        network.load_state_dict(torch.load(cache / WEIGHTS_FILE, map_location="cpu", weights_only=True))
    except RuntimeError as e:
        raise DataError(f"the musicnn weight cache {cache} does not fit this version's network ({e})") from None
    return network.eval()


def _write_cache(network: Musicnn | Vgg, cache: Path, source_sha: str) -> None:
    """Write the state dict, the checked ONNX export and ``meta.json`` into a temporary folder, then
    rename it to ``cache``."""
    tmp = temp_sibling(cache)
    tmp.mkdir(parents=True)
    try:
        torch.save(network.state_dict(), tmp / WEIGHTS_FILE)
        _export_onnx(network, tmp / ONNX_FILE)
        hashes = {file: _file_sha256(tmp / file) for file in (WEIGHTS_FILE, ONNX_FILE)}
        meta = {"source_sha256": source_sha, "sha256": hashes}
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        replace_dir(tmp, cache, marker=META_FILE, what="converted tagger")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _Probabilities(torch.nn.Module):
    """The network followed by the sigmoid: what the ONNX graph computes."""

    def __init__(self, network: Musicnn | Vgg) -> None:
        super().__init__()
        self.network = network

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.network(patches))


def _export_onnx(network: Musicnn | Vgg, path: Path) -> None:
    """Export ``network`` (batch axis dynamic) to ``path``; a DataError unless ONNX Runtime then gives
    its probabilities within :data:`EXPORT_TOLERANCE` on a probe batch."""
    probe = torch.from_numpy(np.random.default_rng(0).uniform(0, 4, (3, PATCH_FRAMES, N_MELS)).astype(np.float32))
    graph = _Probabilities(network).eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter's deprecation notice
        torch.onnx.export(graph, (probe[:2],), str(path), input_names=["patches"], output_names=["probabilities"],
                          dynamic_axes={"patches": {0: "n"}, "probabilities": {0: "n"}}, opset_version=17,
                          dynamo=False)
        expected = graph(probe).numpy()
    drift = float(np.abs(_onnx_session(path).run(None, {"patches": probe.numpy()})[0] - expected).max())
    if drift > EXPORT_TOLERANCE:
        raise DataError(f"the ONNX export of the musicnn network differs from it by {drift:.1e}")


def _onnx_session(path: Path):
    """An ONNX Runtime session on ``path`` (its default threads: one per physical core)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
