"""response_format (OpenAI) and grammar (TGI): the grammar reaches the engine, the reply is the constrained text,
bad schemas and patterns are 400s naming the field (fake engines; the real models in tests/inference and live)."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

CHAT = {"model": "fake-chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 20}
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


async def post(client, path: str, body: Any, auth: dict[str, Any]):  # noqa: ANN001, ANN201
    return await client.post(path, json.dumps(body), content_type="application/json", **auth)


def grammar_seen(pool) -> str | None:  # noqa: ANN001
    return pool.workers["fake-chat"].engine.calls[-1]["grammar"]


async def test_json_object_and_json_schema_reach_the_engine_as_grammars(async_client, auth, fake_pool):
    answer = await post(
        async_client, "/v1/chat/completions", {**CHAT, "response_format": {"type": "json_object"}}, auth
    )
    assert answer.status_code == 200, answer.content
    assert json.loads(answer.json()["choices"][0]["message"]["content"]) == {"answer": "fake"}
    assert "object" in grammar_seen(fake_pool)
    schema_format = {"type": "json_schema", "json_schema": {"name": "a", "schema": SCHEMA, "strict": True}}
    answer = await post(async_client, "/v1/chat/completions", {**CHAT, "response_format": schema_format}, auth)
    assert answer.status_code == 200 and "answer" in grammar_seen(fake_pool)
    plain = await post(async_client, "/v1/chat/completions", {**CHAT, "response_format": {"type": "text"}}, auth)
    assert plain.status_code == 200 and grammar_seen(fake_pool) is None


async def test_a_reply_cut_short_says_length(async_client, auth, fake_pool):
    body = {**CHAT, "max_tokens": 1, "response_format": {"type": "json_object"}}
    choice = (await post(async_client, "/v1/chat/completions", body, auth)).json()["choices"][0]
    assert choice["finish_reason"] == "length"


@pytest.mark.parametrize(
    ("response_format", "param"),
    [
        ({"type": "json_schema"}, "response_format.json_schema"),
        ({"type": "json_schema", "json_schema": {"name": "a", "schema": "x"}}, "response_format.json_schema.schema"),
        ({"type": "xml"}, "response_format.type"),
        ({"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "nonsense"}}}, None),
    ],
)
async def test_bad_response_formats_are_400s_naming_the_field(async_client, auth, fake_pool, response_format, param):
    answer = await post(async_client, "/v1/chat/completions", {**CHAT, "response_format": response_format}, auth)
    assert answer.status_code == 400, answer.content
    error = answer.json()["error"]
    assert error["param"].startswith(param or "response_format.json_schema.schema"), error


async def test_tgi_grammar_json_and_regex(async_client, auth, fake_pool):
    body = {"inputs": "hi", "parameters": {"max_new_tokens": 10, "grammar": {"type": "json", "value": SCHEMA}}}
    answer = await post(async_client, "/models/fake-chat/generate", body, auth)
    assert answer.status_code == 200 and json.loads(answer.json()["generated_text"]) == {"answer": "fake"}
    as_text = {"type": "json", "value": json.dumps(SCHEMA)}  # huggingface_hub may send the schema as text
    body["parameters"]["grammar"] = as_text
    assert (await post(async_client, "/models/fake-chat/generate", body, auth)).status_code == 200
    body["parameters"]["grammar"] = {"type": "regex", "value": "(yes|no)"}
    assert (await post(async_client, "/models/fake-chat/generate", body, auth)).status_code == 200
    assert "yes" in grammar_seen(fake_pool)
    body["parameters"]["grammar"] = {"type": "regex", "value": "(a)\\1"}
    answer = await post(async_client, "/models/fake-chat/generate", body, auth)
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "parameters.grammar.value"
