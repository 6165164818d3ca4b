"""The site around the Playground in a real browser: every page at phone width without sideways scrolling and with
its actions on screen, the compact phone header and its menu, the account pages in the site's layout, the 404
page and the favicon, a refused usage period after an htmx swap, and highlighted code blocks that stay text."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import CSP_REPORT
from tests.livesite import REPO, USERNAME

PHONE = {"width": 390, "height": 844}
LONG = "A conversation with a long title that a phone has to wrap somewhere sensible"

SEED = """
import json
from django.contrib.auth.models import User
from django.utils import timezone
from playground.bulk.models import BulkItem, BulkJob, Dataset, Prompt
from playground.chat.models import Conversation
from playground.tokens.services import token_create

user = User.objects.get(username=USERNAME)
Conversation.objects.get_or_create(user=user, title=LONG, defaults={"model_id": "smollm2-135m-instruct"})
token_create(user=user, label="phone test token with a long label", expires_at=None)
dataset, _ = Dataset.objects.get_or_create(user=user, name=NAME)
if not dataset.prompts.exists():
    Prompt.objects.bulk_create(
        Prompt(dataset=dataset, position=n, source_line=n + 1, text=f"Prompt number {n}: " + "words " * 30)
        for n in range(1, 61)
    )
job = BulkJob.objects.create(
    user=user, dataset=dataset, model_id="smollm2-135m-instruct", status=STATUS, total=60, last_position=60,
    finished_at=timezone.now(),
)
now = timezone.now()
BulkItem.objects.bulk_create(
    BulkItem(
        job=job, prompt=prompt, worker="seed", lease_until=now, finished_at=now, finish_reason="stop",
        state="failed" if prompt.position % 7 == 0 else "done",
        text="" if prompt.position % 7 == 0 else "A reply with `code` and a long word " + "x" * 80,
        error="the request took longer than 30 s" if prompt.position % 7 == 0 else "",
    )
    for prompt in dataset.prompts.all()[:DONE]
)
print("SEED=" + json.dumps({"dataset": dataset.pk, "job": job.pk}))
"""


def site_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of the session's live site (tests/browser/conftest.py: `site`): its database is there."""
    found = sorted(tmp_path_factory.getbasetemp().glob("browser-site*/server.pid"))
    assert found, "the live site's folder was not found"
    return found[-1].parent


def seed_bulk(
    tmp_path_factory: pytest.TempPathFactory, *, name: str, status: str = "failed", done: int = 60
) -> dict[str, int]:
    """Data in the live site's database, written as the site would have (no model needs to run): a conversation,
    a token, and a dataset `name` of 60 prompts with a finished job over it (`done` of them with results)."""
    values = {"USERNAME": USERNAME, "LONG": LONG, "NAME": name, "STATUS": status, "DONE": done}
    code = "".join(f"{key} = {value!r}\n" for key, value in values.items()) + SEED
    env = {
        **os.environ,
        "PLAYGROUND_SQLITE_PATH": str(site_workdir(tmp_path_factory) / "db.sqlite3"),
        "PLAYGROUND_LOG_LEVEL": "WARNING",
    }
    done_run = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    line = next(line for line in done_run.stdout.splitlines() if line.startswith("SEED="))
    return json.loads(line[len("SEED=") :])


def no_sideways_scrolling(page: Page) -> int:
    return page.evaluate("() => document.documentElement.scrollWidth")


def on_screen(page: Page, selector: str) -> None:
    """Every element matching `selector` lies within the phone's width (not pushed off to the right)."""
    boxes = page.locator(selector).evaluate_all("(els) => els.map((el) => el.getBoundingClientRect().right)")
    assert boxes, selector
    assert max(boxes) <= PHONE["width"], (selector, boxes)


def test_every_page_fits_a_phone_with_its_actions_on_screen(page: Page, tmp_path_factory: pytest.TempPathFactory):
    ids = seed_bulk(tmp_path_factory, name="Phone set")
    page.set_viewport_size(PHONE)
    pages = [
        "/",
        "/models/smollm2-135m-instruct/",
        "/models/smollm2-135m-instruct/?tab=playground",
        "/models/smollm2-135m-instruct/?tab=code",
        "/models/smollm2-135m-instruct/?tab=api",
        "/models/whisper-tiny.en/?tab=playground",
        "/chat/",
        "/tokens/",
        "/usage/",
        "/usage/?start=2025-03-10&end=2025-03-01",
        "/pricing/",
        "/api/",
        "/bulk/",
        f"/bulk/datasets/{ids['dataset']}/",
        "/bulk/history/",
        f"/bulk/jobs/{ids['job']}/results/",
        f"/bulk/jobs/{ids['job']}/results/?show=failed",
        "/accounts/password_change/",
        "/accounts/password_change/done/",
        "/no-such-page/",
    ]
    for path in pages:
        page.goto(path)
        page.wait_for_load_state("networkidle")
        assert no_sideways_scrolling(page) <= PHONE["width"], path
        if path == "/chat/":
            on_screen(page, "#conversations button")  # Rename and Delete
        elif path == "/tokens/":
            on_screen(page, "#token-list button")  # Revoke
        elif path == "/bulk/history/":
            on_screen(page, "#jobs [data-action]:visible")  # View results, Download, Delete, Retry failed
        elif path.startswith("/bulk/jobs/"):
            on_screen(page, "#results td")
        elif path == "/api/":
            on_screen(page, ".table-scroll")  # each wide table scrolls inside itself


def test_the_logged_out_pages_fit_a_phone(browser: Browser, site: str):
    context = browser.new_context(base_url=site, viewport=PHONE)
    page = context.new_page()
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text) if CSP_REPORT in message.text else None)
    for path in ("/", "/accounts/login/", "/accounts/signup/", "/api/", "/pricing/", "/no-such-page/"):
        page.goto(path)
        assert no_sideways_scrolling(page) <= PHONE["width"], path
    context.close()
    assert violations == []


def test_on_a_phone_the_header_is_one_line_and_its_menu_works_from_the_keyboard(page: Page):
    page.set_viewport_size(PHONE)
    page.goto("/models/smollm2-135m-instruct/?tab=playground")
    header = page.locator("header.top").bounding_box()
    tabs = page.locator(".tabs").bounding_box()
    assert header and tabs
    assert header["height"] <= 56  # brand, theme and Menu on one line
    assert tabs["y"] + tabs["height"] <= PHONE["height"] * 0.4  # the Playground starts in the first screen
    expect(page.locator("#chat-input")).to_be_in_viewport()
    nav = page.get_by_role("navigation", name="Site")
    expect(nav).to_be_hidden()

    menu = page.get_by_role("button", name="Menu")
    menu.focus()
    page.keyboard.press("Enter")
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(nav.get_by_role("link", name="Tokens")).to_be_visible()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    assert no_sideways_scrolling(page) <= PHONE["width"]
    page.keyboard.press("Escape")
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(nav).to_be_hidden()
    expect(menu).to_be_focused()

    menu.click()
    nav.get_by_role("link", name="Tokens").click()
    page.wait_for_url("**/tokens/")
    expect(page.get_by_role("navigation", name="Site")).to_be_hidden()  # folded again on the next page


def test_on_a_wide_screen_the_links_show_without_a_menu(page: Page):
    page.goto("/")
    expect(page.get_by_role("button", name="Menu")).to_be_hidden()
    expect(page.get_by_role("navigation", name="Site").get_by_role("link", name="Tokens")).to_be_visible()
    header = page.locator("header.top").bounding_box()
    assert header and header["height"] <= 80  # one line, or two on a narrow laptop


def test_account_pages_are_in_the_sites_layout(page: Page):
    page.goto("/accounts/password_change/")
    expect(page.locator("header.top .brand")).to_have_text("GenAI Playground")
    expect(page.get_by_role("heading", name="Change password")).to_be_visible()
    expect(page.locator("body")).not_to_contain_text("Django administration")
    page.fill("#id_old_password", "not my password")
    page.fill("#id_new_password1", "a-brand-new-pass-99")
    page.fill("#id_new_password2", "a-brand-new-pass-99")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator(".errorlist")).to_contain_text("old password was entered incorrectly")
    expect(page.locator("header.top .brand")).to_be_visible()
    page.goto("/accounts/password_change/done/")
    expect(page.get_by_role("heading", name="Password changed")).to_be_visible()
    expect(page.get_by_role("link", name="Admin")).to_have_count(0)  # a normal user gets no admin link


def test_an_unknown_page_is_the_sites_404_and_the_favicon_is_served(page: Page):
    response = page.goto("/no/such/page/")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    expect(page.get_by_role("navigation", name="Site").get_by_role("link", name="Models")).to_be_visible()
    page.get_by_role("link", name="The models").click()
    page.wait_for_url("**/")

    icon = page.locator("link[rel=icon]").get_attribute("href")
    assert icon == "/static/favicon.svg"
    favicon = page.request.get("/favicon.ico")  # redirected to the SVG
    assert favicon.ok and favicon.headers["content-type"].startswith("image/svg+xml")
    assert favicon.text().startswith("<svg")


def test_a_refused_usage_period_says_so_after_an_htmx_swap(page: Page):
    page.goto("/usage/")
    page.evaluate("() => { window.beforeSwap = true; }")  # gone if the page were loaded again
    page.fill("input[name=start]", "2025-03-10")
    page.fill("input[name=end]", "2025-03-01")
    page.get_by_role("button", name="Show").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("The start date must not be after the end date.")
    expect(alert).to_contain_text("Showing the last 30 days instead.")
    assert page.evaluate("() => window.beforeSwap") is True  # swapped by htmx, not reloaded
    page.fill("input[name=start]", "2025-03-01")
    page.fill("input[name=end]", "2025-03-10")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#report")).to_contain_text("2025-03-01 to 2025-03-10")
    expect(page.get_by_role("alert")).to_have_count(0)


CODE = "def greet(name):\n    # say hello\n    return f\"<img src=x onerror='window.pwned=1'> {name}\" + 42\n"


def test_code_blocks_are_highlighted_and_model_text_stays_text(page: Page):
    page.goto("/models/smollm2-135m-instruct/?tab=playground")
    page.wait_for_function("() => typeof window.hljs === 'object' && typeof window.renderMarkdownInto === 'function'")
    result = page.evaluate(
        """(code) => {
            const box = document.createElement("div");
            box.className = "msg-body";
            document.body.appendChild(box);
            const text = "Here:\\n```python\\n" + code + "```\\nand\\n```nosuchlang\\n<b>x</b>\\n```";
            window.renderMarkdownInto(box, text);
            const [highlighted, plain] = box.querySelectorAll("pre code");
            return {
                kinds: [...highlighted.querySelectorAll("span")].map((s) => s.className),
                text: highlighted.textContent,
                elements: [...highlighted.querySelectorAll("*")].map((el) => el.tagName),
                plain: plain.innerHTML,
                plainClass: plain.className,
                keywordColour: getComputedStyle(highlighted.querySelector(".hljs-keyword")).color,
                textColour: getComputedStyle(highlighted).color,
            };
        }""",
        CODE,
    )
    assert "hljs-keyword" in result["kinds"] and "hljs-string" in result["kinds"] and "hljs-comment" in result["kinds"]
    assert result["text"] == CODE.rstrip("\n")  # exactly the model's text, nothing added or lost
    assert set(result["elements"]) == {"SPAN"}  # the <img> stayed text
    assert result["plain"] == "&lt;b&gt;x&lt;/b&gt;" and "hljs" not in result["plainClass"]  # unknown: plain text
    assert result["keywordColour"] != result["textColour"]
    assert page.evaluate("() => window.pwned") is None
