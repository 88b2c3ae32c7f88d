"""Command-line numbers are checked, and a bad one is named with its allowed range."""

from __future__ import annotations

import pytest

from melscribe.cli import build_parser


@pytest.mark.parametrize("args, message", [
    (["serve", "--port", "70000"], "70000 is out of range: 1 to 65535"),
    (["serve", "--max-wait-ms", "nan"], "nan is out of range: 0 to 60000"),
    (["serve", "--max-wait-ms", "inf"], "inf is out of range"),
    (["serve", "--max-body-bytes", "0"], "0 is out of range: at least 64"),
    (["serve", "--max-k", "0"], "0 is out of range: at least 1"),
    (["serve", "--max-queue", "-3"], "-3 is out of range: at least 1"),
    (["serve", "--max-batch", "0"], "0 is out of range: 1 to 4096"),
    (["serve", "--max-batch", "two"], "'two' is not a whole number"),
    (["recommend", "jazz", "-k", "0"], "0 is out of range: at least 1"),
    (["recommend", "jazz", "--rerank", "501"], "501 is out of range: 0 to 500"),
    (["audio", "tag", "x.wav", "--threshold", "1.5"], "1.5 is out of range: 0 to 1"),
])
def test_out_of_range_numbers_are_refused_by_name(args: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(args)
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_numbers_in_range_are_read() -> None:
    args = build_parser().parse_args(["serve", "--port", "65535", "--max-wait-ms", "0", "--max-k", "5"])
    assert (args.port, args.max_wait_ms, args.max_k) == (65535, 0.0, 5)
