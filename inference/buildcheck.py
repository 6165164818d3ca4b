"""Install llama-cpp-python built for this machine, and prove every engine runs here before the set-up says so.

llama-cpp-python compiles llama.cpp on the machine it is installed on, by default with ``-march=native``
(``GGML_NATIVE``). A CPU that *advertises* an instruction set may still refuse it: on hosts whose CPU
flags include AMX under some hypervisors, the AMX matrix kernels die with SIGILL on the first multi-token
prompt, while the same build runs on other hosts. So a build is only trusted once a child process has
decoded a real prompt with it (inference/probe.py): a child, because a refused instruction kills the
process with no Python exception.

The llama.cpp builds tried, in order (the first one whose proof passes is kept):
- ``native``: ``-DGGML_NATIVE=ON``, the fastest for this CPU;
- ``portable``: ``-DGGML_NATIVE=OFF`` with each instruction-set family this CPU advertises named
  explicitly (SSE4.2, AVX, AVX2, FMA, F16C, BMI2, AVX-VNNI, AVX-512 F/VBMI/VNNI/BF16) and AMX off;
- with a CUDA toolkit and a GPU, ``cuda`` (``-DGGML_CUDA=on`` over the native CPU code) and
  ``cuda-portable`` come first; a CUDA build that fails to build or to decode on the GPU falls back
  to the CPU builds, and says so;
- ``CMAKE_ARGS`` in the environment replaces them all with the operator's own flags (proved, never
  second-guessed).
Each build is kept as a wheel under ``~/.cache/genai-playground/wheels`` keyed by its flags and this CPU,
so a fresh clone on the same machine installs it in seconds.

faster-whisper (CTranslate2) and Piper (onnxruntime) ship prebuilt wheels that pick their kernels at run
time; their proof is a short transcription and one spoken sentence. If CTranslate2 dies by a signal, the
proof is run again with its run-time dispatch capped at AVX2 (CTranslate2, oneDNN and MKL each read an
environment variable for that); if that passes, the site runs with the same caps (kept in the record).

The outcome is a record (``<venv>/engine-build.json``): the llama-cpp-python version, the build and its
flags, this CPU's model and instruction-set flags, the environment caps, and what each model's proof did.
A later set-up whose version, CPU and requested build match the record skips all of this; a copied
virtualenv or a new CPU does not match, and is rebuilt and proved again.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from inference.probe import VARIANT_ENV

REPO = Path(__file__).resolve().parents[1]
RECORD_NAME = "engine-build.json"
PROBE_TIMEOUT = 600  # seconds: a probe loads one small model and runs a few tokens

# /proc/cpuinfo flags -> the llama.cpp CMake option that compiles for them (all of them must be present).
CPU_OPTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("GGML_SSE42", ("sse4_2",)),
    ("GGML_AVX", ("avx",)),
    ("GGML_AVX2", ("avx2",)),
    ("GGML_FMA", ("fma",)),
    ("GGML_F16C", ("f16c",)),
    ("GGML_BMI2", ("bmi2",)),
    ("GGML_AVX_VNNI", ("avx_vnni",)),
    ("GGML_AVX512", ("avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw")),
    ("GGML_AVX512_VBMI", ("avx512vbmi",)),
    ("GGML_AVX512_VNNI", ("avx512_vnni",)),
    ("GGML_AVX512_BF16", ("avx512_bf16",)),
)
NEVER = ("GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AMX_BF16")  # the instructions seen to fault
RELEVANT_FLAGS = {flag for _, flags in CPU_OPTIONS for flag in flags} | {"amx_tile", "amx_int8", "amx_bf16"}
# Run-time dispatch caps for CTranslate2 (faster-whisper), tried when its proof dies by a signal.
SPEECH_CAPS = {"CT2_FORCE_CPU_ISA": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}


class SetupError(RuntimeError):
    """The set-up cannot produce engines that run here; the message says what failed and what to try."""


# --- the machine ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cpu:
    arch: str
    model: str
    flags: frozenset[str]

    @property
    def relevant(self) -> list[str]:
        """The instruction-set flags a build depends on, sorted (what the record keeps)."""
        return sorted(self.flags & RELEVANT_FLAGS)

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(f"{self.arch}|{self.model}|{' '.join(self.relevant)}".encode()).hexdigest()[:16]

    def describe(self) -> str:
        return f"{self.model or 'unknown CPU'} ({self.arch}); flags: {' '.join(self.relevant) or 'none of note'}"


def read_cpu(cpuinfo: Path = Path("/proc/cpuinfo")) -> Cpu:
    flags: set[str] = set()
    model = ""
    try:
        text = cpuinfo.read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("flags", "Features") and not flags:
            flags = set(value.split())
        elif key in ("model name", "CPU part") and not model:
            model = value.strip()
    return Cpu(platform.machine(), model, frozenset(flags))


def gpu_name() -> str:
    """The first NVIDIA GPU's name when a CUDA toolkit (nvcc) and a driver are present, else ''."""
    if not shutil.which("nvcc") or not shutil.which("nvidia-smi"):
        return ""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else ""


# --- the llama.cpp builds ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    name: str
    cmake_args: str
    gpu: bool = False


def portable_args(cpu: Cpu) -> str:
    """-DGGML_NATIVE=OFF and every instruction-set option named: on where this CPU has it, AMX always off."""
    if cpu.arch not in ("x86_64", "AMD64", "i686"):
        return "-DGGML_NATIVE=OFF"  # other architectures: the compiler's generic baseline
    options = [f"-D{name}={'ON' if set(flags) <= cpu.flags else 'OFF'}" for name, flags in CPU_OPTIONS]
    return " ".join(["-DGGML_NATIVE=OFF", *options, *(f"-D{name}=OFF" for name in NEVER)])


def minimal_args() -> str:
    """The suggestion when even the portable build faults: AVX2 at most, nothing newer."""
    on = {"GGML_SSE42", "GGML_AVX", "GGML_AVX2", "GGML_FMA", "GGML_F16C"}
    options = [f"-D{name}={'ON' if name in on else 'OFF'}" for name, _ in CPU_OPTIONS]
    return " ".join(["-DGGML_NATIVE=OFF", *options, *(f"-D{name}=OFF" for name in NEVER)])


def variants(cpu: Cpu, *, gpu: str = "", forced: str | None = None) -> list[Variant]:
    """The builds to try, best first."""
    if forced is not None:
        cuda = re.search(r"-DGGML_CUDA=(ON|1|TRUE|YES)\b", forced, re.IGNORECASE) is not None
        return [Variant("custom", forced.strip(), gpu=cuda)]
    cpu_builds = [Variant("native", "-DGGML_NATIVE=ON"), Variant("portable", portable_args(cpu))]
    if not gpu:
        return cpu_builds
    return [
        Variant("cuda", "-DGGML_CUDA=on -DGGML_NATIVE=ON", True),
        Variant("cuda-portable", f"-DGGML_CUDA=on {portable_args(cpu)}", True),
        *cpu_builds,
    ]


def pinned_version(requirements: Path = REPO / "requirements.txt") -> str:
    """llama-cpp-python's version: requirements.txt is the one place it is pinned."""
    match = re.search(r"^llama[-_]cpp[-_]python==(\S+)", requirements.read_text(), re.MULTILINE | re.IGNORECASE)
    if not match:
        raise SetupError(f"{requirements} does not pin llama-cpp-python (llama_cpp_python==X.Y.Z)")
    return match.group(1)


class Installer(Protocol):
    def install(self, variant: Variant) -> None: ...


class WheelInstaller:
    """Builds llama-cpp-python wheels from the pinned sdist (once per flag set and CPU) and installs them."""

    def __init__(
        self, *, python: str, version: str, cpu: Cpu, gpu: str, cache: Path, say: Callable[[str], None]
    ) -> None:
        self.python, self.version, self.cpu, self.gpu, self.cache, self.say = python, version, cpu, gpu, cache, say

    def _pip(self, *args: str, env: Mapping[str, str] | None = None) -> None:
        run = subprocess.run(
            [self.python, "-m", "pip", "-q", "--disable-pip-version-check", *args],
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
        )
        if run.returncode != 0:
            tail = "\n".join((run.stdout + run.stderr).strip().splitlines()[-25:])
            raise SetupError(f"pip {' '.join(args[:2])} failed (exit {run.returncode}):\n{tail}")

    def wheel_dir(self, variant: Variant) -> Path:
        key = f"{variant.cmake_args}|{self.cpu.fingerprint}|{self.gpu if variant.gpu else ''}"
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        return self.cache / "wheels" / f"llama_cpp_python-{self.version}-{variant.name}-{digest}"

    def sdist(self) -> Path:
        folder = self.cache / "sdist"
        found = sorted(folder.glob(f"llama_cpp_python-{self.version}.tar.gz"))
        if not found:
            self._pip(
                "download", "--no-deps", "--no-binary", ":all:", "-d", str(folder), f"llama_cpp_python=={self.version}"
            )
            found = sorted(folder.glob(f"llama_cpp_python-{self.version}.tar.gz"))
        if not found:
            raise SetupError(f"could not download the llama-cpp-python {self.version} source")
        return found[0]

    def build(self, variant: Variant) -> Path:
        """The variant's wheel, built now unless this machine built it before."""
        target = self.wheel_dir(variant)
        wheels = sorted(target.glob("*.whl"))
        if wheels:
            return wheels[0]
        sdist = self.sdist()
        cores = os.cpu_count() or 2
        self.say(f"building llama.cpp ({variant.name}: {variant.cmake_args}) on {cores} cores; this takes minutes")
        with tempfile.TemporaryDirectory(dir=self.cache) as tmp:
            env = {"CMAKE_ARGS": variant.cmake_args, "CMAKE_BUILD_PARALLEL_LEVEL": str(cores), "FORCE_CMAKE": "1"}
            # --no-cache-dir: pip's own wheel cache ignores CMAKE_ARGS and would hand back another build.
            self._pip("wheel", "--no-deps", "--no-cache-dir", "-w", tmp, str(sdist), env=env)
            built = sorted(Path(tmp).glob("*.whl"))
            if not built:
                raise SetupError(f"pip built no llama-cpp-python wheel for {variant.name}")
            target.mkdir(parents=True, exist_ok=True)
            shutil.move(built[0], target / built[0].name)
        return target / built[0].name

    def install(self, variant: Variant) -> None:
        wheel = self.build(variant)
        self.say(f"installing llama-cpp-python {self.version} ({variant.name})")
        self._pip("install", "--no-deps", "--force-reinstall", str(wheel))


# --- the proof --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One model to prove: what inference/probe.py needs to load it."""

    model_id: str
    task: str
    engine: str
    path: Path
    options: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str  # what the inference did, or how it failed
    signal: str = ""  # the signal that killed the child, if one did

    @property
    def crashed(self) -> bool:
        return bool(self.signal)


def signal_name(returncode: int) -> str:
    try:
        sig = signal.Signals(-returncode)
    except ValueError:
        return f"signal {-returncode}"
    described = {"SIGILL": "illegal instruction", "SIGSEGV": "segmentation fault", "SIGBUS": "bus error"}
    return f"{sig.name} ({described[sig.name]})" if sig.name in described else sig.name


def probe(
    target: Target, *, python: str, threads: int, gpu: bool = False, env: Mapping[str, str] | None = None
) -> ProbeResult:
    """Load the model and run a tiny real inference in a child process; report how the child ended."""
    options = {k: str(v) if isinstance(v, Path) else v for k, v in target.options.items()}
    command = [python, "-m", "inference.probe", "--task", target.task, "--engine", target.engine]
    command += ["--path", str(target.path), "--threads", str(threads), "--options", json.dumps(options)]
    if gpu:
        command.append("--gpu")
    try:
        run = subprocess.run(
            command,
            cwd=REPO,
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        return ProbeResult(False, f"no answer within {PROBE_TIMEOUT} s")
    if run.returncode < 0:
        return ProbeResult(False, f"died by {signal_name(run.returncode)}", signal_name(run.returncode).split()[0])
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    if run.returncode == 0 and lines:
        return ProbeResult(True, json.loads(lines[-1])["did"])
    errors = [line for line in run.stderr.strip().splitlines() if line.strip()]
    return ProbeResult(False, f"exit {run.returncode}: {errors[-1] if errors else 'no output'}")


@dataclass
class Record:
    version: str
    variant: str
    cmake_args: str
    request: str  # what was asked for: auto, auto+<gpu>, or the operator's CMAKE_ARGS
    cpu: str
    cpu_model: str
    cpu_flags: list[str]
    threads: int = 0  # the thread count the proofs ran with (the site's)
    env: dict[str, str] = field(default_factory=dict)  # run-time caps the site must apply
    proven: dict[str, str] = field(default_factory=dict)  # model id -> what its proof did
    notes: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> Record | None:
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")


def recorded_env(venv: Path | None = None) -> dict[str, str]:
    """The run-time caps the set-up found necessary on this machine (none on most)."""
    record = Record.load((venv or Path(sys.prefix)) / RECORD_NAME)
    return dict(record.env) if record else {}


def installed_version(python: str) -> str:
    run = subprocess.run(
        [python, "-c", "import importlib.metadata as m; print(m.version('llama_cpp_python'))"],
        capture_output=True,
        text=True,
    )
    return run.stdout.strip() if run.returncode == 0 else ""


def _failure(what: str, result: ProbeResult, cpu: Cpu, command: str) -> SetupError:
    return SetupError(f"{what}: {result.detail}.\nCPU: {cpu.describe()}\nTry: {command}")


def ensure_engines(
    targets: Iterable[Target],
    *,
    python: str,
    threads: int,
    record_path: Path,
    installer: Installer | None = None,
    cpu: Cpu | None = None,
    gpu: str | None = None,
    forced: str | None = None,
    say: Callable[[str], None] = print,
) -> Record:
    """Install a llama.cpp build that runs here and prove every target model on it; returns the record.

    Raises SetupError (naming the signal, the CPU flags and a command to try) when nothing works.
    """
    targets = list(targets)
    cpu = cpu or read_cpu()
    gpu = gpu_name() if gpu is None else gpu
    version = pinned_version()
    request = f"CMAKE_ARGS={forced}" if forced is not None else (f"auto+{gpu}" if gpu else "auto")
    installer = installer or WheelInstaller(
        python=python, version=version, cpu=cpu, gpu=gpu, cache=cache_dir(), say=say
    )
    builds = variants(cpu, gpu=gpu, forced=forced)
    old = Record.load(record_path)
    current = (
        old
        if old is not None
        and (old.version, old.cpu, old.request) == (version, cpu.fingerprint, request)
        and installed_version(python) == version
        else None
    )
    if current is not None and current.threads == threads and all(t.model_id in current.proven for t in targets):
        say(f"engines already proven on this CPU (the record: {record_path})")
        return current
    if old is not None and current is None:
        say("the llama.cpp build was made for another CPU, version or request: building and proving again")

    start = next((i for i, b in enumerate(builds) if current and b.name == current.variant), 0)
    chosen, proven, notes = _choose_build(
        [t for t in targets if t.engine == "llama"],
        builds[start:],
        installed=current.variant if current else "",
        installer=installer,
        python=python,
        threads=threads,
        cpu=cpu,
        forced=forced,
        say=say,
    )
    if chosen is not builds[0]:
        notes.append(f"llama.cpp runs with the {chosen.name} build ({chosen.cmake_args})")
        say(notes[-1])
    env = _prove_runtime_engines([t for t in targets if t.engine != "llama"], proven, notes, python, threads, cpu, say)
    record = Record(
        version=version,
        variant=chosen.name,
        cmake_args=chosen.cmake_args,
        request=request,
        cpu=cpu.fingerprint,
        cpu_model=cpu.model,
        cpu_flags=cpu.relevant,
        threads=threads,
        env=env,
        proven=proven,
        notes=notes,
    )
    record.save(record_path)
    return record


def _choose_build(
    llama: list[Target],
    builds: list[Variant],
    *,
    installed: str,
    installer: Installer,
    python: str,
    threads: int,
    cpu: Cpu,
    forced: str | None,
    say: Callable[[str], None],
) -> tuple[Variant, dict[str, str], list[str]]:
    """Install and prove each build in turn until one decodes every llama.cpp model; (build, proofs, notes)."""
    notes: list[str] = []
    proven: dict[str, str] = {}
    tried: list[str] = []
    failure: tuple[Target, ProbeResult] | None = None
    gpu_failed = False
    for index, build in enumerate(builds):
        if build.gpu and gpu_failed:
            continue  # the GPU itself failed (not the CPU code): another CUDA build will not help
        if build.name != installed:
            try:
                installer.install(build)
            except SetupError as exc:
                if not build.gpu:
                    raise
                notes.append(f"the {build.name} build failed ({str(exc).splitlines()[0]}); trying the next")
                say(notes[-1])
                continue
            installed = build.name
        say(f"proving llama.cpp ({build.name}: {build.cmake_args}) with {threads} threads")
        failure = None
        for target in llama:
            result = probe(target, python=python, threads=threads, gpu=build.gpu, env={VARIANT_ENV: build.name})
            if not result.ok:
                failure = (target, result)
                break
            proven[target.model_id] = result.detail
            say(f"  {target.model_id}: {result.detail}")
        if failure is None:
            return build, proven, notes
        target, result = failure
        tried.append(build.name)
        if not result.crashed and not build.gpu:
            raise _failure(
                f"{target.model_id} failed its proof with the {build.name} llama.cpp build",
                result,
                cpu,
                f"{python} -m inference.probe --task {target.task} --engine llama --path {target.path}",
            )
        gpu_failed = gpu_failed or (build.gpu and not result.crashed)
        notes.append(f"{target.model_id} {result.detail} with the {build.name} build")
        say(f"  {notes[-1]}" + ("; trying the next build" if index + 1 < len(builds) else ""))
    if failure is None:
        raise SetupError("no llama.cpp build could be installed")
    target, result = failure
    retry = "./dev run with CMAKE_ARGS unset, or other flags" if forced is not None else "./dev run"
    raise _failure(
        f"llama.cpp does not run on this machine: {target.model_id} failed with every build tried ({', '.join(tried)})",
        result,
        cpu,
        f'CMAKE_ARGS="{minimal_args()}" {retry}',
    )


def _prove_runtime_engines(
    targets: list[Target],
    proven: dict[str, str],
    notes: list[str],
    python: str,
    threads: int,
    cpu: Cpu,
    say: Callable[[str], None],
) -> dict[str, str]:
    """Prove faster-whisper and Piper (prebuilt, run-time dispatch); returns the caps the site must apply."""
    env: dict[str, str] = {}
    for target in targets:
        result = probe(target, python=python, threads=threads, env={**env, VARIANT_ENV: _speech(env)})
        if not result.ok and result.crashed and target.engine == "whisper" and not env:
            say(f"  {target.model_id} {result.detail}; trying again with CTranslate2 capped at AVX2")
            env = dict(SPEECH_CAPS)
            result = probe(target, python=python, threads=threads, env={**env, VARIANT_ENV: _speech(env)})
            if result.ok:
                notes.append(f"faster-whisper runs with {_speech(env)}")
        if not result.ok:
            hint = f"{_speech(SPEECH_CAPS)} ./dev run" if target.engine == "whisper" else "./dev run again"
            raise _failure(f"{target.model_id} ({target.engine}) failed its proof", result, cpu, hint)
        proven[target.model_id] = result.detail
        say(f"  {target.model_id}: {result.detail}")
    return env


def _speech(env: Mapping[str, str]) -> str:
    """How the speech engines run: "default", or the caps in force (what probes and notes name)."""
    return " ".join(f"{k}={v}" for k, v in env.items()) or "default"


def cache_dir() -> Path:
    base = os.environ.get("PLAYGROUND_BUILD_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "genai-playground"
    )
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path
