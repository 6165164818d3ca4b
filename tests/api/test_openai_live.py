"""The official openai SDK, unchanged, against the live site (Daphne, the real default models), every endpoint."""

from __future__ import annotations

import io
import time
import wave
from typing import Literal

import openai
import pytest
from openai import OpenAI

from tests.api.conftest import SPANISH, LiveSite
from tests.audio import is_english_translation

CHAT_MODEL, COMPLETION_MODEL, EMBED_MODEL = "smollm2-135m-instruct", "gemma-3-270m", "all-minilm-l6-v2"
MESSAGES = [{"role": "user", "content": "Name one colour."}]


@pytest.fixture(scope="module")
def client(live: LiveSite) -> OpenAI:
    # Generous timeout: the first request to each model loads it. No retries: a refusal must show as one.
    return OpenAI(base_url=f"{live.base}/v1", api_key=live.token, max_retries=0, timeout=120)


def test_models_list(client: OpenAI):
    models = {m.id: m for m in client.models.list()}
    assert set(models) >= {
        CHAT_MODEL,
        COMPLETION_MODEL,
        EMBED_MODEL,
        "whisper-tiny.en",
        "whisper-base",
        "piper-en-us-joe",
    }
    chat = models[CHAT_MODEL]
    assert chat.object == "model" and chat.owned_by and chat.created > 0
    assert chat.task == "text-to-text" and chat.context_length == 8192 and "chat" in chat.capabilities
    assert client.models.retrieve("whisper-base").task == "speech-to-text"


def test_chat_non_stream_and_stream_agree_with_exact_usage(client: OpenAI):
    kwargs = dict(model=CHAT_MODEL, messages=MESSAGES, max_tokens=8, temperature=0, seed=7, stop=["\n\n"])
    kwargs["extra_body"] = {"top_k": 1, "repetition_penalty": 1.0}
    completion = client.chat.completions.create(**kwargs)
    choice = completion.choices[0]
    assert completion.object == "chat.completion" and completion.model == CHAT_MODEL
    assert choice.message.role == "assistant" and choice.message.content.strip()
    assert choice.finish_reason in ("stop", "length") and choice.logprobs is None
    assert completion.service_tier in ("cpu", "gpu") and completion.system_fingerprint
    usage = completion.usage
    assert usage.prompt_tokens > 5 and 1 <= usage.completion_tokens <= 8
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens

    stream = client.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == choice.message.content  # temperature 0, same seed, fresh context: the same reply
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        choice.finish_reason
    ]
    final = chunks[-1]
    assert final.choices == []
    assert (final.usage.prompt_tokens, final.usage.completion_tokens, final.usage.total_tokens) == (
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.total_tokens,
    )


def test_completions_non_stream_and_stream(client: OpenAI):
    result = client.completions.create(model=COMPLETION_MODEL, prompt="The three primary colours are", max_tokens=6)
    assert result.object == "text_completion" and result.choices[0].text
    assert result.usage.completion_tokens <= 6 and result.usage.prompt_tokens > 3
    stream = client.completions.create(
        model=COMPLETION_MODEL,
        prompt="Once upon a time",
        max_tokens=5,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].text for c in chunks if c.choices)
    assert chunks[-1].usage.completion_tokens <= 5


def test_embeddings_float_and_default_base64(client: OpenAI):
    texts = ["The cat sat on the mat.", "A kitten is resting on a rug."]
    floats = client.embeddings.create(model=EMBED_MODEL, input=texts, encoding_format="float")
    assert len(floats.data) == 2 and len(floats.data[0].embedding) == 384
    assert floats.usage.prompt_tokens > 0
    default = client.embeddings.create(model=EMBED_MODEL, input=texts[0])  # the SDK asks for base64
    vector = default.data[0].embedding
    assert len(vector) == 384
    assert vector == pytest.approx(floats.data[0].embedding, abs=1e-5)
    with pytest.raises(openai.BadRequestError) as refused:
        client.embeddings.create(model=EMBED_MODEL, input="x", dimensions=128)
    assert refused.value.body["param"] == "dimensions"


def test_transcription_of_real_speech(client: OpenAI, fox_wav: bytes):
    transcript = client.audio.transcriptions.create(model="whisper-tiny.en", file=("fox.wav", fox_wav, "audio/wav"))
    assert "fox" in transcript.text.lower()
    srt = client.audio.transcriptions.create(
        model="whisper-tiny.en", file=("fox.wav", fox_wav, "audio/wav"), response_format="srt", language="en"
    )
    assert isinstance(srt, str) and srt.startswith("1\n00:00:0") and "fox" in srt.lower()


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # the SDK deprecates translations.create
def test_translation_of_spanish_speech(client: OpenAI):
    translated = client.audio.translations.create(
        model="whisper-base", file=("es.ogg", SPANISH.read_bytes(), "audio/ogg"), extra_body={"language": "es"}
    )
    assert is_english_translation(translated.text), translated.text


def test_speech_is_wav(client: OpenAI):
    speech = client.audio.speech.create(
        model="piper-en-us-joe", voice="default", input="Hello there.", response_format="wav", speed=1.2
    )
    with wave.open(io.BytesIO(speech.content)) as wav:
        assert wav.getframerate() == 22050 and wav.getnframes() > 0


def test_the_sdks_documented_speech_example_works_unchanged(client: OpenAI, tmp_path):
    # As in the SDK's README, with our model: voice="alloy" speaks with the model's voice. The SDK asks for no
    # format unless told (the server then answers in its default, WAV).
    path = tmp_path / "speech.wav"
    with client.audio.speech.with_streaming_response.create(
        model="piper-en-us-joe", voice="alloy", input="Today is a wonderful day to build something people love!"
    ) as response:
        response.stream_to_file(path)
    with wave.open(str(path)) as wav:
        assert wav.getframerate() == 22050 and wav.getnframes() > 22050


def test_refusals_reach_the_sdk_as_its_errors(client: OpenAI):
    with pytest.raises(openai.NotFoundError, match="embeddings"):
        client.chat.completions.create(model=EMBED_MODEL, messages=MESSAGES)
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES, extra_body={"mirostat": 2})
    assert refused.value.body["param"] == "mirostat"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES, service_tier="flex")
    with pytest.raises(openai.AuthenticationError):
        OpenAI(base_url=client.base_url, api_key="gp_wrong", max_retries=0).models.list()


def test_closing_a_stream_stops_the_engine(client: OpenAI):
    """Daphne reports the disconnect, Django cancels the response, our generator cancels the job: the model is free
    again at once. (Counting on for 900 tokens takes the base model well over 10 s on two CPU cores; it never
    stops early. 900: a request's share of the batched context is 1,024 tokens.)"""
    stream = client.completions.create(
        model=COMPLETION_MODEL, prompt="1, 2, 3, 4, 5, 6, 7, 8, 9, 10,", max_tokens=900, temperature=0, stream=True
    )
    received = [next(stream) for _ in range(3)]
    assert all(chunk.choices[0].finish_reason is None for chunk in received)
    stream.close()
    started = time.monotonic()
    result = client.completions.create(model=COMPLETION_MODEL, prompt="Hello", max_tokens=2)
    assert result.usage.completion_tokens <= 2
    assert time.monotonic() - started < 5


def test_json_schema_replies_parse_and_validate_and_the_sdks_parse_works(client: OpenAI):
    """response_format is enforced with a grammar: even the 135M model can only answer matching JSON."""
    import json

    from pydantic import BaseModel, Field

    class Colour(BaseModel):
        name: str = Field(max_length=20)
        warm: bool
        rgb: list[int] = Field(min_length=3, max_length=3)

    parsed = client.chat.completions.parse(
        model=CHAT_MODEL, messages=MESSAGES, response_format=Colour, max_tokens=96, temperature=0
    )
    choice = parsed.choices[0]
    assert choice.finish_reason == "stop", choice.message.content
    assert isinstance(choice.message.parsed, Colour) and len(choice.message.parsed.rgb) == 3
    streamed = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=MESSAGES,
        response_format={"type": "json_object"},
        max_tokens=64,
        temperature=0.8,
        seed=3,
        stream=True,
    )
    text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    assert isinstance(json.loads(text), dict)
    with pytest.raises(openai.BadRequestError, match="response_format"):
        client.chat.completions.create(
            model=CHAT_MODEL,
            messages=MESSAGES,
            response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": "not a schema"}},
        )


WEATHER_TOOL = {  # OpenAI's documented example
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get current temperature for a given location.",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string", "description": "City and country e.g. Bogotá, Colombia"}},
            "required": ["location"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
WEATHER_QUESTION = [{"role": "user", "content": "What is the weather like in Paris today?"}]


def test_the_sdks_tools_round_trip(client: OpenAI):
    """Call -> tool message -> answer, with the SDK's own message object put back into the history."""
    import json

    messages: list = list(WEATHER_QUESTION)
    completion = client.chat.completions.create(
        model=CHAT_MODEL, messages=messages, tools=[WEATHER_TOOL], tool_choice="required", temperature=0
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and completion.usage.completion_tokens > 0
    (call,) = choice.message.tool_calls
    assert call.id.startswith("call_") and call.function.name == "get_weather"
    assert "Paris" in json.loads(call.function.arguments)["location"]
    messages.append(choice.message)
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "18 degrees Celsius and sunny"})
    answer = client.chat.completions.create(
        model=CHAT_MODEL, messages=messages, tools=[WEATHER_TOOL], max_tokens=48, temperature=0
    )
    assert answer.choices[0].message.content and not answer.choices[0].message.tool_calls
    # auto (the documented call, no tool_choice): a valid call or text, whichever the model picks
    auto = client.chat.completions.create(model=CHAT_MODEL, messages=WEATHER_QUESTION, tools=[WEATHER_TOOL])
    for made in auto.choices[0].message.tool_calls or ():
        assert isinstance(json.loads(made.function.arguments)["location"], str)
    none = client.chat.completions.create(
        model=CHAT_MODEL, messages=WEATHER_QUESTION, tools=[WEATHER_TOOL], tool_choice="none", max_tokens=32
    )
    assert none.choices[0].message.tool_calls is None and none.choices[0].finish_reason in ("stop", "length")


def test_streamed_tool_calls_are_assembled_by_the_sdk_and_parse_works(client: OpenAI):
    from pydantic import BaseModel

    class GetWeather(BaseModel):
        location: str
        unit: Literal["celsius", "fahrenheit"]

    tool = openai.pydantic_function_tool(GetWeather, name="get_weather", description="The weather now.")
    with client.chat.completions.stream(
        model=CHAT_MODEL, messages=WEATHER_QUESTION, tools=[tool], tool_choice="required", temperature=0.7, seed=2
    ) as stream:
        pieces = [event for event in stream if event.type == "tool_calls.function.arguments.delta"]
        final = stream.get_final_completion()
    assert pieces, "the arguments arrive as deltas"
    calls = final.choices[0].message.tool_calls
    assert calls and all(isinstance(call.function.parsed_arguments, GetWeather) for call in calls)
    assert len({call.id for call in calls}) == len(calls)
    assert final.choices[0].finish_reason == "tool_calls"
    parsed = client.chat.completions.parse(
        model=CHAT_MODEL,
        messages=WEATHER_QUESTION,
        tools=[tool],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        temperature=0,
    )
    assert isinstance(parsed.choices[0].message.tool_calls[0].function.parsed_arguments, GetWeather)
