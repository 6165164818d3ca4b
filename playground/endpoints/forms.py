from __future__ import annotations

from typing import Any

from django import forms

from playground import engines
from playground.endpoints.services import ROUTES_BY_TASK


class EndpointForm(forms.Form):
    name = forms.CharField(max_length=100)
    model = forms.ChoiceField(choices=())
    temperature = forms.FloatField(required=False, min_value=0, max_value=2)
    top_p = forms.FloatField(required=False, min_value=0, max_value=1)
    max_tokens = forms.IntegerField(required=False, min_value=1)
    system_prompt = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    requests_per_minute = forms.IntegerField(required=False, min_value=1, help_text="Empty: no limit of its own.")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        specs = engines.get_pool().specs.values()
        self.fields["model"].choices = [(s.id, f"{s.name} ({s.task})") for s in specs if s.task in ROUTES_BY_TASK]

    def params(self) -> dict[str, Any]:
        """The default sampling values set (empty ones left to the model's own defaults)."""
        names = ("temperature", "top_p", "max_tokens")
        return {name: self.cleaned_data[name] for name in names if self.cleaned_data[name] is not None}
