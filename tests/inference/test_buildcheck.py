"""The set-up's proof: builds chosen for the CPU, a crashing build replaced, and a clear stop when nothing runs.

The probes here are real child processes decoding with the real default models; a crash is injected with
PLAYGROUND_PROBE_FAULT (the child kills itself with the signal, as a refused instruction would). Only the
compiler is faked: the installer records which build it was asked for instead of compiling for minutes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from inference import buildcheck
from inference.buildcheck import (
    SPEECH_CAPS,
    Cpu,
    Record,
    SetupError,
    Target,
    Variant,
    ensure_engines,
    portable_args,
    read_cpu,
    signal_name,
    variants,
)
from inference.probe import FAULT_ENV
from tests.inference.conftest import catalog_spec

AVX512 = {"sse4_2", "avx", "avx2", "fma", "f16c", "bmi2", "avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"}
SAPPHIRE = Cpu("x86_64", "Intel Xeon (Sapphire Rapids)", frozenset(AVX512 | {"avx512_vnni", "amx_tile", "amx_int8"}))
HASWELL = Cpu("x86_64", "Intel Xeon (Haswell)", frozenset({"sse4_2", "avx", "avx2", "fma", "f16c", "bmi2"}))


class FakeInstaller:
    def __init__(self) -> None:
        self.installed: list[Variant] = []

    def install(self, variant: Variant) -> None:
        self.installed.append(variant)


def target(model_id: str) -> Target:
    spec = catalog_spec(model_id)
    return Target(spec.id, spec.task, spec.engine, spec.path, spec.options)


def prove(tmp_path: Path, targets: list[Target], cpu: Cpu = SAPPHIRE, **kwargs: object) -> tuple[Record, list[str]]:
    said: list[str] = []
    kwargs.setdefault("installer", FakeInstaller())
    kwargs.setdefault("threads", 2)
    kwargs.setdefault("gpu", "")
    record = ensure_engines(
        targets,
        python=sys.executable,
        record_path=tmp_path / "engine-build.json",
        cpu=cpu,
        say=said.append,
        **kwargs,
    )
    return record, said


def test_the_portable_build_names_every_instruction_set_the_cpu_has_and_never_amx():
    args = portable_args(SAPPHIRE).split()
    assert "-DGGML_NATIVE=OFF" in args and "-DGGML_AVX512=ON" in args and "-DGGML_AVX512_VNNI=ON" in args
    assert {"-DGGML_AMX_TILE=OFF", "-DGGML_AMX_INT8=OFF", "-DGGML_AMX_BF16=OFF"} <= set(args)
    assert "-DGGML_AVX512_BF16=OFF" in args  # not advertised: not compiled in
    older = portable_args(HASWELL).split()
    assert "-DGGML_AVX2=ON" in older and "-DGGML_AVX512=OFF" in older and "-DGGML_AVX_VNNI=OFF" in older


def test_builds_are_tried_best_first_and_operator_flags_replace_them():
    assert [v.name for v in variants(SAPPHIRE)] == ["native", "portable"]
    assert [v.name for v in variants(SAPPHIRE, gpu="NVIDIA H200")] == ["cuda", "cuda-portable", "native", "portable"]
    assert all(v.gpu for v in variants(SAPPHIRE, gpu="NVIDIA H200")[:2])
    (custom,) = variants(SAPPHIRE, forced="-DGGML_NATIVE=OFF -DGGML_AVX2=ON")
    assert custom.name == "custom" and custom.cmake_args == "-DGGML_NATIVE=OFF -DGGML_AVX2=ON" and not custom.gpu
    (cuda,) = variants(SAPPHIRE, forced="-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=90")
    assert cuda.gpu  # proved on the GPU


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu avx avx2 amx_tile sse4_2\n\n")
    cpu = read_cpu(cpuinfo)
    assert cpu.model == "Test CPU" and cpu.relevant == ["amx_tile", "avx", "avx2", "sse4_2"]
    assert "amx_tile" in cpu.describe()
    assert read_cpu(tmp_path / "missing").flags == frozenset()


def test_signal_names_say_what_happened():
    assert signal_name(-4) == "SIGILL (illegal instruction)"
    assert signal_name(-11) == "SIGSEGV (segmentation fault)"


@pytest.mark.real_model
def test_a_build_that_dies_by_sigill_is_replaced_by_one_without_amx_and_the_setup_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv(FAULT_ENV, "SIGILL@native")  # the native build "faults", the portable one runs
    installer = FakeInstaller()
    record, said = prove(tmp_path, [target("smollm2-135m-instruct")], installer=installer)
    assert [v.name for v in installer.installed] == ["native", "portable"]
    assert "-DGGML_AMX_TILE=OFF" in installer.installed[1].cmake_args
    text = "\n".join(said)
    assert "died by SIGILL (illegal instruction) with the native build" in text
    assert "runs with the portable build (-DGGML_NATIVE=OFF" in text
    assert record.variant == "portable" and "-DGGML_AMX_INT8=OFF" in record.cmake_args
    assert record.cpu_flags == SAPPHIRE.relevant and "amx_tile" in record.cpu_flags
    assert "tokens after a" in record.proven["smollm2-135m-instruct"]
    assert Record.load(tmp_path / "engine-build.json") == record


@pytest.mark.real_model
def test_when_every_build_dies_the_setup_stops_naming_the_signal_the_cpu_flags_and_a_command(tmp_path, monkeypatch):
    monkeypatch.setenv(FAULT_ENV, "SIGILL")
    installer = FakeInstaller()
    with pytest.raises(SetupError) as caught:
        prove(tmp_path, [target("smollm2-135m-instruct")], installer=installer)
    message = str(caught.value)
    assert "every build tried (native, portable)" in message
    assert "SIGILL (illegal instruction)" in message
    assert "amx_tile" in message and "Intel Xeon (Sapphire Rapids)" in message
    assert 'CMAKE_ARGS="-DGGML_NATIVE=OFF' in message and "./dev run" in message
    assert not (tmp_path / "engine-build.json").exists()  # nothing proven, nothing recorded


@pytest.mark.real_model
def test_operator_flags_are_proved_but_never_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv(FAULT_ENV, "SIGSEGV")
    installer = FakeInstaller()
    with pytest.raises(SetupError, match="SIGSEGV"):
        prove(tmp_path, [target("smollm2-135m-instruct")], installer=installer, forced="-DGGML_NATIVE=OFF")
    assert [v.name for v in installer.installed] == ["custom"]


@pytest.mark.real_model
def test_a_proven_build_is_reused_on_the_same_cpu_and_rebuilt_on_another(tmp_path):
    smollm2 = [target("smollm2-135m-instruct")]
    first, _ = prove(tmp_path, smollm2)
    assert first.variant == "native"
    again = FakeInstaller()
    second, said = prove(tmp_path, smollm2, installer=again)
    assert again.installed == [] and second == first and "engines already proven on this CPU" in said[0]
    assert first.threads == 2
    fewer = FakeInstaller()  # the site's thread count changed: the same build is proved again with it
    fewer_threads, said = prove(tmp_path, smollm2, installer=fewer, threads=1)
    assert fewer.installed == [] and fewer_threads.threads == 1 and "with 1 threads" in said[0]
    moved = FakeInstaller()  # the same virtualenv on a machine with other instruction sets
    third, said = prove(tmp_path, smollm2, cpu=HASWELL, installer=moved)
    assert [v.name for v in moved.installed] == ["native"] and third.cpu_flags == HASWELL.relevant
    assert "made for another CPU" in said[0]


def test_a_model_that_fails_without_crashing_stops_the_setup_with_its_error(tmp_path):
    broken = Target("broken", "text-to-text", "llama", tmp_path / "missing.gguf")
    with pytest.raises(SetupError, match="weights not found"):
        prove(tmp_path, [broken])


@pytest.mark.real_model
def test_speech_that_crashes_is_proved_again_with_its_dispatch_capped_and_the_site_keeps_the_caps(
    tmp_path, monkeypatch
):
    monkeypatch.setenv(FAULT_ENV, "SIGILL@default")  # only while CTranslate2 runs uncapped
    record, said = prove(tmp_path, [target("whisper-tiny.en"), target("piper-en-us-joe")])
    assert record.env == SPEECH_CAPS
    assert "transcribed" in record.proven["whisper-tiny.en"] and "spoke" in record.proven["piper-en-us-joe"]
    assert any("capped at AVX2" in line for line in said)
    monkeypatch.setattr(buildcheck.sys, "prefix", str(tmp_path))
    assert buildcheck.recorded_env() == SPEECH_CAPS


class NoCudaCompiler(FakeInstaller):
    """A machine with a GPU whose CUDA builds fail to compile (an nvcc the sources do not support, say)."""

    def install(self, variant: Variant) -> None:
        super().install(variant)
        if variant.gpu:
            raise SetupError("pip wheel failed (exit 1):\nnvcc fatal: unsupported GPU architecture")


@pytest.mark.real_model
def test_with_a_gpu_cuda_builds_come_first_and_a_failing_one_falls_back_to_the_cpu_builds(tmp_path, monkeypatch):
    smollm2 = [target("smollm2-135m-instruct")]
    record, said = prove(tmp_path, smollm2, gpu="NVIDIA H200", installer=(installer := NoCudaCompiler()))
    assert [v.name for v in installer.installed] == ["cuda", "cuda-portable", "native"]
    assert record.variant == "native" and record.request == "auto+NVIDIA H200"
    assert any("the cuda build failed (pip wheel failed (exit 1):); trying the next" in note for note in record.notes)
    monkeypatch.setenv(FAULT_ENV, "SIGABRT@cuda")  # the CUDA build's CPU code faults: the portable CUDA build next
    (tmp_path / "again").mkdir()
    record, said = prove(tmp_path / "again", smollm2, gpu="NVIDIA H200", installer=(installer := FakeInstaller()))
    assert [v.name for v in installer.installed] == ["cuda", "cuda-portable"] and record.variant == "cuda-portable"
    assert "died by SIGABRT with the cuda build" in "\n".join(said)
