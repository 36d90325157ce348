"""Start the whole system: Redis, the action server, Rasa and the gateway.

`make run` calls `python -m scripts.stack`; the test suite uses `Stack` with
spare ports and its own key prefix. Each service is started, then waited for
on its health check; Ctrl-C (SIGINT) or SIGTERM stops all of them.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from scripts import model as model_mod
from scripts import redis_server
from scripts.procs import own_group_dying_with_parent

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
LOGGING_CONFIG = "deploy/rasa-logging.yml"  # relative to ROOT, the services' working directory


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return 200 <= r.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def rasa_env(redis_url: str, key_prefix: str, action_url: str) -> dict[str, str]:
    """Environment variables that endpoints.yml reads, derived from REDIS_URL."""
    u = urlparse(redis_url)
    base_db = int((u.path or "/0").strip("/") or 0)
    rasa_prefix = "".join(ch for ch in key_prefix if ch.isalnum()) or "ecobot"
    return {
        "ACTION_ENDPOINT_URL": action_url,
        "RASA_REDIS_HOST": u.hostname or "127.0.0.1",
        "RASA_REDIS_PORT": str(u.port or 6379),
        "RASA_REDIS_PASSWORD": u.password or "",
        # Rasa asks for separate databases for the tracker and the lock store.
        "RASA_TRACKER_DB": os.environ.get("RASA_TRACKER_DB", str(base_db + 1)),
        "RASA_LOCK_DB": os.environ.get("RASA_LOCK_DB", str(base_db + 2)),
        "RASA_KEY_PREFIX": rasa_prefix + "tracker",
    }


@dataclass
class Service:
    name: str
    cmd: list[str]
    health_url: str
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.cmd, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=own_group_dying_with_parent,
        )
        log.close()

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; log: {self.log_path}\n{self.tail()}")
            if http_ok(self.health_url, 1.0):
                return
            time.sleep(0.3)
        raise RuntimeError(f"{self.name} not healthy after {timeout:.0f} s; log: {self.log_path}\n{self.tail()}")

    def tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        p = self.proc
        if p is None or p.poll() is not None:
            return
        try:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        except ProcessLookupError:
            pass


@dataclass
class Stack:
    gateway_port: int = 8080
    rasa_port: int = 5005
    action_port: int = 5055
    redis_url: str = ""
    key_prefix: str = "ecobot:"
    log_dir: Path = ROOT / "var" / "log"
    extra_env: dict[str, str] = field(default_factory=dict)
    services: list[Service] = field(default_factory=list)
    model: Path | None = None

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def rasa_url(self) -> str:
        return f"http://127.0.0.1:{self.rasa_port}"

    @property
    def action_url(self) -> str:
        return f"http://127.0.0.1:{self.action_port}/webhook"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(rasa_env(self.redis_url, self.key_prefix, self.action_url))
        env.update({
            "REDIS_URL": self.redis_url,
            "REDIS_KEY_PREFIX": self.key_prefix,
            "RASA_URL": self.rasa_url,
            "GATEWAY_PORT": str(self.gateway_port),
            "PYTHONUNBUFFERED": "1",
            # deploy/rasa-logging.yml names core.jsonlog, read before Rasa puts the cwd on sys.path.
            "PYTHONPATH": os.pathsep.join([str(ROOT)] + [
                p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(ROOT)]),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            # Rasa's SQLAlchemy notice is printed at import, before logging is set up (not JSON).
            "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
        })
        env.update(self.extra_env)
        return env

    def action_service(self, port: int | None = None) -> Service:
        port = port or self.action_port
        return Service(
            f"action server :{port}",
            [str(BIN / "rasa"), "run", "actions", "--actions", "actions", "--port", str(port),
             "--logging-config-file", LOGGING_CONFIG],  # JSON lines (deploy/rasa-logging.yml)
            f"http://127.0.0.1:{port}/health", self.env(), self.log_dir / f"actions-{port}.log",
        )

    def rasa_service(self, port: int | None = None) -> Service:
        port = port or self.rasa_port
        host = os.environ.get("RASA_HOST", "127.0.0.1")
        cmd = [
            str(BIN / "rasa"), "run", "--model", str(self.model), "--endpoints", "endpoints.yml",
            "--credentials", "credentials.yml", "--port", str(port), "--interface", host,
            "--enable-api", "--logging-config-file", LOGGING_CONFIG,  # JSON lines (deploy/rasa-logging.yml)
        ]
        token = os.environ.get("RASA_AUTH_TOKEN", "")
        if token:
            cmd += ["--auth-token", token]
        elif host not in ("127.0.0.1", "localhost", "::1"):
            raise RuntimeError("RASA_HOST is not loopback: set RASA_AUTH_TOKEN to protect Rasa's HTTP API")
        return Service(f"rasa :{port}", cmd, f"http://127.0.0.1:{port}/", self.env(), self.log_dir / f"rasa-{port}.log")

    def gateway_service(self, port: int | None = None) -> Service:
        port = port or self.gateway_port
        env = self.env()
        env["GATEWAY_PORT"] = str(port)
        return Service(
            f"gateway :{port}", [str(BIN / "python"), "-m", "bot"],
            f"http://127.0.0.1:{port}/healthz", env, self.log_dir / f"gateway-{port}.log",
        )

    def start(self, log=print) -> "Stack":
        self.model = self.model or model_mod.ensure_model(log)
        actions, rasa, gateway = self.action_service(), self.rasa_service(), self.gateway_service()
        self.services = [actions, rasa, gateway]
        try:
            actions.start()
            rasa.start()  # loads TensorFlow while the action server comes up
            actions.wait_healthy(60)
            # Loading TensorFlow and the model takes 30-60 s on a quiet 2-core machine.
            rasa.wait_healthy(float(os.environ.get("RASA_START_TIMEOUT_S", 420)))
            self.warm_up(self.rasa_port)
            gateway.start()
            gateway.wait_healthy(30)
        except BaseException:
            self.stop()
            raise
        return self

    def warm_up(self, rasa_port: int) -> None:
        """One parse, so the first real user does not pay jieba's start-up."""
        body = json.dumps({"text": "你好，环评报告表要交什么材料"}).encode()
        url = f"http://127.0.0.1:{rasa_port}/model/parse"
        token = os.environ.get("RASA_AUTH_TOKEN", "")
        if token:
            url += f"?token={token}"
        req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            r.read()
        # And one whole turn through the REST channel: the dialogue policies' first
        # prediction and the first custom action call otherwise cost the first user
        # ~0.45 s more (bench/, docs/bench.md). It is the conversation "ecobot-warmup"
        # in the tracker store (a consultation question: nothing else is written).
        body = json.dumps({"sender": "ecobot-warmup", "message": "环评报告表要交什么材料"}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{rasa_port}/webhooks/rest/webhook", body,
                                     {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            r.read()

    def stop(self) -> None:
        for s in reversed(self.services):
            s.stop()


def main() -> int:
    redis_url, own = redis_server.resolve(ROOT / "var" / "redis")
    stack = Stack(
        gateway_port=int(os.environ.get("GATEWAY_PORT", 8080)),
        rasa_port=int(os.environ.get("RASA_PORT", 5005)),
        action_port=int(os.environ.get("ACTION_PORT", 5055)),
        redis_url=redis_url,
        key_prefix=os.environ.get("REDIS_KEY_PREFIX", "ecobot:"),
    )
    stopping = False

    def on_signal(signum, frame):
        nonlocal stopping
        if not stopping:
            stopping = True
            raise KeyboardInterrupt

    # Explicitly, also for SIGINT: a shell's background job inherits SIGINT ignored.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        stack.start()
        print(
            "\nAll services are up:\n"
            f"  Redis          {redis_url}{'  (started here, data in var/redis)' if own else ''}\n"
            f"  action server  http://127.0.0.1:{stack.action_port}/health\n"
            f"  Rasa           {stack.rasa_url}  (HTTP API on {os.environ.get('RASA_HOST', '127.0.0.1')})\n"
            f"  gateway        {stack.gateway_url}   /healthz  /chat  /staff  /wechat\n"
            f"  logs           {stack.log_dir}\n"
            "Talk to the bot from another terminal: make chat    Stop: Ctrl-C\n",
            flush=True,
        )
        while True:
            for s in stack.services:
                if s.proc and s.proc.poll() is not None:
                    print(f"{s.name} exited ({s.proc.returncode}); stopping. Log: {s.log_path}", file=sys.stderr)
                    return 1
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
        return 0
    finally:
        stack.stop()
        if own:
            own.stop()
        print("stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
