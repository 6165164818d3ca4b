"""Piper speech, transcribed back by Whisper: a round trip through both real engines."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import jiwer
import pytest

from inference.types import AudioDecodeError, InvalidRequestError
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
