"""Fault injection into melscribe's home (``melscribe.config.home_dir``): a home that cannot be made is named,
with the reason, by the library and on the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from melscribe.errors import DataError


def test_an_unusable_home_is_named_with_the_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from melscribe.cli import main
    from melscribe.config import home_dir

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file")
    monkeypatch.setenv("MELSCRIBE_HOME", str(blocker / "home"))
    with pytest.raises(DataError, match=r"not-a-folder/home as melscribe's home .*a part of the path is a file"):
        home_dir()
    assert main(["index", "info", "--catalog", str(tmp_path / "none.csv")]) == 2
    assert "melscribe: error:" in capsys.readouterr().err
