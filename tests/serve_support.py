"""Shared by the serving tests: one TextEncoder over the session's MiniLM, a small catalog, audio files."""

from __future__ import annotations

import functools
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pytest

from melscribe.serve.catalog import Catalog
from melscribe.encoding.encoder import TextEncoder
from melscribe.serve.recommend import BATCH_SCORE_TOLERANCE, Recommender

#: track id, descriptors (one set per row; a repeated id adds a set), title, artist.
ROWS = [
    ("calypso-1", "steel drums, tropical, upbeat, calypso", "Island Morning", "The Pans"),
    ("calypso-2", "steel drums, tropical, upbeat, calypso", "Island Evening", "The Pans"),
    ("ballad", "sad, piano, ballad, slow, soft female vocal", "Rainy Window", "Ada"),
    ("metal", "heavy metal, distorted guitar, aggressive, fast drums", "Iron Storm", "Forge"),
    ("jazz", "jazz, saxophone, smooth, lounge, upright bass", "Blue Lounge", "Quartet Five"),
    ("ambient", "ambient, calm, synth pad, relaxing, slow", "Drift", "Nimbus"),
    ("hiphop", "hip hop, rap, male vocal", "Corner Talk", "MC Test"),
    ("hiphop", "boom bap, drums, scratching", "Corner Talk", "MC Test"),
    ("orchestra", "classical, orchestra, violin, epic", "Triumph", "City Symphony"),
    ("country", "country, acoustic guitar, banjo, male vocal", "Dusty Road", "Hank T."),
    ("reggae", "reggae, tropical, offbeat guitar, relaxed", "Sunny Yard", "Roots Crew"),
    ("techno", "techno, electronic, four on the floor, dark, fast", "Warehouse", "DJ Unit"),
    ("zorblax", "zorblax, glockenspiel", "Oddity", "Unknown"),
]


@functools.lru_cache(maxsize=None)
def text_encoder(model) -> TextEncoder:
    """One :class:`TextEncoder` (one lock) per loaded SentenceTransformer (the ``minilm`` fixture)."""
    return TextEncoder(model)


def recommender_in(home: Path, encoder: TextEncoder, catalog: Catalog | Path) -> Recommender:
    """A :class:`Recommender` over ``catalog`` whose index is cached under the ``MELSCRIBE_HOME`` ``home``
    (module fixtures build it outside the per-test ``MELSCRIBE_HOME`` of ``conftest``)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MELSCRIBE_HOME", str(home))
        return Recommender(encoder, catalog)


_SCORES = ("score", "audio_score", "rerank_score")


def assert_same_answers(got: list[list[dict]], expected: list[list[dict]]) -> None:
    """Answers (lists of ``Recommendation.to_dict()``) agree as batching promises: every field equal, the
    scores within :data:`BATCH_SCORE_TOLERANCE` (batch sizes round differently on some CPUs)."""
    assert len(got) == len(expected)
    for answer, reference in zip(got, expected):
        strip = lambda rows: [{k: v for k, v in r.items() if k not in _SCORES} for r in rows]  # noqa: E731
        assert strip(answer) == strip(reference)
        for r, ref in zip(answer, reference):
            for key in _SCORES:
                assert (r[key] is None) == (ref[key] is None), key
                if ref[key] is not None:
                    assert r[key] == pytest.approx(ref[key], abs=BATCH_SCORE_TOLERANCE), key


def write_catalog(path: Path, rows=ROWS) -> Path:
    """Write ``rows`` as a catalog file in the format named by ``path``'s suffix."""
    df = pd.DataFrame(rows, columns=["track_id", "descriptors", "title", "artist"])
    if path.suffix == ".csv":
        df.to_csv(path, index=False)
    elif path.suffix == ".jsonl":
        df.assign(descriptors=df.descriptors.str.split(", ")).to_json(path, orient="records", lines=True)
    else:
        df.assign(descriptors=df.descriptors.str.split(", ")).to_parquet(path)
    return path


def small_catalog(tmp_path: Path) -> Catalog:
    """The catalog of :data:`ROWS`, read back from a CSV file."""
    return Catalog.from_file(write_catalog(tmp_path / "catalog.csv"))


def write_audio(folder: Path, rate: int = 16_000) -> list[Path]:
    """Three decodable clips (two tones, noise) and one undecodable ``broken.wav`` under ``folder``."""
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(rate) / rate
    clips = {"low.wav": 0.5 * np.sin(2 * np.pi * 220 * t), "high.wav": 0.5 * np.sin(2 * np.pi * 3000 * t),
             "sub/noise.flac": 0.3 * np.random.default_rng(0).standard_normal(rate)}
    paths = []
    for name, wave in clips.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(folder / name, wave.astype(np.float32), rate)
        paths.append(folder / name)
    (folder / "broken.wav").write_bytes(b"RIFF\x00\x00not really a wave file")
    return paths


@contextmanager
def running_server(app) -> Iterator[str]:
    """A uvicorn server of ``app`` on a free port of 127.0.0.1, in a thread; yields its URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
