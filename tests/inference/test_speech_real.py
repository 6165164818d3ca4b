"""Piper speech, transcribed back by Whisper: a round trip through both real engines."""

from __future__ import annotations

import io
import threading
import wave
from pathlib import Path

import jiwer
import pytest

from inference.types import AudioDecodeError, AudioTooLongError, InvalidRequestError
from tests.audio import FORMATS, encode_wav, is_english_translation

SENTENCE = "The quick brown fox jumps over the lazy dog. It was a sunny morning in the city."
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def wer(reference: str, hypothesis: str) -> float:
    normalise = jiwer.Compose(
        [jiwer.ToLowerCase(), jiwer.RemovePunctuation(), jiwer.RemoveMultipleSpaces(), jiwer.Strip()]
    )
    return jiwer.wer(normalise(reference), normalise(hypothesis))


@pytest.fixture(scope="module")
def speech(piper):  # noqa: ANN201
    return piper.synthesize(SENTENCE)


def test_piper_makes_16_bit_wav_with_duration_and_characters(speech):
    with wave.open(io.BytesIO(speech.wav)) as wav:
        assert wav.getsampwidth() == 2 and wav.getnchannels() == 1
        assert wav.getframerate() == speech.sample_rate == 22050
        assert wav.getnframes() / wav.getframerate() == pytest.approx(speech.duration)
    assert 3.0 < speech.duration < 10.0
    assert speech.usage.characters == len(SENTENCE)


def test_speed_control_shortens_the_audio(piper, speech):
    faster = piper.synthesize(SENTENCE, speed=2.0)
    assert faster.duration < speech.duration * 0.7


def test_round_trip_word_error_rate_is_under_20_percent(whisper_tiny, speech):
    result = whisper_tiny.transcribe_all(speech.wav)
    assert wer(SENTENCE, result.text) < 0.2
    assert result.language == "en"
    assert result.usage.audio_seconds == pytest.approx(speech.duration, abs=0.1)
    assert result.segments and result.segments[0].start == 0.0
    assert all(s.end >= s.start for s in result.segments)


def test_segments_stream_as_a_generator(whisper_tiny, speech):
    info, segments = whisper_tiny.transcribe(speech.wav, language="en")
    assert info.language == "en"
    first = next(segments)
    assert first.id == 0 and first.text


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_common_audio_formats_are_decoded(whisper_tiny, speech, name):
    container, codec = FORMATS[name]
    audio = encode_wav(speech.wav, container, codec)
    assert wer(SENTENCE, whisper_tiny.transcribe_all(audio).text) < 0.2


def test_multilingual_model_detects_language_and_translates(whisper_base):
    audio = (FIXTURES / "speech_es.ogg").read_bytes()  # espeak-ng -v es (see tests/fixtures/README.md)
    transcript = whisper_base.transcribe_all(audio)
    assert transcript.language == "es"
    assert "queso" in transcript.text.lower()
    translated = whisper_base.transcribe_all(audio, task="translate")
    assert is_english_translation(translated.text), translated.text


def test_english_only_model_refuses_translation(whisper_tiny, speech):
    with pytest.raises(InvalidRequestError, match="English-only"):
        whisper_tiny.transcribe(speech.wav, task="translate")


def test_undecodable_audio_is_a_clear_error(whisper_tiny):
    with pytest.raises(AudioDecodeError, match="could not be decoded"):
        whisper_tiny.transcribe(b"this is not audio at all" * 100)
    with pytest.raises(AudioDecodeError):
        whisper_tiny.transcribe(b"")


def test_empty_and_oversize_text_are_clear_errors(piper):
    with pytest.raises(InvalidRequestError, match="must not be empty"):
        piper.synthesize("   ")
    with pytest.raises(InvalidRequestError, match="limit is"):
        piper.synthesize("a" * (piper.max_characters + 1))
    with pytest.raises(InvalidRequestError, match="speed"):
        piper.synthesize("hello", speed=10)


def _flac_silence(seconds: int, rate: int = 16000) -> bytes:
    """Compressed silence: a few KB that decode to `seconds` of audio (what a 25 MB upload can hide)."""
    import av
    import numpy as np

    out = io.BytesIO()
    with av.open(out, "w", format="flac") as container:
        stream = container.add_stream("flac", rate=rate, layout="mono")
        block = np.zeros((1, rate * 10), dtype=np.int16)
        for n in range(seconds // 10):
            frame = av.AudioFrame.from_ndarray(block, format="s16", layout="mono")
            frame.rate, frame.pts = rate, n * rate * 10
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


def test_audio_longer_than_the_limit_is_refused_from_its_container_before_decoding(whisper_tiny, monkeypatch):
    import av

    hour = _flac_silence(3600)
    assert len(hour) < 2_000_000  # an hour in under 2 MB

    def no_decoding(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("decoding started")

    monkeypatch.setattr(av, "AudioResampler", no_decoding)
    with pytest.raises(AudioTooLongError, match=r"lasts 60.0 minutes; the limit here is 30.0 minutes"):
        whisper_tiny.transcribe(hour, max_seconds=1800)


def test_audio_within_the_limit_decodes_and_a_file_without_audio_is_refused(whisper_tiny):
    info, segments = whisper_tiny.transcribe(_flac_silence(20), max_seconds=30)
    list(segments)
    assert info.duration == pytest.approx(20, abs=0.1)
    with pytest.raises(AudioTooLongError):
        whisper_tiny.transcribe(_flac_silence(20), max_seconds=10)
    with pytest.raises(AudioDecodeError):
        whisper_tiny.transcribe(b"RIFF....WAVEfmt not really audio", max_seconds=30)


def test_speech_synthesis_stops_between_sentences_when_asked(piper):
    text = " ".join(f"This is sentence number {n}, spoken slowly and clearly." for n in range(8))
    whole = piper.synthesize(text)
    stop = threading.Event()
    stop.set()
    cut = piper.synthesize(text, stop_event=stop)
    assert 0 < cut.duration < whole.duration / 4  # the first sentence only


def test_long_audio_goes_through_the_batched_pipeline_with_the_same_segments_api(piper):
    """Audio at least `batched_from_seconds` long is cut by the VAD and decoded in batches: the same Segment
    objects (ids in order, times within the audio), the same words."""
    from inference.speech import WhisperEngine
    from tests.inference.conftest import THREADS, catalog_spec

    sentences = [SENTENCE, "Bread rises because yeast makes gas.", "The river runs past the old mill."]
    clips = [piper.synthesize(text) for text in sentences]
    frames = b""
    for clip in clips:
        with wave.open(io.BytesIO(clip.wav)) as reader:
            frames += reader.readframes(reader.getnframes()) + b"\0\0" * reader.getframerate()  # 1 s of silence
    long_wav = io.BytesIO()
    with wave.open(long_wav, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(clips[0].sample_rate)
        out.writeframes(frames)
    engine = WhisperEngine(path=catalog_spec("whisper-tiny.en").path, threads=THREADS, batched_from_seconds=5)
    result = engine.transcribe_all(long_wav.getvalue())
    assert engine._batched is not None  # the batched pipeline ran
    assert wer(" ".join(sentences), result.text) < 0.2
    duration = sum(c.duration for c in clips) + len(clips)
    assert result.usage.audio_seconds == pytest.approx(duration, abs=0.2)
    assert [s.id for s in result.segments] == list(range(len(result.segments)))
    assert all(0 <= s.start < s.end <= duration + 0.5 for s in result.segments)
