"""Bulk Prompts in the browser: upload a CSV, start a job on the real model, watch Async History
update without a reload, download the results, delete the job."""

from __future__ import annotations

import csv
import io
import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import screenshot

CSV = 'prompts\nSay hello.\n"Name two colours, red and one more."\nCount to three.\n'


def test_a_bulk_job_from_upload_to_download(page: Page, tmp_path):
    page.goto("/bulk/")
    page.fill("input[name=new_name]", "Browser set")
    page.set_input_files(
        "input[name=file]", files=[{"name": "set.csv", "mimeType": "text/csv", "buffer": CSV.encode()}]
    )
    page.click("#upload button[type=submit]")
    expect(page.get_by_role("status")).to_contain_text("Added 3 prompts from set.csv to Browser set.")

    page.get_by_role("row", name=re.compile("Browser set")).get_by_role("link", name="Run…").click()
    for model in ("gemma-3-270m", "smollm2-135m-instruct"):  # the form reloads with each model's values
        page.select_option("select[name=model]", model)
        expect(page).to_have_url(re.compile(f"model={model}"))
        expect(page.locator("select[name=model]")).to_have_value(model)
        expect(page.locator("#id_max_tokens")).to_have_attribute("max", "1024")  # one batch slot's context
    page.fill("textarea[name=system_prompt]", "Answer in a few words.")
    page.fill("#id_max_tokens", "12")
    page.fill("#id_temperature", "0")
    page.click("#start-job button[type=submit]")

    page.wait_for_url(re.compile(r"/bulk/history/"))
    row = page.locator("#jobs tr[data-job]").first
    expect(row).to_contain_text("Browser set")
    expect(row.locator("[data-field=status]")).to_have_text("Completed", timeout=120_000)  # polled, no reload
    expect(row.locator("[data-field=counts]")).to_have_text("3 done · 0 failed · 3 total")
    expect(row.locator("[data-action=delete]")).to_be_enabled()
    expect(row.locator("[data-action=cancel]")).to_be_hidden()
    expect(row.locator("[data-action=retry]")).to_be_hidden()
    screenshot(page, "bulk-history")

    with page.expect_download() as download:
        row.get_by_role("link", name="Download CSV").click()
    path = tmp_path / "results.csv"
    download.value.save_as(path)
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert [r["prompt"] for r in rows] == ["Say hello.", "Name two colours, red and one more.", "Count to three."]
    assert all(r["response"].strip() and r["status"] == "ok" for r in rows)

    row.locator("[data-action=delete]").click()
    expect(page.get_by_role("status")).to_have_text("Job deleted.")
    expect(page.locator("#jobs tr[data-job]")).to_have_count(0)
