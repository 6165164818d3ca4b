"""The GPU check: build llama-cpp-python with CUDA, run the real-model engine tests on the GPU, and measure.

Made for a lent GPU machine (a few minutes of GPU time, no package registry), in calls made back to back:

    # here, first: the pinned llama-cpp-python source, trimmed to fit the transfer (~15 MB), in an ignored folder
    .venv/bin/python bench/gpu_check.py pack --out .gpucheck/src     # then carry .gpucheck
    # 1st call: start the CUDA build in the background (~4.5 min on 16 cores); --llama-bench also builds
    # llama.cpp's own llama-bench from the same vendored source, in parallel
    setsid python3 bench/gpu_check.py build --src SDIST_DIR --out /tmp/gpucheck --llama-bench \\
        > /tmp/gpucheck.log 2>&1 < /dev/null &
    # next call(s): wait for the build, install it, run the tests on the GPU, then measure
    python3 bench/gpu_check.py measure --build /tmp/gpucheck --models-dir var/models

    .venv/bin/python bench/gpu_check.py measure --device cpu   # the same figures on this machine's CPU

SDIST_DIR is llama-cpp-python's source (the version requirements.txt pins), trimmed to fit the transfer:
vendor/llama.cpp/{models,docs,tests,examples,.git} can go. `measure` runs each configuration in its own
process, so a crash loses one line, not the rest. It prints, for SmolLM2-135M-Instruct (greedy, --tokens):
- llama.cpp's own llama-bench tg (when built) and a bare llama_decode loop (llama-bench's method: one
  token per decode, no sampling) through the same library our engines load;
- a raw llama-cpp-python ``Llama.generate`` loop;
- our serialized engine and our batched engine, single stream: tokens/s and time to first token;
- our batched engine at 4, 8 and 16 concurrent streams: aggregate tokens/s;
- whisper-base's real-time factor on the device (or the reason it fell back to the CPU).
Ratios are against the raw loop measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inference.buildcheck import read_cpu, variants  # noqa: E402

SMOLLM2 = "smollm2-135m-instruct.Q4_1.gguf"
PROMPT = "Write a long story about a dragon who learns to cook."
CONFIGS = ("llama-bench", "decode-loop", "raw", "serialized", "batched-1", "batched-4", "batched-8", "batched-16")


def sh(command: list[str], **kwargs: Any) -> None:
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True, **kwargs)


# --- pack and build -----------------------------------------------------------------------------------------------


# What a build never reads: git data, models, docs, tests, examples, the server's web UI, other GPU backends.
TRIM = (".git", "examples", "docs", "tests") + tuple(
    f"vendor/llama.cpp/{name}"
    for name in ("models", "docs", "tests", "examples", ".git", "media", "gguf-py", "benches", "tools/ui")
    + tuple(f"ggml/src/ggml-{b}" for b in ("hexagon", "sycl", "vulkan", "opencl", "cann", "musa", "webgpu", "zdnn"))
)


def pack(args: argparse.Namespace) -> None:
    """The pinned llama-cpp-python source, without what a build does not read."""
    import shutil
    import tarfile

    from inference.buildcheck import WheelInstaller, cache_dir, pinned_version

    version = pinned_version()
    installer = WheelInstaller(
        python=sys.executable, version=version, cpu=read_cpu(), gpu="", cache=cache_dir(), say=print
    )
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(installer.sdist()) as tar:
        tar.extractall(out.parent, filter="data")
    (out.parent / f"llama_cpp_python-{version}").rename(out)
    for name in TRIM:
        shutil.rmtree(out / name, ignore_errors=True)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"{out}: llama-cpp-python {version} source, {size / 2**20:.1f} MiB")


def build(args: argparse.Namespace) -> None:
    """The CUDA wheel (the set-up's own flags), its build tree kept; optionally llama-bench beside it."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    variant = variants(read_cpu(), gpu="gpu" if args.device == "cuda" else "")[0]  # the set-up's first choice
    cores = str(os.cpu_count() or 2)
    bench_proc = None
    if args.llama_bench:
        source = Path(args.src) / "vendor" / "llama.cpp"
        flags = [
            "-DLLAMA_CURL=OFF",
            "-DLLAMA_BUILD_TESTS=OFF",
            "-DLLAMA_BUILD_EXAMPLES=OFF",
            "-DLLAMA_BUILD_SERVER=OFF",
        ]
        configure = ["cmake", "-S", str(source), "-B", str(out / "llama-bench-build"), *variant.cmake_args.split()]
        sh([*configure, *flags, "-DCMAKE_BUILD_TYPE=Release"])
        half = str(max(1, int(cores) // 2))
        target = ["cmake", "--build", str(out / "llama-bench-build"), "--target", "llama-bench", "-j", half]
        bench_proc = subprocess.Popen(target)
        cores = half
    env = {**os.environ, "CMAKE_ARGS": variant.cmake_args, "CMAKE_BUILD_PARALLEL_LEVEL": cores}
    # Offline, pip cannot fetch the build backend: use the installed one when there is one.
    no_isolation = ["--no-build-isolation"] if _has("scikit_build_core") else []
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", *no_isolation]
    command += ["-w", str(out / "wheel"), "--config-settings", f"build-dir={out / 'build'}", str(args.src)]
    started = time.monotonic()
    sh(command, env=env)
    print(f"wheel built in {time.monotonic() - started:.0f} s ({variant.name}: {variant.cmake_args})", flush=True)
    if bench_proc is not None and bench_proc.wait() != 0:
        print("llama-bench did not build", flush=True)
    (out / "done").write_text(variant.cmake_args)


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


# --- one configuration, in its own process ----------------------------------------------------------------------


def _chat_stream(engine: Any, params: Any, prompt: str = PROMPT) -> tuple[float, float, int]:
    """(time to first token, tokens/s after the first, tokens) for one streamed chat."""
    from bench.engine import timed_stream
    from inference.types import ChatMessage

    started = time.perf_counter()
    return timed_stream(engine.chat([ChatMessage("user", prompt)], params), started)


def one(args: argparse.Namespace) -> dict[str, Any]:
    from inference.types import SamplingParams

    gpu = args.device == "cuda"
    gguf = Path(args.models_dir) / SMOLLM2
    params = SamplingParams(temperature=0.0, top_k=0, top_p=1.0, max_tokens=args.tokens, seed=1)
    config = args.config
    if config == "llama-bench":
        binary = Path(args.build or "/nonexistent") / "llama-bench-build" / "bin" / "llama-bench"
        if not binary.exists():
            return {"skipped": f"no {binary}"}
        command = [
            str(binary),
            "-m",
            str(gguf),
            "-p",
            "0",
            "-n",
            str(args.tokens),
            "-r",
            str(args.rounds),
            "-o",
            "json",
        ]
        command += ["-ngl", "99" if gpu else "0", "-t", str(args.threads)]
        rows = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
        return {"tok_s": rows[0]["avg_ts"]}
    if config in ("decode-loop", "raw"):
        from inference.text import LlamaTextEngine
        from inference.types import ChatMessage

        # The bare Llama object our serialized engine wraps, and the same chat prompt's tokens.
        engine = LlamaTextEngine(path=gguf, n_ctx=2048, threads=args.threads, gpu=gpu)
        tokens = engine.chat_prompt_tokens([ChatMessage("user", PROMPT)])
        rates = []
        for n in range(args.rounds + 1):
            if config == "raw":
                from bench.engine import raw_round

                _, rate, _ = raw_round(engine.llm, tokens, params)
            else:
                rate = _decode_loop(engine.llm, tokens, args.tokens)
            if n:
                rates.append(rate)
        return {"tok_s": statistics.median(rates)}
    if config == "serialized":
        from inference.text import LlamaTextEngine

        engine = LlamaTextEngine(path=gguf, n_ctx=2048, threads=args.threads, gpu=gpu)
        runs = [_chat_stream(engine, params) for _ in range(args.rounds + 1)][1:]
        return {"ttft_ms": statistics.median(r[0] for r in runs) * 1000, "tok_s": statistics.median(r[1] for r in runs)}
    streams = int(config.split("-")[1])
    from inference.batching import BatchedTextEngine

    engine = BatchedTextEngine(path=gguf, n_ctx=1024, threads=args.threads, slots=16, gpu=gpu)
    _chat_stream(engine, params)  # warm-up
    if streams == 1:
        runs = [_chat_stream(engine, params) for _ in range(args.rounds)]
        return {"ttft_ms": statistics.median(r[0] for r in runs) * 1000, "tok_s": statistics.median(r[1] for r in runs)}
    totals: list[int] = []

    def stream(i: int) -> None:
        totals.append(_chat_stream(engine, params, f"{PROMPT} Story number {i}.")[2])

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(streams)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"aggregate_tok_s": sum(totals) / (time.perf_counter() - started), "tokens": sum(totals)}


def _decode_loop(llm: Any, prompt: list[int], n: int) -> float:
    """llama-bench's tg method through the library our engines load: decode one token at a time, no sampling."""
    import llama_cpp

    ctx = llm._ctx.ctx
    llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(ctx), True)
    batch = llama_cpp.llama_batch_get_one((llama_cpp.llama_token * len(prompt))(*prompt), len(prompt))
    llama_cpp.llama_decode(ctx, batch)
    token = (llama_cpp.llama_token * 1)(prompt[-1])
    started = time.perf_counter()
    for _ in range(n):
        llama_cpp.llama_decode(ctx, llama_cpp.llama_batch_get_one(token, 1))
    llama_cpp.llama_synchronize(ctx)
    return n / (time.perf_counter() - started)


def whisper(args: argparse.Namespace) -> dict[str, Any]:
    from inference import decide_device, load_catalog
    from inference.pool import build_engine, load_on_device

    specs = {s.id: s for s in load_catalog([ROOT / "playground" / "models.toml"], models_dir=Path(args.models_dir))}
    spec = specs["whisper-base"]
    loaded = load_on_device(spec, decide_device(args.device), args.threads, build_engine)
    audio = (ROOT / "tests" / "fixtures" / "speech_es.ogg").read_bytes()
    times = []
    for _ in range(args.rounds + 1):
        started = time.perf_counter()
        result = loaded.engine.transcribe_all(audio)
        times.append(time.perf_counter() - started)
    return {
        "device": loaded.device,
        "note": loaded.note,
        "rtf": statistics.median(times[1:]) / result.usage.audio_seconds,
    }


# --- measure: tests, then every configuration -------------------------------------------------------------------


def measure(args: argparse.Namespace) -> None:
    if args.build and not args.keep_installed:
        done = Path(args.build) / "done"
        deadline = time.monotonic() + args.wait
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(5)
        if not done.exists():
            sys.exit(f"the build in {args.build} has not finished after {args.wait} s")
        wheels = sorted((Path(args.build) / "wheel").glob("*.whl"))
        target = ["--target", args.pip_target] if args.pip_target else []
        sh([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", *target, str(wheels[0])])
    env = {**os.environ, "PLAYGROUND_TEST_DEVICE": args.device, "PYTHONUNBUFFERED": "1"}
    if not args.no_tests:
        tests = ["tests/inference/test_text_real.py", "tests/inference/test_batching_real.py"]
        tests += ["tests/inference/test_embeddings_real.py", "tests/inference/test_speech_real.py"]
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests], cwd=ROOT, env=env)
    print(f"\nSmolLM2-135M-Instruct, device={args.device}, {args.tokens} tokens, greedy, median of {args.rounds}")
    results: dict[str, dict[str, Any]] = {}
    base = [sys.executable, __file__, "one", "--device", args.device, "--models-dir", args.models_dir]
    base += ["--tokens", str(args.tokens), "--rounds", str(args.rounds), "--threads", str(args.threads)]
    base += ["--build", args.build or ""]
    for config in (*CONFIGS, "whisper"):
        run = subprocess.run([*base, "--config", config], capture_output=True, text=True, env=env, timeout=600)
        lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
        results[config] = json.loads(lines[-1]) if run.returncode == 0 and lines else {"failed": _tail(run)}
        print(f"  {config:12} {_show(results[config], results.get('raw', {}).get('tok_s'))}", flush=True)
    # Issue 19's checks: where a scheduler step's time goes (8 and 16 streams), and whether replies depend on what
    # else decodes.
    device = ["--gpu"] if args.device != "cpu" else ["--threads", str(args.threads)]
    scheduler = ["--device", args.device, "--threads", str(args.threads), "--streams", "1,8,16", "--slots", "16"]
    scripts = {
        "scheduler.py": [*scheduler, "--kv-mb", "4096", "--max-tokens", str(args.tokens)],
        "reproducibility.py": device,
    }
    for script, extra in scripts.items():
        command = [sys.executable, str(ROOT / "bench" / script), *extra]
        run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
        shown = [line for line in run.stdout.splitlines() if not line.startswith(("llama", "load", "print_info"))]
        print(f"\n{script}:", *(shown or [_tail(run)]), sep="\n  ", flush=True)


def _tail(run: subprocess.CompletedProcess[str]) -> str:
    lines = (run.stderr or run.stdout).strip().splitlines()
    return f"exit {run.returncode}: {lines[-1] if lines else ''}"


def _show(result: dict[str, Any], raw: float | None) -> str:
    parts = []
    for key, value in result.items():
        parts.append(f"{key}={value:.3f}" if isinstance(value, float) else f"{key}={value}")
    rate = result.get("tok_s") or result.get("aggregate_tok_s")
    if raw and rate:
        parts.append(f"vs raw {rate / raw:.2f}x")
    return "  ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("pack").add_argument("--out", default=str(ROOT / ".gpucheck" / "src"))
    b = sub.add_parser("build")
    b.add_argument("--src", required=True, help="llama-cpp-python's source folder (the pinned version)")
    b.add_argument("--out", default="/tmp/gpucheck")
    b.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    b.add_argument("--llama-bench", action="store_true", help="also build llama.cpp's llama-bench")
    for name in ("measure", "one"):
        p = sub.add_parser(name)
        p.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
        p.add_argument("--models-dir", default=str(ROOT / "var" / "models"))
        p.add_argument("--build", default="", help="the build step's --out (measure installs its wheel)")
        p.add_argument("--tokens", type=int, default=128)
        p.add_argument("--rounds", type=int, default=3)
        p.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    m = sub.choices["measure"]
    m.add_argument("--wait", type=int, default=420, help="seconds to wait for the build to finish")
    m.add_argument("--no-tests", action="store_true")
    m.add_argument("--keep-installed", action="store_true", help="use the installed llama-cpp-python, not the build's")
    m.add_argument("--pip-target", default="", help="install the wheel into this folder (on PYTHONPATH)")
    sub.choices["one"].add_argument("--config", required=True, choices=(*CONFIGS, "whisper"))
    args = parser.parse_args()
    if args.command == "pack":
        pack(args)
    elif args.command == "build":
        build(args)
    elif args.command == "measure":
        measure(args)
    else:
        result = whisper(args) if args.config == "whisper" else one(args)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
