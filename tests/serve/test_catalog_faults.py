"""Fault injection into catalogs: a bad catalog ends in a named error with its file, row and reason, or
follows a documented rule with a warning."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from melscribe.errors import DataError
from melscribe.serve.catalog import Catalog


# --- 2, 5. bad catalogs: a named error with file, row and reason, or a documented rule with a warning -------


def write_rows(path: Path, rows: list[dict]) -> Path:
    """``rows`` as a catalog file in the format of ``path``'s suffix."""
    df = pd.DataFrame(rows)
    if path.suffix == ".csv":
        df.to_csv(path, index=False)
    elif path.suffix == ".jsonl":
        df.to_json(path, orient="records", lines=True)
    else:
        df.to_parquet(path)
    return path


GOOD = {"track_id": "a", "descriptors": ["rock", "loud"], "title": "A", "artist": "X"}


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_an_empty_track_id_is_refused_with_its_row(tmp_path: Path, suffix: str) -> None:
    rows = [GOOD, {"track_id": None, "descriptors": ["pop"], "title": "B", "artist": "Y"}]
    path = write_rows(tmp_path / f"cat{suffix}", [dict(r, descriptors=", ".join(r["descriptors"])) for r in rows]
                      if suffix == ".csv" else rows)
    with pytest.raises(DataError, match=rf"{path}, row 2: empty track_id"):
        Catalog.from_file(path)


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
@pytest.mark.parametrize("values, what", [([3, 7], "int"), ([{"rock": 1}, {"rock": 2}], "dict"),
                                          ([[["rock"]], [["pop"]]], "strings")])
def test_descriptors_of_the_wrong_type_are_refused_with_their_row(tmp_path: Path, suffix: str, values: list,
                                                                  what: str) -> None:
    path = write_rows(tmp_path / f"cat{suffix}", [{"track_id": t, "descriptors": v} for t, v in zip("ab", values)])
    with pytest.raises(DataError, match=rf"{path}, row 1: descriptors must be .*{what}"):
        Catalog.from_file(path)


def test_rows_of_one_track_merge_only_when_their_metadata_agree(tmp_path: Path) -> None:
    agree = write_rows(tmp_path / "agree.jsonl", [GOOD, {"track_id": "a", "descriptors": ["calm"], "title": "A"},
                                                  {"track_id": "b", "descriptors": ["pop"], "title": "B"}])
    track = Catalog.from_file(agree).track("a")
    assert track.descriptor_sets == (("rock", "loud"), ("calm",))
    assert track.metadata == {"title": "A", "artist": "X"}
    clash = write_rows(tmp_path / "clash.jsonl", [
        {"track_id": "clair", "descriptors": ["piano", "calm"], "title": "Clair de Lune", "artist": "Debussy"},
        {"track_id": "other", "descriptors": ["pop"], "title": "B", "artist": "Y"},
        {"track_id": "clair", "descriptors": ["steel drums"], "title": "Island Breeze", "artist": "Steelers"}])
    with pytest.raises(DataError, match=rf"{clash}, row 3: track_id 'clair' repeats row 1 with another title "
                                        r"\('Clair de Lune' there, 'Island Breeze' here\)"):
        Catalog.from_file(clash)


def test_tracks_without_descriptor_sets_are_dropped_with_a_warning(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "cat.jsonl", [GOOD, {"track_id": "b", "descriptors": [], "title": "B"},
                                               {"track_id": "c", "descriptors": None, "audio_path": "c.wav"}])
    with pytest.warns(UserWarning, match=r"dropped 2 of 3 tracks .*no descriptor set.* \(1 with an audio_path"):
        catalog = Catalog.from_file(path)
    assert [t.id for t in catalog] == ["a"] and "b" not in catalog


def test_a_directory_as_catalog_is_named_as_such(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=rf"catalog {tmp_path} is a directory, expected a CSV/JSONL/Parquet file"):
        Catalog.from_file(tmp_path)


@pytest.mark.parametrize("command", [["index", "build"], ["recommend", "calm piano"], ["serve"]])
def test_the_command_line_reports_a_bad_catalog_in_one_line(tmp_path: Path, command: list[str],
                                                            capsys: pytest.CaptureFixture) -> None:
    from melscribe.cli import main

    bad = write_rows(tmp_path / "cat.jsonl", [GOOD, {"track_id": "b", "descriptors": 7}])
    assert main([*command, "--catalog", str(bad), "--index-dir", str(tmp_path / "idx")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"melscribe: error: catalog {bad}, row 2: descriptors") and "Traceback" not in err
    assert main([*command, "--catalog", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
