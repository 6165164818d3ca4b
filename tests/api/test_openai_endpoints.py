"""The OpenAI-compatible endpoints with fake engines: every response's shape, streaming, usage, tiers."""

from __future__ import annotations

import base64
import io
import json
import struct
import wave
from typing import Any

import pytest

from playground.api.http import sse
from playground.api.openai import _dump_chunk
from playground.contract import openai as contract

pytestmark = pytest.mark.django_db(transaction=True)


async def post_json(client, path: str, body: dict[str, Any], auth: dict[str, Any], **extra: Any):  # noqa: ANN201
    return await client.post(path, data=json.dumps(body), content_type="application/json", **auth, **extra)


def sse_events(content: bytes) -> list[Any]:
    """The decoded `data:` payloads of an SSE body ("[DONE]" kept as a string)."""
    events = []
    for block in content.decode().split("\n\n"):
        if not block.strip():
            continue
        assert block.startswith("data: "), block
        payload = block[len("data: ") :]
        events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


async def streamed(response) -> bytes:  # noqa: ANN001
    return b"".join([part async for part in response.streaming_content])


async def test_models_list_every_catalog_model_with_task_and_context(async_client, auth, fake_pool):
    response = await async_client.get("/v1/models", **auth)
    assert response.status_code == 200
    data = response.json()
    assert data["object"] == "list"
    models = {m["id"]: m for m in data["data"]}
    assert set(models) == {"fake-chat", "fake-completion", "fake-embed", "fake-stt", "fake-tts"}
    chat = models["fake-chat"]
    assert chat["object"] == "model" and chat["owned_by"] and isinstance(chat["created"], int)
    assert chat["task"] == "text-to-text" and chat["context_length"] == 2048 and chat["capabilities"] == []
    assert models["fake-stt"]["context_length"] is None
    one = await async_client.get("/v1/models/fake-embed", **auth)
    assert one.json()["task"] == "embeddings"


async def test_chat_completion_shape_and_exact_usage(async_client, auth, fake_pool):
    body = {"model": "fake-chat", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 4, "seed": 1}
    response = await post_json(async_client, "/v1/chat/completions", body, auth)
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["id"].startswith("chatcmpl-") and data["object"] == "chat.completion"
    assert data["model"] == "fake-chat" and isinstance(data["created"], int)
    assert data["service_tier"] == "cpu" and response["X-Service-Tier"] == "cpu" and data["system_fingerprint"]
    (choice,) = data["choices"]
    assert choice["index"] == 0 and choice["logprobs"] is None and choice["finish_reason"] == "length"
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == "You said: hello there"  # one word per token
    # the fake counts each message's words + 2
    assert data["usage"] == {"prompt_tokens": 4, "completion_tokens": 4, "total_tokens": 8}


async def test_every_sampling_parameter_reaches_the_engine(async_client, auth, fake_pool):
    body = {
        "model": "fake-chat",
        "messages": [
            {"role": "developer", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        ],
        "temperature": 0.2,
        "top_p": 0.5,
        "top_k": 7,
        "min_p": 0.1,
        "max_completion_tokens": 9,
        "presence_penalty": 0.5,
        "frequency_penalty": -0.5,
        "repetition_penalty": 1.3,
        "seed": 42,
        "stop": "golf",
        "n": 1,
        "logprobs": False,
        "user": "someone",
        "service_tier": "auto",
    }
    response = await post_json(async_client, "/v1/chat/completions", body, auth)
    assert response.status_code == 200, response.content
    call = fake_pool.workers["fake-chat"].engine.calls[-1]
    params = call["params"]
    assert (params.temperature, params.top_p, params.top_k, params.min_p) == (0.2, 0.5, 7, 0.1)
    assert (params.max_tokens, params.presence_penalty, params.frequency_penalty) == (9, 0.5, -0.5)
    assert (params.repetition_penalty, params.seed, params.stop) == (1.3, 42, ("golf",))
    assert [m.role for m in call["messages"]] == ["system", "user"]


async def test_catalog_defaults_fill_what_the_request_leaves_out(async_client, auth, fake_pool):
    body = {"model": "fake-chat", "messages": [{"role": "user", "content": "hi"}], "stop": ["x", "y"]}
    await post_json(async_client, "/v1/chat/completions", body, auth)
    params = fake_pool.workers["fake-chat"].engine.calls[-1]["params"]
    assert (params.temperature, params.max_tokens, params.stop) == (0.5, 64, ("x", "y"))


async def test_stop_sequence_finishes_with_stop(async_client, auth, fake_pool):
    body = {"model": "fake-chat", "messages": [{"role": "user", "content": "hi"}], "stop": ["said"]}
    data = (await post_json(async_client, "/v1/chat/completions", body, auth)).json()
    assert data["choices"][0]["message"]["content"] == "You "
    assert data["choices"][0]["finish_reason"] == "stop"


async def test_chat_stream_sends_openai_chunks_usage_and_done(async_client, auth, fake_pool):
    body = {
        "model": "fake-chat",
        "messages": [{"role": "user", "content": "stream me"}],
        "max_tokens": 4,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    response = await post_json(async_client, "/v1/chat/completions", body, auth)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/event-stream") and response["X-Service-Tier"] == "cpu"
    events = sse_events(await streamed(response))
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "fake-chat" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "You said: stream me"
    finish = chunks[-2]
    assert finish["choices"][0]["finish_reason"] == "length" and finish["choices"][0]["delta"] == {}
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 4, "completion_tokens": 4, "total_tokens": 8}


async def test_streamed_text_pieces_are_the_contracts_chunks_whatever_the_text(async_client, auth, fake_pool):
    """Text chunks are made once around a marker and filled in per piece: quotes, backslashes, non-ASCII, a control
    character and markup come through exactly, byte for byte the events the contract's chunks make."""
    content = 'say "hi" \\ ünï 🐉 </script> \x01'
    body = {"model": "fake-chat", "messages": [{"role": "user", "content": content}], "max_tokens": 12, "stream": True}
    raw = await streamed(await post_json(async_client, "/v1/chat/completions", body, auth))
    blocks = [block + b"\n\n" for block in raw.split(b"\n\n") if block]
    chunks = sse_events(raw)[:-1]
    texts = [(b, c) for b, c in zip(blocks, chunks, strict=False) if c["choices"] and c["choices"][0]["delta"]]
    texts = texts[1:]  # after the role's chunk
    assert "".join(c["choices"][0]["delta"]["content"] for _, c in texts).startswith("You said: " + content)
    head = {k: texts[0][1][k] for k in ("id", "created", "model", "service_tier", "system_fingerprint")}
    for block, chunk in texts:
        delta = contract.ChunkDelta(content=chunk["choices"][0]["delta"]["content"])
        made = contract.ChatCompletionChunk(choices=[contract.ChatChunkChoice(delta=delta, finish_reason=None)], **head)
        assert block == sse(_dump_chunk(made))


async def test_chat_stream_without_usage_has_no_usage_chunk(async_client, auth, fake_pool):
    body = {"model": "fake-chat", "messages": [{"role": "user", "content": "x"}], "max_tokens": 2, "stream": True}
    events = sse_events(await streamed(await post_json(async_client, "/v1/chat/completions", body, auth)))
    assert events[-1] == "[DONE]" and all("usage" not in e for e in events[:-1])
    assert events[-2]["choices"][0]["finish_reason"] == "length"


async def test_completion_shape_and_usage(async_client, auth, fake_pool):
    body = {"model": "fake-completion", "prompt": "Once upon a time", "max_tokens": 3, "seed": 3}
    response = await post_json(async_client, "/v1/completions", body, auth)
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["id"].startswith("cmpl-") and data["object"] == "text_completion"
    (choice,) = data["choices"]
    assert choice["text"].startswith("and then") and choice["finish_reason"] == "length"
    assert choice["logprobs"] is None and choice["index"] == 0
    assert data["usage"] == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    assert fake_pool.workers["fake-completion"].engine.calls[-1]["prompt"] == "Once upon a time"


async def test_completion_stream(async_client, auth, fake_pool):
    body = {
        "model": "fake-completion",
        "prompt": ["Once"],
        "max_tokens": 2,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    events = sse_events(await streamed(await post_json(async_client, "/v1/completions", body, auth)))
    assert events[-1] == "[DONE]"
    assert all(e["object"] == "text_completion" for e in events[:-1])
    assert "".join(e["choices"][0]["text"] for e in events[:-1] if e["choices"]) == "and then"
    assert events[-2]["choices"] == [] and events[-2]["usage"]["completion_tokens"] == 2


async def test_embeddings_float_and_base64_agree(async_client, auth, fake_pool):
    texts = ["one text", "another"]
    floats = (await post_json(async_client, "/v1/embeddings", {"model": "fake-embed", "input": texts}, auth)).json()
    assert floats["object"] == "list" and floats["model"] == "fake-embed"
    assert [d["index"] for d in floats["data"]] == [0, 1] and floats["data"][0]["object"] == "embedding"
    assert len(floats["data"][0]["embedding"]) == 8
    assert floats["usage"] == {"prompt_tokens": 7, "total_tokens": 7}
    body = {"model": "fake-embed", "input": texts, "encoding_format": "base64", "dimensions": 8}
    packed = (await post_json(async_client, "/v1/embeddings", body, auth)).json()
    decoded = struct.unpack("<8f", base64.b64decode(packed["data"][1]["embedding"]))
    assert decoded == pytest.approx(floats["data"][1]["embedding"], abs=1e-6)


async def test_embeddings_single_string(async_client, auth, fake_pool):
    data = (await post_json(async_client, "/v1/embeddings", {"model": "fake-embed", "input": "solo"}, auth)).json()
    assert len(data["data"]) == 1


def srt_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line]


@pytest.mark.parametrize(
    "path,task", [("/v1/audio/transcriptions", "transcribe"), ("/v1/audio/translations", "translate")]
)
async def test_transcription_json(async_client, auth, fake_pool, path, task):
    audio = io.BytesIO(b"FAKEAUDIO:Hello there. General Kenobi.")
    audio.name = "audio.wav"
    response = await async_client.post(path, {"file": audio, "model": "fake-stt", "language": "es"}, **auth)
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["text"] == "Hello there. General Kenobi."
    assert data["usage"] == {"type": "duration", "seconds": 4.0}
    assert fake_pool.workers["fake-stt"].engine.calls[-1] == {"language": "es", "task": task}


@pytest.mark.parametrize("response_format", ["text", "srt", "vtt", "verbose_json"])
async def test_transcription_formats(async_client, auth, fake_pool, response_format):
    audio = io.BytesIO(b"FAKEAUDIO:Hello there. General Kenobi.")
    audio.name = "audio.wav"
    form = {"file": audio, "model": "fake-stt", "response_format": response_format}
    response = await async_client.post("/v1/audio/transcriptions", form, **auth)
    assert response.status_code == 200, response.content
    text = response.content.decode()
    if response_format == "text":
        assert text == "Hello there. General Kenobi.\n"
    elif response_format == "srt":
        assert srt_lines(text) == [
            "1",
            "00:00:00,000 --> 00:00:02,000",
            "Hello there.",
            "2",
            "00:00:02,000 --> 00:00:04,000",
            "General Kenobi.",
        ]
    elif response_format == "vtt":
        assert srt_lines(text)[:3] == ["WEBVTT", "00:00:00.000 --> 00:00:02.000", "Hello there."]
    else:
        data = json.loads(text)
        assert data["task"] == "transcribe" and data["language"] == "en" and data["duration"] == 4.0
        assert data["segments"][1] == {"id": 1, "start": 2.0, "end": 4.0, "text": "General Kenobi."}


async def test_speech_returns_wav(async_client, auth, fake_pool):
    body = {"model": "fake-tts", "input": "Hello", "voice": "default", "speed": 2.0, "response_format": "wav"}
    response = await post_json(async_client, "/v1/audio/speech", body, auth)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "audio/wav"
    with wave.open(io.BytesIO(response.content)) as wav:
        assert wav.getframerate() == 16000
        assert wav.getnframes() == int(5 * 0.05 / 2.0 * 16000)


async def test_speech_voice_may_be_the_model_id_and_format_defaults_to_wav(async_client, auth, fake_pool):
    response = await post_json(
        async_client, "/v1/audio/speech", {"model": "fake-tts", "input": "Hi", "voice": "fake-tts"}, auth
    )
    assert response.status_code == 200 and response.content[:4] == b"RIFF"


async def test_speech_accepts_openais_voice_names_with_the_models_voice(async_client, auth, fake_pool):
    for voice in ("alloy", "nova", "shimmer"):
        response = await post_json(
            async_client, "/v1/audio/speech", {"model": "fake-tts", "input": "Hi", "voice": voice}, auth
        )
        assert response.status_code == 200 and response.content[:4] == b"RIFF"
    refused = await post_json(
        async_client, "/v1/audio/speech", {"model": "fake-tts", "input": "Hi", "voice": "robot"}, auth
    )
    assert refused.status_code == 400
    assert "alloy, ash" in refused.json()["error"]["message"]


async def test_service_tier_query_form_is_read(async_client, auth, fake_pool):
    body = {"model": "fake-chat", "messages": [{"role": "user", "content": "x"}], "max_tokens": 1}
    ok = await post_json(async_client, "/v1/chat/completions?serviceTier=default", body, auth)
    assert ok.status_code == 200 and ok.json()["service_tier"] == "cpu"
    refused = await post_json(async_client, "/v1/chat/completions?serviceTier=gpuflex", body, auth)
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["param"] == "service_tier" and "GPU" in error["message"] and "auto, default" in error["message"]
