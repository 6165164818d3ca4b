"""The model catalog: a declarative TOML file of the models this server offers.

An operator adds a model by adding a ``[[model]]`` table whose ``path`` points at
a GGUF file or a CTranslate2 directory on disk; no code changes.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inference.tools import ToolFormat

TASKS = ("text-to-text", "text-completion", "speech-to-text", "embeddings", "text-to-speech")
ENGINES = {
    "text-to-text": ("llama", "fake"),
    "text-completion": ("llama", "fake"),
    "embeddings": ("llama", "fake"),
    "speech-to-text": ("whisper", "fake"),
    "text-to-speech": ("piper", "fake"),
}
# The price keys each task understands (USD).
PRICE_KEYS = {
    "text-to-text": ("input_per_million_tokens", "output_per_million_tokens"),
    "text-completion": ("input_per_million_tokens", "output_per_million_tokens"),
    "embeddings": ("input_per_million_tokens",),
    "speech-to-text": ("per_audio_minute",),
    "text-to-speech": ("per_million_characters",),
}
SAMPLING_DEFAULT_KEYS = (
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "max_tokens",
    "presence_penalty",
    "frequency_penalty",
    "repetition_penalty",
)


class CatalogError(ValueError):
    """The catalog file is malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class ModelSpec:
    id: str
    name: str
    task: str
    engine: str
    path: Path  # absolute: a .gguf file, a CTranslate2 directory, or a Piper .onnx
    family: str = ""
    parameters: str = ""
    quantization: str = ""
    context_length: int = 0  # what the model was trained for
    n_ctx: int = 0  # what we serve (KV cache size); 0 for non-text models
    license: str = ""
    description: str = ""
    capabilities: tuple[str, ...] = ()
    source: str = ""
    prices: dict[str, float] = field(default_factory=dict)
    defaults: dict[str, float | int] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)  # engine-specific (config_path, ...)
    prepare: dict[str, Any] = field(default_factory=dict)  # how set-up materialises the weights
    tool_format: ToolFormat = ToolFormat()  # chat models: how tools reach the model and how it writes a call

    @property
    def weights_present(self) -> bool:
        return self.engine == "fake" or self.path.exists()


def _entry_to_spec(raw: dict[str, Any], *, origin: str, models_dir: Path) -> ModelSpec:
    model_id = raw.get("id")
    if not isinstance(model_id, str) or not model_id.strip():
        raise CatalogError(f"{origin}: a [[model]] entry has no id")
    where = f"{origin}: model {model_id!r}"
    task = raw.get("task")
    if task not in TASKS:
        raise CatalogError(f"{where}: task must be one of {', '.join(TASKS)}")
    engine = raw.get("engine") or ENGINES[task][0]
    if engine not in ENGINES[task]:
        raise CatalogError(f"{where}: engine {engine!r} cannot serve {task}")
    if "path" not in raw:
        raise CatalogError(f"{where}: path is required")
    path = Path(str(raw["path"])).expanduser()
    if not path.is_absolute():
        path = models_dir / path
    prices = {str(k): float(v) for k, v in dict(raw.get("prices", {})).items()}
    unknown = set(prices) - set(PRICE_KEYS[task])
    if unknown:
        raise CatalogError(f"{where}: unknown price keys {sorted(unknown)}")
    defaults = dict(raw.get("defaults", {}))
    unknown = set(defaults) - set(SAMPLING_DEFAULT_KEYS)
    if unknown:
        raise CatalogError(f"{where}: unknown defaults {sorted(unknown)}")
    options = dict(raw.get("options", {}))
    if "config_path" in options:
        config = Path(str(options["config_path"])).expanduser()
        options["config_path"] = config if config.is_absolute() else models_dir / config
    if "tools" in raw and task != "text-to-text":
        raise CatalogError(f"{where}: tools apply to text-to-text models only")
    try:
        tool_format = ToolFormat.from_catalog(raw.get("tools"))
    except ValueError as exc:
        raise CatalogError(f"{where}: {exc}") from None
    context_length = int(raw.get("context_length", 0))
    text_like = task in ("text-to-text", "text-completion", "embeddings")
    n_ctx = int(raw.get("n_ctx", min(context_length, 4096) if text_like else 0))
    return ModelSpec(
        id=model_id.strip(),
        name=str(raw.get("name", model_id)),
        task=task,
        engine=engine,
        path=path,
        family=str(raw.get("family", "")),
        parameters=str(raw.get("parameters", "")),
        quantization=str(raw.get("quantization", "")),
        context_length=context_length,
        n_ctx=n_ctx,
        license=str(raw.get("license", "")),
        description=str(raw.get("description", "")),
        capabilities=tuple(str(c) for c in raw.get("capabilities", ())),
        source=str(raw.get("source", "")),
        prices=prices,
        defaults=defaults,
        options=options,
        prepare=dict(raw.get("prepare", {})),
        tool_format=tool_format,
    )


def load_catalog(files: list[Path], *, models_dir: Path) -> list[ModelSpec]:
    """Read catalog files in order; a later entry with the same id replaces an earlier one."""
    specs: dict[str, ModelSpec] = {}
    for file in files:
        try:
            data = tomllib.loads(Path(file).read_text())
        except FileNotFoundError as exc:
            raise CatalogError(f"catalog file {file} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise CatalogError(f"{file}: {exc}") from exc
        for raw in data.get("model", []):
            spec = _entry_to_spec(raw, origin=str(file), models_dir=models_dir)
            specs[spec.id] = spec
    return list(specs.values())
