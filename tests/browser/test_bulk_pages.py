"""Bulk Prompts in the browser: upload a CSV, start a job on the real model, watch Async History
update without a reload, download the results, delete the job; the confirmations (an accessible dialog, no
inline script), Resume and Retry failed, the results view, renaming and deleting a dataset, and a spreadsheet's
CSV with an id column. Jobs with results are seeded straight into the live site's database where no model needs
to run (tests/browser/test_site_polish.py: seed_bulk)."""

from __future__ import annotations

import csv
import io
import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import screenshot
from tests.browser.test_site_polish import seed_bulk

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
        assert int(page.locator("#id_max_tokens").get_attribute("max") or 0) >= 1024  # the model's own limit
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

    job_id = row.get_attribute("data-job")
    row.locator("[data-action=delete]").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Delete").click()  # asked first
    expect(page.get_by_role("status")).to_have_text("Job deleted.")
    expect(page.locator(f'#jobs tr[data-job="{job_id}"]')).to_have_count(0)


def job_row(page: Page, dataset: str):  # noqa: ANN201
    return page.locator("#jobs tr[data-job]", has_text=dataset).first


def test_delete_and_clear_all_ask_first_in_a_dialog_that_works_from_the_keyboard(
    page: Page, tmp_path_factory: pytest.TempPathFactory
):
    seed_bulk(tmp_path_factory, name="Confirm set", status="completed")
    page.goto("/bulk/history/")
    row = job_row(page, "Confirm set")
    delete = row.locator("[data-action=delete]")
    delete.click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Delete this job (Confirm set on smollm2-135m-instruct) and its results?")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()  # the safe choice has the focus
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(row).to_be_visible()  # nothing was deleted
    expect(delete).to_be_focused()  # the focus goes back where it was

    delete.press("Enter")  # keyboard only: open, move to the confirm button, press it
    expect(dialog).to_be_visible()
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("button", name="Delete")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Job deleted.", timeout=20_000)  # a loaded CI machine
    expect(page.locator("#jobs tr[data-job]", has_text="Confirm set")).to_have_count(0)

    seed_bulk(tmp_path_factory, name="Confirm set", status="completed")
    page.reload()
    page.click("#clear-all")
    expect(dialog).to_contain_text("Remove every Completed and Failed job with its results?")
    dialog.get_by_role("button", name="Cancel").click()
    expect(job_row(page, "Confirm set")).to_be_visible()
    page.click("#clear-all")
    dialog.get_by_role("button", name="Clear All").click()
    expect(page.get_by_role("status")).to_contain_text("Cleared")
    expect(page.locator("#jobs tr[data-job]", has_text="Confirm set")).to_have_count(0)


def test_a_cancelled_job_says_resume_and_one_with_failures_retry_failed(
    page: Page, tmp_path_factory: pytest.TempPathFactory
):
    seed_bulk(tmp_path_factory, name="Cancelled set", status="cancelled", done=20)
    seed_bulk(tmp_path_factory, name="Failing set", status="failed")
    page.goto("/bulk/history/")
    expect(job_row(page, "Cancelled set").locator("[data-action=retry]")).to_have_text("Resume")
    expect(job_row(page, "Failing set").locator("[data-action=retry]")).to_have_text("Retry failed")
    # Newest first: the job seeded last is the first row.
    expect(page.locator("#jobs tr[data-job]").first).to_contain_text("Failing set")


def test_results_are_viewed_in_the_browser_a_page_at_a_time(page: Page, tmp_path_factory: pytest.TempPathFactory):
    seed_bulk(tmp_path_factory, name="Results set", status="failed")
    page.goto("/bulk/history/")
    job_row(page, "Results set").get_by_role("link", name="View results").click()
    expect(page.get_by_role("heading", name="Results: Results set")).to_be_visible()
    rows = page.locator("#results tbody tr")
    expect(rows).to_have_count(50)
    expect(rows.first).to_contain_text("Prompt number 1:")
    expect(rows.first).to_contain_text("A reply with `code`")  # the reply as the model wrote it, not rendered
    expect(page.locator('#results tr[data-position="7"]')).to_contain_text("the request took longer than 30 s")
    page.get_by_role("link", name="Next →").click()
    expect(rows).to_have_count(10)
    expect(rows.first).to_contain_text("Prompt number 51:")
    screenshot(page, "bulk-results")
    page.get_by_role("link", name="← Previous").click()
    expect(rows).to_have_count(50)
    page.get_by_role("link", name="Failed only (8)").click()
    expect(rows).to_have_count(8)
    for n in range(8):
        expect(rows.nth(n)).to_have_attribute("data-state", "failed")


def test_a_dataset_is_renamed_then_deleted_with_its_jobs(page: Page, tmp_path_factory: pytest.TempPathFactory):
    ids = seed_bulk(tmp_path_factory, name="Temporary set", status="completed")
    page.goto(f"/bulk/datasets/{ids['dataset']}/")
    page.fill("#rename-dataset input[name=name]", "Renamed set")
    page.get_by_role("button", name="Rename").click()
    expect(page.get_by_role("status")).to_have_text("Renamed Temporary set to Renamed set.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Renamed set")

    page.get_by_role("button", name="Delete dataset").click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_contain_text(
        "Delete the dataset “Renamed set” with its 60 prompts and its 1 job and their results?"
    )
    dialog.get_by_role("button", name="Delete").click()
    page.wait_for_url(re.compile(r"/bulk/$"))
    expect(page.get_by_role("status")).to_have_text("Deleted the dataset Renamed set and its 1 job with their results.")
    expect(page.locator("#datasets")).not_to_contain_text("Renamed set")


def test_a_spreadsheet_csv_with_an_id_column_is_taken(page: Page):
    page.goto("/bulk/")
    page.fill("input[name=new_name]", "Sheet set")
    sheet = b"id,prompts,notes\n1,Say hello.,greeting\n2,Count to three.,numbers\n"
    page.set_input_files("input[name=file]", files=[{"name": "sheet.csv", "mimeType": "text/csv", "buffer": sheet}])
    page.click("#upload button[type=submit]")
    expect(page.get_by_role("status")).to_have_text(
        "Added 2 prompts from sheet.csv to Sheet set. Only the 'prompts' column was read; ignored: 'id', 'notes'."
    )
