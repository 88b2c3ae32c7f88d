"""A screenshot of ``melscribe serve``'s page, made by headless Chromium (docs/page.png), and the browser the
page's tests drive (``tests/serve/test_page.py``).

Start a server, then point this at it::

    melscribe serve --port 8000 &
    python experiments/page_screenshot.py --url http://127.0.0.1:8000 --out docs/page.png \\
        --request "calm piano for a rainy evening, but no vocals"

It types the request, presses Enter, waits for the results and saves the page as a PNG. Needs the Debian
packages ``chromium`` and ``chromium-driver`` and ``selenium`` (the ``test`` extra).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

#: Where Debian's ``chromium`` and ``chromium-driver`` put the browser and its driver.
CHROMIUM, CHROMEDRIVER = "chromium", "chromedriver"


def browser_missing() -> str | None:
    """Why the browser cannot run here (``None`` when it can): selenium, chromium or chromedriver missing."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    missing = [name for name in (CHROMIUM, CHROMEDRIVER) if shutil.which(name) is None]
    if missing:
        return (f"{' and '.join(missing)} not found: apt-get install chromium chromium-driver "
                "(.ci/run installs them)")
    return None


def start_browser(width: int = 1000, height: int = 900) -> Any:
    """Headless Chromium through chromedriver (both from ``PATH``, never downloaded), its window
    ``width`` × ``height``, the browser's console kept (``driver.get_log("browser")``), audio allowed to play
    without a click."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--autoplay-policy=no-user-gesture-required", "--mute-audio", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--window-size={width},{height}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(shutil.which(CHROMEDRIVER)))


def search(driver: Any, url: str, request: str, k: int | None = None, timeout: float = 60) -> None:
    """Open the page at ``url``, set ``k`` (when given), type ``request``, press Enter and wait until the
    results (or an error) are shown."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    if k is not None:
        driver.find_element(By.ID, "k").clear()
        driver.find_element(By.ID, "k").send_keys(str(k))
    box = driver.find_element(By.ID, "request")
    box.clear()
    box.send_keys(request, Keys.ENTER)
    WebDriverWait(driver, timeout).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#list > li") or d.find_element(By.ID, "error").is_displayed())


def screenshot(url: str, out: Path, request: str, width: int = 1000, height: int = 900, k: int | None = None) -> Path:
    """Save the page at ``url``, having searched for ``request`` (``k`` tracks), as a PNG of the whole page
    ``width`` wide."""
    driver = start_browser(width, height)
    try:
        search(driver, url, request, k)
        full = driver.execute_script("return document.documentElement.scrollHeight")
        # the viewport itself made as tall as the page (the window's size would include its frame)
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": min(max(height, full), 4000), "deviceScaleFactor": 1, "mobile": False})
        out.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(out))
    finally:
        driver.quit()
    return out


def main() -> None:
    """The command line (module doc)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default="http://127.0.0.1:8000", help="the server (default http://127.0.0.1:8000)")
    p.add_argument("--out", type=Path, default=Path("docs/page.png"), help="PNG to write (default docs/page.png)")
    p.add_argument("--request", default="calm piano for a rainy evening, but no vocals", help="what to type")
    p.add_argument("-k", type=int, default=5, help="number of tracks (default 5)")
    p.add_argument("--width", type=int, default=900, help="window width in CSS pixels (default 900)")
    p.add_argument("--height", type=int, default=600, help="least height (default 600)")
    args = p.parse_args()
    reason = browser_missing()
    if reason:
        raise SystemExit(reason)
    print(screenshot(args.url, args.out, args.request, args.width, args.height, args.k))


if __name__ == "__main__":
    main()
