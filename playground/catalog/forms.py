from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms

from inference import ModelSpec, SamplingParams
from inference.types import MAX_STOP_SEQUENCES, RANGES, InvalidParameterError, check_stop
from playground.contract.errors import Problem

# The Advanced Parameters panel's sliders: name -> label. Their ranges and steps come from RANGES.
SLIDERS: dict[str, str] = {
    "temperature": "Temperature",
    "top_p": "Top P",
    "top_k": "Top K",
    "min_p": "Min P",
    "max_tokens": "Max tokens",
    "presence_penalty": "Presence penalty",
    "frequency_penalty": "Frequency penalty",
    "repetition_penalty": "Repetition penalty",
}
BASE = SamplingParams()
# Every field of the panel, as a reply's saved parameters (Message.params), a preset and the socket name them.
PANEL_FIELDS = (*SLIDERS, "seed", "stop")


def _range_validator(name: str, high: float | None) -> Any:
    """Refuse a value outside RANGES with the same message every API route gives."""

    def validate(value: float | int) -> None:
        try:
            RANGES[name].check(value, high=high)
        except InvalidParameterError as exc:
            raise forms.ValidationError(str(exc), code="invalid_parameter") from None

    return validate


class SamplingForm(forms.Form):
    """The Advanced Parameters panel. Out-of-range values are refused with a message, never clamped."""

    seed = forms.IntegerField(label="Seed", required=False, help_text="Blank: random.")
    stop = forms.CharField(
        label="Stop sequences",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=f"One stop sequence per line (up to {MAX_STOP_SEQUENCES}).",
    )

    def __init__(self, *args: Any, spec: ModelSpec, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spec = spec
        for name, label in SLIDERS.items():
            range_ = RANGES[name]
            high = spec.n_ctx or 4096 if name == "max_tokens" else range_.high
            assert high is not None  # every slider ends somewhere
            low = range_.low + range_.step if range_.low_open else range_.low
            field_class = forms.IntegerField if range_.kind == "integer" else forms.FloatField
            default = spec.defaults.get(name, getattr(BASE, name))
            field = field_class(label=label, initial=default, required=False, help_text=range_.description)
            field.validators.append(_range_validator(name, high))
            field.slider = (low, range_.slider_high or high, range_.step)  # type: ignore[attr-defined]
            field.box = (low, high, range_.step)  # type: ignore[attr-defined]  # the number box takes the range
            self.fields[name] = field
        self.fields["seed"].validators.append(_range_validator("seed", None))
        self.order_fields([*SLIDERS, "seed", "stop"])

    def clean_stop(self) -> list[str]:
        lines = [line for line in self.cleaned_data["stop"].splitlines() if line]
        try:
            return list(check_stop(lines))
        except InvalidParameterError as exc:
            raise forms.ValidationError(str(exc), code="invalid_parameter") from None

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        # Blank number boxes fall back to the model's defaults.
        for name in SLIDERS:
            if name in data and data[name] is None:
                data[name] = self.fields[name].initial
        return data

    def problem(self) -> Problem:
        """The first refused parameter as the Problem every surface reports (the socket's error frame)."""
        name, errors = next(iter(self.errors.items()))
        error = errors.as_data()[0]
        message = " ".join(error.messages)
        if error.code == "invalid_parameter":
            return Problem("invalid_parameter", message, param=name)
        # Django's own refusal: a value that is not a number at all
        integer = name not in RANGES or RANGES[name].kind == "integer"
        shown = repr(self.data.get(name))
        return Problem(
            "invalid_type", f"{name} must be {'an integer' if integer else 'a number'} (got {shown})", param=name
        )

    def to_params(self) -> SamplingParams:
        data = self.cleaned_data
        return SamplingParams(
            **{name: data[name] for name in SLIDERS},
            seed=data.get("seed"),
            stop=tuple(data.get("stop") or ()),
        )

    def as_query(self) -> dict[str, Any]:
        """The parameter values as sent by clients (for Get Code)."""
        data = (
            self.cleaned_data if self.is_bound and self.is_valid() else {n: f.initial for n, f in self.fields.items()}
        )
        return {
            **{name: data.get(name) for name in SLIDERS},
            "seed": data.get("seed"),
            "stop": data.get("stop") or [],
        }


def panel_params(values: Mapping[str, Any]) -> dict[str, Any]:
    """The panel's fields out of saved parameters (a reply's Message.params also holds other sampler fields)."""
    return {name: values[name] for name in PANEL_FIELDS if name in values}


def panel_initial(spec: ModelSpec, params: Mapping[str, Any]) -> dict[str, Any]:
    """Saved parameters as the panel's values for `spec`: each one this model accepts (a value out of its range,
    e.g. max tokens past a smaller context, is left to the catalog's default); stop as one sequence a line."""
    data: dict[str, Any] = {}
    for name, value in panel_params(params).items():
        if name == "stop":
            data[name] = "\n".join(str(s) for s in value) if isinstance(value, list | tuple) else str(value or "")
        else:
            data[name] = value
    form = SamplingForm({k: "" if v is None else v for k, v in data.items()}, spec=spec)
    form.is_valid()
    return {name: value for name, value in data.items() if name not in form.errors}


def panel_defaults(spec: ModelSpec) -> dict[str, Any]:
    """The panel's values with nothing saved: the model's catalog defaults (seed and stop blank)."""
    form = SamplingForm(spec=spec)
    return {name: "" if field.initial is None else field.initial for name, field in form.fields.items()}
