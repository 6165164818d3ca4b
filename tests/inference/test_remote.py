"""Remote engines and their router, against scriptable upstreams on loopback (tests/upstream.py)."""

from __future__ import annotations

import io
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from inference import remote
from inference.catalog import CatalogError, UpstreamSpec, load_catalog
from inference.device import DeviceDecision
from inference.pool import EnginePool
from inference.remote import Counter, RemoteTextEngine, Router
from inference.types import (
    AudioDecodeError,
    AudioTooLongError,
    ChatMessage,
    InvalidRequestError,
    SamplingParams,
    TextChunk,
    Tool,
    UnsupportedRequestError,
    UpstreamError,
    UpstreamUnavailableError,
)
from tests.upstream import WORDS, FakeUpstream, fake_upstream

PARAMS = SamplingParams(temperature=0.0, max_tokens=16, top_k=40, seed=7, stop=("\n\n",))
HELLO = [ChatMessage("user", "Hi")]


@pytest.fixture
def up_a() -> Iterator[FakeUpstream]:
    with fake_upstream() as upstream:
        yield upstream


@pytest.fixture
def up_b() -> Iterator[FakeUpstream]:
    with fake_upstream() as upstream:
        yield upstream


def router(*upstreams: FakeUpstream | str, cap: int = 4, **kwargs: object) -> Router:
    specs = [
        UpstreamSpec(url=u if isinstance(u, str) else u.url, model="up-model", max_concurrency=cap) for u in upstreams
    ]
    return Router("remote-chat", specs, **kwargs)  # type: ignore[arg-type]


def text_engine(r: Router, *, kind: remote.Kind = "openai") -> RemoteTextEngine:
    return RemoteTextEngine(r, kind=kind, n_ctx=4096, chat=True, counter=Counter(None))


def dead_url() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"  # nothing listens there now: connections are refused


def test_a_chat_streams_the_upstream_pieces_and_its_usage(up_a: FakeUpstream) -> None:
    chunks = list(text_engine(router(up_a)).chat(HELLO, PARAMS))
    assert [c.text for c in chunks[:-1]] == WORDS
    last = chunks[-1]
    assert last.finish_reason == "length" and last.text == ""
    assert last.usage is not None and (last.usage.prompt_tokens, last.usage.completion_tokens) == (11, len(WORDS))
    assert not last.usage.estimated
    body = up_a.requests[0]["body"]
    assert body["model"] == "up-model" and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [{"role": "user", "content": "Hi"}]
    # the sampling values reach the upstream, the extensions by vLLM's names, only when they do something
    assert (body["temperature"], body["max_tokens"], body["top_k"], body["seed"], body["stop"]) == (
        0.0,
        16,
        40,
        7,
        ["\n\n"],
    )
    assert "min_p" not in body and "repetition_penalty" not in body


def test_a_completion_and_the_tgi_dialect(up_a: FakeUpstream) -> None:
    engine = RemoteTextEngine(router(up_a), kind="openai", n_ctx=4096, chat=False, counter=Counter(None))
    chunks = list(engine.complete("Once upon", PARAMS))
    assert "".join(c.text for c in chunks) == "".join(WORDS)
    assert up_a.requests[-1]["path"] == "/v1/completions" and up_a.requests[-1]["body"]["prompt"] == "Once upon"

    tgi = RemoteTextEngine(
        Router("tgi", [UpstreamSpec(url=up_a.root, model="")], health_path="/health"),
        kind="tgi",
        n_ctx=4096,
        chat=False,
        counter=Counter(None),
    )
    chunks = list(tgi.complete("Once upon", SamplingParams(temperature=0.0, max_tokens=5, seed=3)))
    assert "".join(c.text for c in chunks) == "".join(WORDS)
    sent = up_a.requests[-1]
    assert sent["path"] == "/generate_stream"
    assert sent["body"]["parameters"] == {"do_sample": False, "details": True, "max_new_tokens": 5, "seed": 3}
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens == len(WORDS)
    assert usage.estimated  # TGI's stream has no prompt count, and no tokenizer was given


def test_without_usage_from_the_upstream_the_reply_is_counted_and_marked_estimated(up_a: FakeUpstream) -> None:
    up_a.mode = "no_usage"
    last = list(text_engine(router(up_a)).chat(HELLO, PARAMS))[-1]
    assert last.usage is not None and last.usage.estimated
    assert last.usage.completion_tokens == len(WORDS)  # one piece per token
    assert last.usage.prompt_tokens > 0


def test_requests_go_to_the_least_busy_upstream(up_a: FakeUpstream, up_b: FakeUpstream) -> None:
    for upstream in (up_a, up_b):
        upstream.delay = 0.05
    engine = text_engine(router(up_a, up_b))
    threads = [threading.Thread(target=lambda: list(engine.chat(HELLO, PARAMS))) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(up_a.requests) + len(up_b.requests) == 6
    assert min(len(up_a.requests), len(up_b.requests)) >= 2  # 3 and 3 unless a reply ended before all started
    status = engine.router.status()
    assert [s["in_flight"] for s in status] == [0, 0]
    assert all(s["state"] == "healthy" and s["latency_ms"] is not None for s in status)


def test_a_request_waits_while_every_upstream_is_at_its_cap(up_a: FakeUpstream) -> None:
    up_a.delay = 0.05
    engine = text_engine(router(up_a, cap=2))
    threads = [threading.Thread(target=lambda: list(engine.chat(HELLO, PARAMS))) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert up_a.wait_finished(5) == 5 and up_a.max_in_flight == 2


@pytest.mark.parametrize("mode", ["down", "busy"])
def test_a_failing_upstream_is_skipped_before_anything_streamed(
    up_a: FakeUpstream, up_b: FakeUpstream, mode: str
) -> None:
    up_a.mode = mode
    r = router(up_a, up_b)
    for _ in range(3):
        assert "".join(c.text for c in text_engine(r).chat(HELLO, PARAMS)) == "".join(WORDS)
    assert up_b.wait_finished(3) == 3
    state = r.status()[0]
    if mode == "down":  # marked down: later requests do not try it until its health check passes
        assert state["state"] == "down" and len(up_a.requests) == 1 and "503" in state["last_error"]
    else:  # busy is no fault: it stays in the rotation
        assert state["state"] != "down" and state["failures"] >= 1


def test_a_refused_connection_fails_over_and_marks_the_upstream_down(up_b: FakeUpstream) -> None:
    r = router(dead_url(), up_b)
    assert "".join(c.text for c in text_engine(r).chat(HELLO, PARAMS)) == "".join(WORDS)
    assert r.status()[0]["state"] == "down"


def test_an_upstream_that_breaks_before_its_first_piece_fails_over(up_a: FakeUpstream, up_b: FakeUpstream) -> None:
    up_a.mode, up_a.break_after = "break", 0
    r = router(up_a, up_b)
    r.upstreams[1].latency_ms = 1000.0  # a tie on load goes to the faster: make up_a first
    assert "".join(c.text for c in text_engine(r).chat(HELLO, PARAMS)) == "".join(WORDS)
    assert len(up_a.requests) == 1 and up_b.wait_finished(1) == 1


def test_a_stream_that_breaks_mid_reply_ends_with_an_upstream_error(up_a: FakeUpstream, up_b: FakeUpstream) -> None:
    up_a.mode = "break"
    r = router(up_a, up_b)
    r.upstreams[1].latency_ms = 1000.0
    received: list[TextChunk] = []
    with pytest.raises(UpstreamError, match="broke off"):
        for chunk in text_engine(r).chat(HELLO, PARAMS):
            received.append(chunk)
    assert [c.text for c in received] == WORDS[:2]  # what had streamed reached the caller; no second upstream
    assert not up_b.requests
    assert r.status()[0]["in_flight"] == 0


def test_every_upstream_down_is_upstream_unavailable() -> None:
    r = router(dead_url(), dead_url())
    with pytest.raises(UpstreamUnavailableError, match="no upstream of model remote-chat"):
        list(text_engine(r).chat(HELLO, PARAMS))
    with pytest.raises(UpstreamUnavailableError):  # now both are marked down: refused at once
        list(text_engine(r).chat(HELLO, PARAMS))


def test_an_upstream_refusal_is_the_callers_error(up_a: FakeUpstream) -> None:
    up_a.mode = "refuse"
    r = router(up_a)
    with pytest.raises(InvalidRequestError, match="max_tokens is too large"):
        list(text_engine(r).chat(HELLO, PARAMS))
    assert r.status()[0]["state"] != "down"


def test_stopping_a_stream_closes_the_upstream_connection(up_a: FakeUpstream) -> None:
    up_a.delay, up_a.pieces = 0.05, 200
    stop = threading.Event()
    chunks = []
    for chunk in text_engine(router(up_a)).chat(HELLO, PARAMS, stop):
        chunks.append(chunk)
        if len(chunks) == 3:
            stop.set()
    assert chunks[-1].finish_reason == "cancelled"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == len(chunks) - 1
    deadline = time.monotonic() + 5
    while up_a.gone == 0 and time.monotonic() < deadline:  # the upstream notices at its next write
        time.sleep(0.02)
    assert up_a.gone == 1 and up_a.finished == 0


def test_a_stop_unblocks_a_read_waiting_on_a_silent_upstream(up_a: FakeUpstream) -> None:
    up_a.delay, up_a.pieces = 3.0, 2  # nothing for 3 s
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    chunks = list(text_engine(router(up_a)).chat(HELLO, PARAMS, stop))
    assert time.monotonic() - started < 2.0
    assert chunks[-1].finish_reason == "cancelled"


def test_a_silent_upstream_times_out_without_being_marked_down(up_a: FakeUpstream, up_b: FakeUpstream) -> None:
    up_a.delay = 2.0
    r = router(up_a, up_b, read_timeout=0.3)
    r.upstreams[1].latency_ms = 1000.0
    assert "".join(c.text for c in text_engine(r).chat(HELLO, PARAMS)) == "".join(WORDS)  # failed over to up_b
    state = r.status()[0]
    # busy (its own line is long), not gone: it stays in the rotation, and its connection was closed
    assert state["state"] != "down" and state["failures"] == 1 and "timed out" in state["last_error"]
    deadline = time.monotonic() + 5
    while up_a.gone == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert up_a.gone == 1
    # alone, a request that times out is refused by itself; the next one is taken again
    single = router(up_a, read_timeout=0.3)
    with pytest.raises(UpstreamUnavailableError):
        list(text_engine(single).chat(HELLO, PARAMS))
    up_a.delay = 0.0
    assert "".join(c.text for c in text_engine(single).chat(HELLO, PARAMS)) == "".join(WORDS)


def test_health_checks_back_off_and_bring_an_upstream_back(up_a: FakeUpstream) -> None:
    up_a.mode = "down"
    r = router(up_a)
    upstream = r.upstreams[0]
    gaps = []
    for _ in range(4):
        before = time.monotonic()
        assert not r.check(upstream)
        gaps.append(round(upstream.next_check - before))
    assert gaps == [1, 2, 4, 8] and upstream.state == "down"
    up_a.mode = "ok"
    assert r.check(upstream) and upstream.state == "healthy"
    assert round(upstream.next_check - time.monotonic()) == remote.HEALTH_INTERVAL


def test_tools_grammars_and_continuing_are_refused_for_a_remote_model(up_a: FakeUpstream) -> None:
    engine = text_engine(router(up_a))
    with pytest.raises(UnsupportedRequestError):
        engine.chat(HELLO, PARAMS, tools=[Tool("get_weather")])
    with pytest.raises(UnsupportedRequestError):
        engine.chat(HELLO, SamplingParams(grammar='root ::= "a"'))
    with pytest.raises(UnsupportedRequestError):
        engine.chat([*HELLO, ChatMessage("assistant", "Hel")], PARAMS, continue_final=True)
    assert not up_a.requests


def test_the_api_key_comes_from_the_environment(up_a: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UP_KEY", "sk-upstream-1")
    r = Router("m", [UpstreamSpec(url=up_a.url, model="up-model", api_key_env="UP_KEY")])
    list(text_engine(r).chat(HELLO, PARAMS))
    assert up_a.auth == ["Bearer sk-upstream-1"]


@pytest.mark.real_model
def test_a_tokenizer_counts_what_the_upstream_does_not_report(up_a: FakeUpstream) -> None:
    from tests.inference.conftest import catalog_spec

    up_a.mode = "no_usage"
    counter = Counter(remote.Tokenizer(catalog_spec("smollm2-135m-instruct").path))
    engine = RemoteTextEngine(router(up_a), kind="openai", n_ctx=4096, chat=True, counter=counter)
    usage = list(engine.chat(HELLO, PARAMS))[-1].usage
    assert usage is not None and not usage.estimated
    # SmolLM2's template around "Hi" (its default system prompt included), and the reply's own tokens
    assert usage.prompt_tokens == counter.chat(HELLO) > 10
    assert usage.completion_tokens == counter.text("".join(WORDS))


def test_embeddings_speech_and_transcription(up_a: FakeUpstream) -> None:
    r = router(up_a)
    embedder = remote.RemoteEmbeddingEngine(r, n_ctx=512, dimensions=0, counter=Counter(None))
    result = embedder.embed(["a", "b"])
    assert result.vectors[0] == pytest.approx([0.6, 0.8, 0.0]) and result.usage.prompt_tokens == 14
    assert embedder.dimensions == 3

    stt = remote.RemoteSpeechToTextEngine(r, multilingual=False)
    wav = io.BytesIO()
    with wave.open(wav, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"\0\0" * 24000)
    info, segments = stt.transcribe(wav.getvalue(), language="en")
    assert info.duration == 1.5 and [s.text for s in segments] == ["Hello there."]
    sent = up_a.requests[-1]
    assert sent["path"] == "/v1/audio/transcriptions" and b'filename="audio.wav"' in sent["raw"]
    assert b"verbose_json" in sent["raw"]
    with pytest.raises(InvalidRequestError, match="English-only"):
        stt.transcribe(wav.getvalue(), task="translate")
    # refused here, before the upstream: not audio, or longer than the caller's limit (read from the header)
    sent = len(up_a.requests)
    with pytest.raises(AudioDecodeError):
        stt.transcribe(b"RIFF....WAVEfmt ")
    with pytest.raises(AudioTooLongError):
        stt.transcribe(wav.getvalue(), max_seconds=0.2)
    assert len(up_a.requests) == sent

    tts = remote.RemoteTextToSpeechEngine(r, voice="default", max_characters=100, sample_rate=22050)
    speech = tts.synthesize("Hello", speed=1.25)
    assert speech.sample_rate == 16000 and speech.duration == 0.5 and speech.usage.characters == 5
    assert up_a.requests[-1]["body"]["speed"] == 1.25
    with pytest.raises(InvalidRequestError):
        tts.synthesize("x" * 101)


def test_catalog_entries_for_remote_models(tmp_path: Path) -> None:
    catalog = tmp_path / "remote.toml"
    catalog.write_text(
        """
[[model]]
id = "big-chat"
task = "text-to-text"
engine = "openai"
n_ctx = 8192
upstreams = [
  { url = "http://gpu-1:8000/v1/", model = "Llama-3.3-70B", api_key_env = "GPU_KEY", max_concurrency = 16 },
  { url = "http://gpu-2:8000/v1" },
]
tokenizer = "llama.gguf"
prices = { input_per_million_tokens = 0.5, output_per_million_tokens = 1.0 }
"""
    )
    (spec,) = load_catalog([catalog], models_dir=tmp_path)
    assert spec.remote and spec.weights_present and spec.tokenizer == tmp_path / "llama.gguf"
    assert spec.upstreams[0] == UpstreamSpec("http://gpu-1:8000/v1", "Llama-3.3-70B", "GPU_KEY", 16)
    assert spec.upstreams[1] == UpstreamSpec("http://gpu-2:8000/v1", "big-chat", "", 4)

    pool = EnginePool([spec], device=DeviceDecision("cpu", "test", "auto", {}), threads=1)
    assert pool.workers["big-chat"].concurrency == 20
    (status,) = pool.status()
    assert status.device == "remote" and [u["state"] for u in status.upstreams] == ["unknown", "unknown"]

    for bad, why in (
        ('engine = "openai"', "needs upstreams"),
        ('engine = "openai"\nupstreams = [{ url = "gpu-1:8000" }]', "http:// or https://"),
        ('engine = "openai"\nupstreams = [{ url = "http://x", port = 1 }]', "unknown keys"),
        ('engine = "openai"\nupstreams = [{ url = "http://x", max_concurrency = 0 }]', "at least 1"),
        ('path = "x.gguf"\nupstreams = [{ url = "http://x" }]', "upstreams need engine"),
    ):
        catalog.write_text(f'[[model]]\nid = "m"\ntask = "text-to-text"\n{bad}\n')
        with pytest.raises(CatalogError, match=why):
            load_catalog([catalog], models_dir=tmp_path)
    catalog.write_text(
        '[[model]]\nid = "m"\ntask = "text-to-speech"\nengine = "tgi"\nupstreams = [{ url = "http://x" }]\n'
    )
    with pytest.raises(CatalogError, match="cannot serve text-to-speech"):
        load_catalog([catalog], models_dir=tmp_path)


def test_the_oldest_turns_are_left_out_when_a_conversation_outgrows_the_context(up_a: FakeUpstream) -> None:
    engine = RemoteTextEngine(router(up_a), kind="openai", n_ctx=64, chat=True, counter=Counter(None))
    long = "word " * 40  # about 50 tokens by the estimate
    history = [
        ChatMessage("system", "Be brief."),
        ChatMessage("user", long),
        ChatMessage("assistant", long),
        ChatMessage("user", "And now?"),
    ]
    chunks = list(engine.chat(history, SamplingParams(max_tokens=8), overflow="drop_oldest"))
    assert chunks[-1].dropped_messages == 2
    sent = up_a.requests[-1]["body"]["messages"]
    assert [m["content"] for m in sent] == ["Be brief.", "And now?"]
