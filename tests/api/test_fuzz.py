"""The OpenAPI document fuzzed with schemathesis against a live server: no 5xx, and every response
conforms to the document (status code listed, content type, body schema).

The server is a live Daphne whose catalog replaces every model with the fake engine of the same id
(PLAYGROUND_CATALOG): the API layer is what is fuzzed, at fuzzing speed; the real engines have their own
tests. Its failed-authentication limit is raised so that fuzzing (which also sends requests without the
token) does not ban the loopback address.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.livesite import REPO, live_api_token, live_site


def fake_catalog(path: Path) -> Path:
    """The real catalog's ids and tasks, every one served by the fake engine."""
    models = tomllib.loads((REPO / "playground" / "models.toml").read_text())["model"]
    lines = []
    for m in models:
        lines += ["[[model]]", f'id = "{m["id"]}"', f'task = "{m["task"]}"', 'engine = "fake"', 'path = "fake"']
        if "n_ctx" in m:
            lines.append(f"n_ctx = {m['n_ctx']}")
        lines.append("")
    path.write_text("\n".join(lines))
    return path


@pytest.fixture(scope="module")
def fuzz_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    workdir = tmp_path_factory.mktemp("fuzz-site")
    env = {
        "PLAYGROUND_CATALOG": str(fake_catalog(workdir / "fake.toml")),
        "PLAYGROUND_AUTH_FAILURE_LIMIT": "1000000",
        "PLAYGROUND_METERING": "1",
    }
    with live_site(workdir, **env) as base:
        yield base, live_api_token(workdir)


EXAMPLES = 25  # per operation; derandomized, so every run sends the same cases


def test_the_api_keeps_its_own_document(fuzz_site: tuple[str, str]) -> None:
    base, token = fuzz_site
    api = schemathesis.openapi.from_url(f"{base}/v1/openapi.json")
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def fuzz(case: schemathesis.Case) -> None:
            response = case.call(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60)
            case.validate_response(response, checks=checks)

        fuzz()
