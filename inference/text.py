"""llama.cpp engines: chat, plain completion and embeddings.

Our own loop over ``Llama.generate`` (rather than ``create_completion``) so we
control exactly what reaches the sampler, count tokens with the model's own
tokenizer, stop inside the loop when a stop flag is set, and do the per-token
work once (incremental UTF-8 decoding, stop-sequence scanning of a short tail). A request with a grammar
(`SamplingParams.grammar`, GBNF from inference/grammar.py) is decoded by our own loop with a ConstrainedSampler.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import dataclasses
import math
import random
import threading
from collections import Counter
from collections.abc import Callable, Generator, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from inference.lanes import LANES
from inference.tools import template_messages, template_tools
from inference.types import (
    ChatMessage,
    ContextOverflowError,
    EmbeddingResult,
    EngineError,
    FinishReason,
    InvalidRequestError,
    ModelLoadError,
    Overflow,
    SamplingParams,
    TextChunk,
    Tool,
    Usage,
)

PENALTY_LAST_N = 64  # as llama-cpp-python's own sampler
WINDOW = 4096  # a pick the grammar refused is made again among this many most likely tokens first...
WINDOW_TAIL = 0.01  # ...when the tokens outside it hold at most this share of the mass the grammar allows in it

_silenced = False
_silencing = threading.Lock()
_log_capture = threading.local()  # .lines: a list while captured_llama_log() is active on this thread


def _silence_llama_logs() -> None:
    """llama.cpp logs to stderr even with verbose=False; keep the terminal for our logs. Once, under a lock: two
    threads' callbacks would free the one llama.cpp was given."""
    global _silenced
    with _silencing:
        if _silenced:
            return
        import ctypes

        import llama_cpp

        @llama_cpp.llama_log_callback
        def _quiet(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
            lines = getattr(_log_capture, "lines", None)
            if lines is not None and len(lines) < 100:
                lines.append(text.decode(errors="replace"))

        llama_cpp.llama_log_set(_quiet, ctypes.c_void_p(0))
        _silence_llama_logs.callback = _quiet  # type: ignore[attr-defined]  # keep a reference alive
        _silenced = True


@contextlib.contextmanager
def captured_llama_log() -> Iterator[list[str]]:
    """What llama.cpp logs on this thread meanwhile (e.g. why it refused a grammar), otherwise silenced."""
    _silence_llama_logs()
    lines: list[str] = []
    _log_capture.lines = lines
    try:
        yield lines
    finally:
        _log_capture.lines = None


class Sampler:
    """A llama.cpp sampler chain with one request's parameters, in llama-cpp-python's order: penalties (over the
    reply's tokens, accepted as they are picked), then greedy, or top-k, top-p, min-p, temperature and a seeded
    draw. The serialized engine's constrained requests and every request of the batching engine use it."""

    def __init__(self, lib: Any, n_vocab: int, params: SamplingParams, seed: int) -> None:
        self._lib = lib
        chain = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
        p = params
        lib.llama_sampler_chain_add(
            chain,
            lib.llama_sampler_init_penalties(
                n_vocab, PENALTY_LAST_N, p.repetition_penalty, p.frequency_penalty, p.presence_penalty
            ),
        )
        if p.temperature <= 0:
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_greedy())
        else:
            if p.top_k > 0:
                lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_top_k(p.top_k))
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_top_p(p.top_p, 1))
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_min_p(p.min_p, 1))
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_temp(p.temperature))
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_dist(seed))
        self.chain = chain
        # Greedy, the chain takes the highest logit (the first of equals, as numpy's argmax) after its penalties: the
        # batching engine picks such requests' tokens itself from its rows of logits (`greedy`), without the chain's
        # copy of the whole vocabulary. Not with both a frequency and a presence penalty: their sum could round
        # differently in C (a fused multiply-add), and the pick must be the chain's.
        neutral = p.repetition_penalty == 1 and not p.frequency_penalty and not p.presence_penalty
        self.argmax = p.temperature <= 0 and not (p.frequency_penalty and p.presence_penalty)
        self._penalties = None if neutral else (p.repetition_penalty, p.frequency_penalty, p.presence_penalty)

    def greedy(self, row: Any, reply: Sequence[int]) -> int:
        """The token the chain would pick (`argmax` samplers) from this row of logits (a float32 numpy array, changed
        in place) after the reply so far: llama.cpp's penalties over the reply's last PENALTY_LAST_N tokens, in float32
        as llama.cpp computes them, then the highest logit (the first of equals)."""
        best = int(row.argmax())
        if self._penalties is None or not reply:
            return best
        window = reply[-PENALTY_LAST_N:]
        repeat, frequency, presence = self._penalties
        if best not in window and repeat >= 1 and frequency >= 0 and presence >= 0:
            return best  # penalties that only lower logits leave the highest unpenalized one first
        import numpy as np

        counted = Counter(window)
        ids = np.fromiter(counted.keys(), np.int64, len(counted))
        counts = np.fromiter(counted.values(), np.float32, len(counted))
        logits = row[ids]
        logits = np.where(logits <= 0, logits * np.float32(repeat), logits / np.float32(repeat))
        row[ids] = logits - (counts * np.float32(frequency) + np.float32(presence))
        return int(row.argmax())

    def sample(self, ctx: Any, index: int) -> int:
        """Pick the token for the logits at `index` of the last decode, and accept it into the chain."""
        return int(self._lib.llama_sampler_sample(self.chain, ctx, index))

    def close(self) -> None:
        if self.chain is not None:
            self._lib.llama_sampler_free(self.chain)
            self.chain = None


class ConstrainedSampler(Sampler):
    """A Sampler that keeps to a GBNF grammar, with the grammar's own state (one per request).

    Lazy, as llama.cpp's common sampler (and its server): the chain picks a token from the whole vocabulary, the
    grammar checks that one token, and only when it refuses it are the logits masked by the grammar and the pick
    made again. Masking checks every token of the vocabulary (3 ms for SmolLM2's 49k, 21 ms for Gemma's 262k on
    2 cores), so the second pick first masks only the WINDOW most likely tokens, and is made among those the
    grammar allows when there is one and, when sampling, all the tokens outside the window hold under WINDOW_TAIL
    of the allowed mass inside it (the draw is then within that of the fully masked one; greedy, it is exact).
    Otherwise the whole vocabulary is masked. Grammar first (`lazy=False`, llama-cpp-python's order) masks the
    whole vocabulary before every pick: about half the speed of unconstrained decoding on SmolLM2, a third on
    Gemma (docs/benchmarks.md). Every mode keeps every reply inside the grammar; their draws differ.
    """

    def __init__(
        self, lib: Any, vocab: Any, n_vocab: int, params: SamplingParams, seed: int, *, lazy: bool = True
    ) -> None:
        import numpy as np

        assert params.grammar is not None
        if params.grammar_trigger:  # free text until the trigger; the grammar holds from it on
            patterns = (ctypes.c_char_p * 1)(_ecmascript_literal(params.grammar_trigger).encode())
            self.grammar = lib.llama_sampler_init_grammar_lazy_patterns(
                vocab, params.grammar.encode(), b"root", patterns, 1, None, 0
            )
        else:
            self.grammar = lib.llama_sampler_init_grammar(vocab, params.grammar.encode(), b"root")
        if not self.grammar:
            raise InvalidRequestError("the grammar could not be loaded", param="grammar")
        super().__init__(lib, n_vocab, params, seed)
        self.argmax = False  # the grammar decides
        self.lazy = lazy
        self._vocab = vocab
        self._n_vocab = n_vocab
        self._ids = np.arange(n_vocab, dtype=np.int32)
        # llama_token_data {int32 id; float logit; float p}, packed: filled from the logits before each pick.
        self._data = np.zeros(n_vocab, dtype=np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)]))
        self._pointer = self._data.ctypes.data_as(ctypes.POINTER(lib.llama_token_data))
        self._array = lib.llama_token_data_array(self._pointer, n_vocab, -1, False)
        self._one = (lib.llama_token_data * 1)()
        self._one_pointer = ctypes.cast(self._one, ctypes.POINTER(lib.llama_token_data))
        self._one_array = lib.llama_token_data_array(self._one_pointer, 1, -1, False)
        self._temperature = params.temperature
        # The window's bound assumes no token outside it gains on those inside: no penalty that raises logits.
        self._windowed = n_vocab >= 4 * WINDOW and (
            params.repetition_penalty >= 1 and params.presence_penalty >= 0 and params.frequency_penalty >= 0
        )
        self.steps = 0
        self.resampled = 0  # picks the grammar refused, made again
        self.masked = 0  # ...of which over the whole vocabulary

    def sample(self, ctx: Any, index: int) -> int:
        import numpy as np

        lib = self._lib
        logits = np.ctypeslib.as_array(lib.llama_get_logits_ith(ctx, index), shape=(self._n_vocab,))
        self.steps += 1
        token = self._pick(logits, masked=not self.lazy)
        if self.lazy and not self._allowed(token):
            self.resampled += 1
            window = self._window_pick(logits) if self._windowed else None
            if window is None:
                self.masked += 1
                token = self._pick(logits, masked=True)
            else:
                token = window
        if not lib.llama_vocab_is_eog(self._vocab, token):  # the reply ends there; the grammar need not see it
            lib.llama_sampler_accept(self.grammar, token)
        lib.llama_sampler_accept(self.chain, token)
        return token

    def _pick(self, logits: Any, *, masked: bool) -> int:
        lib, array = self._lib, self._array
        self._data["id"] = self._ids
        self._data["logit"] = logits
        self._data["p"] = 0
        array.data, array.size, array.selected, array.sorted = self._pointer, self._n_vocab, -1, False
        if masked:
            lib.llama_sampler_apply(self.grammar, ctypes.byref(array))
        lib.llama_sampler_apply(self.chain, ctypes.byref(array))
        if not 0 <= array.selected < array.size:
            raise EngineError("the sampler picked no token")
        chosen = array.data[array.selected]
        if masked and chosen.logit == -math.inf:
            raise EngineError("the grammar allows no token here")
        return int(chosen.id)

    def _window_pick(self, logits: Any) -> int | None:
        """The pick among the WINDOW most likely tokens the grammar allows, or None when that would not do."""
        import numpy as np

        lib, array, data = self._lib, self._array, self._data
        top = np.argpartition(logits, -WINDOW)[-WINDOW:]
        window = logits[top]
        data["id"][:WINDOW] = top
        data["logit"][:WINDOW] = window
        data["p"][:WINDOW] = 0
        array.data, array.size, array.selected, array.sorted = self._pointer, WINDOW, -1, False
        lib.llama_sampler_apply(self.grammar, ctypes.byref(array))
        allowed = data["logit"][:WINDOW] != -np.inf
        if not allowed.any():
            return None
        if self._temperature > 0:  # the mass outside the window, against what the grammar allows inside it
            peak = float(window.max())
            weights = np.exp((window - peak) / self._temperature)
            outside = float(np.exp((logits - peak) / self._temperature).sum()) - float(weights.sum())
            if outside > WINDOW_TAIL * float(weights[allowed].sum()):
                return None
        lib.llama_sampler_apply(self.chain, ctypes.byref(array))
        if not 0 <= array.selected < array.size or array.data[array.selected].logit == -math.inf:
            return None
        return int(array.data[array.selected].id)

    def _allowed(self, token: int) -> bool:
        one = self._one[0]
        one.id, one.logit, one.p = token, 1.0, 0.0
        array = self._one_array
        array.data, array.size, array.selected, array.sorted = self._one_pointer, 1, -1, False
        self._lib.llama_sampler_apply(self.grammar, ctypes.byref(array))
        return bool(array.data[0].logit != -math.inf)

    def close(self) -> None:
        super().close()
        if self.grammar is not None:
            self._lib.llama_sampler_free(self.grammar)
            self.grammar = None


def fit_messages[T](
    messages: Sequence[ChatMessage],
    prompt: Callable[[Sequence[ChatMessage]], list[T]],
    *,
    n_ctx: int,
    max_tokens: int | None,
    overflow: Overflow,
) -> tuple[list[T], Sequence[ChatMessage]]:
    """`prompt(messages)` and the messages it holds: with "drop_oldest", the oldest exchanges after the system
    prompt (an exchange: a user message and what answers it) are left out until it fits n_ctx with max_tokens;
    never the last user message. With "refuse", or when even that does not fit, the caller's check refuses."""

    def fits(tokens: list[T]) -> bool:
        return len(tokens) + (max_tokens or 1) <= n_ctx

    tokens = prompt(messages)
    if overflow == "refuse" or fits(tokens):
        return tokens, messages
    head = 1 if messages and messages[0].role == "system" else 0
    kept: Sequence[ChatMessage] = messages
    for start in [i for i in range(head, len(messages)) if messages[i].role == "user"][1:]:
        kept = [*messages[:head], *messages[start:]]
        tokens = prompt(kept)
        if fits(tokens):
            break
    return tokens, kept


def with_dropped(chunks: Iterator[TextChunk], dropped: int) -> Iterator[TextChunk]:
    """The stream, its last chunk saying how many messages were left out."""
    if not dropped:
        yield from chunks
        return
    for chunk in chunks:
        yield dataclasses.replace(chunk, dropped_messages=dropped) if chunk.finish_reason is not None else chunk


def _ecmascript_literal(text: str) -> str:
    """A regular expression (llama.cpp's std::regex, ECMAScript) matching `text` literally."""
    return "".join("\\" + c if c in "\\^$.|?*+()[]{}/" else c for c in text)


# One load at a time: llama-cpp-python silences a load by pointing the process's stdout and stderr (fds 1 and 2) at
# /dev/null and back, so two loads on two threads (the site warms its models at once) could leave them there, and
# the server's log with them.
_loading = threading.Lock()


def _load_llama(path: Path, *, n_ctx: int, threads: int, gpu: bool, **kwargs: Any) -> Any:
    if not path.is_file():
        raise ModelLoadError(f"weights not found: {path}")
    import llama_cpp

    _silence_llama_logs()
    with _loading:
        llm = llama_cpp.Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=threads,
            n_threads_batch=threads,
            n_gpu_layers=-1 if gpu else 0,
            verbose=False,
            **kwargs,
        )
    if not gpu:  # its decodes on the process's lanes (inference/lanes.py), wherever it is asked from
        ctx = llm._ctx
        ctx.decode = partial(LANES.run, ctx.decode)  # type: ignore[method-assign]  # this one object's
        ctx.encode = partial(LANES.run, ctx.encode)  # type: ignore[method-assign]
    return llm


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
    """Chat (with the model's own template) and plain completion over one llama.cpp context.

    A request with `params.grammar` is decoded by our own loop with a ConstrainedSampler (the grammar checks the
    sampled token, and masks the vocabulary only when it refuses it); the others by llama-cpp-python's generate.
    """

    lazy_grammar = True  # ConstrainedSampler's lazy mode; bench/grammar.py turns it off to compare

    def __init__(
        self,
        *,
        path: Path,
        n_ctx: int,
        threads: int,
        gpu: bool = False,
        flash_attn: bool = True,
        vocab_only: bool = False,  # the vocabulary and template only: counting for a remote model (remote.py)
    ) -> None:
        extra = {"vocab_only": True, "n_batch": 64} if vocab_only else {}
        self.llm = _load_llama(path, n_ctx=n_ctx or 64, threads=threads, gpu=gpu, flash_attn=flash_attn, **extra)
        self.n_ctx = self.llm.n_ctx()
        import llama_cpp

        self._vocab = self.llm._model.vocab
        self._is_eog = llama_cpp.llama_vocab_is_eog
        self._pieces: dict[int, bytes] = {}
        self._ends: dict[int, bool] = {}
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

    def piece(self, token: int) -> bytes:
        """The bytes of one generated token: a token's piece never changes, so each is made once."""
        piece = self._pieces.get(token)
        if piece is None:
            piece = self._pieces[token] = self.llm.detokenize([token])
        return piece

    def ends(self, token: int) -> bool:
        """Whether the token ends a reply (end of generation), asked of llama.cpp once per token: a call into it
        lets other threads take the GIL, and the batching engine's scheduler would wait for them at every token."""
        end = self._ends.get(token)
        if end is None:
            end = self._ends[token] = bool(self._is_eog(self._vocab, token))
        return end

    @property
    def has_chat_template(self) -> bool:
        return self._formatter is not None

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode(), add_bos=False, special=False))

    def chat_prompt_tokens(self, messages: Sequence[ChatMessage], tools: Sequence[Tool] = ()) -> list[int]:
        """The prompt through the model's own template. `tools` (and tool turns) reach the template as OpenAI's
        shapes: for a tool-aware template (inference/tools.py renders tools for the others before this)."""
        if self._formatter is None:
            raise InvalidRequestError("this model has no chat template; use plain completion instead")
        if not messages:
            raise InvalidRequestError("messages must not be empty")
        chat: list[Any] = template_messages(messages)  # llama_cpp's TypedDicts
        try:
            described: Any = template_tools(tools) if tools else None  # llama_cpp's TypedDicts
            rendered = self._formatter(messages=chat, tools=described)
        except Exception as exc:  # the template refused the turns (jinja2's raise_exception): say why
            raise InvalidRequestError(f"the model's chat template refused these messages: {exc}") from None
        return self.llm.tokenize(rendered.prompt.encode(), add_bos=not rendered.added_special, special=True)

    def completion_prompt_tokens(self, prompt: str) -> list[int]:
        if not prompt:
            raise InvalidRequestError("prompt must not be empty")
        return self.llm.tokenize(prompt.encode(), add_bos=True, special=False)

    def count_chat_tokens(self, messages: Sequence[ChatMessage], tools: Sequence[Tool] = ()) -> int:
        """The prompt's tokens for these messages through the template (a context meter's reading)."""
        return len(self.chat_prompt_tokens(messages, tools))

    def chat(
        self,
        messages: Sequence[ChatMessage],
        params: SamplingParams,
        stop_event: threading.Event | None = None,
        tools: Sequence[Tool] = (),
        overflow: Overflow = "refuse",
        continue_final: bool = False,
    ) -> Iterator[TextChunk]:
        """The reply; `overflow` "drop_oldest" leaves out the oldest exchanges that do not fit (fit_messages), and
        the last chunk says how many messages that was. With `continue_final` and an assistant message last, the
        model continues that message: the template up to its turn's opening, then its text as it is (no end of
        turn), and the chunks are what comes next."""
        prefix: list[int] = []
        if continue_final and messages and messages[-1].role == "assistant":
            prefix = self.llm.tokenize(messages[-1].content.encode(), add_bos=False, special=False)
            messages = messages[:-1]
        tokens, kept = fit_messages(
            messages,
            lambda turns: self.chat_prompt_tokens(turns, tools) + prefix,
            n_ctx=self.n_ctx,
            max_tokens=params.max_tokens,
            overflow=overflow,
        )
        return with_dropped(self.generate(tokens, params, stop_event), len(messages) - len(kept))

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
        if params.grammar is not None:
            from inference.grammar import compiled

            compiled(params.grammar)  # a bad grammar is refused here, before any work (cached by its text)
        return self._stream(prompt_tokens, params, max_tokens, stop_event or threading.Event())

    def sampler(self, params: SamplingParams, seed: int) -> Sampler:
        """A fresh sampler for one request: its chain, and its own grammar state when it has a grammar."""
        import llama_cpp

        if params.grammar is not None:
            return ConstrainedSampler(llama_cpp, self._vocab, self.llm.n_vocab(), params, seed, lazy=self.lazy_grammar)
        return Sampler(llama_cpp, self.llm.n_vocab(), params, seed)

    def _constrained(self, prompt_tokens: list[int], params: SamplingParams, seed: int) -> Generator[int]:
        """The reply's tokens, each sampled within the grammar (the context was reset by the caller)."""
        llm = self.llm
        sampler = self.sampler(params, seed)
        try:
            llm.eval(prompt_tokens)
            while True:
                token = sampler.sample(llm._ctx.ctx, -1)
                yield token
                llm.eval([token])
        finally:
            sampler.close()

    def _stream(
        self, prompt_tokens: list[int], params: SamplingParams, max_tokens: int, stop_event: threading.Event
    ) -> Iterator[TextChunk]:
        llm = self.llm
        # A fresh context per request: reusing a cached prefix can change a
        # temperature-0 answer, and reproducibility for a given seed matters more.
        llm.reset()
        seed = params.seed if params.seed is not None else random.randrange(2**32)
        llm.set_seed(seed)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        scanner = StopScanner(params.stop)
        completion = 0
        finish: FinishReason = "length"
        stop_sequence: str | None = None

        def stop_requested(_ids: Any, _logits: Any) -> bool:
            return stop_event.is_set()

        tokens: Generator[int, Any, None]
        if params.grammar is not None:
            tokens = self._constrained(prompt_tokens, params, seed)
        else:
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
        for token in tokens:
            if self.ends(token):
                finish = "stop"
                break
            completion += 1
            text, stop_sequence = scanner.feed(decoder.decode(self.piece(token)))
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
