"""llama.cpp engines: chat, plain completion and embeddings.

Our own loop over ``Llama.generate`` (rather than ``create_completion``) so we
control exactly what reaches the sampler, count tokens with the model's own
tokenizer, stop inside the loop when a stop flag is set, and do the per-token
work once (incremental UTF-8 decoding, stop-sequence scanning of a short tail).
"""

from __future__ import annotations

import codecs
import random
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from inference.types import (
    ChatMessage,
    ContextOverflowError,
    EmbeddingResult,
    FinishReason,
    InvalidRequestError,
    ModelLoadError,
    SamplingParams,
    TextChunk,
    Usage,
)

_silenced = False


def _silence_llama_logs() -> None:
    """llama.cpp logs to stderr even with verbose=False; keep the terminal for our logs."""
    global _silenced
    if _silenced:
        return
    import ctypes

    import llama_cpp

    @llama_cpp.llama_log_callback
    def _quiet(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        return None

    llama_cpp.llama_log_set(_quiet, ctypes.c_void_p(0))
    _silence_llama_logs.callback = _quiet  # type: ignore[attr-defined]  # keep a reference alive
    _silenced = True


def _load_llama(path: Path, *, n_ctx: int, threads: int, gpu: bool, **kwargs: Any) -> Any:
    if not path.is_file():
        raise ModelLoadError(f"weights not found: {path}")
    import llama_cpp

    _silence_llama_logs()
    return llama_cpp.Llama(
        model_path=str(path),
        n_ctx=n_ctx,
        n_threads=threads,
        n_threads_batch=threads,
        n_gpu_layers=-1 if gpu else 0,
        verbose=False,
        **kwargs,
    )


class StopScanner:
    """Finds stop sequences across streamed pieces; holds back text that may be the start of one.

    The text ends before the stop sequence; the engine reports which one it was (TGI adds it back).
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.keep = max((len(s) for s in self.stops), default=1) - 1
        self.pending = ""

    def feed(self, text: str) -> tuple[str, str | None]:
        """Returns (text safe to emit, the stop sequence that was hit or None).

        Of several stop sequences in the text, the one that starts first wins (the shorter on a tie).
        """
        if not self.stops:
            return text, None
        self.pending += text
        hits = [(found, len(stop), stop) for stop in self.stops if (found := self.pending.find(stop)) >= 0]
        if hits:
            start, _length, stop = min(hits)
            out, self.pending = self.pending[:start], ""
            return out, stop
        # Emit all but the longest suffix that is a prefix of some stop sequence.
        hold = 0
        for n in range(min(self.keep, len(self.pending)), 0, -1):
            tail = self.pending[-n:]
            if any(s.startswith(tail) for s in self.stops):
                hold = n
                break
        out = self.pending[: len(self.pending) - hold]
        self.pending = self.pending[len(out) :]
        return out, None

    def flush(self) -> str:
        out, self.pending = self.pending, ""
        return out


class LlamaTextEngine:
    """Chat (with the model's own template) and plain completion over one llama.cpp context."""

    def __init__(self, *, path: Path, n_ctx: int, threads: int, gpu: bool = False, flash_attn: bool = True) -> None:
        self.llm = _load_llama(path, n_ctx=n_ctx, threads=threads, gpu=gpu, flash_attn=flash_attn)
        self.n_ctx = self.llm.n_ctx()
        import llama_cpp

        self._vocab = self.llm._model.vocab
        self._is_eog = llama_cpp.llama_vocab_is_eog
        self._formatter = None
        template = self.llm.metadata.get("tokenizer.chat_template")
        if template:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            def token_text(token_id: int) -> str:
                return self.llm._model.token_get_text(token_id) if token_id != -1 else ""

            self._formatter = Jinja2ChatFormatter(
                template=template,
                eos_token=token_text(self.llm.token_eos()),
                bos_token=token_text(self.llm.token_bos()),
            )

    @property
    def has_chat_template(self) -> bool:
        return self._formatter is not None

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode(), add_bos=False, special=False))

    def chat_prompt_tokens(self, messages: Sequence[ChatMessage]) -> list[int]:
        if self._formatter is None:
            raise InvalidRequestError("this model has no chat template; use plain completion instead")
        if not messages:
            raise InvalidRequestError("messages must not be empty")
        chat: list[Any] = [{"role": m.role, "content": m.content} for m in messages]  # llama_cpp's TypedDicts
        rendered = self._formatter(messages=chat)
        return self.llm.tokenize(rendered.prompt.encode(), add_bos=not rendered.added_special, special=True)

    def completion_prompt_tokens(self, prompt: str) -> list[int]:
        if not prompt:
            raise InvalidRequestError("prompt must not be empty")
        return self.llm.tokenize(prompt.encode(), add_bos=True, special=False)

    def chat(
        self, messages: Sequence[ChatMessage], params: SamplingParams, stop_event: threading.Event | None = None
    ) -> Iterator[TextChunk]:
        return self.generate(self.chat_prompt_tokens(messages), params, stop_event)

    def complete(
        self, prompt: str, params: SamplingParams, stop_event: threading.Event | None = None
    ) -> Iterator[TextChunk]:
        return self.generate(self.completion_prompt_tokens(prompt), params, stop_event)

    def check_fits(self, n_prompt: int, max_tokens: int | None) -> int:
        """Return the effective max_tokens, or refuse before any work is done."""
        room = self.n_ctx - n_prompt
        if max_tokens is None:
            if room < 1:
                raise ContextOverflowError(
                    f"the prompt is {n_prompt} tokens; this model's context is {self.n_ctx} tokens"
                )
            return room
        if n_prompt + max_tokens > self.n_ctx:
            raise ContextOverflowError(
                f"the prompt is {n_prompt} tokens and max_tokens is {max_tokens}: together "
                f"{n_prompt + max_tokens} tokens, more than this model's context of {self.n_ctx}"
            )
        return max_tokens

    def generate(
        self, prompt_tokens: list[int], params: SamplingParams, stop_event: threading.Event | None = None
    ) -> Iterator[TextChunk]:
        """Check the request, then return the stream (so a refusal happens at call time)."""
        max_tokens = self.check_fits(len(prompt_tokens), params.max_tokens)
        return self._stream(prompt_tokens, params, max_tokens, stop_event or threading.Event())

    def _stream(
        self, prompt_tokens: list[int], params: SamplingParams, max_tokens: int, stop_event: threading.Event
    ) -> Iterator[TextChunk]:
        llm = self.llm
        # A fresh context per request: reusing a cached prefix can change a
        # temperature-0 answer, and reproducibility for a given seed matters more.
        llm.reset()
        llm.set_seed(params.seed if params.seed is not None else random.randrange(2**32))
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        scanner = StopScanner(params.stop)
        completion = 0
        finish: FinishReason = "length"
        stop_sequence: str | None = None

        def stop_requested(_ids: Any, _logits: Any) -> bool:
            return stop_event.is_set()

        tokens = llm.generate(
            prompt_tokens,
            top_k=params.top_k,
            top_p=params.top_p,
            min_p=params.min_p,
            typical_p=1.0,
            temp=params.temperature,
            repeat_penalty=params.repetition_penalty,
            frequency_penalty=params.frequency_penalty,
            presence_penalty=params.presence_penalty,
            stopping_criteria=stop_requested,
        )
        previous: list[int] = []
        for token in tokens:
            if self._is_eog(self._vocab, token):
                finish = "stop"
                break
            completion += 1
            piece = llm.detokenize([token], prev_tokens=previous or None)
            previous = [token]
            text, stop_sequence = scanner.feed(decoder.decode(piece))
            if text:
                yield TextChunk(text)
            if stop_sequence is not None:
                finish = "stop"
                break
            if stop_event.is_set():
                break
            if completion >= max_tokens:
                break
        tokens.close()
        if stop_event.is_set() and finish != "stop":
            finish = "cancelled"
        # Text held back as a possible start of a stop sequence is the reply's own unless one matched.
        tail = scanner.flush() + decoder.decode(b"", final=True) if stop_sequence is None else ""
        usage = Usage(prompt_tokens=len(prompt_tokens), completion_tokens=completion)
        yield TextChunk(tail, finish_reason=finish, usage=usage, stop_sequence=stop_sequence)


class LlamaEmbeddingEngine:
    """Sentence embeddings through llama.cpp (so a GPU build accelerates them too)."""

    def __init__(self, *, path: Path, n_ctx: int, threads: int, gpu: bool = False) -> None:
        self.llm = _load_llama(path, n_ctx=n_ctx, threads=threads, gpu=gpu, embedding=True)
        self.n_ctx = self.llm.n_ctx()
        self.dimensions = self.llm.n_embd()

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode(), add_bos=True, special=False))

    def embed(self, texts: Sequence[str], stop_event: threading.Event | None = None) -> EmbeddingResult:
        """One L2-normalised vector per text; a set `stop_event` stops between texts (InvalidRequestError:
        the caller has gone or run out of time)."""
        import numpy as np

        if not texts:
            raise InvalidRequestError("input must contain at least one text")
        counts = []
        for index, text in enumerate(texts):
            if not isinstance(text, str) or not text:
                raise InvalidRequestError(f"input[{index}] must be a non-empty string")
            n = self.count_tokens(text)
            if n > self.n_ctx:
                raise ContextOverflowError(f"input[{index}] is {n} tokens; this model accepts at most {self.n_ctx}")
            counts.append(n)
        vectors = []
        for text in texts:  # one sequence per call: llama.cpp's batch packs by n_ctx
            if stop_event is not None and stop_event.is_set():
                raise InvalidRequestError("the embedding was stopped before it finished")
            raw = np.asarray(self.llm.embed(text, truncate=False), dtype=np.float64)
            if raw.ndim > 1:
                raw = raw[0]
            vectors.append((raw / (np.linalg.norm(raw) or 1.0)).tolist())
        return EmbeddingResult(vectors=vectors, usage=Usage(prompt_tokens=sum(counts)))
