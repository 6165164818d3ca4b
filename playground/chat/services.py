"""The rules of a chat: conversations, turns, and recording each finished reply exactly once."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from inference import ChatMessage, InvalidRequestError, Job, SamplingParams, TextChunk, Usage
from inference.text import fit_messages
from inference.tools import ToolUse
from inference.types import Overflow as InferenceOverflow
from inference.types import ToolCall
from playground import engines, serving
from playground.chat.models import Conversation, Message, Overflow
from playground.chat.selectors import ancestors, children_of, conversation_path, descend, history_of
from playground.contract import openai as contract
from playground.contract.errors import Problem
from playground.contract.fields import parse
from playground.projects.models import Project

TITLE_LENGTH = 60


def title_from(text: str) -> str:
    """A title from the first prompt: its first line, cut at a word near TITLE_LENGTH characters."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if len(line) <= TITLE_LENGTH:
        return line or "New conversation"
    cut = line[:TITLE_LENGTH].rsplit(" ", 1)[0] or line[:TITLE_LENGTH]
    return cut + "…"


def conversation_rename(*, conversation: Conversation, title: str) -> Conversation:
    conversation.title = title
    conversation.save(update_fields=["title", "updated_at"])
    return conversation


def conversation_delete(*, conversation: Conversation) -> None:
    conversation.delete()


TOOL_KEYS = ("tools", "tool_choice", "parallel_tool_calls", "response_format")


@dataclass(frozen=True)
class ToolSetup:
    """A turn's tools and reply format: as saved on the conversation, as the model uses them, and the sampling
    values with the grammar that holds the reply to them."""

    fields: dict[str, Any]  # TOOL_KEYS in OpenAI's shapes (absent: not set)
    use: ToolUse | None
    params: SamplingParams


def tools_prepare(*, model_id: str, params: SamplingParams, fields: Mapping[str, Any], chat: bool = True) -> ToolSetup:
    """Check a frame's tool fields exactly as /v1/chat/completions checks them and add their grammar to `params`.

    Builds grammars from JSON Schemas (slow for a big one): call it off the event loop. Raises Problem (a bad
    tool, tools beside a response_format, tools for a completion model).
    """
    parsed = parse(contract.PlaygroundTools, dict(fields), where="ws/chat")
    use = parsed.tool_use()
    if not chat and use is not None and use.tools:
        raise Problem("unsupported_parameter", "tools: a completion model cannot call tools", param="tools")
    grammar = serving.format_grammar(parsed.response_format)
    if grammar is not None:
        params = dataclasses.replace(params, grammar=grammar)
    params = serving.with_tools(params, model_id=model_id, use=use)
    saved = parsed.model_dump(mode="json", by_alias=True, exclude_none=True, include=set(TOOL_KEYS))
    return ToolSetup(fields=saved, use=use, params=params)


def _tools_save(conversation: Conversation, fields: Mapping[str, Any] | None) -> list[str]:
    """Put a turn's tool fields on the conversation (not saved here); the names of the changed columns."""
    if fields is None:
        return []
    conversation.tools = list(fields.get("tools") or [])
    conversation.tool_choice = fields.get("tool_choice")
    conversation.parallel_tool_calls = fields.get("parallel_tool_calls")
    conversation.response_format = fields.get("response_format")
    return list(TOOL_KEYS)


def conversation_create(
    *,
    user: AbstractBaseUser,
    model_id: str,
    system_prompt: str = "",
    title: str = "",
    tool_fields: Mapping[str, Any] | None = None,
    overflow: str | None = None,
    project: Project | None = None,
) -> Conversation:
    """A new conversation in the project (default: the user's personal one)."""
    conversation = Conversation(user=user, project=project, model_id=model_id, system_prompt=system_prompt, title=title)
    _tools_save(conversation, tool_fields)
    if overflow is not None:
        conversation.overflow = overflow
    conversation.save()
    return conversation


def overflow_parse(raw: object) -> str | None:
    """A frame's `overflow`: "drop_oldest" or "refuse" (absent or null: the conversation's own setting)."""
    if raw is None:
        return None
    if raw not in Overflow.values:
        choices = ", ".join(Overflow.values)
        raise Problem("invalid_parameter", f"overflow must be one of {choices} (got {raw!r})", param="overflow")
    return str(raw)


def conversation_settings_save(*, conversation: Conversation, overflow: str | None) -> Conversation:
    """Save a conversation's settings chosen outside a turn (the overflow setting, when given)."""
    if overflow is not None and overflow != conversation.overflow:
        conversation.overflow = overflow
        conversation.save(update_fields=["overflow", "updated_at"])
    return conversation


def _not_found(what: str = "message") -> Problem:
    return Problem("not_found", f"{what} not found", param=what)


def tree_chain(conversation: Conversation) -> None:
    """Give a conversation saved before branches existed (no leaf, no parents) its line: each message follows
    the one before it, and the last is the branch shown. Nothing to do for any other conversation."""
    if conversation.leaf_id is not None:
        return
    rows = list(conversation.messages.all())
    if not rows or any(m.parent_id is not None for m in rows):
        return
    for previous, message in zip(rows, rows[1:], strict=False):
        Message.objects.filter(pk=message.pk).update(parent=previous)
        message.parent_id = previous.pk
    conversation.leaf_id = rows[-1].pk
    Conversation.objects.filter(pk=conversation.pk).update(leaf=rows[-1])


def _tree(conversation: Conversation) -> tuple[list[Message], dict[int, Message], list[Message]]:
    """The conversation's messages, by id, and the branch shown."""
    tree_chain(conversation)
    rows = list(conversation.messages.all())
    return rows, {m.pk: m for m in rows}, conversation_path(conversation=conversation, rows=rows)


def _target(by_id: dict[int, Message], message_id: object) -> Message:
    """The message a frame names, in this conversation (not_found for any other, as for a conversation)."""
    if not isinstance(message_id, int) or isinstance(message_id, bool):
        raise Problem("missing_required_parameter", "message: a message id is required", param="message")
    message = by_id.get(message_id)
    if message is None:
        raise _not_found()
    return message


@dataclass(frozen=True)
class Prompt:
    """A message a turn adds before its reply: the user's message, or a tool result."""

    role: str
    content: str
    tool_call_id: str = ""


@dataclass(frozen=True)
class Turn:
    """A reply about to be generated: where it goes and what the model is sent.

    The turn_* functions build it without writing anything; `turn_accept` saves it (a new conversation, the
    conversation's settings and the prompt messages) once the model has taken the request, so a refused turn
    leaves no trace. `reply_record` then saves the reply after `reply_parent`.
    """

    conversation: Conversation  # not saved yet (no pk) for a new one: created when the turn is accepted
    history: list[ChatMessage]
    model_id: str = ""
    parent: int | None = None  # the message the prompts (or, without prompts, the reply) follow
    prompts: tuple[Prompt, ...] = ()
    system_prompt: str | None = None  # None: the conversation's stays
    tool_fields: Mapping[str, Any] | None = None  # None: the conversation's stay
    overflow: str | None = None  # None: the conversation's stays
    replaces: int | None = None  # an empty reply (stopped before its first token) a regenerate supersedes
    continues: int | None = None  # the reply a Continue appends to
    saved: tuple[int, ...] = ()  # once accepted: the ids of the saved prompts
    accepted: bool = False

    @property
    def reply_parent(self) -> int | None:
        return self.saved[-1] if self.saved else self.parent

    @property
    def overflow_mode(self) -> InferenceOverflow:
        """What the engine does when the history does not fit: the frame's choice, else the conversation's."""
        return "refuse" if (self.overflow or self.conversation.overflow) == "refuse" else "drop_oldest"


def turn_prepare(
    *,
    user: AbstractBaseUser,
    model_id: str,
    conversation: Conversation | None,
    system_prompt: str,
    content: str,
    tool_fields: Mapping[str, Any] | None = None,
    overflow: str | None = None,
    project: Project | None = None,
) -> Turn:
    """A new message at the end of the branch shown (a new conversation, in `project` (default: the user's
    personal one), when `conversation` is None).

    `tool_fields` (ToolSetup.fields), when given, replace the conversation's tools and reply format."""
    if not content.strip():
        raise InvalidRequestError("the message is empty")
    if conversation is None:
        title = title_from(content)
        conversation = Conversation(
            user=user, project=project, model_id=model_id, system_prompt=system_prompt, title=title
        )
        _tools_save(conversation, tool_fields)
        if overflow is not None:
            conversation.overflow = overflow
        path = []
    else:
        path = _tree(conversation)[2]
    return Turn(
        conversation=conversation,
        history=[*history_of(system_prompt, path), ChatMessage("user", content)],
        model_id=model_id,
        parent=path[-1].pk if path else None,
        prompts=(Prompt(Message.Role.USER, content),),
        system_prompt=system_prompt,
        tool_fields=tool_fields,
        overflow=overflow,
    )


def turn_start(
    *,
    user: AbstractBaseUser,
    model_id: str,
    conversation: Conversation | None,
    system_prompt: str,
    content: str,
    tool_fields: Mapping[str, Any] | None = None,
    overflow: str | None = None,
    project: Project | None = None,
) -> Turn:
    """Save the user's message now (creating the conversation on the first one): `turn_prepare` and `turn_accept`
    in one, for a reply that was already generated (Compare's "use this one")."""
    turn = turn_prepare(
        user=user,
        project=project,
        model_id=model_id,
        conversation=conversation,
        system_prompt=system_prompt,
        content=content,
        tool_fields=tool_fields,
        overflow=overflow,
    )
    return turn_accept(turn)


def turn_edit(
    *,
    conversation: Conversation,
    message_id: object,
    model_id: str,
    content: str,
    system_prompt: str | None = None,
    tool_fields: Mapping[str, Any] | None = None,
    overflow: str | None = None,
) -> Turn:
    """A new version of one of the user's messages, answered from there: the old one and what followed it stay,
    as another branch."""
    if not content.strip():
        raise InvalidRequestError("the message is empty")
    _, by_id, _ = _tree(conversation)
    target = _target(by_id, message_id)
    if target.role != Message.Role.USER:
        raise Problem("invalid_parameter", "message: only your own messages can be edited", param="message")
    before = ancestors(by_id, by_id[target.parent_id]) if target.parent_id in by_id else []
    system = conversation.system_prompt if system_prompt is None else system_prompt
    return Turn(
        conversation=conversation,
        history=[*history_of(system, before), ChatMessage("user", content)],
        model_id=model_id,
        parent=target.parent_id,
        prompts=(Prompt(Message.Role.USER, content),),
        system_prompt=system_prompt,
        tool_fields=tool_fields,
        overflow=overflow,
    )


def turn_regenerate(
    *,
    conversation: Conversation,
    model_id: str,
    message_id: object = None,
    system_prompt: str | None = None,
    tool_fields: Mapping[str, Any] | None = None,
    overflow: str | None = None,
) -> Turn:
    """Another version of a reply (`message_id`; by default the last reply of the branch shown, or an answer to
    its last message when that is not a reply). The earlier versions stay; an empty one (stopped before its first
    token, nothing after it) is replaced when the new one is saved."""
    rows, by_id, path = _tree(conversation)
    if message_id is not None:
        target: Message | None = _target(by_id, message_id)
        assert target is not None
        if target.role != Message.Role.ASSISTANT or target.parent_id not in by_id:
            raise Problem("invalid_parameter", "message: only a reply can be generated again", param="message")
        prompt = by_id[target.parent_id]
    else:
        if not any(m.role == Message.Role.USER for m in path):
            raise InvalidRequestError("there is no message to answer again")
        last = path[-1]
        target = last if last.role == Message.Role.ASSISTANT else None
        prompt = by_id[last.parent_id] if target is not None and last.parent_id in by_id else last
        if prompt.role == Message.Role.ASSISTANT:
            raise InvalidRequestError("there is no message to answer again")
    empty = target is not None and not target.content and not target.tool_calls
    childless = target is not None and not any(m.parent_id == target.pk for m in rows)
    system = conversation.system_prompt if system_prompt is None else system_prompt
    return Turn(
        conversation=conversation,
        history=history_of(system, ancestors(by_id, prompt)),
        model_id=model_id,
        parent=prompt.pk,
        system_prompt=system_prompt,
        tool_fields=tool_fields,
        overflow=overflow,
        replaces=target.pk if target is not None and empty and childless else None,
    )


def turn_continue(
    *,
    conversation: Conversation,
    model_id: str,
    message_id: object = None,
    system_prompt: str | None = None,
    tool_fields: Mapping[str, Any] | None = None,
    overflow: str | None = None,
) -> Turn:
    """More of a reply cut off by max tokens (`message_id`, by default the last message shown): the model is sent
    the history ending with that reply, and what it writes is appended to it."""
    _, by_id, path = _tree(conversation)
    target = _target(by_id, message_id) if message_id is not None else (path[-1] if path else None)
    if target is None or target.role != Message.Role.ASSISTANT or not path or target.pk != path[-1].pk:
        raise Problem("invalid_parameter", "message: only the last reply can be continued", param="message")
    if target.finish_reason != "length" or target.tool_calls:
        raise Problem(
            "invalid_parameter",
            "message: only a reply cut off by max tokens (finish reason length) can be continued",
            param="message",
        )
    system = conversation.system_prompt if system_prompt is None else system_prompt
    return Turn(
        conversation=conversation,
        history=history_of(system, path),
        model_id=model_id,
        parent=target.parent_id,
        system_prompt=system_prompt,
        tool_fields=tool_fields,
        overflow=overflow,
        continues=target.pk,
    )


def turn_accept(turn: Turn) -> Turn:
    """Save what the turn adds, now that the model has taken it: the conversation (created on the first message)
    with the turn's model, system prompt, tools and overflow setting, and the prompt messages after `parent`,
    the last of them becoming the branch shown. The accepted turn, with `conversation` and `saved` set.

    Raises Problem when the conversation changed meanwhile (the message the turn follows was deleted, the calls
    were answered from another tab)."""
    with transaction.atomic():
        conversation = turn.conversation
        if conversation.pk is None:
            conversation.save()
        else:
            # Lock the conversation first, so that two turns saved at once are checked one after the other.
            Conversation.objects.select_for_update().filter(pk=conversation.pk).first()
            if turn.parent is not None and not conversation.messages.filter(pk=turn.parent).exists():
                raise _not_found()
            results = [ToolResult(p.tool_call_id, p.content) for p in turn.prompts if p.role == Message.Role.TOOL]
            if results:
                _tool_results_check(conversation_path(conversation=conversation), results)
            conversation.model_id = turn.model_id or conversation.model_id
            fields = ["model_id", "updated_at", *_tools_save(conversation, turn.tool_fields)]
            if turn.system_prompt is not None:
                conversation.system_prompt = turn.system_prompt
                fields.append("system_prompt")
            if turn.overflow is not None:
                conversation.overflow = turn.overflow
                fields.append("overflow")
            conversation.save(update_fields=fields)
        saved: list[int] = []
        parent = turn.parent
        for prompt in turn.prompts:
            row = Message.objects.create(
                conversation=conversation,
                parent_id=parent,
                role=prompt.role,
                content=prompt.content,
                tool_call_id=prompt.tool_call_id,
            )
            saved.append(row.pk)
            parent = row.pk
        if saved:
            conversation.leaf_id = saved[-1]
            Conversation.objects.filter(pk=conversation.pk).update(leaf_id=saved[-1])
    return dataclasses.replace(turn, conversation=conversation, saved=tuple(saved), accepted=True)


def conversation_select(*, conversation: Conversation, message_id: object) -> Conversation:
    """Show the branch through a message (a version picked with ‹ ›): down to the newest message after it."""
    rows, by_id, _ = _tree(conversation)
    leaf = descend(rows, _target(by_id, message_id))
    if leaf is not None and leaf.pk != conversation.leaf_id:
        conversation.leaf_id = leaf.pk
        Conversation.objects.filter(pk=conversation.pk).update(leaf=leaf)
    return conversation


def message_delete(*, conversation: Conversation, message_id: object) -> Conversation:
    """Delete a message of the conversation.

    A user message goes with the replies that answer it (every version, with their tool calls and results): the
    exchange is removed and the conversation after it moves up to the message before it. A reply (or a tool
    result) goes with what followed it on its branch; its other versions stay. The branch shown stays when it
    survives, else it becomes the newest one through the deleted message's parent.
    """
    with transaction.atomic():
        Conversation.objects.select_for_update().filter(pk=conversation.pk).first()
        rows, by_id, _ = _tree(conversation)
        target = _target(by_id, message_id)
        if target.role == Message.Role.USER:
            children = children_of(rows)
            moved, stack = [], list(children.get(target.pk, []))
            while stack:
                row = stack.pop()
                if row.role == Message.Role.USER:
                    moved.append(row.pk)
                else:
                    stack.extend(children.get(row.pk, []))
            Message.objects.filter(pk__in=moved).update(parent_id=target.parent_id)
        parent_id = target.parent_id
        target.delete()  # and, by cascade, what still follows it; a deleted leaf is set to null
        conversation.refresh_from_db(fields=["leaf"])
        if conversation.leaf_id is None:
            rows = list(conversation.messages.all())
            anchor = next((m for m in rows if m.pk == parent_id), None)
            leaf = descend(rows, anchor)
            if leaf is not None:
                conversation.leaf_id = leaf.pk
                Conversation.objects.filter(pk=conversation.pk).update(leaf=leaf)
    return conversation


@dataclass(frozen=True)
class ToolResult:
    tool_call_id: str
    content: str


MAX_RESULT_LENGTH = 100_000
MAX_CALL_ID_LENGTH = 100  # Message.tool_call_id


def tool_results_parse(raw: object) -> list[ToolResult]:
    """A tool_result frame's `results`: [{"tool_call_id": str, "content": str}, ...] (Problem naming the field)."""
    if raw is None:
        raise Problem("missing_required_parameter", "results: the tool results are required", param="results")
    if not isinstance(raw, list) or not raw:
        raise Problem("invalid_parameter", "results must be a non-empty list of tool results", param="results")
    results = []
    for index, item in enumerate(raw):
        where = f"results[{index}]"
        if not isinstance(item, dict):
            raise Problem("invalid_parameter", f"{where} must be an object", param=where)
        unknown = sorted(set(item) - {"tool_call_id", "content"})
        if unknown:
            raise Problem(
                "unknown_parameter", f"{where}.{unknown[0]} is not a known field", param=f"{where}.{unknown[0]}"
            )
        call_id, content = item.get("tool_call_id"), item.get("content")
        if not isinstance(call_id, str) or not call_id:
            raise Problem(
                "missing_required_parameter",
                f"{where}.tool_call_id: the call's id is required",
                param=f"{where}.tool_call_id",
            )
        if len(call_id) > MAX_CALL_ID_LENGTH:
            raise Problem(
                "invalid_parameter",
                f"{where}.tool_call_id may be at most {MAX_CALL_ID_LENGTH} characters",
                param=f"{where}.tool_call_id",
            )
        if not isinstance(content, str):
            raise Problem("invalid_parameter", f"{where}.content must be a string", param=f"{where}.content")
        if len(content) > MAX_RESULT_LENGTH:
            raise Problem(
                "invalid_parameter",
                f"{where}.content may be at most {MAX_RESULT_LENGTH} characters (got {len(content)})",
                param=f"{where}.content",
            )
        results.append(ToolResult(tool_call_id=call_id, content=content))
    return results


def _tool_results_check(path: Sequence[Message], results: Sequence[ToolResult]) -> None:
    """Each result answers one call of the branch's last reply, once; together with any results already saved
    they answer every call (as /v1 requires of a history). Problem naming the id otherwise."""
    last = max((i for i, m in enumerate(path) if m.role == Message.Role.ASSISTANT), default=-1)
    reply = path[last] if last >= 0 else None
    after = path[last + 1 :]
    calls = {c["id"]: c["name"] for c in (reply.tool_calls or [])} if reply is not None else {}
    if after and any(m.role != Message.Role.TOOL for m in after):
        calls = {}  # the conversation has moved on: nothing waits for a result
    answered = {m.tool_call_id for m in after}
    seen: set[str] = set()
    for index, result in enumerate(results):
        param = f"results[{index}].tool_call_id"
        if result.tool_call_id not in calls:
            raise Problem(
                "invalid_parameter",
                f"{param}: {result.tool_call_id!r} is not a call of the conversation's last reply",
                param=param,
            )
        if result.tool_call_id in answered or result.tool_call_id in seen:
            raise Problem(
                "invalid_parameter", f"{param}: the call {result.tool_call_id!r} already has a result", param=param
            )
        seen.add(result.tool_call_id)
    missing = [call_id for call_id in calls if call_id not in answered | seen]
    if missing:
        raise Problem(
            "missing_required_parameter",
            f"results: the call {missing[0]!r} ({calls[missing[0]]}) has no result; answer every call of the reply",
            param="results",
        )


def turn_tool_results(
    *,
    conversation: Conversation,
    model_id: str,
    results: Sequence[ToolResult],
    tool_fields: Mapping[str, Any] | None = None,
    overflow: str | None = None,
) -> Turn:
    """The results of the last reply's tool calls, to be saved as tool messages (`turn_accept`), and the history
    to send. Problem naming the id when they do not answer the calls (`_tool_results_check`)."""
    _, _, path = _tree(conversation)
    _tool_results_check(path, results)
    prompts = tuple(Prompt(Message.Role.TOOL, r.content, tool_call_id=r.tool_call_id) for r in results)
    history = history_of(conversation.system_prompt, path)
    history += [ChatMessage("tool", r.content, tool_call_id=r.tool_call_id) for r in results]
    return Turn(
        conversation=conversation,
        history=history,
        model_id=model_id,
        parent=path[-1].pk if path else None,
        prompts=prompts,
        tool_fields=tool_fields,
        overflow=overflow,
    )


def reply_stream(
    *,
    model_id: str,
    params: SamplingParams,
    messages: list[ChatMessage] | None = None,
    prompt: str = "",
    tools: ToolUse | None = None,
    overflow: InferenceOverflow = "refuse",
    continue_final: bool = False,
) -> Job[TextChunk]:
    """Queue a reply on the model's worker (chat models take messages, completion models a prompt). With
    `overflow` "drop_oldest" the engine leaves out the oldest exchanges that do not fit; the last chunk says how
    many messages that was (`dropped_messages`)."""
    return serving.text_stream(
        model_id=model_id,
        params=params,
        messages=messages or (),
        prompt=prompt,
        tools=tools,
        overflow=overflow,
        continue_final=continue_final,
    )


def params_json(params: SamplingParams) -> dict[str, Any]:
    """The sampling values of a reply as saved with it (the grammar is not: the conversation's tools and reply
    format say what it was built from)."""
    data = asdict(params)
    data["stop"] = list(params.stop)
    data.pop("grammar", None)
    data.pop("grammar_trigger", None)
    return data


def calls_json(calls: Sequence[ToolCall]) -> list[dict[str, str]]:
    return [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls]


def reply_record(
    *,
    model_id: str,
    params: SamplingParams,
    text: str,
    finish_reason: str,
    usage: Usage,
    ttft_seconds: float | None,
    tokens_per_second: float | None,
    turn: Turn | None = None,
    tool_calls: Sequence[ToolCall] = (),
    dropped_messages: int = 0,
) -> Message | None:
    """Record one finished (or cut short) reply, exactly once: the saved message with the speed the meter
    measured (the meter itself folds that speed into the model's card).

    A chat reply (an accepted turn) is saved after the turn's prompt with its parameters, usage, metrics, finish
    reason, tool calls (its text then without the whitespace around the calls) and how many of the oldest
    messages were left out; it becomes the branch shown. A continuation is appended to the reply it continues
    (its completion tokens added; the other figures are the continuation's). A completion (no turn) is not saved.
    Billing and the card are the meter's (playground/usage/services.py).
    """
    if turn is None or not turn.accepted:
        return None
    conversation = turn.conversation
    with transaction.atomic():
        if turn.continues is not None:
            message = Message.objects.select_for_update().filter(pk=turn.continues, conversation=conversation).first()
            if message is None:
                return None  # deleted meanwhile
            message.content += text
            message.tool_calls = [*(message.tool_calls or []), *calls_json(tool_calls)] or None
            message.model_id = model_id
            message.params = params_json(params)
            message.prompt_tokens = usage.prompt_tokens
            message.completion_tokens = (message.completion_tokens or 0) + usage.completion_tokens
            if tokens_per_second is not None:
                message.tokens_per_second = round(tokens_per_second, 2)
            message.finish_reason = finish_reason
            message.dropped_messages = dropped_messages
            message.save()
        else:
            if turn.replaces is not None:
                Message.objects.filter(pk=turn.replaces, conversation=conversation, children__isnull=True).delete()
            message = Message.objects.create(
                conversation=conversation,
                parent_id=turn.reply_parent,
                role=Message.Role.ASSISTANT,
                content=text.strip() if tool_calls else text,
                tool_calls=calls_json(tool_calls) or None,
                model_id=model_id,
                params=params_json(params),
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                ttft_ms=None if ttft_seconds is None else round(ttft_seconds * 1000, 1),
                tokens_per_second=None if tokens_per_second is None else round(tokens_per_second, 2),
                finish_reason=finish_reason,
                dropped_messages=dropped_messages,
            )
        conversation.leaf_id = message.pk
        Conversation.objects.filter(pk=conversation.pk).update(updated_at=timezone.now(), leaf=message)
    return message


# --- the context meter ------------------------------------------------------------------------------------------


def count_tools(fields: Mapping[str, Any]) -> ToolUse | None:
    """The tools a count includes: the frame's tool fields when they are valid (a count never refuses; sending
    the message says what is wrong with them)."""
    try:
        return parse(contract.PlaygroundTools, dict(fields), where="ws/chat").tool_use()
    except Problem:
        return None


def context_read(
    *,
    model_id: str,
    system_prompt: str,
    path: Sequence[Message],
    draft: str,
    max_tokens: int,
    overflow: str,
    tools: ToolUse | None = None,
) -> dict[str, Any]:
    """The context meter's reading for the next message: the prompt's tokens through the model's own template
    (history, draft, both; cached by serving.count_prompt_tokens), the reply's max tokens, and the model's context.

    `min_prompt_tokens` is the shortest the prompt can become by leaving out the oldest turns (the system prompt
    and the last exchange: the draft, or the branch's last message); `dropped` how many messages would be left
    out ("drop_oldest"; 0 when it fits; null when it cannot fit, or with "refuse"). Blocking (tokenizes; loads
    the model the first time): call it off the event loop.
    """
    n_ctx = engines.get_pool().spec(model_id).n_ctx

    def count(messages: Sequence[ChatMessage]) -> int:
        return serving.count_prompt_tokens(model_id=model_id, messages=messages, tools=tools) if messages else 0

    history = history_of(system_prompt, list(path))
    full = [*history, ChatMessage("user", draft)] if draft.strip() else history
    history_tokens = count(history)
    prompt_tokens = count(full) if full is not history else history_tokens
    head = 1 if full and full[0].role == "system" else 0
    last_user = max((i for i, m in enumerate(full) if m.role == "user"), default=len(full))
    min_prompt_tokens = count([*full[:head], *full[max(last_user, head) :]])
    fits = prompt_tokens + max_tokens <= n_ctx
    dropped: int | None = 0 if fits else None
    if not fits and overflow == "drop_oldest" and min_prompt_tokens + max_tokens <= n_ctx:
        # The engine's own rule for what it leaves out, over the same counts.
        _, kept = fit_messages(
            full, lambda turns: [0] * count(turns), n_ctx=n_ctx, max_tokens=max_tokens, overflow="drop_oldest"
        )
        dropped = len(full) - len(kept)
    return {
        "n_ctx": n_ctx,
        "max_tokens": max_tokens,
        "history_tokens": history_tokens,
        "draft_tokens": prompt_tokens - history_tokens,
        "prompt_tokens": prompt_tokens,
        "min_prompt_tokens": min_prompt_tokens,
        "fits": fits,
        "dropped": dropped,
        "overflow": overflow,
    }
