"""``GET /audio/{track_id}``: the audio of catalog tracks, with range requests, and nothing else.

A real uvicorn server (``serve_support.running_server``) over the small catalog, one of whose tracks names an
audio file (``audio_path``), plus an ``--audio-folder`` of audio-only tracks (tagged by a tiny CLAP: the
audio model does not matter here). Requests go out as raw HTTP (``http.client``), so that ``..`` and
percent-encodings reach the server as written: an HTTP client library would tidy them first.
"""

from __future__ import annotations

import http.client
import os
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from melscribe.serve.api import create_app
from melscribe.serve.catalog import Catalog
from serve_support import ROWS, recommender_in, running_server
from tiny_fixtures import tiny_clap

RATE = 16_000


def _tone(path: Path, hz: float, seconds: float = 1.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(RATE * seconds)) / RATE
    sf.write(path, (0.4 * np.sin(2 * np.pi * hz * t)).astype(np.float32), RATE)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The catalog file, its audio folder, and audio files around them (some only reachable by path tricks)."""
    root = tmp_path_factory.mktemp("audio-route")
    music, outside = root / "music", root / "outside"
    paths = {"root": root, "music": music, "outside": outside,
             "low": _tone(music / "low.wav", 220), "tone": _tone(music / "sub" / "tone.flac", 440),
             "swap": _tone(music / "swap.wav", 330), "secret": _tone(outside / "secret.wav", 550),
             "ballad": _tone(root / "ballad.wav", 660)}
    os.symlink(music / "low.wav", music / "alias.wav")  # a symlink that stays in the folder: served
    os.symlink(outside / "secret.wav", music / "escape.wav")  # one that leads out of it: never served
    os.symlink(outside, music / "outdir", target_is_directory=True)  # a folder that leads out
    rows = pd.DataFrame(ROWS, columns=["track_id", "descriptors", "title", "artist"])
    rows["audio_path"] = rows.track_id.map({"ballad": "ballad.wav", "jazz": "gone.wav"}).fillna("")
    rows.to_csv(root / "catalog.csv", index=False)
    paths["catalog"] = root / "catalog.csv"
    return paths


@pytest.fixture(scope="module")
def url(files: dict[str, Path], encoder, home: Path):
    """A real server over the catalog file plus the audio folder."""
    model = tiny_clap(files["root"] / "clap")
    catalog = Catalog.from_file(files["catalog"]).with_audio_folder(files["music"], model,
                                                                    cache_dir=files["root"] / "cache")
    with running_server(create_app(recommender_in(home, encoder, catalog))) as address:
        yield address


def raw_get(url: str, target: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """``GET target`` sent exactly as written (no client normalises it): status, headers, body."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("GET", target, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_catalog_audio_is_served_whole_and_by_ranges(url: str, files: dict[str, Path]) -> None:
    low = files["low"].read_bytes()
    status, headers, body = raw_get(url, "/audio/low.wav")
    assert (status, headers["content-type"], body) == (200, "audio/wav", low)
    assert headers["accept-ranges"] == "bytes" and headers["x-content-type-options"] == "nosniff"
    status, headers, body = raw_get(url, "/audio/low.wav", {"Range": "bytes=100-199"})
    assert (status, headers["content-range"], body) == (206, f"bytes 100-199/{len(low)}", low[100:200])
    status, headers, body = raw_get(url, "/audio/low.wav", {"Range": f"bytes={len(low) - 10}-"})
    assert (status, body) == (206, low[-10:])
    # a track in a sub-folder, its id's slash written or percent-encoded; a symlink that stays in the folder;
    # a track of the catalog file whose audio_path names a file beside the catalog
    for target, path, media in [("/audio/sub/tone.flac", "tone", "audio/flac"), ("/audio/sub%2Ftone.flac", "tone", "audio/flac"),
                                ("/audio/alias.wav", "low", "audio/wav"), ("/audio/ballad", "ballad", "audio/wav")]:
        status, headers, body = raw_get(url, target)
        assert (status, headers["content-type"], body) == (200, media, files[path].read_bytes()), target


def test_the_audio_of_each_audio_only_track_is_served_unless_it_leads_out(url: str, files: dict[str, Path]) -> None:
    """What the page asks for: ``/audio/`` and the id of each result marked ``inferred``, percent-encoded."""
    answer = httpx.post(f"{url}/recommend", json={"request": "music", "k": 50}, timeout=60).json()
    inferred = {r["track_id"] for r in answer["results"] if r["inferred"]}
    # the 5 files of the folder (outdir/secret.wav too, were symlinked sub-folders followed: rglob does not)
    assert {"alias.wav", "escape.wav", "low.wav", "sub/tone.flac", "swap.wav"} <= inferred and len(inferred) in (5, 6)
    status = {tid: raw_get(url, f"/audio/{quote(tid, safe='')}")[0] for tid in inferred}
    assert {tid for tid, code in status.items() if code == 200} == {"alias.wav", "low.wav", "sub/tone.flac", "swap.wav"}
    assert status["escape.wav"] == 404


SECRET = "outside/secret.wav"


@pytest.mark.parametrize("target", [
    "/audio/nope.wav",  # not in the catalog
    "/audio/calypso-1",  # in the catalog, without audio
    "/audio/jazz",  # its catalog names a file that does not exist
    "/audio/escape.wav",  # in the catalog, a symlink out of the audio folder
    "/audio/outdir/secret.wav",  # under a symlinked folder that leads out
    "/audio/",
    "/audio/..",
    f"/audio/../{SECRET}",
    f"/audio/../../{SECRET}",
    f"/audio/..%2F{quote(SECRET, safe='')}",
    f"/audio/%2e%2e%2F{quote(SECRET, safe='')}",
    f"/audio/%252e%252e%252F{quote(SECRET, safe='')}",  # encoded twice
    f"/audio/..%5C{quote(SECRET, safe='')}",  # a backslash
    "/audio/sub/../low.wav",  # resolves to a catalog file, but is no track id
    "/audio/./low.wav",
    "/audio/low.wav/",
    "/audio/LOW.WAV",
    "/audio/low.wav%00",
    "/audio/low.wav%00.txt",
    "/audio/sub",  # a folder
])
def test_path_tricks_get_404(url: str, files: dict[str, Path], target: str) -> None:
    status, _, body = raw_get(url, target)
    assert status == 404, target
    assert body == b'{"detail":"no audio for this track id"}'


@pytest.mark.parametrize("which", ["secret", "low"])
def test_absolute_paths_get_404(url: str, files: dict[str, Path], which: str) -> None:
    path = str(files[which])  # the low.wav of the catalog too: tracks are asked for by id, never by path
    for target in (f"/audio/{path}", f"/audio/{quote(path, safe='')}", f"/audio/{quote(path)}", f"/audio//{path}",
                   f"/audio/{quote('file://' + path, safe='')}"):
        status, _, body = raw_get(url, target)
        assert status == 404 and body == b'{"detail":"no audio for this track id"}', target


def test_a_file_is_checked_again_when_asked_for(url: str, files: dict[str, Path]) -> None:
    swap = files["swap"]
    assert raw_get(url, "/audio/swap.wav")[0] == 200
    original = swap.read_bytes()
    swap.unlink()
    os.symlink(files["secret"], swap)  # turned into a symlink out of the folder after the server started
    try:
        status, _, body = raw_get(url, "/audio/swap.wav")
        assert status == 404 and body != files["secret"].read_bytes()
        swap.unlink()  # gone
        assert raw_get(url, "/audio/swap.wav")[0] == 404
    finally:
        if swap.is_symlink():
            swap.unlink()
        swap.write_bytes(original)
    assert raw_get(url, "/audio/swap.wav")[0] == 200
