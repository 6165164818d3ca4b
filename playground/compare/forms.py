"""A compare frame's shared fields and its panes, checked as the chat socket checks a generate frame."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms

from inference import SamplingParams
from playground import serving
from playground.chat.forms import GenerateForm, sampling_form
from playground.contract.errors import Problem

MIN_PANES, MAX_PANES = 2, 4
_CHAT_FIELDS = GenerateForm.base_fields


class CompareForm(forms.Form):
    """The shared system prompt and message (the chat's own limits); the panes are checked one by one."""

    system = forms.CharField(required=False, strip=False, max_length=_CHAT_FIELDS["system"].max_length)  # type: ignore[attr-defined]
    content = forms.CharField(strip=False, max_length=_CHAT_FIELDS["content"].max_length)  # type: ignore[attr-defined]

    def clean_content(self) -> str:
        content = self.cleaned_data["content"]
        if not content.strip():
            raise forms.ValidationError("the message is empty")
        return content

    def problem(self) -> Problem:
        """The first refusal in the error vocabulary (the same code and param as ws/chat gives)."""
        name, errors = next(iter(self.errors.items()))
        return Problem("invalid_parameter", f"{name}: {' '.join(errors)}", param=name)


def panes_check(raw: object) -> list[Any]:
    """The frame's `panes`: a list of 2 to 4 entries (each is checked by `pane_parse`)."""
    if raw is None:
        raise Problem("missing_required_parameter", "panes: the panes to compare are required", param="panes")
    if not isinstance(raw, list):
        raise Problem("invalid_type", "panes must be a list of {model, params} objects", param="panes")
    if not MIN_PANES <= len(raw) <= MAX_PANES:
        raise Problem(
            "invalid_parameter", f"panes: compare {MIN_PANES} to {MAX_PANES} panes (got {len(raw)})", param="panes"
        )
    return raw


@dataclass(frozen=True)
class PaneRequest:
    """One pane's model and sampling values, checked."""

    model_id: str
    params: SamplingParams


def pane_parse(raw: object) -> PaneRequest:
    """A pane `{"model": id, "params": {...panel fields...}}`: a chat model, and parameters checked as the chat
    panel's are (blank: the model's default). Problem naming the field, as ws/chat names it."""
    if not isinstance(raw, dict):
        raise Problem("invalid_type", "a pane must be an object {model, params}", param="panes")
    spec = serving.model_for(model_id=raw.get("model"), tasks=("text-to-text",), where="the Compare view")
    form = sampling_form(model_id=spec.id, data=raw.get("params"))
    if not form.is_valid():
        raise form.problem()
    return PaneRequest(model_id=spec.id, params=form.to_params())
