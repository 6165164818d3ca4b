"""Remote engines: a catalog model served by other servers, routed per request.

A model whose catalog entry says ``engine = "openai"`` (vLLM, llama.cpp's llama-server, llama_cpp.server, LocalAI,
another node of this project) or ``engine = "tgi"`` has one or more upstreams. Its engine satisfies the same
protocols as the in-process ones (inference/protocols.py), so the pool, the fair waiting line, the time limit,
cancellation and the meter treat it like any other model. A `Router` picks an upstream for each request:

- the healthy upstream with the fewest requests in flight (relative to its cap), then the lowest latency; a
  request waits while every healthy upstream is at its cap;
- a health check per upstream, every HEALTH_INTERVAL seconds while it answers, with back-off (1, 2, 4 ... 30 s)
  once it does not; a request that fails to connect or gets a 5xx/429 also marks its upstream down;
- a request that has streamed nothing yet fails over to the next upstream; one that breaks off mid-reply ends
  with UpstreamError; when the caller stops (Stop, a disconnect, the time limit) its connection is shut, so the
  upstream sees the client leave and stops generating.
"""

from __future__ import annotations

import io
import json
import logging
import math
import mimetypes
import threading
import time
import wave
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import urllib3

from inference.catalog import UpstreamSpec
from inference.text import fit_messages, with_dropped
from inference.types import (
    ChatMessage,
    EmbeddingResult,
    InvalidRequestError,
    Overflow,
    SamplingParams,
    Segment,
    SpeechResult,
    TextChunk,
    Tool,
    TranscriptionInfo,
    TranscriptionResult,
    UnsupportedRequestError,
    UpstreamError,
    UpstreamUnavailableError,
    Usage,
)

logger = logging.getLogger(__name__)

Kind = Literal["openai", "tgi"]
HEALTH_INTERVAL = 10.0  # seconds between checks of an upstream that answers
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 30.0  # seconds before re-checking one that does not, doubling
CONNECT_TIMEOUT = 3.0
REAP_INTERVAL = 0.02  # how often stopped requests are looked for (their connections shut)
CHARS_PER_TOKEN = 4  # the estimate when an upstream reports no usage and no tokenizer is at hand


class Upstream:
    """An upstream's live state; changed under its router's lock."""

    def __init__(self, spec: UpstreamSpec) -> None:
        self.spec = spec
        self.state: Literal["unknown", "healthy", "down"] = "unknown"
        self.in_flight = 0
        self.requests = 0  # taken, in all
        self.failures = 0  # requests and checks that failed, in all
        self.down_streak = 0  # checks failed in a row (the back-off's exponent)
        self.next_check = 0.0  # monotonic time of the next health check
        # A moving mean of how fast it answers: health checks, and the headers of streamed replies (an unstreamed
        # reply's headers come after the whole work, which says more about the request than the server)
        self.latency_ms: float | None = None
        self.last_error = ""

    @property
    def usable(self) -> bool:
        return self.state != "down"

    def status(self) -> dict[str, Any]:
        return {
            "url": self.spec.url,
            "model": self.spec.model,
            "state": self.state,
            "in_flight": self.in_flight,
            "max_concurrency": self.spec.max_concurrency,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 1),
            "requests": self.requests,
            "failures": self.failures,
            "last_error": self.last_error,
        }


class _Reaper:
    """One thread for every router: shuts the connection of each request whose caller has stopped, so a blocked
    read returns at once and the upstream sees its client leave."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watched: dict[int, tuple[threading.Event, urllib3.BaseHTTPResponse]] = {}
        self._thread: threading.Thread | None = None

    def watch(self, stop: threading.Event, response: urllib3.BaseHTTPResponse) -> None:
        with self._lock:
            self._watched[id(response)] = (stop, response)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="upstream-reaper", daemon=True)
                self._thread.start()

    def forget(self, response: urllib3.BaseHTTPResponse) -> None:
        with self._lock:
            self._watched.pop(id(response), None)

    def _run(self) -> None:
        while True:
            time.sleep(REAP_INTERVAL)
            with self._lock:
                stopped = [r for stop, r in self._watched.values() if stop.is_set()]
                for response in stopped:
                    self._watched.pop(id(response), None)
            for response in stopped:
                _shut(response)


def _shut(response: urllib3.BaseHTTPResponse) -> None:
    """Close the response's connection now (from any thread): the upstream sees the client leave."""
    try:
        response.shutdown()  # type: ignore[attr-defined]  # urllib3 2.3+: unblocks a read in another thread
    except Exception:
        pass
    try:
        response.close()
    except Exception:
        pass


REAPER = _Reaper()


class Lease:
    """A request's response from one upstream; close it to hand the upstream's slot back."""

    def __init__(self, router: Router, upstream: Upstream, response: urllib3.BaseHTTPResponse) -> None:
        self.router = router
        self.upstream = upstream
        self.response = response
        self.finished = False  # the body was read to its end
        self._closed = False

    def lines(self) -> Iterator[str]:
        """The body's lines as they arrive (server-sent events)."""
        buffer = b""
        while True:
            chunk = self.response.read1(65536)  # type: ignore[attr-defined]  # urllib3 2: what has arrived
            if not chunk:
                self.finished = True
                break
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            for line in complete:
                yield line.rstrip(b"\r").decode("utf-8", "replace")
        if buffer:
            yield buffer.decode("utf-8", "replace")

    def events(self) -> Iterator[Any]:
        """Each server-sent event's JSON data, until [DONE] or the end of the body."""
        for line in self.lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                self.finished = True
                return
            if not data:
                continue
            try:
                yield json.loads(data)
            except ValueError:
                raise UpstreamError(f"{self.upstream.spec.url} sent an unreadable event: {data[:200]!r}") from None

    def json(self) -> Any:
        body = self.response.read()
        self.finished = True
        try:
            return json.loads(body)
        except ValueError:
            raise UpstreamError(f"{self.upstream.spec.url} sent an unreadable reply: {body[:200]!r}") from None

    def close(self, *, failed: str = "") -> None:
        """Hand the upstream's slot back; the connection is shut unless the reply was read to its end (`failed`
        says why it was not: its router has counted it)."""
        if self._closed:
            return
        self._closed = True
        REAPER.forget(self.response)
        if failed or not self.finished:  # stopped or broken: never hand a half-read connection back
            _shut(self.response)
        else:
            try:
                self.response.drain_conn()
                self.response.release_conn()
            except Exception:
                _shut(self.response)
        self.router.release(self.upstream)


class Router:
    """The upstreams of one remote model: picks one per request, fails over, checks their health."""

    def __init__(
        self,
        model_id: str,
        upstreams: Sequence[UpstreamSpec],
        *,
        read_timeout: float = 60.0,
        health_path: str = "/models",
    ) -> None:
        if not upstreams:
            raise ValueError(f"model {model_id}: a remote model needs at least one upstream")
        self.model_id = model_id
        self.upstreams = [Upstream(spec) for spec in upstreams]
        self.read_timeout = read_timeout
        self.health_path = health_path
        # a connection per request in flight, and one for the health checks
        self.http = urllib3.PoolManager(
            maxsize=max(u.max_concurrency for u in upstreams) + 1, block=False, retries=False
        )
        self._cond = threading.Condition()
        self._health: threading.Thread | None = None

    @property
    def capacity(self) -> int:
        return sum(u.spec.max_concurrency for u in self.upstreams)

    def status(self) -> list[dict[str, Any]]:
        with self._cond:
            return [u.status() for u in self.upstreams]

    def headers(self, upstream: Upstream, extra: dict[str, str] | None = None) -> dict[str, str]:
        key = upstream.spec.api_key
        return {**({"Authorization": f"Bearer {key}"} if key else {}), **(extra or {})}

    # --- health ------------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the health checks (once); the first runs at once."""
        with self._cond:
            if self._health is None:
                self._health = threading.Thread(target=self._check_loop, name=f"health-{self.model_id}", daemon=True)
                self._health.start()

    def _check_loop(self) -> None:
        while True:
            now = time.monotonic()
            for upstream in self.upstreams:
                if now >= upstream.next_check:
                    self.check(upstream)
            time.sleep(0.2)

    def check(self, upstream: Upstream) -> bool:
        """One health check: GET the upstream's health path (its model list for "openai", /health for "tgi")."""
        started = time.monotonic()
        try:
            response = self.http.request(
                "GET",
                upstream.spec.url.rstrip("/") + self.health_path,
                headers=self.headers(upstream),
                timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=CONNECT_TIMEOUT),
            )
            ok, why = response.status < 400, f"health check answered {response.status}"
        except urllib3.exceptions.HTTPError as exc:
            ok, why = False, f"health check failed: {_reason(exc)}"
        with self._cond:
            if ok:
                self._measured(upstream, started)
                self._up(upstream)
            else:
                self._down(upstream, why)
        return ok

    @staticmethod
    def _measured(upstream: Upstream, started: float) -> None:
        elapsed = (time.monotonic() - started) * 1000
        upstream.latency_ms = elapsed if upstream.latency_ms is None else upstream.latency_ms * 0.8 + elapsed * 0.2

    def fault(self, upstream: Upstream, exc: Exception) -> str:
        """Note that a request failed at `upstream` (returns why). A read that timed out fails that request only:
        the server is busy (its own line is long), not gone. Anything else (refused, reset, unreadable) marks it
        down until a health check passes."""
        why = str(exc) if isinstance(exc, UpstreamError) else _reason(exc)
        with self._cond:
            if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
                upstream.failures += 1
                upstream.last_error = f"timed out: {why}"
            else:
                self._down(upstream, why)
        return why

    def _up(self, upstream: Upstream) -> None:
        if upstream.state == "down":
            logger.info("model %s: upstream %s is back", self.model_id, upstream.spec.url)
        upstream.state, upstream.down_streak = "healthy", 0
        upstream.next_check = time.monotonic() + HEALTH_INTERVAL
        self._cond.notify_all()

    def _down(self, upstream: Upstream, why: str) -> None:
        if upstream.state != "down":
            logger.warning("model %s: upstream %s is down (%s)", self.model_id, upstream.spec.url, why)
        upstream.state, upstream.last_error = "down", why
        upstream.failures += 1
        upstream.down_streak += 1
        upstream.next_check = time.monotonic() + min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (upstream.down_streak - 1))

    # --- requests ----------------------------------------------------------------------------------------------

    def _pick(self, tried: set[int], stop: threading.Event | None) -> Upstream:
        """The usable upstream not yet tried with the fewest in flight for its cap (then the fastest); waits while
        every one is at its cap. Raises UpstreamUnavailableError when none is left to try."""
        with self._cond:
            while True:
                left = [u for u in self.upstreams if id(u) not in tried and u.usable]
                if not left:
                    raise UpstreamUnavailableError(self._unavailable())
                free = [u for u in left if u.in_flight < u.spec.max_concurrency]
                if free:
                    best = min(free, key=lambda u: (u.in_flight / u.spec.max_concurrency, u.latency_ms or 0.0))
                    best.in_flight += 1
                    best.requests += 1
                    return best
                if stop is not None and stop.is_set():
                    raise UpstreamUnavailableError("the request was stopped while every upstream was busy")
                self._cond.wait(0.1)

    def _unavailable(self) -> str:
        errors = "; ".join(f"{u.spec.url}: {u.last_error or u.state}" for u in self.upstreams)
        return f"no upstream of model {self.model_id} could take the request ({errors})"

    def release(self, upstream: Upstream, *, failed: str = "") -> None:
        with self._cond:
            upstream.in_flight -= 1
            if failed:
                upstream.failures += 1
                upstream.last_error = failed
            self._cond.notify_all()

    def open_for(
        self,
        path: str,
        request: Callable[[UpstreamSpec], dict[str, Any]],
        *,
        multipart: bool = False,
        stop: threading.Event | None = None,
        tried: set[int] | None = None,
        measure: bool = True,
    ) -> Lease:
        """POST `request(upstream)` (JSON, or multipart form fields) to the best upstream, failing over to the next
        while none has answered: a connection refused or timed out, a 5xx, a 401/403/404 (misconfigured here) or a
        429 (the upstream is marked down until its check passes; a 429 only skips it). An upstream's other 4xx is
        the caller's error (InvalidRequestError with its message). `tried` collects the upstreams tried: pass the
        same set to fail the request over again. `measure`: the headers' delay counts as the upstream's latency."""
        tried = set() if tried is None else tried
        while True:
            upstream = self._pick(tried, stop)
            tried.add(id(upstream))
            url = upstream.spec.url.rstrip("/") + path
            content = request(upstream.spec)
            started = time.monotonic()
            timeout = urllib3.Timeout(connect=CONNECT_TIMEOUT, read=self.read_timeout)
            try:
                if multipart:
                    response = self.http.request(
                        "POST",
                        url,
                        fields=content,
                        headers=self.headers(upstream),
                        preload_content=False,
                        timeout=timeout,
                    )
                else:
                    response = self.http.request(
                        "POST",
                        url,
                        body=json.dumps(content).encode(),
                        headers=self.headers(upstream, {"Content-Type": "application/json"}),
                        preload_content=False,
                        timeout=timeout,
                    )
            except urllib3.exceptions.HTTPError as exc:
                self.release(upstream)
                self.fault(upstream, exc)
                continue
            if response.status >= 400:
                detail = _error_message(response)
                _shut(response)
                if response.status == 429:
                    self.release(upstream, failed=f"busy (429): {detail}")
                    continue
                self.release(upstream)
                if response.status >= 500 or response.status in (401, 403, 404):
                    with self._cond:
                        self._down(upstream, f"answered {response.status}: {detail}")
                    continue
                raise InvalidRequestError(f"the model's server refused the request: {detail}")
            with self._cond:
                if measure:
                    self._measured(upstream, started)
                if upstream.state != "healthy":
                    self._up(upstream)
            if stop is not None:
                REAPER.watch(stop, response)
            return Lease(self, upstream, response)

    def call(
        self,
        path: str,
        request: Callable[[UpstreamSpec], dict[str, Any]],
        *,
        stop: threading.Event | None = None,
        multipart: bool = False,
        raw: bool = False,
    ) -> Any:
        """A whole (unstreamed) reply: its JSON, or its bytes when `raw`. Nothing reaches the caller before the
        end, so a reply that breaks off fails over too."""
        tried: set[int] = set()
        while True:
            lease = self.open_for(path, request, multipart=multipart, stop=stop, tried=tried, measure=False)
            failed = ""
            try:
                if raw:
                    data = lease.response.read()
                    lease.finished = True
                    return data
                return lease.json()
            except Exception as exc:  # the connection failed, or was shut by a stop
                if stop is not None and stop.is_set():
                    failed = "stopped by the caller"
                    raise UpstreamError(failed) from None
                failed = self.fault(lease.upstream, exc)
            finally:
                lease.close(failed=failed)


def _reason(exc: Exception) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc)[:300]


def _error_message(response: urllib3.BaseHTTPResponse) -> str:
    try:
        raw = response.read(65536)
    except Exception:
        return f"HTTP {response.status}"
    try:
        body = json.loads(raw)
        error = body.get("error", body) if isinstance(body, dict) else body
        message = error.get("message", error) if isinstance(error, dict) else error
        return str(message)[:500]
    except ValueError:
        return raw.decode("utf-8", "replace")[:500] or f"HTTP {response.status}"


# --- counting ------------------------------------------------------------------------------------------------------


class Tokenizer:
    """The model's own vocabulary and chat template, from a GGUF file (vocabulary only): counts what an upstream
    does not report, and meters a context."""

    def __init__(self, path: Path) -> None:
        from inference.text import LlamaTextEngine

        self._engine = LlamaTextEngine(path=path, n_ctx=64, threads=1, vocab_only=True)

    def count(self, text: str) -> int:
        return self._engine.count_tokens(text)

    def count_chat(self, messages: Sequence[ChatMessage], tools: Sequence[Tool] = ()) -> int:
        if self._engine.has_chat_template:
            return self._engine.count_chat_tokens(messages, tools)
        return sum(self.count(m.content) for m in messages)


class Counter:
    """Token counts for a remote model: its tokenizer's when the catalog names one, else an estimate (marked)."""

    def __init__(self, tokenizer: Tokenizer | None) -> None:
        self.tokenizer = tokenizer

    @property
    def exact(self) -> bool:
        return self.tokenizer is not None

    def text(self, text: str) -> int:
        if self.tokenizer is not None:
            return self.tokenizer.count(text)
        return math.ceil(len(text) / CHARS_PER_TOKEN)

    def chat(self, messages: Sequence[ChatMessage], tools: Sequence[Tool] = ()) -> int:
        if self.tokenizer is not None:
            return self.tokenizer.count_chat(messages, tools)
        return sum(self.text(m.content) + 4 for m in messages)  # a few tokens of template per turn


# --- text ----------------------------------------------------------------------------------------------------------

_FINISH = {"stop": "stop", "length": "length", "eos_token": "stop", "stop_sequence": "stop", "content_filter": "stop"}


def openai_sampling(params: SamplingParams) -> dict[str, Any]:
    """The sampling values as OpenAI's fields, with vLLM's names for the extensions (top_k, min_p,
    repetition_penalty), which are sent only when they do something."""
    body: dict[str, Any] = {
        "temperature": params.temperature,
        "top_p": params.top_p,
        "presence_penalty": params.presence_penalty,
        "frequency_penalty": params.frequency_penalty,
    }
    if params.max_tokens is not None:
        body["max_tokens"] = params.max_tokens
    if params.seed is not None:
        body["seed"] = params.seed
    if params.stop:
        body["stop"] = list(params.stop)
    if params.top_k > 0:
        body["top_k"] = params.top_k
    if params.min_p > 0:
        body["min_p"] = params.min_p
    if params.repetition_penalty != 1.0:
        body["repetition_penalty"] = params.repetition_penalty
    return body


def tgi_parameters(params: SamplingParams) -> dict[str, Any]:
    """The sampling values as TGI's `parameters` (TGI refuses temperature 0 and top_p 1: greedy is do_sample
    false, and a top_p of 1 is left out)."""
    sample = params.temperature > 0
    parameters: dict[str, Any] = {"do_sample": sample, "details": True}
    if sample:
        parameters["temperature"] = params.temperature
        if params.top_p < 1:
            parameters["top_p"] = params.top_p
        if params.top_k > 0:
            parameters["top_k"] = params.top_k
    if params.max_tokens is not None:
        parameters["max_new_tokens"] = params.max_tokens
    if params.repetition_penalty != 1.0:
        parameters["repetition_penalty"] = params.repetition_penalty
    if params.seed is not None:
        parameters["seed"] = params.seed
    if params.stop:
        parameters["stop"] = list(params.stop)
    return parameters


def _check_supported(params: SamplingParams, tools: Sequence[Tool], continue_final: bool) -> None:
    if tools or params.grammar is not None:
        raise UnsupportedRequestError(
            "this model is served by another server: tools, response_format and grammars are not available for it",
            param="tools" if tools else "response_format",
        )
    if continue_final:
        raise UnsupportedRequestError("this model is served by another server and cannot continue a reply")


@dataclass
class _Reply:
    """What one streamed reply has given so far."""

    text: list[str] = field(default_factory=list)
    finish: str | None = None
    usage: dict[str, Any] | None = None
    pieces: int = 0
    started: bool = False  # something reached the caller: no failing over now


class RemoteTextEngine:
    """Chat and completion served by upstreams (TextEngine). Streams are asked for with usage
    (stream_options.include_usage); a reply whose upstream reports none is counted here (`Counter`)."""

    def __init__(self, router: Router, *, kind: Kind, n_ctx: int, chat: bool, counter: Counter) -> None:
        self.router = router
        self.kind = kind
        self.n_ctx = n_ctx
        self.has_chat_template = chat
        self.counter = counter

    def count_tokens(self, text: str) -> int:
        return self.counter.text(text)

    def count_chat_tokens(self, messages: Sequence[ChatMessage], tools: Sequence[Tool] = ()) -> int:
        return self.counter.chat(messages, tools)

    def chat(
        self,
        messages: Sequence[ChatMessage],
        params: SamplingParams,
        stop_event: threading.Event | None = None,
        tools: Sequence[Tool] = (),
        overflow: Overflow = "refuse",
        continue_final: bool = False,
    ) -> Iterator[TextChunk]:
        if not self.has_chat_template:
            raise InvalidRequestError("this model has no chat template; use plain completion instead")
        if not messages:
            raise InvalidRequestError("messages must not be empty")
        _check_supported(params, tools, continue_final)
        kept = messages  # "refuse": the upstream refuses what does not fit its context
        if overflow == "drop_oldest":
            _, kept = fit_messages(
                messages,
                lambda turns: [0] * self.counter.chat(turns),
                n_ctx=self.n_ctx or 2**31,
                max_tokens=params.max_tokens,
                overflow=overflow,
            )
        turns = [{"role": m.role, "content": m.content} for m in kept]  # tool turns arrive rendered as text
        body = {"messages": turns, **openai_sampling(params)}
        path = "/chat/completions" if self.kind == "openai" else "/v1/chat/completions"
        stream = self._openai_stream(path, body, stop_event, prompt=lambda: self.counter.chat(kept))
        return with_dropped(stream, len(messages) - len(kept))

    def complete(
        self, prompt: str, params: SamplingParams, stop_event: threading.Event | None = None
    ) -> Iterator[TextChunk]:
        if not prompt:
            raise InvalidRequestError("prompt must not be empty")
        _check_supported(params, (), False)
        if self.kind == "tgi":
            return self._tgi_stream(prompt, params, stop_event)
        body = {"prompt": prompt, **openai_sampling(params)}
        return self._openai_stream("/completions", body, stop_event, prompt=lambda: self.counter.text(prompt))

    def _openai_stream(
        self, path: str, body: dict[str, Any], stop: threading.Event | None, *, prompt: Callable[[], int]
    ) -> Iterator[TextChunk]:
        def read(lease: Lease, reply: _Reply) -> Iterator[str]:
            for event in lease.events():
                if not isinstance(event, dict):
                    continue
                if event.get("error"):
                    raise UpstreamError(f"{lease.upstream.spec.url} reported an error: {_error_text(event)}")
                if event.get("usage"):
                    reply.usage = event["usage"]
                for choice in event.get("choices") or ():
                    piece = (choice.get("delta") or {}).get("content") if "delta" in choice else choice.get("text")
                    if piece:
                        yield piece
                    if choice.get("finish_reason"):
                        reply.finish = choice["finish_reason"]

        def request(upstream: UpstreamSpec) -> dict[str, Any]:
            return {
                **body,
                "model": upstream.model,
                "stream": True,
                "stream_options": {"include_usage": True},
            }

        return self._stream(path, request, read, stop, prompt)

    def _tgi_stream(self, prompt: str, params: SamplingParams, stop: threading.Event | None) -> Iterator[TextChunk]:
        def read(lease: Lease, reply: _Reply) -> Iterator[str]:
            for event in lease.events():
                if not isinstance(event, dict):
                    continue
                if event.get("error"):
                    raise UpstreamError(f"{lease.upstream.spec.url} reported an error: {_error_text(event)}")
                token = event.get("token") or {}
                if token.get("text") and not token.get("special"):
                    yield token["text"]
                details = event.get("details")
                if details:
                    reply.finish = details.get("finish_reason")
                    if details.get("generated_tokens") is not None:
                        reply.usage = {"completion_tokens": details["generated_tokens"]}

        def request(upstream: UpstreamSpec) -> dict[str, Any]:
            return {"inputs": prompt, "parameters": tgi_parameters(params)}

        return self._stream("/generate_stream", request, read, stop, lambda: self.counter.text(prompt))

    def _stream(
        self,
        path: str,
        request: Callable[[UpstreamSpec], dict[str, Any]],
        read: Callable[[Lease, _Reply], Iterator[str]],
        stop: threading.Event | None,
        prompt: Callable[[], int],
    ) -> Iterator[TextChunk]:
        """Open the stream on an upstream and turn what it sends into TextChunks, the last with the finish reason
        and usage. Fails over while nothing has been yielded; later a break is UpstreamError."""
        tried: set[int] = set()
        reply = _Reply()
        while True:
            lease = self.router.open_for(path, request, stop=stop, tried=tried)
            failed = ""
            try:
                for piece in read(lease, reply):
                    reply.started = True
                    reply.text.append(piece)
                    reply.pieces += 1
                    yield TextChunk(piece)
                if stop is not None and stop.is_set():
                    failed = "stopped by the caller"
                    break
                if reply.finish is None:
                    raise UpstreamError(f"{lease.upstream.spec.url} ended the reply without a finish reason")
                break
            except Exception as exc:  # the connection failed (or was shut by a stop: http.client then fails oddly)
                if stop is not None and stop.is_set():
                    failed = "stopped by the caller"
                    break
                failed = self.router.fault(lease.upstream, exc)
                if not reply.started:  # nothing reached the caller: another upstream may take it (closed below)
                    continue
                logger.warning(
                    "model %s: upstream %s broke off: %s", self.router.model_id, lease.upstream.spec.url, failed
                )
                raise UpstreamError(f"the model's server broke off the reply: {failed}") from None
            finally:
                lease.close(failed=failed)
        yield TextChunk("", finish_reason=self._finish(reply, stop), usage=self._usage(reply, prompt))

    @staticmethod
    def _finish(reply: _Reply, stop: threading.Event | None) -> Any:
        if stop is not None and stop.is_set():
            return "cancelled"
        return _FINISH.get(reply.finish or "stop", "stop")

    def _usage(self, reply: _Reply, prompt: Callable[[], int]) -> Usage:
        """The upstream's usage where it sent it; what it left out counted here (estimated without a tokenizer)."""
        sent = reply.usage or {}
        estimated = False
        prompt_tokens = sent.get("prompt_tokens")
        if prompt_tokens is None:
            prompt_tokens, estimated = prompt(), not self.counter.exact
        completion = sent.get("completion_tokens")
        if completion is None:
            if self.counter.exact:
                completion = self.counter.text("".join(reply.text))
            else:  # the pieces streamed: one token each from the servers we know
                completion, estimated = reply.pieces, True
        return Usage(prompt_tokens=int(prompt_tokens), completion_tokens=int(completion), estimated=estimated)


def _error_text(event: dict[str, Any]) -> str:
    error = event.get("error")
    return str(error.get("message", error) if isinstance(error, dict) else error)[:300]


# --- embeddings, speech ----------------------------------------------------------------------------------------------


class RemoteEmbeddingEngine:
    def __init__(self, router: Router, *, n_ctx: int, dimensions: int, counter: Counter) -> None:
        self.router = router
        self.n_ctx = n_ctx
        self._dimensions = dimensions
        self.counter = counter

    @property
    def dimensions(self) -> int:
        if not self._dimensions:  # not in the catalog: ask once
            self._dimensions = len(self.embed(["dimensions"]).vectors[0])
        return self._dimensions

    def count_tokens(self, text: str) -> int:
        return self.counter.text(text)

    def embed(self, texts: Sequence[str], stop_event: threading.Event | None = None) -> EmbeddingResult:
        def request(upstream: UpstreamSpec) -> dict[str, Any]:
            return {"model": upstream.model, "input": list(texts), "encoding_format": "float"}

        body = self.router.call("/embeddings", request, stop=stop_event)
        try:
            rows = sorted(body["data"], key=lambda row: row.get("index", 0))
            vectors = [_normalised([float(x) for x in row["embedding"]]) for row in rows]
        except (KeyError, TypeError, ValueError) as exc:
            raise UpstreamError(f"the model's server sent embeddings this server cannot read ({exc!r})") from None
        if len(vectors) != len(texts):
            raise UpstreamError(f"the model's server sent {len(vectors)} vectors for {len(texts)} inputs")
        sent = (body.get("usage") or {}).get("prompt_tokens")
        usage = (
            Usage(prompt_tokens=int(sent))
            if sent is not None
            else Usage(prompt_tokens=sum(self.counter.text(t) for t in texts), estimated=not self.counter.exact)
        )
        return EmbeddingResult(vectors=vectors, usage=usage)


def _normalised(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


def _audio_bytes(audio: bytes | str | Path | Any) -> bytes:
    if isinstance(audio, bytes):
        return audio
    if isinstance(audio, str | Path):
        return Path(audio).read_bytes()
    return bytes(audio.read())


def _extension(data: bytes) -> str:
    """The file extension its first bytes say (servers that go by the name need one)."""
    for magic, ext in (
        (b"RIFF", ".wav"),
        (b"fLaC", ".flac"),
        (b"OggS", ".ogg"),
        (b"\x1aE\xdf\xa3", ".webm"),
        (b"ID3", ".mp3"),
    ):
        if data.startswith(magic):
            return ext
    if data[4:8] == b"ftyp":
        return ".m4a"
    return ".mp3" if data[:1] == b"\xff" else ""


class RemoteSpeechToTextEngine:
    def __init__(self, router: Router, *, multilingual: bool) -> None:
        self.router = router
        self.multilingual = multilingual

    def transcribe(
        self,
        audio: Any,
        *,
        language: str | None = None,
        task: str = "transcribe",
        stop_event: threading.Event | None = None,
        max_seconds: float | None = None,
    ) -> tuple[TranscriptionInfo, Iterator[Segment]]:
        if task not in ("transcribe", "translate"):
            raise InvalidRequestError("task must be 'transcribe' or 'translate'")
        if not self.multilingual:
            if task == "translate":
                raise InvalidRequestError("this model is English-only and cannot translate")
            if language not in (None, "en"):
                raise InvalidRequestError("this model is English-only; language must be 'en' or omitted")
        data = _audio_bytes(audio)
        from inference.speech import check_audio

        check_audio(data, max_seconds=max_seconds)  # undecodable or too long: refused here, not by the upstream
        name = "audio" + _extension(data)

        def request(upstream: UpstreamSpec) -> dict[str, Any]:
            fields: dict[str, Any] = {
                "file": (name, data, mimetypes.guess_type(name)[0] or "application/octet-stream"),
                "model": upstream.model,
                "response_format": "verbose_json",
            }
            if language:
                fields["language"] = language
            return fields

        path = "/audio/translations" if task == "translate" else "/audio/transcriptions"
        body = self.router.call(path, request, stop=stop_event, multipart=True)
        try:
            segments = [
                Segment(id=n, start=float(s["start"]), end=float(s["end"]), text=str(s["text"]).strip())
                for n, s in enumerate(body.get("segments") or ())
            ]
            if not segments and body.get("text"):
                segments = [Segment(id=0, start=0.0, end=float(body.get("duration") or 0), text=body["text"].strip())]
            info = TranscriptionInfo(
                language=str(body.get("language") or language or "en"),
                language_probability=1.0,
                duration=float(body.get("duration") or (segments[-1].end if segments else 0.0)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UpstreamError(f"the model's server sent a transcription this server cannot read ({exc!r})") from None
        return info, iter(segments)

    def transcribe_all(
        self, audio: Any, *, language: str | None = None, task: str = "transcribe"
    ) -> TranscriptionResult:
        return TranscriptionResult.collect(*self.transcribe(audio, language=language, task=task))


class RemoteTextToSpeechEngine:
    def __init__(self, router: Router, *, voice: str, max_characters: int, sample_rate: int) -> None:
        self.router = router
        self.voice = voice
        self.max_characters = max_characters
        self.sample_rate = sample_rate

    def synthesize(self, text: str, *, speed: float = 1.0, stop_event: threading.Event | None = None) -> SpeechResult:
        if not text.strip():
            raise InvalidRequestError("input must not be empty", param="input")
        if len(text) > self.max_characters:
            raise InvalidRequestError(f"input is longer than {self.max_characters} characters", param="input")

        def request(upstream: UpstreamSpec) -> dict[str, Any]:
            return {
                "model": upstream.model,
                "input": text,
                "voice": self.voice,
                "speed": speed,
                "response_format": "wav",
            }

        wav = self.router.call("/audio/speech", request, stop=stop_event, raw=True)
        try:
            with wave.open(io.BytesIO(wav)) as reader:
                rate, frames = reader.getframerate(), reader.getnframes()
        except (wave.Error, EOFError) as exc:
            raise UpstreamError(f"the model's server sent audio this server cannot read ({exc})") from None
        self.sample_rate = rate
        return SpeechResult(wav=wav, sample_rate=rate, duration=frames / rate, usage=Usage(characters=len(text)))
