"""Constrained decoding against unconstrained decoding: same model (SmolLM2-135M-Instruct), same prompt, one run.

    .venv/bin/python bench/grammar.py [--rounds 3] [--max-tokens 128] [--streams 8] [--threads 2] [--model ID]

Serialized (LlamaTextEngine, one request at a time) and batched (BatchedTextEngine, `--streams` requests decoding
together in one context), each: (a) unconstrained, (b) constrained by a JSON Schema's grammar with our lazy
sampler (the grammar checks the sampled token; when it refuses it, the pick is made again among the grammar's
tokens in a window of the 4,096 likeliest, or over the whole masked vocabulary: inference/text.py), (c) the same
without the window (every refused pick masks the whole vocabulary, as llama.cpp's server), (d) the grammar
applied first, masking the whole vocabulary before every pick (llama-cpp-python's placement), (e) the grammar of
a tool call awaiting its opening tag (tool_choice auto: `SamplingParams.grammar_trigger`; the reply is free text,
so this measures what waiting for the trigger costs a reply that makes no call). Greedy, and
sampled with SmolLM2's catalog defaults (temperature 0.7, top_p 0.9, top_k 40, repetition penalty 1.1).
`--model gemma-3-270m` runs the same on Gemma (262k tokens of vocabulary, five times SmolLM2's; the prompt as
a plain completion, since that model is served for completion).

The schema asks for an object holding a list of at least 60 short strings, so a constrained reply runs to
max_tokens like the unconstrained one (asked for a long list) does. Serialized: decode tokens/s of one stream,
from its first token to its last. Batched: completion tokens of all streams over the wall time. Rounds alternate
the modes so machine noise hits all alike; medians are printed with the ratios constrained / unconstrained
(goal: at least 0.8).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from inference import text as text_module  # noqa: E402
from inference.batching import BatchedTextEngine  # noqa: E402
from inference.catalog import load_catalog  # noqa: E402
from inference.grammar import gbnf_from_json_schema  # noqa: E402
from inference.text import WINDOW, LlamaTextEngine  # noqa: E402
from inference.tools import ToolFormat, call_grammar  # noqa: E402
from inference.types import ChatMessage, SamplingParams, TextChunk, Tool  # noqa: E402

MODEL = "smollm2-135m-instruct"
PROMPT = "List sixty ideas for a weekend, one short phrase each, as a JSON object with an 'ideas' list."
SCHEMA = {
    "type": "object",
    "properties": {"ideas": {"type": "array", "items": {"type": "string", "maxLength": 40}, "minItems": 60}},
    "required": ["ideas"],
}
MODES = ("unconstrained", "lazy", "lazy, no window", "grammar first", "tools auto")
TOOL = Tool("get_weather", "Get current temperature for a given location.", {"type": "object", "properties": {}})
NO_WINDOW = 10**9  # a window wider than any vocabulary: every refused pick masks the whole vocabulary
COMPLETION = False  # the model is served for plain completion (no chat template): the prompt goes as is


def params_for(mode: str, base: SamplingParams, grammar: str) -> SamplingParams:
    if mode == "tools auto":
        tools = call_grammar((TOOL,), ToolFormat(), parallel=True)
        return replace(base, grammar=tools, grammar_trigger=ToolFormat().open)
    return base if mode == "unconstrained" else replace(base, grammar=grammar)


def ask(engine: LlamaTextEngine, params: SamplingParams) -> Iterator[TextChunk]:
    if COMPLETION:
        return engine.complete(PROMPT + "\nJSON: ", params)
    return engine.chat([ChatMessage("user", PROMPT)], params)


def serialized_round(engine: LlamaTextEngine, params: SamplingParams) -> tuple[float, int]:
    """Decode tokens/s of one stream (first token to last), and its completion tokens."""
    first = last = 0.0
    tokens = 0
    for chunk in ask(engine, params):
        last = time.perf_counter()
        if not first:
            first = last
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    return (tokens - 1) / (last - first), tokens


def batched_round(engine: BatchedTextEngine, params: SamplingParams, streams: int) -> tuple[float, int]:
    """Completion tokens of `streams` requests at once over the wall time, and their total."""
    totals: list[int] = []

    def one(seed: int) -> None:
        for chunk in ask(engine, replace(params, seed=seed)):
            if chunk.usage is not None:
                totals.append(chunk.usage.completion_tokens)

    threads = [threading.Thread(target=one, args=(seed,)) for seed in range(streams)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(totals) / (time.perf_counter() - started), sum(totals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default=MODEL)
    args = parser.parse_args()

    global COMPLETION
    catalog = load_catalog([REPO / "playground" / "models.toml"], models_dir=REPO / "var" / "models")
    spec = {s.id: s for s in catalog}[args.model]
    COMPLETION = spec.task == "text-completion"
    grammar = gbnf_from_json_schema(SCHEMA)
    defaults = SamplingParams(
        temperature=0.7, top_p=0.9, top_k=40, repetition_penalty=1.1, seed=1, max_tokens=args.max_tokens
    )
    settings = {"greedy": SamplingParams(temperature=0, max_tokens=args.max_tokens), "sampled": defaults}
    print(f"{args.model}, {args.threads} threads, max_tokens {args.max_tokens}, {args.rounds} rounds (medians)")

    serial = LlamaTextEngine(path=spec.path, n_ctx=1024, threads=args.threads)
    batched = BatchedTextEngine(path=spec.path, n_ctx=1024, threads=args.threads, slots=args.streams)
    engines = {"serialized": serial, f"batched x{args.streams}": batched}
    for engine_name, engine in engines.items():
        for setting, base in settings.items():
            rates: dict[str, list[float]] = {mode: [] for mode in MODES}
            counts: dict[str, list[int]] = {mode: [] for mode in MODES}
            for _ in range(args.rounds):
                for mode in MODES:
                    engine.lazy_grammar = mode != "grammar first"
                    text_module.WINDOW = NO_WINDOW if mode == "lazy, no window" else WINDOW
                    params = params_for(mode, base, grammar)
                    if isinstance(engine, BatchedTextEngine):
                        rate, count = batched_round(engine, params, args.streams)
                    else:
                        rate, count = serialized_round(engine, params)
                    rates[mode].append(rate)
                    counts[mode].append(count)
            engine.lazy_grammar, text_module.WINDOW = True, WINDOW
            plain = statistics.median(rates["unconstrained"])
            cells = [
                f"{mode} {statistics.median(rates[mode]):6.1f} tok/s ({statistics.median(counts[mode])} tokens)"
                for mode in MODES
            ]
            ratios = " ".join(
                f"{mode}/unconstrained {statistics.median(rates[mode]) / plain:.2f}" for mode in MODES[1:]
            )
            print(f"  {engine_name:11} {setting:7} " + " | ".join(cells))
            print(f"  {'':11} {'':7} ratios: {ratios}")


if __name__ == "__main__":
    main()
