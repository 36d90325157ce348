"""The WeChat gateway end to end: the real gateway process, the real Rasa and
action server, a real Redis, and a local fake of the WeChat API
(tests/fake_wechat.py) that records every customer-service message.

Messages are signed (and in safe mode encrypted) exactly as WeChat does it,
with the pure protocol code of bot/wechat/ (tested on the published vectors
in tests/test_wechat_protocol.py).
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import pytest
import redis as redis_sync
import yaml
from aiohttp.test_utils import TestServer
from yarl import URL

from bot.menu import MenuError, load_menu, parse_menu
from bot.ratelimit import RATE_LIMITED_TEXT
from bot.wechat import (
    WeChatCrypto,
    make_msg_signature,
    make_signature,
    parse_message,
    utf8_len,
)
from bot.wechat_handler import (
    APOLOGY_TEXT,
    EMPTY_TEXT,
    UNKNOWN_CLICK_TEXT,
    UNSUPPORTED_TEXT,
    VOICE_NOT_RECOGNIZED_TEXT,
    parse_raw_query,
    plan_replies,
)
from core.keys import Keys
from core.settings import Settings
from scripts import redis_server
from tests import fake_wechat as fw

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "gh_0123456789ab"
CRYPTO = WeChatCrypto(fw.TOKEN, fw.ENCODING_AES_KEY, fw.APPID)
WELCOME = load_menu().welcome


# -- helpers -------------------------------------------------------------------------

def new_openid() -> str:
    return "oTest" + uuid.uuid4().hex[:23]


def new_msg_id() -> str:
    return str(uuid.uuid4().int % 10**19)


def msg_xml(openid: str, msg_type: str, *, create_time: int | None = None, msg_id: str | None = None,
            **fields) -> str:
    """A callback body as WeChat builds it: strings in CDATA, numbers bare."""
    parts = [f"<ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>",
             f"<FromUserName><![CDATA[{openid}]]></FromUserName>",
             f"<CreateTime>{create_time or int(time.time())}</CreateTime>",
             f"<MsgType><![CDATA[{msg_type}]]></MsgType>"]
    for name, value in fields.items():
        parts.append(f"<{name}>{value}</{name}>" if isinstance(value, (int, float))
                     else f"<{name}><![CDATA[{value}]]></{name}>")
    if msg_id:
        parts.append(f"<MsgId>{msg_id}</MsgId>")
    return "<xml>" + "".join(parts) + "</xml>"


def text_xml(openid: str, content: str, msg_id: str | None = None) -> str:
    return msg_xml(openid, "text", Content=content, msg_id=msg_id or new_msg_id())


def event_xml(openid: str, event: str, key: str | None = None) -> str:
    fields = {"Event": event}
    if key is not None:
        fields["EventKey"] = key
    return msg_xml(openid, "event", **fields)


class Reply:
    def __init__(self, status: int, body: str, content: str | None, xml: str | None, envelope: dict | None):
        self.status, self.body, self.content, self.xml, self.envelope = status, body, content, xml, envelope


async def post_wechat(session: aiohttp.ClientSession, base: str, xml: str, *, mode: str = "plain",
                      ts: str | None = None, nonce: str | None = None, signature: str | None = None,
                      msg_signature: str | None = None, crypto: WeChatCrypto = CRYPTO) -> Reply:
    """POST one message the way WeChat does in plain, compat or safe mode, and
    decode the reply (checking its signature in safe mode)."""
    ts = ts or str(int(time.time()))
    nonce = nonce or str(uuid.uuid4().int % 10**9)
    openid = parse_message(xml).from_user
    query = {"signature": signature or make_signature(fw.TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce,
             "openid": openid}
    if mode == "plain":
        body = xml
    else:
        encrypt = crypto.encrypt(xml)
        query["encrypt_type"] = "aes"
        query["msg_signature"] = msg_signature or make_msg_signature(fw.TOKEN, ts, nonce, encrypt)
        enc = f"<Encrypt><![CDATA[{encrypt}]]></Encrypt>"
        body = (xml.replace("</xml>", enc + "</xml>") if mode == "compat"
                else f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>{enc}</xml>")
    async with session.post(f"{base}/wechat", params=query, data=body.encode()) as r:
        text = await r.text()
        status = r.status
    if status != 200 or text == "success":
        return Reply(status, text, None, None, None)
    envelope = None
    reply_xml = text
    if mode != "plain":
        env = parse_raw_envelope(text)
        envelope = env
        assert env["Nonce"] != nonce, "the reply must be encrypted with a fresh nonce"
        reply_xml = CRYPTO.decrypt_message(text, env["MsgSignature"], env["TimeStamp"], env["Nonce"])
    parsed = parse_message(reply_xml)
    assert parsed.msg_type == "text"
    assert parsed.to_user == openid and parsed.from_user == ACCOUNT
    return Reply(status, text, parsed.content, reply_xml, envelope)


def parse_raw_envelope(text: str) -> dict:
    import defusedxml.ElementTree as ET

    root = ET.fromstring(text)
    return {child.tag: child.text or "" for child in root}


async def tracker_events(session: aiohttp.ClientSession, rasa_url: str, sender: str) -> list[dict]:
    async with session.get(f"{rasa_url}/conversations/{sender}/tracker") as r:
        assert r.status == 200
        return (await r.json()).get("events") or []


def user_events(events: list[dict]) -> list[dict]:
    return [e for e in events if e.get("event") == "user"]


def bot_texts_after(events: list[dict], user_text: str) -> list[str]:
    """The bot's texts in answer to the last user message `user_text`."""
    idx = max(i for i, e in enumerate(events) if e.get("event") == "user" and e.get("text") == user_text)
    out = []
    for e in events[idx + 1:]:
        if e.get("event") == "user":
            break
        if e.get("event") == "bot" and e.get("text"):
            out.append(e["text"])
    return out


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture(scope="module")
def slow_gateway(stack, fake_wechat, tmp_path_factory):
    """A second gateway process (same Redis, same Rasa) whose Rasa answers 3 s
    late, through a delaying proxy, with a 0.5 s reply budget."""
    proxy = fw.DelayProxy(stack.rasa_url, delay_s=3.0).start()
    port = redis_server.free_port()
    svc = stack.gateway_service(port)
    svc.env.update({"RASA_URL": proxy.url, "REPLY_BUDGET_S": "0.5"})
    svc.log_path = tmp_path_factory.mktemp("slowgw") / "gateway.log"
    svc.start()
    try:
        svc.wait_healthy(30)
        yield f"http://127.0.0.1:{port}"
    finally:
        svc.stop()
        proxy.stop()


# -- pure parts ----------------------------------------------------------------------

def test_raw_query_keeps_plus_signs():
    q = parse_raw_query("echostr=ab+c%2Bd/e%3D%3D&timestamp=1&x=1&x=2&flag")
    assert q["echostr"] == "ab+c+d/e=="
    assert q["x"] == "1" and q["flag"] == ""


def test_plan_replies_joins_what_fits_and_cuts_the_rest():
    assert plan_replies(["第一条", "第二条"]) == ["第一条\n\n第二条"]
    assert plan_replies([]) == [] and plan_replies(["", "  "]) == []
    a, b = "甲" * 600, "乙" * 600  # 1800 bytes each
    out = plan_replies([a, b, "丙"])
    assert out == [a, b + "\n\n丙"]
    long = "\n".join(f"第{i}行：" + "材料" * 40 for i in range(40))
    out = plan_replies([long])
    assert len(out) > 1 and all(utf8_len(m) <= 2048 for m in out)
    assert "".join(out).replace("\n", "") == long.replace("\n", "")


def test_menu_command_prints_wechat_menu_json():
    r = subprocess.run([sys.executable, "-m", "bot.menu"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    menu = json.loads(r.stdout)
    assert 1 <= len(menu["button"]) <= 3
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    intents = {i if isinstance(i, str) else next(iter(i)) for i in domain["intents"]}
    data = yaml.safe_load((ROOT / "knowledge" / "menu.yml").read_text(encoding="utf-8"))
    assert data["source"] and data["valid_as_of"]
    for top in menu["button"]:
        assert len(top["name"].encode()) <= 16 and 1 <= len(top["sub_button"]) <= 5
        for sub in top["sub_button"]:
            assert sub["type"] == "click" and len(sub["name"].encode()) <= 60
    for group in data["menu"]:
        for item in group["items"]:
            if "intent" in item:
                assert item["intent"] in intents
    assert "\\u" not in r.stdout  # Chinese characters, not escapes


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["menu"].append(d["menu"][0]) or d["menu"].append(d["menu"][0]), "top-level"),
    (lambda d: d["menu"][0].update(name="环境影响评价办事"), "bytes"),
    (lambda d: d["menu"][1]["items"].append(dict(d["menu"][0]["items"][0])), "twice"),
    (lambda d: d["menu"][0]["items"][0].update(intent="no_such_intent"), "domain.yml"),
    (lambda d: d["menu"][0]["items"][0].update(text="你好"), "exactly one"),
    (lambda d: d.pop("valid_as_of"), "valid_as_of"),
])
def test_menu_file_rules(mutate, message):
    data = yaml.safe_load((ROOT / "knowledge" / "menu.yml").read_text(encoding="utf-8"))
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    intents = {i if isinstance(i, str) else next(iter(i)) for i in domain["intents"]}
    parse_menu(data, intents)  # the real file is fine
    mutate(data)
    with pytest.raises(MenuError, match=message):
        parse_menu(data, intents)


# -- handshake -----------------------------------------------------------------------

async def test_handshake_plain_mode(stack, http):
    ts, nonce = str(int(time.time())), "738291"
    sig = make_signature(fw.TOKEN, ts, nonce)
    async with http.get(f"{stack.gateway_url}/wechat", params={
            "signature": sig, "timestamp": ts, "nonce": nonce, "echostr": "5910285721394"}) as r:
        assert r.status == 200 and await r.text() == "5910285721394"
    async with http.get(f"{stack.gateway_url}/wechat", params={
            "signature": "0" * 40, "timestamp": ts, "nonce": nonce, "echostr": "1"}) as r:
        assert r.status == 403
    old = str(int(time.time()) - 3600)
    async with http.get(f"{stack.gateway_url}/wechat", params={
            "signature": make_signature(fw.TOKEN, old, nonce), "timestamp": old, "nonce": nonce,
            "echostr": "1"}) as r:
        assert r.status == 403, "a stale timestamp is a replay"


async def test_handshake_safe_mode_reads_plus_from_raw_query(stack, http):
    # An encrypted echostr whose base64 holds '+', sent unescaped as WeChat does.
    for _ in range(200):
        echostr = CRYPTO.encrypt("echo-20261129")
        if "+" in echostr:
            break
    assert "+" in echostr
    ts, nonce = str(int(time.time())), "9281"
    sig = make_msg_signature(fw.TOKEN, ts, nonce, echostr)
    url = URL(f"{stack.gateway_url}/wechat?msg_signature={sig}&timestamp={ts}&nonce={nonce}&echostr={echostr}",
              encoded=True)
    async with http.get(url) as r:
        assert r.status == 200 and await r.text() == "echo-20261129"
    bad = URL(f"{stack.gateway_url}/wechat?msg_signature={'1' * 40}&timestamp={ts}&nonce={nonce}&echostr={echostr}",
              encoded=True)
    async with http.get(bad) as r:
        assert r.status == 403


# -- conversations -------------------------------------------------------------------

async def assert_follow_ups(fake_wechat, openid: str, expected: list[str]) -> None:
    """What did not fit in the passive replies went out once, in order, through the
    customer-service API."""
    if expected:
        await asyncio.to_thread(fake_wechat.wait_sent, openid, len(expected), 30)
    await asyncio.sleep(1.0)  # and nothing more follows
    assert [m["text"]["content"] for m in fake_wechat.sent(openid)] == expected


@pytest.mark.parametrize("mode", ["plain", "safe", "compat"])
async def test_conversation_through_gateway_rasa_and_redis(stack, http, fake_wechat, mode):
    openid = new_openid()
    follow_ups: list[str] = []
    for text in ("你好", "环评报告表要交什么材料"):
        reply = await post_wechat(http, stack.gateway_url, text_xml(openid, text), mode=mode)
        assert reply.status == 200 and reply.content, reply.body
        events = await tracker_events(http, stack.rasa_url, openid)
        said = bot_texts_after(events, text)
        assert said, f"Rasa said nothing to {text!r}"
        planned = plan_replies(said)
        assert reply.content == planned[0]
        follow_ups += planned[1:]
        if mode != "plain":
            env = reply.envelope
            assert set(env) == {"Encrypt", "MsgSignature", "TimeStamp", "Nonce"}
            assert abs(int(env["TimeStamp"]) - time.time()) < 60
    users = [e["text"] for e in user_events(await tracker_events(http, stack.rasa_url, openid))]
    assert users == ["你好", "环评报告表要交什么材料"]
    # The sender Rasa saw is the OpenID, and the channel metadata says WeChat.
    last = user_events(await tracker_events(http, stack.rasa_url, openid))[-1]
    assert last["metadata"]["channel"] == "wechat"
    await assert_follow_ups(fake_wechat, openid, follow_ups)


async def test_three_concurrent_retries_reach_rasa_once(stack, http, fake_wechat):
    openid, msg_id = new_openid(), new_msg_id()
    xml = text_xml(openid, "环评登记表要交什么材料", msg_id=msg_id)
    replies = await asyncio.gather(*[post_wechat(http, stack.gateway_url, xml, mode="safe") for _ in range(3)])
    contents = {r.content for r in replies}
    assert len(contents) == 1 and None not in contents, [r.body for r in replies]
    assert len({r.envelope["Nonce"] for r in replies}) == 3, "each try is encrypted afresh"
    # A later retry gets the same reply from Redis.
    again = await post_wechat(http, stack.gateway_url, xml, mode="plain")
    assert again.content == replies[0].content
    events = await tracker_events(http, stack.rasa_url, openid)
    assert [e["text"] for e in user_events(events)] == ["环评登记表要交什么材料"]
    planned = plan_replies(bot_texts_after(events, "环评登记表要交什么材料"))
    assert replies[0].content == planned[0]
    await assert_follow_ups(fake_wechat, openid, planned[1:])


async def test_event_retries_are_keyed_by_sender_and_create_time(stack, http):
    openid = new_openid()
    xml = msg_xml(openid, "event", create_time=int(time.time()), Event="CLICK", EventKey="EIA_PROCESS")
    r1, r2 = await asyncio.gather(post_wechat(http, stack.gateway_url, xml),
                                  post_wechat(http, stack.gateway_url, xml))
    assert r1.content and r1.content == r2.content
    users = user_events(await tracker_events(http, stack.rasa_url, openid))
    assert len(users) == 1 and users[0]["parse_data"]["intent"]["name"] == "ask_process"


async def test_retry_on_another_gateway_process_gets_the_same_reply(stack, slow_gateway, http):
    """The processes share Redis: a retry that WeChat sends to another gateway
    process returns the reply the first one stored, without asking Rasa again."""
    openid, msg_id = new_openid(), new_msg_id()
    xml = text_xml(openid, "环评报告书要交什么材料", msg_id=msg_id)
    first = await post_wechat(http, stack.gateway_url, xml)
    retry = await post_wechat(http, slow_gateway, xml)
    assert first.content and retry.content == first.content
    assert len(user_events(await tracker_events(http, stack.rasa_url, openid))) == 1


# -- the 5-second rule -----------------------------------------------------------------

async def test_slow_answer_is_delivered_through_customer_service_api(stack, slow_gateway, fake_wechat, http):
    openid, msg_id = new_openid(), new_msg_id()
    xml = text_xml(openid, "你好", msg_id=msg_id)
    started = time.monotonic()
    reply = await post_wechat(http, slow_gateway, xml, mode="safe")
    elapsed = time.monotonic() - started
    assert reply.status == 200 and reply.body == "success"
    assert elapsed < 2.5, f"passive answer took {elapsed:.2f} s; the budget is 0.5 s, Rasa needs 3 s"
    # WeChat retries while the answer is still on its way: same `success`, no second Rasa call.
    retry = await post_wechat(http, slow_gateway, xml, mode="safe")
    assert retry.body == "success"
    sent = await asyncio.to_thread(fake_wechat.wait_sent, openid, 1, 30)
    await asyncio.sleep(1.0)  # nothing else may follow
    assert fake_wechat.sent(openid) == sent and len(sent) == 1
    events = await tracker_events(http, stack.rasa_url, openid)
    assert len(user_events(events)) == 1
    expected = plan_replies(bot_texts_after(events, "你好"))
    assert sent[0] == {"touser": openid, "msgtype": "text", "text": {"content": expected[0]}}
    attempt = fake_wechat.attempts_for(openid)[0]
    assert json.loads(attempt.body.decode("utf-8")) == sent[0]
    assert b"\\u" not in attempt.body, "Chinese is sent as UTF-8, not as \\u escapes"
    # A retry after delivery still answers `success`: the answer must not come twice.
    late_retry = await post_wechat(http, slow_gateway, xml)
    assert late_retry.body == "success"


async def test_token_refreshed_once_on_40001(stack, slow_gateway, fake_wechat, redis_url, key_prefix, http):
    openid = new_openid()
    fake_wechat.fail_next_send(40001)
    reply = await post_wechat(http, slow_gateway, text_xml(openid, "谢谢"))
    assert reply.body == "success"
    await asyncio.to_thread(fake_wechat.wait_sent, openid, 1, 30)
    attempts = fake_wechat.attempts_for(openid)
    assert [a.errcode for a in attempts] == [40001, 0]
    assert attempts[0].access_token != attempts[1].access_token
    assert attempts[1].access_token == fake_wechat.current_token
    assert fake_wechat.token_requests[-1]["force_refresh"] is True
    r = redis_sync.Redis.from_url(redis_url, decode_responses=True)
    try:
        assert r.get(Keys(key_prefix).wx_token()) == fake_wechat.current_token
    finally:
        r.close()


async def test_access_token_fetched_once_for_all_processes(fake_wechat, redis_url):
    """Five independent clients (as five processes would be) ask at once: one
    stable_token call, one shared value in Redis with WeChat's expiry minus a margin."""
    from bot.wechat_api import WeChatApi
    from core.redis_conn import create_redis

    prefix = f"tok{uuid.uuid4().hex[:8]}:"
    settings = Settings(redis_url=redis_url, redis_key_prefix=prefix, wechat_appid=fw.APPID,
                        wechat_appsecret=fw.SECRET, wechat_api_base=fake_wechat.url)
    clients, sessions = [], []
    fake_wechat.delay_s = 0.3
    before = len(fake_wechat.token_requests)
    try:
        for _ in range(5):
            s = aiohttp.ClientSession()
            sessions.append(s)
            clients.append(WeChatApi(settings, create_redis(settings), Keys(prefix), s))
        tokens = await asyncio.gather(*[c.access_token() for c in clients])
        assert len(set(tokens)) == 1
        assert len(fake_wechat.token_requests) - before == 1
        ttl = await clients[0].redis.ttl(Keys(prefix).wx_token())
        assert 6500 < ttl <= 7200 - 300
        assert fake_wechat.token_requests[-1] == {"grant_type": "client_credential", "appid": fw.APPID,
                                                  "secret": fw.SECRET, "force_refresh": False}
    finally:
        fake_wechat.delay_s = 0.0
        for c in clients:
            await c.redis.delete(Keys(prefix).wx_token(), Keys(prefix).wx_token_lock())
            await c.redis.close()
        for s in sessions:
            await s.close()


# -- guards ------------------------------------------------------------------------------

async def test_body_over_64_kib_gets_413(stack, http):
    openid = new_openid()
    xml = text_xml(openid, "污" * 30000)  # ~90 KB
    ts, nonce = str(int(time.time())), "1"
    params = {"signature": make_signature(fw.TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce}
    async with http.post(f"{stack.gateway_url}/wechat", params=params, data=xml.encode()) as r:
        assert r.status == 413

    async def chunks():
        for _ in range(20):
            yield b"<!-- padding -->" * 256  # 4 KiB each, 80 KiB in all, no Content-Length

    async with http.post(f"{stack.gateway_url}/wechat", params=params, data=chunks()) as r:
        assert r.status == 413
    assert user_events(await tracker_events(http, stack.rasa_url, openid)) == []


@pytest.mark.parametrize("body", [
    '<!DOCTYPE xml [<!ENTITY x "环评">]><xml><ToUserName>a</ToUserName><FromUserName>{o}</FromUserName>'
    '<CreateTime>1</CreateTime><MsgType>text</MsgType><Content>&x;</Content><MsgId>7</MsgId></xml>',
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
    '<xml><FromUserName>{o}</FromUserName><Content>&lol2;</Content></xml>',
    '<!DOCTYPE xml [<!ENTITY ext SYSTEM "file:///etc/passwd">]><xml><ToUserName>a</ToUserName>'
    '<FromUserName>{o}</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType>'
    '<Content>&ext;</Content></xml>',
    '<xml><ToUserName>a</ToUserName>',
    '\x00\x01garbage',
])
@pytest.mark.parametrize("mode", ["plain", "safe"])
async def test_dtd_entities_and_garbage_are_refused(stack, http, body, mode):
    openid = new_openid()
    body = body.replace("{o}", openid)
    ts, nonce = str(int(time.time())), "55"
    params = {"signature": make_signature(fw.TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce}
    data = body.encode()
    if mode == "safe":
        encrypt = CRYPTO.encrypt(body)
        params.update(encrypt_type="aes", msg_signature=make_msg_signature(fw.TOKEN, ts, nonce, encrypt))
        data = f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>".encode()
    async with http.post(f"{stack.gateway_url}/wechat", params=params, data=data) as r:
        assert r.status == 400
    assert user_events(await tracker_events(http, stack.rasa_url, openid)) == []


async def test_signature_timestamp_and_appid_checks(stack, http):
    openid = new_openid()
    xml = text_xml(openid, "你好")
    assert (await post_wechat(http, stack.gateway_url, xml, signature="f" * 40)).status == 403
    assert (await post_wechat(http, stack.gateway_url, xml, mode="safe", msg_signature="e" * 40)).status == 403
    stale = str(int(time.time()) - 301)
    assert (await post_wechat(http, stack.gateway_url, xml, ts=stale)).status == 403
    assert (await post_wechat(http, stack.gateway_url, xml, mode="safe", ts=stale)).status == 403
    future = str(int(time.time()) + 600)
    assert (await post_wechat(http, stack.gateway_url, xml, ts=future)).status == 403
    other = WeChatCrypto(fw.TOKEN, fw.ENCODING_AES_KEY, "wx_other_account")
    assert (await post_wechat(http, stack.gateway_url, xml, mode="safe", crypto=other)).status == 400
    assert user_events(await tracker_events(http, stack.rasa_url, openid)) == []


async def test_control_characters_are_stripped(stack, http):
    openid = new_openid()
    reply = await post_wechat(http, stack.gateway_url, text_xml(openid, "环评报告表\x7f要交\x85什么\x9b材料\r\n"))
    assert reply.content
    users = user_events(await tracker_events(http, stack.rasa_url, openid))
    assert [e["text"] for e in users] == ["环评报告表要交什么材料"]
    only_controls = await post_wechat(http, stack.gateway_url, text_xml(openid, "\x7f\x80\x9f"))
    assert only_controls.content == EMPTY_TEXT


async def test_rate_limit_per_openid(stack, http):
    openid, other = new_openid(), new_openid()
    for _ in range(20):  # cheap messages the gateway answers itself still count
        r = await post_wechat(http, stack.gateway_url, msg_xml(openid, "video", MediaId="m", msg_id=new_msg_id()))
        assert r.content == UNSUPPORTED_TEXT
    limited = await post_wechat(http, stack.gateway_url, text_xml(openid, "我要举报"))
    assert limited.status == 200 and limited.content == RATE_LIMITED_TEXT
    assert user_events(await tracker_events(http, stack.rasa_url, openid)) == []
    # Another user is not affected.
    assert (await post_wechat(http, stack.gateway_url, event_xml(other, "subscribe"))).content == WELCOME


async def test_web_chat_rate_limit(stack, http):
    sender = "web-" + uuid.uuid4().hex[:16]
    for _ in range(20):
        async with http.post(f"{stack.gateway_url}/api/chat",
                             json={"sender": sender, "type": "click", "key": "HELP"}) as r:
            assert (await r.json())["messages"][0]["text"] == WELCOME
    async with http.post(f"{stack.gateway_url}/api/chat", json={"sender": sender, "text": "你好"}) as r:
        body = await r.json()
    assert body["rate_limited"] is True and body["messages"][0]["text"] == RATE_LIMITED_TEXT


async def test_unexpected_failure_answers_apology_never_5xx(fake_wechat, caplog):
    """Redis is unreachable: the gateway still answers 200 with a short apology,
    and the log names the user by a masked OpenID only."""
    settings = Settings(redis_url=f"redis://127.0.0.1:{redis_server.free_port()}/0",
                        redis_key_prefix="down:", rasa_url="http://127.0.0.1:9",
                        wechat_token=fw.TOKEN, wechat_appid=fw.APPID, wechat_appsecret=fw.SECRET,
                        wechat_encoding_aes_key=fw.ENCODING_AES_KEY, wechat_api_base=fake_wechat.url)
    from bot.app import create_app

    server = TestServer(create_app(settings))
    await server.start_server(access_log=None)  # as `python -m bot` runs it
    openid = new_openid()
    try:
        caplog.set_level(logging.INFO)
        async with aiohttp.ClientSession() as s:
            for mode in ("plain", "safe"):
                r = await post_wechat(s, str(server.make_url("")).rstrip("/"), text_xml(openid, "你好"), mode=mode)
                assert r.status == 200
                assert r.content == APOLOGY_TEXT
    finally:
        await server.close()
    log_text = caplog.text
    assert openid[:4] + "***" + openid[-3:] in log_text
    assert openid not in log_text


# -- message types -----------------------------------------------------------------------

async def test_voice_uses_recognition_or_asks_to_type(stack, http):
    openid = new_openid()
    r = await post_wechat(http, stack.gateway_url, msg_xml(
        openid, "voice", MediaId="voice-media-1", Format="amr", Recognition="环评报告表要交什么材料。",
        msg_id=new_msg_id()))
    assert r.content
    users = user_events(await tracker_events(http, stack.rasa_url, openid))
    assert [e["text"] for e in users] == ["环评报告表要交什么材料。"]
    assert users[0]["metadata"]["kind"] == "voice"
    silent = new_openid()
    r = await post_wechat(http, stack.gateway_url, msg_xml(
        silent, "voice", MediaId="voice-media-2", Format="amr", msg_id=new_msg_id()))
    assert r.content == VOICE_NOT_RECOGNIZED_TEXT
    assert user_events(await tracker_events(http, stack.rasa_url, silent)) == []


async def test_image_and_location_reach_rasa_as_intents(stack, http):
    openid = new_openid()
    r = await post_wechat(http, stack.gateway_url, msg_xml(
        openid, "image", PicUrl="http://mmbiz.qpic.cn/test.jpg", MediaId="media-img-42", msg_id=new_msg_id()))
    assert r.content
    r = await post_wechat(http, stack.gateway_url, msg_xml(
        openid, "location", Location_X=31.2304, Location_Y=121.4737, Scale=15, Label="XX镇XX村东头",
        msg_id=new_msg_id()), mode="safe")
    assert r.content
    users = user_events(await tracker_events(http, stack.rasa_url, openid))
    assert [u["parse_data"]["intent"]["name"] for u in users] == ["send_image", "send_location"]
    img = {e["entity"]: e["value"] for e in users[0]["parse_data"]["entities"]}
    assert img == {"media_id": "media-img-42", "pic_url": "http://mmbiz.qpic.cn/test.jpg"}
    loc = {e["entity"]: e["value"] for e in users[1]["parse_data"]["entities"]}
    assert loc == {"latitude": 31.2304, "longitude": 121.4737, "location_label": "XX镇XX村东头"}


async def test_link_is_passed_on_as_text(stack, http):
    openid = new_openid()
    r = await post_wechat(http, stack.gateway_url, msg_xml(
        openid, "link", Title="河道发现死鱼", Description="城南河段", Url="https://example.org/a",
        msg_id=new_msg_id()))
    assert r.content
    users = user_events(await tracker_events(http, stack.rasa_url, openid))
    assert users[0]["text"] == "河道发现死鱼\n城南河段\nhttps://example.org/a"
    assert users[0]["metadata"]["kind"] == "link"


async def test_events_subscribe_unsubscribe_click_and_others(stack, http):
    openid = new_openid()
    assert (await post_wechat(http, stack.gateway_url, event_xml(openid, "subscribe", "qrscene_1"))).content == WELCOME
    r = await post_wechat(http, stack.gateway_url, event_xml(openid, "unsubscribe"))
    assert r.status == 200 and r.body == "success"
    assert (await post_wechat(http, stack.gateway_url, event_xml(openid, "VIEW", "https://x"))).body == "success"
    assert (await post_wechat(http, stack.gateway_url, event_xml(openid, "LOCATION"))).body == "success"
    assert (await post_wechat(http, stack.gateway_url, event_xml(openid, "CLICK", "HELP"))).content == WELCOME
    assert (await post_wechat(http, stack.gateway_url, event_xml(openid, "CLICK", "NOPE"))).content == UNKNOWN_CLICK_TEXT
    assert user_events(await tracker_events(http, stack.rasa_url, openid)) == []
    r = await post_wechat(http, stack.gateway_url, event_xml(openid, "CLICK", "EIA_MATERIALS"), mode="safe")
    assert r.content
    users = user_events(await tracker_events(http, stack.rasa_url, openid))
    assert [u["parse_data"]["intent"]["name"] for u in users] == ["ask_materials"]
    assert r.content == plan_replies(bot_texts_after(
        await tracker_events(http, stack.rasa_url, openid), users[0]["text"]))[0]


@pytest.mark.parametrize("msg_type", ["video", "shortvideo", "file", "miniprogrampage"])
async def test_other_message_types_get_a_friendly_prompt(stack, http, msg_type):
    openid = new_openid()
    r = await post_wechat(http, stack.gateway_url, msg_xml(openid, msg_type, MediaId="m1", msg_id=new_msg_id()))
    assert r.content == UNSUPPORTED_TEXT
    assert user_events(await tracker_events(http, stack.rasa_url, openid)) == []


# -- web chat API (the page itself: tests/test_webchat_browser.py) ------------------------

PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d4944415478da63f8cfc0f01f0005000201a5d8e1d50000000049454e44ae426082")


async def test_web_chat_image_location_and_menu_go_through_the_pipeline(stack, http):
    sender = "web-" + uuid.uuid4().hex[:16]
    base = stack.gateway_url
    async with http.post(f"{base}/api/upload", params={"sender": sender}, data=PNG_1PX,
                         headers={"Content-Type": "image/png"}) as r:
        assert r.status == 200
        up = await r.json()
    async with http.get(f"{base}{up['url']}") as r:
        assert r.status == 200 and await r.read() == PNG_1PX and r.content_type == "image/png"
    async with http.post(f"{base}/api/chat", json={"sender": sender, "type": "image", "upload": up["upload"]}) as r:
        assert r.status == 200 and (await r.json())["messages"]
    async with http.post(f"{base}/api/chat", json={
            "sender": sender, "type": "location", "latitude": 31.5, "longitude": 120.25, "label": ""}) as r:
        assert r.status == 200
    async with http.post(f"{base}/api/chat", json={"sender": sender, "type": "location", "label": "城南污水厂"}) as r:
        assert r.status == 200
    async with http.post(f"{base}/api/chat", json={"sender": sender, "type": "click", "key": "CONTACT"}) as r:
        assert r.status == 200 and (await r.json())["messages"]
    users = user_events(await tracker_events(http, stack.rasa_url, sender))
    assert [u["parse_data"]["intent"]["name"] for u in users] == [
        "send_image", "send_location", "send_location", "ask_contact"]
    ents = [{e["entity"]: e["value"] for e in u["parse_data"]["entities"]} for u in users]
    assert ents[0] == {"media_id": f"web:{up['upload']}", "pic_url": up["url"]}
    assert ents[1] == {"latitude": 31.5, "longitude": 120.25, "location_label": "31.5,120.25"}
    assert ents[2] == {"location_label": "城南污水厂"}
    assert all(u["metadata"]["channel"] == "web" for u in users)


@pytest.mark.parametrize("kind, body, status", [
    ("upload", b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", 400),
    ("upload", b"\xff\xd8\xff" + b"0" * (5 * 1024 * 1024), 413),
    ("chat", {"type": "image", "upload": "../../etc/passwd"}, 400),
    ("chat", {"type": "image", "upload": "0" * 32 + ".png"}, 400),
    ("chat", {"type": "location", "latitude": 91, "longitude": 0}, 400),
    ("chat", {"type": "location"}, 400),
    ("chat", {"type": "sticker"}, 400),
])
async def test_web_chat_bad_input(stack, http, kind, body, status):
    sender = "web-" + uuid.uuid4().hex[:16]
    if kind == "upload":
        async with http.post(f"{stack.gateway_url}/api/upload", params={"sender": sender}, data=body) as r:
            assert r.status == status and (await r.json())["error"]
    else:
        async with http.post(f"{stack.gateway_url}/api/chat", json={"sender": sender, **body}) as r:
            assert r.status == status and (await r.json())["error"]
    async with http.get(f"{stack.gateway_url}/uploads/..%2F..%2Fetc%2Fpasswd") as r:
        assert r.status == 404
