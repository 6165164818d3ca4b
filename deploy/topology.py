"""The scale-out topology on one machine's loopback: nginx in front of several Daphne processes, several
bulk workers, PostgreSQL as the database and Redis as channel layer, cache and task queue.

    .venv/bin/python deploy/topology.py [--web 2] [--workers 2] [--port 8080]

starts everything (a fresh PostgreSQL database, migrated; a flushed Redis database number), prints the
URL and the log directory, and runs until Ctrl+C. Every process has its own in-process engines. The
test suite uses the `Topology` class (tests/scaleout/). Each process reads only environment variables:
the same settings run the processes on several machines (docs/deploy.md).
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float, proc: subprocess.Popen[bytes] | None = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-3000:] if log and log.exists() else ""
            raise RuntimeError(f"process for {url} exited with {proc.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
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
    web_ports: list[int] = field(default_factory=list)
    web_procs: list[subprocess.Popen[bytes] | None] = field(default_factory=list)
    worker_procs: list[subprocess.Popen[bytes] | None] = field(default_factory=list)
    nginx: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def web_base(self, n: int) -> str:
        return f"http://127.0.0.1:{self.web_ports[n]}"

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
            **self.extra_env,
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

    def _spawn(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115  (the child keeps it)
        return subprocess.Popen(command, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)

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
        self._fresh_services()
        self.manage("migrate", "--noinput", "-v", "0")
        try:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--web", type=int, default=2, help="Daphne processes")
    parser.add_argument("--workers", type=int, default=2, help="bulk worker processes")
    parser.add_argument("--port", type=int, default=8080, help="nginx's port on 127.0.0.1")
    parser.add_argument("--database", default="playground_scaleout", help="PostgreSQL database (recreated)")
    parser.add_argument("--redis-db", type=int, default=1, help="Redis database number (flushed)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="playground-topology-"))
    topology = Topology(
        workdir, web=args.web, workers=args.workers, port=args.port, database=args.database, redis_db=args.redis_db
    )
    topology.start()
    print(f"serving on {topology.base} (nginx -> {', '.join(map(str, topology.web_ports))}); logs in {workdir}")
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
