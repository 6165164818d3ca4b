"""Does a reply depend on what else is decoding? The batched engine, SmolLM2, one run.

    .venv/bin/python bench/reproducibility.py [--threads N] [--targets 4] [--max-tokens 32] [--gpu]

For 0, 3 and 7 other requests beside it (unseeded, sampled, different prompts), each target request is decoded
together with them and compared with the same request decoded alone, for two kinds of target: seeded (temperature
0.8 with a seed: the README's promise) and greedy without a seed (temperature 0: no promise, shared batches).
Prints the fraction of identical replies per kind and crowd size. Goal: 100 % for seeded targets.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from inference.batching import BatchedTextEngine  # noqa: E402
from inference.types import ChatMessage, SamplingParams  # noqa: E402

GGUF = REPO / "var" / "models" / "smollm2-135m-instruct.Q4_1.gguf"
TARGETS = [
    "Describe a lighthouse at night.",
    "Explain why the sky is blue.",
    "Write a short poem about autumn leaves.",
    "What makes bread rise?",
    "Tell me about the history of the bicycle.",
    "How do bees communicate?",
]
OTHERS = [
    "List five fruits.",
    "Tell a joke about cats.",
    "What is the tallest mountain?",
    "Describe the ocean in one sentence.",
    "Name three planets.",
    "Why do leaves change colour?",
    "What is rain made of?",
]


def reply(engine: BatchedTextEngine, prompt: str, params: SamplingParams, out: dict[str, str], key: str) -> None:
    out[key] = "".join(c.text for c in engine.chat([ChatMessage("user", prompt)], params))


def together(engine: BatchedTextEngine, target: str, params: SamplingParams, others: int, max_tokens: int) -> str:
    out: dict[str, str] = {}
    threads = [threading.Thread(target=reply, args=(engine, target, params, out, "target"))]
    for n, prompt in enumerate(OTHERS[:others]):
        noise = SamplingParams(temperature=0.6 + 0.1 * n, max_tokens=max_tokens + 8 * n)
        threads.append(threading.Thread(target=reply, args=(engine, prompt, noise, out, f"other-{n}")))
    for thread in threads[1:]:  # the others first, so the target joins a running batch
        thread.start()
    threads[0].start()
    for thread in threads:
        thread.join(600)
    return out["target"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--targets", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--gpu", action="store_true", help="offload every layer (a CUDA build of llama-cpp-python)")
    args = parser.parse_args()
    engine = BatchedTextEngine(path=GGUF, n_ctx=1024, threads=args.threads, slots=8, gpu=args.gpu)
    kinds = {
        "seeded (temperature 0.8, seed 7)": SamplingParams(temperature=0.8, seed=7, max_tokens=args.max_tokens),
        "greedy, no seed (temperature 0)": SamplingParams(temperature=0.0, max_tokens=args.max_tokens),
    }
    where = "GPU" if args.gpu else f"{args.threads} threads"
    print(f"SmolLM2-135M, batched engine, 8 slots, {where}, {args.max_tokens} tokens per reply")
    for kind, params in kinds.items():
        solo = {t: together(engine, t, params, 0, args.max_tokens) for t in TARGETS[: args.targets]}
        for others in (0, 3, 7):
            same = sum(together(engine, t, params, others, args.max_tokens) == solo[t] for t in solo)
            print(f"{kind:34s} beside {others}: {same}/{len(solo)} identical to alone ({100 * same / len(solo):.0f} %)")


if __name__ == "__main__":
    main()
