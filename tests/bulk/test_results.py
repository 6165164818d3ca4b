"""A job's results in the browser: every prompt beside its reply, or its error, or nothing yet, a page at a time
(keyset pages: ?after= / ?before=), failed ones alone on request; model text escaped; another user's job a 404."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from playground.bulk import services
from playground.bulk.services import job_results_page
from tests.bulk.test_history import make_job, result

pytestmark = pytest.mark.django_db


def positions(body: str) -> list[int]:
    return [int(p) for p in re.findall(r'data-position="(\d+)"', body)]


def test_results_show_each_prompt_with_its_reply_error_or_state(client, user, make_dataset):
    job = make_job(user, make_dataset(user, ["Say hi", "Break", "Later", "Now"]), "processing")
    result(job, 1, text="Hi <b>there</b>", finish_reason="stop", completion_tokens=3, latency_ms=12.4)
    result(job, 2, state="failed", error="the request took longer than 30 s")
    result(job, 4, state="claimed")
    client.force_login(user)
    response = client.get(reverse("bulk:results", args=[job.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert positions(body) == [1, 2, 3, 4]
    assert "Hi &lt;b&gt;there&lt;/b&gt;" in body and "<b>there</b>" not in body  # model text stays text
    assert re.search(r'data-state="done">.*?Done.*?stop · 3 tokens · 12 ms', body, re.S)
    assert re.search(r'data-state="failed">.*?Failed.*?the request took longer than 30 s', body, re.S)
    assert re.search(r'data-position="3" data-state="pending">.*?Waiting', body, re.S)
    assert re.search(r'data-position="4" data-state="claimed">.*?Running', body, re.S)
    assert "Downloads open when the job has finished" in body


def test_failed_only(client, user, make_dataset):
    job = make_job(user, make_dataset(user, ["a", "b", "c"]), "failed")
    result(job, 1)
    result(job, 2, state="failed", error="boom")
    result(job, 3)
    client.force_login(user)
    body = client.get(reverse("bulk:results", args=[job.pk]), {"show": "failed"}).content.decode()
    assert positions(body) == [2] and "boom" in body and "Failed only (1)" in body


def test_a_cancelled_jobs_prompts_never_run_say_so(client, user, make_dataset):
    job = make_job(user, make_dataset(user, ["a", "b"]), "cancelled")
    result(job, 1)
    client.force_login(user)
    body = client.get(reverse("bulk:results", args=[job.pk])).content.decode()
    assert re.search(r'data-position="2" data-state="pending">.*?Not run', body, re.S)
    assert reverse("bulk:download", args=[job.pk, "csv"]) in body


def test_results_come_a_page_at_a_time_both_ways(client, user, make_dataset, monkeypatch):
    monkeypatch.setattr(services, "RESULTS_PAGE", 3)
    job = make_job(user, make_dataset(user, [f"p{n}" for n in range(1, 8)]), "completed")
    for n in range(1, 8):
        result(job, n, text=f"r{n}")
    client.force_login(user)
    url = reverse("bulk:results", args=[job.pk])
    first = client.get(url).content.decode()
    assert positions(first) == [1, 2, 3] and 'rel="next" href="?after=3"' in first and 'rel="prev"' not in first
    second = client.get(url, {"after": "3"}).content.decode()
    assert positions(second) == [4, 5, 6] and 'href="?before=4"' in second and 'href="?after=6"' in second
    last = client.get(url, {"after": "6"}).content.decode()
    assert positions(last) == [7] and 'rel="next"' not in last
    back = client.get(url, {"before": "7"}).content.decode()
    assert positions(back) == [4, 5, 6]
    assert positions(client.get(url, {"after": "nonsense"}).content.decode()) == [1, 2, 3]


def test_a_page_costs_the_same_few_queries_deep_into_a_job(user, make_dataset, django_assert_max_num_queries):
    job = make_job(user, make_dataset(user, [f"p{n}" for n in range(1, 121)]), "completed")
    for n in (1, 100, 101):
        result(job, n)
    with django_assert_max_num_queries(4):  # the page's prompts, their results, and "any before / after?"
        page = job_results_page(job, after=99, size=10)
    assert [r.position for r in page.rows] == list(range(100, 110))
    assert [r.state for r in page.rows[:3]] == ["done", "done", ""]
    assert (page.before, page.after) == (100, 109)


def test_another_users_results_are_not_found(client, user, other_user, make_dataset):
    theirs = make_job(other_user, make_dataset(other_user, ["secret prompt"], name="Theirs"), "completed")
    result(theirs, 1, text="secret answer")
    client.force_login(user)
    for query in ({}, {"show": "failed"}, {"after": "0"}):
        response = client.get(reverse("bulk:results", args=[theirs.pk]), query)
        assert response.status_code == 404 and b"secret" not in response.content


def test_results_need_a_login(client, user, make_dataset):
    job = make_job(user, make_dataset(user, ["a"]), "completed")
    assert client.get(reverse("bulk:results", args=[job.pk])).status_code == 302


def test_history_links_each_job_to_its_results(client, user, make_dataset):
    job = make_job(user, make_dataset(user, ["a"]), "processing")
    client.force_login(user)
    body = client.get(reverse("bulk:history")).content.decode()
    assert f'data-action="results" href="{reverse("bulk:results", args=[job.pk])}"' in body
