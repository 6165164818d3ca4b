"""Prometheus metrics, fed by the ledger (so its totals and these counters always agree) and by the pool.

Counters live in this process; behind several web processes, scrape each one (or sum them).
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from typing import Any

from playground import engines

BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)  # seconds
COUNTERS = {
    "requests": ("playground_requests_total", "Inferences recorded in the usage ledger."),
    "errors": ("playground_errors_total", "Inferences that failed after starting."),
    "cancelled": (
        "playground_cancelled_total",
        "Inferences stopped before their end (Stop, a client gone, a timeout).",
    ),
    "prompt_tokens": ("playground_prompt_tokens_total", "Prompt (input) tokens counted by the model's tokenizer."),
    "completion_tokens": ("playground_completion_tokens_total", "Completion (output) tokens generated."),
    "audio_seconds": ("playground_audio_seconds_total", "Seconds of audio transcribed."),
    "characters": ("playground_characters_total", "Characters synthesised to speech."),
    "usage_write_failures": (
        "playground_usage_write_failures_total",
        "Usage records that could not be written after every retry (logged with their request id).",
    ),
}
HISTOGRAMS = {
    "ttft": ("playground_ttft_seconds", "Time to first token (or first segment)."),
    "latency": ("playground_latency_seconds", "Total time of an inference, queueing included."),
}

_lock = threading.Lock()
_counters: dict[tuple[str, str, str], float] = defaultdict(float)  # (counter, model, endpoint)
_histograms: dict[tuple[str, str, str], list[float]] = {}  # (histogram, model, endpoint) -> bucket counts + sum


def reset() -> None:
    with _lock:
        _counters.clear()
        _histograms.clear()


def _observe(name: str, model: str, endpoint: str, seconds: float) -> None:
    key = (name, model, endpoint)
    counts = _histograms.setdefault(key, [0.0] * (len(BUCKETS) + 2))  # buckets..., +Inf, sum
    counts[bisect.bisect_left(BUCKETS, seconds)] += 1
    counts[-1] += seconds


def usage_write_failed(*, model: str, endpoint: str) -> None:
    with _lock:
        _counters[("usage_write_failures", model, endpoint)] += 1


def usage_observe(record: Any) -> None:
    """Count one ledger record (called right after it is written)."""
    model, endpoint = record.model_id, record.endpoint
    with _lock:
        _counters[("requests", model, endpoint)] += 1
        if record.outcome == "error":
            _counters[("errors", model, endpoint)] += 1
        if record.outcome in ("cancelled", "timeout"):
            _counters[("cancelled", model, endpoint)] += 1
        _counters[("prompt_tokens", model, endpoint)] += record.prompt_tokens
        _counters[("completion_tokens", model, endpoint)] += record.completion_tokens
        _counters[("audio_seconds", model, endpoint)] += float(record.audio_seconds)
        _counters[("characters", model, endpoint)] += record.characters
        if record.ttft_ms is not None:
            _observe("ttft", model, endpoint, record.ttft_ms / 1000)
        _observe("latency", model, endpoint, record.latency_ms / 1000)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{key}="{_label(value)}"' for key, value in labels.items()) + "}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def metrics_render() -> str:
    """The Prometheus text exposition format (version 0.0.4)."""
    lines: list[str] = []
    with _lock:
        counters = dict(_counters)
        histograms = {key: list(value) for key, value in _histograms.items()}
    for short, (name, help_text) in COUNTERS.items():
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
        for (counter, model, endpoint), value in sorted(counters.items()):
            if counter == short:
                lines.append(f"{name}{_labels(model=model, endpoint=endpoint)} {_number(value)}")
    for short, (name, help_text) in HISTOGRAMS.items():
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
        for (histogram, model, endpoint), counts in sorted(histograms.items()):
            if histogram != short:
                continue
            cumulative = 0.0
            for bound, count in zip([*BUCKETS, float("inf")], counts[:-1], strict=True):
                cumulative += count
                le = "+Inf" if bound == float("inf") else repr(bound)
                lines.append(f"{name}_bucket{_labels(model=model, endpoint=endpoint, le=le)} {_number(cumulative)}")
            lines.append(f"{name}_sum{_labels(model=model, endpoint=endpoint)} {_number(counts[-1])}")
            lines.append(f"{name}_count{_labels(model=model, endpoint=endpoint)} {_number(cumulative)}")
    pool = engines.get_pool()
    status = pool.status()
    gauges = (
        ("playground_queue_depth", "Requests waiting in each model's queue.", lambda s: s.waiting),
        (
            "playground_in_flight",
            "Requests running on each model (up to its batch slots).",
            lambda s: pool.workers[s.id].running,
        ),
    )
    for name, help_text, gauge in gauges:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        lines += [f"{name}{_labels(model=s.id)} {gauge(s)}" for s in status]
    upstream_gauges = (
        ("playground_upstream_up", "1 while a remote model's upstream passes its health checks.", "state"),
        ("playground_upstream_in_flight", "Requests in flight at each upstream of a remote model.", "in_flight"),
        ("playground_upstream_latency_seconds", "A moving mean of each upstream's time to respond.", "latency_ms"),
        ("playground_upstream_requests", "Requests each upstream has taken (a counter).", "requests"),
        ("playground_upstream_failures", "Requests and health checks that failed at each upstream.", "failures"),
    )
    for name, help_text, key in upstream_gauges:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        for s in status:
            for upstream in s.upstreams:
                value = upstream[key]
                if key == "state":
                    value = int(value == "healthy")
                elif key == "latency_ms":
                    value = (value or 0) / 1000
                lines.append(f"{name}{_labels(model=s.id, upstream=upstream['url'])} {_number(value)}")
    lines += [
        "# HELP playground_model_state 1 for each model's current load state.",
        "# TYPE playground_model_state gauge",
    ]
    for s in status:
        for state in ("not_loaded", "loading", "loaded", "failed"):
            lines.append(f"playground_model_state{_labels(model=s.id, state=state)} {int(s.state == state)}")
    return "\n".join(lines) + "\n"
