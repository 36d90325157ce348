"""The container's entrypoint: one image, the process chosen by the command.

    python deploy/entrypoint.py gateway|rasa|actions [--dry-run]
    python deploy/entrypoint.py backup dump FILE | restore FILE
    python deploy/entrypoint.py <any other command ...>   (run as given)

The three processes are built by the same code as `make run`
(scripts/stack.py: `Stack.gateway_service`, `rasa_service`, `action_service`),
so the container runs exactly the commands the scale-out test runs. The
environment is the container's (docker compose passes the env file), and Rasa's
store settings (RASA_REDIS_HOST, ...) are derived from REDIS_URL as under
`make run`. Addresses of the other processes come from the environment:
RASA_URL (gateway -> Rasa) and ACTION_ENDPOINT_URL (Rasa -> action server).

`--dry-run` prints the command and the derived variables (JSON) instead of
running it. The health URL of the started process is written to
$ECOBOT_HEALTH_FILE (default $TMPDIR/ecobot-health-url) for
deploy/healthcheck.py.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the project importable
    sys.path.insert(0, str(ROOT))

from scripts.stack import Service, Stack  # noqa: E402

ROLES = ("gateway", "rasa", "actions")
# Set by the operator, never replaced by the supervisor's local defaults.
PASS_THROUGH = ("RASA_URL", "ACTION_ENDPOINT_URL")


def stack_from_env(env: dict[str, str] | None = None) -> Stack:
    env = dict(os.environ if env is None else env)
    redis_url = env.get("REDIS_URL", "").strip()
    if not redis_url:
        raise SystemExit("REDIS_URL is not set: the container needs a Redis server (see deploy/env.example)")
    return Stack(
        gateway_port=int(env.get("GATEWAY_PORT") or 8080),
        rasa_port=int(env.get("RASA_PORT") or 5005),
        action_port=int(env.get("ACTION_PORT") or 5055),
        redis_url=redis_url,
        key_prefix=env.get("REDIS_KEY_PREFIX") or "ecobot:",
        # A directory: Rasa loads the newest model in it. Or one model file.
        model=Path(env.get("RASA_MODEL") or ROOT / "models"),
        extra_env={k: env[k] for k in PASS_THROUGH if env.get(k)},
    )


def service(role: str, env: dict[str, str] | None = None) -> Service:
    stack = stack_from_env(env)
    if role == "gateway":
        return stack.gateway_service()
    if role == "rasa":
        return stack.rasa_service()
    if role == "actions":
        return stack.action_service()
    raise ValueError(role)


def masked(name: str, value: str) -> str:
    secret = any(w in name for w in ("PASSWORD", "SECRET", "TOKEN", "AES_KEY"))
    return "***" if secret and value else value


def health_file() -> Path:
    return Path(os.environ.get("ECOBOT_HEALTH_FILE") or Path(tempfile.gettempdir()) / "ecobot-health-url")


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    role, rest = argv[0], argv[1:]
    if role == "backup":
        cmd = [sys.executable, "-m", "scripts.backup", *rest]
        os.chdir(ROOT)
        os.execv(cmd[0], cmd)
    if role not in ROLES:
        os.execvp(role, argv)  # e.g. "bash", "rasa shell", "python -m scripts.model path"
    svc = service(role)
    if "--dry-run" in rest:
        derived = {k: masked(k, v) for k, v in svc.env.items() if os.environ.get(k) != v}
        cmd = ["***" if i and svc.cmd[i - 1] == "--auth-token" else a for i, a in enumerate(svc.cmd)]
        print(json.dumps({"role": role, "cmd": cmd, "health_url": svc.health_url, "env": derived},
                         ensure_ascii=False, indent=2))
        return 0
    try:
        health_file().write_text(svc.health_url)
    except OSError as e:  # a read-only temp dir: the healthcheck then needs the role argument
        print(f"entrypoint: cannot write {health_file()}: {e}", file=sys.stderr)
    os.chdir(ROOT)
    os.execve(svc.cmd[0], svc.cmd, svc.env)  # the process replaces us: signals reach it directly
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
