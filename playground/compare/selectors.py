"""What the Compare page offers: the chat models, each with its default sampling values and context."""

from __future__ import annotations

import json
from dataclasses import dataclass

from inference import ModelSpec
from playground import engines
from playground.catalog.forms import SamplingForm
from playground.compare.forms import MAX_PANES, MIN_PANES


@dataclass(frozen=True)
class CompareModel:
    id: str
    name: str
    n_ctx: int | None
    defaults_json: str  # every panel field's default for this model, for the pane's placeholders


@dataclass(frozen=True)
class PaneContext:
    index: int
    model_id: str
    form: SamplingForm  # the panel's fields (labels, ranges) with the selected model's defaults as placeholders
    shown: bool


def _defaults(spec: ModelSpec) -> dict[str, object]:
    form = SamplingForm(spec=spec)
    return {name: form.fields[name].initial for name in form.fields if form.fields[name].initial is not None}


def compare_models() -> list[CompareModel]:
    """Every chat (text-to-text) model in the catalog, in catalog order."""
    specs = [spec for spec in engines.get_pool().specs.values() if spec.task == "text-to-text"]
    return [
        CompareModel(id=spec.id, name=spec.name, n_ctx=spec.n_ctx, defaults_json=json.dumps(_defaults(spec)))
        for spec in specs
    ]


def compare_panes(*, models: list[CompareModel], shown: int = MIN_PANES) -> list[PaneContext]:
    """MAX_PANES panes, the first `shown` of them visible; pane i starts on the i-th chat model (round robin)."""
    pool = engines.get_pool()
    panes = []
    for index in range(MAX_PANES):
        model = models[index % len(models)]
        form = SamplingForm(spec=pool.spec(model.id), prefix=f"pane-{index}")
        panes.append(PaneContext(index=index, model_id=model.id, form=form, shown=index < shown))
    return panes
