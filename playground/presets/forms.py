from __future__ import annotations

from typing import Any

from django import forms

from inference import ModelSpec, UnknownModelError
from playground import engines
from playground.serving import TEXT_TASKS


class PresetForm(forms.Form):
    """A preset as the Playground saves it: its name and system prompt, and the text model whose ranges the
    parameters (checked by SamplingForm) are held to."""

    name = forms.CharField(max_length=80, error_messages={"required": "Give the preset a name."})
    system_prompt = forms.CharField(required=False, strip=False, max_length=20_000)
    model = forms.CharField(max_length=100)

    def clean_model(self) -> ModelSpec:
        try:
            spec = engines.get_pool().spec(self.cleaned_data["model"])
        except UnknownModelError:
            raise forms.ValidationError("No such model.") from None
        if spec.task not in TEXT_TASKS:
            raise forms.ValidationError("Presets are for text models.")
        return spec

    def first_error(self) -> dict[str, Any]:
        name, errors = next(iter(self.errors.items()))
        return {"error": " ".join(errors), "param": name}
