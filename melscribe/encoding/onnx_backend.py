"""The ``onnx`` backend of :class:`~melscribe.encoding.encoder.TextEncoder`: the transformer run by ONNX Runtime.

Once per model (keyed by :func:`~melscribe.encoding.models.model_fingerprint`), the sentence-transformers model is
loaded with PyTorch and its transformer exported with ``torch.onnx`` (inputs ``input_ids``,
``attention_mask`` and, if the model reads them, ``token_type_ids``, with dynamic batch and sequence axes;
output ``last_hidden_state``), then graph-optimised by ``onnxruntime.transformers`` (attention, embedding and
layer-norm fusions, fp32). The result is cached under ``$MELSCRIBE_HOME/onnx/<fingerprint>/`` with the
tokenizer and :data:`META_FILE` (pooling, maximum length, file sizes, the embedding of
:data:`~melscribe.encoding.encoder.PROBE_TEXT`); the folder is written atomically and verified on every load (files,
sizes, and the probe re-encoded within :data:`PROBE_TOLERANCE`); a broken cache is exported again.

At request time neither PyTorch nor sentence-transformers is needed: the ``tokenizers`` library tokenises
(truncating to the model's maximum length), batches are formed from texts of similar length and padded to
their longest, ONNX Runtime runs the graph, and the token embeddings are pooled as the model's ``Pooling``
module says (mean, CLS, max, mean/√length, or a concatenation of them; other modes are refused) and
L2-normalised. Every run uses one session (threads: :func:`session_settings`).

``onnx-int8`` is the same graph with dynamically quantised int8 weights (``onnxruntime.quantization``, one
scale per output channel), cached under ``onnx/<fingerprint>-int8/``, except the feed-forward
down-projections: the matrix products that read the GELU's output stay fp32 (:data:`QUANTIZATION`). Their
inputs carry the outliers that per-tensor activation scales handle worst; on the trained model they were 4
of the 5 nodes whose quantisation alone moved the embeddings most, and keeping them fp32 halves the drift
for a third of the products (README, *Encoder backends*). Faster, and its embeddings still differ a little
from fp32.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import warnings
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from melscribe.config import available_cores, home_dir, resolve_model
from melscribe.errors import ModelUnavailableError
from melscribe.fileio import replace_dir, temp_sibling

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
#: How ``onnx-int8`` graphs are quantised (recorded in :data:`META_FILE`; a cache of another scheme is redone).
QUANTIZATION = "int8 per-channel weights, fp32 GELU-fed MatMuls"
#: Operators whose output feeds the feed-forward down-projection kept fp32 by :data:`QUANTIZATION`.
GELU_OPS = ("Gelu", "BiasGelu", "FastGelu", "QuickGelu")
#: Environment variables overriding the session's threads and spinning (:func:`session_settings`).
THREADS_ENV, SPIN_ENV = "MELSCRIBE_ONNX_THREADS", "MELSCRIBE_ONNX_SPIN"
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
META_FILE = "melscribe_onnx.json"
#: Pooling modes of sentence-transformers' ``Pooling`` module that the backend implements.
POOLING_MODES = ("mean", "cls", "max", "mean_sqrt_len_tokens")
#: The exported graph must give embeddings this close (1 − cosine) to PyTorch's; a cached graph must give
#: its recorded probe embedding this closely again.
PROBE_TOLERANCE = 1e-4
#: Texts checked against PyTorch after an export: short, long (truncated), with padding in a batch.
CHECK_TEXTS = ("melscribe probe: upbeat tropical music with steel drums",
               "x", "  Sad piano ballad, slow and soft; female vocal!  ",
               "a fast aggressive heavy metal song with distorted guitars and screaming vocals " * 40)


class OnnxCacheError(Exception):
    """A cached export is missing, incomplete or gives other embeddings than when it was written."""


def cache_dir(model: str | os.PathLike, quantized: bool = False) -> Path:
    """Where the export of ``model`` is cached: ``$MELSCRIBE_HOME/onnx/<model fingerprint>[-int8]``."""
    from melscribe.encoding.models import model_fingerprint

    return home_dir() / "onnx" / (model_fingerprint(resolve_model(model)) + ("-int8" if quantized else ""))


class OnnxBackend:
    """An exported model, loaded from its cache folder (see :meth:`for_model`)."""

    def __init__(self, folder: str | os.PathLike):
        from tokenizers import Tokenizer

        self.folder = Path(folder)
        try:
            meta = json.loads((self.folder / META_FILE).read_text())
            if meta.get("version") != FORMAT_VERSION:
                raise OnnxCacheError(f"format version {meta.get('version')}, expected {FORMAT_VERSION}")
            for name, size in meta["files"].items():
                p = self.folder / name
                actual = p.stat().st_size if p.is_file() else None
                if actual != size:
                    raise OnnxCacheError(f"{p} is {'missing' if actual is None else f'{actual} of {size} bytes'}")
            if meta.get("quantized") and meta.get("quantization") != QUANTIZATION:
                raise OnnxCacheError(f"quantised as {meta.get('quantization')!r}, not {QUANTIZATION!r}")
            self.meta = meta
            self.dim = int(meta["dim"])
            self.max_seq_length = int(meta["max_seq_length"])
            self.pooling: list[str] = list(meta["pooling"])
            self.inputs: list[str] = list(meta["inputs"])
            self.do_lower_case = bool(meta["do_lower_case"])
            self.pad_id = int(meta["pad_id"])
            self._counter = Tokenizer.from_file(str(self.folder / TOKENIZER_FILE))
            self.threads, spin = session_settings()
            self._session = _session(self.folder / MODEL_FILE, self.threads, spin)
        except OnnxCacheError:
            raise
        except Exception as e:  # unreadable JSON or tokenizer, a graph onnxruntime refuses...
            raise OnnxCacheError(f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}") from None
        self._counter.no_padding()
        self._counter.no_truncation()
        self.tokenizer = Tokenizer.from_str(self._counter.to_str())
        self.tokenizer.enable_truncation(self.max_seq_length)
        #: int8 graphs quantise their activations with one scale per run: batched with others, a request got
        #: another embedding than alone (96.5 % of top-10 lists changed, encode_batches.md); each text runs alone.
        self.text_per_run = bool(meta.get("quantized"))

    @classmethod
    def for_model(cls, model: str | os.PathLike, *, quantized: bool = False) -> "OnnxBackend":
        """The backend of ``model`` (a name or folder): from the cache if it verifies, else exported (and
        cached) first. :class:`ModelUnavailableError` if the model cannot be loaded or exported."""
        folder = cache_dir(model, quantized)
        if folder.exists():
            try:
                backend = cls(folder)
                backend.verify()
                return backend
            except OnnxCacheError as e:
                warnings.warn(f"the ONNX export cached at {folder} is broken ({e}); exporting it again", stacklevel=3)
        export(model, folder, quantized=quantized)
        try:
            backend = cls(folder)
            backend.verify()
        except OnnxCacheError as e:  # written a moment ago: not a cache problem
            raise ModelUnavailableError(f"the ONNX export of {model!r} at {folder} does not load: {e}") from None
        return backend

    def verify(self) -> None:
        """Raise :class:`OnnxCacheError` unless the graph gives the probe embedding recorded at export."""
        try:
            probe = np.asarray(self.meta["probe"], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as e:
            raise OnnxCacheError(f"no readable probe embedding ({type(e).__name__})") from None
        got = self.encode([CHECK_TEXTS[0]], batch_size=1, progress=False, single_thread=True)[0]
        if got.shape != probe.shape or float(got @ probe) < 1 - PROBE_TOLERANCE:
            raise OnnxCacheError("its probe embedding differs from the one recorded at export")

    # ---- the backend interface ------------------------------------------------------------------
    def token_count(self, text: str) -> int:
        return len(self._counter.encode(self._prepare(text)).ids)

    @property
    def window_tokenizer(self):
        """The tokenizer without truncation: where :meth:`TextEncoder.windows` cuts a long text."""
        return self._counter

    def prepare(self, text: str) -> str:
        """``text`` as the tokenizer is given it (lower-cased if the model says so)."""
        return self._prepare(text)

    def set_max_seq_length(self, tokens: int) -> None:
        """Read at most ``tokens`` tokens per text (instead of the exported model's maximum length)."""
        self.max_seq_length = int(tokens)
        self.tokenizer.enable_truncation(self.max_seq_length)

    def encode(self, texts: Sequence[str], *, batch_size: int, progress: bool, single_thread: bool) -> np.ndarray:
        """Embeddings of ``texts`` (``single_thread`` is ignored: every run uses the one session)."""
        from tqdm.auto import tqdm

        encodings = self.tokenizer.encode_batch([self._prepare(t) for t in texts])
        ids = [e.ids for e in encodings]
        if self.text_per_run and len(ids) > 1:
            return self._encode_each(ids, progress)
        order = np.argsort([len(i) for i in ids], kind="stable")  # similar lengths batch together
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        batch_size = max(1, int(batch_size))
        for start in tqdm(range(0, len(order), batch_size), desc="onnx encode", unit="batch",
                          disable=not progress or len(order) <= batch_size):
            rows = order[start:start + batch_size]
            out[rows] = self._run(self._session, [ids[i] for i in rows])
        return out

    def _encode_each(self, ids: list[list[int]], progress: bool) -> np.ndarray:
        """One run per text, ``threads`` runs at a time on a single-threaded session: each embedding is the
        one the text gets alone, at less CPU per text than one padded run of a server batch
        (``experiments/results/encode_batches.md``). A lone text (a request) runs on the main session, on
        every core, the fastest for it."""
        from tqdm.auto import tqdm

        out = np.empty((len(ids), self.dim), dtype=np.float32)
        with tqdm(total=len(ids), desc="onnx encode", unit="text", disable=not progress) as bar:
            def run(i: int) -> None:
                out[i] = self._run(self._solo_session, [ids[i]])[0]
                bar.update()

            if self.threads == 1:
                for i in range(len(ids)):
                    run(i)
            else:
                list(self._runners.map(run, range(len(ids))))
        return out

    @cached_property
    def _solo_session(self):
        return _session(self.folder / MODEL_FILE, 1, False)

    @cached_property
    def _runners(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="melscribe-onnx")

    # ---- internals ------------------------------------------------------------------------------
    def _prepare(self, text: str) -> str:
        return text.lower() if self.do_lower_case else text

    def _run(self, session, batch: list[list[int]]) -> np.ndarray:
        longest = max(1, max(len(i) for i in batch))
        input_ids = np.full((len(batch), longest), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(batch), longest), dtype=np.int64)
        for r, ids in enumerate(batch):
            input_ids[r, :len(ids)] = ids
            mask[r, :len(ids)] = 1
        feed = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)}
        hidden = session.run(None, {name: feed[name] for name in self.inputs})[0]
        return _normalise(pool(hidden, mask, self.pooling))


def pool(hidden: np.ndarray, mask: np.ndarray, modes: Sequence[str]) -> np.ndarray:
    """Sentence embeddings from token embeddings ``hidden`` ``(batch, tokens, dim)`` and the attention
    ``mask`` ``(batch, tokens)``, as sentence-transformers' ``Pooling`` does for ``modes`` (concatenated)."""
    m = mask[..., None].astype(hidden.dtype)
    out = []
    for mode in modes:
        if mode in ("mean", "mean_sqrt_len_tokens"):
            count = np.clip(m.sum(axis=1), 1e-9, None)
            out.append((hidden * m).sum(axis=1) / (count if mode == "mean" else np.sqrt(count)))
        elif mode == "cls":
            out.append(hidden[np.arange(len(hidden)), mask.argmax(axis=1)])
        elif mode == "max":
            out.append(np.where(m > 0, hidden, -np.inf).max(axis=1))
        else:
            raise ValueError(f"unsupported pooling mode {mode!r}")
    return np.concatenate(out, axis=1) if len(out) > 1 else out[0]


def _normalise(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norm, 1e-12)).astype(np.float32)


def session_settings() -> tuple[int, bool]:
    """(threads, spinning) of the onnxruntime session: every core with spinning worker threads, the fastest
    for one request at a time; ``MELSCRIBE_ONNX_THREADS`` and ``MELSCRIBE_ONNX_SPIN`` (0/1) override them."""
    threads = int(os.environ.get(THREADS_ENV) or available_cores())
    spin = os.environ.get(SPIN_ENV, "1") not in ("0", "false", "")
    return max(1, threads), spin


def _session(path: Path, threads: int, spin: bool):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    # By default one session on every core, its worker threads spinning between the operators of a run: one
    # request (~40 tokens, the trained MiniLM) encodes in 4.2 ms p50 here, against 5.3 ms with sleeping
    # threads and 7.7 ms on one thread. Its runs never overlap (TextEncoder holds a lock); the single-threaded
    # session of OnnxBackend._encode_each runs several texts at once.
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    # Spinning threads stop when a run ends, not a while later: otherwise they hold both cores while the
    # request is searched, which then waits for one now and then (recommend() p99 19-23 ms against 15-16 ms,
    # p50 the same or lower; experiments/results/spinning_stop_ab.md).
    so.add_session_config_entry("session.force_spinning_stop", "1")
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


# ---- export ---------------------------------------------------------------------------------------
def describe(model) -> dict[str, Any]:
    """What the backend needs to know of a loaded ``SentenceTransformer``: its maximum length, lower-casing,
    pooling modes and dimension. :class:`ModelUnavailableError` if its modules are not Transformer →
    Pooling (→ Normalize) or its pooling is not one of :data:`POOLING_MODES`."""
    modules = list(model)
    kinds = [type(m).__name__ for m in modules]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise ModelUnavailableError(f"the onnx backend runs Transformer → Pooling (→ Normalize) models; this one is "
                                    f"{' → '.join(kinds)}: use the torch backend")
    transformer, pooling = modules[0], modules[1]
    modes = pooling.pooling_mode
    modes = [modes] if isinstance(modes, str) else list(modes)
    unsupported = [m for m in modes if m not in POOLING_MODES]
    if unsupported:
        raise ModelUnavailableError(f"the onnx backend pools with {', '.join(POOLING_MODES)}; this model uses "
                                    f"{', '.join(unsupported)}: use the torch backend")
    tokenizer = transformer.tokenizer
    if not getattr(tokenizer, "is_fast", False):
        raise ModelUnavailableError("the onnx backend needs a fast (tokenizers) tokenizer: use the torch backend")
    return {"max_seq_length": int(transformer.max_seq_length), "do_lower_case": bool(getattr(transformer, "do_lower_case", False)),
            "pooling": modes, "dim": int(model.get_embedding_dimension()), "pad_id": int(tokenizer.pad_token_id or 0)}


def export(model: str | os.PathLike, folder: str | os.PathLike, *, quantized: bool = False) -> Path:
    """Export ``model`` (a name or folder) to ``folder`` (replaced atomically): ONNX graph, tokenizer and
    :data:`META_FILE`. Checks the graph against PyTorch on :data:`CHECK_TEXTS` (fp32: within
    :data:`PROBE_TOLERANCE`, else the unfused graph is tried; int8: the agreement is recorded)."""
    import torch

    from melscribe.encoding.models import load_sentence_transformer

    folder = Path(folder)
    st = load_sentence_transformer(model)
    info = describe(st)
    transformer = st[0]
    log.info("exporting %s to ONNX (%s)", model, folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(folder)
    tmp.mkdir()
    try:
        auto_model = transformer.auto_model.eval().to("cpu")
        if hasattr(auto_model, "set_attn_implementation"):
            try:  # the eager attention graph is the one onnxruntime's optimiser fuses into Attention nodes
                auto_model.set_attn_implementation("eager")
            except (ValueError, ImportError):
                pass
        inputs = _graph_inputs(auto_model, transformer.tokenizer)
        raw = tmp / "raw.onnx"
        _torch_export(auto_model, inputs, raw)
        transformer.tokenizer.backend_tokenizer.save(str(tmp / TOKENIZER_FILE))
        expected = st.encode(list(CHECK_TEXTS), normalize_embeddings=True, convert_to_numpy=True, batch_size=len(CHECK_TEXTS))
        candidates = [_optimised(raw, tmp / "fused.onnx", auto_model.config), raw]
        meta = dict(info, version=FORMAT_VERSION, inputs=inputs, source=str(model), quantized=quantized,
                    torch=torch.__version__, onnxruntime=_ort_version())
        for graph in [c for c in candidates if c is not None]:
            if quantized:
                meta.update(quantization=QUANTIZATION, kept_fp32=_quantize(graph, tmp / MODEL_FILE))
            else:
                shutil.copyfile(graph, tmp / MODEL_FILE)
            meta.update(optimised=graph.name == "fused.onnx", files={f: (tmp / f).stat().st_size for f in (MODEL_FILE, TOKENIZER_FILE)},
                        probe=[0.0] * info["dim"])
            (tmp / META_FILE).write_text(json.dumps(meta))
            backend = OnnxBackend(tmp)
            got = backend.encode(list(CHECK_TEXTS), batch_size=len(CHECK_TEXTS), progress=False, single_thread=True)
            cosines = (got * expected).sum(axis=1)
            if quantized or float(cosines.min()) >= 1 - PROBE_TOLERANCE:
                break
            log.warning("the %s ONNX graph of %s differs from PyTorch (min cosine %.6f)", graph.stem, model, cosines.min())
        else:
            raise ModelUnavailableError(f"the ONNX export of {model!r} gives other embeddings than PyTorch "
                                        f"(min cosine {cosines.min():.6f}): use the torch backend")
        # encoded alone, as verify() does (int8 activations are quantised per batch: batches change them)
        probe = backend.encode([CHECK_TEXTS[0]], batch_size=1, progress=False, single_thread=True)[0]
        del backend
        meta.update(probe=probe.tolist(), min_cosine_to_torch=round(float(cosines.min()), 6))
        (tmp / META_FILE).write_text(json.dumps(meta))
        for name in ("raw.onnx", "fused.onnx"):
            (tmp / name).unlink(missing_ok=True)
        replace_dir(tmp, folder, marker=META_FILE, what="ONNX export")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def gelu_fed_matmuls(graph) -> list[str]:
    """Names of the ``MatMul`` nodes of ``graph`` (an ``onnx.ModelProto``) reading a GELU's output: the
    feed-forward down-projections of a transformer (in a fused graph; a graph whose GELU is decomposed into
    ``Erf`` and ``Mul`` has none)."""
    gelu_outputs = {o for n in graph.graph.node if n.op_type in GELU_OPS for o in n.output}
    return [n.name for n in graph.graph.node if n.op_type == "MatMul" and gelu_outputs.intersection(n.input)]


def _quantize(graph: Path, out: Path) -> int:
    """Write ``graph`` dynamically quantised as :data:`QUANTIZATION` says to ``out``; returns how many
    products stayed fp32."""
    import onnx
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    keep = gelu_fed_matmuls(onnx.load(str(graph), load_external_data=False))
    # DefaultTensorType: shape inference does not type the outputs of the fused (contrib) nodes
    quantize_dynamic(str(graph), str(out), weight_type=QuantType.QInt8, per_channel=True, nodes_to_exclude=keep,
                     extra_options={"DefaultTensorType": TensorProto.FLOAT})
    return len(keep)


def _graph_inputs(auto_model, tokenizer) -> list[str]:
    import inspect

    accepted = inspect.signature(auto_model.forward).parameters
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids")
             if n in accepted and n in (tokenizer.model_input_names + ["attention_mask"])]
    if "input_ids" not in names:
        raise ModelUnavailableError("the onnx backend needs a model that reads input_ids: use the torch backend")
    return names


def _torch_export(auto_model, inputs: list[str], path: Path) -> None:
    import torch

    class LastHiddenState(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *args):
            return self.inner(**dict(zip(inputs, args))).last_hidden_state

    example = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]], dtype=torch.long)
    feeds = {"input_ids": example, "attention_mask": (example != 0).long(), "token_type_ids": torch.zeros_like(example)}
    axes = {n: {0: "batch", 1: "sequence"} for n in inputs + ["last_hidden_state"]}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shape-dependent branches of the mask code
        torch.onnx.export(LastHiddenState(auto_model), tuple(feeds[n] for n in inputs), str(path), input_names=inputs,
                          output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=17, dynamo=False,
                          do_constant_folding=True)


def _optimised(raw: Path, out: Path, config) -> Path | None:
    """``raw`` with onnxruntime's transformer fusions for BERT-like models, saved to ``out``; ``None`` if the
    optimiser fails."""
    try:
        from onnxruntime.transformers.fusion_options import FusionOptions
        from onnxruntime.transformers.optimizer import optimize_model

        options = FusionOptions("bert")
        optimised = optimize_model(str(raw), model_type="bert", num_heads=int(getattr(config, "num_attention_heads", 0)),
                                   hidden_size=int(getattr(config, "hidden_size", 0)), optimization_options=options,
                                   opt_level=1, use_gpu=False)
        log.info("onnxruntime fusions: %s", optimised.get_fused_operator_statistics())
        optimised.save_model_to_file(str(out))
        return out
    except Exception as e:  # an unknown architecture: keep the plain graph
        log.warning("onnxruntime's transformer optimiser failed (%s: %s); using the plain graph", type(e).__name__, e)
        return None


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__
