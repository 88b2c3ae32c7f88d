"""The page's files as the server answers them, and what ``POST /recommend`` adds for the page
(``intent.rejections``). The page itself, in a browser: ``test_page.py``."""

from __future__ import annotations

import configparser
import fnmatch
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

import melscribe.serve
from melscribe.serve.api import PAGE_FILES, PAGE_POLICY

PAGE = Path(melscribe.serve.__file__).parent / "page"
SETUP_CFG = Path(__file__).parents[2] / "setup.cfg"


@pytest.mark.parametrize("route", sorted(PAGE_FILES))
def test_the_page_files_are_served_with_their_policy(client, route: str) -> None:
    name, media_type = PAGE_FILES[route]
    response = client.get(route)
    assert response.status_code == 200 and response.headers["content-type"] == media_type
    assert response.content == (PAGE / name).read_bytes()
    assert response.headers["content-security-policy"] == PAGE_POLICY
    assert "default-src 'none'" in PAGE_POLICY and "http" not in PAGE_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert client.get(route + "x").status_code == 404  # only these files: there is no static folder to explore


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [value or "" for name, value in attrs if name in ("src", "href", "action", "srcset", "poster")]


def test_the_page_names_only_its_own_files() -> None:
    parser = _References()
    parser.feed((PAGE / "index.html").read_text())
    assert sorted(parser.found) == ["data:,", "page.css", "page.js"]
    css = (PAGE / "page.css").read_text()
    assert "url(" not in css and "@import" not in css
    script = (PAGE / "page.js").read_text()
    assert sorted(set(re.findall(r'fetch\("([^"]*)"', script))) == ["health", "recommend"]
    assert "innerHTML" not in script and "outerHTML" not in script and "insertAdjacentHTML" not in script


def test_every_page_file_is_package_data() -> None:
    """A non-editable install has the page: each file in ``page/`` matches a ``package_data`` pattern."""
    config = configparser.ConfigParser()
    config.read(SETUP_CFG)
    patterns = [p.strip() for p in config["options.package_data"]["melscribe.serve"].split(",")]
    files = sorted(p.name for p in PAGE.iterdir())
    assert {"index.html", "page.js", "page.css"} <= set(files)
    assert [f for f in files if not any(fnmatch.fnmatch(f"page/{f}", p) for p in patterns)] == []


def test_recommend_adds_the_rejections_and_audio_links(client) -> None:
    answer = client.post("/recommend", json={"request": "upbeat tropical music but not steel drums", "k": 5}).json()
    intent = answer["intent"]
    assert intent["avoided"] == ["steel drums"]
    [rejection] = intent["rejections"]
    assert rejection["cue"] == "but not" and rejection["phrase"] == "steel drums"
    assert "steel drums" in rejection["descriptors"] and len(rejection["descriptors"]) == intent["avoided_descriptors"]
    ids = [r["track_id"] for r in answer["results"]]
    assert "calypso-1" not in ids and "calypso-2" not in ids
    assert list(answer) == ["request", "k", "model", "intent", "low_confidence", "results"]  # as --json
    # what the page sends once the avoided chip is removed: the encoder's text, intent off, no exclusion
    again = client.post("/recommend", json={"request": intent["text"], "k": 5, "intent": False,
                                            "filters": {"exclude_descriptors": []}}).json()
    assert again["intent"] is None and {"calypso-1", "calypso-2"} <= {r["track_id"] for r in again["results"]}
    # and with the rejection kept as a filter: the first answer's tracks
    kept = client.post("/recommend", json={"request": intent["text"], "k": 5, "intent": False,
                                           "filters": {"exclude_descriptors": rejection["descriptors"]}}).json()
    assert [r["track_id"] for r in kept["results"]] == ids


def test_a_request_without_rejections_has_none(client) -> None:
    intent = client.post("/recommend", json={"request": "sad piano ballad", "k": 1}).json()["intent"]
    assert intent["avoided"] == [] and intent["rejections"] == [] and "piano" in intent["wanted"]
