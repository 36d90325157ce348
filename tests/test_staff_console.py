"""The staff console (/staff) against a real Redis, in a real gateway
application served on a local port (no Rasa needed: pages fall back to the
transcript stored with the escalation), and the local fake of the WeChat API.

Covers: accounts made by the command, login, cookie flags, lockout, CSRF
refusal, roles, phone masking and the logged full view, ticket filters,
deadlines, status changes the citizen is told of, duplicates and transfers,
claim/reply/resolve/hand back, the staff reply reaching the fake WeChat API,
the audit log, the dashboard chart and the alerts every console polls.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from bot.app import create_app
from bot.staff.accounts import AccountStore
from core.escalations import CLAIMED, HANDED_BACK, RESOLVED, WAITING, EscalationStore
from core.handoff_rules import HANDED_BACK_TEXT, RESOLVED_TEXT
from core.keys import Keys
from core.settings import Settings
from core.ticket_model import SHANGHAI, ComplaintReport, Status
from core.tickets import TicketStore
from tests import fake_wechat as fw

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-42"


# -- fixtures ----------------------------------------------------------------------------

@pytest.fixture
def prefix(key_prefix):
    """A prefix of its own for each test (under the session's, which conftest deletes)."""
    return f"{key_prefix}c{uuid.uuid4().hex[:8]}:"


@pytest.fixture
async def redis(redis_url):
    r = Redis.from_url(redis_url, decode_responses=True)
    yield r
    await r.close()


@pytest.fixture
async def gateway(redis_url, prefix, fake_wechat, tmp_path):
    """The gateway application (console included) on a spare port."""
    settings = Settings.from_env({
        "REDIS_URL": redis_url, "REDIS_KEY_PREFIX": prefix, "RASA_URL": "http://127.0.0.1:9",
        "WECHAT_API_BASE": fake_wechat.url, "WECHAT_APPID": fw.APPID, "WECHAT_APPSECRET": fw.SECRET,
        "UPLOAD_DIR": str(tmp_path), "RASA_TIMEOUT_S": "2",
    })
    server = TestServer(create_app(settings))
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


@pytest.fixture
async def accounts(redis, prefix):
    store = AccountStore(redis, Keys(prefix))
    await store.add_user("alice", "agent", PASSWORD)
    await store.add_user("bob", "agent", PASSWORD)
    await store.add_user("sara", "supervisor", PASSWORD)
    return store


@pytest.fixture
def escalations(redis, prefix):
    return EscalationStore(redis, Keys(prefix))


@pytest.fixture
def tickets(redis, prefix):
    return TicketStore(redis, Keys(prefix))


def new_session() -> aiohttp.ClientSession:
    # unsafe=True: keep cookies set by an IP-address host (127.0.0.1).
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    m = CSRF_RE.search(html)
    assert m, "no CSRF field in the page"
    return m.group(1)


async def login(http: aiohttp.ClientSession, base: str, name: str, password: str = PASSWORD,
                next_url: str = "/staff/queue") -> aiohttp.ClientResponse:
    async with http.get(f"{base}/staff/login") as r:
        token = csrf_of(await r.text())
    r = await http.post(f"{base}/staff/login", data={"name": name, "password": password, "csrf": token,
                                                     "next": next_url}, allow_redirects=False)
    await r.read()
    return r


async def logged_in(base: str, name: str) -> tuple[aiohttp.ClientSession, str]:
    """A session logged in as `name`, and the CSRF token of its forms."""
    http = new_session()
    r = await login(http, base, name)
    assert r.status == 303, r.status
    async with http.get(f"{base}/staff/queue") as page:
        assert page.status == 200
        return http, csrf_of(await page.text())


async def post(http, url: str, data: dict) -> tuple[int, str, str]:
    """POST a console form; (status of the first answer, final page text, final URL)."""
    async with http.post(url, data=data, allow_redirects=False) as r:
        first = r.status
        body = await r.text()
        location = r.headers.get("Location", "")
    if first in (302, 303) and location:
        async with http.get(url.split("/staff")[0] + location) as r2:
            return first, await r2.text(), str(r2.url)
    return first, body, url


async def audit_entries(redis, prefix: str) -> list[dict]:
    return [f for _id, f in await redis.xrange(Keys(prefix).staff_audit())]


async def make_ticket(tickets: TicketStore, *, reporter: str = "web-citizen1", channel: str = "web",
                      ptype: str = "air", phone: str | None = "13812345678", description: str = "工厂冒黑烟",
                      place: str | None = None, urgent: bool | None = None):
    report = ComplaintReport(reporter=reporter, channel=channel, pollution_type=ptype, description=description,
                             location_text=place or f"幸福路{uuid.uuid4().hex[:6]}号", occurred="每天晚上",
                             contact_phone=phone, urgent=urgent)
    return (await tickets.create(report, idem_key=uuid.uuid4().hex)).ticket


# -- accounts and login --------------------------------------------------------------------

async def test_add_user_command_creates_a_working_account(gateway, redis_url, prefix):
    env = dict(os.environ, REDIS_URL=redis_url, REDIS_KEY_PREFIX=prefix)
    cmd = [sys.executable, "-m", "bot.staff", "add-user", "zhang.wei", "--role", "supervisor", "--password-stdin"]
    r = subprocess.run(cmd, input=PASSWORD + "\n", env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "created zhang.wei (supervisor)" in r.stdout
    bad = subprocess.run(cmd[:4] + ["x", "--role", "boss", "--password-stdin"], input="whatever1\n", env=env,
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0
    short = subprocess.run(cmd[:4] + ["li.na", "--role", "agent", "--password-stdin"], input="short\n", env=env,
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert short.returncode == 2 and "至少" in short.stderr
    async with new_session() as http:
        r = await login(http, gateway, "zhang.wei")
        assert r.status == 303 and r.headers["Location"] == "/staff/queue"
    raw = Redis.from_url(redis_url, decode_responses=True)
    try:
        stored = await raw.hget(Keys(prefix).staff_user("zhang.wei"), "pwhash")
    finally:
        await raw.close()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


async def test_login_cookie_is_httponly_and_samesite_strict(gateway, accounts):
    async with new_session() as http:
        r = await login(http, gateway, "alice")
        assert r.status == 303
        cookie = next(v for v in r.headers.getall("Set-Cookie") if v.startswith("staff_session="))
        attrs = {a.strip().split("=")[0].lower(): a.strip() for a in cookie.split(";")}
        assert "httponly" in attrs
        assert attrs["samesite"].lower() == "samesite=strict"
        assert attrs["path"].lower() == "path=/staff"
        async with http.get(f"{gateway}/staff/queue") as page:
            assert page.status == 200 and "alice（坐席）" in await page.text()


async def test_pages_need_a_login(gateway, accounts):
    async with new_session() as http:
        async with http.get(f"{gateway}/staff/tickets?status=accepted", allow_redirects=False) as r:
            assert r.status == 303
            location = urlsplit(r.headers["Location"])
            assert location.path == "/staff/login"
            assert parse_qs(location.query)["next"] == ["/staff/tickets?status=accepted"]
        async with http.get(f"{gateway}/staff/api/alerts") as r:
            assert r.status == 401
        r = await login(http, gateway, "alice", next_url="https://evil.example/")
        assert r.headers["Location"] == "/staff/queue"  # no open redirect


async def test_wrong_password_five_times_locks_the_account(gateway, accounts, redis, prefix):
    async with new_session() as http:
        for i in range(4):
            r = await login(http, gateway, "bob", "wrong-password")
            assert r.status == 401
        r = await login(http, gateway, "bob", "wrong-password")
        assert r.status == 429
        # Locked: even the right password is refused now, and says why.
        r = await login(http, gateway, "bob", PASSWORD)
        assert r.status == 429
        async with http.get(f"{gateway}/staff/queue", allow_redirects=False) as q:
            assert q.status == 303  # no session was created
    ttl = await redis.ttl(Keys(prefix).staff_lock("bob"))
    assert 800 < ttl <= 900
    # Other accounts are not affected.
    async with new_session() as http:
        assert (await login(http, gateway, "alice")).status == 303
    actions = [e["action"] for e in await audit_entries(redis, prefix) if e["target"] == "bob"]
    assert actions.count("login_failed") == 4 and actions.count("login_locked") == 2


async def test_login_form_without_its_csrf_cookie_is_refused(gateway, accounts):
    async with new_session() as http:
        async with http.get(f"{gateway}/staff/login") as r:
            token = csrf_of(await r.text())
        http.cookie_jar.clear()
        r = await http.post(f"{gateway}/staff/login", data={"name": "alice", "password": PASSWORD, "csrf": token},
                            allow_redirects=False)
        assert r.status == 403


async def test_forms_without_the_csrf_token_are_refused(gateway, accounts, escalations, redis, prefix):
    opened = await escalations.open("web-csrf1", "web", "request_human")
    esc_id = opened.escalation.esc_id
    http, token = await logged_in(gateway, "alice")
    async with http:
        for data in ({}, {"csrf": "forged-token"}, {"csrf": token + "x"}):
            status, body, _ = await post(http, f"{gateway}/staff/esc/{esc_id}/claim", data)
            assert status == 403 and "CSRF" in body
        assert (await escalations.get(esc_id)).status == WAITING
        status, _, _ = await post(http, f"{gateway}/staff/esc/{esc_id}/claim", {"csrf": token})
        assert status == 303
    assert (await escalations.get(esc_id)).status == CLAIMED
    refused = [e for e in await audit_entries(redis, prefix) if e["action"] == "csrf_refused"]
    assert len(refused) == 3 and refused[0]["who"] == "alice"


async def test_an_agent_is_refused_supervisor_pages(gateway, accounts, redis, prefix):
    http, _ = await logged_in(gateway, "alice")
    async with http:
        async with http.get(f"{gateway}/staff/audit") as r:
            assert r.status == 403 and "仅限主管" in await r.text()
    http, _ = await logged_in(gateway, "sara")
    async with http:
        async with http.get(f"{gateway}/staff/audit") as r:
            page = await r.text()
            assert r.status == 200
            assert 'data-action="denied"' in page and 'data-action="login"' in page
    denied = [e for e in await audit_entries(redis, prefix) if e["action"] == "denied"]
    assert denied and denied[0]["who"] == "alice" and denied[0]["target"] == "/staff/audit"


# -- privacy ---------------------------------------------------------------------------------

async def test_agents_see_masked_phones_supervisors_full_and_logged(gateway, accounts, tickets, redis, prefix):
    t = await make_ticket(tickets, phone="13812345678")
    http, _ = await logged_in(gateway, "alice")
    async with http:
        for url in (f"/staff/tickets/{t.ticket_id}", "/staff/tickets"):
            async with http.get(gateway + url) as r:
                page = await r.text()
                assert "138****5678" in page and "13812345678" not in page
    assert not [e for e in await audit_entries(redis, prefix) if e["action"] == "view_phone"]
    http, _ = await logged_in(gateway, "sara")
    async with http:
        async with http.get(f"{gateway}/staff/tickets") as r:  # lists stay masked for everyone
            assert "13812345678" not in await r.text()
        async with http.get(f"{gateway}/staff/tickets/{t.ticket_id}") as r:
            assert "13812345678" in await r.text()
    views = [e for e in await audit_entries(redis, prefix) if e["action"] == "view_phone"]
    assert len(views) == 1 and views[0]["who"] == "sara" and views[0]["target"] == t.ticket_id


async def test_phone_numbers_in_transcripts_are_masked_for_agents(gateway, accounts, escalations, redis, prefix):
    opened = await escalations.open("web-tr1", "web", "request_human",
                                    transcript=[{"role": "user", "text": "我的手机是13912345678，快来人"}])
    http, _ = await logged_in(gateway, "alice")
    async with http:
        async with http.get(f"{gateway}/staff/esc/{opened.escalation.esc_id}") as r:
            page = await r.text()
    assert "139****5678" in page and "13912345678" not in page
    http, _ = await logged_in(gateway, "sara")
    async with http:
        async with http.get(f"{gateway}/staff/esc/{opened.escalation.esc_id}") as r:
            assert "13912345678" in await r.text()
    views = [e for e in await audit_entries(redis, prefix) if e["action"] == "view_phone"]
    assert [v["who"] for v in views] == ["sara"]


# -- tickets -----------------------------------------------------------------------------------

async def test_ticket_filters_by_status_category_urgency_and_date(gateway, accounts, tickets, prefix, redis):
    air = await make_ticket(tickets, ptype="air")
    water = await make_ticket(tickets, ptype="water", description="河水发黑发臭")
    fish = await make_ticket(tickets, ptype="water", description="河里有大量死鱼")
    old_store = TicketStore(redis, Keys(prefix), clock=lambda: datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI))
    old = await make_ticket(old_store, ptype="noise", description="工地半夜施工")
    await tickets.change_status(air.ticket_id, Status.PROCESSING, "test")
    assert fish.urgent and not water.urgent
    http, _ = await logged_in(gateway, "alice")

    async def ids(query: str) -> set[str]:
        async with http.get(f"{gateway}/staff/tickets?{query}") as r:
            assert r.status == 200
            return set(re.findall(r'data-ticket="(HB\d{12})"', await r.text()))

    async with http:
        every = {air.ticket_id, water.ticket_id, fish.ticket_id, old.ticket_id}
        assert await ids("") == every
        assert await ids("type=water") == {water.ticket_id, fish.ticket_id}
        assert await ids("urgent=1") == {fish.ticket_id}
        assert await ids("urgent=0&type=water") == {water.ticket_id}
        assert await ids("status=processing") == {air.ticket_id}
        assert await ids("status=accepted&type=air") == set()
        assert await ids("from=2026-03-01&to=2026-03-03") == {old.ticket_id}
        assert await ids("overdue=1") == {old.ticket_id}


async def test_deadline_clocks_and_overdue_in_red(gateway, accounts, tickets, redis, prefix):
    # Reported Monday 2 March 2026: accept by Tuesday 3 March, close within 15 working days.
    old_store = TicketStore(redis, Keys(prefix), clock=lambda: datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI))
    old = await make_ticket(old_store)
    fresh = await make_ticket(tickets)
    http, _ = await logged_in(gateway, "alice")
    async with http:
        async with http.get(f"{gateway}/staff/tickets/{old.ticket_id}") as r:
            page = await r.text()
        assert '<span class="clock overdue">受理时限：已超期' in page and "（3月3日到期）" in page
        assert '<span class="clock overdue">办结时限：已超期' in page and "（3月23日到期）" in page
        async with http.get(f"{gateway}/staff/tickets/{fresh.ticket_id}") as r:
            page = await r.text()
        assert "clock overdue" not in page and "办结时限：剩" in page
        async with http.get(f"{gateway}/staff/console.css") as r:
            assert re.search(r"\.clock\.overdue[^{]*\{[^}]*color:#cf1322", await r.text())


async def test_status_change_with_note_tells_the_web_citizen(gateway, accounts, tickets, escalations, redis, prefix):
    t = await make_ticket(tickets, reporter="web-citizen42", channel="web")
    http, token = await logged_in(gateway, "alice")
    async with http:
        status, page, url = await post(http, f"{gateway}/staff/tickets/{t.ticket_id}/status",
                                       {"csrf": token, "status": "processing", "note": "执法人员今晚到现场检查"})
        assert status == 303 and url.endswith(t.ticket_id)
        assert "已通知群众" in page and "执法人员今晚到现场检查" in page
        # an illegal change is refused with the reason
        status, page, _ = await post(http, f"{gateway}/staff/tickets/{t.ticket_id}/status",
                                     {"csrf": token, "status": "accepted", "note": ""})
        assert "状态没有变更" in page
    stored = await tickets.get(t.ticket_id)
    assert stored.status == Status.PROCESSING and stored.staff_reply == "执法人员今晚到现场检查"
    assert stored.history[-1]["actor"] == "alice"
    told = await escalations.take_outbox("web-citizen42")
    assert len(told) == 1
    assert t.ticket_id in told[0]["text"] and "执法人员今晚到现场检查" in told[0]["text"]
    entry = [e for e in await audit_entries(redis, prefix) if e["action"] == "ticket_status"][0]
    assert entry["who"] == "alice" and entry["target"] == t.ticket_id
    assert json.loads(entry["before"]) == {"status": Status.ACCEPTED}
    assert json.loads(entry["after"])["status"] == Status.PROCESSING


async def test_status_change_tells_the_wechat_citizen(gateway, accounts, tickets, fake_wechat):
    openid = "oTestTicket" + uuid.uuid4().hex[:16]
    t = await make_ticket(tickets, reporter=openid, channel="wechat")
    http, token = await logged_in(gateway, "alice")
    async with http:
        await post(http, f"{gateway}/staff/tickets/{t.ticket_id}/status",
                   {"csrf": token, "status": "processing", "note": "已安排人员核查"})
    sent = fake_wechat.wait_sent(openid, 1, timeout=10)
    assert t.ticket_id in sent[0]["text"]["content"] and "已安排人员核查" in sent[0]["text"]["content"]


async def test_link_as_duplicate_and_transfer(gateway, accounts, tickets, escalations):
    first = await make_ticket(tickets, reporter="web-dup1")
    second = await make_ticket(tickets, reporter="web-dup2")
    third = await make_ticket(tickets, reporter="web-dup3", ptype="other", description="小区物业乱收费")
    http, token = await logged_in(gateway, "bob")
    async with http:
        await post(http, f"{gateway}/staff/tickets/{second.ticket_id}/duplicate",
                   {"csrf": token, "linked_to": first.ticket_id, "note": "同一家工厂"})
        status, page, _ = await post(http, f"{gateway}/staff/tickets/{third.ticket_id}/transfer",
                                     {"csrf": token, "department": "县住建局", "note": "物业问题由住建局负责"})
        assert "转办" in page
        async with http.get(f"{gateway}/staff/tickets/{first.ticket_id}") as r:
            assert second.ticket_id in await r.text()  # the original shows what was merged into it
    s2, s3 = await tickets.get(second.ticket_id), await tickets.get(third.ticket_id)
    assert s2.status == Status.DUPLICATE and s2.linked_to == first.ticket_id
    assert s3.status == Status.TRANSFERRED and s3.transferred_to == "县住建局"
    assert first.ticket_id in (await escalations.take_outbox("web-dup2"))[0]["text"]
    assert "县住建局" in (await escalations.take_outbox("web-dup3"))[0]["text"]


async def test_ticket_page_shows_history_photos_and_location(gateway, accounts, tickets):
    report = ComplaintReport(reporter="web-geo1", channel="web", pollution_type="water", description="排污口冒白沫",
                             location_text="青石镇东河桥下", lat=30.123456, lon=114.654321,
                             location_label="青石镇东河桥", contact_phone=None,
                             evidence=[{"media_id": "web:abc.jpg", "url": "/uploads/abc.jpg"}])
    t = (await tickets.create(report, idem_key=uuid.uuid4().hex)).ticket
    await tickets.change_status(t.ticket_id, Status.PROCESSING, "alice", "已派人")
    http, _ = await logged_in(gateway, "alice")
    async with http:
        async with http.get(f"{gateway}/staff/tickets/{t.ticket_id}") as r:
            page = await r.text()
    assert '<img src="/uploads/abc.jpg"' in page
    assert "青石镇东河桥下" in page and "30.123456, 114.654321" in page
    assert "已受理 → 处理中" in page and "已派人" in page and "匿名" in page


# -- escalations ----------------------------------------------------------------------------------

async def test_staff_reply_reaches_the_fake_wechat_api(gateway, accounts, escalations, fake_wechat):
    openid = "oTestEsc" + uuid.uuid4().hex[:18]
    opened = await escalations.open(openid, "wechat", "request_human", intent="ask_materials",
                                    transcript=[{"role": "user", "text": "报告表要什么材料"}])
    esc_id = opened.escalation.esc_id
    http, token = await logged_in(gateway, "alice")
    async with http:
        status, page, _ = await post(http, f"{gateway}/staff/esc/{esc_id}/claim", {"csrf": token})
        assert "已接入" in page
        status, page, _ = await post(http, f"{gateway}/staff/esc/{esc_id}/reply",
                                     {"csrf": token, "text": "您好，我是环评股小王，报告表需要以下材料……"})
        assert "已发送" in page and "环评股小王" in page
        sent = fake_wechat.wait_sent(openid, 1, timeout=10)
        assert sent[0]["msgtype"] == "text"
        assert sent[0]["text"]["content"] == "您好，我是环评股小王，报告表需要以下材料……"
        status, page, url = await post(http, f"{gateway}/staff/esc/{esc_id}/resolve", {"csrf": token})
        assert url.endswith("/staff/queue") and "已解决" in page
    sent = fake_wechat.wait_sent(openid, 2, timeout=10)
    assert sent[1]["text"]["content"] == RESOLVED_TEXT
    assert (await escalations.get(esc_id)).status == RESOLVED
    assert await escalations.human_mode(openid) is None


async def test_one_agent_at_a_time(gateway, accounts, escalations):
    opened = await escalations.open("web-two-agents", "web", "angry")
    esc_id = opened.escalation.esc_id
    alice, a_token = await logged_in(gateway, "alice")
    bob, b_token = await logged_in(gateway, "bob")
    async with alice, bob:
        await post(alice, f"{gateway}/staff/esc/{esc_id}/claim", {"csrf": a_token})
        _, page, _ = await post(bob, f"{gateway}/staff/esc/{esc_id}/claim", {"csrf": b_token})
        assert "这个对话已由 alice 接入" in page
        _, page, _ = await post(bob, f"{gateway}/staff/esc/{esc_id}/reply", {"csrf": b_token, "text": "我来"})
        assert "请先接入" in page or "由 alice 处理" in page
        _, page, _ = await post(bob, f"{gateway}/staff/esc/{esc_id}/handback", {"csrf": b_token})
        assert "由 alice 处理" in page
    e = await escalations.get(esc_id)
    assert e.status == CLAIMED and e.claimed_by == "alice"
    assert not [m for m in await escalations.messages(esc_id) if m["role"] == "staff"]


async def test_hand_back_ends_human_mode_and_tells_the_web_user(gateway, accounts, escalations, redis, prefix):
    opened = await escalations.open("web-handback", "web", "fallback_twice")
    esc_id = opened.escalation.esc_id
    http, token = await logged_in(gateway, "alice")
    async with http:
        await post(http, f"{gateway}/staff/esc/{esc_id}/claim", {"csrf": token})
        await post(http, f"{gateway}/staff/esc/{esc_id}/reply", {"csrf": token, "text": "请问您具体想办什么？"})
        _, page, _ = await post(http, f"{gateway}/staff/esc/{esc_id}/handback", {"csrf": token})
        assert "已交回机器人" in page
        async with http.get(f"{gateway}/api/chat/poll?sender=web-handback") as r:
            polled = (await r.json())["messages"]
        async with http.get(f"{gateway}/api/chat/poll?sender=web-handback") as r:
            assert (await r.json())["messages"] == []  # taken once
    assert [m["text"] for m in polled] == ["请问您具体想办什么？", HANDED_BACK_TEXT]
    assert (await escalations.get(esc_id)).status == HANDED_BACK
    assert await escalations.human_mode("web-handback") is None
    acts = [e["action"] for e in await audit_entries(redis, prefix) if e["target"] == esc_id]
    assert acts == ["claim_escalation", "reply_escalation", "handback_escalation"]


async def test_queue_lists_urgent_first_then_longest_wait(gateway, accounts, escalations):
    a = await escalations.open("web-q1", "web", "request_human")
    b = await escalations.open("web-q2", "web", "angry")
    c = await escalations.open("web-q3", "web", "urgent_complaint", urgent=True, pause=False)
    http, _ = await logged_in(gateway, "alice")
    async with http:
        async with http.get(f"{gateway}/staff/queue") as r:
            page = await r.text()
    order = re.findall(r'data-esc="(E\d+)"', page)
    assert order[:3] == [c.escalation.esc_id, a.escalation.esc_id, b.escalation.esc_id]
    assert "紧急" in page and "已等待" in page and "用户情绪激动" in page


async def test_alerts_show_new_urgent_items_with_a_count(gateway, accounts, escalations, tickets):
    http, _ = await logged_in(gateway, "alice")
    async with http:
        async with http.get(f"{gateway}/staff/api/alerts") as r:
            before = await r.json()
        await escalations.open("web-alert1", "web", "urgent_complaint", urgent=True)
        fish = await make_ticket(tickets, ptype="water", description="水库边上好多死鱼")
        async with http.get(f"{gateway}/staff/api/alerts") as r:
            after = await r.json()
        async with http.get(f"{gateway}/staff/console.js") as r:
            script = await r.text()
    assert after["count"] == before["count"] + 2
    keys = [i["key"] for i in after["items"]]
    assert f"ticket:{fish.ticket_id}" in keys and keys[0].startswith("ticket:")
    assert "/staff/api/alerts" in script and "document.title" in script


async def test_dashboard_counts_and_chart(gateway, accounts, tickets):
    await make_ticket(tickets, ptype="noise", description="KTV太吵")
    await make_ticket(tickets, ptype="noise", description="工地噪声")
    await make_ticket(tickets, ptype="livestock", description="养猪场粪水直排")
    http, _ = await logged_in(gateway, "alice")
    async with http:
        async with http.get(f"{gateway}/staff/dashboard") as r:
            page = await r.text()
            csp = r.headers["Content-Security-Policy"]
    assert page.count("<svg") == 3 and "<title>按类别</title>" in page
    assert "<title>噪声: 2</title>" in page and "<title>畜禽养殖: 1</title>" in page
    assert "<title>已受理: 3</title>" in page
    today = datetime.now(SHANGHAI)
    assert f"<title>{today.month}/{today.day}: 3</title>" in page
    assert "script-src 'self'" in csp and "http" not in csp.split("script-src")[1].split(";")[0]


async def test_logout_ends_the_session(gateway, accounts):
    http, token = await logged_in(gateway, "alice")
    async with http:
        status, _, url = await post(http, f"{gateway}/staff/logout", {"csrf": token})
        assert url.endswith("/staff/login")
        async with http.get(f"{gateway}/staff/queue", allow_redirects=False) as r:
            assert r.status == 303

