from __future__ import annotations

from typing import Any

from django import forms

from inference import ModelSpec, SamplingParams

# name: (label, min, max, step); max None = bounded per model (max_tokens).
SLIDERS: dict[str, tuple[str, float, float | None, float]] = {
    "temperature": ("Temperature", 0.0, 2.0, 0.05),
    "top_p": ("Top P", 0.0, 1.0, 0.01),
    "top_k": ("Top K", 0, 200, 1),
    "max_tokens": ("Max tokens", 1, None, 1),
    "presence_penalty": ("Presence penalty", -2.0, 2.0, 0.05),
    "frequency_penalty": ("Frequency penalty", -2.0, 2.0, 0.05),
    "repetition_penalty": ("Repetition penalty", 0.5, 2.0, 0.01),
}
INTEGER_PARAMS = ("top_k", "max_tokens")
BASE = SamplingParams()


class SamplingForm(forms.Form):
    """The Advanced Parameters panel. Out-of-range values are refused with a message, never clamped."""

    seed = forms.IntegerField(
        label="Seed", required=False, min_value=0, max_value=2**32 - 1, help_text="Blank: random."
    )
    stop = forms.CharField(
        label="Stop sequences",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="One stop sequence per line (up to 4).",
    )

    def __init__(self, *args: Any, spec: ModelSpec, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spec = spec
        for name, (label, low, high, step) in SLIDERS.items():
            if name == "max_tokens":
                high = spec.n_ctx or 4096
            field_class = forms.IntegerField if name in INTEGER_PARAMS else forms.FloatField
            default = spec.defaults.get(name, getattr(BASE, name))
            self.fields[name] = field_class(label=label, min_value=low, max_value=high, initial=default, required=False)
            self.fields[name].widget.attrs.update({"step": step, "min": low, "max": high})
            self.fields[name].slider = (low, high, step)  # type: ignore[attr-defined]
        self.order_fields([*SLIDERS, "seed", "stop"])

    def clean_stop(self) -> list[str]:
        lines = [line for line in self.cleaned_data["stop"].splitlines() if line]
        if len(lines) > 4:
            raise forms.ValidationError("At most 4 stop sequences.")
        return lines

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        # Blank number boxes fall back to the model's defaults.
        for name in SLIDERS:
            if name in data and data[name] is None:
                data[name] = self.fields[name].initial
        return data

    def param_errors(self) -> str:
        """One line naming each refused parameter, for a WebSocket error frame."""
        return "; ".join(
            f"{self.fields[name].label if name in self.fields else name}: {' '.join(errors)}"
            for name, errors in self.errors.items()
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
