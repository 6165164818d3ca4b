"""GET /v1/openapi.json and the readable API page at /api/."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from inference.types import RANGES, SPEECH_SPEED

pytestmark = pytest.mark.django_db

OPENAI_PATHS = {
    "/v1/models": "get",
    "/v1/chat/completions": "post",
    "/v1/completions": "post",
    "/v1/embeddings": "post",
    "/v1/audio/transcriptions": "post",
    "/v1/audio/translations": "post",
    "/v1/audio/speech": "post",
}
TGI_PATHS = {
    "/generate": "post",
    "/generate_stream": "post",
    "/info": "get",
    "/models/{model_id}/generate": "post",
    "/models/{model_id}/generate_stream": "post",
}


@pytest.fixture
def document(client, fake_pool) -> dict:
    response = client.get("/v1/openapi.json")  # no token
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    return json.loads(response.content)


def _operations(document: dict):  # noqa: ANN202
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            yield path, method, operation


def _resolve(document: dict, node: dict) -> dict:
    while "$ref" in node:
        target = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def test_openapi_document_is_served_without_a_token_and_names_its_version(document):
    assert document["openapi"].startswith("3.1")
    assert document["info"]["title"] and document["info"]["version"]
    assert document["servers"][0]["url"] == "http://testserver"
    assert reverse("openapi") == "/v1/openapi.json"


def test_every_endpoint_is_described(document):
    for path, method in {**OPENAI_PATHS, **TGI_PATHS, "/health": "get", "/v1/models/{model}": "get"}.items():
        assert method in document["paths"].get(path, {}), path


def test_bearer_security_scheme_guards_every_operation_but_health_and_the_document(document):
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        **document["components"]["securitySchemes"]["bearerAuth"],
        "type": "http",
        "scheme": "bearer",
    }
    assert document["security"] == [{"bearerAuth": []}]
    open_paths = {path for path, _m, op in _operations(document) if op.get("security") == []}
    assert open_paths == {"/health", "/v1/openapi.json"}


def test_every_authenticated_operation_documents_its_errors_with_the_shared_schema(document):
    for path, method, operation in _operations(document):
        if operation.get("security") == []:
            continue
        responses = operation["responses"]
        assert {"200", "400", "401", "403"} <= set(responses), (path, method)
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                schema = _resolve(document, response)["content"]["application/json"]["schema"]
                shape = "AiError" if path.startswith("/ai/") else "Error"  # the /ai/ dialect has its own
                assert schema == {"$ref": f"#/components/schemas/{shape}"}, (path, status)
        if method == "post":
            assert {"404", "413", "429", "504"} <= set(responses), path


def test_429_and_403_carry_retry_after_and_the_error_schema_has_its_fields(document):
    responses = document["components"]["responses"]
    assert "Retry-After" in responses["TooManyRequests"]["headers"]
    assert "Retry-After" in responses["Forbidden"]["headers"]
    error = document["components"]["schemas"]["Error"]["properties"]["error"]
    assert set(error["required"]) == {"message", "type", "code"}
    assert {"param", "retry_after"} <= set(error["properties"])


def test_every_ref_resolves(document):
    def refs(node):  # noqa: ANN001, ANN202
        if isinstance(node, dict):
            if "$ref" in node:
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    for ref in refs(document):
        assert _resolve(document, {"$ref": ref}), ref


def _bounds(prop):
    """(minimum, maximum) of a schema property, looking inside anyOf (optional fields also accept null)."""
    for option in prop.get("anyOf", [prop]):
        if option.get("type") in ("number", "integer"):
            low = option.get("minimum", option.get("exclusiveMinimum"))
            return low, option.get("maximum")
    raise AssertionError(f"no numeric bounds in {prop}")


def test_every_sampling_field_has_the_range_table_s_bounds(document):
    """The document reads RANGES: every field that names its range carries exactly that range's bounds."""
    checked = 0
    for name, schema in document["components"]["schemas"].items():
        for field, prop in schema.get("properties", {}).items():
            range_name = prop.get("x-range")
            if range_name is None:
                continue
            range_ = RANGES.get(range_name, SPEECH_SPEED if range_name == "speed" else None)
            assert range_ is not None, (name, field)
            assert _bounds(prop) == (range_.low, range_.high), (name, field)
            checked += 1
    assert checked >= 20  # chat, completion, TGI parameters and speed


def test_request_bodies_carry_every_parameter_with_ranges(document):
    schemas = document["components"]["schemas"]
    chat = schemas["ChatCompletionRequest"]["properties"]
    for name in (
        "model",
        "messages",
        "temperature",
        "top_p",
        "top_k",
        "max_tokens",
        "max_completion_tokens",
        "presence_penalty",
        "frequency_penalty",
        "repetition_penalty",
        "seed",
        "stop",
        "stream",
        "stream_options",
        "service_tier",
        "user",
        "n",
        "logprobs",
    ):
        assert name in chat, name
    assert _bounds(chat["temperature"]) == (RANGES["temperature"].low, RANGES["temperature"].high)
    assert "prompt" in schemas["CompletionRequest"]["properties"]
    assert set(schemas["EmbeddingRequest"]["properties"]) >= {"model", "input", "encoding_format", "dimensions"}
    assert set(schemas["TranscriptionRequest"]["properties"]) >= {"file", "model", "language", "response_format"}
    assert _bounds(schemas["SpeechRequest"]["properties"]["speed"]) == (SPEECH_SPEED.low, SPEECH_SPEED.high)
    tgi = schemas["GenerateParameters"]["properties"]
    assert set(tgi) >= {
        "max_new_tokens",
        "temperature",
        "top_p",
        "top_k",
        "repetition_penalty",
        "stop",
        "seed",
        "do_sample",
        "details",
    }
    assert "fake-chat" in chat["model"]["description"]


def test_streaming_endpoints_offer_event_streams(document):
    for path in ("/v1/chat/completions", "/v1/completions", "/generate_stream"):
        assert "text/event-stream" in document["paths"][path]["post"]["responses"]["200"]["content"], path
    assert "multipart/form-data" in document["paths"]["/v1/audio/transcriptions"]["post"]["requestBody"]["content"]
    assert "audio/wav" in document["paths"]["/v1/audio/speech"]["post"]["responses"]["200"]["content"]


def test_api_page_renders_every_endpoint_errors_limits_and_examples(client, fake_pool, settings):
    settings.PLAYGROUND_AUTH_BAN_SECONDS = 321
    response = client.get("/api/")
    assert response.status_code == 200
    page = response.content.decode()
    assert reverse("api-docs") == "/api/"
    for path, method in {**OPENAI_PATHS, **TGI_PATHS, "/health": "get"}.items():
        assert f'data-endpoint="{method.upper()} {path}"' in page, path
    for status in (400, 401, 403, 404, 413, 429, 504):
        assert f'data-status="{status}"' in page
    assert 'href="/v1/openapi.json"' in page and 'href="/tokens/"' in page
    assert "Authorization: Bearer" in page and "321 s" in page
    assert "PLAYGROUND_AUTH_FAILURE_LIMIT" in page and "PLAYGROUND_AUTH_BAN_SECONDS" in page
    assert "from openai import OpenAI" in page and "http://testserver/v1" in page
    assert "curl http://testserver/generate" in page
    assert "parameters.do_sample" in page


def test_api_page_escapes_what_it_shows(client, fake_pool, settings):
    settings.PLAYGROUND_DEFAULT_TEXT_MODEL = "<script>alert(1)</script>"
    page = client.get("/api/").content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page
