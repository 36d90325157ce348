"""Escalation to staff and human mode.

Pure rules (anger, repeats, office hours, fallbacks, transcripts), the
escalation store against the real Redis, the handoff actions run with
rasa_sdk's Tracker against the real Redis, and end to end through the real
stack (gateway, Rasa with the trained model, action server, Redis, the local
fake of the WeChat API): each trigger; a message in human mode reaching the
staff inbox and not Rasa (checked in Rasa's tracker); a staff reply reaching
the fake WeChat API; hand back; time-out.
"""
from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from redis.asyncio import Redis

from actions import deps
from actions.handoff import (
    ActionDefaultFallback, escalate_on_error, escalate_on_failure, previous_turn_was_fallback,
)
from bot.app import create_app
from bot.pipeline import RASA_DOWN_TEXT
from bot.staff.accounts import AccountStore
from core.escalations import (
    HANDED_BACK, TIMED_OUT, WAITING, EscalationError, EscalationStore, last_intent, last_ticket_id,
    transcript_from_events,
)
from core.handoff_rules import (
    FORWARDED_TEXT, HANDED_BACK_TEXT, SHANGHAI, TAKEOVER_TEXT, OfficeHours, anger_signals, handoff_text,
    is_angry, is_office_open, is_repeat, next_opening, normalise,
)
from core.keys import Keys
from core.settings import Settings
from scripts import redis_server
from tests.test_staff_console import PASSWORD, csrf_of, login, new_session, post
from tests.test_wechat_gateway import new_openid, post_wechat, text_xml

HANDOFF_MARK = "已为您转接人工服务"
# A 1x1 PNG, for an image sent from the web chat.
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


# -- pure rules -------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["你们这什么破机器人", "傻逼", "气死我了，你们就知道敷衍", "你们到底管不管！！！",
                                  "WTF???", "垃圾客服，找你们领导"])
def test_angry_users_are_recognised(text):
    assert is_angry(text), anger_signals(text)


@pytest.mark.parametrize("text", ["河里有死鱼！！！", "小区门口堆满了垃圾", "环保局管不管噪声", "谢谢",
                                  "我的usb坏了", "报告表要交什么材料？？"])
def test_calm_or_urgent_users_are_not_taken_for_angry(text):
    assert not is_angry(text), anger_signals(text)


def test_the_same_question_three_times():
    prev = [normalise("报告表 要交什么材料？"), normalise("报告表要交什么材料")]
    assert is_repeat("报告表要交什么材料!", prev)
    assert not is_repeat("报告表要交什么材料", prev[:1])                    # only twice
    assert not is_repeat("报告书要交什么材料", prev)                        # another question
    assert not is_repeat("好的", [normalise("好的"), normalise("好的")])   # short replies are not questions


def test_handoff_text_in_and_outside_office_hours():
    hours = OfficeHours.parse("周一至周五 上午8:30-12:00 下午14:30-17:30（法定节假日除外）")
    monday_9 = datetime(2026, 11, 30, 9, 0, tzinfo=SHANGHAI)
    assert is_office_open(monday_9, hours)
    text = handoff_text(monday_9, hours, ahead=2)
    assert "预计约15分钟" in text and "前面还有2位" in text and "12369" in text
    saturday = datetime(2026, 11, 28, 20, 0, tzinfo=SHANGHAI)
    text = handoff_text(saturday, hours)
    assert "非工作时间" in text and "11月30日（周一）8:30" in text and "12369" in text
    lunch = datetime(2026, 11, 30, 12, 30, tzinfo=SHANGHAI)
    assert next_opening(lunch, hours) == datetime(2026, 11, 30, 14, 30, tzinfo=SHANGHAI)
    assert "今天14:30" in handoff_text(lunch, hours)
    # National Day 2026: 1-7 October off (State Council schedule, chinese_calendar); back on Thursday 8 October.
    holiday = datetime(2026, 10, 1, 10, 0, tzinfo=SHANGHAI)
    assert not is_office_open(holiday, hours)
    assert next_opening(holiday, hours) == datetime(2026, 10, 8, 8, 30, tzinfo=SHANGHAI)
    assert "10月8日（周四）8:30" in handoff_text(holiday, hours)


def test_previous_turn_was_fallback():
    fb = {"event": "action", "name": "action_default_fallback"}
    listen = {"event": "action", "name": "action_listen"}
    user = {"event": "user", "text": "啊吧啊吧", "parse_data": {"intent": {"name": "nlu_fallback"}}}
    assert previous_turn_was_fallback([listen, user, fb, {"event": "bot", "text": "?"}, listen, user])
    assert not previous_turn_was_fallback([listen, user])
    greet = {"event": "action", "name": "utter_greet"}
    assert not previous_turn_was_fallback([listen, user, fb, listen, user, greet, listen, user])


def test_transcript_intent_and_ticket_from_tracker_events():
    events = [
        {"event": "user", "text": "河里有死鱼", "timestamp": 1.0, "parse_data": {"intent": {"name": "report_pollution"}}},
        {"event": "bot", "text": "举报已受理！工单编号：HB202611290007", "timestamp": 2.0},
        {"event": "user", "text": "/send_image{\"media_id\": \"m1\"}", "parse_data": {"intent": {"name": "send_image"}}},
        {"event": "user", "text": "/request_human", "metadata": {"original_text": "你们这破机器人"},
         "parse_data": {"intent": {"name": "request_human"}}},
    ]
    tr = transcript_from_events(events)
    assert [t["text"] for t in tr] == ["河里有死鱼", "举报已受理！工单编号：HB202611290007", "[图片]", "你们这破机器人"]
    assert [t["role"] for t in tr] == ["user", "bot", "user", "user"]
    assert last_intent(events) == "send_image"
    assert last_ticket_id(events) == "HB202611290007"


# -- the store ------------------------------------------------------------------------------------

@pytest.fixture
def prefix(key_prefix):
    return f"{key_prefix}e{uuid.uuid4().hex[:8]}:"


@pytest.fixture
async def redis(redis_url):
    r = Redis.from_url(redis_url, decode_responses=True)
    yield r
    await r.close()


async def test_claim_is_atomic_one_agent_wins(redis, prefix):
    store = EscalationStore(redis, Keys(prefix))
    esc_id = (await store.open("web-race", "web", "request_human")).escalation.esc_id
    results = await asyncio.gather(*(store.claim(esc_id, f"agent{i}") for i in range(20)), return_exceptions=True)
    winners = [r for r in results if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, EscalationError)]
    assert len(winners) == 1 and len(losers) == 19
    assert {e.code for e in losers} == {"taken"}
    assert (await store.get(esc_id)).claimed_by == winners[0].claimed_by


async def test_open_twice_joins_and_urgent_goes_first(redis, prefix):
    store = EscalationStore(redis, Keys(prefix))
    first = await store.open("web-a", "web", "request_human")
    again = await store.open("web-a", "web", "angry")
    assert again.escalation.esc_id == first.escalation.esc_id and not again.created
    second = await store.open("web-b", "web", "angry")
    assert second.ahead == 1
    urgent = await store.open("web-c", "wechat", "urgent_complaint", urgent=True, pause=False)
    assert urgent.ahead == 0
    assert [e.esc_id for e in await store.list_open()] == [
        urgent.escalation.esc_id, first.escalation.esc_id, second.escalation.esc_id]
    assert await store.open_counts() == {"open": 3, "urgent": 1}
    # Not paused until an agent claims it: the bot keeps taking the complaint down.
    assert not (await store.human_mode("web-c")).paused
    await store.claim(urgent.escalation.esc_id, "alice")
    assert (await store.human_mode("web-c")).paused


# -- the actions, run as the action server runs them ---------------------------------------------------

@pytest.fixture
def action_env(monkeypatch, redis_url, prefix):
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("REDIS_KEY_PREFIX", prefix)

    def reset():
        deps.settings.cache_clear()
        deps.keys.cache_clear()
        deps._redis = None

    reset()
    yield
    reset()


def tracker(sender: str, events: list[dict], text: str = "", intent: str = "", active_loop: str | None = None,
            metadata: dict | None = None) -> Tracker:
    latest = {"text": text, "intent": {"name": intent, "confidence": 1.0}, "metadata": metadata or {},
              "entities": []}
    return Tracker(sender, {"complaint_urgent": None}, latest, events, False, None,
                   {"name": active_loop} if active_loop else {}, None)


async def test_a_failed_action_escalates(action_env, redis, prefix):
    events = [{"event": "user", "text": "报告表要多久", "parse_data": {"intent": {"name": "ask_time_limit"}}}]
    dispatcher = CollectingDispatcher()
    out = await escalate_on_failure(dispatcher, tracker("web-fail1", events, active_loop="approval_form"),
                                    RuntimeError("catalogue unreadable"), "action_answer_consult")
    assert "出了点问题" in dispatcher.messages[0]["text"] and HANDOFF_MARK in dispatcher.messages[0]["text"]
    assert {"event": "active_loop", "name": None} in [{k: e.get(k) for k in ("event", "name")} for e in out]
    store = EscalationStore(redis, Keys(prefix))
    e = await store.get((await store.human_mode("web-fail1")).esc_id)
    assert e.reason == "action_failed" and "action_answer_consult: RuntimeError: catalogue unreadable" in e.detail
    assert e.intent == "ask_time_limit" and e.transcript[0]["text"] == "报告表要多久"

    class Broken(Action):
        def name(self) -> str:
            return "action_broken"

        @escalate_on_error
        async def run(self, dispatcher, tracker, domain):
            raise KeyError("slot")

    dispatcher = CollectingDispatcher()
    await Broken().run(dispatcher, tracker("web-fail2", events), {})
    e2 = await store.get((await store.human_mode("web-fail2")).esc_id)
    assert e2.reason == "action_failed" and "action_broken: KeyError" in e2.detail
    assert HANDOFF_MARK in dispatcher.messages[0]["text"]


async def test_fallback_rephrases_first_then_escalates(action_env, redis, prefix):
    listen = {"event": "action", "name": "action_listen"}
    user = {"event": "user", "text": "嘟嘟嘟嘟", "parse_data": {"intent": {"name": "nlu_fallback"}}}
    d1 = CollectingDispatcher()
    await ActionDefaultFallback().run(d1, tracker("web-fb1", [listen, user], "嘟嘟嘟嘟", "nlu_fallback"), {})
    assert "换个说法" in d1.messages[0]["text"] and "转人工" in d1.messages[0]["text"]
    store = EscalationStore(redis, Keys(prefix))
    assert await store.human_mode("web-fb1") is None
    events = [listen, user, {"event": "action", "name": "action_default_fallback"},
              {"event": "bot", "text": d1.messages[0]["text"]}, listen, user]
    d2 = CollectingDispatcher()
    await ActionDefaultFallback().run(d2, tracker("web-fb1", events, "嘟嘟嘟嘟", "nlu_fallback"), {})
    assert "我还是没明白" in d2.messages[0]["text"] and HANDOFF_MARK in d2.messages[0]["text"]
    assert (await store.get((await store.human_mode("web-fb1")).esc_id)).reason == "fallback_twice"


# -- end to end through the real stack ------------------------------------------------------------------

@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def stack_store(stack, redis_url, key_prefix):
    r = Redis.from_url(redis_url, decode_responses=True)
    yield EscalationStore(r, Keys(key_prefix))
    await r.close()


def web_sender() -> str:
    return "web-esc" + uuid.uuid4().hex[:12]


async def chat(http, base: str, sender: str, text: str) -> list[str]:
    async with http.post(f"{base}/api/chat", json={"sender": sender, "text": text}) as r:
        assert r.status == 200, await r.text()
        return [m["text"] for m in (await r.json())["messages"]]


async def send_image(http, base: str, sender: str) -> list[str]:
    async with http.post(f"{base}/api/upload?sender={sender}", data=PNG) as r:
        assert r.status == 200, await r.text()
        name = (await r.json())["upload"]
    async with http.post(f"{base}/api/chat", json={"sender": sender, "type": "image", "upload": name}) as r:
        assert r.status == 200
        return [m["text"] for m in (await r.json())["messages"]]


async def tracker_user_events(http, rasa_url: str, sender: str) -> list[dict]:
    async with http.get(f"{rasa_url}/conversations/{sender}/tracker") as r:
        assert r.status == 200
        return [e for e in (await r.json()).get("events") or [] if e.get("event") == "user"]


async def escalation_of(store: EscalationStore, sender: str):
    mode = await store.human_mode(sender)
    assert mode is not None, f"no escalation for {sender}"
    return await store.get(mode.esc_id), mode


async def poll(http, base: str, sender: str) -> list[str]:
    async with http.get(f"{base}/api/chat/poll", params={"sender": sender}) as r:
        assert r.status == 200
        return [m["text"] for m in (await r.json())["messages"]]


async def test_request_human_then_messages_go_to_the_inbox_not_rasa(stack, http, stack_store):
    base, sender = stack.gateway_url, web_sender()
    greeting = await chat(http, base, sender, "你好")
    assert greeting
    reply = await chat(http, base, sender, "转人工")
    assert len(reply) == 1 and HANDOFF_MARK in reply[0] and "12369" in reply[0]
    esc, mode = await escalation_of(stack_store, sender)
    assert mode.paused and esc.status == WAITING and esc.reason == "request_human" and esc.channel == "web"
    assert [t["text"] for t in esc.transcript][:2] == ["你好", greeting[0]]
    before = await tracker_user_events(http, stack.rasa_url, sender)
    assert before[-1]["text"] == "转人工"

    assert await chat(http, base, sender, "河边那个厂又在偷排污水") == [FORWARDED_TEXT]
    assert await chat(http, base, sender, "照片发给你们") == []
    assert await send_image(http, base, sender) == []

    after = await tracker_user_events(http, stack.rasa_url, sender)
    assert len(after) == len(before), "a message in human mode reached Rasa"
    inbox = await stack_store.messages(esc.esc_id)
    assert [m["text"] for m in inbox[:2]] == ["河边那个厂又在偷排污水", "照片发给你们"]
    assert inbox[2]["kind"] == "image" and inbox[2]["pic_url"].startswith("/uploads/")
    assert (await stack_store.get(esc.esc_id)).unread == 3

    # Resolved: the bot answers again, and Rasa sees the message.
    await stack_store.claim(esc.esc_id, "tester")
    await stack_store.close(esc.esc_id, "resolved", "tester")
    assert await chat(http, base, sender, "你好")
    assert (await tracker_user_events(http, stack.rasa_url, sender))[-1]["text"] == "你好"


async def test_an_angry_user_is_escalated(stack, http, stack_store):
    base, sender = stack.gateway_url, web_sender()
    text = "你们这什么破机器人，气死我了"
    reply = await chat(http, base, sender, text)
    assert HANDOFF_MARK in reply[0]
    esc, _ = await escalation_of(stack_store, sender)
    assert esc.reason == "angry" and "破机器人" in esc.detail
    last = (await tracker_user_events(http, stack.rasa_url, sender))[-1]
    assert last["parse_data"]["intent"]["name"] == "request_human"
    assert last["metadata"]["original_text"] == text
    assert esc.transcript[-1]["text"] == text  # staff see what was said, not "/request_human"


async def test_the_same_question_three_times_is_escalated(stack, http, stack_store):
    base, sender = stack.gateway_url, web_sender()
    question = "报告表要交哪些材料呀"
    for _ in range(2):
        answer = await chat(http, base, sender, question)
        assert answer and not any(HANDOFF_MARK in a for a in answer)
    reply = await chat(http, base, sender, question + "？")
    assert HANDOFF_MARK in reply[-1]
    esc, _ = await escalation_of(stack_store, sender)
    assert esc.reason == "repeated_question" and question in esc.detail


async def test_two_fallbacks_in_a_row_are_escalated(stack, http, stack_store):
    sender = web_sender()

    async def rest(text: str) -> list[str]:
        async with http.post(f"{stack.rasa_url}/webhooks/rest/webhook",
                             json={"sender": sender, "message": text, "metadata": {"channel": "web"}}) as r:
            assert r.status == 200
            return [m.get("text", "") for m in await r.json()]

    first = await rest("/nlu_fallback")
    assert "换个说法" in first[0]
    assert await stack_store.human_mode(sender) is None
    second = await rest("/nlu_fallback")
    assert "我还是没明白" in second[0] and HANDOFF_MARK in second[0]
    esc, _ = await escalation_of(stack_store, sender)
    assert esc.reason == "fallback_twice"


async def test_an_urgent_complaint_is_escalated_while_the_bot_takes_it_down(stack, http, stack_store):
    base, sender = stack.gateway_url, web_sender()
    reply = await chat(http, base, sender, "河里漂着好多死鱼，水还发臭")
    assert any("12369" in r for r in reply)
    esc, mode = await escalation_of(stack_store, sender)
    assert esc.urgent and esc.reason == "urgent_complaint" and "死鱼" in esc.detail
    assert not mode.paused
    assert (await stack_store.list_open())[0].urgent
    n = len(await tracker_user_events(http, stack.rasa_url, sender))
    assert await chat(http, base, sender, "青石镇东河桥下面")  # the form goes on with the bot
    assert len(await tracker_user_events(http, stack.rasa_url, sender)) == n + 1
    await stack_store.claim(esc.esc_id, "duty-officer")          # a person takes over
    assert await chat(http, base, sender, "现在还在往外冒") == [FORWARDED_TEXT]
    assert len(await tracker_user_events(http, stack.rasa_url, sender)) == n + 1


async def test_wechat_user_gets_the_staff_reply_and_is_handed_back(stack, http, stack_store, fake_wechat,
                                                                  redis_url, key_prefix):
    openid = new_openid()
    r = await post_wechat(http, stack.gateway_url, text_xml(openid, "转人工"))
    assert r.status == 200 and HANDOFF_MARK in r.content
    r = await post_wechat(http, stack.gateway_url, text_xml(openid, "我要反映村口养猪场的事"))
    assert r.content == FORWARDED_TEXT
    r = await post_wechat(http, stack.gateway_url, text_xml(openid, "有人在吗"))
    assert r.status == 200 and r.body == "success"
    esc, _ = await escalation_of(stack_store, openid)
    assert esc.channel == "wechat"
    n = len(await tracker_user_events(http, stack.rasa_url, openid))

    raw = Redis.from_url(redis_url, decode_responses=True)
    await AccountStore(raw, Keys(key_prefix)).add_user("wang.agent", "agent", PASSWORD)
    await raw.close()
    base = stack.gateway_url
    async with new_session() as staff:
        assert (await login(staff, base, "wang.agent")).status == 303
        async with staff.get(f"{base}/staff/esc/{esc.esc_id}") as page:
            html = await page.text()
            token = csrf_of(html)
        assert "我要反映村口养猪场的事" in html and "来自 Rasa 对话记录（实时）" in html
        await post(staff, f"{base}/staff/esc/{esc.esc_id}/claim", {"csrf": token})
        _, html, _ = await post(staff, f"{base}/staff/esc/{esc.esc_id}/reply",
                                {"csrf": token, "text": "您好，我是值班员小王，请说一下养猪场的位置。"})
        assert "已发送" in html
        sent = fake_wechat.wait_sent(openid, 1, timeout=15)
        assert sent[-1]["text"]["content"] == "您好，我是值班员小王，请说一下养猪场的位置。"
        await post(staff, f"{base}/staff/esc/{esc.esc_id}/handback", {"csrf": token})
    sent = fake_wechat.wait_sent(openid, 2, timeout=15)
    assert sent[-1]["text"]["content"] == HANDED_BACK_TEXT
    assert (await stack_store.get(esc.esc_id)).status == HANDED_BACK
    r = await post_wechat(http, stack.gateway_url, text_xml(openid, "你好"))
    assert r.content and r.content != FORWARDED_TEXT
    assert len(await tracker_user_events(http, stack.rasa_url, openid)) == n + 1


async def test_human_mode_times_out_on_the_next_message(stack, http, stack_store):
    base, sender = stack.gateway_url, web_sender()
    await chat(http, base, sender, "转人工")
    esc, _ = await escalation_of(stack_store, sender)
    # 24 h and a minute without staff activity (HUMAN_MODE_TTL_S defaults to 86400).
    await stack_store.r.hset(stack_store.keys.handoff(sender), "active", repr(time.time() - 86460))
    reply = await chat(http, base, sender, "你好")
    assert reply[0] == TAKEOVER_TEXT and len(reply) >= 2  # the bot says so, then answers
    assert (await stack_store.get(esc.esc_id)).status == TIMED_OUT
    assert await stack_store.human_mode(sender) is None
    assert (await tracker_user_events(http, stack.rasa_url, sender))[-1]["text"] == "你好"


@pytest.fixture(scope="module")
def short_ttl_gateway(stack, tmp_path_factory):
    """A second gateway process (same Redis, Rasa, action server) with HUMAN_MODE_TTL_S=2."""
    port = redis_server.free_port()
    svc = stack.gateway_service(port)
    svc.env["HUMAN_MODE_TTL_S"] = "2"
    svc.log_path = tmp_path_factory.mktemp("ttlgw") / "gateway.log"
    svc.start()
    try:
        svc.wait_healthy(30)
        yield f"http://127.0.0.1:{port}"
    finally:
        svc.stop()


async def test_human_mode_times_out_and_the_bot_says_it_is_back(stack, short_ttl_gateway, http, stack_store):
    base, sender = short_ttl_gateway, web_sender()
    assert HANDOFF_MARK in (await chat(http, base, sender, "转人工"))[0]
    esc, _ = await escalation_of(stack_store, sender)
    assert await chat(http, base, sender, "还要等多久") == [FORWARDED_TEXT]
    told: list[str] = []
    deadline = time.monotonic() + 15
    while not told and time.monotonic() < deadline:
        await asyncio.sleep(0.3)
        told = await poll(http, base, sender)
    assert told == [TAKEOVER_TEXT], "the sweeper did not tell the user the bot is back"
    assert (await stack_store.get(esc.esc_id)).status == TIMED_OUT
    n = len(await tracker_user_events(http, stack.rasa_url, sender))
    assert await chat(http, base, sender, "你好")
    assert len(await tracker_user_events(http, stack.rasa_url, sender)) == n + 1


async def test_rasa_down_escalates_and_keeps_the_message(redis_url, key_prefix, tmp_path, http):
    prefix = f"{key_prefix}down{uuid.uuid4().hex[:6]}:"
    settings = Settings.from_env({"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": prefix,
                                  "RASA_URL": "http://127.0.0.1:9", "RASA_TIMEOUT_S": "2",
                                  "UPLOAD_DIR": str(tmp_path)})
    server = TestServer(create_app(settings))
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    try:
        sender = web_sender()
        assert await chat(http, base, sender, "我要举报工厂偷排") == [RASA_DOWN_TEXT]
        r = Redis.from_url(redis_url, decode_responses=True)
        store = EscalationStore(r, Keys(prefix))
        esc, mode = await escalation_of(store, sender)
        assert esc.reason == "bot_unavailable"
        assert not mode.paused  # the bot answers again as soon as Rasa is back
        assert await chat(http, base, sender, "人呢") == [RASA_DOWN_TEXT]
        assert [m["text"] for m in await store.messages(esc.esc_id)] == ["我要举报工厂偷排", "人呢"]
        assert len(await store.list_open()) == 1  # one escalation for the conversation
        await store.claim(esc.esc_id, "alice")     # a person takes it: human mode from now on
        assert await chat(http, base, sender, "有人吗") == [FORWARDED_TEXT]
        await r.close()
    finally:
        await server.close()

