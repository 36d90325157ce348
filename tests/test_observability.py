"""Operations: JSON logs with a request id that follows a message through the
gateway, Rasa and the action server; Prometheus metrics on the gateway.

Against the real stack (tests/conftest.py `stack`): the processes' own log
files and GET /metrics. Two extra gateway processes of the same stack show
what only a failure shows: one whose Rasa answers late (missed 5-second
windows), one whose Rasa is down.
"""
from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from actions.request_log import call_context
from bot.wechat import make_signature
from core.jsonlog import (
    JsonFormatter,
    JsonLinesHandler,
    clean_request_id,
    current_request_id,
    mask_sender,
    request_context,
)
from scripts import redis_server
from tests import fake_wechat as fw
from tests.test_wechat_gateway import new_openid, text_xml

LOG_WAIT_S = 10.0


# -- helpers -------------------------------------------------------------------------

def new_sender() -> str:
    return f"web-obs{uuid.uuid4().hex[:10]}"


def new_rid() -> str:
    return f"test-{uuid.uuid4().hex}"


async def chat(base: str, sender: str, text: str, request_id: str | None = None) -> tuple[str, str, dict]:
    """(reply text, X-Request-Id answered, body) of one web chat message."""
    headers = {"X-Request-Id": request_id} if request_id else {}
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{base}/api/chat", json={"sender": sender, "text": text}, headers=headers) as r:
            assert r.status == 200, await r.text()
            body = await r.json()
            rid = r.headers.get("X-Request-Id", "")
    return "\n".join(m["text"] for m in body["messages"]), rid, body


async def scrape(base: str) -> dict[tuple[str, frozenset], float]:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{base}/metrics") as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/plain")
            text = await r.text()
    out: dict[tuple[str, frozenset], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(metrics: dict, name: str, **labels) -> float:
    return metrics.get((name, frozenset(labels.items())), 0.0)


def json_lines(path: Path) -> list[dict]:
    """Every line of `path` that is a JSON object (others are skipped here)."""
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            out.append(obj)
    return out


async def wait_for_lines(path: Path, pred, timeout: float = LOG_WAIT_S) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        found = [o for o in json_lines(path) if pred(o)]
        if found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.2)


def assert_every_line_is_json(path: Path) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines, f"{path} is empty"
    for i, line in enumerate(lines, 1):
        try:
            obj = json.loads(line)
        except ValueError:
            pytest.fail(f"{path.name} line {i} is not JSON: {line[:200]!r}")
        assert isinstance(obj, dict), f"{path.name} line {i}: {line[:200]!r}"
        assert {"ts", "level", "logger", "msg"} <= obj.keys(), f"{path.name} line {i}: {obj}"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", obj["ts"]), obj["ts"]
    return len(lines)


@pytest.fixture(scope="module")
def extra_gateway(stack, tmp_path_factory):
    """Start more gateway processes of the test stack with other settings."""
    started = []

    def start(**env: str):
        port = redis_server.free_port()
        svc = stack.gateway_service(port)
        svc.env.update(env)
        svc.log_path = tmp_path_factory.mktemp("gw") / f"gateway-{port}.log"
        svc.start()
        started.append(svc)
        svc.wait_healthy(30)
        return f"http://127.0.0.1:{port}", svc.log_path

    yield start
    for svc in started:
        svc.stop()


@pytest.fixture(scope="module")
def slow_gateway(stack, extra_gateway):
    """Rasa answers 2 s late (through a delaying proxy); the reply budget is 0.5 s."""
    proxy = fw.DelayProxy(stack.rasa_url, delay_s=2.0).start()
    try:
        yield extra_gateway(RASA_URL=proxy.url, REPLY_BUDGET_S="0.5")
    finally:
        proxy.stop()


@pytest.fixture(scope="module")
def rasa_down_gateway(extra_gateway):
    """Rasa's address answers nothing (a free port)."""
    return extra_gateway(RASA_URL=f"http://127.0.0.1:{redis_server.free_port()}", RASA_TIMEOUT_S="2")


# -- pure parts ----------------------------------------------------------------------

def _record(msg="hello %s", args=("world",), **extra) -> logging.LogRecord:
    rec = logging.LogRecord("bot.test", logging.WARNING, __file__, 1, msg, args, None)
    for k, v in extra.items():
        setattr(rec, k, v)
    return rec


def test_json_line_fields_request_context_and_masking():
    fmt = JsonFormatter()
    openid = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"
    with request_context("rid-1", openid):
        assert current_request_id() == "rid-1"
        line = fmt.format(_record(channel="wechat", n=3))
    assert current_request_id() is None
    obj = json.loads(line)
    assert obj["level"] == "WARNING" and obj["logger"] == "bot.test" and obj["msg"] == "hello world"
    assert obj["request_id"] == "rid-1" and obj["channel"] == "wechat" and obj["n"] == 3
    assert obj["sender"].startswith("o6_bmj***") and openid not in line
    # Two users of one Official Account share the prefix but not the masked value.
    assert mask_sender(openid) != mask_sender(openid[:-1] + "X")
    assert "request_id" not in json.loads(fmt.format(_record()))


def test_json_line_keeps_tracebacks_and_chinese():
    try:
        raise ValueError("坏了")
    except ValueError:
        rec = logging.LogRecord("x", logging.ERROR, __file__, 1, "失败：%s", ("工单",), sys.exc_info())
    line = JsonFormatter().format(rec)
    assert "\n" not in line
    obj = json.loads(line)
    assert obj["msg"] == "失败：工单" and "ValueError: 坏了" in obj["exc"]


def test_rasa_structlog_json_is_merged_not_quoted():
    event = json.dumps({"event": "rest.message.received.failure", "level": "error", "text": "你好",
                        "sender_id": "web-abcdefghij"})
    obj = json.loads(JsonFormatter().format(_record(msg=event, args=())))
    assert obj["msg"] == "rest.message.received.failure" and obj["text"] == "你好"
    assert obj["sender_id"] != "web-abcdefghij" and obj["sender_id"].startswith("web-ab***")
    assert obj["level"] == "WARNING"  # the record's level, not structlog's text


def test_handler_writes_one_line_per_record(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    handler = JsonLinesHandler()
    handler.handle(_record())
    handler.handle(_record(msg="第二行\n含换行", args=()))
    lines = out.getvalue().splitlines()
    assert [json.loads(x)["msg"] for x in lines] == ["hello world", "第二行\n含换行"]


@pytest.mark.parametrize("raw, ok", [("5f0c1e", True), ("nginx-3a9b:1", True), ("", False), ("a b", False),
                                     ("x" * 129, False), ("id\nforged", False), ("id\n", False),
                                     (None, False), (12, False)])
def test_only_plain_request_ids_are_taken(raw, ok):
    assert clean_request_id(raw) == (raw if ok else None)


def test_action_call_context_reads_the_tracker_metadata():
    call = {"next_action": "action_check_status", "sender_id": "web-x",
            "tracker": {"sender_id": "web-x", "latest_message": {"metadata": {"request_id": "r-9"}}}}
    assert call_context(call) == ("r-9", "web-x", "action_check_status")
    assert call_context({"tracker": {"latest_message": {"metadata": None}}}) == (None, None, "")
    assert call_context(None) == (None, None, "")


# -- the request id through the three processes ---------------------------------------

async def test_request_id_follows_a_message_through_gateway_rasa_and_actions(stack):
    sender, rid = new_sender(), new_rid()
    # One message before it, so that its lines follow lines of the same kind
    # (Rasa drops a line equal to the one before it).
    first_rid = new_rid()
    await chat(stack.gateway_url, sender, "你好", request_id=first_rid)
    reply, answered_rid, _ = await chat(stack.gateway_url, sender, "我的举报进度", request_id=rid)
    assert answered_rid == rid and reply

    gw = stack.log_dir / f"gateway-{stack.gateway_port}.log"
    mine = await wait_for_lines(gw, lambda o: o.get("request_id") == rid)
    by_logger = {o["logger"]: o for o in mine}
    assert {"bot.access", "bot.pipeline"} <= by_logger.keys(), mine
    assert by_logger["bot.access"]["path"] == "/api/chat" and by_logger["bot.access"]["status"] == 200
    reply_line = by_logger["bot.pipeline"]
    assert reply_line["msg"] == "reply" and reply_line["channel"] == "web" and reply_line["latency_ms"] > 0
    assert reply_line["sender"] == mask_sender(sender)
    assert not any(sender in json.dumps(o, ensure_ascii=False) for o in mine), "the sender is masked"

    rasa_log = stack.log_dir / f"rasa-{stack.rasa_port}.log"
    for r in (first_rid, rid):
        rasa = await wait_for_lines(rasa_log, lambda o: o.get("request_id") == r)
        handled = [o for o in rasa if o["logger"] == "nlu_ext.rest_channel"]
        assert handled and handled[0]["sender"] == mask_sender(sender) and handled[0]["duration_ms"] > 0, rasa
        assert handled[0]["msg"].startswith(f"message {r} handled in ")

    actions = await wait_for_lines(stack.log_dir / f"actions-{stack.action_port}.log",
                                   lambda o: o.get("request_id") == rid)
    ran = [o for o in actions if o.get("action") == "action_check_status"]
    assert ran and ran[0]["status"] == 200 and ran[0]["sender"] == mask_sender(sender), actions


async def test_a_new_request_id_replaces_a_missing_or_unusable_one(stack):
    _, rid, _ = await chat(stack.gateway_url, new_sender(), "你好")
    assert re.fullmatch(r"[0-9a-f]{32}", rid)
    _, rid2, _ = await chat(stack.gateway_url, new_sender(), "你好", request_id="two words")
    assert re.fullmatch(r"[0-9a-f]{32}", rid2) and rid2 != rid


async def test_every_line_of_the_gateway_log_is_json(stack):
    await chat(stack.gateway_url, new_sender(), "你好")
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{stack.gateway_url}/no-such-page") as r:
            assert r.status == 404 and r.headers.get("X-Request-Id")
    await asyncio.sleep(0.3)
    n = assert_every_line_is_json(stack.log_dir / f"gateway-{stack.gateway_port}.log")
    assert n >= 3


async def test_rasa_and_action_server_log_json_lines(stack):
    """Once their logging is set up (deploy/rasa-logging.yml), every line of
    Rasa and the action server is JSON: no coloredlogs copy, no Sanic or jieba
    console line. Only what Python prints while importing, before that, can be
    text."""
    for path in (stack.log_dir / f"rasa-{stack.rasa_port}.log", stack.log_dir / f"actions-{stack.action_port}.log"):
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        first = next(i for i, x in enumerate(lines) if x.startswith("{"))
        text = [x for x in lines[first:] if not x.startswith("{")]
        assert not text, f"{path.name}: text lines after logging was set up: {text[:5]}"
        objs = json_lines(path)
        assert len(objs) == len(lines) - first and len(objs) >= 5
    rasa_objs = json_lines(stack.log_dir / f"rasa-{stack.rasa_port}.log")
    assert any(o["logger"].startswith("rasa.") for o in rasa_objs), "Rasa's own lines are JSON"
    assert any(o["logger"] == "jieba" for o in rasa_objs)
    action_objs = json_lines(stack.log_dir / f"actions-{stack.action_port}.log")
    assert any(o["logger"] == "rasa_sdk.executor" for o in action_objs)


# -- metrics -------------------------------------------------------------------------

async def test_metrics_count_messages_and_latency(stack):
    before = await scrape(stack.gateway_url)
    await chat(stack.gateway_url, new_sender(), "你好")
    await chat(stack.gateway_url, new_sender(), "环评报告书需要准备什么材料")
    after = await scrape(stack.gateway_url)
    name = "ecobot_messages_received_total"
    assert value(after, name, channel="web", kind="text") - value(before, name, channel="web", kind="text") == 2
    count = "ecobot_reply_latency_seconds_count"
    assert value(after, count, channel="web") - value(before, count, channel="web") == 2
    slowest = "ecobot_reply_latency_seconds_bucket"
    assert value(after, slowest, channel="web", le="+Inf") == value(after, count, channel="web")
    assert value(after, "ecobot_redis_up") == 1
    assert value(after, "process_resident_memory_bytes") > 0  # the standard process metrics come along


async def test_tickets_by_category_and_escalations_by_reason(stack):
    before = await scrape(stack.gateway_url)
    u = new_sender()
    await chat(stack.gateway_url, u, "我们村边上的化工厂天天晚上冒黑烟")
    # A place no other test uses: the same place within 72 h is merged into the open ticket.
    await chat(stack.gateway_url, u, f"城关镇东方村{uuid.uuid4().int % 9000 + 1000}号化工厂")
    await chat(stack.gateway_url, u, "每天晚上十点以后")
    await chat(stack.gateway_url, u, "13912345678")
    done, _, _ = await chat(stack.gateway_url, u, "确认")
    assert re.search(r"HB\d{12}", done), done
    await chat(stack.gateway_url, new_sender(), "转人工")
    after = await scrape(stack.gateway_url)
    tickets = "ecobot_tickets_total"
    assert value(after, tickets, pollution_type="air") - value(before, tickets, pollution_type="air") == 1
    for other in ("water", "noise", "solid_waste", "livestock", "other"):
        assert (other, value(after, tickets, pollution_type=other)) == (other, value(before, tickets,
                                                                                   pollution_type=other))
    opened = "ecobot_escalations_opened_total"
    assert value(after, opened, reason="request_human") - value(before, opened, reason="request_human") == 1
    assert value(after, "ecobot_escalations_open") >= 1


async def test_missed_wechat_window_is_counted_and_logged_with_its_request_id(slow_gateway, fake_wechat):
    base, log_path = slow_gateway
    before = await scrape(base)
    openid = new_openid()
    ts, nonce = str(int(time.time())), str(uuid.uuid4().int % 10**9)
    query = {"signature": make_signature(fw.TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce, "openid": openid}
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{base}/wechat", params=query, data=text_xml(openid, "你好").encode()) as r:
            assert r.status == 200 and await r.text() == "success"
            rid = r.headers["X-Request-Id"]
    assert await asyncio.to_thread(fake_wechat.wait_sent, openid, 1, 30)  # the answer came later
    after = await scrape(base)
    assert value(after, "ecobot_wechat_missed_windows_total") - value(before, "ecobot_wechat_missed_windows_total") == 1
    assert value(after, "ecobot_reply_latency_seconds_count", channel="wechat") - \
        value(before, "ecobot_reply_latency_seconds_count", channel="wechat") == 1
    # The late answer's line, logged after the HTTP request ended, still has its id.
    late = await wait_for_lines(log_path, lambda o: o.get("request_id") == rid and o.get("msg") == "reply")
    assert late and late[0]["channel"] == "wechat" and late[0]["latency_ms"] >= 1500
    assert late[0]["sender"] == mask_sender(openid) and openid not in log_path.read_text()
    assert_every_line_is_json(log_path)


async def test_rasa_down_is_counted_and_escalated(rasa_down_gateway):
    base, log_path = rasa_down_gateway
    before = await scrape(base)
    reply, rid, body = await chat(base, new_sender(), "你好", request_id=new_rid())
    assert body.get("degraded") is True and "12369" in reply
    after = await scrape(base)
    assert value(after, "ecobot_rasa_unavailable_total", reason="unreachable") - \
        value(before, "ecobot_rasa_unavailable_total", reason="unreachable") == 1
    opened = "ecobot_escalations_opened_total"
    assert value(after, opened, reason="bot_unavailable") - value(before, opened, reason="bot_unavailable") == 1
    warned = await wait_for_lines(log_path, lambda o: o.get("request_id") == rid and o["level"] == "WARNING")
    assert any(o["msg"].startswith("rasa unavailable") for o in warned), warned
    assert_every_line_is_json(log_path)
