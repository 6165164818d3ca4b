"""The scale-out topology on one machine's loopback: nginx in front of several Daphne processes, several
bulk workers, PostgreSQL as the database and Redis as channel layer, cache and task queue.

    .venv/bin/python deploy/topology.py [--web 2] [--workers 2] [--port 8080] [--engines 2 [--no-llama-server]]

starts everything (a fresh PostgreSQL database, migrated; a flushed Redis database number), prints the
URL and the log directory, and runs until Ctrl+C. By default every process has its own in-process engines.
With --engines N it is a fleet (docs/deploy.md, "GPU fleet"): N engine nodes (PLAYGROUND_ROLE=engine, each
serving SmolLM2 with its own SQLite ledger) and one `python -m llama_cpp.server` (unless --no-llama-server)
on loopback, and web processes and bulk workers with no local models (PLAYGROUND_SERVE_MODELS="") whose extra
catalog file makes `smollm2-135m-instruct` a remote model with those servers as its upstreams. The test suite
uses the `Topology` class (tests/scaleout/). Each process reads only environment variables: the same settings
run the processes on several machines (docs/deploy.md).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = Path(sys.executable)
PG_ADMIN_URL = os.environ.get("PLAYGROUND_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_BASE = os.environ.get("PLAYGROUND_TOPOLOGY_REDIS", "redis://127.0.0.1:6379")
FLEET_MODEL = "smollm2-135m-instruct"  # what the fleet's upstreams serve (--engines)
FLEET_GGUF = REPO / "var" / "models" / "smollm2-135m-instruct.Q4_1.gguf"
CLUSTER_TOKEN_ENV = "PLAYGROUND_TOPOLOGY_CLUSTER_TOKEN"  # the web tier's catalog reads the cluster token from it
# Settings of the shared services, which an engine node does not use (it keeps its own SQLite ledger).
SHARED_ONLY = (
    *("PLAYGROUND_DATABASE_URL", "PLAYGROUND_REDIS_URL", "PLAYGROUND_CHANNEL_LAYER", "PLAYGROUND_CACHE"),
    *("PLAYGROUND_TASKS_BACKEND", "PLAYGROUND_BULK_PARALLEL", "PLAYGROUND_CATALOG"),
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(
    url: str,
    timeout: float,
    proc: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
    headers: dict[str, str] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-3000:] if log and log.exists() else ""
            raise RuntimeError(f"process for {url} exited with {proc.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")
        time.sleep(0.2)


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if not found:
        raise RuntimeError("nginx is not installed (Debian: apt-get install nginx); ./dev test installs it")
    return found


@dataclass
class Topology:
    workdir: Path
    web: int = 2
    workers: int = 2
    port: int = 0
    database: str = "playground_scaleout"
    redis_db: int = 1
    extra_env: dict[str, str] = field(default_factory=dict)
    engines: int = 0  # engine nodes; with any, the web processes and workers load no models (a fleet)
    llama_server: bool = True  # with engines: also a `python -m llama_cpp.server` upstream
    cluster_token: str = "topology-cluster-token-0123456789"  # the engine nodes' PLAYGROUND_CLUSTER_TOKEN
    web_ports: list[int] = field(default_factory=list)
    web_procs: list[subprocess.Popen[bytes] | None] = field(default_factory=list)
    worker_procs: list[subprocess.Popen[bytes] | None] = field(default_factory=list)
    engine_ports: list[int] = field(default_factory=list)
    engine_procs: list[subprocess.Popen[bytes] | None] = field(default_factory=list)
    llama_server_port: int = 0
    llama_server_proc: subprocess.Popen[bytes] | None = None
    nginx: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def web_base(self, n: int) -> str:
        return f"http://127.0.0.1:{self.web_ports[n]}"

    def engine_base(self, n: int) -> str:
        return f"http://127.0.0.1:{self.engine_ports[n]}"

    @property
    def catalog_path(self) -> Path:
        """The web tier's extra catalog file (with engines): the fleet's remote entry."""
        return self.workdir / "fleet.toml"

    @property
    def env(self) -> dict[str, str]:
        redis_url = f"{REDIS_BASE}/{self.redis_db}"
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "playground.settings",
            "PLAYGROUND_DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{self.database}",
            "PLAYGROUND_REDIS_URL": redis_url,
            "PLAYGROUND_CHANNEL_LAYER": "redis",
            "PLAYGROUND_CACHE": "redis",
            "PLAYGROUND_TASKS_BACKEND": "redis",
            "PLAYGROUND_BULK_WORKERS": "0",  # workers are processes of their own here
            "PLAYGROUND_BULK_PARALLEL": str(max(1, self.workers)),  # every worker can share each job
            "PLAYGROUND_TRUSTED_PROXIES": "127.0.0.1",  # nginx: believe its X-Forwarded-For
            "PLAYGROUND_WARM_MODELS": "0",
            **self.fleet_env,
            **self.extra_env,
        }

    @property
    def fleet_env(self) -> dict[str, str]:
        """What makes the web processes and workers a fleet's web tier (nothing without engines)."""
        if not self.engines:
            return {}
        return {
            "PLAYGROUND_SERVE_MODELS": "",  # no in-process models: the remote entry is the only one offered
            "PLAYGROUND_CATALOG": str(self.catalog_path),
            CLUSTER_TOKEN_ENV: self.cluster_token,
        }

    def engine_env(self, n: int) -> dict[str, str]:
        """An engine node's environment: its role, token, model and own SQLite ledger; no shared services."""
        env = {**os.environ, **self.extra_env}
        for name in SHARED_ONLY:
            env.pop(name, None)
        return {
            **env,
            "DJANGO_SETTINGS_MODULE": "playground.settings",
            "PLAYGROUND_ROLE": "engine",
            "PLAYGROUND_CLUSTER_TOKEN": self.cluster_token,
            "PLAYGROUND_SERVE_MODELS": FLEET_MODEL,
            "PLAYGROUND_SQLITE_PATH": str(self.workdir / f"engine-{n}.sqlite3"),
            "PLAYGROUND_BULK_WORKERS": "0",
            "PLAYGROUND_WARM_MODELS": "1",  # loaded before it reports ready
        }

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(PYTHON), "manage.py", *args], cwd=REPO, env=self.env, capture_output=True, text=True, check=check
        )

    def _fresh_services(self) -> None:
        import psycopg
        import redis

        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.database}"')
        redis.Redis.from_url(f"{REDIS_BASE}/{self.redis_db}").flushdb()

    def _spawn(self, name: str, command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115  (the child keeps it)
        return subprocess.Popen(command, cwd=REPO, env=env or self.env, stdout=log, stderr=subprocess.STDOUT)

    def start_engine(self, n: int) -> None:
        """Engine node n: a Daphne with PLAYGROUND_ROLE=engine (its SQLite migrated first), ready when /health
        answers the cluster token."""
        env = self.engine_env(n)
        subprocess.run(
            [str(PYTHON), "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=REPO,
            env=env,
            capture_output=True,
            check=True,
        )
        daphne = str(PYTHON.with_name("daphne"))
        proc = self._spawn(
            f"engine-{n}",
            [daphne, "-b", "127.0.0.1", "-p", str(self.engine_ports[n]), "playground.asgi:application"],
            env,
        )
        self.engine_procs[n] = proc
        auth = {"Authorization": f"Bearer {self.cluster_token}"}
        wait_http(f"{self.engine_base(n)}/health", 180, proc, self.workdir / f"engine-{n}.log", auth)

    def stop_engine(self, n: int) -> None:
        proc = self.engine_procs[n]
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.engine_procs[n] = None

    def start_llama_server(self) -> None:
        """llama-cpp-python's own OpenAI-compatible server: one request at a time, so its cap is 1 (queued, not
        cut off: --interrupt_requests False)."""
        threads = self.extra_env.get("PLAYGROUND_THREADS", os.environ.get("PLAYGROUND_THREADS", "2"))
        command = [str(PYTHON), "-m", "llama_cpp.server", "--model", str(FLEET_GGUF), "--model_alias", FLEET_MODEL]
        command += ["--n_ctx", "8192", "--n_threads", threads, "--interrupt_requests", "False"]
        command += ["--host", "127.0.0.1", "--port", str(self.llama_server_port)]
        self.llama_server_proc = self._spawn("llama-server", command, {**os.environ})
        url = f"http://127.0.0.1:{self.llama_server_port}/v1/models"
        wait_http(url, 180, self.llama_server_proc, self.workdir / "llama-server.log")

    def write_catalog(self) -> None:
        """The web tier's remote entry: the engine nodes (4 requests at a time each: they batch) and the
        llama_cpp.server (1), the cluster token read from CLUSTER_TOKEN_ENV, the GGUF to count tokens."""
        upstreams = [
            f'{{ url = "{self.engine_base(n)}/v1", model = "{FLEET_MODEL}", api_key_env = "{CLUSTER_TOKEN_ENV}", '
            "max_concurrency = 4 }"
            for n in range(self.engines)
        ]
        if self.llama_server:
            upstreams.append(
                f'{{ url = "http://127.0.0.1:{self.llama_server_port}/v1", model = "{FLEET_MODEL}", '
                "max_concurrency = 1 }"
            )
        self.catalog_path.write_text(
            f"""# Written by deploy/topology.py --engines: {FLEET_MODEL} served by the fleet, not in-process.
[[model]]
id = "{FLEET_MODEL}"
name = "SmolLM2 135M Instruct"
task = "text-to-text"
engine = "openai"
family = "SmolLM2"
parameters = "135M"
quantization = "Q4_1"
context_length = 8192
license = "Apache-2.0"
description = "A tiny instruction-tuned chat model, served by the fleet's engine nodes."
capabilities = ["chat", "streaming", "system-prompt", "stop-sequences", "seed"]
tokenizer = "{FLEET_GGUF}"
options = {{ timeout = 600 }}  # seconds to wait on a read: a request may queue at a busy upstream (default 60)
prices = {{ input_per_million_tokens = 0.02, output_per_million_tokens = 0.04 }}
defaults = {{ temperature = 0.7, top_p = 0.9, top_k = 40, max_tokens = 256, repetition_penalty = 1.1 }}
upstreams = [
    {(",\n    ").join(upstreams)},
]
"""
        )

    def start_web(self, n: int) -> None:
        daphne = str(PYTHON.with_name("daphne"))
        proc = self._spawn(
            f"web-{n}", [daphne, "-b", "127.0.0.1", "-p", str(self.web_ports[n]), "playground.asgi:application"]
        )
        self.web_procs[n] = proc
        wait_http(f"{self.web_base(n)}/health", 120, proc, self.workdir / f"web-{n}.log")

    def stop_web(self, n: int) -> None:
        proc = self.web_procs[n]
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.web_procs[n] = None

    def restart_web(self, n: int) -> None:
        self.stop_web(n)
        self.start_web(n)

    def start_worker(self, n: int) -> None:
        self.worker_procs[n] = self._spawn(f"worker-{n}", [str(PYTHON), "manage.py", "bulk_worker"])

    def kill_worker(self, n: int, sig: int = signal.SIGKILL) -> None:
        proc = self.worker_procs[n]
        if proc is not None and proc.poll() is None:
            proc.send_signal(sig)
            proc.wait(timeout=30)
        self.worker_procs[n] = None

    def _start_nginx(self) -> None:
        run_dir = self.workdir / "nginx"
        run_dir.mkdir(parents=True, exist_ok=True)
        upstreams = "\n".join(f"        server 127.0.0.1:{p} max_fails=0;" for p in self.web_ports)
        config = (REPO / "deploy" / "nginx.conf.template").read_text()
        for key, value in {"run_dir": str(run_dir), "upstreams": upstreams, "listen": f"127.0.0.1:{self.port}"}.items():
            config = config.replace("{{" + key + "}}", value)
        path = run_dir / "nginx.conf"
        path.write_text(config)
        self.nginx = self._spawn("nginx", [nginx_binary(), "-p", str(run_dir), "-c", str(path)])
        wait_http(f"{self.base}/health", 30, self.nginx, run_dir / "nginx-error.log")

    def start(self) -> Topology:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.web_ports = [free_port() for _ in range(self.web)]
        self.web_procs = [None] * self.web
        self.worker_procs = [None] * self.workers
        self.engine_ports = [free_port() for _ in range(self.engines)]
        self.engine_procs = [None] * self.engines
        if self.engines:  # before any manage.py: the web tier's settings name this catalog file
            self.llama_server_port = free_port() if self.llama_server else 0
            self.write_catalog()
        self._fresh_services()
        self.manage("migrate", "--noinput", "-v", "0")
        try:
            if self.engines:
                for n in range(self.engines):
                    self.start_engine(n)
                if self.llama_server:
                    self.start_llama_server()
            for n in range(self.web):
                self.start_web(n)
            for n in range(self.workers):
                self.start_worker(n)
            self._start_nginx()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.nginx is not None and self.nginx.poll() is None:
            self.nginx.terminate()
            self.nginx.wait(timeout=15)
        for n in range(len(self.worker_procs)):
            self.kill_worker(n, signal.SIGTERM)
        for n in range(len(self.web_procs)):
            self.stop_web(n)
        for n in range(len(self.engine_procs)):
            self.stop_engine(n)
        if self.llama_server_proc is not None and self.llama_server_proc.poll() is None:
            self.llama_server_proc.terminate()
            try:
                self.llama_server_proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.llama_server_proc.kill()
                self.llama_server_proc.wait()
        self.llama_server_proc = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--web", type=int, default=2, help="Daphne processes")
    parser.add_argument("--workers", type=int, default=2, help="bulk worker processes")
    parser.add_argument("--port", type=int, default=8080, help="nginx's port on 127.0.0.1")
    parser.add_argument("--database", default="playground_scaleout", help="PostgreSQL database (recreated)")
    parser.add_argument("--redis-db", type=int, default=1, help="Redis database number (flushed)")
    parser.add_argument(
        "--engines", type=int, default=0, help="engine nodes (a fleet: web processes with no local models)"
    )
    parser.add_argument(
        "--no-llama-server", action="store_true", help="with --engines: no llama_cpp.server upstream beside the nodes"
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="playground-topology-"))
    topology = Topology(
        workdir,
        web=args.web,
        workers=args.workers,
        port=args.port,
        database=args.database,
        redis_db=args.redis_db,
        engines=args.engines,
        llama_server=not args.no_llama_server,
    )
    topology.start()
    print(f"serving on {topology.base} (nginx -> {', '.join(map(str, topology.web_ports))}); logs in {workdir}")
    if topology.engines:
        nodes = ", ".join(topology.engine_base(n) for n in range(topology.engines))
        peer = f" and llama_cpp.server on :{topology.llama_server_port}" if topology.llama_server else ""
        print(f"{FLEET_MODEL} served by engine nodes {nodes}{peer} (catalog {topology.catalog_path})")
    database_url = topology.env["PLAYGROUND_DATABASE_URL"]
    print(f"first admin: PLAYGROUND_DATABASE_URL={database_url} {PYTHON} manage.py createsuperuser")
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        topology.stop()


if __name__ == "__main__":
    main()
