from __future__ import annotations

from typing import Any

from django import forms

from inference import EngineError
from playground import engines, serving
from playground.catalog.forms import SamplingForm
from playground.chat.models import Conversation


class ConversationRenameForm(forms.ModelForm):
    class Meta:
        model = Conversation
        fields = ["title"]

    def clean_title(self) -> str:
        title = self.cleaned_data["title"].strip()
        if not title:
            raise forms.ValidationError("A title cannot be blank.")
        return title


class GenerateForm(forms.Form):
    """One `generate` frame from the socket (the parameters are checked by SamplingForm)."""

    mode = forms.ChoiceField(choices=[("chat", "chat"), ("completion", "completion")], required=False)
    model = forms.CharField(max_length=100)
    conversation = forms.IntegerField(required=False, min_value=1)
    system = forms.CharField(required=False, strip=False, max_length=20_000)
    content = forms.CharField(strip=False, max_length=100_000)

    def clean_mode(self) -> str:
        return self.cleaned_data["mode"] or "chat"

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        model_id, mode = data.get("model"), data.get("mode")
        if model_id and mode:
            task = "text-to-text" if mode == "chat" else "text-completion"
            try:
                serving.model_for(model_id=model_id, tasks=(task,), where=f"the {mode} Playground")
            except EngineError as exc:
                self.add_error("model", str(exc))
        return data


def sampling_form(*, model_id: str, data: Any) -> SamplingForm:
    """The panel's values as sent over the socket: a dict; stop may be a list of lines or one string."""
    values = dict(data) if isinstance(data, dict) else {}
    if isinstance(values.get("stop"), list):
        values["stop"] = "\n".join(str(line) for line in values["stop"])
    values = {k: ("" if v is None else v) for k, v in values.items()}
    return SamplingForm(values, spec=engines.get_pool().spec(model_id))
