"""The llama.cpp text engine against the real default models (SmolLM2 chat, Gemma 3 completion)."""

from __future__ import annotations

import threading

import pytest

from inference.text import StopScanner
from inference.types import ChatMessage, ContextOverflowError, InvalidRequestError, SamplingParams, TextChunk

QUESTION = [
    ChatMessage("system", "You are a helpful assistant."),
    ChatMessage("user", "What is the capital of France?"),
]


def run(chunks: object) -> tuple[str, TextChunk]:
    chunks = list(chunks)  # type: ignore[call-overload]
    return "".join(c.text for c in chunks), chunks[-1]


def test_chat_answers_a_factual_question_at_temperature_zero(smollm2):
    text, last = run(smollm2.chat(QUESTION, SamplingParams(temperature=0, max_tokens=30)))
    assert "Paris" in text
    assert last.finish_reason == "stop"


def test_usage_is_counted_by_the_models_tokenizer(smollm2):
    text, last = run(smollm2.chat(QUESTION, SamplingParams(temperature=0, max_tokens=30)))
    assert last.usage.prompt_tokens == len(smollm2.chat_prompt_tokens(QUESTION))
    # Re-tokenising the reply gives the same count (plus nothing for the end-of-turn token).
    assert abs(last.usage.completion_tokens - smollm2.count_tokens(text)) <= 1


def test_same_seed_gives_same_text_and_other_seeds_differ(smollm2):
    def sample(seed: int) -> str:
        return run(smollm2.chat(QUESTION, SamplingParams(temperature=1.2, seed=seed, max_tokens=24)))[0]

    assert sample(7) == sample(7)
    assert len({sample(7), sample(8), sample(9)}) > 1


def test_max_tokens_gives_finish_reason_length(smollm2):
    params = SamplingParams(temperature=0, max_tokens=5)
    text, last = run(smollm2.chat([ChatMessage("user", "Write a long story about a dragon.")], params))
    assert last.finish_reason == "length"
    assert last.usage.completion_tokens == 5
    assert text


def test_stop_sequence_ends_the_text_before_it(smollm2):
    full, _ = run(smollm2.chat(QUESTION, SamplingParams(temperature=0, max_tokens=30)))
    stop = "Paris"
    text, last = run(smollm2.chat(QUESTION, SamplingParams(temperature=0, max_tokens=30, stop=(stop,))))
    assert last.finish_reason == "stop"
    assert last.stop_sequence == stop
    assert text == full[: full.index(stop)]
    assert stop not in text


def test_the_last_chunk_names_the_earliest_stop_sequence_in_the_text(smollm2):
    full, _ = run(smollm2.chat(QUESTION, SamplingParams(temperature=0, max_tokens=30)))
    first, later = full.split()[1], "Paris"
    assert 0 < full.index(first) < full.index(later)
    # Listed later, matched first: the text decides, not the order of the list.
    params = SamplingParams(temperature=0, max_tokens=30, stop=(later, first))
    text, last = run(smollm2.chat(QUESTION, params))
    assert (last.finish_reason, last.stop_sequence) == ("stop", first)
    assert text == full[: full.index(first)]


def test_end_of_text_and_max_tokens_name_no_stop_sequence(smollm2):
    full, _ = run(smollm2.chat(QUESTION, SamplingParams(temperature=0, max_tokens=30)))
    unseen = ("zebra",)
    text, last = run(smollm2.chat(QUESTION, SamplingParams(temperature=0, max_tokens=30, stop=unseen)))
    assert (last.finish_reason, last.stop_sequence) == ("stop", None)
    assert text == full
    text, last = run(smollm2.chat(QUESTION, SamplingParams(temperature=0, max_tokens=3, stop=unseen)))
    assert (last.finish_reason, last.stop_sequence) == ("length", None)
    assert text and full.startswith(text)


def test_end_of_text_keeps_text_held_back_for_a_stop_that_never_completed(smollm2):
    full, _ = run(smollm2.chat(QUESTION, SamplingParams(temperature=0, max_tokens=30)))
    # A stop sequence that starts with the reply's last characters: they are held back until the end.
    held = (full[-3:] + "zebra",)
    text, last = run(smollm2.chat(QUESTION, SamplingParams(temperature=0, max_tokens=30, stop=held)))
    assert (last.finish_reason, last.stop_sequence) == ("stop", None)
    assert text == full


def test_stop_scanner_names_the_stop_that_matched_across_pieces():
    scanner = StopScanner(["END", "STOP"])
    assert scanner.feed("abc EN") == ("abc ", None)  # "EN" may start "END": held back
    assert scanner.feed("D more") == ("", "END")
    assert StopScanner(["END", "STOP"]).feed("x STOP y END") == ("x ", "STOP")
    assert StopScanner([]).feed("anything") == ("anything", None)
    tie = StopScanner(["abc", "ab"])
    assert tie.feed("xabc") == ("x", "ab")  # same start: the shorter one, as the text ends there first
    unfinished = StopScanner(["END"])
    assert unfinished.feed("the EN") == ("the ", None)
    assert unfinished.flush() == "EN"


def test_stop_flag_from_another_thread_ends_generation_within_one_token(smollm2):
    stop = threading.Event()
    params = SamplingParams(temperature=0.8, seed=1, max_tokens=1000)
    chunks = smollm2.chat([ChatMessage("user", "Write a very long story about a dragon.")], params, stop)
    seen = 0
    last = None
    for chunk in chunks:
        if chunk.finish_reason is not None:
            last = chunk
            break
        seen += 1
        if seen == 10:
            setter = threading.Thread(target=stop.set)
            setter.start()
            setter.join()
    assert last is not None and last.finish_reason == "cancelled"
    assert seen <= 11
    assert last.usage.completion_tokens <= seen + 1


def test_prompt_that_cannot_fit_is_refused_before_any_work(smollm2):
    long_text = "word " * 9000  # > 8192 tokens
    with pytest.raises(ContextOverflowError, match="context"):
        smollm2.chat([ChatMessage("user", long_text)], SamplingParams(max_tokens=10))
    # The prompt fits alone but not with the requested max tokens.
    medium = "word " * 8000
    with pytest.raises(ContextOverflowError, match="max_tokens is 1000"):
        smollm2.chat([ChatMessage("user", medium)], SamplingParams(max_tokens=1000))


def test_every_sampling_parameter_reaches_the_sampler(smollm2):
    prompt = [ChatMessage("user", "What is the capital of France?")]

    def text(**kw: object) -> str:
        return run(smollm2.chat(prompt, SamplingParams(max_tokens=30, **kw)))[0]  # type: ignore[arg-type]

    greedy = text(temperature=0)
    # top_k=1 and top_p=0 leave one candidate: sampling at a high temperature becomes greedy.
    assert {text(temperature=1.5, seed=s, top_k=1) for s in (1, 2, 3)} == {greedy}
    assert {text(temperature=1.5, seed=s, top_p=0.0) for s in (1, 2, 3)} == {greedy}
    assert len({text(temperature=1.5, seed=s) for s in (1, 2, 3)}) > 1
    # The greedy answer loops ("la femme au roi, la femme au roi"); each penalty changes it.
    assert text(temperature=0, repetition_penalty=1.5) != greedy
    assert text(temperature=0, frequency_penalty=1.5) != greedy
    assert text(temperature=0, presence_penalty=1.5) != greedy
    assert text(temperature=0, min_p=0.0) == greedy


def test_out_of_range_parameters_are_refused_not_clamped():
    with pytest.raises(InvalidRequestError, match="temperature"):
        SamplingParams(temperature=2.5)
    with pytest.raises(InvalidRequestError, match="presence_penalty"):
        SamplingParams(presence_penalty=-3)
    with pytest.raises(InvalidRequestError, match="top_p"):
        SamplingParams(top_p=1.5)


def test_completion_model_continues_plain_text(gemma):
    assert not gemma.has_chat_template
    text, last = run(gemma.complete("Paris is the capital of", SamplingParams(temperature=0, max_tokens=8)))
    assert "France" in text
    assert last.usage.prompt_tokens == len(gemma.completion_prompt_tokens("Paris is the capital of"))
    assert last.usage.completion_tokens == 8 and last.finish_reason == "length"


def test_completion_model_refuses_chat(gemma):
    with pytest.raises(InvalidRequestError, match="no chat template"):
        gemma.chat(QUESTION, SamplingParams())


def test_a_long_conversation_leaves_out_its_oldest_exchanges_to_fit():
    """drop_oldest on the real template and tokenizer: the reply comes, and says how much was left out."""
    from inference.text import LlamaTextEngine
    from tests.inference.conftest import THREADS, catalog_spec

    engine = LlamaTextEngine(path=catalog_spec("smollm2-135m-instruct").path, n_ctx=256, threads=THREADS)
    turns = [ChatMessage("system", "You are brief.")]
    for n in range(12):
        turns += [
            ChatMessage("user", f"Tell me fact number {n} about the sea."),
            ChatMessage("assistant", "Waves. " * 8),
        ]
    turns.append(ChatMessage("user", "And one about rivers?"))
    params = SamplingParams(temperature=0, max_tokens=32)
    with pytest.raises(ContextOverflowError):
        engine.chat(turns, params)
    chunks = list(engine.chat(turns, params, overflow="drop_oldest"))
    last = chunks[-1]
    assert last.dropped_messages >= 2 and last.dropped_messages % 2 == 0  # whole exchanges
    assert last.usage.prompt_tokens + 32 <= 256
    assert engine.count_chat_tokens(turns) > 256


def test_continue_final_goes_on_with_the_last_reply_instead_of_starting_a_new_turn(smollm2):
    """The template up to the reply's turn, then the reply's text as it is: the model writes what comes next."""
    story = [ChatMessage("user", "Tell me a story about a dragon."), ChatMessage("assistant", "Once upon a time, a")]
    params = SamplingParams(temperature=0, max_tokens=8)
    chunks = list(smollm2.chat(story, params, continue_final=True))
    text = "".join(c.text for c in chunks)
    opened = smollm2.chat_prompt_tokens(story[:1])
    continued = smollm2.llm.tokenize(b"Once upon a time, a", add_bos=False, special=False)
    assert chunks[-1].usage.prompt_tokens == len(opened) + len(continued)
    assert text.strip() and not text.lstrip().startswith("Once upon a time")  # what comes next, not a new reply


def test_models_loaded_at_once_leave_the_processs_stdout_and_stderr_where_they_were():
    """The site warms its models at once; llama-cpp-python silences each load by pointing fds 1 and 2 at /dev/null
    and back, so overlapping loads could leave them there, and the server's log with them."""
    import os

    from inference.text import LlamaTextEngine
    from tests.inference.conftest import catalog_spec

    def where(fd: int) -> tuple[int, int]:
        status = os.fstat(fd)
        return status.st_dev, status.st_ino

    before = where(1), where(2)
    paths = [catalog_spec(m).path for m in ("smollm2-135m-instruct", "gemma-3-270m")] * 3
    start = threading.Barrier(len(paths))

    def load(path: object) -> None:
        start.wait()
        LlamaTextEngine(path=path, n_ctx=64, threads=1)  # type: ignore[arg-type]

    threads = [threading.Thread(target=load, args=(path,)) for path in paths]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert (where(1), where(2)) == before
