"""Playwright driving Debian's Chromium against the real site (Daphne, real models)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.livesite import PASSWORD, USERNAME, live_site

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
CSP_REPORT = "Content Security Policy"  # in every console message of Chromium's about a violation
# The pages forbid eval: give page.wait_for_function a function ("() => ..."), which Playwright compiles itself;
# a bare expression is eval()ed inside the page and the CSP refuses it.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with live_site(tmp_path_factory.mktemp("browser-site")) as base:
        yield base


# Module scope: Playwright's sync API keeps an event loop running in this thread while it is open,
# and the asyncio tests that follow in other modules need the thread's loop free.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is missing: ./dev test installs it (apt-get install chromium)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, site: str) -> Iterator[Page]:
    """A logged-in page. The test fails if the Content-Security-Policy blocked anything on any page it visited."""
    context = browser.new_context(base_url=site, viewport={"width": 1280, "height": 860})
    context.grant_permissions(["clipboard-read", "clipboard-write", "microphone"], origin=site)
    page = context.new_page()
    violations: list[str] = []  # Chromium reports every blocked script, style, connection or frame in the console
    page.on("console", lambda message: violations.append(message.text) if CSP_REPORT in message.text else None)
    page.set_default_timeout(30_000)
    page.goto("/accounts/login/")
    page.fill("input[name=username]", USERNAME)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(site + "/")
    yield page
    context.close()
    assert violations == [], "the pages broke the Content-Security-Policy (playground/settings.py, SECURE_CSP)"


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
