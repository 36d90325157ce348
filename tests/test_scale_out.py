"""Scale-out: two nodes (action server + Rasa + gateway each) on one Redis.

Everything a conversation needs between two messages lives in Redis (Rasa's
tracker and lock stores, tickets, rate limits, hand-over state), so any
gateway and any Rasa can take any message. This test starts its own
redis-server on a spare port and two complete nodes:

  node A  started by the `make run` supervisor's builders (scripts/stack.py)
  node B  started by the container entrypoint (deploy/entrypoint.py), with the
          environment docker compose gives it (RASA_URL, ACTION_ENDPOINT_URL,
          RASA_MODEL, an auth token on Rasa's API), checked with the image's
          healthcheck (deploy/healthcheck.py)

Each gateway talks to its own Rasa, each Rasa to its own action server. Ten
users talk at the same time, six turns each, and every turn goes to the other
gateway than the one before, so each conversation hops between the two Rasa
processes on every message. Checked:
  - every reply answers the dialogue state the previous turn (on the other
    node) left: the approval form asks the type on one node and the digit
    answer is understood on the other; the complaint form walks through its
    questions across nodes; the slot set on one node is used on the other;
  - every complaint produced exactly one ticket, with what the user typed;
  - each user message is in Rasa's tracker exactly once, in order, with
    exactly the bot messages the gateway returned for it (nothing lost,
    nothing answered twice), and both Rasa servers return the same tracker.
"""
from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
import redis as redis_sync

from core.keys import Keys
from core.knowledge import knowledge_for
from core.settings import Settings
from deploy import entrypoint
from scripts import model as model_mod
from scripts.redis_server import OwnRedis, free_port
from scripts.stack import ROOT, Service, Stack

pytestmark = pytest.mark.timeout(1500)

USERS_CONSULT = 5
USERS_COMPLAINT = 5
TOKEN = "scale-out-" + uuid.uuid4().hex[:12]
# Turn 3 of a consultation: the digit answers the form's question asked on the other node.
CHOICES = {1: "report_book", 2: "report_form", 3: "registration_form", 4: "acceptance"}
VILLAGES = ["东河村", "西山村", "南岗村", "北塘村", "青石村", "柳林村", "白沙村", "红旗村", "新华村", "桃源村"]


@dataclass
class Node:
    name: str
    gateway_url: str
    rasa_url: str
    rasa_token: str = ""
    services: list[Service] = field(default_factory=list)

    def tracker_url(self, sender: str) -> str:
        url = f"{self.rasa_url}/conversations/{sender}/tracker"
        return url + (f"?token={self.rasa_token}" if self.rasa_token else "")


def _common_env(tmp: Path) -> dict[str, str]:
    return {
        "RASA_TIMEOUT_S": "180",   # the test is about state, not latency (2 shared cores)
        "REPLY_BUDGET_S": "60",
        "WECHAT_TOKEN": "", "WECHAT_APPID": "", "WECHAT_APPSECRET": "", "WECHAT_ENCODING_AES_KEY": "",
        "UPLOAD_DIR": str(tmp / "uploads"),
        "RASA_TELEMETRY_ENABLED": "false",
    }


def _entrypoint_service(role: str, env: dict[str, str], log_dir: Path) -> Service:
    """A process started exactly as the container starts it."""
    env = {**env, "ECOBOT_HEALTH_FILE": str(log_dir / f"health-{role}")}
    health = entrypoint.service(role, env).health_url
    return Service(f"entrypoint {role}", [sys.executable, str(ROOT / "deploy" / "entrypoint.py"), role],
                   health, env, log_dir / f"entrypoint-{role}.log")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    model = model_mod.ensure_model(log=lambda m: None)  # blocks while another training runs
    tmp = tmp_path_factory.mktemp("scale")
    redis = OwnRedis(tmp / "redis").start()
    prefix = f"so{os.getpid()}{uuid.uuid4().hex[:6]}:"
    started: list[Service] = []
    try:
        # Node A: the supervisor's service builders.
        a = Stack(gateway_port=free_port(), rasa_port=free_port(), action_port=free_port(),
                  redis_url=redis.url, key_prefix=prefix, log_dir=tmp / "logs-a", model=model,
                  extra_env={**_common_env(tmp), "SPOOL_DIR": str(tmp / "spool-a")})
        a_services = [a.action_service(), a.rasa_service(), a.gateway_service()]
        # (rasa_service takes RASA_AUTH_TOKEN from this process's environment, as `make run` does)
        node_a = Node("A", a.gateway_url, a.rasa_url, os.environ.get("RASA_AUTH_TOKEN", ""), a_services)

        # Node B: the container entrypoint with a compose-like environment.
        gb, rb, ab = free_port(), free_port(), free_port()
        logs_b = tmp / "logs-b"
        logs_b.mkdir()
        env_b = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("RASA_", "REDIS_", "ACTION_"))},
            **_common_env(tmp),
            "REDIS_URL": redis.url, "REDIS_KEY_PREFIX": prefix,
            "GATEWAY_PORT": str(gb), "RASA_PORT": str(rb), "ACTION_PORT": str(ab),
            "RASA_URL": f"http://127.0.0.1:{rb}", "ACTION_ENDPOINT_URL": f"http://127.0.0.1:{ab}/webhook",
            "RASA_MODEL": str(model), "RASA_HOST": "127.0.0.1", "RASA_AUTH_TOKEN": TOKEN,
            "SPOOL_DIR": str(tmp / "spool-b"), "PYTHONUNBUFFERED": "1",
        }
        b_services = [_entrypoint_service(r, env_b, logs_b) for r in ("actions", "rasa", "gateway")]
        node_b = Node("B", f"http://127.0.0.1:{gb}", f"http://127.0.0.1:{rb}", TOKEN, b_services)

        # Action servers and Rasas first (both Rasas load their model at the same time), gateways last.
        for s in (a_services[0], b_services[0], a_services[1], b_services[1]):
            s.start()
            started.append(s)
        for s in (a_services[0], b_services[0]):
            s.wait_healthy(120)
        for s in (a_services[1], b_services[1]):
            s.wait_healthy(600)
        warm_up(node_a.rasa_url, node_a.rasa_token)
        warm_up(node_b.rasa_url, node_b.rasa_token)
        for s in (a_services[2], b_services[2]):
            s.start()
            started.append(s)
        for s in (a_services[2], b_services[2]):
            s.wait_healthy(60)
        yield {"nodes": [node_a, node_b], "redis_url": redis.url, "prefix": prefix, "env_b": env_b,
               "logs_b": logs_b}
    finally:
        for s in reversed(started):
            s.stop()
        redis.stop()


def warm_up(rasa_url: str, token: str = "") -> None:
    """One parse, so the first conversation turn does not pay jieba's start-up."""
    url = f"{rasa_url}/model/parse" + (f"?token={token}" if token else "")
    req = urllib.request.Request(url, json.dumps({"text": "你好，环评报告表要交什么材料"}).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        assert r.status == 200


# --- the conversations ----------------------------------------------------------

@dataclass
class Turn:
    text: str
    expect: str          # a text the reply must contain (what the state before this turn calls for)
    forbid: str = ""     # a text the reply must not contain


def consult_script(i: int, knowledge) -> list[Turn]:
    digit = 1 + i % 4
    name = knowledge.service(CHOICES[digit]).name
    return [
        Turn("你好", "县生态环境局智能助手"),
        Turn("环评要交啥材料", "请问您要办理哪一项"),
        Turn(str(digit), f"【{name}】所需材料"),
        # The approval type set on the other node answers this one without asking again.
        Turn("审批时限是多少天", f"【{name}】办理时限", forbid="请问您要办理哪一项"),
        Turn("谢谢", "不客气"),
        Turn("再见", "再见"),
    ]


def complaint_script(i: int) -> tuple[list[Turn], dict]:
    place = f"{VILLAGES[i]}{i + 1}组路口的砖厂"
    desc = f"砖厂烟囱一直冒黑烟，第{i + 1}次看到了"
    phone = f"139{i:04d}{5678 + i:04d}"
    turns = [
        Turn("我要举报", "请告诉我具体地点"),
        Turn(place, "什么时候发生"),
        Turn("昨天晚上", "请简单描述一下具体情况"),
        Turn(desc, "请留一个手机号"),
        Turn(phone, "请核对您的举报"),
        Turn("确认", "举报已受理！工单编号：HB"),
    ]
    return turns, {"place": place, "desc": desc, "phone": phone}


@dataclass
class Conversation:
    sender: str
    turns: list[Turn]
    offset: int                      # which gateway takes the first turn
    facts: dict = field(default_factory=dict)
    replies: list[list[str]] = field(default_factory=list)
    gateways: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)


async def talk(session: aiohttp.ClientSession, nodes: list[Node], conv: Conversation) -> None:
    for k, turn in enumerate(conv.turns):
        node = nodes[(conv.offset + k) % 2]  # the other gateway on every turn
        started = time.monotonic()
        async with session.post(f"{node.gateway_url}/api/chat",
                                json={"sender": conv.sender, "text": turn.text}) as r:
            body = await r.json()
        conv.latencies.append(time.monotonic() - started)
        assert r.status == 200, body
        assert not body.get("degraded") and not body.get("rate_limited"), (conv.sender, k, body)
        conv.replies.append([m["text"] for m in body["messages"]])
        conv.gateways.append(node.name)


async def test_conversations_hop_between_two_nodes_and_stay_consistent(cluster):
    nodes = cluster["nodes"]
    knowledge = knowledge_for(Settings())
    run = uuid.uuid4().hex[:6]
    convs: list[Conversation] = []
    for i in range(USERS_CONSULT):
        convs.append(Conversation(f"so-consult-{run}-{i}", consult_script(i, knowledge), offset=i % 2))
    for i in range(USERS_COMPLAINT):
        turns, facts = complaint_script(i)
        convs.append(Conversation(f"so-report-{run}-{i}", turns, offset=i % 2, facts=facts))

    started = time.monotonic()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=240)) as session:
        await asyncio.gather(*(talk(session, nodes, c) for c in convs))
    wall = time.monotonic() - started

    # 1. Every reply fits the state the previous turn left on the other node.
    for c in convs:
        assert c.gateways[0] != c.gateways[1] and len(set(c.gateways)) == 2
        for k, (turn, reply) in enumerate(zip(c.turns, c.replies)):
            text = "\n".join(reply)
            assert turn.expect in text, f"{c.sender} turn {k + 1} ({turn.text!r}, node {c.gateways[k]}): {reply}"
            if turn.forbid:
                assert turn.forbid not in text, f"{c.sender} turn {k + 1}: {reply}"

    # 2. Every complaint produced exactly one ticket, holding what the user typed.
    r = redis_sync.Redis.from_url(cluster["redis_url"], decode_responses=True)
    keys = Keys(cluster["prefix"])
    try:
        complaint_convs = [c for c in convs if c.facts]
        for c in complaint_convs:
            ids = r.zrange(keys.tickets_by_reporter(c.sender), 0, -1)
            assert len(ids) == 1, (c.sender, ids)
            assert ids[0] in c.replies[-1][0]
            raw = r.hgetall(keys.ticket(ids[0]))
            ticket = {k: json.loads(raw[k]) for k in ("location_text", "description", "contact_phone", "reporter")}
            assert ticket["location_text"] == c.facts["place"]
            assert ticket["description"] == c.facts["desc"]
            assert ticket["contact_phone"] == c.facts["phone"]
            assert ticket["reporter"] == c.sender
        assert r.zcard(keys.tickets_by_created()) == len(complaint_convs)
        assert r.xlen(keys.queue_normal()) == len(complaint_convs)
    finally:
        r.close()

    # 3. Each message once in the tracker, answered once, the same on both Rasa servers.
    async with aiohttp.ClientSession() as session:
        for c in convs:
            trackers = []
            for node in nodes:
                async with session.get(node.tracker_url(c.sender)) as resp:
                    assert resp.status == 200, await resp.text()
                    trackers.append(await resp.json())
            events_a, events_b = (
                [(e["event"], e.get("text"), e.get("name")) for e in t["events"]] for t in trackers)
            assert events_a == events_b, c.sender
            user_texts = [e["text"] for e in trackers[0]["events"] if e["event"] == "user"]
            assert user_texts == [t.text for t in c.turns], c.sender
            assert bot_texts_per_turn(trackers[0]["events"]) == c.replies, c.sender

    lat = sorted(x for c in convs for x in c.latencies)
    print(f"\nscale-out: {len(convs)} users x {len(convs[0].turns)} turns over 2 nodes in {wall:.1f} s; "
          f"latency p50 {statistics.median(lat) * 1000:.0f} ms, "
          f"p95 {lat[int(0.95 * (len(lat) - 1))] * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms")


def bot_texts_per_turn(events: list[dict]) -> list[list[str]]:
    """The bot's texts after each user message, in order."""
    turns: list[list[str]] = []
    for e in events:
        if e["event"] == "user":
            turns.append([])
        elif e["event"] == "bot" and turns and e.get("text"):
            turns[-1].append(e["text"])
    return turns


def test_the_container_healthcheck_sees_node_b(cluster):
    """deploy/healthcheck.py, run as the image's HEALTHCHECK runs it, against the
    processes the entrypoint started: by recorded URL and by role."""
    env_b = cluster["env_b"]
    for role in ("actions", "rasa", "gateway"):
        env = {**env_b, "ECOBOT_HEALTH_FILE": str(cluster["logs_b"] / f"health-{role}")}
        for args in ([], [role]):
            res = subprocess.run([sys.executable, "deploy/healthcheck.py", *args], cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=30)
            assert res.returncode == 0, (role, args, res.stdout, res.stderr)
            assert res.stdout.startswith("healthy")
    # A port nothing listens on is unhealthy.
    env = {**env_b, "GATEWAY_PORT": str(free_port())}
    res = subprocess.run([sys.executable, "deploy/healthcheck.py", "gateway"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 1
