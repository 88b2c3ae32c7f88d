"""Tests of melscribe.serve.catalog: loading, descriptor sets, fingerprints, errors, audio-only tracks."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest

from melscribe.errors import DataError, InvalidRequestError
from melscribe.serve.catalog import Catalog, Track

from serve_support import ROWS, small_catalog, write_audio, write_catalog
from tiny_fixtures import tiny_clap


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_every_format_loads_the_same_catalog(tmp_path: Path, suffix: str) -> None:
    reference = small_catalog(tmp_path)
    other = Catalog.from_file(write_catalog(tmp_path / f"other{suffix}"))
    assert other.fingerprint() == reference.fingerprint()
    hiphop = other.track("hiphop")
    assert hiphop.descriptor_sets == (("hip hop", "rap", "male vocal"), ("boom bap", "drums", "scratching"))
    assert hiphop.metadata == {"title": "Corner Talk", "artist": "MC Test"}


def test_descriptor_sets_map_each_unique_text_to_its_tracks(tmp_path: Path) -> None:
    catalog = small_catalog(tmp_path)
    sets = catalog.descriptor_sets
    assert sets["steel drums, tropical, upbeat, calypso"] == ["calypso-1", "calypso-2"]
    assert sets["boom bap, drums, scratching"] == ["hiphop"]
    assert len(sets) == len(ROWS) - 1  # two tracks share a set, one track has two
    assert len(catalog) == len(ROWS) - 1
    assert "banjo" in catalog.vocabulary() and catalog.vocabulary() == sorted(catalog.vocabulary())


def test_fingerprint_is_stable_and_follows_content(tmp_path: Path) -> None:
    a = small_catalog(tmp_path)
    assert a.fingerprint() == small_catalog(tmp_path).fingerprint()
    changed = [row if row[0] != "jazz" else ("jazz", "jazz, saxophone", *row[2:]) for row in ROWS]
    b = Catalog.from_file(write_catalog(tmp_path / "changed.csv", changed))
    assert b.fingerprint() != a.fingerprint()
    reordered = Catalog(list(a)[::-1])
    assert reordered.fingerprint() != a.fingerprint()


def test_missing_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    pd.DataFrame({"track_id": ["a"], "tags": ["rock"]}).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"lacks required column\(s\) descriptors"):
        Catalog.from_file(path)


def test_catalog_without_descriptors_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    pd.DataFrame({"track_id": ["a", "b"], "descriptors": ["", None]}).to_csv(path, index=False)
    with pytest.raises(DataError, match="has no descriptors"):
        Catalog.from_file(path)


def test_unknown_track_id_duplicate_ids_and_bad_files(tmp_path: Path) -> None:
    catalog = small_catalog(tmp_path)
    with pytest.raises(InvalidRequestError, match="unknown track id 'nope'"):
        catalog.track("nope")
    with pytest.raises(DataError, match="appears twice"):
        Catalog([Track("a", (("rock",),)), Track("a", (("pop",),))])
    with pytest.raises(DataError, match="unsupported format"):
        Catalog.from_file(write_catalog(tmp_path / "c.csv").rename(tmp_path / "c.txt"))
    with pytest.raises(DataError, match="does not exist"):
        Catalog.from_file(tmp_path / "missing.csv")


def test_audio_paths_are_relative_to_the_catalog_file(tmp_path: Path) -> None:
    path = tmp_path / "cat.csv"
    pd.DataFrame({"track_id": ["a"], "descriptors": ["['rock', 'loud']"], "audio_path": ["audio/a.wav"],
                  "year": [1999]}).to_csv(path, index=False)
    track = Catalog.from_file(path).track("a")
    assert track.audio_path == str(tmp_path / "audio" / "a.wav")
    assert track.descriptor_sets == (("rock", "loud"),) and track.metadata == {"year": 1999}


def test_musiccaps_catalog(real_data_dir: Path) -> None:
    catalog = Catalog.from_musiccaps(real_data_dir)
    assert len(catalog) == 5521
    first = catalog.track("-0Gj8-vB1q4")
    assert first.descriptor_sets[0][:3] == ("low quality", "sustained strings melody", "soft female vocal")
    assert first.metadata["url"] == "https://www.youtube.com/watch?v=-0Gj8-vB1q4&t=30s"
    assert (first.metadata["start_s"], first.metadata["end_s"]) == (30, 40)
    assert catalog.fingerprint() == Catalog.from_musiccaps(real_data_dir).fingerprint()


def test_audio_folder_tracks_are_tagged_and_undecodable_files_reported(tmp_path: Path) -> None:
    model = tiny_clap(tmp_path / "clap")
    write_audio(tmp_path / "music")
    catalog = small_catalog(tmp_path)
    with pytest.warns(UserWarning, match=r"skipped 1 undecodable audio file.*broken\.wav"):
        mixed = catalog.with_audio_folder(tmp_path / "music", model, top_k=3, cache_dir=tmp_path / "cache")
    added = [t for t in mixed if t.inferred]
    assert sorted(t.id for t in added) == ["high.wav", "low.wav", "sub/noise.flac"]
    vocabulary = set(catalog.vocabulary())
    for t in added:
        assert len(t.descriptor_sets) == 1 and len(t.descriptor_sets[0]) == 3
        assert set(t.descriptor_sets[0]) <= vocabulary
        assert Path(t.audio_path).is_file()
    assert [Path(p).name for p, _ in mixed.audio.failures] == ["broken.wav"]
    assert mixed.audio.embeddings.shape[0] == 3 and list(mixed.audio.track_ids) == [t.id for t in added]
    assert mixed.fingerprint() != catalog.fingerprint()
    with pytest.raises(DataError, match="no audio files"):
        catalog.with_audio_folder(tmp_path / "clap", model)
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "low-again.wav").write_bytes((tmp_path / "music" / "low.wav").read_bytes())
    more = mixed.with_audio_folder(tmp_path / "more", model, cache_dir=tmp_path / "cache")
    assert more.audio.track_ids == (*mixed.audio.track_ids, "low-again.wav")
    low = mixed.audio.track_ids.index("low.wav")
    assert (more.audio.embeddings[-1] == mixed.audio.embeddings[low]).all()  # same content as low.wav
    assert len(more.audio.failures) == 1
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.wav").write_bytes(b"nothing")
    with pytest.warns(UserWarning), pytest.raises(DataError, match="none of the 1 audio file"):
        catalog.with_audio_folder(tmp_path / "bad", model, cache_dir=tmp_path / "cache")


def test_csv_values_that_pandas_would_call_missing_are_kept_as_written(tmp_path: Path) -> None:
    path = tmp_path / "catalog.csv"
    path.write_text("track_id,descriptors,title,artist\n"
                    "NA,\"jazz, piano\",null,None\n"
                    "null,rock,nan,NaN\n"
                    "None,folk,,N/A\n"
                    "007,pop,#N/A,1.0\n")
    catalog = Catalog.from_file(path)
    assert [t.id for t in catalog] == ["NA", "null", "None", "007"]
    assert catalog.track("NA").metadata == {"title": "null", "artist": "None"}
    assert catalog.track("null").metadata == {"title": "nan", "artist": "NaN"}
    assert catalog.track("None").metadata == {"artist": "N/A"}  # an empty cell is still no value
    assert catalog.track("007").metadata == {"title": "#N/A", "artist": "1.0"}  # a column with text stays text


def test_descriptors_joined_by_another_separator_are_warned_about(tmp_path: Path) -> None:
    path = tmp_path / "catalog.csv"
    path.write_text('track_id,descriptors\na,rock|pop|loud\nb,"jazz; piano"\nc,"folk, calm"\n')
    with pytest.warns(UserWarning, match=r"2 descriptor\(s\) contain '\|' or ';'.*'jazz; piano'"):
        catalog = Catalog.from_file(path)
    assert catalog.track("a").descriptor_sets == (("rock|pop|loud",),)  # read as written, and said so
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Catalog.from_file(write_catalog(tmp_path / "plain.csv"))
