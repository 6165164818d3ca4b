"""Our server against what users would run instead, in one run, same model and parameters (loopback only).

    .venv/bin/python bench/peers.py [--max-tokens 128] [--rounds 3] [--batch-slots 8]

Text (SmolLM2-135M-Instruct, greedy, the same prompt, the same thread count):
  raw      llama-cpp-python in this process: Llama.create_chat_completion(stream=True);
  sse      our /v1/chat/completions with stream=true (a live Daphne, `tests/livesite.py`);
  ws       our Playground WebSocket (/ws/chat/, logged in);
  peer     llama-cpp-python's own OpenAI-compatible server (python -m llama_cpp.server), streaming.
Single stream: tokens/s (tokens counted by tokenizing the streamed text with the model's vocabulary,
the same for all; timed from the first to the last piece) and time to first token, medians of
--rounds. Then 1, 4 and 8 concurrent streams, ours (sse) against the peer: aggregate tokens/s over the
wall time and p50/p95 time to first token. Speech: real-time factor (seconds of work per second of
audio) of our /v1/audio/transcriptions against faster-whisper called directly, on 20 s of Piper speech.
Goals: single stream >= 0.97 of raw and >= 1.0 of the peer; 8 streams aggregate >= 1.5 of the peer.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.livesite import PASSWORD, USERNAME, free_port, live_api_token, live_site  # noqa: E402

MODEL = "smollm2-135m-instruct"
GGUF = ROOT / "var" / "models" / "smollm2-135m-instruct.Q4_1.gguf"
WHISPER = ROOT / "var" / "models" / "whisper-tiny.en"
PROMPT = "Write a long story about a dragon who learns to cook."
SPEECH = (
    "The quick brown fox jumps over the lazy dog. A lighthouse keeper watched the ships pass by in the night, "
    "counting the lights on the water and writing each one down in a small green book. "
) * 2
THREADS = int(os.environ.get("PLAYGROUND_THREADS", os.cpu_count() or 2))

Result = tuple[float, float, str]  # (time to first token, seconds from first to last piece, text)


def sse_pieces(response: Any) -> Iterator[str]:
    """The text pieces of an OpenAI-style event stream (chat deltas or completion text), until [DONE]."""
    for raw in response:
        line = raw.decode().strip()
        if line == "data: [DONE]":
            return
        if line.startswith("data: "):
            choices = json.loads(line[6:]).get("choices") or []
            if choices:
                piece = choices[0].get("text") or (choices[0].get("delta") or {}).get("content")
                if piece:
                    yield piece


def sse_stream(port: int, path: str, body: dict, headers: dict[str, str]) -> Result:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    started = time.perf_counter()
    conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json", **headers})
    response = conn.getresponse()
    assert response.status == 200, response.read()[:300]
    first = last = 0.0
    text = ""
    for piece in sse_pieces(response):
        last = time.perf_counter()
        first = first or last
        text += piece
    conn.close()
    return first - started, last - first, text


_serial = iter(range(1, 10**9))


def prompt() -> str:
    """The prompt with a new number each time: no request reuses another's cached prompt (llama-cpp-python
    and its server keep the last prompt's KV cache; our engine resets it for reproducible seeds)."""
    return f"{PROMPT} (Story #{next(_serial)}.)"


def chat_body(max_tokens: int) -> dict:
    return {
        "model": MODEL,
        "stream": True,
        "max_tokens": max_tokens,
        "temperature": 0,
        "messages": [{"role": "user", "content": prompt()}],
    }


def raw_stream(llm: object, max_tokens: int) -> Result:
    started = time.perf_counter()
    first = last = 0.0
    text = ""
    for chunk in llm.create_chat_completion(  # type: ignore[attr-defined]
        messages=[{"role": "user", "content": prompt()}], stream=True, max_tokens=max_tokens, temperature=0
    ):
        piece = chunk["choices"][0]["delta"].get("content")
        if piece:
            last = time.perf_counter()
            first = first or last
            text += piece
    return first - started, last - first, text


def ws_session(base: str) -> str:
    import requests

    session = requests.Session()
    page = session.get(f"{base}/accounts/login/", timeout=30)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    session.post(
        f"{base}/accounts/login/",
        data={"username": USERNAME, "password": PASSWORD, "csrfmiddlewaretoken": csrf},
        headers={"Referer": f"{base}/accounts/login/"},
        timeout=30,
    )
    return "; ".join(f"{k}={v}" for k, v in session.cookies.items())


def ws_stream(base: str, cookie: str, max_tokens: int) -> Result:
    from websockets.sync.client import connect

    with connect(base.replace("http", "ws") + "/ws/chat/", additional_headers={"Cookie": cookie, "Origin": base}) as ws:
        started = time.perf_counter()
        frame = {
            "type": "generate",
            "mode": "chat",
            "model": MODEL,
            "conversation": None,
            "system": "",
            "content": prompt(),
            "params": {"temperature": 0, "max_tokens": max_tokens},
        }
        ws.send(json.dumps(frame))
        first = last = 0.0
        text = ""
        while True:
            message = json.loads(ws.recv(timeout=600))
            if message["type"] == "token":
                last = time.perf_counter()
                first = first or last
                text += message["text"]
            elif message["type"] in ("done", "error"):
                assert message["type"] == "done", message
                return first - started, last - first, text


def single(name: str, run: Callable[[], Result], count: Callable[[str], int], rounds: int) -> tuple[float, float]:
    rates, ttfts = [], []
    for _ in range(rounds):
        ttft, span, text = run()
        rates.append((count(text) - 1) / span)
        ttfts.append(ttft)
    rate, ttft = statistics.median(rates), statistics.median(ttfts)
    print(f"  {name:5} {rate:7.1f} tok/s   TTFT {ttft * 1000:6.1f} ms   ({count(text)} tokens)")
    return rate, ttft


def concurrent(run: Callable[[], Result], count: Callable[[str], int], streams: int) -> tuple[float, float, float]:
    results: list[Result] = []
    lock = threading.Lock()

    def one() -> None:
        result = run()
        with lock:
            results.append(result)

    started = time.perf_counter()
    threads = [threading.Thread(target=one) for _ in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    assert all(text for _, _, text in results), "a stream returned no text"
    tokens = sum(count(text) for _, _, text in results)
    ttfts = sorted(ttft for ttft, _, _ in results)
    p95 = ttfts[min(len(ttfts) - 1, round(0.95 * (len(ttfts) - 1)))]
    return tokens / wall, statistics.median(ttfts), p95


def start_peer(port: int, log: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(GGUF),
        "--n_ctx",
        "8192",
        "--n_threads",
        str(THREADS),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--interrupt_requests",
        "false",  # queue concurrent requests (its default cuts the running one off)
    ]
    proc = subprocess.Popen(command, stdout=open(log, "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115
    return wait_ready(proc, f"http://127.0.0.1:{port}/v1/models", log, "llama_cpp.server")


def wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path, name: str) -> subprocess.Popen[bytes]:
    """Wait until a server started as `proc` answers `url` (2 minutes at most)."""
    for _ in range(600):
        try:
            urllib.request.urlopen(url, timeout=2)
            return proc
        except OSError:
            if proc.poll() is not None:
                sys.exit(f"{name} exited: {log.read_text()[-2000:]}")
            time.sleep(0.2)
    sys.exit(f"{name} did not start")


def speech(base: str, token: str) -> None:
    from faster_whisper import WhisperModel

    request = urllib.request.Request(
        f"{base}/v1/audio/speech",
        data=json.dumps({"model": "piper-en-us-joe", "input": SPEECH, "voice": "default"}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    wav = urllib.request.urlopen(request, timeout=120).read()
    with wave.open(io.BytesIO(wav)) as w:
        seconds = w.getnframes() / w.getframerate()
    boundary = "peersboundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-tiny.en\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
            "Content-Type: audio/wav\r\n\r\n"
        ).encode()
        + wav
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {"Authorization": f"Bearer {token}", "Content-Type": f"multipart/form-data; boundary={boundary}"}
    model = WhisperModel(str(WHISPER), device="cpu", compute_type="int8", cpu_threads=THREADS, local_files_only=True)
    ours, raw = [], []
    for _ in range(3):
        started = time.perf_counter()
        urllib.request.urlopen(
            urllib.request.Request(f"{base}/v1/audio/transcriptions", body, headers), timeout=300
        ).read()
        ours.append((time.perf_counter() - started) / seconds)
        started = time.perf_counter()
        segments, _ = model.transcribe(io.BytesIO(wav), beam_size=5, language="en")
        list(segments)
        raw.append((time.perf_counter() - started) / seconds)
    o, r = statistics.median(ours), statistics.median(raw)
    print(f"speech-to-text on {seconds:.1f} s of audio (whisper-tiny.en, beam 5):")
    print(f"  raw faster-whisper RTF {r:.3f}, ours RTF {o:.3f}: ours/raw time {o / r:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-slots", default="8", help="our PLAYGROUND_BATCH_SLOTS (0: serialized)")
    args = parser.parse_args()
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError:
        sys.exit("llama_cpp.server needs its dependencies (requirements.txt pins them): run ./dev test once")
    from llama_cpp import Llama

    workdir = Path(tempfile.mkdtemp(prefix="bench-peers-"))
    llm = Llama(model_path=str(GGUF), n_ctx=8192, n_threads=THREADS, verbose=False)

    def count(text: str) -> int:
        return len(llm.tokenize(text.encode(), add_bos=False, special=False))

    peer_port = free_port()
    peer = start_peer(peer_port, workdir / "peer.log")
    try:
        env = {"PLAYGROUND_WARM_MODELS": "1", "PLAYGROUND_REQUEST_TIMEOUT": "600"}
        with live_site(workdir, **env, PLAYGROUND_BATCH_SLOTS=args.batch_slots) as base:
            port = int(base.rsplit(":", 1)[1])
            token = live_api_token(workdir)
            cookie = ws_session(base)
            auth = {"Authorization": f"Bearer {token}"}
            n = args.max_tokens

            def ours() -> Result:
                return sse_stream(port, "/v1/chat/completions", chat_body(n), auth)

            def theirs() -> Result:
                return sse_stream(peer_port, "/v1/chat/completions", chat_body(n), {})

            for run in (ours, theirs, lambda: raw_stream(llm, n)):
                run()  # warm-up
            mode = "serialized" if args.batch_slots in ("0", "1") else f"batched, {args.batch_slots} slots"
            print(f"single stream, {MODEL}, greedy, {n} max tokens, {THREADS} threads, ours {mode}:")
            raw_rate, _ = single("raw", lambda: raw_stream(llm, n), count, args.rounds)
            sse_rate, _ = single("sse", ours, count, args.rounds)
            ws_rate, _ = single("ws", lambda: ws_stream(base, cookie, n), count, args.rounds)
            peer_rate, _ = single("peer", theirs, count, args.rounds)
            print(
                f"  ours/raw: sse {sse_rate / raw_rate:.3f}, ws {ws_rate / raw_rate:.3f} (goal >= 0.97); "
                f"ours/peer: sse {sse_rate / peer_rate:.3f}, ws {ws_rate / peer_rate:.3f} (goal >= 1.0)"
            )
            print("concurrent streams (aggregate tok/s, TTFT p50/p95):")
            for streams in (1, 4, 8):
                a = concurrent(ours, count, streams)
                b = concurrent(theirs, count, streams)
                print(
                    f"  {streams}: ours {a[0]:6.1f} tok/s, TTFT {a[1] * 1000:6.0f}/{a[2] * 1000:6.0f} ms | "
                    f"peer {b[0]:6.1f} tok/s, TTFT {b[1] * 1000:6.0f}/{b[2] * 1000:6.0f} ms | "
                    f"ours/peer {a[0] / b[0]:.2f}"
                )
            speech(base, token)
    finally:
        peer.terminate()
        peer.wait(30)


if __name__ == "__main__":
    main()
