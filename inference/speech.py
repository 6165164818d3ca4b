"""Speech-to-text (faster-whisper) and text-to-speech (Piper)."""

from __future__ import annotations

import ctypes
import importlib.util
import io
import logging
import threading
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from inference.protocols import Audio
from inference.types import (
    SPEECH_SPEED,
    AudioDecodeError,
    AudioTooLongError,
    InvalidRequestError,
    ModelLoadError,
    Segment,
    SpeechResult,
    TranscriptionInfo,
    TranscriptionResult,
    Usage,
)

BEAM_SIZE = 5
# Audio at least this long is transcribed by faster-whisper's batched pipeline: Silero VAD (bundled with
# faster-whisper) cuts it into speech chunks of up to 30 s, decoded BATCH_SIZE at a time. Segments are then one
# per chunk; shorter audio keeps the sequential decoder and its finer segments. Catalog options
# batched_from_seconds (0: never) and batch_size change them per model.
BATCHED_FROM_SECONDS = 60.0
BATCH_SIZE = 8
logger = logging.getLogger(__name__)
# What a user is told when the audio cannot be decoded; the decoder's own words go to the server log.
UNDECODABLE = (
    "the audio could not be decoded: the file is damaged or not in an audio format this server reads "
    "(such as WAV, MP3, FLAC, Ogg, M4A or WebM)"
)


# CTranslate2 4.8 (faster-whisper) loads CUDA 12's cuBLAS and cuDNN 9 when it first multiplies on the GPU. A
# host with only CUDA 13 libraries lacks them; ./dev then installs them from PyPI (requirements-cuda.txt).
CUDA_LIBRARIES = (
    ("cuda_runtime", "libcudart.so.12"),
    ("cublas", "libcublasLt.so.12"),
    ("cublas", "libcublas.so.12"),
    ("cudnn", "libcudnn.so.9"),
)


def _nvidia_wheel_dirs(package: str) -> list[Path]:
    """The lib/ folders of the installed nvidia-<package>-cu12 wheels."""
    spec = importlib.util.find_spec("nvidia")
    roots = list(spec.submodule_search_locations or []) if spec else []
    return [Path(root) / package / "lib" for root in roots if (Path(root) / package / "lib").is_dir()]


def load_cuda_libraries() -> str:
    """Load the CUDA 12 libraries CTranslate2 needs (the system's, else the nvidia wheels'), once, globally,
    so its own look-up by name finds them. Returns what is missing ('' when all are loaded)."""
    missing = []
    for package, soname in CUDA_LIBRARIES:
        candidates = [soname] + [str(d / soname) for d in _nvidia_wheel_dirs(package)]
        for candidate in candidates:
            try:
                ctypes.CDLL(candidate, mode=ctypes.RTLD_GLOBAL)
                break
            except OSError:
                continue
        else:
            missing.append(soname)
            continue
        if package == "cudnn":  # cuDNN 9 opens its sub-libraries by name: load those next to it too
            for folder in _nvidia_wheel_dirs(package):
                for sub in sorted(folder.glob("libcudnn_*.so.9")):
                    try:
                        ctypes.CDLL(str(sub), mode=ctypes.RTLD_GLOBAL)
                    except OSError:
                        pass
    return ", ".join(missing)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} minutes" if seconds >= 60 else f"{seconds:.1f} s"


def _open(source: Any) -> Any:
    import av

    try:
        return av.open(source, mode="r", metadata_errors="ignore")
    except Exception as exc:  # PyAV raises many types (InvalidDataError, ValueError, ...)
        logger.info("audio refused: PyAV could not open it: %s", exc)
        raise AudioDecodeError(UNDECODABLE) from exc


def _audio_stream(container: Any, max_seconds: float | None) -> Any:
    """The container's first audio stream, refused when there is none or when it declares more than `max_seconds`."""
    import av

    streams = container.streams.audio
    if not streams:
        raise AudioDecodeError("the file contains no audio track")
    stream = streams[0]
    declared = None
    if stream.duration is not None and stream.time_base is not None:
        declared = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        declared = container.duration / av.time_base
    if max_seconds is not None and declared is not None and declared > max_seconds + 1:
        raise AudioTooLongError(f"the audio lasts {_minutes(declared)}; the limit here is {_minutes(max_seconds)}")
    return stream


def check_audio(data: bytes, *, max_seconds: float | None) -> None:
    """Refuse audio that has no audio track, cannot be opened, or declares more than `max_seconds`, reading only its
    container's header (a remote model's server decodes it)."""
    with _open(io.BytesIO(data)) as container:
        _audio_stream(container, max_seconds)


def decode_capped(source: Any, *, sampling_rate: int, max_seconds: float | None) -> Any:
    """The audio as mono float32 samples at `sampling_rate`, decoded with PyAV (as faster-whisper does).

    The cost of a request is the audio's length, not its bytes (25 MB of compressed silence is hours): the length
    the container declares is checked before anything is decoded, and decoding stops with AudioTooLongError once
    `max_seconds` of samples have come out (a container may not say, or may lie). Audio without an audio stream
    is refused."""
    import av
    import numpy as np

    container = _open(source)
    with container:
        stream = _audio_stream(container, max_seconds)
        limit = None if max_seconds is None else int((max_seconds + 1) * sampling_rate)
        resampler = av.AudioResampler(format="s16", layout="mono", rate=sampling_rate)
        chunks: list[Any] = []
        count = 0
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    array = out.to_ndarray().reshape(-1)
                    chunks.append(array)
                    count += array.size
                if limit is not None and count > limit:
                    raise AudioTooLongError(
                        f"the audio lasts more than {_minutes(count / sampling_rate)}; "
                        f"the limit here is {_minutes(max_seconds or 0)}"
                    )
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except AudioTooLongError:
            raise
        except Exception as exc:
            logger.info("audio refused: PyAV could not decode it: %s", exc)
            raise AudioDecodeError(UNDECODABLE) from exc
    if not chunks:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32) / 32768.0


class WhisperEngine:
    """faster-whisper over a local CTranslate2 directory; int8 on CPU, float16 on CUDA."""

    def __init__(
        self,
        *,
        path: Path,
        threads: int,
        gpu: bool = False,
        compute_type: str | None = None,
        batched_from_seconds: float = BATCHED_FROM_SECONDS,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        if not (path / "model.bin").is_file():
            raise ModelLoadError(f"no CTranslate2 model.bin in {path}")
        if gpu and (missing := load_cuda_libraries()):
            raise ModelLoadError(f"CTranslate2 needs CUDA 12 libraries that are missing: {missing}")
        from faster_whisper import WhisperModel

        self.compute_type = compute_type or ("float16" if gpu else "int8")
        self.model = WhisperModel(
            str(path),
            device="cuda" if gpu else "cpu",
            compute_type=self.compute_type,
            cpu_threads=threads,
            local_files_only=True,
        )
        self.multilingual = bool(self.model.model.is_multilingual)
        self.batched_from_seconds = batched_from_seconds
        self.batch_size = batch_size
        self._batched: Any = None

    def _decode(self, audio: Audio, max_seconds: float | None) -> Any:
        source: Any = io.BytesIO(audio) if isinstance(audio, bytes) else audio
        if isinstance(source, Path):
            source = str(source)
        samples = decode_capped(
            source, sampling_rate=self.model.feature_extractor.sampling_rate, max_seconds=max_seconds
        )
        if samples.size == 0:
            raise AudioDecodeError("the audio is empty: it lasts no time at all")
        return samples

    def transcribe(
        self,
        audio: Audio,
        *,
        language: str | None = None,
        task: str = "transcribe",
        stop_event: threading.Event | None = None,
        max_seconds: float | None = None,
    ) -> tuple[TranscriptionInfo, Iterator[Segment]]:
        """Decode the audio now (a bad file, or one longer than `max_seconds`, fails here); segments are
        produced lazily."""
        if task not in ("transcribe", "translate"):
            raise InvalidRequestError("task must be 'transcribe' or 'translate'")
        if not self.multilingual:
            if task == "translate":
                raise InvalidRequestError("this model is English-only and cannot translate")
            if language not in (None, "en"):
                raise InvalidRequestError("this model is English-only; language must be 'en' or omitted")
        samples = self._decode(audio, max_seconds)
        try:
            # Beam search (Whisper's own default of 5): greedy decoding of hard audio often fails Whisper's
            # quality thresholds and falls back to sampling at rising temperatures, which is slower and
            # random; a translation could even come back in the source language.
            rate = self.model.feature_extractor.sampling_rate
            if self.batched_from_seconds and samples.size >= self.batched_from_seconds * rate:
                if self._batched is None:
                    from faster_whisper import BatchedInferencePipeline

                    self._batched = BatchedInferencePipeline(self.model)
                segments, info = self._batched.transcribe(
                    samples, language=language, task=task, beam_size=BEAM_SIZE, batch_size=self.batch_size
                )
            else:
                segments, info = self.model.transcribe(
                    samples, language=language, task=task, beam_size=BEAM_SIZE, vad_filter=False
                )
        except ValueError as exc:  # e.g. an unknown language code
            raise InvalidRequestError(str(exc)) from exc
        summary = TranscriptionInfo(
            language=info.language, language_probability=float(info.language_probability), duration=float(info.duration)
        )

        def iterate() -> Iterator[Segment]:
            for n, seg in enumerate(segments):
                yield Segment(id=n, start=round(seg.start, 3), end=round(seg.end, 3), text=seg.text.strip())
                if stop_event is not None and stop_event.is_set():
                    return

        return summary, iterate()

    def transcribe_all(
        self, audio: Audio, *, language: str | None = None, task: str = "transcribe"
    ) -> TranscriptionResult:
        return TranscriptionResult.collect(*self.transcribe(audio, language=language, task=task))


class PiperEngine:
    """Piper text-to-speech: text in, 16-bit mono WAV out."""

    def __init__(
        self, *, path: Path, config_path: Path | None = None, gpu: bool = False, max_characters: int = 4096
    ) -> None:
        config_path = config_path or path.with_name(path.name + ".json")
        if not path.is_file() or not config_path.is_file():
            raise ModelLoadError(f"Piper voice or its config missing: {path}, {config_path}")
        from piper import PiperVoice

        self.voice = PiperVoice.load(str(path), config_path=str(config_path), use_cuda=gpu)
        self.sample_rate = int(self.voice.config.sample_rate)
        self.max_characters = max_characters

    def synthesize(self, text: str, *, speed: float = 1.0, stop_event: threading.Event | None = None) -> SpeechResult:
        """Speak the text sentence by sentence; a set `stop_event` stops between sentences (InvalidRequestError
        is not it: the caller has gone, so what was spoken so far is returned)."""
        from piper import SynthesisConfig

        text = (text or "").strip()
        if not text:
            raise InvalidRequestError("text must not be empty")
        if len(text) > self.max_characters:
            raise InvalidRequestError(f"text is {len(text)} characters; the limit is {self.max_characters}")
        SPEECH_SPEED.check(speed)
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(self.sample_rate)
            # Piper's length_scale is a duration multiplier: faster speech = shorter.
            for chunk in self.voice.synthesize(text, syn_config=SynthesisConfig(length_scale=1.0 / speed)):
                wav.writeframes(chunk.audio_int16_bytes)
                if stop_event is not None and stop_event.is_set():
                    break
        data = buffer.getvalue()
        with wave.open(io.BytesIO(data), "rb") as wav:
            frames, rate = wav.getnframes(), wav.getframerate()
        return SpeechResult(wav=data, sample_rate=rate, duration=frames / rate, usage=Usage(characters=len(text)))
