"""Re-encode WAV audio into the container/codec pairs users upload (PyAV's bundled FFmpeg)."""

from __future__ import annotations

import io
import wave

import av
import numpy as np

FORMATS = {  # name: (container, codec)
    "mp3": ("mp3", "libmp3lame"),
    "ogg-opus": ("ogg", "libopus"),
    "webm": ("webm", "libopus"),
    "m4a-aac": ("ipod", "aac"),
    "flac": ("flac", "flac"),
}


def encode_wav(wav_bytes: bytes, container: str, codec: str) -> bytes:
    with wave.open(io.BytesIO(wav_bytes)) as w:
        rate = w.getframerate()
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        stream = out.add_stream(codec, rate=48000 if "opus" in codec else rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=stream.rate)
        for resampled in [*resampler.resample(frame), *resampler.resample(None)]:
            for packet in stream.encode(resampled):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


# tests/fixtures/speech_es.ogg says "Hola, buenos días. Me gusta mucho comer pan con queso y beber agua fría en
# verano." (espeak-ng). whisper-base's English wording of it depends on the build and device (CPU int8 or
# CUDA float16), so a translation is judged by vocabulary: some of these English words, none of the Spanish.
ENGLISH_HINTS = {"hello", "good", "morning", "like", "eat", "bread", "cheese", "water", "cold", "summer", "drink"}
SPANISH_WORDS = {"hola", "buenos", "gusta", "comer", "queso", "agua", "beber", "verano"}


def is_english_translation(text: str) -> bool:
    words = set(text.lower().replace(",", " ").replace(".", " ").replace("!", " ").split())
    return bool(words & ENGLISH_HINTS) and not words & SPANISH_WORDS
