"""Headless Chromium driving the page, for the parity test and the latency benchmark.

Playwright (PyPI ``playwright``) drives the system's Chromium (Debian's ``chromium`` package), so
no browser is downloaded. The flags keep Chromium off the network (this machine has none but the
package registries) and give it a synthetic camera, so the live-preview path runs without one.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from typing import Iterator

CHROMIUM_FLAGS = ("--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream")


def find_chromium() -> str | None:
    """``$DIQA_CHROMIUM``, else the first Chromium or Chrome on PATH."""
    explicit = os.environ.get("DIQA_CHROMIUM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


@contextmanager
def page_at(url: str, chromium: str, viewport: tuple[int, int] = (1180, 760), timeout_s: float = 120) -> Iterator:
    """A loaded page whose ``window.diqa.ready`` has resolved (the model is in memory). Errors thrown in
    the page and not caught there are collected in ``page.diqa_page_errors``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=list(CHROMIUM_FLAGS))
        try:
            context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
            context.grant_permissions(["camera"])
            page = context.new_page()
            page.set_default_timeout(timeout_s * 1000)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.diqa_page_errors = errors
            page.goto(url)
            page.wait_for_function("window.diqa && window.diqa.ready", timeout=timeout_s * 1000)
            page.evaluate("window.diqa.ready")
            yield page
        finally:
            browser.close()
