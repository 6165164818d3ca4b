"""Continuous batching: several requests share one llama.cpp context and decode together.

One scheduler thread owns a context with `slots` sequences. Between decode steps it admits waiting requests; each
step puts into one batch the next token of every generating sequence plus a chunk of the prompt of sequences still
being read (so a long prompt does not stall the others for long), runs one `llama_decode`, and picks the next token
of every sequence that has logits: a greedy one's straight from its row of logits (after its penalties, as its
chain would), the others' with their own sampler chain (their own temperature, top_k, top_p, min_p, penalties and
seed, in llama-cpp-python's order; a request with a grammar also its own grammar state: inference/text.py's
ConstrainedSampler). Each request reads its pieces from its own queue, what has piled up at once. A request's stop
flag ends its sequence at the next step and frees its slot; usage is counted per request, exactly as the serialized
engine counts it. `bench/scheduler.py` shows where a step's time goes.

A request with a seed is decoded batch-invariantly: in a `llama_decode` of its own each step (its prompt in
chunks of PROMPT_CHUNK from its start), in KV cells of its own, so the kernels see the same shapes, and sum in
the same order, whatever else runs: its reply is the one it gets alone, on any number of threads or a GPU. It
costs that request the batch's sharing of the weights' reads (about a single stream's speed); requests without
a seed share one batch per step.

Prefix reuse (`prefix_cache`): a finished request's KV cells stay in its slot, and a new request takes the free
slot that already holds the longest start of its prompt and reads only the rest: the next turn of a
conversation (its previous prompt and reply), or another request with the same long system prompt. A seeded
request reuses only full PROMPT_CHUNK chunks that were computed as a cold run computes them (by seeded requests:
alone, aligned), and always reads its last prompt token anew, so its reply is still the cold run's.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import dataclasses
import queue
import random
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inference.lanes import runner
from inference.text import LlamaTextEngine, Sampler, StopScanner
from inference.types import EngineError, FinishReason, SamplingParams, TextChunk, Usage

N_BATCH = 512  # tokens a decode step may hold
PROMPT_CHUNK = 128  # prompt tokens read per step: a long new prompt delays the running streams little
MIN_REUSE = 32  # a shorter common start (a chat template's opening) is read again: it costs a millisecond or two


@dataclass(eq=False)
class _Sequence:
    prompt: list[int]
    params: SamplingParams
    max_tokens: int
    stop_event: threading.Event
    out: queue.SimpleQueue[TextChunk | BaseException] = field(default_factory=queue.SimpleQueue)
    slot: int = -1
    fed: int = 0  # prompt tokens already in the KV cache
    last: int = -1  # the token to feed next (sampled last step)
    logits_at: int = -1  # batch index of this sequence's logits in the current step
    completion: int = 0
    generated: list[int] = field(default_factory=list)  # the reply's tokens (those fed back are in the KV cache)
    exact: int = 0  # prompt tokens whose KV cells are what a cold run computes (full aligned chunks)
    sampler: Sampler | None = None
    decoder: Any = field(default_factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace"))
    scanner: StopScanner | None = None

    @property
    def prefilled(self) -> bool:
        return self.fed >= len(self.prompt)


def _gathered(out: queue.SimpleQueue[TextChunk | BaseException]) -> tuple[TextChunk | None, BaseException | None]:
    """The next piece of a sequence's reply with whatever else is already there, as one chunk: a reader that fell
    behind catches up in one hand-off (through the worker's queue to the event loop), not one per token. An error
    comes after the text before it."""
    chunks: list[TextChunk] = []
    item = out.get()
    while True:
        if isinstance(item, BaseException):
            break
        chunks.append(item)
        if item.finish_reason is not None:
            break
        try:
            item = out.get_nowait()
        except queue.Empty:
            break
    error = item if isinstance(item, BaseException) else None
    if len(chunks) > 1:
        return dataclasses.replace(chunks[-1], text="".join(c.text for c in chunks)), error
    return (chunks[0] if chunks else None), error


class BatchedTextEngine(LlamaTextEngine):
    """A LlamaTextEngine whose requests run concurrently (up to `slots`) in one batched context.

    Each request may use `n_ctx` tokens (prompt and reply); the context holds `slots` times that, each
    sequence in cells of its own. Own cells keep a request's numbers independent of its neighbours: a
    seed reproduces the same reply alone or beside other requests (a shared cache changes the float
    rounding of attention with whatever else is in it).
    """

    def __init__(
        self,
        *,
        path: Path,
        n_ctx: int,
        threads: int,
        slots: int,
        gpu: bool = False,
        flash_attn: bool = True,
        prefix_cache: bool = True,
    ) -> None:
        import llama_cpp
        import numpy

        # The Llama object gives weights, vocabulary, chat template and tokenizer; its own context is
        # left small and unused.
        super().__init__(path=path, n_ctx=256, threads=threads, gpu=gpu, flash_attn=flash_attn)
        self.slots = slots
        self.n_ctx = n_ctx
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx * slots
        params.n_batch = params.n_ubatch = N_BATCH
        params.n_seq_max = slots
        params.n_threads = params.n_threads_batch = threads
        params.kv_unified = False  # each sequence has its own n_ctx cells: no sequence can starve another
        params.flash_attn_type = (
            llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash_attn else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        )
        self._llama_cpp = llama_cpp
        self._compute = runner(gpu)  # on the CPU, on the process's lanes (inference/lanes.py)
        self._np = numpy
        self._logits_view: tuple[int | None, Any] | None = None
        self._n_vocab = self.llm.n_vocab()
        self._ctx = llama_cpp.llama_init_from_model(self.llm._model.model, params)
        if not self._ctx:
            raise EngineError(f"could not create a batched context for {path.name} ({slots} x {n_ctx} tokens)")
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        self._batch = llama_cpp.llama_batch_init(N_BATCH, 0, 1)
        self._cond = threading.Condition()
        self._waiting: deque[_Sequence] = deque()
        self._active: dict[int, _Sequence] = {}
        self._thread: threading.Thread | None = None
        self.prefix_cache = prefix_cache
        # What each free slot's KV cells still hold, for the next request that starts the same way: its tokens,
        # and how many of them (full aligned prompt chunks) a cold run would compute exactly so.
        self._kept: dict[int, tuple[list[int], int]] = {}
        self._kept_at: dict[int, int] = {}  # when each was kept (a counter): the oldest is given away first
        self._kept_count = 0

    # --- requests -----------------------------------------------------------------------------

    def _stream(
        self, prompt_tokens: list[int], params: SamplingParams, max_tokens: int, stop_event: threading.Event
    ) -> Iterator[TextChunk]:
        sequence = _Sequence(prompt_tokens, params, max_tokens, stop_event, scanner=StopScanner(params.stop))
        # Built here, on the caller's thread: a grammar's parsing does not hold up the other sequences' steps.
        seed = params.seed if params.seed is not None else random.randrange(2**32)
        sequence.sampler = self.sampler(params, seed)
        with self._cond:
            self._waiting.append(sequence)
            if self._thread is None:  # started from a model worker thread: it inherits that thread's priority
                self._thread = threading.Thread(target=self._loop, name="batched-decode", daemon=True)
                self._thread.start()
            self._cond.notify()
        ended = False
        try:
            while True:
                chunk, error = _gathered(sequence.out)
                if chunk is not None:
                    ended = chunk.finish_reason is not None
                    yield chunk
                    if ended:
                        return
                if error is not None:
                    ended = True
                    raise error
        finally:
            if not ended:
                stop_event.set()  # a consumer that leaves early frees the slot at the next step

    # --- the scheduler ------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._active:
                    self._cond.wait()
                free = [slot for slot in range(self.slots) if slot not in self._active]
                while self._waiting and free:
                    sequence = self._waiting.popleft()
                    sequence.slot = self._admit(sequence, free)
                    free.remove(sequence.slot)
                    self._active[sequence.slot] = sequence
            try:
                self._step()
            except Exception as exc:  # the context is unusable for these sequences: fail them, carry on
                for sequence in list(self._active.values()):
                    self._finish(sequence, error=EngineError(f"batched decoding failed: {exc}"))

    def reusable(self, sequence: _Sequence, kept: tuple[list[int], int]) -> int:
        """How many of the sequence's prompt tokens a slot's kept cells can give it, never the last (its logits
        are computed anew). A seeded request takes only full PROMPT_CHUNK chunks that were computed as a cold run
        computes them (read alone, aligned), so its numbers stay those of a cold run; others take the whole
        common prefix, the reply's tokens included (as llama.cpp's server does), from MIN_REUSE tokens."""
        tokens, exact = kept
        prompt = sequence.prompt
        limit = min(len(tokens), len(prompt) - 1)
        common = 0
        while common < limit and tokens[common] == prompt[common]:
            common += 1
        if sequence.params.seed is not None:
            return min(common, exact) // PROMPT_CHUNK * PROMPT_CHUNK
        return common if common >= MIN_REUSE else 0  # less saves a millisecond or two: read it cold

    def _admit(self, sequence: _Sequence, free: list[int]) -> int:
        """The free slot whose kept cells give the sequence the longest prefix (else an empty one, else the one
        kept longest ago), its cells trimmed to that prefix: the sequence's prompt is read from there on."""
        slot = min(free, key=lambda f: self._kept_at.get(f, -1))
        reuse = 0
        if self.prefix_cache:
            for candidate in free:
                kept = self._kept.get(candidate)
                n = self.reusable(sequence, kept) if kept else 0
                if n > reuse:
                    slot, reuse = candidate, n
        kept = self._kept.pop(slot, None)
        self._kept_at.pop(slot, None)
        if reuse and self._llama_cpp.llama_memory_seq_pos_min(self._memory, slot) == 0:
            # cells from `reuse` on go (a sliding-window cache may refuse: then all go)
            if not self._llama_cpp.llama_memory_seq_rm(self._memory, slot, reuse, -1):
                reuse = 0
        else:
            reuse = 0
        if not reuse and kept is not None:
            self._llama_cpp.llama_memory_seq_rm(self._memory, slot, -1, -1)
        sequence.fed = reuse
        sequence.exact = min(reuse, kept[1]) if kept and reuse else 0
        return slot

    def _step(self) -> None:
        """One decode step: the unseeded sequences together in one batch, then each seeded one in a batch of its
        own (batch-invariant: its numbers are those of the same request decoded with nothing beside it)."""
        for sequence in list(self._active.values()):
            if sequence.stop_event.is_set():
                self._finish(sequence, "cancelled")
        sequences = sorted(self._active.values(), key=lambda s: s.slot)
        together = [s for s in sequences if s.params.seed is None]
        if together:
            self._decode(together)
        for sequence in sequences:
            if sequence.params.seed is not None and sequence.slot in self._active:
                self._decode([sequence])

    def _decode(self, sequences: list[_Sequence]) -> None:
        """One llama_decode of these sequences: the next token of each generating one, then prompt chunks (at most
        PROMPT_CHUNK tokens in all, a sequence's chunks starting at multiples of it when it is decoded alone); then
        sample each that has logits."""
        alone = len(sequences) == 1 and sequences[0].params.seed is not None
        batch = self._batch
        n = 0

        def add(token: int, pos: int, slot: int, logits: bool) -> None:
            nonlocal n
            batch.token[n] = token
            batch.pos[n] = pos
            batch.n_seq_id[n] = 1
            batch.seq_id[n][0] = slot
            batch.logits[n] = logits
            n += 1

        for sequence in sequences:  # generating sequences first: one token each
            sequence.logits_at = -1
            if sequence.prefilled:
                sequence.logits_at = n
                add(sequence.last, len(sequence.prompt) + sequence.completion - 1, sequence.slot, True)
        budget = PROMPT_CHUNK
        for sequence in sequences:  # then prompt chunks, as room allows
            if sequence.prefilled or budget <= 0 or n >= N_BATCH:
                continue
            take = min(budget, N_BATCH - n, len(sequence.prompt) - sequence.fed)
            budget -= take
            for i in range(sequence.fed, sequence.fed + take):
                last = i == len(sequence.prompt) - 1
                if last:
                    sequence.logits_at = n
                add(sequence.prompt[i], i, sequence.slot, last)
            if alone and take == PROMPT_CHUNK and sequence.fed == sequence.exact:  # a full chunk, as a cold run's
                sequence.exact += take
            sequence.fed += take
        batch.n_tokens = n
        code = self._compute(self._llama_cpp.llama_decode, self._ctx, batch)
        if code != 0:
            raise EngineError(f"llama_decode returned {code}")
        picking = sorted((s for s in sequences if s.logits_at >= 0), key=lambda s: s.logits_at)
        for sequence, token in zip(picking, self._picks(picking), strict=True):
            self._take(sequence, token)

    def _picks(self, picking: list[_Sequence]) -> list[int]:
        """The next token of each sequence, in the order of their logits in the last decode. Greedy ones straight
        from the rows of logits (their penalties applied there: Sampler.greedy); the others through their own chain
        (and grammar state): as llama-cpp-python's generate, the penalties see only the reply's tokens, accepted into
        the chain as they are picked."""
        rows = None
        picks = []
        for row, sequence in enumerate(picking):
            sampler = sequence.sampler
            assert sampler is not None
            if not sampler.argmax:
                picks.append(sampler.sample(self._ctx, sequence.logits_at))
                continue
            if rows is None:
                rows = self._logits(len(picking))
            picks.append(sampler.greedy(rows[row], sequence.generated))
        return picks

    def _logits(self, n: int) -> Any:
        """The last decode's logits (of the batch's flagged tokens, in batch order) as an (n, n_vocab) array: a
        view of llama.cpp's buffer, made again only when the buffer moves or holds more rows."""
        address = ctypes.cast(self._llama_cpp.llama_get_logits(self._ctx), ctypes.c_void_p).value
        view = self._logits_view
        if view is None or view[0] != address or view[1].shape[0] < n:
            floats = (ctypes.c_float * (n * self._n_vocab)).from_address(address)
            view = self._logits_view = (address, self._np.frombuffer(floats, self._np.float32).reshape(n, -1))
        return view[1]

    def _take(self, sequence: _Sequence, token: int) -> None:
        """One sampled token: end, or emit its text (held back while it may start a stop sequence)."""
        if self.ends(token):
            self._finish(sequence, "stop")
            return
        sequence.completion += 1
        sequence.last = token
        sequence.generated.append(token)
        assert sequence.scanner is not None
        text, stop_sequence = sequence.scanner.feed(sequence.decoder.decode(self.piece(token)))
        if text:
            sequence.out.put(TextChunk(text))
        if stop_sequence is not None:
            self._finish(sequence, "stop", stop_sequence=stop_sequence)
        elif sequence.stop_event.is_set():
            self._finish(sequence, "cancelled")
        elif sequence.completion >= sequence.max_tokens:
            self._finish(sequence, "length")

    def _finish(
        self,
        sequence: _Sequence,
        finish: FinishReason = "length",
        *,
        stop_sequence: str | None = None,
        error: BaseException | None = None,
    ) -> None:
        """End the sequence and free its slot; `stop_sequence` is the stop sequence that ended it, if one did."""
        with self._cond:
            self._active.pop(sequence.slot, None)
            if self.prefix_cache and error is None:
                # in its cells: the prompt read so far, and each reply token fed back (all but the last sampled)
                held = sequence.prompt[: sequence.fed]
                if sequence.prefilled:
                    held = held + sequence.generated[: max(0, sequence.completion - 1)]
                self._kept[sequence.slot] = (held, sequence.exact)
                self._kept_count += 1
                self._kept_at[sequence.slot] = self._kept_count
            else:
                self._kept.pop(sequence.slot, None)
                self._kept_at.pop(sequence.slot, None)
        if not self.prefix_cache or error is not None:
            self._llama_cpp.llama_memory_seq_rm(self._memory, sequence.slot, -1, -1)
        if sequence.sampler is not None:
            sequence.sampler.close()
            sequence.sampler = None
        if error is not None:
            sequence.out.put(error)
            return
        assert sequence.scanner is not None
        tail = ""
        if stop_sequence is None:  # held-back text is the reply's own unless a stop sequence matched
            tail = sequence.scanner.flush() + sequence.decoder.decode(b"", final=True)
        usage = Usage(prompt_tokens=len(sequence.prompt), completion_tokens=sequence.completion)
        sequence.out.put(TextChunk(tail, finish_reason=finish, usage=usage, stop_sequence=stop_sequence))

    def __del__(self) -> None:  # pragma: no cover  (process exit)
        with contextlib.suppress(Exception):
            self._llama_cpp.llama_batch_free(self._batch)
