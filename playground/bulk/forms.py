from __future__ import annotations

from django import forms

from playground.bulk.models import Dataset


class UploadForm(forms.Form):
    """Pick a dataset or name a new one, and a CSV file."""

    dataset = forms.ModelChoiceField(queryset=Dataset.objects.none(), required=False, empty_label="New dataset…")
    new_name = forms.CharField(max_length=100, required=False, label="New dataset name")
    file = forms.FileField(
        label="CSV file",
        help_text="UTF-8 CSV with a column headed 'prompts' (other columns are ignored), at most 500 MB.",
    )

    def __init__(self, *args: object, project: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["dataset"].queryset = Dataset.objects.filter(project=project)

    def clean_new_name(self) -> str:
        return " ".join(self.cleaned_data["new_name"].split())

    def clean(self) -> dict[str, object]:
        data = super().clean()
        if not data.get("dataset") and not data.get("new_name"):
            self.add_error("new_name", "Choose a dataset or name a new one.")
        return data


class DatasetRenameForm(forms.Form):
    name = forms.CharField(max_length=100, label="Name")

    def clean_name(self) -> str:
        return " ".join(self.cleaned_data["name"].split())


class JobForm(forms.Form):
    """Which text model runs the dataset, and its system prompt; the sampling values come in a SamplingForm."""

    model = forms.ChoiceField(label="Model")
    system_prompt = forms.CharField(
        label="System prompt",
        required=False,
        max_length=20000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Sent before every prompt (a completion model gets it as the text before each prompt).",
    )

    def __init__(self, *args: object, models: list[tuple[str, str]], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = models
