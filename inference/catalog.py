"""The model catalog: a declarative TOML file of the models this server offers.

An operator adds a model by adding a ``[[model]]`` table whose ``path`` points at
a GGUF file or a CTranslate2 directory on disk; no code changes.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inference.tools import ToolFormat

TASKS = ("text-to-text", "text-completion", "speech-to-text", "embeddings", "text-to-speech")
ENGINES = {
    "text-to-text": ("llama", "fake", "openai", "tgi"),
    "text-completion": ("llama", "fake", "openai", "tgi"),
    "embeddings": ("llama", "fake", "openai"),
    "speech-to-text": ("whisper", "fake", "openai"),
    "text-to-speech": ("piper", "fake", "openai"),
}
# Engines that serve a model from other servers (inference/remote.py): their entries list `upstreams`, not a path.
REMOTE_ENGINES = ("openai", "tgi")
UPSTREAM_KEYS = ("url", "model", "api_key_env", "max_concurrency")
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
class UpstreamSpec:
    """One server of a remote model (inference/remote.py), as the catalog gives it."""

    url: str  # the API's base: http://host:8000/v1 for "openai", http://host:8080 for "tgi"
    model: str  # the model's name there
    api_key_env: str = ""  # the environment variable holding its API key ('' : none)
    max_concurrency: int = 4  # requests in flight there at most

    @property
    def api_key(self) -> str:
        return os.environ.get(self.api_key_env, "") if self.api_key_env else ""


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
    upstreams: tuple[UpstreamSpec, ...] = ()  # a remote model's servers
    tokenizer: Path | None = None  # a remote model's vocabulary (a GGUF file) to count what its servers do not report

    @property
    def remote(self) -> bool:
        return self.engine in REMOTE_ENGINES

    @property
    def weights_present(self) -> bool:
        return self.engine == "fake" or self.remote or self.path.exists()


def _upstreams(raw: object, *, where: str, model_id: str) -> tuple[UpstreamSpec, ...]:
    if not isinstance(raw, list) or not raw:
        raise CatalogError(f"{where}: a remote engine needs upstreams = [{{ url = ... }}, ...]")
    upstreams = []
    for n, entry in enumerate(raw):
        at = f"{where}: upstreams[{n}]"
        if not isinstance(entry, dict):
            raise CatalogError(f"{at} must be a table")
        unknown = set(entry) - set(UPSTREAM_KEYS)
        if unknown:
            raise CatalogError(f"{at}: unknown keys {sorted(unknown)} (known: {', '.join(UPSTREAM_KEYS)})")
        url = entry.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise CatalogError(f"{at}: url must be an http:// or https:// address")
        cap = entry.get("max_concurrency", 4)
        if not isinstance(cap, int) or cap < 1:
            raise CatalogError(f"{at}: max_concurrency must be a whole number of at least 1")
        upstreams.append(
            UpstreamSpec(
                url=url.rstrip("/"),
                model=str(entry.get("model") or model_id),
                api_key_env=str(entry.get("api_key_env", "")),
                max_concurrency=cap,
            )
        )
    return tuple(upstreams)


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

    def resolved(value: object) -> Path:
        path = Path(str(value)).expanduser()
        return path if path.is_absolute() else models_dir / path

    upstreams: tuple[UpstreamSpec, ...] = ()
    tokenizer = None
    if engine in REMOTE_ENGINES:
        upstreams = _upstreams(raw.get("upstreams"), where=where, model_id=model_id.strip())
        tokenizer = resolved(raw["tokenizer"]) if raw.get("tokenizer") else None
        path = Path()
    elif "path" not in raw:
        raise CatalogError(f"{where}: path is required")
    else:
        if "upstreams" in raw:
            raise CatalogError(f'{where}: upstreams need engine = "openai" or "tgi"')
        path = resolved(raw["path"])
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
        options["config_path"] = resolved(options["config_path"])
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
        upstreams=upstreams,
        tokenizer=tokenizer,
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
