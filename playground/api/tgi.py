"""Hugging Face Text Generation Inference (TGI) dialect: a body parsed by its contract (playground/contract/tgi.py),
generated through playground/serving.py like every other surface, rendered in TGI's shapes.

The engine says why it stopped (end of text, which stop sequence, length, cancelled), which is all TGI's
finish reasons need; like TGI, generated_text keeps the stop sequence it ended on.
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from inference import ChatMessage, Job, ModelSpec, SamplingParams, TextChunk
from inference.types import MAX_STOP_SEQUENCES
from playground import engines, serving
from playground.api.http import sse
from playground.contract import tgi as contract
from playground.contract.errors import Problem
from playground.contract.fields import json_parse, parse

SEED_LIMIT = 2**32
# Markdown images, ![alt](url), found in one pass (no regex that can backtrack): where an alt text meets its url,
# and the characters that end the url.
LINK_OPEN = re.compile(r"\]\(")
URL_END = re.compile(r"[)\s]")
MAX_ALT = 500
PARAMETER_NAMES = {"max_tokens": "parameters.max_new_tokens"}  # SamplingParams' names as TGI's fields


@dataclass(frozen=True)
class TgiRequest:
    model_id: str
    inputs: str
    params: SamplingParams
    details: bool
    stream: bool | None  # None: the route decides
    sampling: bool  # False: greedy (temperature 0); details.seed is then null, as in TGI


def text_model(*, model_id: str) -> str:
    return serving.model_for(model_id=model_id, tasks=serving.TEXT_TASKS, where="the TGI routes (text models)").id


def _markdown_image(text: str) -> str | None:
    """The first ![alt](url) in `text`, in time linear in its length whatever it holds.

    Only each "](" is visited (in C, its opener is the last "![" at most MAX_ALT characters before it): a megabyte
    of "![" costs no Python loop, which would hold the GIL, and with it the event loop, for a quarter of a second."""
    url_end = -1  # the first ")" or space at or after the last url start searched (starts only grow)
    for link in LINK_OPEN.finditer(text):
        at = link.start()
        opened = text.rfind("![", max(0, at - MAX_ALT - 2), at)
        if opened < 0:
            continue
        alt = text[opened + 2 : at]
        if "]" in alt or "\n" in alt:
            continue  # a "]" or a new line ends the alt text first
        start = link.end()
        if url_end < start:
            found = URL_END.search(text, start)
            url_end = found.start() if found else len(text)
        if url_end < len(text) and text[url_end] == ")":
            return text[opened : url_end + 1]
    return None


def _image(inputs: str) -> str | None:
    """The first image written the way TGI's vision models take them (<image>...</image>) or as Markdown."""
    lowered = inputs.lower()
    start = lowered.find("<image>")
    if start >= 0:
        end = lowered.find("</image>", start)
        if end >= 0:
            return inputs[start : end + len("</image>")]
    return _markdown_image(inputs) if "![" in inputs else None


def _check_no_images(spec: ModelSpec, inputs: str) -> None:
    if "vision" in spec.capabilities:
        return
    image = _image(inputs)
    if image is not None:
        shown = image if len(image) <= 60 else image[:57] + "..."
        raise Problem(
            "image_input_not_supported",
            f"the model {spec.id!r} cannot read images (it has no vision capability), but inputs contain an image: "
            f"{shown!r}. Send text only.",
            param="inputs",
        )


def _grammar(grammar: contract.Grammar | None) -> str | None:
    """TGI's grammar as GBNF: a JSON Schema (an object or its JSON text) or a regular expression."""
    if grammar is None:
        return None
    param = "parameters.grammar.value"
    if grammar.type == "regex":
        return serving.grammar_for_regex(grammar.value, param=param)
    schema = json_parse(grammar.value) if isinstance(grammar.value, str) else grammar.value
    return serving.grammar_for_schema(schema, param=param)


def needs_thread(body: dict[str, Any]) -> bool:
    """Whether parsing this body builds a grammar (slow for a big schema or pattern)."""
    parameters = body.get("parameters")
    return isinstance(parameters, dict) and parameters.get("grammar") is not None


def request_parse(*, body: dict[str, Any], model_id: str) -> TgiRequest:
    """Check a TGI request body for a model and map it onto SamplingParams; every refusal names its field."""
    model_id = text_model(model_id=model_id)
    parsed = parse(contract.GenerateRequest, body, where="a TGI request")
    _check_no_images(engines.get_pool().spec(model_id), parsed.inputs)
    parameters = parsed.params
    names = {**PARAMETER_NAMES, **{n: f"parameters.{n}" for n in ("temperature", "top_p", "top_k", "seed", "stop")}}
    overrides = {**parameters.sampling_overrides(), "grammar": _grammar(parameters.grammar)}
    params = serving.sampling_params(model_id=model_id, overrides=overrides, names=names)
    sampling = params.temperature > 0
    if sampling and params.seed is None:
        # Choose the seed here so details can report it, as TGI does.
        params = dataclasses.replace(params, seed=random.randrange(SEED_LIMIT))
    return TgiRequest(
        model_id=model_id,
        inputs=parsed.inputs,
        params=params,
        details=bool(parameters.details),
        stream=parsed.stream,
        sampling=sampling,
    )


def generation(*, request: TgiRequest) -> serving.Run[TextChunk]:
    """The generation, through the one path: a chat model gets inputs as one user message through its template,
    a completion model gets inputs as the plain prompt."""
    job: Job[TextChunk] = serving.text_stream(
        model_id=request.model_id,
        params=request.params,
        messages=[ChatMessage("user", request.inputs)],
        prompt=request.inputs,
    )
    return serving.Run(job, param="inputs")


def _finish(chunk: TextChunk) -> contract.FinishReason:
    if chunk.stop_sequence is not None:
        return "stop_sequence"
    return "eos_token" if chunk.finish_reason == "stop" else "length"


def _text(chunk: TextChunk) -> str:
    """The chunk's text as TGI shows it: with the stop sequence it ended on."""
    return chunk.text + (chunk.stop_sequence or "")


def _token(index: int, chunk: TextChunk) -> contract.Token:
    # The engine yields text, not vocabulary ids: id is the piece's position in the reply. No logprobs either.
    text = _text(chunk)
    return contract.Token(id=index, text=text, special=_finish(chunk) == "eos_token" and not text)


def _details(request: TgiRequest, last: TextChunk) -> dict[str, Any]:
    return {
        "finish_reason": _finish(last),
        "generated_tokens": last.usage.completion_tokens if last.usage else 0,
        "seed": request.params.seed if request.sampling else None,
    }


async def generate(*, request: TgiRequest) -> dict[str, Any]:
    """POST /generate's answer: generated_text and details (finish_reason, generated_tokens, seed) always; the
    tokens too when asked for (`details: true`). TGI clients ignore what they did not ask for."""
    run = generation(request=request)
    chunks: list[TextChunk] = []
    try:
        async for chunk in run:
            chunks.append(chunk)
    finally:
        await run.close()
    if not chunks or chunks[-1].finish_reason is None:
        raise Problem("engine_error", "the model stopped without finishing")
    details = contract.Details(**_details(request, chunks[-1]))
    if request.details:
        # The last chunk only says why the engine stopped; with no text of its own it is no token.
        pieces = chunks[:-1] if len(chunks) > 1 and not _text(chunks[-1]) else chunks
        details.prefill, details.tokens = [], [_token(n, c) for n, c in enumerate(pieces)]
    body = contract.GenerateResponse(generated_text="".join(_text(c) for c in chunks), details=details)
    return body.model_dump(mode="json", exclude=None if request.details else {"details": {"prefill", "tokens"}})


class EventStream:
    """POST /generate_stream's body: one server-sent event per piece, the last with generated_text and details.

    An async iterable with close(): Django cancels the iteration when the client disconnects and calls close()
    when the response ends either way; both stop the engine.
    """

    def __init__(self, *, request: TgiRequest) -> None:
        self.request = request
        self.run = generation(request=request)
        self._first: TextChunk | None = None

    async def _next(self) -> TextChunk | None:
        try:
            return await self.run.next()
        except StopAsyncIteration:
            return None

    async def start(self) -> None:
        """Wait for the first piece, so a refusal (queue full, context overflow, timeout) is still an HTTP error."""
        try:
            self._first = await self._next()
        except BaseException:
            await self.run.close()
            raise

    async def __aiter__(self) -> AsyncIterator[bytes]:
        texts: list[str] = []
        index = 0
        chunk = self._first
        try:
            while chunk is not None:
                texts.append(_text(chunk))
                event = contract.StreamResponse(token=_token(index, chunk), generated_text=None, details=None)
                if chunk.finish_reason is not None:
                    event.generated_text = "".join(texts)
                    event.details = contract.StreamDetails(
                        **_details(self.request, chunk), input_length=chunk.usage.prompt_tokens if chunk.usage else 0
                    )
                yield sse(event.model_dump(mode="json"))
                index += 1
                try:
                    chunk = await self._next()
                except Problem as exc:
                    # Headers are gone: report the error the way TGI does inside a stream.
                    yield sse(contract.StreamError(error=exc.message, error_type=exc.code).model_dump(mode="json"))
                    return
        finally:
            await self.run.close()

    def close(self) -> None:
        """Called by Django when the response ends (sync): stop the engine."""
        self.run.job.cancel()


def info(*, model_id: str) -> dict[str, Any]:
    """TGI's /info for a text model, from its catalog entry and the pool."""
    spec = engines.get_pool().spec(text_model(model_id=model_id))
    pool = engines.get_pool()
    worker = pool.workers[spec.id]
    n_ctx = spec.n_ctx or 4096
    return contract.Info(
        model_id=spec.id,
        model_sha=None,
        model_dtype=spec.quantization or None,
        model_device_type=worker.device or pool.device.device,
        model_pipeline_tag="text-generation",
        quantization=spec.quantization or None,
        task=spec.task,
        chat_template=spec.task == "text-to-text",
        state=worker.state,
        max_concurrent_requests=1 + worker.max_queue,  # one running plus the waiting line
        max_queue=worker.max_queue,
        max_best_of=1,
        max_stop_sequences=MAX_STOP_SEQUENCES,
        max_input_tokens=n_ctx - 1,
        max_input_length=n_ctx - 1,
        max_total_tokens=n_ctx,
        max_batch_size=1,
        max_client_batch_size=1,
        waiting_served_ratio=None,
        max_batch_total_tokens=n_ctx,
        max_waiting_tokens=None,
        validation_workers=None,
        router="genai-playground",
        version=contract.VERSION,
        sha=None,
        docker_label=None,
    ).model_dump(mode="json")
