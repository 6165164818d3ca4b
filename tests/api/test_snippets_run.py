"""Every Get Code snippet, copied as shown, runs against the live site with a real token and does its job.

cURL in bash, Python (requests and the openai SDK) with this venv's interpreter, JavaScript with Node 20 as an
ES module. Speech-to-text snippets read `audio.wav` from their working directory, as their text says.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.http import QueryDict

from inference import ModelSpec
from inference.catalog import load_catalog
from playground.catalog.forms import SamplingForm
from playground.catalog.snippets import PLACEHOLDER, render_snippets
from tests.api.conftest import SPANISH, LiveSite
from tests.audio import is_english_translation
from tests.livesite import REPO

SPECS = {s.id: s for s in load_catalog([REPO / "playground" / "models.toml"], models_dir=REPO / "var" / "models")}
LANGUAGES = ("curl", "python", "openai", "javascript")
COMMANDS = {
    "curl": ("example.sh", ["bash", "example.sh"]),
    "python": ("example.py", [sys.executable, "example.py"]),
    "openai": ("example.py", [sys.executable, "example.py"]),
    "javascript": ("example.mjs", ["node", "example.mjs"]),
}
# (case id, model, Playground values)
CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("chat", "smollm2-135m-instruct", {"prompt": "Say hello.", "system": "Be brief."}),
    ("completion", "gemma-3-270m", {"prompt": "The three primary colours are"}),
    ("embeddings", "all-minilm-l6-v2", {}),
    ("transcribe", "whisper-tiny.en", {"language": "en", "task": "transcribe"}),
    ("translate", "whisper-base", {"language": "es", "task": "translate"}),
    ("speech", "piper-en-us-joe", {"speed": "1.2"}),
]


def values_for(spec: ModelSpec, extra: dict[str, Any]) -> dict[str, Any]:
    if spec.task not in ("text-to-text", "text-completion"):
        return extra
    data = QueryDict(mutable=True)
    for key, value in {"temperature": "0.2", "max_tokens": "8", "seed": "3"}.items():
        data[key] = value
    return {**SamplingForm(data, spec=spec).as_query(), **extra}


def check_output(case: str, language: str, out: str, workdir: Path) -> None:
    lowered = out.lower()
    assert "error" not in lowered or case in ("chat", "completion"), out
    if case in ("chat", "completion"):
        assert out.strip(), "no text came back"
        if language == "curl":
            assert '"choices"' in out and '"error"' not in out, out
    elif case == "embeddings":
        if language == "curl":
            vectors = [item["embedding"] for item in json.loads(out)["data"]]
            assert [len(v) for v in vectors] == [384, 384]
        else:
            assert "2 vectors of 384 dimensions" in out, out
    elif case == "transcribe":
        assert "fox" in lowered, out
    elif case == "translate":
        assert is_english_translation(lowered), out
    else:
        assert (workdir / "speech.wav").read_bytes()[:4] == b"RIFF"
        if language != "curl":
            assert "saved speech.wav" in out


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("case,model_id,extra", CASES, ids=[c[0] for c in CASES])
def test_snippet_runs_as_copied(live: LiveSite, fox_wav: bytes, tmp_path: Path, case, model_id, extra, language):
    spec = SPECS[model_id]
    snippets = {s.key: s for s in render_snippets(spec=spec, base_url=live.base, values=values_for(spec, extra))}
    code = snippets[language].code
    assert PLACEHOLDER in code
    filename, command = COMMANDS[language]
    (tmp_path / filename).write_text(code.replace(PLACEHOLDER, live.token))
    if spec.task == "speech-to-text":
        (tmp_path / "audio.wav").write_bytes(SPANISH.read_bytes() if case == "translate" else fox_wav)
    env = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 0, f"{language} {case} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    check_output(case, language, done.stdout, tmp_path)
