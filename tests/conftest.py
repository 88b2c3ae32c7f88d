"""Shared fixtures. Tests never reach a model hub; real-data tests need ``MELSCRIBE_DATA``."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``MELSCRIBE_HOME`` of this test module's own (models, indexes, caches)."""
    return tmp_path_factory.mktemp("home")


@pytest.fixture(autouse=True)
def _home(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MELSCRIBE_HOME", str(home))


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The real data directory from ``$MELSCRIBE_DATA``, or skip saying why."""
    root = os.environ.get("MELSCRIBE_DATA")
    if not root or not (Path(root) / "musiccaps" / "musiccaps-public.csv").is_file():
        pytest.skip("needs the real data: set MELSCRIBE_DATA to a directory holding musiccaps/musiccaps-public.csv")
    return Path(root)


@pytest.fixture(scope="session")
def minilm():
    """The packaged all-MiniLM-L6-v2 as a SentenceTransformer, loaded once."""
    from melscribe.encoding.models import load_sentence_transformer

    return load_sentence_transformer("all-MiniLM-L6-v2")


MUSICCAPS_HEADER = "ytid,start_s,end_s,audioset_positive_labels,aspect_list,caption,author_id,is_balanced_subset,is_audioset_eval\n"


def write_musiccaps(root: Path, rows: list[tuple[str, list[str], str, bool]]) -> Path:
    """Write a small ``musiccaps/musiccaps-public.csv`` under ``root`` from (ytid, aspects, caption, is_eval)."""
    import csv

    path = root / "musiccaps" / "musiccaps-public.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(MUSICCAPS_HEADER.strip().split(","))
        for ytid, aspects, caption, is_eval in rows:
            w.writerow([ytid, 0, 10, "/m/0", repr(aspects), caption, 1, False, is_eval])
    return path
