"""A real browser for the status page tests: Debian's /usr/bin/chromium, headless, driven by the
playwright package (which is pointed at it and never downloads a browser of its own)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright

from tests.support import REPO

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # the tests run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = REPO / "test-output"  # gitignored; a human can look at what the test saw
WAIT_MS = 10_000


def require_chromium() -> None:
    """Fail (never skip) when chromium is missing."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing; install it: scripts/ensure-chromium", pytrace=False)


@contextlib.asynccontextmanager
async def chromium_page(user_data_dir: Path, *, locale: str = "en-US") -> AsyncIterator[Page]:
    """A page in a fresh headless chromium profile whose language is `locale`."""
    require_chromium()
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(user_data_dir),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
            locale=locale,
        )
        try:
            context.set_default_timeout(WAIT_MS)
            page = context.pages[0] if context.pages else await context.new_page()
            yield page
        finally:
            await context.close()


async def log_in(page: Page, base_url: str, token: str) -> None:
    """Open the page, which shows the login form, and log in through it."""
    await page.goto(base_url + "/")
    await page.fill("#token", token)
    await page.click("button[type=submit]")
    await page.wait_for_selector("#campaigns-title")


async def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / name
    await page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path
