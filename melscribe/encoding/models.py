"""Loading sentence-transformers models offline, and what identifies a model folder; shared by the encoder
and its backends (:mod:`melscribe.encoding.encoder`, :mod:`melscribe.encoding.onnx_backend`, :mod:`melscribe.encoding.static_backend`)."""

from __future__ import annotations

import os
from pathlib import Path

from melscribe.config import resolve_model
from melscribe.errors import ModelUnavailableError
from melscribe.fileio import CHECKSUM, file_checksum

#: The file every model folder melscribe writes holds (transformers' config, in bi- and cross-encoders alike):
#: a folder without it is not replaced by a new model (:func:`melscribe.fileio.replace_dir`).
MODEL_MARKER = "config.json"
#: The folder, inside a trained bi-encoder's folder, that holds its fast student (``melscribe train``).
STUDENT_DIR = "fast"
#: Where a GPL recipe publishes its music cross-encoder (the teacher) inside the bi-encoder's folder, for
#: ``recommend(..., rerank=N)``.
TEACHER_DIR = "teacher"


#: The file, in a model folder melscribe publishes, that records the checksum of each weight file.
WEIGHTS_RECORD = "melscribe_weights.json"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")


def record_weights(folder: str | os.PathLike) -> Path:
    """Write :data:`WEIGHTS_RECORD` into a model folder about to be published: the checksum
    (:data:`melscribe.fileio.CHECKSUM`) and size of each weight file under it, checked by :func:`verify_weights`."""
    import json

    root = Path(folder)
    files = {p.relative_to(root).as_posix(): {"bytes": p.stat().st_size, CHECKSUM: file_checksum(p)}
             for p in sorted(root.rglob("*")) if p.is_file() and p.suffix in _WEIGHT_SUFFIXES}
    (root / WEIGHTS_RECORD).write_text(json.dumps({"files": files}, indent=1))
    return root / WEIGHTS_RECORD


def verify_weights(folder: str | os.PathLike) -> None:
    """Check the weight files of a model folder against its :data:`WEIGHTS_RECORD` (if it has one): a file
    missing, resized or altered raises :class:`ModelUnavailableError` naming it."""
    import json

    root = Path(folder)
    record = root / WEIGHTS_RECORD
    if not record.is_file():
        return
    try:
        files = json.loads(record.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelUnavailableError(f"{record} is unreadable ({e}): re-publish the model") from None
    for name, expected in files.items():
        p = root / name
        if not p.is_file() or p.stat().st_size != expected["bytes"] or file_checksum(p) != expected[CHECKSUM]:
            raise ModelUnavailableError(f"the model weights {p} are missing or damaged (they fail the checksum "
                                        f"recorded when the model was published): re-publish or re-train the model")


def load_sentence_transformer(name_or_path: str | os.PathLike | None, max_seq_length: int | None = None):
    """Load a ``SentenceTransformer`` by name or path (the packaged MiniLM for ``all-MiniLM-L6-v2``).

    Raises :class:`ModelUnavailableError` with a one-line reason when it cannot be loaded offline.
    """
    from sentence_transformers import SentenceTransformer

    path = resolve_model(name_or_path)
    if Path(path).is_dir():
        verify_weights(path)
    try:
        model = SentenceTransformer(path, device=None if cuda_available() else "cpu")
    except Exception as e:  # OSError, HF hub errors, ValueError...
        raise ModelUnavailableError(f"cannot load {name_or_path!r}: {type(e).__name__}: "
                                    f"{str(e).splitlines()[0][:160]}") from None
    if max_seq_length:
        model.max_seq_length = max_seq_length
    return model


def cuda_available() -> bool:
    """Whether torch sees a CUDA device."""
    import torch

    return torch.cuda.is_available()


def model_fingerprint(path: str | os.PathLike) -> str:
    """A short hash of a model folder's weight and tokenizer files (names, sizes, modification times), to
    key caches derived from it (the ONNX export). The student in :data:`STUDENT_DIR` and the teacher in :data:`TEACHER_DIR` are not part of it."""
    import hashlib

    root = Path(resolve_model(path))
    h = hashlib.sha256(str(root.resolve()).encode())
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.relative_to(root).parts[0] not in (STUDENT_DIR, TEACHER_DIR):
            st = p.stat()
            h.update(f"{p.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]
