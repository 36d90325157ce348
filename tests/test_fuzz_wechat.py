"""Property-based fuzzing (hypothesis) of the WeChat protocol layer and of the
real /wechat endpoint.

Every case is a request WeChat could send, or one an attacker could: plain,
compatible and safe mode; valid or malformed XML; oversized bodies; wrong
`signature` / `msg_signature`; ciphertexts made with another key or for
another AppID, truncated, bit-flipped or not base64 at all (signed correctly,
so decryption really runs); DTDs, internal and external entities, "billion
laughs"; junk query strings with broken %-escapes and unescaped '+'.

Properties:
- protocol layer (bot/wechat + the pure top of bot/wechat_handler): the
  request pipeline verify → decrypt → parse → classify raises nothing but
  `WeChatProtocolError`, and a correctly signed, valid message always parses;
- endpoint (the real app from bot.app.create_app, served by aiohttp on
  127.0.0.1 against the real Redis, with Rasa unreachable so the degraded path
  runs too): never a 5xx, only 200/400/403/413, no error logged with a
  traceback (the handler's catch-all would hide a crash behind `success`),
  a valid message always gets 200, and a safe-mode answer always decrypts with
  a valid signature and is addressed to the sender.

At least 1,000 cases per property per run (max_examples=1000).
"""
from __future__ import annotations

import base64
import http.client
import logging
import os
import time
import uuid
from dataclasses import dataclass
from typing import Optional
from urllib.parse import quote

import pytest
import redis as redis_sync
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bot.app import create_app
from bot.menu import load_menu
from bot.wechat import (
    WeChatCrypto,
    WeChatProtocolError,
    check_signature,
    make_msg_signature,
    make_signature,
    parse_message,
    timestamp_fresh,
)
from bot.wechat.replies import cdata
from bot.wechat_handler import MAX_BODY_BYTES, Local, classify, parse_raw_query
from core.settings import Settings
from scripts import redis_server
from tests import fake_wechat as fw
from tests.fake_wechat import ThreadServer

CASES = settings(max_examples=1000, deadline=None, database=None, derandomize=False,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                        HealthCheck.filter_too_much])
ACCOUNT = "gh_fuzz00000001"
CRYPTO = WeChatCrypto(fw.TOKEN, fw.ENCODING_AES_KEY, fw.APPID)
OTHER_KEY = WeChatCrypto(fw.TOKEN, "b3RoZXIta2V5LW90aGVyLWtleS1vdGhlci1rZXktMzI", fw.APPID)
OTHER_APPID = WeChatCrypto(fw.TOKEN, fw.ENCODING_AES_KEY, "wxotheraccount00")
MENU = load_menu()

# -- strategies ---------------------------------------------------------------------------

# Text as users type it, plus what breaks naive XML handling.
nasty = st.sampled_from([
    "]]>", "<![CDATA[", "&amp;", "&lt;", "&#0;", "&#x1F600;", "&lol;", "&ext;", "\x00", "\x1b[31m",
    "\ufffe", "\r\n", "<Content>", "</xml>", "%00", "+", "环评报告表要交什么材料", "河里有死鱼！", "🐟",
])
user_text = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=80),
    st.lists(st.one_of(nasty, st.text(max_size=5)), max_size=8).map("".join).map(
        lambda s: "".join(ch for ch in s if not "\ud800" <= ch <= "\udfff")),
)
MSG_TYPES = ["text", "image", "voice", "location", "link", "event", "video", "shortvideo", "file", "TEXT",
             "miniprogrampage", "", "x" * 40]
EVENTS = ["subscribe", "unsubscribe", "SCAN", "CLICK", "VIEW", "LOCATION", "TEMPLATESENDJOBFINISH", "nope"]
EVENT_KEYS = ["HELP", "EIA_MATERIALS", "CONTACT", "NOPE", "", "qrscene_1", "<x>"]
numberish = st.one_of(st.integers(-10**21, 10**21).map(str), st.floats(allow_nan=True).map(str),
                      st.sampled_from(["", " 12 ", "1e5", "nan", "0x10", "３"]))


def _field(name: str, value: str, style: str) -> str:
    if style == "cdata":
        return f"<{name}>{cdata(value)}</{name}>"
    if style == "escaped":
        return f"<{name}>{value.replace('&', '&amp;').replace('<', '&lt;')}</{name}>"
    return f"<{name}>{value}</{name}>"  # raw: may well be malformed


@st.composite
def message_xml(draw, openid: str) -> str:
    """A callback document close to WeChat's, valid or nearly so."""
    style = draw(st.sampled_from(["cdata", "cdata", "escaped", "raw"]))
    fields = [("ToUserName", ACCOUNT), ("FromUserName", openid),
              ("CreateTime", draw(st.one_of(st.just(str(int(time.time())))), numberish)),
              ("MsgType", draw(st.sampled_from(MSG_TYPES)))]
    extra = draw(st.sampled_from(["text", "text", "image", "voice", "location", "link", "event", "none"]))
    if extra == "text":
        fields.append(("Content", draw(user_text)))
    elif extra == "image":
        fields += [("PicUrl", draw(user_text)), ("MediaId", draw(user_text))]
    elif extra == "voice":
        fields += [("MediaId", "m1"), ("Format", "amr"), ("Recognition", draw(user_text))]
    elif extra == "location":
        fields += [("Location_X", draw(st.one_of(st.just("31.2304"), numberish))),
                   ("Location_Y", draw(st.one_of(st.just("121.4737"), numberish))),
                   ("Scale", draw(st.one_of(st.just("15"), numberish))), ("Label", draw(user_text))]
    elif extra == "link":
        fields += [("Title", draw(user_text)), ("Description", draw(user_text)), ("Url", draw(user_text))]
    elif extra == "event":
        fields += [("Event", draw(st.sampled_from(EVENTS))), ("EventKey", draw(st.sampled_from(EVENT_KEYS)))]
    if draw(st.booleans()):
        fields.append(("MsgId", str(draw(st.integers(0, 2**64)))))
    if draw(st.integers(0, 9)) == 0:  # WeChat adds fields now and then
        fields.append((draw(st.sampled_from(["Unknown", "a-b", "Scale", "Extra"])), draw(user_text)))
    fields = draw(st.permutations(fields))
    return "<xml>" + "".join(_field(n, v, style) for n, v in fields) + "</xml>"


ENTITY_DOCS = [
    '<!DOCTYPE xml [<!ENTITY x "环评">]><xml><ToUserName>a</ToUserName><FromUserName>{o}</FromUserName>'
    '<CreateTime>1</CreateTime><MsgType>text</MsgType><Content>&x;</Content><MsgId>7</MsgId></xml>',
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;"><!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;">]>'
    '<xml><FromUserName>{o}</FromUserName><Content>&lol4;</Content></xml>',
    '<!DOCTYPE xml [<!ENTITY ext SYSTEM "file:///etc/passwd">]><xml><ToUserName>a</ToUserName>'
    '<FromUserName>{o}</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType>'
    '<Content>&ext;</Content></xml>',
    '<!DOCTYPE xml [<!ENTITY % p SYSTEM "http://127.0.0.1:9/evil.dtd"> %p;]><xml><FromUserName>{o}'
    '</FromUserName></xml>',
    '<!DOCTYPE xml SYSTEM "http://127.0.0.1:9/x.dtd"><xml><ToUserName>a</ToUserName>'
    '<FromUserName>{o}</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType></xml>',
    '<xml xmlns:xi="http://www.w3.org/2001/XInclude"><ToUserName>a</ToUserName><FromUserName>{o}</FromUserName>'
    '<CreateTime>1</CreateTime><MsgType>text</MsgType><Content><xi:include href="file:///etc/passwd"/>'
    '</Content></xml>',
    '<?xml version="1.0" encoding="no-such-codec"?><xml><FromUserName>{o}</FromUserName></xml>',
    '<?xml version="1.0" encoding="UTF-16"?><xml><FromUserName>{o}</FromUserName></xml>',
    '<xml><ToUserName>a</ToUserName><FromUserName>{o}</FromUserName><CreateTime>1</CreateTime>'
    '<MsgType><MsgType>text</MsgType></MsgType><Content>&#xD800;</Content></xml>',
    '<xml><ToUserName>a</ToUserName>',
    '\x00\x01garbage',
    '<root><FromUserName>{o}</FromUserName></root>',
    '<xml/>',
]

# Faults and whether they make a request unacceptable in plain / safe mode.
# None: it depends (a flipped bit in the random prefix still decrypts).
FAULTS = {
    "none": (False, False),
    "bad_signature": (True, False),      # safe mode checks msg_signature only
    "no_signature": (True, False),
    "stale": (True, True),
    "future": (True, True),
    "ts_junk": (True, True),
    "junk_query": (None, None),
    "bad_msg_signature": (False, True),
    "other_key": (False, True),
    "other_appid": (False, True),
    "truncated": (False, True),
    "bitflip": (False, None),
    "not_base64": (False, True),
    "no_encrypt_type": (False, True),    # a safe-mode envelope read as plain: no message fields
    "plus_escaped": (False, False),      # '+' sent as %2B is as good as a literal '+'
}
FAULT_NAMES = ["none"] * 8 + sorted(FAULTS)


@dataclass
class Case:
    method: str
    raw_query: str
    body: bytes
    valid: Optional[bool]   # True: must get 200 with a proper answer; None: either way
    safe: bool              # the answer is encrypted
    openid: str
    label: str

    def __repr__(self) -> str:  # keep hypothesis' report readable (bodies can be 120 KB)
        body = self.body if len(self.body) <= 600 else self.body[:600] + b"...(%d bytes)" % len(self.body)
        return (f"Case({self.label}, {self.method} ?{self.raw_query[:300]}, valid={self.valid}, "
                f"body={body!r})")


def _q(params: dict[str, str], keep_plus: bool = True) -> str:
    """Query string as WeChat sends it: base64 '+' left unescaped."""
    safe_chars = "+/=" if keep_plus else "/="
    return "&".join(f"{k}={quote(v, safe=safe_chars)}" for k, v in params.items())


def _parses(xml: str) -> bool:
    try:
        parse_message(xml)
        return True
    except WeChatProtocolError:
        return False


@st.composite
def requests(draw) -> Case:
    openid = "oFuzz" + uuid.uuid4().hex[:23]
    kind = draw(st.sampled_from(["message", "message", "message", "entities", "garbage", "oversized"]))
    if kind == "message":
        xml = draw(message_xml(openid))
    elif kind == "entities":
        xml = draw(st.sampled_from(ENTITY_DOCS)).replace("{o}", openid)
    elif kind == "garbage":
        xml = draw(st.one_of(st.binary(max_size=300).map(lambda b: b.decode("latin-1")), st.text(max_size=300)))
        xml = "".join(ch for ch in xml if not "\ud800" <= ch <= "\udfff")
    else:  # over 64 KiB: 413, before anything else is looked at
        xml = draw(message_xml(openid))[:-len("</xml>")] + (
            "<Pad>" + "环" * draw(st.integers(22_000, 40_000)) + "</Pad></xml>")
    valid: Optional[bool] = kind != "oversized" and _parses(xml)
    mode = draw(st.sampled_from(["plain", "safe", "safe", "compat"]))
    fault = draw(st.sampled_from(FAULT_NAMES))
    ts, nonce = str(int(time.time())), str(draw(st.integers(0, 10**10)))
    if fault == "stale":
        ts = str(int(time.time()) - draw(st.integers(301, 10**6)))
    elif fault == "future":
        ts = str(int(time.time()) + draw(st.integers(301, 10**6)))
    elif fault == "ts_junk":
        ts = draw(st.sampled_from(["", "abc", "1" * 30, "-1", " ", "1.5", "١٢٣"]))
    params = {"signature": make_signature(fw.TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce,
              "openid": openid}
    if fault == "bad_signature":
        params["signature"] = draw(st.sampled_from(["0" * 40, "", "x", params["signature"].upper()]))
    elif fault == "no_signature":
        del params["signature"]
    body = xml
    if mode != "plain":
        encrypt = _encrypt_with_fault(draw, xml, fault)
        params["encrypt_type"] = "aes"
        sig = make_msg_signature(fw.TOKEN, ts, nonce, encrypt)
        params["msg_signature"] = "f" * 40 if fault == "bad_msg_signature" else sig
        env = f"<Encrypt><![CDATA[{encrypt}]]></Encrypt>"
        body = (xml[:-len("</xml>")] + env + "</xml>" if mode == "compat" and valid
                else f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>{env}</xml>")
        if fault == "no_encrypt_type":
            del params["encrypt_type"]
    raw_query = _q(params, keep_plus=fault != "plus_escaped")
    if fault == "junk_query":
        raw_query = draw(st.one_of(
            st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters="#"), max_size=120),
            st.just(raw_query + "&timestamp=%ZZ&nonce=%&=&&signature"),
            st.just(raw_query.replace("%", "%%")),
        ))
    breaks = FAULTS[fault][0 if mode == "plain" else 1]
    if breaks is None or (fault == "no_encrypt_type" and mode == "compat" and valid):
        valid = None  # a compat body read as plain still holds the plaintext message
    elif breaks:
        valid = False
    method = "POST" if draw(st.integers(0, 19)) else "GET"
    if method == "GET":
        valid = None
    return Case(method, raw_query, body.encode("utf-8", "surrogatepass"), valid, mode != "plain",
                openid, f"{kind}/{mode}/{fault}")


def _encrypt_with_fault(draw, xml: str, fault: str) -> str:
    if fault == "other_key":
        return OTHER_KEY.encrypt(xml)
    if fault == "other_appid":
        return OTHER_APPID.encrypt(xml)
    enc = CRYPTO.encrypt(xml)
    if fault == "truncated":
        return enc[: draw(st.integers(0, len(enc) - 1))]
    if fault == "bitflip":
        raw = bytearray(base64.b64decode(enc))
        i = draw(st.integers(0, len(raw) - 1))
        raw[i] ^= 1 << draw(st.integers(0, 7))
        return base64.b64encode(bytes(raw)).decode()
    if fault == "not_base64":
        return draw(st.sampled_from(["", "!!!!", enc + "=", enc[:-1] + "*", "YWJj", "环评", enc[:-2] + "\u3000="]))
    return enc


# -- protocol layer -------------------------------------------------------------------------

def protocol_pipeline(case: Case):
    """What the handler does before any I/O: query → verify → decrypt → parse → classify.
    Returns the classified message, or None when refused with a protocol error."""
    q = parse_raw_query(case.raw_query)
    ts, nonce = q.get("timestamp", ""), q.get("nonce", "")
    if not timestamp_fresh(ts, time.time(), 300):
        return None
    try:
        if q.get("encrypt_type", "raw").lower() == "aes":
            xml = CRYPTO.decrypt_message(case.body, q.get("msg_signature"), ts, nonce)
        else:
            if not check_signature(fw.TOKEN, q.get("signature"), ts, nonce):
                return None
            xml = case.body
        msg = parse_message(xml)
    except WeChatProtocolError:
        return None
    return classify(msg, MENU)


@CASES
@given(requests())
def test_protocol_pipeline_only_raises_protocol_errors(case):
    out = protocol_pipeline(case)  # any exception other than WeChatProtocolError fails here
    if case.valid:
        assert len(case.body) <= MAX_BODY_BYTES
        assert out is not None, f"a valid request was refused: {case.label}"
        if not isinstance(out, Local):
            assert out.sender == case.openid and out.channel == "wechat"


# -- the endpoint -------------------------------------------------------------------------------

class ErrorLog(logging.Handler):
    """Collects every ERROR record (a traceback in the gateway's log is a crash it hid)."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def gateway(redis_url, tmp_path_factory):
    """The real gateway app on 127.0.0.1 (own event loop in a thread), the real
    Redis under a prefix of its own, Rasa unreachable (port 9: refused)."""
    prefix = f"fz{os.getpid()}{uuid.uuid4().hex[:6]}:"
    tmp = tmp_path_factory.mktemp("fuzz")
    s = Settings.from_env({
        "REDIS_URL": redis_url, "REDIS_KEY_PREFIX": prefix, "RASA_URL": "http://127.0.0.1:9",
        "RASA_TIMEOUT_S": "2", "WECHAT_TOKEN": fw.TOKEN, "WECHAT_APPID": fw.APPID,
        "WECHAT_APPSECRET": fw.SECRET, "WECHAT_ENCODING_AES_KEY": fw.ENCODING_AES_KEY,
        "WECHAT_API_BASE": "http://127.0.0.1:9", "SPOOL_DIR": str(tmp / "spool"),
        "UPLOAD_DIR": str(tmp / "uploads"), "RATE_LIMIT_PER_MIN": "0",
    })
    errors = ErrorLog()
    logging.getLogger().addHandler(errors)
    server = ThreadServer(create_app(s)).start()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=15)
    try:
        yield conn, errors
    finally:
        conn.close()
        server.stop()
        logging.getLogger().removeHandler(errors)
        r = redis_sync.Redis.from_url(redis_url)
        keys = list(r.scan_iter(match=prefix + "*", count=1000))
        for i in range(0, len(keys), 500):
            r.delete(*keys[i:i + 500])
        r.close()


def send(conn: http.client.HTTPConnection, case: Case) -> tuple[int, bytes]:
    path = "/wechat" + ("?" + case.raw_query if case.raw_query else "")
    for attempt in (1, 2):
        try:
            conn.request(case.method, path, body=case.body if case.method == "POST" else None,
                         headers={"Content-Type": "text/xml"})
            r = conn.getresponse()
            status, body = r.status, r.read()
            if status == 413 or r.will_close:
                # The body was refused unread: this connection cannot carry another request.
                conn.close()
            return status, body
        except (http.client.HTTPException, ConnectionError):
            # the server may close a connection after a 413 without reading the body
            conn.close()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


@CASES
@given(requests())
def test_wechat_endpoint_never_5xx_never_crashes(gateway, case):
    conn, errors = gateway
    before = len(errors.records)
    status, body = send(conn, case)
    event(f"HTTP {status}")
    event(f"valid={case.valid}")
    assert status < 500, f"{case.label}: HTTP {status} {body[:200]!r}"
    assert status in (200, 400, 403, 405, 413), f"{case.label}: HTTP {status}"
    crashed = [r for r in errors.records[before:] if r.exc_info]
    assert not crashed, f"{case.label}: " + "; ".join(r.getMessage() for r in crashed)
    if case.valid:
        assert status == 200, f"{case.label}: a valid message got HTTP {status} {body[:200]!r}"
    if status == 200 and case.method == "POST" and body != b"success":
        text = body.decode("utf-8")
        if case.safe and "<Encrypt>" in text:  # without encrypt_type=aes the reply is plain XML
            import defusedxml.ElementTree as ET

            env = {c.tag: c.text or "" for c in ET.fromstring(text)}
            text = CRYPTO.decrypt_message(text, env["MsgSignature"], env["TimeStamp"], env["Nonce"])
        reply = parse_message(text)
        assert reply.msg_type == "text" and reply.content
        if case.valid:
            # The reply goes back to the sender, from the account the message was addressed to
            # (generated valid messages may name another account than ACCOUNT).
            assert reply.to_user == case.openid and reply.from_user


def test_the_fuzzed_endpoint_really_answers(gateway):
    """The fuzz above is worth something only if valid messages get through:
    a plain and a safe-mode text message get the answer of a gateway whose
    Rasa is down (how to reach the bureau), not `success` or an error."""
    from bot.pipeline import RASA_DOWN_TEXT

    conn, _ = gateway
    for mode in ("plain", "safe"):
        openid = "oFuzz" + uuid.uuid4().hex[:23]
        xml = (f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{openid}]]>"
               f"</FromUserName><CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
               f"<Content><![CDATA[我要举报]]></Content><MsgId>{uuid.uuid4().int % 10**18}</MsgId></xml>")
        ts, nonce = str(int(time.time())), "4711"
        params = {"signature": make_signature(fw.TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce}
        body = xml
        if mode == "safe":
            enc = CRYPTO.encrypt(xml)
            params.update(encrypt_type="aes", msg_signature=make_msg_signature(fw.TOKEN, ts, nonce, enc))
            body = f"<xml><Encrypt><![CDATA[{enc}]]></Encrypt></xml>"
        status, raw = send(conn, Case("POST", _q(params), body.encode(), True, mode == "safe", openid, mode))
        assert status == 200
        text = raw.decode()
        if mode == "safe":
            import defusedxml.ElementTree as ET

            env = {c.tag: c.text or "" for c in ET.fromstring(text)}
            text = CRYPTO.decrypt_message(text, env["MsgSignature"], env["TimeStamp"], env["Nonce"])
        assert parse_message(text).content == RASA_DOWN_TEXT
