"""Speech output formats: a 1 s tone encoded to each format, decoded back by PyAV and checked."""

from __future__ import annotations

import io
import wave

import av
import numpy as np
import pytest

from inference import audioformat
from inference.audioformat import FORMATS, available, encode

RATE = 22050
TONE_HZ = 440.0
# What PyAV decodes each format back as: (container, codec).
DECODED = {
    "mp3": ("mp3", "mp3"),
    "opus": ("ogg", "opus"),
    "aac": ("aac", "aac"),
    "flac": ("flac", "flac"),
    "wav": ("wav", "pcm_s16le"),
}


def tone_wav(seconds: float = 1.0, rate: int = RATE, channels: int = 1) -> bytes:
    """A 440 Hz sine at half scale as 16-bit WAV, what Piper writes."""
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.5 * 32767 * np.sin(2 * np.pi * TONE_HZ * t)).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.repeat(samples, channels).tobytes())
    return buffer.getvalue()


def decode(data: bytes) -> tuple[str, str, np.ndarray, int]:
    """(container, codec, mono float samples, sample rate) of an encoded file."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        codec = stream.codec_context.codec.name
        frames = [_as_float(f.to_ndarray()).reshape(-1) for f in container.decode(stream)]
        rate = stream.codec_context.sample_rate
        return container.format.name.split(",")[0], codec, np.concatenate(frames), rate


def _as_float(samples: np.ndarray) -> np.ndarray:
    """Decoders give floats in [-1, 1] (mp3, aac, opus) or integers (flac, wav): scale both to [-1, 1]."""
    if np.issubdtype(samples.dtype, np.integer):
        return samples / np.iinfo(samples.dtype).max
    return samples.astype(np.float64)


def peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


def test_the_pinned_pyav_build_offers_every_openai_format():
    # av 16.1.0's wheel bundles libmp3lame, libopus, FFmpeg's aac and flac: if a build drops one, the server
    # stops offering it, and this says so.
    assert available() == ("mp3", "opus", "aac", "flac", "wav", "pcm")
    assert set(FORMATS) == {"mp3", "opus", "aac", "flac", "wav", "pcm"}


@pytest.mark.parametrize("fmt", [f for f in available() if f != "pcm"])
def test_a_one_second_tone_decodes_back_with_its_codec_length_and_pitch(fmt):
    data = encode(tone_wav(), fmt)
    container, codec, samples, rate = decode(data)
    assert (container, codec.removesuffix("float")) == DECODED[fmt]  # FFmpeg's mp3 decoder is "mp3float"
    # Lossy codecs add an encoder delay and pad the last frame: a few hundredths of a second.
    assert len(samples) / rate == pytest.approx(1.0, abs=0.1), (fmt, len(samples), rate)
    assert peak_hz(samples, rate) == pytest.approx(TONE_HZ, abs=5)
    assert np.sqrt(np.mean(samples**2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.15)  # the tone, not silence
    print(f"{fmt}: {len(data)} bytes for 1 s ({FORMATS[fmt].encoder or 'no encoder'}, {rate} Hz)")


def test_lossy_formats_are_far_smaller_than_wav():
    wav = tone_wav()
    for fmt in ("mp3", "opus", "aac"):
        if fmt in available():
            assert len(encode(wav, fmt)) < len(wav) / 4, fmt


def test_pcm_is_the_raw_little_endian_samples():
    wav = tone_wav()
    pcm = encode(wav, "pcm")
    assert len(pcm) == RATE * 2
    with wave.open(io.BytesIO(wav)) as w:
        assert pcm == w.readframes(w.getnframes())
    assert np.frombuffer(pcm, "<i2").max() == 16383


def test_wav_is_returned_as_it_is():
    wav = tone_wav()
    assert encode(wav, "wav") == wav


def test_an_unknown_format_is_refused_naming_the_available_ones():
    with pytest.raises(ValueError) as refused:
        encode(tone_wav(), "ogg")
    message = str(refused.value)
    assert "'ogg'" in message
    assert all(name in message for name in available())


def test_a_format_whose_encoder_is_missing_is_not_offered(monkeypatch):
    real_codec = av.Codec

    def codec(name: str, mode: str = "r") -> av.Codec:
        if name == "libmp3lame":
            raise av.codec.codec.UnknownCodecError(name)
        return real_codec(name, mode)

    audioformat.available.cache_clear()
    monkeypatch.setattr(av, "Codec", codec)
    try:
        assert "mp3" not in available() and "flac" in available() and "wav" in available()
        with pytest.raises(ValueError, match="available: opus, aac, flac, wav, pcm"):
            encode(tone_wav(), "mp3")
    finally:
        audioformat.available.cache_clear()


def test_audio_that_is_not_16_bit_mono_wav_is_refused():
    with pytest.raises(ValueError, match="mono"):
        encode(tone_wav(channels=2), "mp3")
    with pytest.raises(ValueError, match="not a WAV"):
        encode(b"RIFF nonsense", "flac")
