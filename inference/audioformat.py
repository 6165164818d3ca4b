"""Speech audio in the formats of OpenAI's /v1/audio/speech (`response_format`), made from the WAV Piper writes.

`encode` is a pure function that blocks while it encodes (a few milliseconds per second of speech): call it
from a worker thread, never on the event loop. Encoders come from PyAV's bundled FFmpeg, imported on first use,
so importing this module stays cheap; a format whose encoder this build lacks is not offered (`available`).
"""

from __future__ import annotations

import functools
import io
import wave
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from av.audio.stream import AudioStream


@dataclass(frozen=True)
class AudioFormat:
    content_type: str
    extension: str
    container: str = ""  # FFmpeg muxer; "" for wav and pcm, which need no encoder
    encoder: str = ""
    bit_rate: int = 0  # 0: the encoder's own choice (lossless)


# Every format OpenAI names, in OpenAI's order (mp3 is its default). Bit rates are for mono speech.
FORMATS: dict[str, AudioFormat] = {
    "mp3": AudioFormat("audio/mpeg", "mp3", "mp3", "libmp3lame", 64_000),
    # Opus in Ogg (RFC 7845): audio/ogg is its registered type, the one browsers play.
    "opus": AudioFormat("audio/ogg", "opus", "ogg", "libopus", 32_000),
    # Raw AAC in ADTS frames, what audio/aac means (no MP4 box around it).
    "aac": AudioFormat("audio/aac", "aac", "adts", "aac", 64_000),
    "flac": AudioFormat("audio/flac", "flac", "flac", "flac"),
    "wav": AudioFormat("audio/wav", "wav"),
    # 16-bit signed little-endian mono samples at the voice's rate, no header.
    "pcm": AudioFormat("audio/pcm", "pcm"),
}


@functools.cache
def available() -> tuple[str, ...]:
    """The formats this build can produce, in FORMATS' order: wav and pcm always, the others when PyAV's
    FFmpeg has their encoder."""
    import av

    def has_encoder(name: str) -> bool:
        try:
            av.Codec(name, "w")
        except Exception:  # av's UnknownCodecError, or a decoder-only name
            return False
        return True

    return tuple(name for name, fmt in FORMATS.items() if not fmt.encoder or has_encoder(fmt.encoder))


def encode(wav: bytes, fmt: str) -> bytes:
    """The 16-bit mono WAV `wav` in the format `fmt` (a key of FORMATS that `available()` lists).

    Raises ValueError for a format this build cannot produce (naming those it can) or audio that is not
    16-bit mono PCM WAV."""
    if fmt not in available():
        raise ValueError(f"unknown audio format {fmt!r}; available: {', '.join(available())}")
    try:
        with wave.open(io.BytesIO(wav), "rb") as reader:
            channels, width, rate = reader.getnchannels(), reader.getsampwidth(), reader.getframerate()
            pcm = reader.readframes(reader.getnframes())
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"not a WAV file: {exc}") from exc
    if channels != 1 or width != 2:
        raise ValueError(f"expected 16-bit mono WAV (got {channels} channel(s) of {8 * width}-bit samples)")
    if fmt == "wav":
        return wav
    if fmt == "pcm":
        return pcm  # WAV's samples are already little-endian
    return _encode(pcm, rate, FORMATS[fmt])


def _encode(pcm: bytes, rate: int, fmt: AudioFormat) -> bytes:
    import av
    import numpy as np

    samples = np.frombuffer(pcm, dtype="<i2").reshape(1, -1)
    out_buffer = io.BytesIO()
    with av.open(out_buffer, "w", format=fmt.container) as out:
        # an audio encoder gives an audio stream (PyAV's types cannot tell from the encoder's name)
        stream = cast("AudioStream", out.add_stream(fmt.encoder, rate=_output_rate(av.Codec(fmt.encoder, "w"), rate)))
        stream.layout = "mono"
        if fmt.bit_rate:
            stream.bit_rate = fmt.bit_rate
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = rate
        # One frame for the whole text: the resampler converts it to the encoder's sample format and rate, and
        # PyAV cuts it into the encoder's frame size.
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=stream.rate)
        for part in (*resampler.resample(frame), *resampler.resample(None)):
            out.mux(stream.encode(part))
        out.mux(stream.encode(None))
    return out_buffer.getvalue()


def _output_rate(codec: Any, rate: int) -> int:
    """The voice's rate when the encoder takes it, else the nearest higher rate it does (Opus: 24 or 48 kHz)."""
    rates = sorted(codec.audio_rates or ())
    if not rates or rate in rates:
        return rate
    return next((r for r in rates if r > rate), rates[-1])
