from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from inference import ChatMessage, EngineError
from playground import serving


class Command(BaseCommand):
    help = "Stream one prompt through a text model to the terminal."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("model_id")
        parser.add_argument("prompt")
        parser.add_argument("--system", default="", help="system prompt (chat models)")
        parser.add_argument("--max-tokens", type=int)
        parser.add_argument("--temperature", type=float)
        parser.add_argument("--top-p", type=float)
        parser.add_argument("--top-k", type=int)
        parser.add_argument("--seed", type=int)
        parser.add_argument("--stop", action="append", help="stop sequence (repeatable)")

    def handle(self, *args: Any, **opts: Any) -> None:
        model_id = opts["model_id"]
        overrides = {
            "max_tokens": opts["max_tokens"],
            "temperature": opts["temperature"],
            "top_p": opts["top_p"],
            "top_k": opts["top_k"],
            "seed": opts["seed"],
            "stop": opts["stop"],
        }
        messages = [ChatMessage("system", opts["system"])] if opts["system"] else []
        messages.append(ChatMessage("user", opts["prompt"]))
        started = time.monotonic()
        first: float | None = None
        try:
            params = serving.sampling_params(model_id=model_id, overrides=overrides)
            job = serving.text_stream(model_id=model_id, params=params, messages=messages, prompt=opts["prompt"])
            for chunk in job:
                if first is None and chunk.text:
                    first = time.monotonic()
                self.stdout.write(chunk.text, ending="")
                self.stdout.flush()
                if chunk.usage is not None:
                    elapsed = time.monotonic() - started
                    ttft = (first or time.monotonic()) - started
                    self.stdout.write("")
                    self.stderr.write(
                        f"[finish={chunk.finish_reason} prompt_tokens={chunk.usage.prompt_tokens} "
                        f"completion_tokens={chunk.usage.completion_tokens} ttft={ttft:.3f}s total={elapsed:.2f}s]"
                    )
        except EngineError as exc:
            raise CommandError(str(exc)) from exc
