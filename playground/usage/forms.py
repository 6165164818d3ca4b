"""The usage page's period picker and the pricing calculator's inputs."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.utils import timezone

from inference import ModelSpec

PERIOD_CHOICES = [("7", "Last 7 days"), ("30", "Last 30 days"), ("90", "Last 90 days")]
DEFAULT_DAYS = 30
MAX_SPAN_DAYS = 366  # one chart bar per day; a longer span belongs in the CSV export


class PeriodForm(forms.Form):
    """Either a preset (`period`) or explicit `start`/`end` dates; bad input falls back to the default period."""

    period = forms.ChoiceField(choices=PERIOD_CHOICES, required=False)
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict:
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start or end:
            end = end or timezone.localdate()
            start = start or end - timedelta(days=DEFAULT_DAYS - 1)
            if start > end:
                raise forms.ValidationError("The start date must not be after the end date.")
            if (end - start).days >= MAX_SPAN_DAYS:
                raise forms.ValidationError(f"Pick at most {MAX_SPAN_DAYS} days.")
            data["start"], data["end"] = start, end
        return data

    def span(self) -> tuple[date, date]:
        """The chosen (start, end), inclusive; the default period when the input is missing or invalid."""
        if self.is_bound and self.is_valid():
            data = self.cleaned_data
            if data.get("start") and data.get("end"):
                return data["start"], data["end"]
            days = int(data.get("period") or DEFAULT_DAYS)
        else:
            days = DEFAULT_DAYS
        end = timezone.localdate()
        return end - timedelta(days=days - 1), end


class CalculatorForm(forms.Form):
    """What a request would cost: the model plus whichever quantities its task is billed on."""

    model = forms.ChoiceField()
    prompt_tokens = forms.IntegerField(min_value=0, max_value=10**12, required=False, initial=1000)
    completion_tokens = forms.IntegerField(min_value=0, max_value=10**12, required=False, initial=1000)
    audio_minutes = forms.DecimalField(min_value=0, max_value=10**9, decimal_places=3, required=False, initial=1)
    characters = forms.IntegerField(min_value=0, max_value=10**12, required=False, initial=1000)

    def __init__(self, *args: Any, specs: dict[str, ModelSpec], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.specs = specs
        self.fields["model"].choices = [(spec.id, spec.name) for spec in specs.values()]

    def clean(self) -> dict:
        data = super().clean()
        for name in ("prompt_tokens", "completion_tokens", "characters"):
            data[name] = data.get(name) or 0
        data["audio_minutes"] = data.get("audio_minutes") or Decimal("0")
        return data

    def spec(self) -> ModelSpec:
        return self.specs[self.cleaned_data["model"]]
