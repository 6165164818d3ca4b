"""Read-only views of the catalog joined with what the engines report and what the server measured."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from inference import ModelSpec
from playground import engines
from playground.catalog.models import ModelStats
from playground.catalog.pricing import price_summary

# The catalog's filter groups: a completion model is text in, text out too.
TASK_FILTERS = {
    "text-to-text": ("Text-to-Text", ("text-to-text", "text-completion")),
    "speech-to-text": ("Speech-to-Text", ("speech-to-text",)),
    "embeddings": ("Embeddings", ("embeddings",)),
    "text-to-speech": ("Text-to-Speech", ("text-to-speech",)),
}
TASK_LABELS = {
    "text-to-text": "Text-to-Text (chat)",
    "text-completion": "Text-to-Text (completion)",
    "speech-to-text": "Speech-to-Text",
    "embeddings": "Embeddings",
    "text-to-speech": "Text-to-Speech",
}


@dataclass(frozen=True)
class ModelRow:
    spec: ModelSpec
    state: str
    device: str
    note: str
    device_reason: str
    error: str
    waiting: int
    stats: ModelStats | None = None
    upstreams: list[dict[str, Any]] = field(default_factory=list)  # a remote model's servers (inference/remote.py)

    @property
    def state_label(self) -> str:
        return "weights missing" if not self.spec.weights_present else self.state.replace("_", " ")

    @property
    def task_label(self) -> str:
        return TASK_LABELS[self.spec.task]

    @property
    def price_summary(self) -> str:
        return price_summary(self.spec)


def model_list(*, task: str = "", query: str = "") -> list[ModelRow]:
    """Every catalog model (optionally one task group, names containing `query`), with state and speed."""
    pool = engines.get_pool()
    tasks = TASK_FILTERS[task][1] if task in TASK_FILTERS else None
    needle = query.strip().lower()
    stats = {s.model_id: s for s in ModelStats.objects.all()}
    return [
        ModelRow(
            pool.spec(s.id),
            s.state,
            s.device,
            s.note,
            s.device_reason,
            s.error,
            s.waiting,
            stats.get(s.id),
            s.upstreams,
        )
        for s in pool.status()
        if (tasks is None or s.task in tasks)
        and (not needle or needle in pool.spec(s.id).name.lower() or needle in s.id.lower())
    ]


def model_row(model_id: str) -> ModelRow:
    """One model's row; raises UnknownModelError for an id not in the catalog."""
    pool = engines.get_pool()
    spec = pool.spec(model_id)
    (status,) = [s for s in pool.status() if s.id == spec.id]
    stats = ModelStats.objects.filter(model_id=spec.id).first()
    return ModelRow(
        spec,
        status.state,
        status.device,
        status.note,
        status.device_reason,
        status.error,
        status.waiting,
        stats,
        status.upstreams,
    )


def text_model_choices(task: str = "text-to-text") -> list[tuple[str, str]]:
    pool = engines.get_pool()
    return [(spec.id, spec.name) for spec in pool.specs.values() if spec.task == task]


def health_report() -> dict[str, Any]:
    pool = engines.get_pool()
    return {
        "status": "healthy",
        "device": {
            "device": pool.device.device,
            "reason": pool.device.reason,
            "requested": pool.device.requested,
            "engines": {
                engine: {"device": decision.device, "reason": decision.reason}
                for engine, decision in pool.device.engines.items()
            },
        },
        "models": [
            {
                "id": s.id,
                "task": s.task,
                "state": s.state,
                "device": s.device,
                "note": s.note,
                "device_reason": s.device_reason,
                "error": s.error,
                "waiting": s.waiting,
                "weights_present": s.weights_present,
                "upstreams": s.upstreams,
            }
            for s in pool.status()
        ],
    }
