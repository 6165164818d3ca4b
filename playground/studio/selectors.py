"""Read-only helpers for the studio Playgrounds: what a model offers, and how results are shown."""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass

from inference import ModelSpec
from inference.types import SPEECH_SPEED, EmbeddingResult
from playground import engines

# Whisper's languages (faster_whisper.tokenizer._LANGUAGE_CODES), named for the language picker.
WHISPER_LANGUAGES: dict[str, str] = {
    "af": "Afrikaans", "am": "Amharic", "ar": "Arabic", "as": "Assamese", "az": "Azerbaijani", "ba": "Bashkir",
    "be": "Belarusian", "bg": "Bulgarian", "bn": "Bengali", "bo": "Tibetan", "br": "Breton", "bs": "Bosnian",
    "ca": "Catalan", "cs": "Czech", "cy": "Welsh", "da": "Danish", "de": "German", "el": "Greek", "en": "English",
    "es": "Spanish", "et": "Estonian", "eu": "Basque", "fa": "Persian", "fi": "Finnish", "fo": "Faroese",
    "fr": "French", "gl": "Galician", "gu": "Gujarati", "ha": "Hausa", "haw": "Hawaiian", "he": "Hebrew",
    "hi": "Hindi", "hr": "Croatian", "ht": "Haitian Creole", "hu": "Hungarian", "hy": "Armenian", "id": "Indonesian",
    "is": "Icelandic", "it": "Italian", "ja": "Japanese", "jw": "Javanese", "ka": "Georgian", "kk": "Kazakh",
    "km": "Khmer", "kn": "Kannada", "ko": "Korean", "la": "Latin", "lb": "Luxembourgish", "ln": "Lingala",
    "lo": "Lao", "lt": "Lithuanian", "lv": "Latvian", "mg": "Malagasy", "mi": "Maori", "mk": "Macedonian",
    "ml": "Malayalam", "mn": "Mongolian", "mr": "Marathi", "ms": "Malay", "mt": "Maltese", "my": "Myanmar",
    "ne": "Nepali", "nl": "Dutch", "nn": "Nynorsk", "no": "Norwegian", "oc": "Occitan", "pa": "Punjabi",
    "pl": "Polish", "ps": "Pashto", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian", "sa": "Sanskrit",
    "sd": "Sindhi", "si": "Sinhala", "sk": "Slovak", "sl": "Slovenian", "sn": "Shona", "so": "Somali",
    "sq": "Albanian", "sr": "Serbian", "su": "Sundanese", "sv": "Swedish", "sw": "Swahili", "ta": "Tamil",
    "te": "Telugu", "tg": "Tajik", "th": "Thai", "tk": "Turkmen", "tl": "Tagalog", "tr": "Turkish", "tt": "Tatar",
    "uk": "Ukrainian", "ur": "Urdu", "uz": "Uzbek", "vi": "Vietnamese", "yi": "Yiddish", "yo": "Yoruba",
    "yue": "Cantonese", "zh": "Chinese",
}  # fmt: skip

VECTOR_PREVIEW = 6  # values shown per vector; the JSON download has them all


def model_spec(*, model_id: str) -> ModelSpec:
    """The catalog entry; UnknownModelError for an id the catalog lacks."""
    return engines.get_pool().spec(model_id)


def stt_multilingual(spec: ModelSpec) -> bool:
    """Whether a speech model detects languages and translates (the catalog marks English-only models)."""
    return "english-only" not in spec.capabilities


def playground_context(*, spec: ModelSpec) -> dict[str, object]:
    """Extra context the studio Playground templates use when present (the language picker, the speed range)."""
    if spec.task == "speech-to-text":
        return {"stt_languages": stt_language_choices(spec)}
    if spec.task == "text-to-speech":
        return {"speed_range": SPEECH_SPEED}
    return {}


def stt_language_choices(spec: ModelSpec) -> list[tuple[str, str]]:
    """(code, name) pairs for the language picker; '' means detect it."""
    if not stt_multilingual(spec):
        return [("", "English (auto)"), ("en", "English")]
    return [("", "Detect automatically")] + sorted(WHISPER_LANGUAGES.items(), key=lambda item: item[1])


@dataclass(frozen=True)
class HeatmapCell:
    value: float
    background: str  # a CSS colour computed from the value (no user text in it)
    strong: bool  # dark enough background to need light text


@dataclass(frozen=True)
class HeatmapRow:
    label: str
    cells: list[HeatmapCell]


@dataclass(frozen=True)
class VectorRow:
    label: str
    preview: list[float]
    dimensions: int


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def _cell(value: float) -> HeatmapCell:
    # Blue for similar, red for opposite; the strength of the colour is the size of the value.
    strength = min(abs(value), 1.0)
    rgb = "59, 91, 219" if value >= 0 else "220, 60, 50"
    return HeatmapCell(value=value, background=f"rgba({rgb}, {strength:.3f})", strong=strength >= 0.55)


def similarity_heatmap(*, texts: list[str], vectors: list[list[float]]) -> list[HeatmapRow]:
    """Cosine similarity between every pair of texts, one row per text."""
    return [
        HeatmapRow(label=text, cells=[_cell(round(_cosine(a, b), 4)) for b in vectors])
        for text, a in zip(texts, vectors, strict=True)
    ]


def vector_rows(*, texts: list[str], vectors: list[list[float]]) -> list[VectorRow]:
    return [
        VectorRow(label=text, preview=[round(v, 4) for v in vector[:VECTOR_PREVIEW]], dimensions=len(vector))
        for text, vector in zip(texts, vectors, strict=True)
    ]


def embeddings_json_data_url(*, model_id: str, texts: list[str], result: EmbeddingResult) -> str:
    """The full vectors as a downloadable JSON document (a data: URL, so it works without JavaScript)."""
    document = {
        "model": model_id,
        "data": [
            {"index": n, "input": text, "embedding": vector}
            for n, (text, vector) in enumerate(zip(texts, result.vectors, strict=True))
        ],
        "usage": {"prompt_tokens": result.usage.prompt_tokens},
    }
    encoded = base64.b64encode(json.dumps(document).encode()).decode()
    return f"data:application/json;base64,{encoded}"


def wav_data_url(wav: bytes) -> str:
    return "data:audio/wav;base64," + base64.b64encode(wav).decode()
