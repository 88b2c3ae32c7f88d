"""Fixtures shared by the serving tests; ``encoder``, ``catalog_file``, ``catalog`` and ``rec`` are in
``tests/conftest.py`` (the intent tests use them too)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def client(rec):
    from fastapi.testclient import TestClient

    from melscribe.serve.api import create_app

    with TestClient(create_app(rec, max_body_bytes=4096, max_k=50)) as c:
        yield c
