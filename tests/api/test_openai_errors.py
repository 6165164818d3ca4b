"""Refusals of the OpenAI-compatible API: each bad request gets its documented status and error JSON, the server
keeps serving, a full queue is a 429, the time limit and a client disconnect stop the engine (fake engines)."""

from __future__ import annotations

import asyncio
import io
import json
import time
from typing import Any

import pytest
from asgiref.sync import ThreadSensitiveContext

from inference import EnginePool
from inference.device import DeviceDecision
from playground import engines
from tests.api.conftest import slow
from tests.conftest import FAKE_SPECS

pytestmark = pytest.mark.django_db(transaction=True)

CHAT = {"model": "fake-chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
COMPLETION = {"model": "fake-completion", "prompt": "Once", "max_tokens": 2}
EMBED = {"model": "fake-embed", "input": ["a"]}
SPEECH = {"model": "fake-tts", "input": "Hello", "voice": "default"}
LONG_PROMPT = " ".join(["word"] * 3000)


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**base, **changes}


# (path, JSON body or raw bytes, status, code or None, param or None)
CASES: list[tuple[str, Any, int, str | None, str | None]] = [
    ("/v1/chat/completions", b"{not json", 400, "invalid_json", None),
    ("/v1/chat/completions", b"[1, 2]", 400, "invalid_json", None),
    ("/v1/chat/completions", b'{"model": "fake-chat", "temperature": NaN}', 400, "invalid_json", None),
    ("/v1/chat/completions", {"messages": CHAT["messages"]}, 400, "missing_required_parameter", "model"),
    ("/v1/chat/completions", with_(CHAT, model=7), 400, "invalid_type", "model"),
    ("/v1/chat/completions", with_(CHAT, model="nope"), 404, "model_not_found", "model"),
    ("/v1/chat/completions", with_(CHAT, model="fake-embed"), 404, "model_not_found", "model"),
    ("/v1/chat/completions", with_(CHAT, model="fake-completion"), 404, "model_not_found", "model"),
    ("/v1/chat/completions", with_(CHAT, messages=[]), 400, "invalid_parameter", "messages"),
    ("/v1/chat/completions", with_(CHAT, messages="hi"), 400, "invalid_type", "messages"),
    ("/v1/chat/completions", with_(CHAT, messages=[{"role": "robot", "content": "x"}]), 400, None, "messages[0].role"),
    (
        "/v1/chat/completions",
        with_(CHAT, messages=[{"role": "user", "content": 5}]),
        400,
        "invalid_type",
        "messages[0].content",
    ),
    ("/v1/chat/completions", with_(CHAT, temperature="hot"), 400, "invalid_type", "temperature"),
    ("/v1/chat/completions", with_(CHAT, temperature=True), 400, "invalid_type", "temperature"),
    ("/v1/chat/completions", with_(CHAT, temperature=3), 400, "invalid_parameter", "temperature"),
    ("/v1/chat/completions", with_(CHAT, top_p=1.5), 400, "invalid_parameter", "top_p"),
    ("/v1/chat/completions", with_(CHAT, top_k=-1), 400, "invalid_parameter", "top_k"),
    ("/v1/chat/completions", with_(CHAT, top_k=1.5), 400, "invalid_type", "top_k"),
    ("/v1/chat/completions", with_(CHAT, max_tokens=0), 400, "invalid_parameter", "max_tokens"),
    (
        "/v1/chat/completions",
        with_(CHAT, max_tokens=None, max_completion_tokens=0),
        400,
        "invalid_parameter",
        "max_completion_tokens",
    ),
    ("/v1/chat/completions", with_(CHAT, max_completion_tokens=3), 400, None, "max_completion_tokens"),
    ("/v1/chat/completions", with_(CHAT, presence_penalty=-3), 400, "invalid_parameter", "presence_penalty"),
    ("/v1/chat/completions", with_(CHAT, frequency_penalty=2.5), 400, "invalid_parameter", "frequency_penalty"),
    ("/v1/chat/completions", with_(CHAT, repetition_penalty=0), 400, "invalid_parameter", "repetition_penalty"),
    ("/v1/chat/completions", with_(CHAT, seed=-1), 400, "invalid_parameter", "seed"),
    ("/v1/chat/completions", with_(CHAT, stop=["a", "b", "c", "d", "e"]), 400, "invalid_parameter", "stop"),
    ("/v1/chat/completions", with_(CHAT, stop=[1]), 400, "invalid_type", "stop"),
    ("/v1/chat/completions", with_(CHAT, stream="yes"), 400, "invalid_type", "stream"),
    ("/v1/chat/completions", with_(CHAT, stream_options={"include_usage": True}), 400, None, "stream_options"),
    ("/v1/chat/completions", with_(CHAT, n=2), 400, None, "n"),
    ("/v1/chat/completions", with_(CHAT, logprobs=True), 400, "unsupported_parameter", "logprobs"),
    ("/v1/chat/completions", with_(CHAT, user=5), 400, "invalid_type", "user"),
    ("/v1/chat/completions", with_(CHAT, tools=[{"type": "function"}]), 400, None, "tools[0].function"),
    ("/v1/chat/completions", with_(CHAT, temprature=0.5), 400, "unknown_parameter", "temprature"),
    ("/v1/chat/completions", with_(CHAT, service_tier="flex"), 400, None, "service_tier"),
    ("/v1/chat/completions", with_(CHAT, service_tier="gpuflex"), 400, "tier_unavailable", "service_tier"),
    (
        "/v1/chat/completions",
        with_(CHAT, messages=[{"role": "user", "content": LONG_PROMPT}]),
        400,
        "context_length_exceeded",
        "messages",
    ),
    ("/v1/completions", with_(COMPLETION, prompt=[1, 2, 3]), 400, "unsupported_parameter", "prompt"),
    ("/v1/completions", with_(COMPLETION, prompt=["a", "b"]), 400, "unsupported_parameter", "prompt"),
    ("/v1/completions", with_(COMPLETION, prompt=""), 400, None, "prompt"),
    ("/v1/completions", with_(COMPLETION, prompt=5), 400, "invalid_type", "prompt"),
    ("/v1/completions", with_(COMPLETION, echo=True), 400, "unsupported_parameter", "echo"),
    ("/v1/completions", with_(COMPLETION, model="fake-chat"), 404, "model_not_found", "model"),
    ("/v1/completions", with_(COMPLETION, prompt=LONG_PROMPT), 400, "context_length_exceeded", "prompt"),
    ("/v1/embeddings", with_(EMBED, input=[[1, 2, 3]]), 400, "unsupported_parameter", "input"),
    ("/v1/embeddings", with_(EMBED, input=[1, 2, 3]), 400, "unsupported_parameter", "input"),
    ("/v1/embeddings", with_(EMBED, input=[""]), 400, "invalid_parameter", "input[0]"),
    ("/v1/embeddings", with_(EMBED, input={"a": 1}), 400, "invalid_type", "input"),
    ("/v1/embeddings", with_(EMBED, encoding_format="int8"), 400, None, "encoding_format"),
    ("/v1/embeddings", with_(EMBED, dimensions=4), 400, "unsupported_parameter", "dimensions"),
    ("/v1/embeddings", with_(EMBED, model="fake-tts"), 404, "model_not_found", "model"),
    ("/v1/audio/speech", with_(SPEECH, voice="Alloy"), 400, None, "voice"),
    ("/v1/audio/speech", with_(SPEECH, response_format="ogg_vorbis"), 400, "invalid_parameter", "response_format"),
    ("/v1/audio/speech", with_(SPEECH, speed=5), 400, None, "speed"),
    ("/v1/audio/speech", with_(SPEECH, speed="fast"), 400, "invalid_type", "speed"),
    ("/v1/audio/speech", with_(SPEECH, input=""), 400, None, "input"),
    ("/v1/audio/speech", with_(SPEECH, instructions="whisper"), 400, "unsupported_parameter", "instructions"),
    ("/v1/audio/speech", with_(SPEECH, model="fake-chat"), 404, "model_not_found", "model"),
]


async def post(client, path: str, body: Any, auth: dict[str, Any]):  # noqa: ANN201
    data = body if isinstance(body, bytes) else json.dumps(body)
    return await client.post(path, data=data, content_type="application/json", **auth)


def check_error(response, status: int, code: str | None, param: str | None) -> dict[str, Any]:  # noqa: ANN001
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["message"] and error["type"]
    if code is not None:
        assert error["code"] == code, error
    assert error.get("param") == param, error
    return error


@pytest.mark.parametrize("path,body,status,code,param", CASES)
async def test_bad_request_gets_its_status_and_error_json(
    async_client, auth, fake_pool, path, body, status, code, param
):
    check_error(await post(async_client, path, body, auth), status, code, param)
    # and the server keeps serving
    ok = await post(async_client, "/v1/chat/completions", CHAT, auth)
    assert ok.status_code == 200


async def test_wrong_task_says_which_task_the_model_serves(async_client, auth, fake_pool):
    error = check_error(
        await post(async_client, "/v1/chat/completions", with_(CHAT, model="fake-embed"), auth),
        404,
        "model_not_found",
        "model",
    )
    assert "embeddings" in error["message"] and "/v1/embeddings" in error["message"]


async def test_prompt_too_long_message_gives_the_limit(async_client, auth, fake_pool):
    body = with_(CHAT, messages=[{"role": "user", "content": LONG_PROMPT}])
    error = check_error(
        await post(async_client, "/v1/chat/completions", body, auth), 400, "context_length_exceeded", "messages"
    )
    assert "2048" in error["message"]


async def test_prompt_too_long_is_refused_before_a_stream_starts(async_client, auth, fake_pool):
    body = with_(CHAT, messages=[{"role": "user", "content": LONG_PROMPT}], stream=True)
    check_error(
        await post(async_client, "/v1/chat/completions", body, auth), 400, "context_length_exceeded", "messages"
    )


async def test_missing_token_is_401(async_client, fake_pool):
    response = await async_client.post("/v1/chat/completions", data=json.dumps(CHAT), content_type="application/json")
    check_error(response, 401, "invalid_api_key", None)
    assert response["WWW-Authenticate"] == "Bearer"
    wrong = await async_client.get("/v1/models", headers={"Authorization": "Bearer gp_nope"})
    check_error(wrong, 401, "invalid_api_key", None)


async def test_wrong_method_is_405(async_client, auth, fake_pool):
    check_error(await async_client.get("/v1/chat/completions", **auth), 405, "method_not_allowed", None)
    check_error(await post(async_client, "/v1/models", {}, auth), 405, "method_not_allowed", None)


async def test_unknown_endpoint_is_json_404(async_client, auth):
    check_error(await async_client.get("/v1/nothing/here", **auth), 404, "unknown_url", None)


async def test_body_too_large_is_413(async_client, auth, fake_pool, settings):
    """Each route has its limit: the JSON routes a small one, the audio routes the upload limit."""
    settings.PLAYGROUND_MAX_JSON_BYTES = 1000
    settings.PLAYGROUND_MAX_BODY_BYTES = 1000
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    big = with_(CHAT, messages=[{"role": "user", "content": "x" * 2000}])
    check_error(await post(async_client, "/v1/chat/completions", big, auth), 413, "request_too_large", None)
    audio = io.BytesIO(b"FAKEAUDIO:" + b"word " * 500)
    audio.name = "a.wav"
    response = await async_client.post("/v1/audio/transcriptions", {"file": audio, "model": "fake-stt"}, **auth)
    check_error(response, 413, "request_too_large", None)
    assert (await post(async_client, "/v1/chat/completions", CHAT, auth)).status_code == 200


STT_CASES = [
    ({"model": "fake-stt"}, 400, None, "file"),
    ({"model": "fake-stt", "file": b"FAKEAUDIO:Hi.", "prompt": "names: Kenobi"}, 400, None, "prompt"),
    (
        {"model": "fake-stt", "file": b"FAKEAUDIO:Hi.", "temperature": "0.4"},
        400,
        "unsupported_parameter",
        "temperature",
    ),
    ({"model": "fake-stt", "file": b"FAKEAUDIO:Hi.", "response_format": "docx"}, 400, None, "response_format"),
    (
        {"model": "fake-stt", "file": b"FAKEAUDIO:Hi.", "timestamp_granularities[]": "word"},
        400,
        None,
        "timestamp_granularities[]",
    ),
    ({"model": "fake-stt", "file": b"FAKEAUDIO:Hi.", "colour": "blue"}, 400, "unknown_parameter", "colour"),
    ({"model": "fake-stt", "file": b"not audio at all"}, 400, "invalid_audio", "file"),
    ({"model": "fake-tts", "file": b"FAKEAUDIO:Hi."}, 404, "model_not_found", "model"),
    ({"file": b"FAKEAUDIO:Hi."}, 400, "missing_required_parameter", "model"),
]


@pytest.mark.parametrize("form,status,code,param", STT_CASES)
async def test_bad_transcription_gets_its_status(async_client, auth, fake_pool, form, status, code, param):
    data = dict(form)
    if "file" in data:
        data["file"] = io.BytesIO(data["file"])
        data["file"].name = "audio.wav"
    check_error(await async_client.post("/v1/audio/transcriptions", data, **auth), status, code, param)


async def test_transcription_refuses_json(async_client, auth, fake_pool):
    response = await post(async_client, "/v1/audio/transcriptions", {"model": "fake-stt"}, auth)
    check_error(response, 400, "invalid_content_type", None)


def queue_pool(max_queue: int) -> EnginePool:
    pool = EnginePool(FAKE_SPECS, device=DeviceDecision("cpu", "tests"), threads=1, max_queue=max_queue)
    engines.set_pool(pool)
    return pool


async def wait_until(condition, timeout: float = 30.0) -> None:  # noqa: ANN001
    """Wait for a condition; the timeout only ends a hung test, it never decides a result."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def post_concurrently(client, path: str, body: Any, auth: dict[str, Any]):  # noqa: ANN201
    """Like Daphne does, give each request its own thread-sensitive context: WhiteNoise is a sync middleware, so
    Django runs each request's middleware chain on that context's thread; without one, requests run one at a time."""
    async with ThreadSensitiveContext():
        return await post(client, path, body, auth)


async def test_full_queue_is_429_with_retry_after(async_client, auth):
    pool = queue_pool(max_queue=1)
    try:
        # 15 tokens at 1 s hold the model far longer than the next two requests take to arrive, on any
        # machine; once the third is refused, the delay is lifted and the first two finish at once.
        engine = slow(pool, "fake-chat", 1.0)
        worker = pool.workers["fake-chat"]
        body = with_(CHAT, max_tokens=40)
        running = asyncio.create_task(post_concurrently(async_client, "/v1/chat/completions", body, auth))
        await wait_until(lambda: worker.busy)
        waiting = asyncio.create_task(post_concurrently(async_client, "/v1/chat/completions", body, auth))
        await wait_until(lambda: worker.waiting == 1)
        response = await post_concurrently(async_client, "/v1/chat/completions", body, auth)
        error = check_error(response, 429, "queue_full", None)
        assert response["Retry-After"] == "2" and error["retry_after"] == 2 and error["type"] == "rate_limit_error"
        engine.delay = 0
        assert (await running).status_code == 200 and (await waiting).status_code == 200
        assert len(engine.calls) == 2  # the refused request never reached the engine
    finally:
        engines.set_pool(None)


async def test_time_limit_stops_the_engine_and_says_so(async_client, auth, fake_pool, settings):
    settings.PLAYGROUND_REQUEST_TIMEOUT = 0.3
    engine = slow(fake_pool, "fake-chat", 0.1)
    worker = fake_pool.workers["fake-chat"]
    response = await post(async_client, "/v1/chat/completions", with_(CHAT, max_tokens=40), auth)
    error = check_error(response, 504, "timeout", None)
    assert "0.3 seconds" in error["message"] and error["type"] == "timeout_error"
    # The whole reply is 15 tokens (1.5 s at 0.1 s each): the engine was stopped part-way, not left to finish.
    await wait_until(lambda: not worker.busy)
    assert engine.calls and len(engine.generated) == 1 and engine.generated[0] < 15


async def test_time_limit_ends_a_started_stream_with_an_error_event(async_client, auth, fake_pool, settings):
    settings.PLAYGROUND_REQUEST_TIMEOUT = 1.0
    engine = slow(fake_pool, "fake-chat", 0.2)
    worker = fake_pool.workers["fake-chat"]
    response = await post(async_client, "/v1/chat/completions", with_(CHAT, max_tokens=40, stream=True), auth)
    assert response.status_code == 200
    body = b"".join([part async for part in response.streaming_content]).decode()
    events = [block[len("data: ") :] for block in body.split("\n\n") if block]
    assert events[-1] == "[DONE]"
    assert json.loads(events[-2])["error"]["code"] == "timeout"
    assert any("delta" in json.loads(e)["choices"][0] for e in events[:-2])
    # The whole reply is 15 tokens (3 s at 0.2 s each): the engine was stopped part-way, not left to finish.
    await wait_until(lambda: not worker.busy)
    assert len(engine.generated) == 1 and engine.generated[0] < 15


async def test_stream_client_disconnect_cancels_the_job(async_client, auth, fake_pool):
    """What Django's ASGI handler does on http.disconnect: cancel the task that is sending the stream."""
    engine = slow(fake_pool, "fake-chat", 0.1)
    worker = fake_pool.workers["fake-chat"]
    response = await post(async_client, "/v1/chat/completions", with_(CHAT, max_tokens=40, stream=True), auth)
    received: list[bytes] = []

    async def send() -> None:
        async for part in response.streaming_content:
            received.append(part)

    task = asyncio.create_task(send())
    await wait_until(lambda: len(received) >= 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_until(lambda: not worker.busy)
    assert worker.waiting == 0
    assert len(engine.generated) == 1 and engine.generated[0] < 15  # stopped part-way, not left to finish


async def test_closing_the_stream_iterator_early_cancels_the_job(async_client, auth, fake_pool):
    engine = slow(fake_pool, "fake-chat", 0.1)
    worker = fake_pool.workers["fake-chat"]
    response = await post(async_client, "/v1/chat/completions", with_(CHAT, max_tokens=40, stream=True), auth)
    events = response._iterator  # the view's own async generator, under Django's wrapper
    assert (await anext(events)).startswith(b"data: ")
    await events.aclose()
    await wait_until(lambda: not worker.busy)
    assert len(engine.generated) == 1 and engine.generated[0] < 15  # stopped part-way, not left to finish


async def test_work_is_capped_not_only_bytes(async_client, auth, fake_pool, settings):
    """Audio longer than the setting, embeddings over the token budget and overlong stop sequences are refused."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.PLAYGROUND_MAX_AUDIO_SECONDS = 3
    form = {"model": "fake-stt", "file": SimpleUploadedFile("a.wav", b"FAKEAUDIO:One two three four five.")}
    response = await async_client.post("/v1/audio/transcriptions", form, **auth)
    error = check_error(response, 400, "audio_too_long", "file")
    assert "limit here is 3.0 s" in error["message"]
    settings.PLAYGROUND_EMBEDDINGS_MAX_TOKENS = 5
    response = await post(async_client, "/v1/embeddings", with_(EMBED, input=["one two three", "four five six"]), auth)
    assert (
        "tokens in all; the limit per request is 5"
        in check_error(response, 400, "invalid_parameter", "input")["message"]
    )
    response = await post(async_client, "/v1/chat/completions", with_(CHAT, stop=["x" * 257]), auth)
    check_error(response, 400, "invalid_parameter", "stop")
