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


@pytest.fixture(scope="module")
def encoder(minilm):
    """The session's MiniLM as a :class:`~melscribe.encoding.encoder.TextEncoder` (``serve_support.text_encoder``)."""
    from serve_support import text_encoder

    return text_encoder(minilm)


@pytest.fixture(scope="module")
def catalog_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``serve_support.ROWS`` written as a CSV catalog file of this test module's own."""
    from serve_support import write_catalog

    return write_catalog(tmp_path_factory.mktemp("catalog") / "catalog.csv")


@pytest.fixture(scope="module")
def catalog(catalog_file: Path):
    """The small catalog of ``serve_support.ROWS``, read back from :func:`catalog_file`."""
    from melscribe.serve.catalog import Catalog

    return Catalog.from_file(catalog_file)


@pytest.fixture(scope="module")
def rec(encoder, catalog, home: Path):
    """A Recommender over :func:`catalog`, its index cached under this module's :func:`home`."""
    from serve_support import recommender_in

    return recommender_in(home, encoder, catalog)
