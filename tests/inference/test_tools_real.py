"""Function calling on the real models: with the tools described and the call grammar (inference/tools.py), every
call SmolLM2 (serialized and batched) and Gemma write names a tool and its arguments validate, greedy and sampled;
a lazy grammar (tool_choice auto) leaves the text before its trigger free and holds from the trigger on."""

from __future__ import annotations

import json
from typing import Any

import jsonschema_rs
import pytest

from inference.tools import ToolFormat, call_grammar, describe, parse_reply, render
from inference.types import ChatMessage, SamplingParams, Tool
from tests.inference.test_grammar_real import batched, run, run_together  # noqa: F401  (a fixture)

FORMAT = ToolFormat()
WEATHER = Tool(  # OpenAI's documented example
    "get_weather",
    "Get current temperature for a given location.",
    {
        "type": "object",
        "properties": {"location": {"type": "string", "description": "City and country e.g. Bogotá, Colombia"}},
        "required": ["location"],
        "additionalProperties": False,
    },
)
BOOKING = Tool(  # nested object, enum, bounded integer, bounded string, boolean
    "book_table",
    "Book a table at a restaurant.",
    {
        "type": "object",
        "properties": {
            "restaurant": {"type": "string", "minLength": 1, "maxLength": 20},
            "people": {"type": "integer", "minimum": 1, "maximum": 12},
            "time": {"enum": ["18:00", "19:00", "20:00"]},
            "options": {
                "type": "object",
                "properties": {"outdoor": {"type": "boolean"}},
                "required": ["outdoor"],
                "additionalProperties": False,
            },
        },
        "required": ["restaurant", "people", "time", "options"],
        "additionalProperties": False,
    },
)
TOOLS = (WEATHER, BOOKING)
QUESTIONS = ("What is the weather like in Paris today?", "Book a table for four at Chez Marie tonight at eight.")
MAX_TOKENS = 96  # the longest single call of these tools fits
CALL_SAMPLES = 10  # sampled replies per question, besides the greedy one


def params(seed: int | None, *, parallel: bool = False, trigger: str | None = None) -> SamplingParams:
    grammar = call_grammar(TOOLS, FORMAT, parallel=parallel)
    temperature = 0.0 if seed is None else 0.8
    return SamplingParams(
        temperature=temperature, seed=seed, max_tokens=MAX_TOKENS, grammar=grammar, grammar_trigger=trigger
    )


def messages(question: str) -> list[ChatMessage]:
    return render([ChatMessage("user", question)], TOOLS, FORMAT)


def assert_calls_valid(text: str, *, complete: bool = True) -> list[tuple[str, Any]]:
    reply = parse_reply(text, FORMAT)
    assert reply.calls, text
    if complete:
        assert reply.complete, text
    calls = []
    for name, arguments in reply.calls[: len(reply.calls) if reply.complete else -1]:
        tool = next(t for t in TOOLS if t.name == name)
        value = json.loads(arguments)
        errors = [e.message for e in jsonschema_rs.validator_for(dict(tool.parameters)).iter_errors(value)]
        assert not errors, f"{text!r}: {errors}"
        calls.append((name, value))
    return calls


@pytest.mark.parametrize("question", QUESTIONS)
def test_every_smollm2_call_validates_greedy_and_sampled(smollm2, question):
    cut = 0
    for seed in (None, *range(CALL_SAMPLES)):
        text, last = run(smollm2.chat(messages(question), params(seed)))
        if last.finish_reason == "length":  # sampled, a string without a bound can wander past the limit
            assert seed is not None, text
            cut += 1
            assert_calls_valid(text, complete=False)
            continue
        assert len(assert_calls_valid(text)) == 1
    assert cut <= CALL_SAMPLES // 5


def test_the_documented_get_weather_example_gives_a_call_for_paris(smollm2):
    """OpenAI's example with its one tool, greedy: the arguments are the model's own and sound here."""
    weather_only = SamplingParams(
        temperature=0, max_tokens=MAX_TOKENS, grammar=call_grammar((WEATHER,), FORMAT, parallel=False)
    )
    asked = render([ChatMessage("user", QUESTIONS[0])], (WEATHER,), FORMAT)
    ((name, arguments),) = assert_calls_valid(run(smollm2.chat(asked, weather_only))[0])
    assert name == "get_weather" and "Paris" in arguments["location"]


def test_batched_calls_validate_each_with_its_own_grammar_state(batched):  # noqa: F811  (the fixture)
    requests = {(q, seed): (messages(q), params(seed)) for q in QUESTIONS for seed in (None, 1, 2, 3)}
    for key, (text, last) in run_together(batched, requests).items():
        assert last.finish_reason == "stop", (key, text)
        assert_calls_valid(text)


def test_parallel_calls_are_each_valid(smollm2):
    """With parallel calls allowed the grammar admits several; each complete one validates (a small model may
    repeat its call until the limit: the site ends the reply at a repeat, see tests/api/test_tools.py)."""
    question = "What is the weather in Tokyo and in Berlin?"
    for seed in (None, 1, 2):
        text, _last = run(smollm2.chat(messages(question), params(seed, parallel=True)))
        assert assert_calls_valid(text, complete=False)


def test_gemma_completion_calls_validate(gemma):
    for question in QUESTIONS:
        prompt = f"{describe(TOOLS, FORMAT)}\n\nUser: {question}\nAssistant: "
        for seed in (None, 1, 2, 3, 4):
            text, last = run(gemma.complete(prompt, params(seed)))
            assert last.finish_reason == "stop", text
            assert_calls_valid(text)


def test_a_lazy_grammar_holds_from_its_trigger_on(smollm2):
    """tool_choice auto: free text until the trigger, then the grammar (here one the model would never write)."""
    ask = [ChatMessage("user", "Describe a cat in one sentence.")]
    triggered = 0
    for seed in (None, 1, 2, 3):
        lazy = SamplingParams(
            temperature=0.0 if seed is None else 0.8,
            seed=seed,
            max_tokens=60,
            grammar='root ::= "cat" " is a fish."',
            grammar_trigger="cat",
        )
        text, last = run(smollm2.chat(ask, lazy))
        assert last.finish_reason == "stop", text
        if "cat" in text:
            assert text.endswith("cat is a fish."), text
            triggered += 1
    assert triggered >= 2  # greedy: "A cat is a fish."


# A tool-aware chat template in the Hermes / Qwen 2.5 style (ChatML with a tools section and tool turns).
TOOL_TEMPLATE = """{%- if tools %}<|im_start|>system
{% if messages[0].role == 'system' %}{{ messages[0].content }}

{% endif %}# Tools
<tools>
{% for tool in tools %}{{ tool | tojson }}
{% endfor %}</tools>
For each call, return <tool_call>
{"name": <function-name>, "arguments": <args-json-object>}
</tool_call><|im_end|>
{% endif %}
{%- for message in messages %}
{%- if message.role == 'system' %}{% if not tools %}<|im_start|>system
{{ message.content }}<|im_end|>
{% endif %}
{%- elif message.role == 'tool' %}<|im_start|>user
<tool_response>
{{ message.content }}
</tool_response><|im_end|>
{% elif message.role == 'assistant' and message.tool_calls %}<|im_start|>assistant
{% for call in message.tool_calls %}<tool_call>
{"name": "{{ call.function.name }}", "arguments": {{ call.function.arguments | tojson }}}
</tool_call>
{% endfor %}<|im_end|>
{% else %}<|im_start|>{{ message.role }}
{{ message.content }}<|im_end|>
{% endif %}
{%- endfor %}<|im_start|>assistant
"""


def test_a_tool_aware_template_gets_the_tools_and_the_turns(smollm2):
    """template = "model": the tools and structured turns go to the model's own template (here a Hermes-style one
    on SmolLM2's weights); the call still validates."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    from inference.types import ToolCall

    formatter = smollm2._formatter
    smollm2._formatter = Jinja2ChatFormatter(template=TOOL_TEMPLATE, eos_token="<|im_end|>", bos_token="")
    try:
        history = [
            ChatMessage("user", "What is the weather like in Paris today?"),
            ChatMessage("assistant", "", (ToolCall("call_1", "get_weather", '{"location": "Paris"}'),)),
            ChatMessage("tool", "18 C and sunny", tool_call_id="call_1"),
            ChatMessage("user", "And in Rome?"),
        ]
        prompt = smollm2.llm.detokenize(smollm2.chat_prompt_tokens(history, (WEATHER,))).decode()
        assert '"name": "get_weather"' in prompt and "<tool_response>\n18 C and sunny" in prompt
        assert '"arguments": {"location": "Paris"}' in prompt
        grammar = call_grammar((WEATHER,), FORMAT, parallel=False)
        text, last = run(
            smollm2.chat(
                history, SamplingParams(temperature=0, max_tokens=MAX_TOKENS, grammar=grammar), tools=(WEATHER,)
            )
        )
        assert last.finish_reason == "stop"
        ((name, arguments),) = assert_calls_valid(text)
        assert name == "get_weather" and isinstance(arguments["location"], str)
    finally:
        smollm2._formatter = formatter
