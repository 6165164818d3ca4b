"""Shared fixtures: users, and a pool of fake engines installed for every site test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from inference import EnginePool, ModelSpec
from inference.device import DeviceDecision
from playground import engines

FAKE_SPECS = [
    ModelSpec(
        id="fake-chat",
        name="Fake Chat",
        task="text-to-text",
        engine="fake",
        path=Path("/nonexistent/fake-chat.gguf"),
        n_ctx=2048,
        defaults={"temperature": 0.5, "max_tokens": 64},
    ),
    ModelSpec(
        id="fake-completion",
        name="Fake Completion",
        task="text-completion",
        engine="fake",
        path=Path("/nonexistent/fake-completion.gguf"),
        n_ctx=2048,
    ),
    ModelSpec(id="fake-embed", name="Fake Embed", task="embeddings", engine="fake", path=Path("/nonexistent/e")),
    ModelSpec(id="fake-stt", name="Fake STT", task="speech-to-text", engine="fake", path=Path("/nonexistent/s")),
    ModelSpec(id="fake-tts", name="Fake TTS", task="text-to-speech", engine="fake", path=Path("/nonexistent/t")),
]


# Marks for what a test needs beyond this process and the fake engines, so that the fast tests can run alone:
#   ./dev test -m "not real_model and not live_server and not browser and not scale_out"
# CI and a plain `./dev test` run everything. They are given here, by where a test lives and by the fixtures it
# uses, so a new test there is marked without anyone remembering to; a test that builds a real engine inline
# (no fixture says so) carries @pytest.mark.real_model itself.
TESTS = Path(__file__).resolve().parent
LIVE_REAL = ("live_server", "real_model")  # a live_site() (tests/livesite.py) serving the repo's real catalog
MARKS_BY_DIRECTORY = {
    "browser": ("browser", *LIVE_REAL),  # Playwright and Chromium against a live site
    "load": LIVE_REAL,  # a burst of streams against a live site
    "scaleout": ("scale_out", *LIVE_REAL),  # nginx, two web processes and two workers on PostgreSQL and Redis
    "fleet": LIVE_REAL,  # a web tier routing to an engine node and llama_cpp.server (remote models)
}
MARKS_BY_FILE = {
    "bulk/test_worker_process.py": ("scale_out", "real_model"),  # manage.py bulk_worker processes, killed and resumed
    "bulk/test_redis_queue.py": ("scale_out", "real_model"),  # the same on the Redis queue
}
REAL_FILE_SUFFIX = "_real.py"  # tests/inference/test_*_real.py: the real engines themselves
MARKS_BY_FIXTURE = {
    **dict.fromkeys(("smollm2", "gemma", "minilm", "whisper_tiny", "whisper_base", "piper"), ("real_model",)),
    "real_pool": ("real_model",),  # tests/studio: a pool of the real speech models
    "fox_wav": ("real_model",),  # tests/api: speech made by the real Piper voice
    **dict.fromkeys(("live", "site", "server"), LIVE_REAL),  # the live sites of tests/api, api_tgi, catalog, ...
    "fuzz_site": ("live_server",),  # tests/api/test_fuzz.py: a live site whose catalog is all fake engines
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        try:
            path = item.path.resolve().relative_to(TESTS)
        except ValueError:
            continue
        names: set[str] = set(MARKS_BY_DIRECTORY.get(path.parts[0], ()))
        names.update(MARKS_BY_FILE.get(path.as_posix(), ()))
        if path.name.endswith(REAL_FILE_SUFFIX):
            names.add("real_model")
        for fixture in getattr(item, "fixturenames", ()):
            names.update(MARKS_BY_FIXTURE.get(fixture, ()))
        for name in sorted(names - {mark.name for mark in item.iter_markers()}):
            item.add_marker(name)


def make_fake_pool(max_queue: int = 100) -> EnginePool:
    return EnginePool(
        FAKE_SPECS, device=DeviceDecision("cpu", "tests use fake engines"), threads=1, max_queue=max_queue
    )


@pytest.fixture(autouse=True)
def _metering_only_where_tested(request: pytest.FixtureRequest, settings) -> None:  # noqa: ANN001
    """The ledger is written from model worker threads; SQLite's shared in-memory test database cannot
    serve those writes while a test's own transaction is open, so only tests marked `metering`
    (which use transactional_db) write usage records."""
    settings.PLAYGROUND_METERING = request.node.get_closest_marker("metering") is not None


@pytest.fixture
def fake_pool() -> Iterator[EnginePool]:
    """Install a pool of fake engines as the site's pool; tests can inspect `pool.workers[id].engine.calls`."""
    pool = make_fake_pool()
    engines.set_pool(pool)
    yield pool
    engines.set_pool(None)


@pytest.fixture
def user(django_user_model):  # noqa: ANN001
    return django_user_model.objects.create_user(username="owner", password="pw-owner-123!")


@pytest.fixture
def other_user(django_user_model):  # noqa: ANN001
    return django_user_model.objects.create_user(username="outsider", password="pw-outsider-123!")
