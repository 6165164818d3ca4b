"""Continuous batching (inference/batching.py) on the real SmolLM2: concurrent requests decode together,
each with its own parameters, usage, seed and stop flag; through the pool, a model worker admits as many
requests as there are slots, keeps the queue bound and puts interactive requests first."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from inference import EnginePool
from inference.batching import BatchedTextEngine
from inference.device import DeviceDecision
from inference.types import ChatMessage, QueueFullError, SamplingParams, TextChunk
from tests.inference.conftest import GPU, THREADS, catalog_spec

SLOTS = 4


@pytest.fixture(scope="module")
def batched() -> BatchedTextEngine:
    spec = catalog_spec("smollm2-135m-instruct")
    return BatchedTextEngine(path=spec.path, n_ctx=1024, threads=THREADS, slots=SLOTS, gpu=GPU)


def ask(text: str) -> list[ChatMessage]:
    return [ChatMessage("user", text)]


def collect(chunks: Iterator[TextChunk], into: dict, key: object) -> None:
    items = list(chunks)
    into[key] = ("".join(c.text for c in items), items[-1])


def cancel_after_first(chunks: Iterator[TextChunk], stop: threading.Event) -> Iterator[TextChunk]:
    """Pass the stream on, setting its stop flag once the first piece has arrived."""
    for chunk in chunks:
        stop.set()
        yield chunk


def run_together(engine: BatchedTextEngine, requests: dict) -> dict:
    results: dict = {}
    threads = [
        threading.Thread(target=collect, args=(engine.chat(messages, params), results, key))
        for key, (messages, params) in requests.items()
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def test_concurrent_requests_each_get_their_own_reply_usage_and_finish(batched):
    requests = {
        "paris": (ask("What is the capital of France? One word."), SamplingParams(temperature=0, max_tokens=12)),
        "count": (ask("Count from 1 to 50."), SamplingParams(temperature=0, max_tokens=20)),
        "hot": (ask("Write a poem."), SamplingParams(temperature=1.3, top_k=20, seed=5, max_tokens=16)),
        "stop": (ask("Count from 1 to 10, comma separated."), SamplingParams(temperature=0, stop=("5",))),
    }
    results = run_together(batched, requests)
    assert "Paris" in results["paris"][0]
    assert results["count"][1].finish_reason == "length" and results["count"][1].usage.completion_tokens == 20
    assert results["hot"][1].usage.completion_tokens == 16
    text, last = results["stop"]
    assert last.finish_reason == "stop" and "5" not in text and "4" in text
    assert last.stop_sequence == "5"
    for key, (messages, _) in requests.items():
        assert results[key][1].usage.prompt_tokens == len(batched.chat_prompt_tokens(messages))


def test_each_sequence_reports_the_stop_sequence_that_ended_it(batched):
    """Side by side: ended by a stop sequence (the earliest in the text, whatever the list's order), by
    the end-of-generation token, by max_tokens, and by the end of text while a stop's start is held back."""
    count = ask("Count from 1 to 10, comma separated.")
    paris = ask("What is the capital of France? One word.")
    full = run_together(batched, {"paris": (paris, SamplingParams(temperature=0, max_tokens=30))})["paris"][0]
    assert full.strip()
    requests = {
        "earliest": (count, SamplingParams(temperature=0, max_tokens=60, stop=("7", "5"))),
        "eog": (paris, SamplingParams(temperature=0, max_tokens=30, stop=("zebra",))),
        "length": (count, SamplingParams(temperature=0, max_tokens=3, stop=("zebra",))),
        "held": (paris, SamplingParams(temperature=0, max_tokens=30, stop=(full[-2:] + "zebra",))),
    }
    results = run_together(batched, requests)
    text, last = results["earliest"]
    assert (last.finish_reason, last.stop_sequence) == ("stop", "5")
    assert "4" in text and "5" not in text
    assert (results["eog"][1].finish_reason, results["eog"][1].stop_sequence) == ("stop", None)
    assert results["eog"][0] == full
    assert (results["length"][1].finish_reason, results["length"][1].stop_sequence) == ("length", None)
    assert (results["held"][1].finish_reason, results["held"][1].stop_sequence) == ("stop", None)
    assert results["held"][0] == full  # the held-back end is the reply's own: it comes out at the end


def test_a_seed_reproduces_alone_and_alongside_other_requests(batched):
    params = SamplingParams(temperature=1.0, seed=11, max_tokens=24)
    alone = run_together(batched, {"a": (ask("Tell me about the sea."), params)})["a"][0]
    again = run_together(batched, {"a": (ask("Tell me about the sea."), params)})["a"][0]
    crowd = run_together(
        batched,
        {
            "a": (ask("Tell me about the sea."), params),
            "b": (ask("Tell me about bread."), SamplingParams(temperature=0.9, seed=3, max_tokens=30)),
            "c": (ask("Tell me about rain."), SamplingParams(temperature=0, max_tokens=18)),
        },
    )["a"][0]
    assert alone == again == crowd


class _Recording:
    """llama_cpp, recording which sequences (slots) and positions each llama_decode held."""

    def __init__(self, real: object) -> None:
        self.real = real
        self.batches: list[list[tuple[int, int]]] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self.real, name)

    def llama_decode(self, ctx: object, batch) -> int:  # noqa: ANN001
        self.batches.append([(batch.seq_id[i][0], batch.pos[i]) for i in range(batch.n_tokens)])
        return self.real.llama_decode(ctx, batch)


def test_a_seeded_request_is_decoded_in_batches_of_its_own(batched, monkeypatch):
    """Batch invariance by construction: every llama_decode that holds a seeded request's tokens holds nothing
    else, and its prompt is read in chunks starting at multiples of PROMPT_CHUNK, as when it runs alone; the
    unseeded requests still share one batch per step."""
    from inference.batching import PROMPT_CHUNK

    recording = _Recording(batched._llama_cpp)
    monkeypatch.setattr(batched, "_llama_cpp", recording)
    long_question = ask("Summarise: " + "The tide rises and falls twice a day. " * 40)
    results = run_together(
        batched,
        {
            "seeded": (long_question, SamplingParams(temperature=0.8, seed=5, max_tokens=12)),  # same as `seeded`
            "b": (ask("Tell me about bread."), SamplingParams(temperature=0.9, max_tokens=20)),
            "c": (ask("Tell me about rain."), SamplingParams(temperature=0, max_tokens=20)),
        },
    )
    assert all(text for text, _ in results.values())
    slots = [{slot for slot, _ in batch} for batch in recording.batches]
    (seeded_slot,) = next(
        s for s, batch in zip(slots, recording.batches, strict=True) if len(s) == 1 and len(batch) > 100
    )  # its first prompt chunk: the only prompt that long
    mine = [batch for batch, s in zip(recording.batches, slots, strict=True) if seeded_slot in s]
    assert len(mine) >= 12 and all(len(s) == 1 for s in slots if seeded_slot in s)  # alone in every decode
    prompt_starts = [batch[0][1] for batch in mine if len(batch) > 1]
    assert prompt_starts and all(start % PROMPT_CHUNK == 0 for start in prompt_starts)
    assert any(len(s) == 2 for s in slots)  # the two unseeded requests decoded together
    seeded = SamplingParams(temperature=0.8, seed=5, max_tokens=12)
    assert results["seeded"][0] == run_together(batched, {"s": (long_question, seeded)})["s"][0]


def test_a_long_shared_prefix_is_reused_and_a_seeded_reply_stays_the_cold_ones(batched, monkeypatch):
    from inference.batching import PROMPT_CHUNK

    system = "You are a careful assistant. " + "Answer in one short, plain paragraph. " * 45
    first = [ChatMessage("system", system), ChatMessage("user", "What is bread?")]
    second = [ChatMessage("system", system), ChatMessage("user", "What is rain?")]
    assert len(batched.chat_prompt_tokens(second)) > 2 * PROMPT_CHUNK
    seeded = SamplingParams(temperature=0.8, seed=9, max_tokens=16)
    monkeypatch.setattr(batched, "prefix_cache", False)
    cold = run_together(batched, {"s": (second, seeded)})["s"][0]
    monkeypatch.setattr(batched, "prefix_cache", True)
    recording = _Recording(batched._llama_cpp)
    monkeypatch.setattr(batched, "_llama_cpp", recording)

    run_together(batched, {"f": (first, seeded)})  # leaves its cells in its slot
    before = len(recording.batches)
    warm = run_together(batched, {"s": (second, seeded)})["s"][0]
    start = recording.batches[before][0][1]
    assert start > 0 and start % PROMPT_CHUNK == 0  # whole aligned chunks were not read again
    assert warm == cold  # and the seeded reply is the cold run's

    # Unseeded, the next turn of a conversation reads only what follows the previous prompt and reply.
    greedy = SamplingParams(temperature=0, max_tokens=12)
    (text, _) = run_together(batched, {"t": (second, greedy)})["t"]
    follow = [*second, ChatMessage("assistant", text), ChatMessage("user", "And snow?")]
    before = len(recording.batches)
    (reply, last) = run_together(batched, {"t": (follow, greedy)})["t"]
    assert reply.strip() and last.usage.prompt_tokens == len(batched.chat_prompt_tokens(follow))
    assert recording.batches[before][0][1] >= len(batched.chat_prompt_tokens(second))


def test_greedy_replies_match_the_serialized_engine(batched, smollm2):
    question = ask("What is the capital of Italy?")
    params = SamplingParams(temperature=0, max_tokens=16)
    serial = "".join(c.text for c in smollm2.chat(question, params))
    assert run_together(batched, {"q": (question, params)})["q"][0] == serial


def test_the_stop_flag_ends_its_sequence_at_the_next_step_and_frees_the_slot(batched):
    stop = threading.Event()
    long = batched.chat(ask("Write a very long story."), SamplingParams(temperature=0, max_tokens=900), stop)
    other: dict = {}
    runner = threading.Thread(
        target=collect,
        args=(batched.chat(ask("Count to twenty."), SamplingParams(temperature=0, max_tokens=40)), other, "x"),
    )
    runner.start()
    pieces = []
    for chunk in long:
        pieces.append(chunk)
        if len(pieces) == 5:
            stop.set()
        if chunk.finish_reason is not None:
            break
    last = pieces[-1]
    assert last.finish_reason == "cancelled"
    assert last.usage.completion_tokens <= 7  # the one in flight when the flag was seen, at most
    runner.join(60)
    assert other["x"][1].finish_reason == "length"
    # Every slot is free again: SLOTS new requests run at once.
    results = run_together(
        batched, {n: (ask(f"Say {n}."), SamplingParams(temperature=0, max_tokens=4)) for n in range(SLOTS)}
    )
    assert len(results) == SLOTS
    assert batched._active == {}


def test_through_the_pool_slots_run_together_and_the_queue_bound_holds():
    spec = catalog_spec("smollm2-135m-instruct")
    pool = EnginePool([spec], device=DeviceDecision("cpu", "test"), threads=THREADS, max_queue=2, batch_slots=2)
    worker = pool.workers[spec.id]
    params = SamplingParams(temperature=0, max_tokens=200)

    def chat(engine, stop):  # noqa: ANN001, ANN202
        return engine.chat(ask("Write a long story about a cat."), params, stop)

    jobs = [pool.submit(spec.id, chat) for _ in range(2)]  # both slots
    deadline = time.monotonic() + 60
    while len(worker._running) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    queued = [pool.submit(spec.id, chat, background=True), pool.submit(spec.id, chat)]
    assert worker.position(queued[1]) == 1  # the interactive request went ahead of the bulk one
    with pytest.raises(QueueFullError):
        pool.submit(spec.id, chat)
    for job in jobs + queued:
        job.cancel()
    for job in jobs + queued:
        list(job)


def test_a_long_prompt_is_read_in_chunks_while_the_others_keep_generating(batched):
    """A new request with a long prompt does not stop the running stream: while its prompt is read,
    128 tokens per step, the running stream keeps getting tokens."""
    running = batched.chat(
        ask("Count from one to one hundred in words."), SamplingParams(temperature=0, max_tokens=300)
    )
    next(running)
    long_prompt = ask("Summarise this text. " + "The cat sat on the mat and looked at the birds. " * 60)
    assert len(batched.chat_prompt_tokens(long_prompt)) > 3 * 128
    result: dict = {}
    reader = threading.Thread(
        target=collect, args=(batched.chat(long_prompt, SamplingParams(temperature=0, max_tokens=4)), result, "r")
    )
    reader.start()
    during = 0
    while reader.is_alive():
        chunk = next(running)
        during += 1
        if chunk.finish_reason is not None:
            break
    reader.join(60)
    assert result["r"][1].usage.completion_tokens >= 1
    assert during >= 3  # tokens kept coming while the long prompt was read (one step per 128 of its tokens)
    rest = list(running)  # let the running stream finish
    assert not rest or rest[-1].finish_reason is not None


VICTIM = "Count from one to five hundred in words, separated by commas."
PROMPTS = [
    "What is the capital of France?",
    "Name three colours.",
    "What is two plus two?",
    "Say something about the moon.",
    "Give me a word that rhymes with cat.",
    "What do bees make?",
    "Name a large animal.",
    "What is water made of?",
]


def test_temperature_zero_matches_solo_decoding_and_a_cancel_leaves_the_others_untouched(batched, smollm2):
    """Batched greedy replies against the serialized engine's, same prompts and the model's usual repetition
    penalty: how often they are identical is printed (batched matrix kernels may round differently)."""
    params = SamplingParams(temperature=0, max_tokens=24, repetition_penalty=1.1)
    solo = {p: "".join(c.text for c in smollm2.chat(ask(p), params)) for p in PROMPTS[:SLOTS]}
    together = run_together(batched, {p: (ask(p), params) for p in PROMPTS[:SLOTS]})
    same = sum(together[p][0] == solo[p] for p in solo)
    print(f"batched == solo at temperature 0: {same}/{len(solo)}")
    assert all(together[p][0].strip() for p in solo)
    assert same >= len(solo) - 1  # on this CPU build they agree; allow one rounding difference

    # Three of them again, with a fourth beside them that asks for a long reply and is cancelled as soon as its
    # first piece arrives: it ends "cancelled" after a few of its 400 tokens; the three replies are unchanged.
    others = PROMPTS[: SLOTS - 1]
    stops = {p: threading.Event() for p in [*others, VICTIM]}
    results: dict = {}
    threads = []
    for p in [*others, VICTIM]:
        if p == VICTIM:
            chunks = cancel_after_first(batched.chat(ask(p), replace(params, max_tokens=400), stops[p]), stops[p])
        else:
            chunks = batched.chat(ask(p), params, stops[p])
        threads.append(threading.Thread(target=collect, args=(chunks, results, p)))
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results[VICTIM][1].finish_reason == "cancelled"
    assert results[VICTIM][1].usage.completion_tokens < 400
    for p in others:
        assert results[p][0] == together[p][0]


def test_a_burst_larger_than_the_slots_queues_and_completes_in_order():
    spec = catalog_spec("smollm2-135m-instruct")
    pool = EnginePool([spec], device=DeviceDecision("cpu", "test"), threads=THREADS, batch_slots=2)
    params = SamplingParams(temperature=0, max_tokens=8)

    def chat_for(text: str):  # noqa: ANN202
        return lambda engine, stop: engine.chat(ask(text), params, stop)

    jobs = [pool.submit(spec.id, chat_for(p)) for p in PROMPTS]  # 8 requests, 2 slots
    results = [list(job) for job in jobs]
    assert all(r[-1].usage.completion_tokens >= 1 and r[-1].finish_reason in ("stop", "length") for r in results)
    starts = [job.started_at for job in jobs]
    assert starts == sorted(starts)  # admitted in the order they came


def test_greedy_picks_with_penalties_are_the_sampler_chains():
    """Greedy requests with penalties are picked from the row of logits (Sampler.greedy), not by the llama.cpp chain:
    on synthetic logits (all negative in half the cases, a tie, replies longer than the penalty window whose repeats
    are the likeliest tokens) every pick equals the chain's, and the penalties change the pick in many cases."""
    import ctypes

    import llama_cpp
    import numpy as np

    from inference.text import Sampler

    spec = catalog_spec("smollm2-135m-instruct")
    llm = llama_cpp.Llama(model_path=str(spec.path), n_ctx=64, n_threads=THREADS, verbose=False)
    llm.eval([llm.token_bos()])  # one row of logits in the context, which the chain reads
    n_vocab = llm.n_vocab()
    address = ctypes.cast(llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1), ctypes.c_void_p).value
    buffer = np.frombuffer((ctypes.c_float * n_vocab).from_address(address), np.float32)
    rng = np.random.default_rng(7)
    changed = cases = 0
    for trial in range(40):
        logits = (rng.standard_normal(n_vocab) * 3).astype(np.float32)
        top = np.argsort(-logits)[:12]
        logits[top[1]] = logits[top[0]]  # a tie: the first of equals wins
        if trial % 2:  # every logit negative: the penalty multiplies them
            logits -= logits[top[0]] + np.float32(0.05)
        reply = [int(t) for t in rng.choice(top, size=int(rng.integers(1, 100)))]
        for repeat, frequency, presence in [(1.1, 0, 0), (1.3, 0.5, 0), (0.8, 0, 0.7), (1.0, -0.5, 0), (1.5, 0, -1)]:
            params = SamplingParams(
                temperature=0,
                repetition_penalty=repeat,
                frequency_penalty=frequency,
                presence_penalty=presence,
            )
            sampler = Sampler(llama_cpp, n_vocab, params, seed=trial)
            assert sampler.argmax
            for token in reply:
                llama_cpp.llama_sampler_accept(sampler.chain, token)
            buffer[:] = logits
            chains = sampler.sample(llm._ctx.ctx, -1)
            ours = sampler.greedy(logits.copy(), reply)
            sampler.close()
            assert ours == chains, (trial, repeat, frequency, presence)
            changed += ours != int(logits.argmax())
            cases += 1
    assert changed > cases // 4  # the penalties did decide
    both = SamplingParams(temperature=0, frequency_penalty=0.5, presence_penalty=0.5)
    assert not Sampler(llama_cpp, n_vocab, both, seed=1).argmax  # picked by the chain
