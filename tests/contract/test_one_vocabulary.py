"""One contract: the same bad value gets the same code, param and message on /v1, on TGI's routes (which nest the
field under parameters), on the Playground's socket and in the Playground's form; and every surface reads its
range from RANGES."""

from __future__ import annotations

import json
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.test import Client

from inference.types import RANGES
from playground.asgi import application
from playground.catalog.forms import SLIDERS, SamplingForm
from playground.contract import openai, tgi
from playground.contract.fields import parse

pytestmark = pytest.mark.django_db(transaction=True)

CHAT = {"model": "fake-chat", "messages": [{"role": "user", "content": "hi"}]}
BAD = [
    ("temperature", 5),
    ("temperature", -0.5),
    ("top_p", 1.5),
    ("top_k", -1),
    ("min_p", 2),
    ("max_tokens", 999_999),
    ("presence_penalty", -3),
    ("frequency_penalty", 2.5),
    ("repetition_penalty", 0),
    ("seed", -1),
    ("temperature", "hot"),
]
TGI_NAMES = {"max_tokens": "max_new_tokens"}


@pytest.fixture
def cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def _socket_error(cookie: bytes, params: dict[str, Any]) -> dict[str, Any]:
    headers = [(b"origin", b"http://localhost"), (b"cookie", cookie)]
    socket = WebsocketCommunicator(application, "/ws/chat/", headers=headers)
    assert (await socket.connect(timeout=5))[0]
    frame = {"type": "generate", "model": "fake-chat", "conversation": None, "system": "", "content": "hi"}
    await socket.send_json_to({**frame, "params": params})
    error = await socket.receive_json_from(timeout=5)
    await socket.disconnect()
    return error


@pytest.mark.parametrize(("name", "value"), BAD)
async def test_a_bad_value_gets_one_code_param_and_message_everywhere(
    async_client, auth, fake_pool, cookie, name, value
):
    v1 = await async_client.post("/v1/chat/completions", {**CHAT, name: value}, content_type="application/json", **auth)
    assert v1.status_code == 400
    error = v1.json()["error"]
    assert error["param"] == name and error["message"].startswith(f"{name} must be ")
    assert f"(got {json.dumps(value) if isinstance(value, str) else value})".replace('"', "'") in error["message"]

    if name not in ("min_p", "presence_penalty"):  # not TGI parameters
        tgi_name = f"parameters.{TGI_NAMES.get(name, name)}"
        answer = await async_client.post(
            "/models/fake-chat/generate",
            {"inputs": "hi", "parameters": {TGI_NAMES.get(name, name): value}},
            content_type="application/json",
            **auth,
        )
        assert answer.status_code == 400
        tgi_error = answer.json()["error"]
        assert (tgi_error["code"], tgi_error["param"]) == (error["code"], tgi_name)
        assert tgi_error["message"] == tgi_name + error["message"].removeprefix(name)

    frame = await _socket_error(cookie, {name: value})
    assert frame == {"type": "error", "code": error["code"], "param": name, "message": error["message"]}


def test_the_playground_form_refuses_what_the_api_refuses_and_accepts_its_edges(fake_pool):
    spec = fake_pool.spec("fake-chat")
    for name in SLIDERS:
        range_ = RANGES[name]
        high = spec.n_ctx if name == "max_tokens" else range_.high
        assert SamplingForm({name: high}, spec=spec).is_valid(), name
        form = SamplingForm({name: high + 1}, spec=spec)
        assert not form.is_valid()
        assert form.problem().message == f"{name} must be {range_.text(high)} (got {high + 1})"
        low_ok = SamplingForm({name: range_.low}, spec=spec).is_valid()
        assert low_ok is not range_.low_open, name


@pytest.mark.parametrize("name", list(RANGES))
def test_each_dialect_reads_the_range_from_the_table(name):
    """Values just inside a range pass every dialect's contract; just outside, every one refuses them."""
    range_ = RANGES[name]
    inside = range_.high if range_.high is not None else range_.low
    outside = range_.low - 1
    chat = {**CHAT, name: inside}
    assert getattr(parse(openai.ChatCompletionRequest, chat, where="chat"), name) == inside
    with pytest.raises(Exception, match=f"{name} must be {range_.text()}"):
        parse(openai.ChatCompletionRequest, {**CHAT, name: outside}, where="chat")
    tgi_name = TGI_NAMES.get(name, name)
    if tgi_name in tgi.GenerateParameters.model_fields:
        with pytest.raises(Exception, match=f"parameters.{tgi_name} must be {range_.text()}"):
            parse(tgi.GenerateRequest, {"inputs": "x", "parameters": {tgi_name: outside}}, where="tgi")
