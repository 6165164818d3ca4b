"""inference/tools.py without a model: the catalog's tool format, prompts for templates without tools, the call
grammar, and reading calls back from a reply in any split."""

from __future__ import annotations

import json

import pytest

from inference.grammar import check_gbnf
from inference.tools import (
    MAX_PARALLEL_CALLS,
    ArgumentsPiece,
    CallEnd,
    CallStart,
    TextPiece,
    ToolCallParser,
    ToolFormat,
    ToolUse,
    call_grammar,
    call_schema,
    parse_reply,
    render,
)
from inference.types import ChatMessage, InvalidRequestError, Tool, ToolCall

FMT = ToolFormat()
WEATHER = Tool("get_weather", "Weather now.", {"type": "object", "properties": {"location": {"type": "string"}}})
REPLY = (
    "Let me check.\n"
    '<tool_call>\n{"name": "get_weather", "arguments": {"location": "Paris, {France}"}}\n</tool_call>\n'
    '<tool_call>\n{"name": "get_time", "arguments": {}}</tool_call>'
)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 11, 1000])
def test_a_reply_reads_the_same_whatever_its_pieces(size):
    pieces = [REPLY[i : i + size] for i in range(0, len(REPLY), size)]
    reply = parse_reply(pieces, FMT)
    assert reply.text == "Let me check."
    assert reply.calls == (("get_weather", '{"location": "Paris, {France}"}'), ("get_time", "{}"))
    assert reply.complete


def test_the_event_stream_of_a_call():
    parser = ToolCallParser(FMT)
    events = parser.feed("Hi <tool") + parser.feed('_call>\n{"name": "f", "arguments": {"a": 1}')
    assert events == [TextPiece("Hi "), CallStart(0, "f"), ArgumentsPiece(0, '{"a": 1')]  # "}" may close the call
    assert parser.feed("}") == [ArgumentsPiece(0, "}")]  # ...it did not: this one may
    assert parser.feed("\n</tool_call>") + parser.finish() == [CallEnd(0)]


def test_a_call_cut_short_and_text_that_only_looks_like_one():
    cut = parse_reply('<tool_call>\n{"name": "f", "arguments": {"a": [1, 2', FMT)
    assert cut.calls == (("f", '{"a": [1, 2'),) and not cut.complete
    assert parse_reply("a <tool_call>not json</tool_call> b", FMT).text == "a <tool_call>not json</tool_call> b"
    assert parse_reply("ends with <tool", FMT).text == "ends with <tool"


def test_custom_tags_from_the_catalog():
    fmt = ToolFormat.from_catalog({"template": "model", "open": "[CALL]", "close": "[/CALL]"})
    assert parse_reply('[CALL]{"name": "f", "arguments": {}}[/CALL]', fmt).calls == (("f", "{}"),)
    for bad in ({"template": "jinja"}, {"open": ""}, {"colour": "red"}, "yes"):
        with pytest.raises(ValueError, match="tools"):
            ToolFormat.from_catalog(bad)


def test_render_describes_the_tools_and_writes_out_calls_and_results():
    call = ToolCall("call_1", "get_weather", '{"location":"Paris"}')
    history = [
        ChatMessage("system", "Be brief."),
        ChatMessage("user", "Weather in Paris and Rome?"),
        ChatMessage("assistant", "", (call, ToolCall("call_2", "get_weather", '{"location":"Rome"}'))),
        ChatMessage("tool", "18 C", tool_call_id="call_1"),
        ChatMessage("tool", "25 C", tool_call_id="call_2"),
    ]
    turns = render(history, (WEATHER,), FMT)
    assert [t.role for t in turns] == ["system", "user", "assistant", "user"]
    assert turns[0].content.startswith("Be brief.") and '"name": "get_weather"' in turns[0].content
    assert turns[2].content.count("<tool_call>") == 2 and '{"location": "Paris"}' in turns[2].content
    assert "18 C" in turns[3].content and "25 C" in turns[3].content
    assert render(history[1:2], (), FMT) == history[1:2]  # no tools, nothing added


def test_the_grammar_of_calls():
    single = call_grammar((WEATHER,), FMT, parallel=False)
    check_gbnf(single)
    assert "{0," not in single and '"<tool_call>"' in single
    parallel = call_grammar((WEATHER, Tool("get_time")), FMT, parallel=True)
    assert f"{{0,{MAX_PARALLEL_CALLS - 1}}}" in parallel and "get_time" in parallel
    with pytest.raises(InvalidRequestError, match="patternProperties"):
        call_grammar((Tool("f", parameters={"type": "object", "patternProperties": {"a": {}}}),), FMT, parallel=False)


def test_references_inside_a_tools_parameters_are_kept():
    nested = Tool(
        "add_person",
        parameters={
            "type": "object",
            "properties": {"person": {"$ref": "#/$defs/Person"}},
            "$defs": {"Person": {"type": "object", "properties": {"name": {"type": "string"}}}},
        },
    )
    schema = call_schema((nested,))
    assert json.dumps(schema).count("#/$defs/tool0/$defs/Person") == 1
    check_gbnf(call_grammar((nested,), FMT, parallel=False))


def test_tool_use_rules():
    assert not ToolUse((WEATHER,), "none").active and ToolUse((WEATHER,), "auto").active
    assert ToolUse((WEATHER,), "required").forced and not ToolUse((WEATHER,), "auto").forced
    with pytest.raises(InvalidRequestError, match="needs tools"):
        ToolUse((), "required").check()
    with pytest.raises(InvalidRequestError, match="not among the tools"):
        ToolUse((WEATHER,), "get_time").check()
    with pytest.raises(InvalidRequestError, match="defined twice"):
        ToolUse((WEATHER, WEATHER)).check()
    with pytest.raises(InvalidRequestError, match="letters, digits"):
        ToolUse((Tool("get weather"),)).check()
