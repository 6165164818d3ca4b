"""Fixtures for the unified-inference dialect (/ai/): an API token for the in-process client, and a live Daphne whose
catalog is the real one's ids, tasks and capabilities served by fake engines (the API layer at test speed; the
engines have tests of their own)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache

from playground.tokens.services import token_create
from tests.livesite import REPO, USERNAME, live_api_token, live_site


@pytest.fixture(autouse=True)
def _clear_cache() -> Iterator[None]:
    """Failed-auth counters and rate-limit buckets live in the cache; one test's must not reach the next."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def auth(user) -> dict[str, Any]:  # noqa: ANN001
    """Keyword arguments for Django's AsyncClient: a fresh API token of the owner."""
    _, raw = token_create(user=user, label="ai tests")
    return {"headers": {"Authorization": f"Bearer {raw}"}}


def fake_catalog(path: Path) -> Path:
    """The real catalog's ids, tasks, capabilities and served contexts, every model a fake engine."""
    models = tomllib.loads((REPO / "playground" / "models.toml").read_text())["model"]
    lines = []
    for m in models:
        lines += ["[[model]]", f'id = "{m["id"]}"', f'task = "{m["task"]}"', 'engine = "fake"', 'path = "fake"']
        lines.append(f"capabilities = {json.dumps(m.get('capabilities', []))}")
        if "n_ctx" in m:
            lines.append(f"n_ctx = {m['n_ctx']}")
        lines.append("")
    path.write_text("\n".join(lines))
    return path


@dataclass(frozen=True)
class FakeSite:
    base: str  # http://127.0.0.1:PORT
    token: str  # a raw API token of the site's user
    workdir: Path

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def shell(self, code: str) -> str:
        """Run Python in the site's database (manage.py shell); its standard output."""
        env = {
            **os.environ,
            "PLAYGROUND_SQLITE_PATH": str(self.workdir / "db.sqlite3"),
            "PLAYGROUND_LOG_LEVEL": "WARNING",
        }
        done = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code],
            cwd=REPO,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        return done.stdout

    def limited_token(self, **limits: int) -> str:
        """A new API token of the site's user with these limits (e.g. requests_per_minute=1); its raw value."""
        code = (
            "from django.contrib.auth.models import User; from playground.tokens.services import token_create; "
            f"token, raw = token_create(user=User.objects.get(username={USERNAME!r}), label='limited'); "
            f"[setattr(token, k, v) for k, v in {limits!r}.items()]; token.save(); print('TOKEN=' + raw)"
        )
        out = self.shell(code)
        return next(line[len("TOKEN=") :] for line in out.splitlines() if line.startswith("TOKEN="))

    def usage_rows(self) -> list[dict[str, Any]]:
        """Every ledger row the site wrote, oldest first."""
        code = (
            "import json; from playground.usage.models import UsageRecord; "
            "print('ROWS=' + json.dumps(list(UsageRecord.objects.order_by('pk').values("
            "'model_id', 'endpoint', 'source', 'prompt_tokens', 'completion_tokens', 'embedding_inputs', 'outcome'))))"
        )
        out = self.shell(code)
        return json.loads(next(line[len("ROWS=") :] for line in out.splitlines() if line.startswith("ROWS=")))


@pytest.fixture(scope="module")
def fake_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeSite]:
    workdir = tmp_path_factory.mktemp("ai-site")
    env = {"PLAYGROUND_CATALOG": str(fake_catalog(workdir / "fake.toml")), "PLAYGROUND_METERING": "1"}
    with live_site(workdir, **env) as base:
        yield FakeSite(base=base, token=live_api_token(workdir, label="ai live tests"), workdir=workdir)
