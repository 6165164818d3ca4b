"""Operator commands: stream a prompt to the terminal, warm models."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from playground import engines


def test_generate_streams_a_prompt_to_the_terminal(fake_pool):
    out, err = StringIO(), StringIO()
    call_command("generate", "fake-chat", "hi there", "--max-tokens", "4", "--seed", "1", stdout=out, stderr=err)
    assert out.getvalue().startswith("You said: hi there")
    assert "finish=length" in err.getvalue() and "completion_tokens=4" in err.getvalue()
    params = fake_pool.workers["fake-chat"].engine.calls[0]["params"]
    assert params.seed == 1 and params.max_tokens == 4


def test_generate_reports_unknown_model_and_bad_parameters(fake_pool):
    with pytest.raises(CommandError, match="does not exist"):
        call_command("generate", "nope", "hi")
    with pytest.raises(CommandError, match="temperature"):
        call_command("generate", "fake-chat", "hi", "--temperature", "5")


def test_warm_models_loads_and_reports_devices(fake_pool):
    out = StringIO()
    call_command("warm_models", "fake-chat", "fake-tts", stdout=out)
    assert "fake-chat: loaded on cpu" in out.getvalue()
    assert fake_pool.workers["fake-tts"].state == "loaded"
    assert fake_pool.workers["fake-embed"].state == "not_loaded"


@pytest.mark.real_model
def test_generate_streams_from_a_real_model():
    engines.set_pool(None)  # the pool built from settings: the repo catalog, real engines
    try:
        out, err = StringIO(), StringIO()
        call_command(
            "generate",
            "smollm2-135m-instruct",
            "What is the capital of France?",
            "--system",
            "You are a helpful assistant.",
            "--temperature",
            "0",
            "--max-tokens",
            "30",
            stdout=out,
            stderr=err,
        )
        assert "Paris" in out.getvalue()
        assert "finish=stop" in err.getvalue()
    finally:
        engines.set_pool(None)


def test_prove_engines_proves_every_real_catalog_model_with_the_sites_threads_and_stops_on_failure(
    settings, monkeypatch
):
    from inference.buildcheck import Record, SetupError
    from playground.catalog.management.commands import prove_engines

    seen = {}

    def ensure(targets, **kwargs):  # noqa: ANN003
        seen.update(kwargs, targets=[t.model_id for t in targets])
        return Record("0", "portable", "-DGGML_NATIVE=OFF", "auto", "cpu", "Test CPU", ["avx2", "amx_tile"])

    monkeypatch.setattr(prove_engines, "ensure_engines", ensure)
    monkeypatch.setenv("CMAKE_ARGS", "-DGGML_NATIVE=OFF")
    settings.PLAYGROUND_THREADS = 3
    out = StringIO()
    call_command("prove_engines", stdout=out)
    assert seen["threads"] == 3 and seen["forced"] == "-DGGML_NATIVE=OFF"
    assert {"smollm2-135m-instruct", "whisper-base", "piper-en-us-joe"} <= set(seen["targets"])
    assert seen["record_path"].name == "engine-build.json"
    assert "llama.cpp build: portable (-DGGML_NATIVE=OFF); CPU flags: avx2 amx_tile" in out.getvalue()

    def fails(targets, **kwargs):  # noqa: ANN003
        raise SetupError("llama.cpp does not run on this machine: died by SIGILL (illegal instruction)")

    monkeypatch.setattr(prove_engines, "ensure_engines", fails)
    with pytest.raises(CommandError, match="SIGILL"):  # ./dev stops on the command's failure
        call_command("prove_engines", stdout=StringIO())
