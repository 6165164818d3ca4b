"""TGI-compatible routes against the fake pool: /generate, /generate_stream, /info and their refusals."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from django.core.cache import cache
from django.core.handlers.asgi import ASGIHandler
from django.test import AsyncClient

from playground.tokens.services import token_create

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh(settings):
    settings.PLAYGROUND_DEFAULT_TEXT_MODEL = "fake-completion"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # the user fixture, fast
    cache.clear()  # failed-auth counters live in the cache; one test's 401s must not ban the next
    yield
    cache.clear()


class TokenClient:
    """An AsyncClient that sends the owner's API token on every request."""

    def __init__(self, raw: str) -> None:
        self.client = AsyncClient()
        self.headers = {"Authorization": f"Bearer {raw}"}

    async def get(self, path: str):  # noqa: ANN201
        return await self.client.get(path, headers=self.headers)

    async def post(self, path: str, data: str, content_type: str):  # noqa: ANN201
        return await self.client.post(path, data, content_type=content_type, headers=self.headers)


@pytest.fixture
async def client(user):
    _token, raw = await sync_to_async(token_create)(user=user, label="t")
    return TokenClient(raw)


def engine(pool, model_id="fake-completion"):  # noqa: ANN201
    worker = pool.workers[model_id]
    with worker.lock:
        return worker.load()


async def post(client, path, body):  # noqa: ANN201
    return await client.post(path, json.dumps(body), content_type="application/json")


async def events(response) -> list[dict]:
    raw = b"".join([part async for part in response.streaming_content]).decode()
    assert raw.endswith("\n\n")
    blocks = [b for b in raw.split("\n\n") if b]
    assert all(b.startswith("data: ") for b in blocks)
    return [json.loads(b[len("data: ") :]) for b in blocks]


async def test_generate_always_answers_with_details_and_lists_tokens_only_when_asked(client, fake_pool):
    response = await post(client, "/generate", {"inputs": "Once upon a time", "parameters": {"seed": 1}})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"generated_text", "details"}
    assert body["details"] == {"finish_reason": "eos_token", "generated_tokens": 14, "seed": None}
    assert body["generated_text"].startswith("and then ")
    call = engine(fake_pool).calls[-1]
    assert call["kind"] == "complete" and call["prompt"] == "Once upon a time"


async def test_generate_details_report_finish_reason_tokens_and_seed(client, fake_pool):
    body = {"inputs": "Hi", "parameters": {"details": True, "do_sample": True, "seed": 7, "max_new_tokens": 50}}
    data = (await post(client, "/generate", body)).json()
    details = data["details"]
    assert details["finish_reason"] == "eos_token"
    assert details["generated_tokens"] == 14  # "and then" plus the fake engine's 12 filler words
    assert details["seed"] == 7
    assert "".join(t["text"] for t in details["tokens"]) == data["generated_text"]


async def test_max_new_tokens_reached_is_length(client, fake_pool):
    body = {"inputs": "Hi", "parameters": {"details": True, "max_new_tokens": 3}}
    data = (await post(client, "/generate", body)).json()
    assert data["details"]["finish_reason"] == "length"
    assert data["details"]["generated_tokens"] == 3
    assert data["generated_text"] == "and then " + data["generated_text"].split()[2]
    assert engine(fake_pool).calls[-1]["params"].max_tokens == 3


async def test_stop_sequence_ends_the_reply_and_is_kept_like_tgi(client, fake_pool):
    body = {"inputs": "Hi", "parameters": {"details": True, "stop": ["then"]}}
    data = (await post(client, "/generate", body)).json()
    assert data["generated_text"] == "and then"
    assert data["details"]["finish_reason"] == "stop_sequence"
    assert data["details"]["generated_tokens"] == 2  # the engine stopped at the stop sequence


async def test_a_stop_sequence_that_never_appears_ends_as_eos_token(client, fake_pool):
    body = {"inputs": "Hi", "parameters": {"details": True, "stop": ["zzz"]}}
    data = (await post(client, "/generate", body)).json()
    assert data["details"]["finish_reason"] == "eos_token"
    assert len(data["generated_text"].split()) == 14


async def test_do_sample_false_is_greedy_and_reports_no_seed(client, fake_pool):
    body = {"inputs": "Hi", "parameters": {"details": True, "do_sample": False, "temperature": 0.9}}
    data = (await post(client, "/generate", body)).json()
    assert engine(fake_pool).calls[-1]["params"].temperature == 0.0
    assert data["details"]["seed"] is None


async def test_do_sample_true_uses_the_given_or_the_model_default_temperature(client, fake_pool):
    await post(client, "/models/fake-chat/generate", {"inputs": "Hi", "parameters": {"do_sample": True}})
    assert engine(fake_pool, "fake-chat").calls[-1]["params"].temperature == 0.5  # fake-chat's catalog default
    body = {"inputs": "Hi", "parameters": {"do_sample": True, "temperature": 1.3, "top_k": 5, "top_p": 0.5}}
    await post(client, "/generate", body)
    params = engine(fake_pool).calls[-1]["params"]
    assert (params.temperature, params.top_k, params.top_p) == (1.3, 5, 0.5)


async def test_neutral_values_of_unsupported_tgi_parameters_are_accepted(client, fake_pool):
    parameters = {"best_of": None, "watermark": False, "return_full_text": False, "truncate": None, "details": True}
    response = await post(client, "/generate", {"inputs": "Hi", "parameters": parameters, "stream": False})
    assert response.status_code == 200


async def test_generate_stream_sends_tgi_token_events(client, fake_pool):
    body = {"inputs": "Hi", "parameters": {"seed": 3, "do_sample": True}}
    response = await post(client, "/generate_stream", body)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/event-stream")
    stream = await events(response)
    assert len(stream) >= 2
    for event in stream[:-1]:
        assert event["generated_text"] is None and event["details"] is None
        assert set(event["token"]) == {"id", "text", "logprob", "special"}
    last = stream[-1]
    assert last["generated_text"] == "".join(e["token"]["text"] for e in stream)
    assert last["details"]["finish_reason"] == "eos_token"
    assert last["details"]["seed"] == 3
    assert last["details"]["generated_tokens"] == 14
    assert [e["token"]["id"] for e in stream] == list(range(len(stream)))


async def test_generate_stream_with_stop_sequence(client, fake_pool):
    response = await post(client, "/generate_stream", {"inputs": "Hi", "parameters": {"stop": ["then"]}})
    stream = await events(response)
    assert stream[-1]["generated_text"] == "and then"
    assert stream[-1]["details"]["finish_reason"] == "stop_sequence"


async def test_stream_true_on_generate_streams_too(client, fake_pool):
    response = await post(client, "/generate", {"inputs": "Hi", "stream": True})
    assert response["Content-Type"].startswith("text/event-stream")
    assert (await events(response))[-1]["details"]["finish_reason"] == "eos_token"


async def test_per_model_routes_give_chat_models_the_input_as_one_user_message(client, fake_pool):
    response = await post(client, "/models/fake-chat/generate", {"inputs": "hello there"})
    assert response.json()["generated_text"].startswith("You said: hello there")
    call = engine(fake_pool, "fake-chat").calls[-1]
    assert call["kind"] == "chat"
    assert [(m.role, m.content) for m in call["messages"]] == [("user", "hello there")]
    stream = await events(await post(client, "/models/fake-chat/generate_stream", {"inputs": "yo"}))
    assert stream[-1]["generated_text"].startswith("You said: yo")


async def test_info_describes_the_default_model(client, fake_pool):
    response = await client.get("/info")
    assert response.status_code == 200
    info = response.json()
    assert info["model_id"] == "fake-completion"
    assert info["max_total_tokens"] == 2048 and info["max_input_tokens"] == 2047
    assert info["max_stop_sequences"] == 4 and info["version"]
    assert (await client.get("/models/fake-chat/info")).json()["model_id"] == "fake-chat"


@pytest.mark.parametrize(
    "inputs",
    ["What is in <image>https://example.com/cat.png</image>?", "Describe ![a cat](https://example.com/cat.png)"],
)
async def test_images_are_refused_for_models_without_vision(client, fake_pool, inputs):
    response = await post(client, "/generate", {"inputs": inputs})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "inputs" and "image" in error["message"]
    assert engine(fake_pool).calls == []


@pytest.mark.parametrize(
    ("parameters", "named"),
    [
        ({"temperature": 5}, "parameters.temperature"),
        ({"temperature": "hot"}, "parameters.temperature"),
        ({"top_p": 1.5}, "parameters.top_p"),
        ({"top_k": -1}, "parameters.top_k"),
        ({"top_k": 2.5}, "parameters.top_k"),
        ({"max_new_tokens": 0}, "parameters.max_new_tokens"),
        ({"max_new_tokens": 5000}, "parameters.max_new_tokens"),
        ({"repetition_penalty": 0}, "parameters.repetition_penalty"),
        ({"seed": -1}, "parameters.seed"),
        ({"stop": "x" and [1]}, "parameters.stop"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "parameters.stop"),
        ({"do_sample": "yes"}, "parameters.do_sample"),
        ({"details": 1}, "parameters.details"),
        ({"grammar": {"type": "json"}}, "parameters.grammar.value"),
        ({"grammar": {"type": "xml", "value": "x"}}, "parameters.grammar.type"),
        ({"best_of": 2}, "parameters.best_of"),
        ({"colour": "red", "temperature": 1}, "parameters.colour"),
    ],
)
async def test_bad_parameters_are_refused_naming_them(client, fake_pool, parameters, named):
    response = await post(client, "/generate", {"inputs": "Hi", "parameters": parameters})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == named and named in error["message"]
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"inputs": ""}, "inputs"),
        ({"inputs": 3}, "inputs"),
        ({"inputs": "Hi", "prompt": "x"}, "prompt"),
        ({"inputs": "Hi", "parameters": []}, "parameters"),
        ({"inputs": "Hi", "stream": "yes"}, "stream"),
    ],
)
async def test_bad_bodies_are_refused_naming_the_field(client, fake_pool, body, named):
    response = await post(client, "/generate", body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == named


async def test_invalid_json_is_a_400(client, fake_pool):
    response = await client.post("/generate", "{nope", content_type="application/json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"


async def test_unknown_model_and_non_text_model_are_404(client, fake_pool):
    for path in ("/models/nope/generate", "/models/fake-embed/generate", "/models/fake-tts/generate_stream"):
        response = await post(client, path, {"inputs": "Hi"})
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "model_not_found"
    assert (await client.get("/models/nope/info")).status_code == 404


async def test_missing_or_wrong_token_is_401(fake_pool):
    anonymous = AsyncClient()
    response = await anonymous.post("/generate", json.dumps({"inputs": "Hi"}), content_type="application/json")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert response["WWW-Authenticate"] == "Bearer"
    assert (await anonymous.get("/info", headers={"Authorization": "Bearer gp_wrong"})).status_code == 401
    assert (await anonymous.post("/generate_stream", "{}", content_type="application/json")).status_code == 401


async def test_wrong_method_is_405(client, fake_pool):
    response = await client.get("/generate")
    assert response.status_code == 405 and response["Allow"] == "POST"


async def test_a_full_queue_is_429_with_retry_after(client, settings):
    from playground import engines
    from tests.conftest import make_fake_pool

    pool = make_fake_pool(max_queue=0)
    engines.set_pool(pool)
    try:
        response = await post(client, "/generate", {"inputs": "Hi"})
    finally:
        engines.set_pool(None)
    assert response.status_code == 429
    assert response["Retry-After"] == str(response.json()["error"]["retry_after"])


async def test_context_overflow_is_a_400_naming_inputs(client, fake_pool):
    response = await post(client, "/generate", {"inputs": "word " * 2000, "parameters": {"max_new_tokens": 100}})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "inputs"
    response = await post(client, "/generate_stream", {"inputs": "word " * 2000, "parameters": {"max_new_tokens": 100}})
    assert response.status_code == 400


async def _wait_idle(worker, seconds: float = 2.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if not worker.busy:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the engine is still generating")


async def test_timeout_stops_the_engine_and_is_504(client, fake_pool, settings):
    settings.PLAYGROUND_REQUEST_TIMEOUT = 0.2
    engine(fake_pool).delay = 0.1  # 14 words: 1.4 s in all
    started = asyncio.get_running_loop().time()
    response = await post(client, "/generate", {"inputs": "Hi"})
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "timeout"
    assert asyncio.get_running_loop().time() - started < 1.0
    await _wait_idle(fake_pool.workers["fake-completion"], 0.5)


async def test_timeout_during_a_stream_ends_it_with_an_error_event_and_stops_the_engine(client, fake_pool, settings):
    settings.PLAYGROUND_REQUEST_TIMEOUT = 0.35
    engine(fake_pool).delay = 0.1
    response = await post(client, "/generate_stream", {"inputs": "Hi"})
    assert response.status_code == 200
    stream = await events(response)
    assert stream[-1]["error_type"] == "timeout"
    assert 1 <= len(stream) - 1 < 14
    await _wait_idle(fake_pool.workers["fake-completion"], 0.5)


async def test_client_disconnect_cancels_the_job(fake_pool, user):
    _token, raw = await sync_to_async(token_create)(user=user, label="t")
    engine(fake_pool).delay = 0.05  # 14 words: 0.7 s in all
    worker = fake_pool.workers["fake-completion"]
    body = json.dumps({"inputs": "Hi"}).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/generate_stream",
        "raw_path": b"/generate_stream",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {raw}".encode()),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    first_body = asyncio.Event()
    sent: list[dict] = []
    jobs = []

    async def receive() -> dict:
        if not sent:
            sent.append({"type": "http.request"})
            return {"type": "http.request", "body": body, "more_body": False}
        await first_body.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and message.get("body"):
            jobs.append(next(iter(worker._running), None))
            first_body.set()

    await asyncio.wait_for(ASGIHandler()(scope, receive, send), 2)
    start = next(m for m in sent if m.get("type") == "http.response.start")
    assert start["status"] == 200
    job = jobs[0]
    assert job is not None and job.cancelled
    await _wait_idle(worker, 0.3)
    chunks = [m for m in sent if m.get("type") == "http.response.body" and m.get("body")]
    assert len(chunks) < 14


async def test_a_body_over_the_limit_is_413(client, fake_pool, settings):
    settings.PLAYGROUND_MAX_JSON_BYTES = 100
    response = await post(client, "/generate", {"inputs": "x" * 200})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


async def test_post_to_the_root_is_tgis_compatibility_route_and_get_stays_the_catalog(client, fake_pool):
    response = await post(client, "/", {"inputs": "Once upon a time", "parameters": {"max_new_tokens": 3}})
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    (body,) = response.json()  # a one-element list, as TGI's compatibility route answers
    assert body["generated_text"] == "and then " + body["generated_text"].split()[-1]
    assert body["details"]["finish_reason"] == "length" and body["details"]["generated_tokens"] == 3
    streamed = await post(client, "/", {"inputs": "Hi", "stream": True, "parameters": {"max_new_tokens": 2}})
    assert streamed["Content-Type"] == "text/event-stream"
    assert (await events(streamed))[-1]["generated_text"] == "and then"
    page = await client.get("/")
    assert page.status_code == 200 and b'data-model="fake-completion"' in page.content


async def test_post_to_the_root_without_a_token_is_the_api_error_not_a_csrf_page(fake_pool):
    response = await AsyncClient().post("/", json.dumps({"inputs": "Hi"}), content_type="application/json")
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"
