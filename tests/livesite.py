"""Run the real site (Daphne, real models, its own SQLite file) in a subprocess for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
USERNAME, PASSWORD = "browser-user", "browser-pass-123!"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_site(workdir: Path, **extra_env: str) -> Iterator[str]:
    """Migrate a fresh database, create a user, serve on a free port; yields the base URL.

    The server's pid is in workdir/server.pid and its output in workdir/server.log."""
    env = {
        **os.environ,
        "PLAYGROUND_SQLITE_PATH": str(workdir / "db.sqlite3"),
        "PLAYGROUND_WARM_MODELS": "0",
        "PLAYGROUND_THREADS": "2",
        "PLAYGROUND_BULK_WORKERS": "1",
        **extra_env,
    }
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v", "0"], cwd=REPO, env=env, check=True)
    create = (
        f"from django.contrib.auth.models import User; User.objects.create_user({USERNAME!r}, password={PASSWORD!r})"
    )
    subprocess.run([*manage, "shell", "-c", create], cwd=REPO, env=env, check=True)
    port = free_port()
    log = open(workdir / "server.log", "wb")  # noqa: SIM115  (closed below)
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("daphne")),
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "playground.asgi:application",
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    (workdir / "server.pid").write_text(str(proc.pid))  # for tests that watch the server's memory
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/health", timeout=2)
                break
            except OSError:
                if proc.poll() is not None:
                    raise AssertionError((workdir / "server.log").read_text()) from None
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def live_api_token(workdir: Path, label: str = "live tests") -> str:
    """Create an API token for the live site's user (in the database `live_site(workdir)` made); the raw value."""
    env = {**os.environ, "PLAYGROUND_SQLITE_PATH": str(workdir / "db.sqlite3"), "PLAYGROUND_LOG_LEVEL": "WARNING"}
    code = (
        "from django.contrib.auth.models import User; from playground.tokens.services import token_create; "
        f"print('TOKEN=' + token_create(user=User.objects.get(username={USERNAME!r}), label={label!r})[1])"
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return next(line[len("TOKEN=") :] for line in done.stdout.splitlines() if line.startswith("TOKEN="))
