"""The Playground's streaming socket at ``ws/chat/`` (chat and plain completion).

Only signed-in users may connect (the session authenticates the socket; anonymous
sockets are refused before the handshake completes). Every frame is a JSON object.

Client to server::

    {"type": "generate", "mode": "chat", "model": id, "conversation": id | null,
     "system": str, "content": str, "params": {...panel fields...}, "overflow"?: "drop_oldest" | "refuse",
     + the tool fields}
    {"type": "generate", "mode": "completion", "model": id, "content": str, "params": {...},
     "response_format"?: {...}}
    {"type": "regenerate", "conversation": id, "message"?: id, "model"?: id, "system"?: str, "params": {...},
     "overflow"?, + the tool fields}                         another version of a reply (default: the last one)
    {"type": "edit", "conversation": id, "message": id, "content": str, "model"?, "system"?, "params",
     "overflow"?, + the tool fields}                         a new version of a user message, answered
    {"type": "continue", "conversation": id, "message"?: id, "model"?, "system"?, "params", "overflow"?,
     + the tool fields}                                      more of the last reply, cut off by max tokens
    {"type": "tool_result", "conversation": id, "results": [{"tool_call_id": str, "content": str}, ...],
     "model": id (optional), "params": {...}, + the tool fields}
    {"type": "select", "conversation": id, "message": id}    show the branch through that version
    {"type": "delete", "conversation": id, "message": id}    delete a message (services.message_delete)
    {"type": "settings", "conversation": id, "overflow": "drop_oldest" | "refuse"}
                                                              save the conversation's setting now (a new
                                                              conversation gets it with its first message)
    {"type": "count", "seq": any, "model": id, "conversation": id | null, "system": str, "content": str,
     "params": {"max_tokens"}, "overflow"?, + the tool fields}
                                                              the context meter for the draft (never refused)
    {"type": "stop"}

``params`` holds the Advanced Parameters panel's fields (temperature, top_p, top_k,
max_tokens, presence_penalty, frequency_penalty, repetition_penalty, seed, stop as
one string of lines or a list); a blank or missing field takes the model's default,
an out-of-range one is refused with the panel's message (never clamped).

The tool fields are /v1/chat/completions' own, checked exactly as it checks them
(playground/contract/openai.py, ``PlaygroundTools``): ``tools`` (``[{"type": "function", "function": {"name",
"description", "parameters"}}]``), ``tool_choice`` ("auto" | "none" | "required" | ``{"type": "function",
"function": {"name"}}``), ``parallel_tool_calls`` and ``response_format`` (``{"type": "json_object"}`` or
``{"type": "json_schema", "json_schema": {"name", "schema"}}``; null or ``{"type": "text"}``: free text). They
are saved on the conversation; a frame that carries none of them uses the conversation's saved ones (a new
conversation: none). ``tool_result`` saves each result as a tool message: every id must be a call of the
conversation's last reply, and together the results answer all of its calls; then the next reply streams.

A conversation is a tree: each message follows a parent, and messages with the same parent are versions (an
edited message, a regenerated reply), shown as the branch from the first message down to the conversation's
leaf. ``overflow`` (saved on the conversation; default "drop_oldest") says what happens when the history and
max tokens do not fit the model's context: "drop_oldest" leaves out the oldest exchanges after the system
prompt (never the last message) and the reply says how many messages that was; "refuse" refuses the turn with
code "context_length_exceeded".

Server to client, in this order for one reply::

    {"type": "queued", "position": n}                         while n-th in the model's line (polled every 0.5 s)
    {"type": "conversation", "id": int, "title": str, "saved": [{"id": int, "role": str, "versions": [id, ...]}]}
                                                              chat mode: the model took the turn and it is saved
                                                              (saved: the user message or tool results it added)
    {"type": "started"}                                       the engine took the request
    {"type": "token", "text": str}                            as generated (model output: render it as text)
    {"type": "tool_call", "index": int, "id": str, "name": str, "arguments": str}
                                                              a call, once it is complete (or cut short, at the end)
    {"type": "done", "finish_reason": "stop" | "length" | "cancelled" | "tool_calls",
     "usage": {"prompt_tokens": int, "completion_tokens": int},
     "ttft_ms": float | null, "tokens_per_second": float | null, "message_id": int | null,
     "tool_calls": [{"id": str, "name": str, "arguments": str}, ...], "dropped_messages": int,
     "message": {...the saved reply, as in a path frame...} | null}
    {"type": "error", "code": str, "param": str | null, "message": str}

Besides replies::

    {"type": "path", "conversation": id, "messages": [{"id", "role", "content", "tool_calls", "tool_call_id",
     "tool_name", "model_id", "usage", "ttft_ms", "tokens_per_second", "finish_reason", "dropped_messages",
     "versions": [id, ...]}, ...]}                            the branch shown, after select and delete
    {"type": "count", "seq": any, "n_ctx", "max_tokens", "history_tokens", "draft_tokens", "prompt_tokens",
     "min_prompt_tokens", "fits": bool, "dropped": int | null, "overflow"}   (services.context_read)
    {"type": "count", "seq": any, "error": str}              the count could not be made (nothing is refused)
    {"type": "settings", "conversation": id, "overflow": str}   the setting as saved

``token`` frames carry only the text outside calls; a call's arguments are the JSON text the model wrote (model
output too). ``finish_reason`` is "tool_calls" when the reply ended after complete calls. ``dropped_messages``
says how many of the oldest messages were left out so that the rest fit ("drop_oldest").

Nothing of a turn is saved until the model has taken it: an error frame that comes before the turn's
``conversation`` frame (a refused parameter, a message too long for the context, the time limit while waiting
in line) means the message was not saved, and the client keeps it in the composer. A turn stopped while still
in line is saved without a reply. Bad JSON, an unknown type, invalid fields, parameters or tools, or another
user's conversation or message id get an error frame with the code, param and message every API route gives
for the same mistake (playground/contract/errors.py); the socket stays open and nothing saved changes. A reply is
held to the same time limit as an API request (PLAYGROUND_REQUEST_TIMEOUT): past it the engine stops and an
error frame with code "timeout" follows. ``stop`` (or a new generate) cancels the running reply in the engine,
which still ends with a ``done`` frame whose finish reason is "cancelled"; closing the socket cancels it too.
Each reply, also one cut short, is recorded exactly once (saved message with its tool calls, and model stats);
a continuation is appended to the reply it continues.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from inference import EngineError, Job, SamplingParams, TextChunk
from inference.tools import CallEnd, TextPiece, ToolEvent
from playground import engines, serving
from playground.chat import services
from playground.chat.forms import GenerateForm, sampling_form
from playground.chat.models import Conversation, Message
from playground.chat.selectors import conversation_get, conversation_messages, conversation_path, message_data
from playground.contract.errors import Problem, problem
from playground.contract.fields import json_parse
from playground.projects.session import session_membership
from playground.usage.services import Caller, caller_set, measured

logger = logging.getLogger(__name__)

QUEUE_POLL_SECONDS = 0.5
QUEUE_FIRST_CHECK_SECONDS = 0.1
DRAIN_SECONDS = 10.0  # how long a cancelled reply may take to hand back its usage
MAX_DRAFT_LENGTH = 100_000  # characters of a message (GenerateForm's content), also in an edit or a count


@dataclass
class Reply:
    """One reply being streamed: the job and what is needed to record it when it ends."""

    job: Job[TextChunk]
    model_id: str
    params: SamplingParams
    turn: services.Turn | None
    reader: serving.ReplyReader
    parts: list[str] = field(default_factory=list)
    sent: set[int] = field(default_factory=set)  # the calls already sent as tool_call frames


def _form_problem(form: Any) -> Problem:
    """A GenerateForm's first refusal in the error vocabulary."""
    name, errors = next(iter(form.errors.items()))
    message = f"{name}: {' '.join(errors)}"
    if name == "model":
        return Problem("model_not_found", message, param="model")
    if name == "__all__":
        return Problem("invalid_request", " ".join(errors))
    return Problem("invalid_parameter", message, param=name)


def _accept(turn: services.Turn) -> tuple[services.Turn, dict[str, Any]]:
    """Save an accepted turn; the turn as saved and its `conversation` frame."""
    turn = services.turn_accept(turn)
    conversation = turn.conversation
    assert conversation is not None
    saved = []
    for pk in turn.saved:
        row = Message.objects.get(pk=pk)
        versions = Message.objects.filter(conversation=conversation, parent_id=row.parent_id)
        saved.append({"id": pk, "role": row.role, "versions": list(versions.values_list("pk", flat=True))})
    frame = {"type": "conversation", "id": conversation.pk, "title": conversation.title, "saved": saved}
    return turn, frame


def _path_frame(conversation: Conversation) -> dict[str, Any]:
    conversation.refresh_from_db()
    messages = [message_data(m) for m in conversation_messages(conversation)]
    return {"type": "path", "conversation": conversation.pk, "messages": messages}


def _reply_data(message: Message | None) -> dict[str, Any] | None:
    """The saved reply as a path frame carries it (its versions read again: a regenerate added one)."""
    if message is None:
        return None
    versions = Message.objects.filter(conversation_id=message.conversation_id, parent_id=message.parent_id)
    message.version_ids = list(versions.values_list("pk", flat=True))  # type: ignore[attr-defined]
    return message_data(message)


class ChatConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.user = self.scope.get("user")
        self.reply: Reply | None = None
        self.task: asyncio.Task[None] | None = None
        self.count_task: asyncio.Task[None] | None = None
        self.count_next: dict[str, Any] | None = None
        self.closed = False
        if self.user is None or not self.user.is_authenticated:
            await self.close(code=4401)
            return
        # Every generation this socket starts (tasks copy this context) is metered as this user,
        # billed to the session's current project.
        session = self.scope.get("session") or {}
        membership = await database_sync_to_async(session_membership)(user=self.user, session=session)
        self.project = membership.project  # where new conversations go
        caller_set(Caller(user=self.user, project_id=membership.project_id, source="playground", endpoint="ws/chat"))
        await self.accept()

    async def disconnect(self, code: int) -> None:
        self.closed = True
        if self.count_task is not None:
            self.count_task.cancel()
        await self._cancel_running()

    async def send_json(self, content: dict[str, Any]) -> None:
        if not self.closed:
            await self.send(text_data=json.dumps(content))

    async def send_error(self, error: EngineError) -> None:
        """An error frame: any refusal in the one error vocabulary."""
        await self.send_json(problem(error).frame())

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            frame = json_parse(text_data or "")
        except Problem:
            await self.send_error(Problem("invalid_json", "frames must be JSON objects"))
            return
        if not isinstance(frame, dict):
            await self.send_error(Problem("invalid_json", "frames must be JSON objects"))
            return
        kind = frame.get("type")
        if kind == "stop":
            if self.reply is not None:
                self.reply.job.cancel()  # the stream still ends with its usage and "cancelled"
            return
        if kind == "count":
            # In a task of its own (counting must not hold up a stop frame or a reply), one at a time and the latest
            # frame only: a burst of keystrokes, or of hostile frames, costs one count running and one waiting.
            self.count_next = frame
            if self.count_task is None or self.count_task.done():
                self.count_task = asyncio.create_task(self._counts())
            return
        handlers = {
            "generate": self.generate,
            "regenerate": self.regenerate,
            "edit": self.edit,
            "continue": self.continue_reply,
            "tool_result": self.tool_result,
            "select": self.select,
            "delete": self.delete,
            "settings": self.settings,
        }
        handler = handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            await self.send_error(Problem("invalid_parameter", f"unknown frame type {kind!r}", param="type"))
            return
        try:
            await handler(frame)
        except EngineError as exc:
            await self.send_error(exc)
        except Conversation.DoesNotExist:
            await self.send_error(Problem("not_found", "conversation not found", param="conversation"))

    async def generate(self, frame: dict[str, Any]) -> None:
        content = frame.get("content", frame.get("prompt"))
        form = GenerateForm({**frame, "content": content})
        if not form.is_valid():
            await self.send_error(_form_problem(form))
            return
        data = form.cleaned_data
        params = await self._params(data["model"], frame.get("params"))
        if params is None:
            return
        chat = data["mode"] == "chat"
        overflow = services.overflow_parse(frame.get("overflow")) if chat else None
        conversation = None
        if chat and data["conversation"] is not None:
            conversation = await database_sync_to_async(conversation_get)(
                user=self.user, conversation_id=data["conversation"]
            )
        setup = await self._tools(data["model"], params, frame, conversation, chat=chat)
        await self._cancel_running()  # a new prompt replaces the running reply
        if not chat:
            job = services.reply_stream(model_id=data["model"], params=setup.params, prompt=data["content"])
            reader = serving.ReplyReader(model_id=data["model"], use=None)
            self._start(Reply(job=job, model_id=data["model"], params=setup.params, turn=None, reader=reader))
            return
        turn = await database_sync_to_async(services.turn_prepare)(
            user=self.user,
            project=self.project,
            model_id=data["model"],
            conversation=conversation,
            system_prompt=data["system"],
            content=data["content"],
            tool_fields=setup.fields,
            overflow=overflow,
        )
        await self._stream_turn(turn, data["model"], setup)

    async def _conversation(self, frame: dict[str, Any]) -> Conversation | None:
        """The user's conversation a frame names (an error frame when it names none)."""
        conversation_id = frame.get("conversation")
        if not isinstance(conversation_id, int) or isinstance(conversation_id, bool):
            await self.send_error(
                Problem(
                    "missing_required_parameter", "conversation: a conversation id is required", param="conversation"
                )
            )
            return None
        return await database_sync_to_async(conversation_get)(user=self.user, conversation_id=conversation_id)

    async def _chat_model(self, frame: dict[str, Any], conversation: Conversation) -> str | None:
        """The frame's chat model, else the conversation's (an error frame when it is not a chat model)."""
        model_id = frame.get("model") or conversation.model_id
        form = GenerateForm({"model": model_id, "mode": "chat", "content": "-"})
        if not form.is_valid():
            await self.send_error(_form_problem(form))
            return None
        return str(model_id)

    async def _again(self, frame: dict[str, Any]) -> tuple[Conversation, str, services.ToolSetup] | None:
        """What regenerate, edit and continue frames share: the conversation, the model, the parameters and tools
        (an error frame, and None, for the first that is wrong)."""
        conversation = await self._conversation(frame)
        if conversation is None:
            return None
        model_id = await self._chat_model(frame, conversation)
        if model_id is None:
            return None
        params = await self._params(model_id, frame.get("params"))
        if params is None:
            return None
        setup = await self._tools(model_id, params, frame, conversation)
        return conversation, model_id, setup

    async def regenerate(self, frame: dict[str, Any]) -> None:
        await self._rerun(frame, services.turn_regenerate)

    async def edit(self, frame: dict[str, Any]) -> None:
        content = frame.get("content")
        if not isinstance(content, str):
            await self.send_error(
                Problem("missing_required_parameter", "content: the message's new text is required", param="content")
            )
            return
        if len(content) > MAX_DRAFT_LENGTH:
            await self.send_error(
                Problem(
                    "invalid_parameter",
                    f"content: at most {MAX_DRAFT_LENGTH} characters (got {len(content)})",
                    param="content",
                )
            )
            return
        await self._rerun(frame, services.turn_edit, content=content)

    async def continue_reply(self, frame: dict[str, Any]) -> None:
        await self._rerun(frame, services.turn_continue)

    async def _rerun(self, frame: dict[str, Any], build: Callable[..., services.Turn], **extra: Any) -> None:
        """Regenerate, edit or continue: the turn `build` makes from the frame's message, streamed."""
        found = await self._again(frame)
        if found is None:
            return
        conversation, model_id, setup = found
        overflow = services.overflow_parse(frame.get("overflow"))
        await self._cancel_running()
        system = frame.get("system")
        turn = await database_sync_to_async(build)(
            conversation=conversation,
            model_id=model_id,
            message_id=frame.get("message"),
            system_prompt=system if isinstance(system, str) else None,
            tool_fields=setup.fields,
            overflow=overflow,
            **extra,
        )
        await self._stream_turn(turn, model_id, setup)

    async def tool_result(self, frame: dict[str, Any]) -> None:
        conversation = await self._conversation(frame)
        if conversation is None:
            return
        results = services.tool_results_parse(frame.get("results"))
        model_id = await self._chat_model(frame, conversation)
        if model_id is None:
            return
        params = await self._params(model_id, frame.get("params"))
        if params is None:
            return
        setup = await self._tools(model_id, params, frame, conversation)
        overflow = services.overflow_parse(frame.get("overflow"))
        await self._cancel_running()  # the reply being answered is recorded first
        turn = await database_sync_to_async(services.turn_tool_results)(
            conversation=conversation, model_id=model_id, results=results, tool_fields=setup.fields, overflow=overflow
        )
        await self._stream_turn(turn, model_id, setup)

    async def select(self, frame: dict[str, Any]) -> None:
        conversation = await self._conversation(frame)
        if conversation is None:
            return
        await self._cancel_running()
        await database_sync_to_async(services.conversation_select)(
            conversation=conversation, message_id=frame.get("message")
        )
        await self.send_json(await database_sync_to_async(_path_frame)(conversation))

    async def delete(self, frame: dict[str, Any]) -> None:
        conversation = await self._conversation(frame)
        if conversation is None:
            return
        await self._cancel_running()
        await database_sync_to_async(services.message_delete)(
            conversation=conversation, message_id=frame.get("message")
        )
        await self.send_json(await database_sync_to_async(_path_frame)(conversation))

    async def settings(self, frame: dict[str, Any]) -> None:
        conversation = await self._conversation(frame)
        if conversation is None:
            return
        overflow = services.overflow_parse(frame.get("overflow"))
        await database_sync_to_async(services.conversation_settings_save)(conversation=conversation, overflow=overflow)
        await self.send_json({"type": "settings", "conversation": conversation.pk, "overflow": conversation.overflow})

    async def _counts(self) -> None:
        while self.count_next is not None:
            frame, self.count_next = self.count_next, None
            await self.count(frame)

    async def count(self, frame: dict[str, Any]) -> None:
        """The context meter's reading (services.context_read); a count that cannot be made says why in its own
        frame, never as an error frame (those are about a message being sent)."""
        seq = frame.get("seq")
        try:
            reading = await self._count(frame)
        except asyncio.CancelledError:
            raise
        except (EngineError, Conversation.DoesNotExist) as exc:
            message = str(exc) if isinstance(exc, EngineError) else "conversation not found"
            await self.send_json({"type": "count", "seq": seq, "error": message})
            return
        except Exception:
            logger.exception("counting a prompt failed")
            await self.send_json({"type": "count", "seq": seq, "error": "the count failed; see the server log"})
            return
        await self.send_json({"type": "count", "seq": seq, **reading})

    async def _count(self, frame: dict[str, Any]) -> dict[str, Any]:
        model_id = frame.get("model")
        spec = serving.model_for(model_id=model_id, tasks=("text-to-text",), where="the chat Playground")
        system, draft = frame.get("system"), frame.get("content")
        system = system if isinstance(system, str) else ""
        draft = draft if isinstance(draft, str) else ""
        if len(draft) > MAX_DRAFT_LENGTH or len(system) > MAX_DRAFT_LENGTH:
            raise Problem("invalid_parameter", "content: too long to count", param="content")
        conversation, path = None, []
        conversation_id = frame.get("conversation")
        if isinstance(conversation_id, int) and not isinstance(conversation_id, bool):
            conversation = await database_sync_to_async(conversation_get)(
                user=self.user, conversation_id=conversation_id
            )
            path = await database_sync_to_async(conversation_path)(conversation=conversation)
        raw = frame.get("params")
        max_tokens = raw.get("max_tokens") if isinstance(raw, dict) else None
        form = sampling_form(model_id=spec.id, data={"max_tokens": max_tokens})
        if not form.is_valid():
            form = sampling_form(model_id=spec.id, data={})
            form.is_valid()
        overflow = services.overflow_parse(frame.get("overflow"))
        if overflow is None:
            overflow = conversation.overflow if conversation is not None else "drop_oldest"
        if any(key in frame for key in services.TOOL_KEYS):
            fields = {key: frame[key] for key in services.TOOL_KEYS if key in frame}
        else:
            fields = conversation.tool_fields() if conversation is not None else {}
        return await asyncio.to_thread(
            services.context_read,
            model_id=spec.id,
            system_prompt=system,
            path=path,
            draft=draft,
            max_tokens=int(form.cleaned_data["max_tokens"] or engines.get_pool().spec(spec.id).n_ctx),
            overflow=str(overflow),
            tools=services.count_tools(fields),
        )

    async def _params(self, model_id: str, data: Any) -> SamplingParams | None:
        form = sampling_form(model_id=model_id, data=data)
        if not form.is_valid():
            await self.send_error(form.problem())
            return None
        return form.to_params()

    async def _tools(
        self,
        model_id: str,
        params: SamplingParams,
        frame: dict[str, Any],
        conversation: Conversation | None,
        *,
        chat: bool = True,
    ) -> services.ToolSetup:
        """The frame's tool fields (else the conversation's saved ones), checked, with their grammar in the params.

        Off the event loop: a big schema takes a while to become a grammar. A refusal raises Problem."""
        if any(key in frame for key in services.TOOL_KEYS):
            fields = {key: frame[key] for key in services.TOOL_KEYS if key in frame}
        else:
            fields = conversation.tool_fields() if conversation is not None else {}
        return await asyncio.to_thread(
            services.tools_prepare, model_id=model_id, params=params, fields=fields, chat=chat
        )

    async def _stream_turn(self, turn: services.Turn, model_id: str, setup: services.ToolSetup) -> None:
        job = services.reply_stream(
            model_id=model_id,
            params=setup.params,
            messages=turn.history,
            tools=setup.use,
            overflow=turn.overflow_mode,
            continue_final=turn.continues is not None,
        )
        reader = serving.ReplyReader(model_id=model_id, use=setup.use)
        self._start(Reply(job=job, model_id=model_id, params=setup.params, turn=turn, reader=reader))

    def _start(self, reply: Reply) -> None:
        # Stream in a task of its own so receive() stays free to see stop frames and the disconnect.
        self.reply = reply
        self.task = asyncio.create_task(self._stream(reply))

    async def _cancel_running(self) -> None:
        """Stop the running reply in the engine and wait for it to be recorded."""
        reply, task = self.reply, self.task
        if reply is None or task is None:
            return
        reply.job.cancel()
        try:
            await asyncio.wait_for(asyncio.shield(task), DRAIN_SECONDS)
        except TimeoutError:
            task.cancel()
        except Exception:
            logger.exception("a cancelled reply failed")

    async def _report_queue(self, job: Job[TextChunk]) -> None:
        # A free worker takes a job within milliseconds: wait a moment so an idle model shows no queue.
        await asyncio.sleep(QUEUE_FIRST_CHECK_SECONDS)
        last = None
        while True:
            position = job.position()
            if position and position != last:
                await self.send_json({"type": "queued", "position": position})
            last = position
            await asyncio.sleep(QUEUE_POLL_SECONDS)

    async def _stream(self, reply: Reply) -> None:
        try:
            await self._stream_reply(reply)
        except Exception:
            logger.exception("streaming a reply on %s failed", reply.model_id)
            await self.send_error(Problem("engine_error", "the reply failed; see the server log"))

    async def _accept_turn(self, reply: Reply) -> None:
        """Save the turn (the model took it, or it was stopped in line: nothing refused it) and say so."""
        if reply.turn is None or reply.turn.accepted:
            return
        reply.turn, frame = await database_sync_to_async(_accept)(reply.turn)
        await self.send_json(frame)

    async def _stream_reply(self, reply: Reply) -> None:
        job = reply.job
        poller = asyncio.create_task(self._report_queue(job))
        started = False
        finish, usage, dropped = None, None, 0
        try:
            async for chunk in serving.Run(job):
                if not started:
                    poller.cancel()
                    started = True
                    await self._accept_turn(reply)  # not before: a refused turn is never saved
                    await self.send_json({"type": "started"})
                if chunk.text:
                    await self._send_events(reply, reply.reader.feed(chunk.text))
                    if reply.reader.repeated:
                        job.cancel()  # a repeated call ends the reply; the last chunk, with the usage, follows
                if chunk.finish_reason is not None:
                    finish, usage, dropped = chunk.finish_reason, chunk.usage, chunk.dropped_messages
            if not started:
                await self._accept_turn(reply)
        except EngineError as exc:  # a refusal, the time limit (the engine is stopped), or the turn's saving
            job.cancel()
            await self.send_error(exc)
            return
        finally:
            poller.cancel()
            if self.reply is reply:
                self.reply = None
        if finish is None or usage is None:
            # Cancelled while still waiting in line: the engine never ran, there is nothing to record.
            await self.send_json(
                {
                    "type": "done",
                    "finish_reason": "cancelled",
                    "usage": {"prompt_tokens": 0, "completion_tokens": 0},
                    "ttft_ms": None,
                    "tokens_per_second": None,
                    "message_id": None,
                    "tool_calls": [],
                    "dropped_messages": 0,
                    "message": None,
                }
            )
            return
        await self._send_events(reply, reply.reader.finish())
        calls = reply.reader.tool_calls()
        for index in range(len(calls)):  # calls cut short (by max_tokens or stop) go out as they are
            await self._send_call(reply, index)
        finish_reason = reply.reader.finish_reason(finish)
        # The speed as the one meter measured it (the card, the ledger and /metrics read the same figures).
        meter = measured(job)
        ttft = meter.ttft_seconds if meter else None
        tps = meter.tokens_per_second if meter else None

        def record() -> dict[str, Any] | None:
            message = services.reply_record(
                model_id=reply.model_id,
                params=reply.params,
                text="".join(reply.parts),
                finish_reason=finish_reason,
                usage=usage,
                ttft_seconds=ttft,
                tokens_per_second=tps,
                turn=reply.turn,
                tool_calls=calls,
                dropped_messages=dropped,
            )
            return _reply_data(message)

        saved = await database_sync_to_async(record)()
        await self.send_json(
            {
                "type": "done",
                "finish_reason": finish_reason,
                "usage": {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens},
                "ttft_ms": None if ttft is None else round(ttft * 1000, 1),
                "tokens_per_second": None if tps is None else round(tps, 2),
                "message_id": saved["id"] if saved else None,
                "tool_calls": services.calls_json(calls),
                "dropped_messages": dropped,
                "message": saved,
            }
        )

    async def _send_events(self, reply: Reply, events: list[ToolEvent]) -> None:
        """Text as token frames; each call as a tool_call frame once it is complete."""
        for event in events:
            if isinstance(event, TextPiece):
                reply.parts.append(event.text)
                await self.send_json({"type": "token", "text": event.text})
            elif isinstance(event, CallEnd):
                await self._send_call(reply, event.index)

    async def _send_call(self, reply: Reply, index: int) -> None:
        if index in reply.sent:
            return
        reply.sent.add(index)
        call = reply.reader.tool_calls()[index]
        await self.send_json(
            {"type": "tool_call", "index": index, "id": call.id, "name": call.name, "arguments": call.arguments}
        )
