"""Function calling: how a model is told about tools, how it must write a call, and how its calls are read back.

A call is written as the Hermes / Qwen format writes it, a JSON object between tags::

    <tool_call>
    {"name": "get_weather", "arguments": {"location": "Paris"}}
    </tool_call>

A model's catalog entry says how tools reach it (`ToolFormat`): "injected" (the default: for templates without a
tool section, such as SmolLM2's) puts the tool descriptions into the system turn and renders earlier calls and
their results as plain turns (`render`); "model" hands the tools and the structured turns to the model's own chat
template (a tool-aware template, e.g. Qwen's or Hermes'). Either way `call_grammar` gives the GBNF that makes
every call valid: the engine applies it to the whole reply (`required`, a named function) or from the opening tag
on (`auto`: `SamplingParams.grammar_trigger`). `ToolCallParser` reads a reply, streamed or whole, into text and
calls, so the text before a call streams as it comes and a call's arguments stream in pieces.

Plain Python: the grammar comes from inference/grammar.py (llama_cpp is imported there, lazily).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from inference.types import ChatMessage, InvalidRequestError, Tool, ToolCall

OPEN = "<tool_call>"
CLOSE = "</tool_call>"
MAX_PARALLEL_CALLS = 8  # calls in one reply when parallel calls are allowed: a small model cannot loop for ever
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # OpenAI's rule for a function's name
TEMPLATES = ("injected", "model")


@dataclass(frozen=True)
class ToolFormat:
    """How one model is given tools (`template`) and the tags around each call it writes."""

    template: Literal["injected", "model"] = "injected"
    open: str = OPEN
    close: str = CLOSE

    @classmethod
    def from_catalog(cls, raw: object) -> ToolFormat:
        """A catalog entry's `tools = {template = ..., open = ..., close = ...}` (ValueError naming the key)."""
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise ValueError("tools must be a table: {template = ..., open = ..., close = ...}")
        unknown = set(raw) - {"template", "open", "close"}
        if unknown:
            raise ValueError(f"tools: unknown keys {sorted(unknown)}")
        template = raw.get("template", "injected")
        if template not in TEMPLATES:
            raise ValueError(f"tools.template must be one of {', '.join(TEMPLATES)}")
        tags = {key: raw.get(key, default) for key, default in (("open", OPEN), ("close", CLOSE))}
        for key, tag in tags.items():
            if not isinstance(tag, str) or not tag.strip() or len(tag) > 64:
                raise ValueError(f"tools.{key} must be a non-empty tag of at most 64 characters")
        return cls(template=template, open=tags["open"], close=tags["close"])

    def call_text(self, call: ToolCall) -> str:
        """A call as the model writes it (for the history)."""
        return f'{self.open}\n{{"name": {json.dumps(call.name)}, "arguments": {_arguments_json(call)}}}\n{self.close}'


def _arguments_json(call: ToolCall) -> str:
    try:
        return json.dumps(json.loads(call.arguments), ensure_ascii=False)
    except ValueError:  # a client's own history may hold anything; pass it as a string
        return json.dumps(call.arguments, ensure_ascii=False)


# --- prompts -----------------------------------------------------------------------------------------------------


def describe(tools: Sequence[Tool], fmt: ToolFormat) -> str:
    """The system turn's tool section: each tool as JSON, and how to call one."""
    lines = "\n".join(json.dumps(tool, ensure_ascii=False) for tool in template_tools(tools))
    return (
        "# Tools\n\nYou may call one or more functions to answer the user. The functions, as JSON Schemas, are "
        f"inside <tools></tools> tags:\n<tools>\n{lines}\n</tools>\n\nTo call a function, write a JSON object with "
        f"its name and arguments inside {fmt.open}{fmt.close} tags:\n"
        f'{fmt.open}\n{{"name": <function-name>, "arguments": <arguments-json-object>}}\n{fmt.close}\n'
        "The function's result comes back in a <tool_response></tool_response> block."
    )


def render(messages: Sequence[ChatMessage], tools: Sequence[Tool], fmt: ToolFormat) -> list[ChatMessage]:
    """The turns for a template without a tool section: the tools described at the end of the system turn (one
    is added when there is none), each earlier call written out in its assistant turn, and the results of
    consecutive tool turns as one user turn (templates that insist on alternating roles accept that)."""
    out: list[ChatMessage] = []
    if tools:
        section = describe(tools, fmt)
        if messages and messages[0].role == "system":
            out.append(ChatMessage("system", f"{messages[0].content}\n\n{section}".strip()))
            messages = messages[1:]
        else:
            out.append(ChatMessage("system", section))
    names = {}
    results: list[str] = []
    for message in messages:
        if message.role == "tool":
            results.append(f"<tool_response>\n{message.content}\n</tool_response>")
            continue
        if results:
            out.append(ChatMessage("user", "\n".join(results)))
            results = []
        if message.role == "assistant" and message.tool_calls:
            names.update({call.id: call.name for call in message.tool_calls})
            calls = "\n".join(fmt.call_text(call) for call in message.tool_calls)
            out.append(ChatMessage("assistant", f"{message.content}\n{calls}".strip()))
        else:
            out.append(ChatMessage(message.role, message.content))
    if results:
        out.append(ChatMessage("user", "\n".join(results)))
    return out


def template_messages(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """The turns as a tool-aware chat template reads them (OpenAI's shape; arguments as objects, as Qwen's and
    Hermes' templates expect)."""
    out: list[dict[str, Any]] = []
    for message in messages:
        turn: dict[str, Any] = {"role": message.role, "content": message.content}
        if message.tool_calls:
            turn["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.loads(_arguments_json(call))},
                }
                for call in message.tool_calls
            ]
        if message.role == "tool":
            turn["tool_call_id"] = message.tool_call_id
        out.append(turn)
    return out


def template_tools(tools: Sequence[Tool]) -> list[dict[str, Any]]:
    return [
        {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
        for t in tools
    ]


# --- the grammar of a call ---------------------------------------------------------------------------------------


def _relocated(node: Any, base: str) -> Any:
    """A tool's parameters moved under #/$defs/<name>: its own local references made to point there."""
    if isinstance(node, dict):
        moved = {key: _relocated(value, base) for key, value in node.items()}
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#"):
            moved["$ref"] = base + ref[1:]
        return moved
    if isinstance(node, list):
        return [_relocated(item, base) for item in node]
    return node


def call_schema(tools: Sequence[Tool]) -> dict[str, Any]:
    """The JSON Schema of one call: {"name": one of the tools, "arguments": that tool's parameters}, name first."""
    defs: dict[str, Any] = {}
    calls = []
    for index, tool in enumerate(tools):
        key = f"tool{index}"
        parameters = dict(tool.parameters) or {"type": "object", "properties": {}, "additionalProperties": False}
        defs[key] = _relocated(parameters, f"#/$defs/{key}")
        calls.append(
            {
                "type": "object",
                "properties": {"name": {"const": tool.name}, "arguments": {"$ref": f"#/$defs/{key}"}},
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
        )
    schema: dict[str, Any] = calls[0] if len(calls) == 1 else {"anyOf": calls}
    return {**schema, "$defs": defs}


def _literal(text: str) -> str:
    """A GBNF string literal."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped.replace("\t", "\\t")}"'


def call_grammar(tools: Sequence[Tool], fmt: ToolFormat, *, parallel: bool) -> str:
    """GBNF for a reply that is one call (or up to MAX_PARALLEL_CALLS with `parallel`) of these tools, each
    valid against its tool's parameters. Slow for big schemas (cached by them): call it off the event loop. An
    unsupported schema feature raises InvalidRequestError naming it."""
    from inference.grammar import check_gbnf, gbnf_from_json_schema

    if not tools:
        raise InvalidRequestError("there are no tools to call", param="tools")
    grammar = gbnf_from_json_schema(call_schema(tools), param="tools")
    body = re.sub(r"^root ::=", "tool-call ::=", grammar, count=1, flags=re.MULTILINE)
    more = f' ("\\n" call-block){{0,{MAX_PARALLEL_CALLS - 1}}}' if parallel else ""
    head = (
        f'root ::= call-block{more}\ncall-block ::= {_literal(fmt.open)} "\\n" tool-call "\\n"? {_literal(fmt.close)}\n'
    )
    text = head + body
    check_gbnf(text, param="tools")
    return text


# --- reading calls back ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextPiece:
    text: str


@dataclass(frozen=True)
class CallStart:
    index: int
    name: str


@dataclass(frozen=True)
class ArgumentsPiece:
    index: int
    text: str


@dataclass(frozen=True)
class CallEnd:
    index: int


ToolEvent = TextPiece | CallStart | ArgumentsPiece | CallEnd
_HEAD = re.compile(r'^\s*\{\s*"name"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"arguments"\s*:\s*(?=\S)')
_TAIL = re.compile(r"\s*\}\s*$")


def _held(text: str, tag: str) -> int:
    """How many characters at the end of `text` may be the start of `tag` (held back until the next piece)."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-n:]):
            return n
    return 0


class ToolCallParser:
    """Reads a reply piece by piece into text and calls (`feed`, then `finish` once it has ended).

    Text outside calls passes through (less a tail that may be the start of the opening tag); a call becomes
    CallStart (its name), ArgumentsPiece(s) (the JSON text of its arguments, as generated) and CallEnd. A call cut
    short ends with its arguments incomplete and no CallEnd; an opening tag without a well-formed call after it is
    passed on as text.
    """

    def __init__(self, fmt: ToolFormat) -> None:
        self.fmt = fmt
        self.pending = ""
        self.state: Literal["text", "head", "arguments"] = "text"
        self.calls = 0  # calls started

    def feed(self, text: str) -> list[ToolEvent]:
        self.pending += text
        events: list[ToolEvent] = []
        while True:
            if self.state == "text":
                found = self.pending.find(self.fmt.open)
                if found < 0:
                    keep = _held(self.pending, self.fmt.open)
                    out, self.pending = (
                        self.pending[: len(self.pending) - keep],
                        self.pending[len(self.pending) - keep :],
                    )
                    if out:
                        events.append(TextPiece(out))
                    return events
                if found:
                    events.append(TextPiece(self.pending[:found]))
                self.pending = self.pending[found + len(self.fmt.open) :]
                self.state = "head"
            elif self.state == "head":
                head = _HEAD.match(self.pending)
                if head is None:
                    close = self.pending.find(self.fmt.close)
                    if close < 0:
                        return events
                    # Not our call format: give it back as text.
                    events.append(TextPiece(self.fmt.open + self.pending[: close + len(self.fmt.close)]))
                    self.pending = self.pending[close + len(self.fmt.close) :]
                    self.state = "text"
                    continue
                events.append(CallStart(self.calls, json.loads(f'"{head.group(1)}"')))
                self.calls += 1
                self.pending = self.pending[head.end() :]
                self.state = "arguments"
            else:
                index = self.calls - 1
                close = self.pending.find(self.fmt.close)
                if close < 0:
                    cut = self._safe_end()
                    if cut:
                        events.append(ArgumentsPiece(index, self.pending[:cut]))
                        self.pending = self.pending[cut:]
                    return events
                arguments = _TAIL.sub("", self.pending[:close])  # the call object's own closing brace
                if arguments:
                    events.append(ArgumentsPiece(index, arguments))
                events.append(CallEnd(index))
                self.pending = self.pending[close + len(self.fmt.close) :].lstrip("\n")
                self.state = "text"

    def _safe_end(self) -> int:
        """How much of the arguments may go out: not a last `}` that may close the call object (followed only by
        whitespace and the start of the closing tag)."""
        text = self.pending
        brace = text.rfind("}")
        if brace < 0:
            return len(text)
        rest = text[brace + 1 :].lstrip()
        if self.fmt.close.startswith(rest):
            return brace
        return len(text)

    def finish(self) -> list[ToolEvent]:
        """What is left once the reply has ended (cut short: an incomplete call's last arguments)."""
        rest, self.pending = self.pending, ""
        if self.state == "text":
            return [TextPiece(rest)] if rest else []
        if self.state == "head":
            self.state = "text"
            return [TextPiece(self.fmt.open + rest)]
        self.state = "text"
        return [ArgumentsPiece(self.calls - 1, rest)] if rest else []


@dataclass(frozen=True)
class ParsedReply:
    text: str
    calls: tuple[tuple[str, str], ...]  # (name, arguments JSON text)
    complete: bool  # every call started was closed


def parse_reply(text: str | Iterable[str], fmt: ToolFormat) -> ParsedReply:
    """A whole reply (or its pieces) read into its text and calls."""
    parser = ToolCallParser(fmt)
    events: list[ToolEvent] = []
    for piece in [text] if isinstance(text, str) else text:
        events += parser.feed(piece)
    events += parser.finish()
    parts: list[str] = []
    names: list[str] = []
    arguments: list[list[str]] = []
    ended = 0
    for event in events:
        if isinstance(event, TextPiece):
            parts.append(event.text)
        elif isinstance(event, CallStart):
            names.append(event.name)
            arguments.append([])
        elif isinstance(event, ArgumentsPiece):
            arguments[event.index].append(event.text)
        else:
            ended += 1
    calls = tuple((name, "".join(args)) for name, args in zip(names, arguments, strict=True))
    return ParsedReply(
        text="".join(parts).strip() if calls else "".join(parts), calls=calls, complete=ended == len(calls)
    )


def check_tools(tools: Sequence[Tool]) -> None:
    """Names as OpenAI allows them, each once (InvalidRequestError naming the tool)."""
    seen: set[str] = set()
    for index, tool in enumerate(tools):
        if not NAME_PATTERN.match(tool.name):
            raise InvalidRequestError(
                f"tools[{index}].function.name must be 1 to 64 letters, digits, _ or - (got {tool.name!r})",
                param=f"tools[{index}].function.name",
            )
        if tool.name in seen:
            raise InvalidRequestError(
                f"tools[{index}].function.name: {tool.name!r} is defined twice", param=f"tools[{index}].function.name"
            )
        seen.add(tool.name)


@dataclass(frozen=True)
class ToolUse:
    """The tools of one chat request and how the model may use them: `choice` "auto" (it decides), "none" (it
    answers in text; the tools are not even described), "required" (it calls one or more), or a tool's name (it
    calls that one, once). `parallel`: more than one call in a reply."""

    tools: tuple[Tool, ...] = ()
    choice: str = "auto"
    parallel: bool = True

    @property
    def active(self) -> bool:
        """Whether the model is told about the tools and its calls are read back."""
        return bool(self.tools) and self.choice != "none"

    @property
    def forced(self) -> bool:
        """Whether the whole reply must be calls (`required` or a named tool)."""
        return self.active and self.choice != "auto"

    def callable(self) -> tuple[Tool, ...]:
        """The tools a call may name."""
        if self.choice in ("auto", "required", "none"):
            return self.tools
        return tuple(t for t in self.tools if t.name == self.choice)

    def check(self) -> None:
        """Names as OpenAI allows them, each once; a named choice among them (InvalidRequestError naming it)."""
        check_tools(self.tools)
        if self.choice not in ("auto", "none") and not self.tools:
            raise InvalidRequestError(f"tool_choice {self.choice!r} needs tools", param="tool_choice")
        if self.choice not in ("auto", "none", "required") and not self.callable():
            names = ", ".join(t.name for t in self.tools)
            raise InvalidRequestError(
                f"tool_choice names the function {self.choice!r}, which is not among the tools ({names})",
                param="tool_choice",
            )
