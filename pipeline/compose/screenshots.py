"""Screenshots of a rendered mail as a phone and a desktop show it, in headless Chromium.

Uses the machine's Chromium (Debian's ``chromium`` package, or CHROMIUM=path) through
Playwright, never a browser Playwright downloads, and keeps it off the network: the
page is set from memory and its background fetches are turned off.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import RenderError

WIDTHS = (375, 1280)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


Resources = Callable[[str], tuple[bytes, str] | None]  # a URL -> (body, content type), or None


@dataclass(frozen=True)
class Shot:
    path: Path
    width: int
    overflow: int  # CSS px the page is wider than the viewport (0 when it fits)
    scheme: str = "light"


def chromium_path() -> Path:
    """CHROMIUM, else the first chromium on PATH; RenderError saying how to get one."""
    found = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found or not Path(found).exists():
        raise RenderError("no Chromium to take screenshots with: install Debian's chromium package "
                          "(apt-get install chromium), or set CHROMIUM to its path")
    return Path(found)


def screenshot(html: str, stem: Path, widths: tuple[int, ...] = WIDTHS, *, schemes: tuple[str, ...] = ("light",),
               resources: Resources | None = None) -> list[Shot]:
    """``<stem>-<width>.png`` for each width (``-<width>-dark.png`` in the reader's dark mode), full page.

    Every request the page makes is answered by ``resources`` (our stored thumbnails, say) or
    refused: nothing is fetched from the network.
    """
    browser_path = chromium_path()
    try:
        from playwright.sync_api import Error, Route, sync_playwright
    except ImportError:
        raise RenderError("screenshots need the playwright package: pip install 'papermail[preview]' "
                          "(it drives the installed Chromium; no browser download is needed)") from None

    def answer(route: Route) -> None:
        found = resources(route.request.url) if resources else None
        if found is None:
            route.abort()
        else:
            route.fulfill(status=200, body=found[0], content_type=found[1])

    stem.parent.mkdir(parents=True, exist_ok=True)
    shots = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(browser_path), args=CHROMIUM_ARGS)
            try:
                for scheme in schemes:
                    for width in widths:
                        page = browser.new_page(viewport={"width": width, "height": 800},
                                                color_scheme="dark" if scheme == "dark" else "light")
                        page.route("**/*", answer)
                        page.set_content(html, wait_until="load")
                        suffix = "" if scheme == "light" else f"-{scheme}"
                        path = stem.with_name(f"{stem.name}-{width}{suffix}.png")
                        page.screenshot(path=str(path), full_page=True)
                        overflow = page.evaluate("document.documentElement.scrollWidth") - width
                        shots.append(Shot(path, width, max(0, int(overflow)), scheme))
                        page.close()
            finally:
                browser.close()
    except Error as exc:
        raise RenderError(f"Chromium ({browser_path}) could not take the screenshots: "
                          f"{str(exc).splitlines()[0]}") from exc
    return shots
