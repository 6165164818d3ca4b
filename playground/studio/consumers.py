"""Speech-to-text over a WebSocket: segments are sent as Whisper decodes them.

Protocol (JSON text frames unless noted):
  client  {"type": "transcribe", "model": id, "task": "transcribe"|"translate", "language": ""|code, "size": bytes}
  client  the audio file (any format PyAV decodes; at most 25 MB) as binary frames of at most CHUNK_BYTES each,
          until `size` bytes have arrived (without `size`, the first binary frame is the whole file). Daphne refuses
          WebSocket messages over 1 MiB by default, so browsers send the file in chunks.
  server  {"type": "info", "language", "duration"}
  server  {"type": "segment", "id", "start", "end", "text"}   one per segment, as decoded
  server  {"type": "done", "usage": {"audio_seconds"}, "real_time_factor"}
  server  {"type": "error", "code", "param", "message"}   the error vocabulary every API route uses
  client  {"type": "stop"}  -> server {"type": "stopped"}; closing the socket also cancels the job.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from inference import EngineError, Job
from inference.types import Segment, TranscriptionEnd, TranscriptionInfo
from playground import serving
from playground.contract.errors import Problem, problem
from playground.contract.fields import json_parse
from playground.projects.session import session_membership
from playground.studio.forms import TranscribeForm
from playground.studio.services import SPEECH_MAX_BYTES, audio_too_large, transcription_stream
from playground.usage.services import Caller, caller_set

logger = logging.getLogger(__name__)

MAX_TEXT_FRAME = 4096  # the JSON request is tiny; the audio comes as binary frames
CHUNK_BYTES = 256 * 1024  # what the browser sends per frame (well under Daphne's 1 MiB message limit)


class SpeechConsumer(AsyncWebsocketConsumer):
    pending: dict[str, Any] | None = None
    task: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        # Every transcription this socket starts is metered as this user, billed to the session's current project.
        session = self.scope.get("session") or {}
        membership = await database_sync_to_async(session_membership)(user=user, session=session)
        caller_set(Caller(user=user, project_id=membership.project_id, source="playground", endpoint="ws/speech"))
        await self.accept()

    async def disconnect(self, code: int) -> None:
        self._cancel()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if bytes_data is not None:
            await self._audio(bytes_data)
            return
        if text_data is None or len(text_data) > MAX_TEXT_FRAME:
            await self._error(Problem("invalid_request", "send a short JSON message, then the audio as binary frames"))
            return
        try:
            message = json_parse(text_data)
        except Problem:
            message = None
        if not isinstance(message, dict):
            await self._error(Problem("invalid_json", "messages must be JSON objects"))
            return
        kind = message.get("type")
        if kind == "stop":
            self._cancel()
            await self.send_json({"type": "stopped"})
        elif kind == "transcribe":
            await self._request(message)
        else:
            await self._error(Problem("invalid_parameter", f"unknown message type {kind!r}", param="type"))

    async def send_json(self, content: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(content))

    async def _error(self, error: EngineError) -> None:
        await self.send_json(problem(error).frame())

    def _cancel(self) -> None:
        """Cancelling the task ends its `async for` over the job, which cancels the job (the engine stops)."""
        self.pending = None
        if self.task is not None and not self.task.done():
            self.task.cancel()
        self.task = None

    async def _request(self, message: dict[str, Any]) -> None:
        self._cancel()  # a new request replaces one still running
        model_id = str(message.get("model") or "")
        size = message.get("size")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
            await self._error(Problem("invalid_parameter", "size must be the audio's length in bytes", param="size"))
            return
        if size is not None and size > SPEECH_MAX_BYTES:  # refuse before the upload, not after
            await self._error(audio_too_large(size))
            return
        try:
            spec = serving.model_for(model_id=model_id, tasks=("speech-to-text",), where="the speech Playground")
        except EngineError as exc:
            await self._error(exc)
            return
        form = TranscribeForm({"task": message.get("task") or "", "language": message.get("language") or ""}, spec=spec)
        if not form.is_valid():
            name, errors = next(iter(form.errors.items()))
            await self._error(Problem("invalid_parameter", " ".join(errors), param=name))
            return
        self.pending = {"model_id": spec.id, "size": size, "buffer": bytearray(), **form.cleaned_data}

    async def _audio(self, chunk: bytes) -> None:
        request = self.pending
        if request is None:
            await self._error(Problem("invalid_request", "send a transcribe message before the audio"))
            return
        buffer: bytearray = request["buffer"]
        buffer += chunk
        size = request["size"]
        if len(buffer) > (size or SPEECH_MAX_BYTES):
            self.pending = None
            if len(buffer) > SPEECH_MAX_BYTES:
                await self._error(audio_too_large(len(buffer)))
            else:
                await self._error(Problem("invalid_request", f"more audio arrived than the {size} bytes announced"))
            return
        if size is not None and len(buffer) < size:
            return  # more chunks to come
        self.pending = None
        try:
            job = transcription_stream(
                model_id=request["model_id"],
                audio=bytes(buffer),
                task=request["task"],
                language=request["language"] or None,
            )
        except EngineError as exc:
            await self._error(exc)
            return
        self.task = asyncio.create_task(self._stream(job, request["model_id"]))

    async def _stream(self, job: Job[Any], model_id: str) -> None:
        end: TranscriptionEnd | None = None
        try:
            async for item in serving.Run(job, param="file"):
                if isinstance(item, TranscriptionInfo):
                    await self.send_json({"type": "info", "language": item.language, "duration": item.duration})
                elif isinstance(item, Segment):
                    await self.send_json(
                        {"type": "segment", "id": item.id, "start": item.start, "end": item.end, "text": item.text}
                    )
                elif isinstance(item, TranscriptionEnd):
                    end = item
        except EngineError as exc:  # a refusal (undecodable audio), or the time limit
            await self._error(exc)
            return
        except Exception:
            logger.exception("transcription with %s failed", model_id)
            await self._error(Problem("engine_error", "the transcription failed; see the server log"))
            return
        if end is None:  # the job was cancelled from elsewhere
            return
        factor = end.real_time_factor  # the meter folds it into the card
        await self.send_json(
            {
                "type": "done",
                "usage": {"audio_seconds": round(end.audio_seconds, 3)},
                "real_time_factor": round(factor, 4) if factor is not None else None,
            }
        )
