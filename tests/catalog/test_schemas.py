"""The API tab: one endpoint per task, with limits taken from the form and the model, and valid JSON examples."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from django.template.loader import render_to_string

from inference import ModelSpec
from inference.catalog import load_catalog
from inference.types import RANGES
from playground.catalog.schemas import EndpointSchema, endpoint_schema

ROOT = Path(__file__).resolve().parents[2]
SPECS = {s.id: s for s in load_catalog([ROOT / "playground" / "models.toml"], models_dir=Path("/nonexistent"))}
EXPECTED = [
    ("smollm2-135m-instruct", "/v1/chat/completions", "application/json", ["/v1/chat/completions"]),
    ("gemma-3-270m", "/v1/completions", "application/json", ["/v1/completions", "/generate"]),
    ("all-minilm-l6-v2", "/v1/embeddings", "application/json", ["/v1/embeddings"]),
    ("whisper-tiny.en", "/v1/audio/transcriptions", "multipart/form-data", ["/v1/audio/transcriptions"]),
    (
        "whisper-base",
        "/v1/audio/transcriptions",
        "multipart/form-data",
        ["/v1/audio/transcriptions", "/v1/audio/translations"],
    ),
    ("piper-en-us-joe", "/v1/audio/speech", "application/json", ["/v1/audio/speech"]),
]


def every_endpoint(schema: EndpointSchema) -> list[EndpointSchema]:
    return [schema, *schema.related]


@pytest.mark.parametrize(("model_id", "path", "content_type", "all_paths"), EXPECTED)
def test_each_default_model_documents_its_endpoint(
    model_id: str, path: str, content_type: str, all_paths: list[str]
) -> None:
    schema = endpoint_schema(SPECS[model_id])
    assert (schema.method, schema.path, schema.content_type) == ("POST", path, content_type)
    assert [e.path for e in every_endpoint(schema)] == all_paths


@pytest.mark.parametrize("model_id", [row[0] for row in EXPECTED])
def test_examples_are_valid_json_and_name_the_model(model_id: str) -> None:
    spec = SPECS[model_id]
    for endpoint in every_endpoint(endpoint_schema(spec)):
        request = json.loads(endpoint.request_example)
        assert request.get("model", spec.id) == spec.id
        if endpoint.response_type == "application/json":
            json.loads(endpoint.response_example)
        error = json.loads(endpoint.error_example)["error"]
        assert set(error) == {"message", "type", "param", "code"}
        names = [f.name for f in endpoint.fields]
        assert len(names) == len(set(names))
        assert all(f.description for f in endpoint.fields)
        # every example field is documented (the TGI example nests its knobs under "parameters")
        assert set(request) <= set(names), set(request) - set(names)


def test_text_fields_carry_the_range_table_and_the_models_context() -> None:
    spec = SPECS["smollm2-135m-instruct"]
    fields = {f.name: f for f in endpoint_schema(spec).fields}
    assert fields["model"].required and fields["messages"].required
    assert not fields["temperature"].required
    for name, range_ in RANGES.items():  # every range in words, as the API's errors say it
        assert range_.text()[1:] in fields[name].description, name
    assert "This model's default: 0.7." in fields["temperature"].description
    assert "This model's context: 8192 tokens." in fields["max_tokens"].description
    assert "This model's default: 40." in fields["top_k"].description
    assert "extension" in fields["repetition_penalty"].description.lower()
    assert {"seed", "stop", "stream", "top_p", "presence_penalty", "frequency_penalty"} <= set(fields)
    small = replace(spec, n_ctx=2048)
    assert "context: 2048 tokens" in {f.name: f for f in endpoint_schema(small).fields}["max_tokens"].description


@pytest.mark.parametrize("model_id", ["smollm2-135m-instruct", "gemma-3-270m"])
def test_text_endpoints_explain_streaming(model_id: str) -> None:
    schema = endpoint_schema(SPECS[model_id])
    assert "text/event-stream" in schema.streaming_note
    lines = [line for line in schema.stream_example.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    json.loads(lines[0].removeprefix("data: "))


def test_tgi_generate_example_uses_inputs_and_parameters() -> None:
    (generate,) = endpoint_schema(SPECS["gemma-3-270m"]).related
    example = json.loads(generate.request_example)
    assert example["inputs"] and example["parameters"]["max_new_tokens"] == 128
    assert json.loads(generate.response_example) == {"generated_text": " red, yellow and blue."}


def test_speech_endpoints_describe_their_bodies() -> None:
    stt = {f.name: f for f in endpoint_schema(SPECS["whisper-tiny.en"]).fields}
    assert stt["file"].required and not stt["language"].required
    assert "English-only" in stt["language"].description
    assert "verbose_json" in stt["response_format"].description
    tts = endpoint_schema(SPECS["piper-en-us-joe"])
    assert tts.response_type == "audio/wav" and not tts.streaming_note
    assert {f.name for f in tts.fields} >= {"model", "input", "voice", "speed", "response_format"}
    assert "mp3" in {f.name: f for f in tts.fields}["response_format"].description


@pytest.mark.parametrize("model_id", [row[0] for row in EXPECTED])
def test_api_template_renders_every_endpoint_escaped(model_id: str) -> None:
    spec = SPECS[model_id]
    schema = endpoint_schema(spec)
    html = render_to_string("catalog/_api.html", {"schema": schema, "spec": spec})
    for endpoint in every_endpoint(schema):
        assert f"<code>POST {endpoint.path}</code>" in html
        for field in endpoint.fields:
            assert f'data-field="{field.name}"' in html
    assert "&quot;model&quot;" in html or "&quot;inputs&quot;" in html  # JSON examples are escaped, not raw
    assert "Authorization: Bearer YOUR_API_TOKEN" in html


def test_api_template_escapes_odd_model_ids() -> None:
    spec: ModelSpec = replace(SPECS["all-minilm-l6-v2"], id="<b>x</b>")
    html = render_to_string("catalog/_api.html", {"schema": endpoint_schema(spec), "spec": spec})
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
