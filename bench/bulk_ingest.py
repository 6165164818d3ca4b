"""Bulk Prompts at scale: the CSV parse, an upload beside other users' work, and a million-row download.

    .venv/bin/python bench/bulk_ingest.py [--mb 500] [--upload-mb 100] [--download-rows 1000000]

Parse (--mb; 0 skips it): generates a CSV of about --mb megabytes (quoted prompts with commas, some with
newlines) in a temporary directory, then in one run: reads it raw in 1 MiB chunks (baseline), and parses it
with playground.bulk.csvfile.prompts_read. Prints rows, seconds, MB/s, the ratio ours/raw, and the growth of
the process's peak resident memory during the parse (goal: under 100 MB for 500 MB).

Upload beside other users (--upload-mb; 0 skips it): on a fresh SQLite file with the site's settings (WAL,
BEGIN IMMEDIATE, a 20 s busy timeout), a CSV of about --upload-mb megabytes goes into new datasets, both
with the code as it was (`legacy_upload`: the whole file in one transaction) and with the site's
`services.dataset_upload` (short transactions, rows shown when the whole file is accepted). Meanwhile, and
for a few seconds before as a baseline, another user does every second what a person at the site does:
logs in (POST /accounts/login/: a session row and last_login), chats on the Playground socket (/ws/chat/
through the site's ASGI application: a saved conversation, its messages, a usage record) and calls the API
(POST /v1/chat/completions with a token: a usage record), on a fake engine that answers at once. All of it
runs in this one process, on threads, as one web process would serve it (the parse competes for the GIL).
Each side also uploads the file once alone first, for its own speed. Prints per side: the upload's time alone
and beside the other user, how many of that user's actions ran, how many failed, the slowest (goal: none
failed, slowest under 1 s), and the usage records that should exist but do not.

Download (--download-rows; 0 skips it): a finished job of that many results, downloaded as CSV through the
ASGI handler: the site's view (an async iterator over batches) and the sync generator it replaced, which
Django under ASGI reads whole before sending. Prints time to the first byte and the first row, the total,
the bytes, and the peak growth of resident memory while it ran (sampled every 5 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playground.bulk.csvfile import CHUNK, prompts_read  # noqa: E402

ROWS = (
    b'"Summarise, in one sentence, the plot of a novel about a lighthouse keeper."\n',
    b'"Write a haiku about autumn,\nthen explain it."\n',
    b"Translate good morning into French\n",
)
PASSWORD = "bench-pw-123!"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024 / 1024


class RssPeak(threading.Thread):
    """Samples the resident set every 5 ms: the peak growth over the start, for one part of the run."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.start_mb = rss_mb()
        self.peak_mb = self.start_mb
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.005):
            self.peak_mb = max(self.peak_mb, rss_mb())

    def stop(self) -> float:
        self.done.set()
        self.join()
        return max(self.peak_mb, rss_mb()) - self.start_mb


def write_csv(path: Path, mb: int) -> None:
    """A CSV of about `mb` megabytes: the `prompts` header, then the sample rows over and over."""
    target = mb * 1024 * 1024
    with open(path, "wb") as out:
        out.write(b"prompts\n")
        block = b"".join(ROWS) * 2000
        written = 8
        while written + len(block) <= target:
            out.write(block)
            written += len(block)


def parse(work: Path, mb: int) -> None:
    path = work / "parse.csv"
    target = mb * 1024 * 1024
    write_csv(path, mb)
    size_mb = path.stat().st_size / 1024 / 1024

    started = time.perf_counter()
    with open(path, "rb") as handle:
        while handle.read(CHUNK):
            pass
    raw_s = time.perf_counter() - started

    before = peak_rss_mb()
    started = time.perf_counter()
    rows = sum(1 for _ in prompts_read(path, max_bytes=target + 1))
    ours_s = time.perf_counter() - started
    growth = peak_rss_mb() - before
    path.unlink()
    print(f"file {size_mb:.0f} MB, {rows} prompts")
    print(f"raw chunked read: {raw_s:.2f} s ({size_mb / raw_s:.0f} MB/s)")
    print(f"prompts_read:     {ours_s:.2f} s ({size_mb / ours_s:.0f} MB/s), ratio ours/raw {raw_s / ours_s:.3f}")
    print(f"peak RSS growth while parsing: {growth:.1f} MB (goal < 100 MB)")


def django_setup(work: Path) -> None:
    """The site's settings on a fresh SQLite file in `work`, no bulk worker threads, metering on."""
    os.environ["PLAYGROUND_SQLITE_PATH"] = str(work / "db.sqlite3")
    os.environ["PLAYGROUND_BULK_WORKERS"] = "0"
    os.environ["PLAYGROUND_METERING"] = "1"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)

    from inference import EnginePool, ModelSpec
    from inference.device import DeviceDecision
    from playground import engines

    spec = ModelSpec(id="fake-chat", name="Fake Chat", task="text-to-text", engine="fake", path=Path("/nonexistent"))
    engines.set_pool(EnginePool([spec], device=DeviceDecision("cpu", "benchmark"), threads=1))


# --- An upload beside another user's work -------------------------------------------------------------


def legacy_upload(*, dataset: Any, path: Path) -> int:
    """services.dataset_upload as it was before uploads went in short transactions (git show e24bd77:
    playground/bulk/services.py): the whole file inside one transaction, which holds SQLite's write lock."""
    from django.db import connection, transaction
    from django.db.models import Max

    from playground.bulk.models import Dataset, Prompt

    table = connection.ops.quote_name(Prompt._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(c) for c in ("dataset_id", "position", "source_line", "text"))
    sql = f"INSERT INTO {table} ({columns}) VALUES (%s, %s, %s, %s)"
    with transaction.atomic():
        Dataset.objects.select_for_update().filter(pk=dataset.pk).first()
        start = (dataset.prompts.aggregate(last=Max("position"))["last"] or 0) + 1
        batch: list[tuple[int, int, int, str]] = []
        count = 0
        with connection.cursor() as cursor:
            for row in prompts_read(path):
                batch.append((dataset.pk, start + count, row.line, row.prompt))
                count += 1
                if len(batch) >= 2000:
                    cursor.executemany(sql, batch)
                    batch.clear()
            if batch:
                cursor.executemany(sql, batch)
    return count


class Bystander(threading.Thread):
    """Another user, every second: log in, one chat reply on the Playground socket, one API call.

    Each action is timed on its own; one that raises or answers with anything but success is a failure.
    """

    def __init__(self, username: str, token: str) -> None:
        super().__init__(name="bystander", daemon=True)
        self.username = username
        self.token = token
        self.stopped = threading.Event()
        self.times: dict[str, list[float]] = {"login": [], "chat": [], "api": []}
        self.failures: list[str] = []
        self.succeeded = {"chat": 0, "api": 0}  # each writes one usage record

    def run(self) -> None:
        from django.db import connection

        try:
            while not self.stopped.is_set():
                tick = time.monotonic()
                self.tick()
                self.stopped.wait(max(0.0, 1.0 - (time.monotonic() - tick)))
        finally:
            connection.close()

    def timed(self, name: str, action: Callable[[], str]) -> Any:
        started = time.perf_counter()
        try:
            problem = action()
        except Exception as exc:  # "database is locked" and the like
            problem = f"{type(exc).__name__}: {exc}"
        self.times[name].append(time.perf_counter() - started)
        if problem:
            self.failures.append(f"{name}: {problem}"[:200])
        elif name in self.succeeded:
            self.succeeded[name] += 1

    def tick(self) -> None:
        from django.test import Client

        client = Client(HTTP_HOST="localhost")

        def login() -> str:
            response = client.post("/accounts/login/", {"username": self.username, "password": PASSWORD})
            return "" if response.status_code == 302 else f"status {response.status_code}"

        def chat() -> str:
            return asyncio.run(self.chat(client.cookies["sessionid"].value))

        def api() -> str:
            response = client.post(
                "/v1/chat/completions",
                {"model": "fake-chat", "messages": [{"role": "user", "content": "Hello there"}], "max_tokens": 8},
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {self.token}",
            )
            return "" if response.status_code == 200 else f"status {response.status_code}: {response.content[:120]!r}"

        self.timed("login", login)
        if "sessionid" in client.cookies:
            self.timed("chat", chat)
        self.timed("api", api)

    async def chat(self, session: str) -> str:
        from channels.testing import WebsocketCommunicator

        from playground.asgi import application

        headers = [(b"cookie", f"sessionid={session}".encode()), (b"origin", b"http://localhost")]
        communicator = WebsocketCommunicator(application, "/ws/chat/", headers=headers)
        connected, _ = await communicator.connect(timeout=30)
        if not connected:
            return "the socket was refused"
        try:
            await communicator.send_json_to(
                {
                    "type": "generate",
                    "mode": "chat",
                    "model": "fake-chat",
                    "conversation": None,
                    "system": "",
                    "content": "Hello there",
                    "params": {"max_tokens": "8"},
                }
            )
            while True:
                frame = await communicator.receive_json_from(timeout=30)
                if frame["type"] == "done":
                    return ""
                if frame["type"] == "error":
                    return f"{frame['code']}: {frame['message']}"
        finally:
            await communicator.disconnect()


def usage_records(user: Any) -> int:
    from playground.usage.models import UsageRecord

    return UsageRecord.objects.filter(user=user).count()


def watch(user: Any, token: str, work: Callable[[], object] | None, seconds: float = 0.0) -> dict[str, Any]:
    """Run the bystander while `work` runs (or for `seconds`); what it saw."""
    before = usage_records(user)
    bystander = Bystander(user.username, token)
    bystander.start()
    started = time.perf_counter()
    result = work() if work else time.sleep(seconds)
    elapsed = time.perf_counter() - started
    bystander.stopped.set()
    bystander.join()
    time.sleep(0.5)  # the last usage record is written on the model's worker thread
    expected = bystander.succeeded["chat"] + bystander.succeeded["api"]
    return {
        "elapsed": elapsed,
        "result": result,
        "times": bystander.times,
        "failures": bystander.failures,
        "missing": expected - (usage_records(user) - before),
    }


def report(label: str, seen: dict[str, Any]) -> None:
    times = seen["times"]
    actions = sum(len(t) for t in times.values())
    slowest = {name: max(t, default=0.0) for name, t in times.items()}
    worst = max(slowest.values(), default=0.0)
    print(
        f"{label}: {actions} actions, {len(seen['failures'])} failed, slowest {worst:.3f} s "
        f"(login {slowest['login']:.3f}, chat {slowest['chat']:.3f}, api {slowest['api']:.3f}), "
        f"usage records missing: {seen['missing']}"
    )
    for failure in seen["failures"][:5]:
        print(f"    {failure}")


def upload_beside_users(work: Path, mb: int) -> None:
    from django.contrib.auth.models import User

    from playground.bulk.models import Dataset
    from playground.bulk.services import dataset_upload
    from playground.tokens.services import token_create

    owner = User.objects.create_user("uploader", password=PASSWORD)
    other = User.objects.create_user("bystander", password=PASSWORD)
    _, token = token_create(user=other, label="bench")
    path = work / "upload.csv"
    write_csv(path, mb)
    size_mb = path.stat().st_size / 1024 / 1024
    print(f"upload of {size_mb:.0f} MB while another user logs in, chats and calls the API every second:")
    report("  no upload (5 s)       ", watch(other, token, None, seconds=5))
    for label, upload in (("one transaction (old)", legacy_upload), ("short transactions   ", dataset_upload)):
        started = time.perf_counter()
        upload(dataset=Dataset.objects.create(user=owner, name=f"{label} alone"), path=path)
        alone = time.perf_counter() - started
        dataset = Dataset.objects.create(user=owner, name=label)
        seen = watch(other, token, lambda upload=upload, dataset=dataset: upload(dataset=dataset, path=path))
        rows = seen["result"]
        print(
            f"  {label}: {rows} prompts in {alone:.1f} s alone ({rows / alone:.0f} rows/s), "
            f"{seen['elapsed']:.1f} s beside the other user"
        )
        report(f"  {label}", seen)
    path.unlink()


# --- A million-row download ---------------------------------------------------------------------------


def finished_job(rows: int) -> tuple[Any, str]:
    """A completed job of `rows` results (made with SQL: the bench is about reading them); and a session."""
    from django.contrib.auth.models import User
    from django.db import connection, transaction
    from django.test import Client
    from django.utils import timezone

    from playground.bulk.models import BulkJob, Dataset

    user = User.objects.create_user("downloader", password=PASSWORD)
    dataset = Dataset.objects.create(user=user, name="Million")
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO bulk_prompt (dataset_id, position, source_line, text) "
            "SELECT %s, x, x + 1, 'Summarise, in one sentence, the plot of novel number ' || x || ', briefly.' "
            "FROM (WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < %s) SELECT x FROM n)",
            [dataset.pk, rows],
        )
        job = BulkJob.objects.create(
            user=user, dataset=dataset, model_id="fake-chat", status="completed", total=rows, last_position=rows
        )
        cursor.execute(
            "INSERT INTO bulk_bulkitem (job_id, prompt_id, state, worker, lease_until, text, finish_reason, "
            "prompt_tokens, completion_tokens, latency_ms, error, finished_at) "
            "SELECT %s, id, 'done', 'bench', %s, 'The novel ' || position || ' is about a keeper, and a lamp.', "
            "'stop', 20, 12, 123.45, '', %s FROM bulk_prompt WHERE dataset_id = %s",
            [job.pk, now, now, dataset.pk],
        )
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    return job, client.cookies["sessionid"].value


def legacy_response(job: Any) -> Any:
    """The download as it was (e24bd77: playground/bulk/views.py): a sync generator over one query."""
    import csv
    import io

    from django.http import StreamingHttpResponse

    from playground.bulk.models import BulkItem
    from playground.bulk.views import CSV_COLUMNS

    def lines() -> Iterator[str]:
        items = job.items.exclude(state=BulkItem.State.CLAIMED).select_related("prompt").order_by("prompt__position")
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for item in items.iterator(chunk_size=500):
            writer.writerow(
                {
                    "position": item.prompt.position,
                    "prompt": item.prompt.text,
                    "response": item.text,
                    "status": "ok" if item.state == BulkItem.State.DONE else "failed",
                    "finish_reason": item.finish_reason,
                    "prompt_tokens": item.prompt_tokens,
                    "completion_tokens": item.completion_tokens,
                    "latency_ms": round(item.latency_ms or 0, 1),
                    "error": item.error,
                }
            )
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        yield buffer.getvalue()

    return StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")


class Receiver:
    """An ASGI client's side of one response: when the first byte and the first row came, how much came."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.first_byte: float | None = None
        self.first_row: float | None = None
        self.bytes = 0
        self.status = 0
        self.parts = 0

    async def receive(self) -> dict[str, Any]:
        if not hasattr(self, "asked"):
            self.asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the client stays connected
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body" and message.get("body"):
            now = time.perf_counter() - self.started
            self.first_byte = self.first_byte if self.first_byte is not None else now
            if self.first_row is None and self.bytes + len(message["body"]) > 100:  # past the header line
                self.first_row = now
            self.bytes += len(message["body"])
            self.parts += 1


def download(rows: int) -> None:
    import warnings

    from django.core.handlers.asgi import ASGIHandler

    from playground.asgi import application

    warnings.simplefilter("ignore")  # the old generator warns that Django must read it whole
    started = time.perf_counter()
    job, session = finished_job(rows)
    made = time.perf_counter() - started
    print(f"download of a {rows}-row job as CSV through the ASGI handler (job made in {made:.0f} s):")
    path = f"/bulk/jobs/{job.pk}/results.csv"

    def site() -> Receiver:
        receiver = Receiver()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"localhost"), (b"cookie", f"sessionid={session}".encode())],
            "client": ("127.0.0.1", 50000),
            "server": ("localhost", 80),
        }
        asyncio.run(application(scope, receiver.receive, receiver.send))
        return receiver

    def old() -> Receiver:
        receiver = Receiver()
        asyncio.run(ASGIHandler().send_response(legacy_response(job), receiver.send))
        return receiver

    for label, run in (("async iterator (site)", site), ("sync generator (old) ", old)):
        peak = RssPeak()
        peak.start()
        receiver = run()
        growth = peak.stop()
        total = time.perf_counter() - receiver.started
        assert receiver.status == 200, receiver.status
        print(
            f"  {label}: first byte {receiver.first_byte or 0:.3f} s, first row {receiver.first_row or 0:.3f} s, "
            f"all {receiver.bytes / 1024 / 1024:.0f} MB in {total:.1f} s ({receiver.parts} parts), "
            f"peak RSS growth {growth:.0f} MB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=500, help="the parse's file (0: skip)")
    parser.add_argument("--upload-mb", type=int, default=100, help="the upload beside other users (0: skip)")
    parser.add_argument("--download-rows", type=int, default=1_000_000, help="the download's job (0: skip)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        work = Path(tmp)
        if args.mb:
            parse(work, args.mb)
        if args.upload_mb or args.download_rows:
            django_setup(work)
        if args.upload_mb:
            upload_beside_users(work, args.upload_mb)
        if args.download_rows:
            download(args.download_rows)


if __name__ == "__main__":
    main()
