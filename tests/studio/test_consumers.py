"""The speech-to-text WebSocket: segments stream as decoded, errors come as frames, stop and disconnect cancel."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from channels.db import database_sync_to_async

from inference import EnginePool
from inference.device import DeviceDecision
from inference.pool import build_engine
from inference.types import Segment, TranscriptionInfo
from playground import engines
from playground.catalog.models import ModelStats
from playground.studio.services import SPEECH_MAX_BYTES
from tests.conftest import FAKE_SPECS
from tests.studio.conftest import speech_socket

pytestmark = pytest.mark.django_db(transaction=True)

AUDIO = b"FAKEAUDIO:The quick brown fox. Jumps over the lazy dog. And runs away."


async def start(cookie: bytes, audio: bytes = AUDIO, **request: Any):  # noqa: ANN201
    socket = speech_socket(cookie)
    connected, _ = await socket.connect()
    assert connected
    await socket.send_json_to({"type": "transcribe", "model": "fake-stt", "task": "transcribe", **request})
    await socket.send_to(bytes_data=audio)
    return socket


async def test_segments_stream_then_done(fake_pool, session_cookie):
    socket = await start(session_cookie, language="en")
    info = await socket.receive_json_from()
    assert info == {"type": "info", "language": "en", "duration": 12.0}
    segments = [await socket.receive_json_from() for _ in range(3)]
    assert [s["type"] for s in segments] == ["segment"] * 3
    assert segments[0] == {"type": "segment", "id": 0, "start": 0.0, "end": 4.0, "text": "The quick brown fox."}
    assert segments[2]["text"] == "And runs away."
    done = await socket.receive_json_from()
    assert done["type"] == "done"
    assert done["usage"] == {"audio_seconds": 12.0}
    assert done["real_time_factor"] >= 0
    assert fake_pool.workers["fake-stt"].engine.calls == [{"language": "en", "task": "transcribe"}]
    await socket.disconnect()


async def test_audio_in_chunks_of_an_announced_size_is_assembled(fake_pool, session_cookie, settings):
    from playground.studio.consumers import CHUNK_BYTES

    settings.PLAYGROUND_STUDIO_MAX_AUDIO_SECONDS = 10**6  # the fake audio lasts one second per word

    audio = b"FAKEAUDIO:" + b"word " * (CHUNK_BYTES // 2) + b". Last one."
    socket = speech_socket(session_cookie)
    assert (await socket.connect())[0]
    await socket.send_json_to({"type": "transcribe", "model": "fake-stt", "size": len(audio)})
    for offset in range(0, len(audio), CHUNK_BYTES):
        assert await socket.receive_nothing(timeout=0.01)  # nothing starts before the last chunk
        await socket.send_to(bytes_data=audio[offset : offset + CHUNK_BYTES])
    assert (await socket.receive_json_from())["type"] == "info"
    segments = [await socket.receive_json_from() for _ in range(2)]
    assert segments[1]["text"] == "Last one."
    assert (await socket.receive_json_from())["type"] == "done"
    await socket.disconnect()


async def test_announced_size_over_the_limit_is_refused_before_the_upload(fake_pool, session_cookie):
    socket = speech_socket(session_cookie)
    assert (await socket.connect())[0]
    await socket.send_json_to({"type": "transcribe", "model": "fake-stt", "size": SPEECH_MAX_BYTES + 1})
    error = await socket.receive_json_from()
    assert error["code"] == "audio_too_large"
    assert "the limit is 25 MB" in error["message"]
    await socket.disconnect()


async def test_more_audio_than_announced_is_an_error(fake_pool, session_cookie):
    socket = speech_socket(session_cookie)
    assert (await socket.connect())[0]
    await socket.send_json_to({"type": "transcribe", "model": "fake-stt", "size": 5})
    await socket.send_to(bytes_data=AUDIO)
    assert "more audio arrived" in (await socket.receive_json_from())["message"]
    await socket.disconnect()


@pytest.mark.metering  # the meter writes the card's speed
async def test_finished_transcription_records_real_time_factor(fake_pool, session_cookie):
    socket = await start(session_cookie)
    frames = [await socket.receive_json_from()]
    while frames[-1]["type"] != "done":
        frames.append(await socket.receive_json_from())
    assert [f["type"] for f in frames][:2] == ["info", "segment"]
    stats = await database_sync_to_async(ModelStats.objects.get)(model_id="fake-stt")
    assert stats.speech_samples == 1
    assert stats.real_time_factor is not None
    await socket.disconnect()


async def test_translate_and_detected_language_reach_the_engine(fake_pool, session_cookie):
    socket = await start(session_cookie, task="translate", language="")
    assert (await socket.receive_json_from())["type"] == "info"
    assert fake_pool.workers["fake-stt"].engine.calls == [{"language": None, "task": "translate"}]
    await socket.disconnect()


async def test_undecodable_audio_gets_an_error_frame(fake_pool, session_cookie):
    socket = await start(session_cookie, audio=b"\x00\x01 definitely not audio")
    error = await socket.receive_json_from()
    assert error["type"] == "error"
    assert error["code"] == "invalid_audio"
    assert "could not be decoded" in error["message"]
    await socket.disconnect()


async def test_audio_over_the_limit_is_refused_with_a_clear_error(fake_pool, session_cookie):
    socket = await start(session_cookie, audio=b"FAKEAUDIO:" + b"x" * SPEECH_MAX_BYTES)
    error = await socket.receive_json_from()
    assert error["code"] == "audio_too_large"
    assert "25 MB" in error["message"]
    assert fake_pool.workers["fake-stt"].engine is None  # nothing reached the model
    await socket.disconnect()


@pytest.mark.parametrize(
    ("request_fields", "code", "words"),
    [
        ({"model": "no-such-model"}, "model_not_found", "does not exist"),
        ({"model": "fake-tts"}, "model_not_found", "serves text-to-speech (/v1/audio/speech), not the speech"),
        ({"language": "xx"}, "invalid_parameter", "Unknown language"),
        ({"task": "summarise"}, "invalid_parameter", "Select a valid choice"),
    ],
)
async def test_bad_request_gets_an_error_frame(fake_pool, session_cookie, request_fields, code, words):
    socket = speech_socket(session_cookie)
    assert (await socket.connect())[0]
    await socket.send_json_to({"type": "transcribe", "model": "fake-stt", **request_fields})
    error = await socket.receive_json_from()
    assert error["type"] == "error"
    assert error["code"] == code
    assert words in error["message"]
    await socket.disconnect()


async def test_audio_without_a_request_and_junk_messages_get_errors(fake_pool, session_cookie):
    socket = speech_socket(session_cookie)
    assert (await socket.connect())[0]
    await socket.send_to(bytes_data=AUDIO)
    assert "transcribe message" in (await socket.receive_json_from())["message"]
    await socket.send_to(text_data="not json")
    assert (await socket.receive_json_from())["code"] == "invalid_json"
    await socket.send_json_to({"type": "dance"})
    assert "unknown message type" in (await socket.receive_json_from())["message"]
    await socket.disconnect()


async def test_anonymous_socket_is_refused(fake_pool):
    socket = speech_socket()
    connected, code = await socket.connect()
    assert not connected
    assert code == 4401


class SlowSpeechEngine:
    """One segment, then waits for the stop flag; records whether the stop arrived."""

    multilingual = True

    def __init__(self) -> None:
        self.stopped = threading.Event()

    def transcribe(
        self,
        audio: bytes,
        *,
        language: Any = None,
        task: str = "transcribe",
        stop_event: Any = None,
        max_seconds: Any = None,
    ):  # noqa: ANN201
        def segments() -> Iterator[Segment]:
            yield Segment(id=0, start=0.0, end=1.0, text="First.")
            if stop_event.wait(10):
                self.stopped.set()
                return
            yield Segment(id=1, start=1.0, end=2.0, text="Too late.")

        return TranscriptionInfo(language="en", language_probability=1.0, duration=60.0), segments()


@pytest.fixture
def slow_pool() -> Iterator[tuple[EnginePool, SlowSpeechEngine]]:
    slow = SlowSpeechEngine()

    def factory(spec: Any, gpu: bool, threads: int) -> Any:
        return slow if spec.id == "fake-stt" else build_engine(spec, gpu, threads)

    pool = EnginePool(FAKE_SPECS, device=DeviceDecision("cpu", "tests"), threads=1, factory=factory)
    engines.set_pool(pool)
    yield pool, slow
    engines.set_pool(None)


async def test_stop_cancels_the_transcription(slow_pool, session_cookie):
    _, slow = slow_pool
    socket = await start(session_cookie)
    assert (await socket.receive_json_from())["type"] == "info"
    assert (await socket.receive_json_from())["text"] == "First."
    await socket.send_json_to({"type": "stop"})
    assert await socket.receive_json_from() == {"type": "stopped"}
    assert await database_sync_to_async(slow.stopped.wait)(5)
    assert await socket.receive_nothing(timeout=0.3)  # no late segment, no done
    await socket.disconnect()


async def test_stream_stops_when_socket_closes(slow_pool, session_cookie):
    _, slow = slow_pool
    socket = await start(session_cookie)
    assert (await socket.receive_json_from())["type"] == "info"
    assert (await socket.receive_json_from())["type"] == "segment"
    await socket.disconnect()
    assert await database_sync_to_async(slow.stopped.wait)(5)


REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def real_pool() -> Iterator[EnginePool]:
    from inference.catalog import load_catalog

    specs = [
        s
        for s in load_catalog([REPO / "playground" / "models.toml"], models_dir=REPO / "var" / "models")
        if s.id in ("piper-en-us-joe", "whisper-tiny.en")
    ]
    for spec in specs:
        assert spec.weights_present, f"{spec.path} missing: run ./dev test (it prepares the models)"
    pool = EnginePool(specs, device=DeviceDecision("cpu", "test"), threads=2)
    engines.set_pool(pool)
    yield pool
    engines.set_pool(None)


async def test_real_models_speak_then_transcribe_through_the_socket(real_pool, session_cookie):
    """Piper says a sentence, the browser-style webm/opus recording goes through ws/speech/ to whisper-tiny.en."""
    from playground.studio.services import speech_synthesize
    from tests.audio import FORMATS, encode_wav

    speech = await database_sync_to_async(speech_synthesize)(
        model_id="piper-en-us-joe", text="The weather is lovely today.", speed=1.0
    )
    assert speech.duration > 0.5
    audio = encode_wav(speech.wav, *FORMATS["webm"])

    socket = speech_socket(session_cookie)
    assert (await socket.connect())[0]
    await socket.send_json_to(
        {"type": "transcribe", "model": "whisper-tiny.en", "task": "transcribe", "language": "", "size": len(audio)}
    )
    for offset in range(0, len(audio), 4096):  # in chunks, as the browser sends it
        await socket.send_to(bytes_data=audio[offset : offset + 4096])
    frames = []
    while True:
        frame = json.loads(await socket.receive_from(timeout=120))
        frames.append(frame)
        if frame["type"] in ("done", "error"):
            break
    assert frames[0]["type"] == "info" and frames[0]["language"] == "en"
    assert frames[-1]["type"] == "done", frames
    text = " ".join(f["text"] for f in frames if f["type"] == "segment").lower()
    assert "weather" in text and "today" in text
    assert frames[-1]["usage"]["audio_seconds"] == pytest.approx(speech.duration, abs=0.2)
    await socket.disconnect()


async def test_audio_longer_than_the_playground_allows_is_refused(fake_pool, session_cookie, settings):
    settings.PLAYGROUND_STUDIO_MAX_AUDIO_SECONDS = 3
    audio = b"FAKEAUDIO:One two three four five."
    socket = speech_socket(session_cookie)
    assert (await socket.connect())[0]
    await socket.send_json_to({"type": "transcribe", "model": "fake-stt", "size": len(audio)})
    await socket.send_to(bytes_data=audio)
    error = await socket.receive_json_from()
    assert (error["type"], error["code"]) == ("error", "audio_too_long") and "3.0 s" in error["message"]
    await socket.disconnect()
