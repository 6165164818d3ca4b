"""In-process inference engines. Plain Python: never imports Django or the site.

Heavy libraries (llama_cpp, faster_whisper, piper) are imported inside the
engine constructors, so importing this package is cheap.
"""

from inference.catalog import ModelSpec, load_catalog
from inference.device import DeviceDecision, decide_device
from inference.pool import EnginePool, UnknownModelError
from inference.serving import Job
from inference.types import (
    AudioDecodeError,
    ChatMessage,
    ContextOverflowError,
    EngineError,
    InvalidRequestError,
    QueueFullError,
    SamplingParams,
    TextChunk,
    Usage,
)

__all__ = [
    "AudioDecodeError",
    "ChatMessage",
    "ContextOverflowError",
    "DeviceDecision",
    "EngineError",
    "EnginePool",
    "InvalidRequestError",
    "Job",
    "ModelSpec",
    "QueueFullError",
    "SamplingParams",
    "TextChunk",
    "UnknownModelError",
    "Usage",
    "decide_device",
    "load_catalog",
]
