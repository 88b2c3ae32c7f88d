"""Atomic folder replacement never replaces what melscribe did not write."""

from __future__ import annotations

from pathlib import Path

import pytest

from melscribe.errors import DataError
from melscribe.fileio import check_replaceable, replace_dir


def _new_version(tmp_path: Path) -> Path:
    src = tmp_path / f".new-{len(list(tmp_path.iterdir()))}"
    src.mkdir()
    (src / "meta.json").write_text("{}")
    return src


def test_replaces_an_absent_an_empty_or_an_own_folder(tmp_path: Path) -> None:
    for name, setup in [("absent", None), ("empty", "mkdir"), ("own", "marker")]:
        dst = tmp_path / name
        if setup:
            dst.mkdir()
        if setup == "marker":
            (dst / "meta.json").write_text('{"old": 1}')
            (dst / "data.bin").write_text("old")
        replace_dir(_new_version(tmp_path), dst, marker="meta.json", what="index")
        assert (dst / "meta.json").read_text() == "{}" and not (dst / "data.bin").exists()


def test_never_replaces_a_users_folder_or_a_file(tmp_path: Path) -> None:
    mine = tmp_path / "mydata"
    mine.mkdir()
    (mine / "notes.txt").write_text("precious")
    a_file = tmp_path / "catalog.csv"
    a_file.write_text("track_id,descriptors\n")
    for dst, message in [(mine, "holds files but no meta.json"), (a_file, "is not a folder")]:
        src = _new_version(tmp_path)
        with pytest.raises(DataError, match=message) as e:
            replace_dir(src, dst, marker="meta.json", what="index")
        assert str(dst) in str(e.value) and src.is_dir()  # nothing moved
    assert (mine / "notes.txt").read_text() == "precious" and a_file.read_text() == "track_id,descriptors\n"
    with pytest.raises(DataError, match="not a melscribe index"):
        check_replaceable(Path("."), "meta.json", "index")  # the working folder (the project's own files)
