"""Headless Chromium for the UI tests and the screenshots in the docs.

Debian's Chromium (``/usr/bin/chromium``, installed by ``scripts/bootstrap``) is driven by
Playwright; Playwright's own browser download is not used.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Screenshots and other files a reader of a test run may want to look at (git-ignored).
ARTEFACTS = Path(__file__).resolve().parents[1] / "test-artefacts"


@contextmanager
def chromium_page(width: int = 1600, height: int = 1000) -> Iterator[Page]:
    """A page of a fresh headless Chromium (a new profile each time)."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(60_000)
            yield page
        finally:
            browser.close()
