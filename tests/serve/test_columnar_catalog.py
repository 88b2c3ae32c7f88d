"""Tests of melscribe.serve.columnar_catalog: the same catalog as Catalog (tracks, sets, fingerprint, errors on
the same rows), read in pieces, verified when opened, and serving the same recommendations."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from melscribe.errors import DataError, IndexCorruptError, InvalidRequestError
from melscribe.serve import columnar_catalog as cc
from melscribe.serve.catalog import Catalog
from melscribe.serve.columnar_catalog import ColumnarCatalog, convert, from_catalog, open_catalog, open_columnar
from melscribe.serve.request_checks import TrackFilter

from serve_support import ROWS, recommender_in, write_catalog


def assert_same_catalog(columnar: ColumnarCatalog, catalog: Catalog) -> None:
    assert len(columnar) == len(catalog)
    assert columnar.fingerprint() == catalog.fingerprint()
    assert columnar.set_texts() == catalog.set_texts()
    assert columnar.descriptor_sets == catalog.descriptor_sets
    assert columnar.vocabulary() == catalog.vocabulary()
    for got, want in zip(columnar, catalog):
        assert (got.id, got.descriptor_sets, dict(got.metadata), got.audio_path) == \
               (want.id, want.descriptor_sets, dict(want.metadata), want.audio_path)
        assert columnar.track(want.id).descriptor_sets == want.descriptor_sets


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_a_file_converts_to_the_same_catalog(tmp_path: Path, suffix: str) -> None:
    path = write_catalog(tmp_path / f"catalog{suffix}")
    columnar = ColumnarCatalog.open(convert(path, tmp_path / "columnar", progress=False, chunk_rows=3))
    assert_same_catalog(columnar, Catalog.from_file(path))
    assert columnar.track("hiphop").metadata == {"title": "Corner Talk", "artist": "MC Test"}
    assert "hiphop" in columnar and "nope" not in columnar and 3 not in columnar
    with pytest.raises(InvalidRequestError, match="unknown track id 'nope'"):
        columnar.track("nope")


def test_a_parquet_file_is_read_one_row_group_at_a_time(tmp_path: Path) -> None:
    rows = [(f"t{i}", f"genre {i % 7}, mood {i % 5}", f"Title {i}", None if i % 3 else f"Artist {i}") for i in range(50)]
    rows += [("t3", "encore, live", "Title 3", None)]  # a second set for t3, 47 rows later, in another piece
    path = tmp_path / "many.parquet"
    pd.DataFrame(rows, columns=["track_id", "descriptors", "title", "artist"]).to_parquet(path, row_group_size=8)
    columnar = ColumnarCatalog.open(convert(path, tmp_path / "c", progress=False, chunk_rows=8))
    assert_same_catalog(columnar, Catalog.from_file(path))
    assert columnar.track("t3").descriptor_sets == (("genre 3", "mood 3"), ("encore", "live"))
    assert len(columnar.set_texts()) == 36  # 35 combinations of 7 genres and 5 moods, and the encore


def test_musiccaps_converts_to_the_same_catalog(real_data_dir: Path, tmp_path: Path) -> None:
    catalog = Catalog.from_musiccaps(real_data_dir)
    assert_same_catalog(ColumnarCatalog.open(from_catalog(catalog, tmp_path / "mc")), catalog)


@pytest.mark.parametrize("rows, message", [
    ([("a", "rock", "A", "X"), ("", "pop", "B", "Y")], "row 2: empty track_id"),
    ([("a", "rock", "A", "X"), ("b", "pop", "B", "Y"), ("a", "jazz", "Other title", "X")],
     "row 3: track_id 'a' repeats row 1 with another title"),
    ([("a", "[rock, 'pop'", "A", "X")], "row 1: cannot parse descriptor list"),
])
def test_bad_rows_raise_the_same_error_on_the_same_row(tmp_path: Path, rows, message: str) -> None:
    path = write_catalog(tmp_path / "bad.csv", rows)
    with pytest.raises(DataError) as columnar_error:
        convert(path, tmp_path / "c", progress=False, chunk_rows=1)
    with pytest.raises(DataError) as catalog_error:
        Catalog.from_file(path)
    assert message in str(columnar_error.value) and str(columnar_error.value) == str(catalog_error.value)
    assert not (tmp_path / "c").exists()  # nothing half-written


def test_a_bad_descriptor_cell_in_a_later_piece_names_its_row(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    lines = [{"track_id": f"t{i}", "descriptors": ["rock"]} for i in range(5)] + [{"track_id": "t5", "descriptors": 7}]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    with pytest.raises(DataError, match=rf"{path}, row 6: descriptors must be a list of strings or a string, not int"):
        convert(path, tmp_path / "c", progress=False, chunk_rows=2)


def test_tracks_without_descriptors_are_dropped_with_a_warning(tmp_path: Path) -> None:
    path = write_catalog(tmp_path / "c.csv", [("a", "rock", "A", "X"), ("b", "", "B", "Y")])
    with pytest.warns(UserWarning, match=r"dropped 1 of 2 tracks .*'b'"):
        columnar = ColumnarCatalog.open(convert(path, tmp_path / "c", progress=False))
    assert [t.id for t in columnar] == ["a"]
    empty = write_catalog(tmp_path / "e.csv", [("a", "", "A", "X")])
    with pytest.raises(DataError, match="has no descriptors"):
        convert(empty, tmp_path / "e", progress=False)


def test_an_altered_file_is_refused_and_converted_again(tmp_path: Path) -> None:
    path = write_catalog(tmp_path / "c.csv")
    folder = open_columnar(path, progress=False).folder
    tracks = folder / cc.TRACKS_FILE
    data = bytearray(tracks.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tracks.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match=f"{tracks} fails its checksum"):
        ColumnarCatalog.open(folder)
    with pytest.warns(UserWarning, match="converting .* again"):
        again = open_columnar(path, progress=False)
    assert again.fingerprint() == Catalog.from_file(path).fingerprint()
    (folder / cc.SETS_FILE).unlink()
    with pytest.raises(IndexCorruptError, match=f"{folder / cc.SETS_FILE} is missing"):
        ColumnarCatalog.open(folder)


def test_large_files_open_columnar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_catalog(tmp_path / "c.csv")
    assert isinstance(open_catalog(path), Catalog)
    monkeypatch.setattr(cc, "COLUMNAR_MIN_BYTES", path.stat().st_size)
    assert isinstance(open_catalog(path), ColumnarCatalog)
    assert isinstance(open_catalog(path, columnar=False), Catalog)


def test_filters_allow_the_same_rows_as_on_the_catalog(tmp_path: Path) -> None:
    path = write_catalog(tmp_path / "c.csv")
    catalog = Catalog.from_file(path)
    columnar = ColumnarCatalog.open(convert(path, tmp_path / "c", progress=False))
    texts = catalog.set_texts()
    shuffled = list(reversed(texts))  # an index whose rows are in another order than the catalog's sets
    for filt in [TrackFilter(frozenset(), frozenset(), frozenset()),
                 TrackFilter(frozenset({"calypso-1"}), frozenset(), frozenset()),
                 TrackFilter(frozenset({"calypso-1", "calypso-2"}), frozenset(), frozenset()),
                 TrackFilter(frozenset(), frozenset({"male vocal"}), frozenset()),
                 TrackFilter(frozenset(), frozenset({"drums"}), frozenset({"rap"})),
                 TrackFilter(frozenset(), frozenset({"tropical"}), frozenset({"reggae", "piano"}))]:
        for rows in (texts, shuffled):
            want = catalog.set_rows(rows).allowed(filt)
            assert np.array_equal(columnar.set_rows(rows).allowed(filt), want), filt
    # hip hop's second set has drums but the track raps: no row passes
    assert len(columnar.set_rows(texts).allowed(TrackFilter(frozenset(), frozenset({"drums"}), frozenset({"rap"})))) == 0


def test_recommendations_are_the_same_as_from_the_catalog(encoder, catalog, rec, tmp_path: Path, home: Path) -> None:
    columnar = ColumnarCatalog.open(from_catalog(catalog, tmp_path / "c"))
    other = recommender_in(home, encoder, columnar)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for request, options in [("upbeat tropical music with steel drums", {}),
                                 ("something to rap to", {"exclude_tracks": ["hiphop"]}),
                                 ("calm music", {"require_descriptors": ["slow"]}),
                                 ("tropical but not reggae", {})]:
            got = [r.to_dict() for r in other.recommend(request, 5, **options)]
            assert got == [r.to_dict() for r in rec.recommend(request, 5, **options)]


def test_audio_only_tracks_are_refused_with_the_reason(tmp_path: Path) -> None:
    columnar = ColumnarCatalog.open(convert(write_catalog(tmp_path / "c.csv"), tmp_path / "c", progress=False))
    with pytest.raises(DataError, match="columnar catalog .* takes no audio-only tracks"):
        columnar.with_audio_folder(tmp_path)
