"""The page of ``melscribe serve`` in a real browser: headless Chromium (Debian ``chromium`` and
``chromium-driver``, driven by ``selenium``; ``.ci/run`` installs them) against a real ``melscribe serve`` on
loopback, over the small catalog plus an ``--audio-folder`` holding one rendered clip (tagged by the musicnn
tagger, the default audio model). Skipped, saying why, where the browser is missing (failed instead when
``MELSCRIBE_BROWSER_REQUIRED`` is set, as ``.ci/run`` does).

The browser is started by ``experiments/page_screenshot.py``, which makes the README's screenshot with it.
"""

from __future__ import annotations

import os
import re
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import numpy as np
import pytest
import soundfile as sf

from page_screenshot import browser_missing, screenshot, search, start_browser
from serve_support import write_catalog

pytestmark = pytest.mark.subprocess

WAIT_S = 60


def _free_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


def _serve(args: list[str], home: Path, timeout: float = 600) -> Iterator[str]:
    """``melscribe serve ARGS`` in a child process on a free port of 127.0.0.1, until ``/health`` says ok."""
    port = _free_port()
    log = home / f"serve-{port}.log"
    with open(log, "w") as out:
        server = subprocess.Popen([sys.executable, "-m", "melscribe.cli", "serve", "--port", str(port), *args],
                                  env={**os.environ, "MELSCRIBE_HOME": str(home)}, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout  # the model loads, audio is tagged, the index is built
        while True:
            assert server.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"the server was not ready in {timeout:g} s: {log.read_text()[-3000:]}"
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def bells(path: Path, rate: int = 16_000, seconds: float = 4.0) -> Path:
    """A clip of struck bells (decaying partials, a new note every half second), rendered with numpy."""
    t = np.arange(int(rate * seconds)) / rate
    wave = np.zeros_like(t)
    for i, hz in enumerate([523.25, 659.25, 783.99, 1046.5, 783.99, 659.25, 523.25, 392.0]):
        start = i * 0.5
        local = np.clip(t - start, 0, None)
        env = np.where(t >= start, np.exp(-3 * local), 0)
        wave += env * sum(a * np.sin(2 * np.pi * hz * m * local) for m, a in [(1, 0.5), (2.76, 0.2), (5.4, 0.1)])
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.5 * wave / np.abs(wave).max()).astype(np.float32), rate)
    return path


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium, or a skip naming what is missing."""
    reason = browser_missing()
    if reason and os.environ.get("MELSCRIBE_BROWSER_REQUIRED"):  # CI (.ci/run) installs the browser
        pytest.fail(f"MELSCRIBE_BROWSER_REQUIRED is set but {reason}")
    if reason:
        pytest.skip(f"needs a browser: {reason}")
    driver = start_browser(1000, 900)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def url(browser, home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A ``melscribe serve`` of the small catalog and a folder of audio-only clips: ``bells.wav``, and
    ``elsewhere.wav``, a symlink out of the folder (the server does not stream it)."""
    root = tmp_path_factory.mktemp("page")
    catalog = write_catalog(root / "catalog.csv")
    bells(root / "audio" / "bells.wav")
    os.symlink(bells(root / "outside" / "bells.wav"), root / "audio" / "elsewhere.wav")
    yield from _serve(["--catalog", str(catalog), "--audio-folder", str(root / "audio")], home)


def api(url: str, request: str, k: int = 10, **body) -> dict:
    """The server's answer to what the page asks."""
    response = httpx.post(f"{url}/recommend", json={"request": request, "k": k, **body}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def shown(driver) -> list[dict]:
    """The results on the page: track id, rank, title, the descriptors as listed, the highlighted ones."""
    return driver.execute_script("""
        return [...document.querySelectorAll('#list > li')].map(li => ({
          track_id: li.dataset.track, rank: li.querySelector('.rank').textContent,
          title: li.querySelector('.title').textContent,
          descriptors: [...li.querySelectorAll('.descriptors li')].map(d => d.firstChild.textContent),
          marked: [...li.querySelectorAll('.descriptors mark')].map(m => m.textContent),
          audio: li.querySelector('audio') ? li.querySelector('audio').getAttribute('src') : null,
          badge: li.querySelector('.badge') ? li.querySelector('.badge').textContent : null}));""")


def chips(driver, kind: str) -> list[str]:
    """The texts of the ``wanted`` or ``avoided`` chips (read in one go: the page may be re-rendering)."""
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(c => c.textContent)", f"#{kind} .chip .chip-text")


def wait(driver, condition, what: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, WAIT_S, poll_frequency=0.05).until(lambda d: condition(d), message=what)


def ask(driver, url: str, request: str, k: int = 10) -> None:
    """Open the page afresh, set k, type ``request`` and press Enter; wait for results or an error."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.get_log("browser")  # what earlier pages logged
    driver.get(url)
    box = driver.find_element(By.ID, "k")
    box.clear()
    box.send_keys(str(k))
    driver.find_element(By.ID, "request").send_keys(request, Keys.ENTER)
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#list > li") or d.find_element(By.ID, "error").is_displayed(),
         f"no answer shown for {request!r}")


def foreign(driver, url: str, allowed: str = "recommend - Failed to load resource: the server responded with a status of (400|422) ") -> list[str]:
    """What the page fetched from elsewhere than ``url`` (its resource entries), and the errors the browser
    logged (a resource refused by the page's policy, a failed request, a script error) other than those
    ``allowed`` (a pattern after the server's address: by default its refusals of bad requests, which the
    page shows)."""
    names = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)"
                                  ".concat(performance.getEntriesByType('navigation').map(e => e.name))")
    refusal = re.compile(re.escape(url) + "/" + allowed)
    return ([n for n in names if not n.startswith(url + "/")]
            + [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE" and not refusal.match(e["message"])])


def test_a_request_shows_ranked_results_with_their_matched_descriptors_highlighted(browser, url: str) -> None:
    ask(browser, url, "sad piano ballad", k=4)
    expected = api(url, "sad piano ballad", k=4)["results"]
    got = shown(browser)
    assert [r["track_id"] for r in got] == [r["track_id"] for r in expected]
    assert [r["rank"] for r in got] == ["1", "2", "3", "4"]
    top = got[0]
    assert top["track_id"] == "ballad" and top["title"] == "Rainy Window"
    assert "Ada" in browser.find_element("css selector", "#list > li .artist").text
    for g, e in zip(got, expected):
        # the matched descriptors, highlighted, best first; then the rest of the set
        assert g["marked"] == e["matched_descriptors"] and g["marked"], g
        assert g["descriptors"][:len(g["marked"])] == g["marked"]
        assert sorted(g["descriptors"]) == sorted(e["descriptor_set"])
    assert "piano" in top["marked"]
    assert browser.find_element("id", "summary").text == "4 tracks for “sad piano ballad”"
    assert browser.find_element("id", "results").get_attribute("aria-live") == "polite"
    assert chips(browser, "wanted")[:1] and set(chips(browser, "wanted")) <= {"sad", "piano", "ballad"}
    assert foreign(browser, url) == []


def test_an_avoided_chip_keeps_its_descriptors_out_until_it_is_removed(browser, url: str) -> None:
    from selenium.webdriver.common.keys import Keys

    request = "upbeat tropical music but not steel drums"
    ask(browser, url, request, k=4)
    assert chips(browser, "avoided") == ["steel drums"]
    before = shown(browser)
    assert len(before) == 4 and not any("steel drums" in r["descriptors"] for r in before)
    # removed from the keyboard: focus its button, press Enter
    button = browser.find_element("css selector", "#avoided .chip button")
    assert button.get_attribute("aria-label") == "Stop avoiding steel drums"
    button.send_keys(Keys.ENTER)
    wait(browser, lambda d: chips(d, "avoided") == [] and shown(d) != before, "the results did not change")
    assert browser.find_element("css selector", "#avoided li").text == "none"
    after = shown(browser)
    assert {"calypso-1", "calypso-2"} & {r["track_id"] for r in after}
    assert any("steel drums" in r["descriptors"] for r in after)
    assert browser.switch_to.active_element.get_attribute("id") == "descriptor"  # focus lands in the add box
    assert chips(browser, "wanted") and browser.find_element("id", "request").get_attribute("value") == request
    assert foreign(browser, url) == []


def test_added_chips_require_and_avoid_descriptors(browser, url: str) -> None:
    from selenium.webdriver.common.by import By

    ask(browser, url, "music for a sunny afternoon", k=5)
    assert any("tropical" in r["descriptors"] for r in shown(browser))
    add = browser.find_element(By.ID, "descriptor")
    add.send_keys("tropical")
    browser.find_element(By.CSS_SELECTOR, "#add button[value=avoided]").click()
    wait(browser, lambda d: "tropical" in chips(d, "avoided"), "no avoided chip added")
    results = shown(browser)
    assert results and not any("tropical" in r["descriptors"] for r in results)
    add.send_keys("male vocal")
    browser.find_element(By.CSS_SELECTOR, "#add button[value=wanted]").click()
    wait(browser, lambda d: "male vocal" in chips(d, "wanted"), "no wanted chip added")
    results = shown(browser)
    assert {r["track_id"] for r in results} == {"hiphop", "country"}  # the two tracks with a male vocal
    # an unknown descriptor is refused inline, and no chip is added
    add.send_keys("kazoo orchestra")
    browser.find_element(By.CSS_SELECTOR, "#add button[value=wanted]").click()
    wait(browser, lambda d: d.find_element(By.ID, "error").is_displayed(), "no error shown")
    assert "unknown descriptor" in browser.find_element(By.ID, "error").text
    assert "kazoo orchestra" not in chips(browser, "wanted") and shown(browser) == results
    # removing the required one lifts it
    browser.find_element(By.CSS_SELECTOR, "#wanted .chip.added button").click()
    wait(browser, lambda d: "male vocal" not in chips(d, "wanted") and len(shown(d)) == 5, "the filter stayed")
    assert not browser.find_element(By.ID, "error").is_displayed()


@pytest.mark.parametrize("request_text, low", [("the invoice is overdue", True), ("sad piano ballad", False)])
def test_the_low_confidence_notice_follows_the_server(browser, url: str, request_text: str, low: bool) -> None:
    assert api(url, request_text, k=3)["low_confidence"] is low
    ask(browser, url, request_text, k=3)
    notice = browser.find_element("id", "low-confidence")
    assert notice.is_displayed() is low and len(shown(browser)) == 3
    if low:
        assert notice.text.startswith("Low confidence") and notice.find_element("xpath", "..").get_attribute("id") == "results"


def test_an_empty_request_is_answered_inline(browser, url: str) -> None:
    from selenium.webdriver.common.by import By

    ask(browser, url, "   ")
    error = browser.find_element(By.ID, "error")
    assert error.text == "the request is empty" and error.get_attribute("role") == "alert"
    box = browser.find_element(By.ID, "request")
    assert box.get_attribute("aria-invalid") == "true" and "error" in box.get_attribute("aria-describedby")
    assert error.find_element(By.XPATH, "ancestor::form").get_attribute("id") == "ask"  # next to the box
    assert shown(browser) == []
    box.send_keys("jazz")
    box.submit()
    wait(browser, lambda d: shown(d), "no results after the error")
    assert not error.is_displayed() and box.get_attribute("aria-invalid") == "false"
    ask(browser, url, "jazz", k=0)  # any refusal is shown the same way
    assert browser.find_element(By.ID, "error").text == "k must be positive, not 0" and shown(browser) == []


def test_an_audio_only_track_is_marked_and_plays(browser, url: str) -> None:
    ask(browser, url, "ringing bells", k=20)
    [track] = [r for r in shown(browser) if r["track_id"] == "bells.wav"]
    assert track["badge"] == "audio only" and track["audio"] == "audio/bells.wav"
    # the symlink out of the folder: marked too, its player replaced by a note once the server says 404
    wait(browser, lambda d: not [r for r in shown(d) if r["track_id"] == "elsewhere.wav"][0]["audio"],
         "the player of elsewhere.wav stayed")
    note = browser.find_element("css selector", "li[data-track='elsewhere.wav'] p.quiet")
    assert note.text == "Its audio is not available."
    assert all(r["audio"] is None for r in shown(browser) if r["track_id"] not in ("bells.wav", "elsewhere.wav"))
    audio = browser.find_element("css selector", "li[data-track='bells.wav'] audio")
    assert audio.get_attribute("aria-label").startswith("Play bells")
    browser.execute_script("arguments[0].play()", audio)
    wait(browser, lambda d: d.execute_script("return arguments[0].readyState", audio) >= 2, "the audio did not load")
    wait(browser, lambda d: d.execute_script("return arguments[0].currentTime", audio) > 0.2, "the audio did not play")
    assert browser.execute_script("return arguments[0].error", audio) is None
    assert browser.execute_script("return arguments[0].duration", audio) == pytest.approx(4.0, abs=0.05)
    browser.execute_script("arguments[0].pause(); arguments[0].currentTime = 3.0", audio)  # seeking: a range request
    wait(browser, lambda d: not d.execute_script("return arguments[0].seeking", audio), "the audio did not seek")
    assert browser.execute_script("return arguments[0].currentTime", audio) == pytest.approx(3.0, abs=0.05)
    assert foreign(browser, url, r"audio/elsewhere\.wav - Failed to load resource: .* 404 ") == []


def test_a_foreign_resource_would_be_seen(browser, url: str) -> None:
    """The control of the checks above: something the page loads from elsewhere is caught (and refused)."""
    ask(browser, url, "jazz", k=1)
    assert foreign(browser, url) == []
    browser.execute_script("const i = document.createElement('img'); i.id = 'foreign';"
                           "i.src = 'https://example.invalid/x.png'; document.body.append(i)")
    wait(browser, lambda d: d.execute_script("return document.getElementById('foreign').complete"), "still loading")
    caught = foreign(browser, url)
    assert caught and any("example.invalid" in c for c in caught), caught


def test_keyboard_order_labels_and_a_phone_width(browser, url: str) -> None:
    from selenium.webdriver.common.keys import Keys

    ask(browser, url, "calm ambient music", k=3)
    unlabelled = browser.execute_script(
        "return [...document.querySelectorAll('input, button, audio')].filter(e => !(e.labels && e.labels.length)"
        " && !e.getAttribute('aria-label') && !e.textContent.trim()).map(e => e.outerHTML)")
    assert unlabelled == []
    browser.find_element("id", "request").click()
    order = []
    for _ in range(6):
        order.append(browser.switch_to.active_element.get_attribute("id") or browser.switch_to.active_element.text)
        browser.switch_to.active_element.send_keys(Keys.TAB)
    assert order[:6] == ["request", "k", "Search", "descriptor", "Require", "Avoid"]
    browser.set_window_size(375, 800)
    try:
        ask(browser, url, "calm ambient music but not techno", k=3)
        assert browser.execute_script("return document.documentElement.scrollWidth") <= 375
        for element in browser.find_elements("css selector", "#request, #list > li, #intent"):
            assert element.rect["x"] >= 0 and element.rect["x"] + element.rect["width"] <= 375, element.get_attribute("id")
    finally:
        browser.set_window_size(1000, 900)


def test_the_screenshot_script_saves_the_page(url: str, tmp_path: Path) -> None:
    out = screenshot(url, tmp_path / "page.png", "upbeat tropical music but not steel drums", width=800)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width == 800 and height > 600


def test_the_page_works_with_the_default_catalog(browser, home: Path, real_data_dir: Path) -> None:
    """``melscribe serve`` with its defaults (MusicCaps): each result links to its YouTube clip at its start."""
    for url in _serve(["--data-dir", str(real_data_dir)], home):
        ask(browser, url, "calm piano but no drums", k=3)
        links = browser.find_elements("css selector", "#list > li .meta a")
        assert len(links) == 3
        for li, link in zip(shown(browser), links):
            assert link.get_attribute("href").startswith(f"https://www.youtube.com/watch?v={li['track_id']}&t=")
            assert link.text.startswith("YouTube clip from ") and li["audio"] is None
        assert chips(browser, "avoided") == ["drums"]
        assert foreign(browser, url) == []
