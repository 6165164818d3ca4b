"""The unified-inference dialect (/ai/) as a client meets it: plain `requests` against a live Daphne (its catalog the
real ids, tasks and capabilities, served by fake engines): every request and answer shape, streaming, the error
shape with retry_after, the usage rows tagged with the route, and the OpenAPI document listing the routes."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from tests.api_ai.conftest import FakeSite

pytestmark = pytest.mark.live_server  # fake engines: no real_model mark

CHAT_MODEL, TEXT_MODEL, EMBED_MODEL = "smollm2-135m-instruct", "gemma-3-270m", "all-minilm-l6-v2"
CHAT = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 4}
TIMEOUT = 30


def post(site: FakeSite, path: str, body: Any, headers: dict[str, str] | None = None, **kwargs: Any):  # noqa: ANN201
    return requests.post(
        f"{site.base}{path}", json=body, headers=site.headers if headers is None else headers, timeout=TIMEOUT, **kwargs
    )


def ai_error(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert error["code"] == code and error["status"] == status and error["message"], error
    assert set(error) <= {"code", "message", "param", "retry_after", "status"}, error
    return error


def test_models_lists_the_models_of_the_ai_routes(fake_site):
    response = requests.get(f"{fake_site.base}/ai/models", headers=fake_site.headers, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    models = {m["id"]: m for m in response.json()["models"]}
    assert set(models) == {CHAT_MODEL, TEXT_MODEL, EMBED_MODEL}
    chat = models[CHAT_MODEL]
    assert set(chat) == {"id", "provider", "capabilities", "context_length"}
    assert chat["provider"] == "genai-playground" and chat["context_length"] == 8192
    assert chat["capabilities"][:2] == ["chat", "generate"] and "function_calling" in chat["capabilities"]
    assert "json_schema" in chat["capabilities"] and "tools" not in chat["capabilities"]
    assert models[TEXT_MODEL]["capabilities"][0] == "generate"
    assert models[EMBED_MODEL]["capabilities"][0] == "embeddings"


def test_chat_answers_and_streams_over_http(fake_site):
    response = post(fake_site, "/ai/chat", CHAT)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["id"].startswith("chat-") and data["model"] == CHAT_MODEL
    assert data["message"] == {"role": "assistant", "content": "You said: hello there"}
    assert data["usage"] == {"prompt_tokens": 4, "completion_tokens": 4, "total_tokens": 8}
    assert data["finish_reason"] == "length"

    with post(fake_site, "/ai/chat", {**CHAT, "stream": True}, stream=True) as streamed:
        assert streamed.status_code == 200
        assert streamed.headers["Content-Type"].startswith("text/event-stream")
        lines = [line for line in streamed.iter_lines(decode_unicode=True) if line]
    assert all(line.startswith("data: ") for line in lines)
    payloads = [line[len("data: ") :] for line in lines]
    assert payloads[-1] == "[DONE]"
    events = [json.loads(p) for p in payloads[:-1]]
    assert events[-1] == {"delta": {}, "finish_reason": "length", "usage": data["usage"]}
    assert "".join(e["delta"]["content"] for e in events[:-1]) == data["message"]["content"]


def test_generate_answers_over_http(fake_site):
    response = post(fake_site, "/ai/generate", {"model": TEXT_MODEL, "prompt": "Once upon a time", "max_tokens": 3})
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["id"].startswith("gen-") and data["model"] == TEXT_MODEL and data["text"].startswith("and then")
    assert data["usage"] == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    assert data["finish_reason"] == "length"
    chat = post(fake_site, "/ai/generate", {"model": CHAT_MODEL, "prompt": "Say hi", "max_tokens": 4}).json()
    assert chat["text"] == "You said: Say hi"  # a chat model gets the prompt as one user message


def test_embeddings_of_a_string_and_of_a_list_over_http(fake_site):
    one = post(fake_site, "/ai/embeddings", {"model": EMBED_MODEL, "input": "a text"})
    assert one.status_code == 200, one.text
    single = one.json()
    assert set(single) == {"model", "embedding", "dimensions", "usage"}
    assert len(single["embedding"]) == single["dimensions"] and set(single["usage"]) == {"total_tokens"}
    many = post(fake_site, "/ai/embeddings", {"model": EMBED_MODEL, "input": ["a text", "b"]}).json()
    assert set(many) == {"model", "embeddings", "dimensions", "usage"}
    assert len(many["embeddings"]) == 2 and many["embeddings"][0] == single["embedding"]


def test_every_error_has_the_ai_shape_over_http(fake_site):
    missing = requests.get(f"{fake_site.base}/ai/models", timeout=TIMEOUT)
    ai_error(missing, 401, "invalid_api_key")
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    wrong = {"Authorization": "Bearer gp_not-a-real-token"}
    ai_error(post(fake_site, "/ai/chat", CHAT, headers=wrong), 401, "invalid_api_key")
    bad = ai_error(post(fake_site, "/ai/chat", {**CHAT, "temperature": 5}), 400, "invalid_parameter")
    assert bad["param"] == "temperature" and "temperature must be a number from 0 to 2 (got 5)" in bad["message"]
    unknown = ai_error(post(fake_site, "/ai/chat", {**CHAT, "top_k": 5}), 400, "unknown_parameter")
    assert unknown["param"] == "top_k"
    assert ai_error(post(fake_site, "/ai/chat", {**CHAT, "model": "nope"}), 404, "model_not_found")["param"] == "model"
    method = requests.get(f"{fake_site.base}/ai/chat", headers=fake_site.headers, timeout=TIMEOUT)
    ai_error(method, 405, "method_not_allowed")
    assert method.headers["Allow"] == "POST"
    ai_error(requests.get(f"{fake_site.base}/ai/nowhere", timeout=TIMEOUT), 404, "unknown_url")
    raw = requests.post(f"{fake_site.base}/ai/generate", data=b"{oops", headers=fake_site.headers, timeout=TIMEOUT)
    ai_error(raw, 400, "invalid_json")
    # the other dialects keep their own shape
    v1 = requests.get(f"{fake_site.base}/v1/models", timeout=TIMEOUT).json()["error"]
    assert v1["type"] == "authentication_error" and "status" not in v1


def test_a_rate_limited_token_gets_retry_after_over_http(fake_site):
    limited = {"Authorization": f"Bearer {fake_site.limited_token(requests_per_minute=1)}"}
    assert post(fake_site, "/ai/generate", {"model": TEXT_MODEL, "prompt": "Hi"}, headers=limited).status_code == 200
    refused = post(fake_site, "/ai/generate", {"model": TEXT_MODEL, "prompt": "Hi"}, headers=limited)
    error = ai_error(refused, 429, "rate_limit_exceeded")
    assert 1 <= error["retry_after"] <= 60 and refused.headers["Retry-After"] == str(error["retry_after"])
    assert "per minute" in error["message"] and "param" not in error


def test_usage_rows_are_tagged_with_the_ai_route(fake_site):
    before = len(fake_site.usage_rows())
    assert post(fake_site, "/ai/chat", CHAT).status_code == 200
    assert post(fake_site, "/ai/generate", {"model": TEXT_MODEL, "prompt": "Once", "max_tokens": 2}).status_code == 200
    assert post(fake_site, "/ai/embeddings", {"model": EMBED_MODEL, "input": ["a", "b"]}).status_code == 200
    assert post(fake_site, "/ai/chat", {**CHAT, "temperature": 9}).status_code == 400  # refused: not an inference
    rows = fake_site.usage_rows()[before:]
    assert [(r["endpoint"], r["model_id"], r["source"], r["outcome"]) for r in rows] == [
        ("/ai/chat", CHAT_MODEL, "api", "finished"),
        ("/ai/generate", TEXT_MODEL, "api", "finished"),
        ("/ai/embeddings", EMBED_MODEL, "api", "finished"),
    ]
    assert (rows[0]["prompt_tokens"], rows[0]["completion_tokens"]) == (4, 4)  # what the answer said
    assert rows[2]["embedding_inputs"] == 2


def test_the_openapi_document_lists_the_ai_routes(fake_site):
    document = requests.get(f"{fake_site.base}/v1/openapi.json", timeout=TIMEOUT).json()
    assert {"/ai/models", "/ai/chat", "/ai/generate", "/ai/embeddings"} <= set(document["paths"])
    chat = document["paths"]["/ai/chat"]["post"]
    assert chat["tags"] == ["Unified"]
    assert chat["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/AiChatRequest"
    }
    assert set(chat["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
    assert chat["responses"]["429"] == {"$ref": "#/components/responses/AiTooManyRequests"}
    too_many = document["components"]["responses"]["AiTooManyRequests"]
    assert too_many["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/AiError"}
    assert "Retry-After" in too_many["headers"]
    schemas = document["components"]["schemas"]
    assert set(schemas["AiErrorDetail"]["properties"]) == {"code", "message", "param", "retry_after", "status"}
    assert set(schemas["AiChatRequest"]["properties"]) >= {"model", "messages", "temperature", "max_tokens", "top_p"}
    assert {"stream", "tools"} <= set(schemas["AiChatRequest"]["properties"])
    assert schemas["AiChatRequest"]["properties"]["temperature"]["x-range"] == "temperature"  # from RANGES
    assert CHAT_MODEL in schemas["AiChatRequest"]["properties"]["model"]["examples"]
    # the /v1 routes still answer in OpenAI's shape
    assert document["paths"]["/v1/models"]["get"]["responses"]["401"] == {"$ref": "#/components/responses/Unauthorized"}
