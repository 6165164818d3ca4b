"""A soak of mixed traffic against a live Daphne with the real models (loopback only).

    .venv/bin/python bench/soak.py [--minutes 10]

For --minutes, five clients run at once through the public API and the bulk queue: streamed chat
(SmolLM2), embeddings (MiniLM), transcription (whisper-tiny.en, of speech made by Piper), speech
(Piper), and a bulk job of 5 prompts started every 30 s (in-process worker). After a one-minute warm-up
the server's resident memory is sampled every 10 s. At the end it prints the memory growth from the
end of the warm-up (goal: under 5 %), the traffic served, and the ledger's totals (UsageRecord rows in
the site's SQLite file) against the /metrics counters (goal: equal).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.livesite import USERNAME, live_api_token, live_site  # noqa: E402

METRICS_TOKEN = "soak-metrics"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Client:
    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.token = token

    def post(self, path: str, body: bytes, content_type: str = "application/json") -> bytes:
        request = urllib.request.Request(
            self.base + path,
            data=body,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": content_type},
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.read()

    def chat(self) -> None:
        body = {
            "model": "smollm2-135m-instruct",
            "stream": True,
            "max_tokens": 24,
            "messages": [{"role": "user", "content": "Name a colour and a fruit."}],
        }
        assert self.post("/v1/chat/completions", json.dumps(body).encode()).rstrip().endswith(b"[DONE]")

    def embed(self) -> None:
        body = {"model": "all-minilm-l6-v2", "input": ["a lighthouse by the sea", "bread and cheese"]}
        assert len(json.loads(self.post("/v1/embeddings", json.dumps(body).encode()))["data"]) == 2

    def speak(self) -> bytes:
        body = {"model": "piper-en-us-joe", "input": "The quick brown fox jumps over the lazy dog.", "voice": "default"}
        wav = self.post("/v1/audio/speech", json.dumps(body).encode())
        assert wav[:4] == b"RIFF"
        return wav

    def transcribe(self, wav: bytes) -> None:
        boundary = "soakboundary"
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-tiny.en\r\n'.encode(),
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
            "Content-Type: audio/wav\r\n\r\n".encode()
            + wav
            + b"\r\n",
            f"--{boundary}--\r\n".encode(),
        ]
        text = json.loads(
            self.post("/v1/audio/transcriptions", b"".join(parts), f"multipart/form-data; boundary={boundary}")
        )
        assert "fox" in text["text"].lower(), text


def bulk_job(workdir: Path, n: int) -> None:
    env = {**os.environ, "PLAYGROUND_SQLITE_PATH": str(workdir / "db.sqlite3"), "PLAYGROUND_LOG_LEVEL": "WARNING"}
    code = (
        "from django.contrib.auth.models import User; from playground.bulk.models import Dataset, Prompt; "
        "from playground.bulk.services import job_create; "
        f"u = User.objects.get(username={USERNAME!r}); d = Dataset.objects.create(user=u, name='soak {n}'); "
        "Prompt.objects.bulk_create(Prompt(dataset=d, position=i, source_line=i + 1, text=f'Say a word ({i}).') "
        "for i in range(1, 6)); job_create(user=u, dataset=d, model_id='smollm2-135m-instruct', "
        "params={'max_tokens': 12})"
    )
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env, check=True, capture_output=True
    )


def metrics_totals(base: str) -> dict[str, float]:
    request = urllib.request.Request(base + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    text = urllib.request.urlopen(request, timeout=30).read().decode()
    totals: Counter[str] = Counter()
    for name in ("requests", "prompt_tokens", "completion_tokens", "characters"):
        for value in re.findall(rf"^playground_{name}_total{{[^}}]*}} ([\d.e+]+)$", text, re.M):
            totals[name] += float(value)
    return dict(totals)


def ledger_totals(db: Path) -> dict[str, float]:
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT count(*), sum(prompt_tokens), sum(completion_tokens), sum(characters) FROM usage_usagerecord"
        ).fetchone()
    return dict(zip(("requests", "prompt_tokens", "completion_tokens", "characters"), map(float, row), strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    env = {
        "PLAYGROUND_WARM_MODELS": "1",
        "PLAYGROUND_METRICS_TOKEN": METRICS_TOKEN,
        "PLAYGROUND_REQUEST_TIMEOUT": "120",
    }
    with live_site(workdir, **env) as base:
        pid = int((workdir / "server.pid").read_text())
        client = Client(base, live_api_token(workdir))
        wav = client.speak()
        stop = threading.Event()
        served: Counter[str] = Counter()
        errors: Counter[str] = Counter()

        def loop(name: str, action: object) -> None:
            while not stop.is_set():
                try:
                    action()  # type: ignore[operator]
                    served[name] += 1
                except Exception as exc:  # counted and reported, the soak goes on
                    errors[f"{name}: {type(exc).__name__}: {exc}"[:160]] += 1
                    time.sleep(1)

        def bulk_loop() -> None:
            n = 0
            while not stop.wait(0 if n == 0 else 30):
                n += 1
                bulk_job(workdir, n)
                served["bulk jobs started"] += 1

        threads = [
            threading.Thread(target=loop, args=("chat", client.chat)),
            threading.Thread(target=loop, args=("embeddings", client.embed)),
            threading.Thread(target=loop, args=("speech", client.speak)),
            threading.Thread(target=loop, args=("transcription", lambda: client.transcribe(wav))),
            threading.Thread(target=bulk_loop),
        ]
        for t in threads:
            t.start()
        end = time.monotonic() + args.minutes * 60
        time.sleep(min(60, args.minutes * 60 / 4))
        samples = [rss_mb(pid)]
        while time.monotonic() < end:
            time.sleep(min(10, max(0.1, end - time.monotonic())))
            samples.append(rss_mb(pid))
        stop.set()
        for t in threads:
            t.join(180)
        time.sleep(5)  # the last bulk prompts and ledger writes
        growth = (samples[-1] - samples[0]) / samples[0] * 100
        print(f"{args.minutes:g} minutes of mixed traffic: {dict(served)}")
        print(f"errors: {dict(errors) or 'none'}")
        print(
            f"server RSS after warm-up {samples[0]:.0f} MB, at the end {samples[-1]:.0f} MB, "
            f"peak {max(samples):.0f} MB: growth {growth:+.2f} % (goal < 5 %)"
        )
        ledger, metrics = ledger_totals(workdir / "db.sqlite3"), metrics_totals(base)
        for key in ledger:
            mark = "equal" if ledger[key] == metrics.get(key, 0) else "DIFFERENT"
            print(f"{key}: ledger {ledger[key]:.0f}, /metrics {metrics.get(key, 0):.0f} ({mark})")


if __name__ == "__main__":
    main()
