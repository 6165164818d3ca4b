import subprocess
import sys
from pathlib import Path


def test_importing_inference_does_not_import_django_or_engine_libraries():
    code = (
        "import sys, inference, inference.fake, inference.pool, inference.probe, inference.buildcheck\n"
        "heavy = ('django', 'channels', 'playground', 'llama_cpp', 'faster_whisper', 'piper')\n"
        "bad = [m for m in heavy if m in sys.modules]\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stdout + result.stderr
