"""Input for the studio Playgrounds, checked and tidied before it reaches a service."""

from __future__ import annotations

from typing import Any

from django import forms

from inference import ModelSpec
from inference.types import SPEECH_SPEED, InvalidParameterError
from playground.studio.selectors import WHISPER_LANGUAGES, stt_multilingual
from playground.studio.services import EMBEDDINGS_MAX_CHARACTERS, EMBEDDINGS_MAX_TEXTS, TTS_MAX_CHARACTERS


class TranscribeForm(forms.Form):
    """The JSON message that starts a transcription (the audio follows as a binary frame)."""

    task = forms.ChoiceField(
        choices=[("transcribe", "Transcribe"), ("translate", "Translate to English")], required=False
    )
    language = forms.CharField(required=False, max_length=8)

    def __init__(self, *args: Any, spec: ModelSpec, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spec = spec

    def clean_task(self) -> str:
        task = self.cleaned_data["task"] or "transcribe"
        if task == "translate" and not stt_multilingual(self.spec):
            raise forms.ValidationError("This model is English-only and cannot translate.")
        return task

    def clean_language(self) -> str:
        language = (self.cleaned_data["language"] or "").strip().lower()
        if not language:
            return ""
        if language not in WHISPER_LANGUAGES:
            raise forms.ValidationError(f"Unknown language code {language!r}.")
        if not stt_multilingual(self.spec) and language != "en":
            raise forms.ValidationError("This model is English-only; leave the language empty or pick English.")
        return language


class EmbeddingsForm(forms.Form):
    input = forms.CharField(
        widget=forms.Textarea,
        max_length=EMBEDDINGS_MAX_CHARACTERS,
        error_messages={"required": "Enter at least one text, one per line."},
    )

    def clean_input(self) -> list[str]:
        texts = [line.strip() for line in self.cleaned_data["input"].splitlines() if line.strip()]
        if not texts:
            raise forms.ValidationError("Enter at least one text, one per line.")
        if len(texts) > EMBEDDINGS_MAX_TEXTS:
            raise forms.ValidationError(f"That is {len(texts)} texts; the limit is {EMBEDDINGS_MAX_TEXTS}.")
        return texts


class SpeechForm(forms.Form):
    input = forms.CharField(
        widget=forms.Textarea,
        max_length=TTS_MAX_CHARACTERS,
        error_messages={"required": "Enter some text to speak."},
    )
    speed = forms.FloatField(required=False, error_messages={"invalid": f"speed must be {SPEECH_SPEED.text()}."})

    def clean_speed(self) -> float:
        speed = self.cleaned_data["speed"]
        if speed is None:
            return 1.0
        try:
            SPEECH_SPEED.check(speed)  # the one range, with the message the API gives
        except InvalidParameterError as exc:
            raise forms.ValidationError(str(exc)) from None
        return speed
