"""Every page of the site under the Content-Security-Policy: the `page` fixture fails a test whose pages made
Chromium report a violation; this one walks the pages that the other browser tests do not open."""

from __future__ import annotations

from playwright.sync_api import Page

PAGES = [
    "/",
    "/chat/",
    "/compare/",
    "/tokens/",
    "/usage/",
    "/pricing/",
    "/api/",
    "/bulk/",
    "/bulk/history/",
    "/accounts/password_change/",
    "/admin/login/",
]


def test_every_page_loads_its_scripts_under_the_policy(page: Page):
    for path in PAGES:
        response = page.goto(path)
        assert response is not None and response.ok, path
        assert "script-src 'self'" in (response.headers.get("content-security-policy") or ""), path
        page.wait_for_load_state("networkidle")
    # The scripts are static files, so they still run: htmx among them.
    page.goto("/pricing/")
    assert page.evaluate("typeof window.htmx") == "object"
