"""Real engines built from the repo's catalog (the same paths the site uses), loaded once per session.

PLAYGROUND_TEST_DEVICE=cuda builds them on the GPU (bench/gpu_check.py runs these tests that way); CI and
`./dev test` use the CPU.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from inference.catalog import ModelSpec, load_catalog
from inference.pool import build_engine

REPO = Path(__file__).resolve().parents[2]
MODELS_DIR = REPO / "var" / "models"
THREADS = 2
GPU = os.environ.get("PLAYGROUND_TEST_DEVICE", "cpu") == "cuda"


def catalog_spec(model_id: str) -> ModelSpec:
    specs = {s.id: s for s in load_catalog([REPO / "playground" / "models.toml"], models_dir=MODELS_DIR)}
    spec = specs[model_id]
    assert spec.weights_present, f"{spec.path} missing: run ./dev test (it prepares the models)"
    return spec


def _engine(model_id: str):  # noqa: ANN202
    return build_engine(catalog_spec(model_id), GPU, THREADS)


@pytest.fixture(scope="session")
def smollm2():  # noqa: ANN201
    return _engine("smollm2-135m-instruct")


@pytest.fixture(scope="session")
def gemma():  # noqa: ANN201
    return _engine("gemma-3-270m")


@pytest.fixture(scope="session")
def minilm():  # noqa: ANN201
    return _engine("all-minilm-l6-v2")


@pytest.fixture(scope="session")
def whisper_tiny():  # noqa: ANN201
    return _engine("whisper-tiny.en")


@pytest.fixture(scope="session")
def whisper_base():  # noqa: ANN201
    return _engine("whisper-base")


@pytest.fixture(scope="session")
def piper():  # noqa: ANN201
    return _engine("piper-en-us-joe")
