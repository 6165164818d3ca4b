"""The Compare view's socket at ``ws/compare/``: one prompt, 2 to 4 panes, each its own model and parameters.

Only signed-in users may connect (the session authenticates the socket; anonymous sockets are refused before the
handshake completes). Every frame is a JSON object.

Client to server::

    {"type": "generate", "system": str, "content": str,
     "panes": [{"model": id, "params": {...panel fields...}}, ...]}     2 to 4 panes
    {"type": "stop"}                                                  stops every pane
    {"type": "use", "pane": int}                                      continue that pane's reply as a chat

``params`` are the chat panel's fields, checked as ws/chat checks them (a blank or missing field takes the
model's default; an out-of-range one is refused, never clamped). Every pane runs at once, each its own
generation on its model's worker (the model's fair line takes turns between them).

Server to client; every frame about a pane carries its index in the frame's ``panes``::

    {"type": "queued", "pane": i, "position": n}     while n-th in the model's line
    {"type": "started", "pane": i}                   the engine took the request
    {"type": "token", "pane": i, "text": str}        as generated (model output: render it as text)
    {"type": "done", "pane": i, "model": id, "finish_reason": "stop" | "length" | "cancelled",
     "usage": {"prompt_tokens": int, "completion_tokens": int},
     "ttft_ms": float | null, "tokens_per_second": float | null, "cost": str}     cost: USD, a decimal string
    {"type": "conversation", "pane": i, "id": int, "url": str}                  answer to "use": open it
    {"type": "error", "pane"?: i, "code": str, "param": str | null, "message": str}

Each pane ends with one ``done`` or one ``error``. A refusal of one pane (an unknown model, a parameter out of
range, a prompt that does not fit its context, the model's line full) is that pane's error frame and the others
run on; a refusal of the frame itself (bad JSON, no message, the wrong number of panes) is an error frame
without ``pane``, and nothing starts. Codes, params and messages are those every route gives for the same
mistake (playground/contract/errors.py). ``stop``, a new ``generate`` and closing the socket cancel every
running pane inside its engine; a stopped pane still ends with ``done`` and finish reason "cancelled". Each
reply is metered once by the one meter (endpoint ``ws/compare``); ``cost`` is what the ledger charged for it
(with PLAYGROUND_METERING off: the same price version and formula, nothing written).

``use`` saves the pane's exchange of the latest compare (its model, the system prompt, the message and its
reply with its parameters) as a new conversation of the user's, and answers with its Playground URL.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.urls import reverse

from inference import EngineError, Job, TextChunk
from playground import serving
from playground.compare import services
from playground.compare.forms import CompareForm, PaneRequest, pane_parse, panes_check
from playground.contract.errors import Problem, problem
from playground.contract.fields import json_parse
from playground.projects.session import session_membership
from playground.usage.services import Caller, caller_set, measured

logger = logging.getLogger(__name__)

QUEUE_POLL_SECONDS = 0.5
QUEUE_FIRST_CHECK_SECONDS = 0.1
DRAIN_SECONDS = 10.0  # how long cancelled panes may take to hand back their usage


@dataclass
class Compare:
    """The latest compare on this socket: the shared prompt, each pane's job, and the replies that ended."""

    system: str
    content: str
    jobs: dict[int, Job[TextChunk]] = field(default_factory=dict)
    tasks: dict[int, asyncio.Task[None]] = field(default_factory=dict)
    replies: dict[int, services.PaneReply] = field(default_factory=dict)
    continued: dict[int, int] = field(default_factory=dict)  # pane -> the conversation "use" made of it


class CompareConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.user = self.scope.get("user")
        self.compare: Compare | None = None
        self.closed = False
        if self.user is None or not self.user.is_authenticated:
            await self.close(code=4401)
            return
        # Every generation this socket starts (tasks copy this context) is metered as this user,
        # billed to the session's current project.
        session = self.scope.get("session") or {}
        membership = await database_sync_to_async(session_membership)(user=self.user, session=session)
        self.project = membership.project  # where "use this one" saves the conversation
        caller_set(Caller(user=self.user, project_id=membership.project_id, source="playground", endpoint="ws/compare"))
        await self.accept()

    async def disconnect(self, code: int) -> None:
        self.closed = True
        await self._cancel_running()

    async def send_json(self, content: dict[str, Any]) -> None:
        if not self.closed:
            await self.send(text_data=json.dumps(content))

    async def send_error(self, error: EngineError, *, pane: int | None = None) -> None:
        frame = problem(error).frame()
        await self.send_json(frame if pane is None else {**frame, "pane": pane})

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            frame = json_parse(text_data or "")
        except Problem:
            frame = None
        if not isinstance(frame, dict):
            await self.send_error(Problem("invalid_json", "frames must be JSON objects"))
            return
        kind = frame.get("type")
        if kind == "stop":
            self._stop()
            return
        handlers = {"generate": self.generate, "use": self.use}
        handler = handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            await self.send_error(Problem("invalid_parameter", f"unknown frame type {kind!r}", param="type"))
            return
        try:
            await handler(frame)
        except EngineError as exc:
            await self.send_error(exc)

    # --- generate ------------------------------------------------------------------------------------------------

    async def generate(self, frame: dict[str, Any]) -> None:
        form = CompareForm({"system": frame.get("system") or "", "content": frame.get("content")})
        if not form.is_valid():
            await self.send_error(form.problem())
            return
        panes = panes_check(frame.get("panes"))
        await self._cancel_running()  # a new compare replaces the running one
        compare = Compare(system=form.cleaned_data["system"], content=form.cleaned_data["content"])
        self.compare = compare
        messages = services.compare_messages(system=compare.system, content=compare.content)
        for index, raw in enumerate(panes):
            # One pane's refusal is that pane's error frame; the others run on.
            try:
                request = pane_parse(raw)
                job = services.pane_stream(model_id=request.model_id, params=request.params, messages=messages)
            except EngineError as exc:
                await self.send_error(exc, pane=index)
                continue
            compare.jobs[index] = job
            # Stream in a task of its own so receive() stays free to see stop frames and the disconnect.
            compare.tasks[index] = asyncio.create_task(self._stream(compare, index, request, job))

    def _stop(self) -> None:
        """Stop every running pane in its engine (each still ends with its done frame, "cancelled")."""
        if self.compare is not None:
            for job in self.compare.jobs.values():
                job.cancel()

    async def _cancel_running(self) -> None:
        """Stop every running pane and wait for each to be recorded."""
        compare = self.compare
        if compare is None:
            return
        self._stop()
        running = [task for task in compare.tasks.values() if not task.done()]
        if not running:
            return
        _, late = await asyncio.wait([asyncio.shield(task) for task in running], timeout=DRAIN_SECONDS)
        if late:
            for task in running:
                task.cancel()

    async def _report_queue(self, index: int, job: Job[TextChunk]) -> None:
        # A free worker takes a job within milliseconds: wait a moment so an idle model shows no queue.
        await asyncio.sleep(QUEUE_FIRST_CHECK_SECONDS)
        last = None
        while True:
            position = job.position()
            if position and position != last:
                await self.send_json({"type": "queued", "pane": index, "position": position})
            last = position
            await asyncio.sleep(QUEUE_POLL_SECONDS)

    async def _stream(self, compare: Compare, index: int, request: PaneRequest, job: Job[TextChunk]) -> None:
        try:
            await self._stream_pane(compare, index, request, job)
        except Exception:
            logger.exception("streaming compare pane %d on %s failed", index, request.model_id)
            await self.send_error(Problem("engine_error", "the reply failed; see the server log"), pane=index)

    async def _stream_pane(self, compare: Compare, index: int, request: PaneRequest, job: Job[TextChunk]) -> None:
        poller = asyncio.create_task(self._report_queue(index, job))
        started = False
        parts: list[str] = []
        finish, usage = None, None
        try:
            async for chunk in serving.Run(job):
                if not started:
                    poller.cancel()
                    started = True
                    await self.send_json({"type": "started", "pane": index})
                if chunk.text:
                    parts.append(chunk.text)
                    await self.send_json({"type": "token", "pane": index, "text": chunk.text})
                if chunk.finish_reason is not None:
                    finish, usage = chunk.finish_reason, chunk.usage
        except EngineError as exc:  # a refusal, or the time limit (the engine is stopped)
            await self.send_error(exc, pane=index)
            return
        finally:
            poller.cancel()
        done: dict[str, Any] = {"type": "done", "pane": index, "model": request.model_id}
        if finish is None or usage is None:
            # Cancelled while still waiting in line: the engine never ran, there is nothing to record.
            await self.send_json(
                {
                    **done,
                    "finish_reason": "cancelled",
                    "usage": {"prompt_tokens": 0, "completion_tokens": 0},
                    "ttft_ms": None,
                    "tokens_per_second": None,
                    "cost": "0",
                }
            )
            return
        # The speed and the price as the one meter measured and charged them (the ledger reads the same figures).
        meter = measured(job)
        ttft = meter.ttft_seconds if meter else None
        tps = meter.tokens_per_second if meter else None
        cost = await database_sync_to_async(services.pane_cost)(job=job, model_id=request.model_id, usage=usage)
        compare.replies[index] = services.PaneReply(
            model_id=request.model_id,
            params=request.params,
            text="".join(parts),
            finish_reason=finish,
            usage=usage,
            ttft_seconds=ttft,
            tokens_per_second=tps,
        )
        await self.send_json(
            {
                **done,
                "finish_reason": finish,
                "usage": {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens},
                "ttft_ms": None if ttft is None else round(ttft * 1000, 1),
                "tokens_per_second": None if tps is None else round(tps, 2),
                "cost": format(cost.normalize(), "f"),
            }
        )

    # --- use this one --------------------------------------------------------------------------------------------

    async def use(self, frame: dict[str, Any]) -> None:
        index = frame.get("pane")
        if not isinstance(index, int) or isinstance(index, bool):
            await self.send_error(Problem("invalid_type", "pane must be the index of a pane", param="pane"))
            return
        compare = self.compare
        reply = compare.replies.get(index) if compare is not None else None
        if compare is None or reply is None or not reply.text.strip():
            await self.send_error(
                Problem("invalid_request", f"pane {index + 1} has no finished reply to continue", param="pane"),
                pane=index,
            )
            return
        conversation_id = compare.continued.get(index)
        if conversation_id is None:  # a second click opens the same conversation
            conversation = await database_sync_to_async(services.pane_continue)(
                user=self.user, project=self.project, system_prompt=compare.system, content=compare.content, reply=reply
            )
            conversation_id = compare.continued[index] = conversation.pk
        await self.send_json(
            {
                "type": "conversation",
                "pane": index,
                "id": conversation_id,
                "url": reverse("chat:open", args=[conversation_id]),
            }
        )
