"""GET/POST /wechat: the Official Account's server URL.

GET is WeChat's URL check (echo `echostr` when the signature is right).
POST carries one message or event, in plaintext, compatible or safe mode:

    verify (signature or msg_signature, timestamp window) → decrypt → parse
    → de-duplicate retries (bot/dedup.py) → rate limit → answer locally
    (welcome, menu help, unsupported types) or through the pipeline to Rasa
    → passive reply within REPLY_BUDGET_S, else `success` now and the answer
    later through the customer-service API (bot/wechat_api.py).

Protocol work (signatures, AES, XML) is the pure code in `bot/wechat/`; the
top of this module (`classify`, `plan_replies`, `parse_raw_query`) is pure
too; `WeChatGateway` does the I/O. Whatever goes wrong after the request is
verified, WeChat gets HTTP 200 (`success` or a short apology): a 5xx would
show the user "该公众号暂时无法提供服务". Logs carry masked OpenIDs only.
"""
from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass
from urllib.parse import unquote

from aiohttp import web

from bot import metrics  # observability: missed 5-second windows (bot/metrics.py)
from bot.dedup import Dedup
from bot.menu import Menu, load_menu
from bot.handoff import HANDOFF
from bot.pipeline import Incoming, ask_rasa
from bot.ratelimit import RATE_LIMITED_TEXT, RateLimiter
from bot.wechat import (
    InvalidSignature,
    Message,
    WeChatCrypto,
    WeChatProtocolError,
    check_signature,
    dedup_key,
    parse_message,
    render_text_reply,
    split_for_wechat,
    strip_control_chars,
    timestamp_fresh,
    utf8_len,
)
from bot.wechat_api import WeChatApi, WeChatApiError, mask_openid

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
TIMESTAMP_WINDOW_S = 300
REPLY_LIMIT_BYTES = 2048
MAX_TEXT_CHARS = 2000
# Customer-service messages that follow a passive reply wait this long, so
# the user sees them after it.
FOLLOW_UP_DELAY_S = 0.5
SUCCESS = "success"

VOICE_NOT_RECOGNIZED_TEXT = (
    "这段语音我没能听清。请直接打字告诉我您要办的事或反映的问题，也可以点下方菜单选择服务。"
    "急事请拨打12369环保举报热线。"
)
UNSUPPORTED_TEXT = (
    "这类消息我暂时看不了。请用文字告诉我您的问题，或者发送照片、位置给我；"
    "也可以点下方菜单选择服务。急事请拨打12369环保举报热线。"
)
EMPTY_TEXT = "您好，请问有什么可以帮您？请用文字描述您的问题，或点下方菜单选择服务。"
UNKNOWN_CLICK_TEXT = (
    "这个菜单项已经更新了，请重新点一下下方菜单，或直接用文字告诉我您的问题。"
)
APOLOGY_TEXT = "抱歉，系统刚才出了点问题，请稍后再发一次。急事请拨打12369环保举报热线。"

# Events that are notifications, not something the user said: no answer.
SILENT_EVENTS = {
    "unsubscribe", "view", "location", "view_miniprogram", "templatesendjobfinish",
    "masssendjobfinish", "location_select", "pic_sysphoto", "pic_photo_or_album",
    "pic_weixin", "scancode_push", "scancode_waitmsg",
}


# -- pure ------------------------------------------------------------------------

@dataclass(frozen=True)
class Local:
    """Answered by the gateway itself; "" means no answer (`success`)."""
    text: str


def parse_raw_query(raw: str) -> dict[str, str]:
    """Query parameters decoded with %-escapes only: a literal '+' stays '+'
    (aiohttp's `request.query` turns it into a space, which breaks base64)."""
    out: dict[str, str] = {}
    for part in raw.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        name = unquote(name)
        if name not in out:
            out[name] = unquote(value)
    return out


def _clean(text: str | None) -> str:
    return strip_control_chars(text or "").strip()[:MAX_TEXT_CHARS]


def click_to(action_key: str | None, menu: Menu, sender: str, channel: str, msg_id: str = "") -> Incoming | Local:
    """What a menu click does (WeChat CLICK event or a web chat menu button)."""
    action = menu.action((action_key or "").strip())
    if action is None:
        return Local(UNKNOWN_CLICK_TEXT)
    if action.kind == "welcome":
        return Local(menu.welcome)
    kind = "intent" if action.kind == "intent" else "text"
    return Incoming(sender=sender, channel=channel, kind=kind, text=action.value, msg_id=msg_id)


def classify(msg: Message, menu: Menu) -> Incoming | Local:
    """Turn one parsed WeChat message into a pipeline message or a local answer."""
    sender, mid = msg.from_user, msg.msg_id or ""
    t = msg.msg_type
    if t == "text":
        text = _clean(msg.content)
        return Incoming(sender=sender, channel="wechat", text=text, msg_id=mid) if text else Local(EMPTY_TEXT)
    if t == "voice":
        text = _clean(msg.recognition)
        if not text:
            return Local(VOICE_NOT_RECOGNIZED_TEXT)
        return Incoming(sender=sender, channel="wechat", kind="voice", text=text, msg_id=mid)
    if t == "image":
        return Incoming(sender=sender, channel="wechat", kind="image", media_id=_clean(msg.media_id),
                        pic_url=_clean(msg.pic_url), msg_id=mid)
    if t == "location":
        if msg.location_x is None or msg.location_y is None:
            return Local(UNSUPPORTED_TEXT)
        return Incoming(sender=sender, channel="wechat", kind="location", latitude=msg.location_x,
                        longitude=msg.location_y, label=_clean(msg.label), msg_id=mid)
    if t == "link":
        text = "\n".join(p for p in (_clean(msg.title), _clean(msg.description), _clean(msg.url)) if p)
        if not text:
            return Local(UNSUPPORTED_TEXT)
        return Incoming(sender=sender, channel="wechat", kind="link", text=text[:MAX_TEXT_CHARS], msg_id=mid,
                        extra={"url": _clean(msg.url)})
    if t == "event":
        ev = msg.event or ""
        if ev in ("subscribe", "scan"):
            return Local(menu.welcome)
        if ev == "click":
            return click_to(msg.event_key, menu, sender, "wechat")
        # SILENT_EVENTS and any other event: notifications, nothing to answer.
        return Local("")
    return Local(UNSUPPORTED_TEXT)


def plan_replies(texts: list[str], limit: int = REPLY_LIMIT_BYTES) -> list[str]:
    """Rasa's texts as WeChat messages of at most `limit` bytes each: long
    texts are cut (on line breaks where possible), consecutive ones joined
    with a blank line while they fit. The first is the passive reply, the
    rest go through the customer-service API."""
    pieces = [p for t in texts if t for p in split_for_wechat(t, limit)]
    out: list[str] = []
    current = ""
    for p in pieces:
        joined = p if not current else current + "\n\n" + p
        if current and utf8_len(joined) > limit:
            out.append(current)
            current = p
        else:
            current = joined
    if current:
        out.append(current)
    return out


# -- I/O -------------------------------------------------------------------------

class WeChatGateway:
    def __init__(self, app: web.Application) -> None:
        from bot.app import HTTP, KEYS, RASA, REDIS, SETTINGS

        self.app = app
        self.settings = s = app[SETTINGS]
        self.rasa = app[RASA]
        self.dedup = Dedup(app[REDIS], app[KEYS])
        self.limiter = RateLimiter(app[REDIS], app[KEYS], s.rate_limit_per_min)
        self.api = WeChatApi(s, app[REDIS], app[KEYS], app[HTTP])
        self.menu = load_menu()
        self.crypto: WeChatCrypto | None = None
        if s.wechat_encoding_aes_key and s.wechat_token and s.wechat_appid:
            try:
                self.crypto = WeChatCrypto(s.wechat_token, s.wechat_encoding_aes_key, s.wechat_appid)
            except WeChatProtocolError as e:
                # The web chat keeps working; safe-mode messages are answered `success` and logged.
                log.error("WECHAT_ENCODING_AES_KEY unusable (%s): safe mode is off", e)
        self.background: set[asyncio.Task] = set()

    # -- HTTP entry points ---------------------------------------------------------

    async def handshake(self, request: web.Request) -> web.Response:
        q = parse_raw_query(request.rel_url.raw_query_string)
        token = self.settings.wechat_token
        ts, nonce = q.get("timestamp", ""), q.get("nonce", "")
        if not token:
            log.error("GET /wechat: WECHAT_TOKEN is not set")
            return web.Response(status=403, text="forbidden")
        if not timestamp_fresh(ts, time.time(), TIMESTAMP_WINDOW_S):
            return web.Response(status=403, text="forbidden")
        echostr = q.get("echostr", "")
        if "msg_signature" in q:
            if self.crypto is None:
                return web.Response(status=403, text="forbidden")
            try:
                echostr = self.crypto.decrypt_echostr(echostr, q["msg_signature"], ts, nonce)
            except WeChatProtocolError:
                return web.Response(status=403, text="forbidden")
        elif not check_signature(token, q.get("signature"), ts, nonce):
            return web.Response(status=403, text="forbidden")
        return web.Response(text=echostr, content_type="text/plain")

    async def callback(self, request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        started = loop.time()
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return web.Response(status=413, text="request body too large")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return web.Response(status=413, text="request body too large")
        try:
            return await self._callback(request, body, started)
        except Exception:
            log.exception("POST /wechat failed before the message was parsed; answered success")
            return web.Response(text=SUCCESS, content_type="text/plain")

    async def _callback(self, request: web.Request, body: bytes, started: float) -> web.Response:
        s = self.settings
        q = parse_raw_query(request.rel_url.raw_query_string)
        ts, nonce = q.get("timestamp", ""), q.get("nonce", "")
        if not s.wechat_token:
            log.error("POST /wechat: WECHAT_TOKEN is not set; refusing")
            return web.Response(status=403, text="forbidden")
        if not timestamp_fresh(ts, time.time(), TIMESTAMP_WINDOW_S):
            log.warning("POST /wechat: timestamp %r outside the %d s window (replay?)", ts[:20], TIMESTAMP_WINDOW_S)
            return web.Response(status=403, text="forbidden")
        safe = q.get("encrypt_type", "raw").lower() == "aes"
        try:
            if safe:
                if self.crypto is None:
                    log.error("safe-mode message but WECHAT_ENCODING_AES_KEY/WECHAT_APPID are not set; answered success")
                    return web.Response(text=SUCCESS, content_type="text/plain")
                xml: str | bytes = self.crypto.decrypt_message(body, q.get("msg_signature"), ts, nonce)
            else:
                if not check_signature(s.wechat_token, q.get("signature"), ts, nonce):
                    raise InvalidSignature("signature mismatch")
                xml = body
            msg = parse_message(xml)
        except InvalidSignature:
            log.warning("POST /wechat: bad signature")
            return web.Response(status=403, text="forbidden")
        except WeChatProtocolError as e:
            log.warning("POST /wechat: refused: %s", e)
            return web.Response(status=400, text="bad request")

        try:
            reply = await self.handle(msg, started)
        except Exception:
            log.exception("message %s from %s failed; answered with an apology",
                          msg.msg_id or msg.msg_type, mask_openid(msg.from_user))
            reply = APOLOGY_TEXT
        return self._render(msg, reply, safe)

    def _render(self, msg: Message, reply: str, safe: bool) -> web.Response:
        if not reply:
            return web.Response(text=SUCCESS, content_type="text/plain")
        now = int(time.time())
        xml = render_text_reply(msg.from_user, msg.to_user, reply, now)
        if safe and self.crypto is not None:
            xml = self.crypto.encrypt_message(xml, nonce=str(secrets.randbelow(10**10)), timestamp=now)
        return web.Response(text=xml, content_type="application/xml")

    # -- one message ----------------------------------------------------------------

    async def handle(self, msg: Message, started: float) -> str:
        """The passive reply for `msg` ("" = `success`), the same for every retry."""
        if msg.is_event and msg.event == "unsubscribe":
            log.info("user %s unsubscribed", mask_openid(msg.from_user))
            return ""
        key = dedup_key(msg)
        decided = classify(msg, self.menu)
        if isinstance(decided, Local) and not decided.text:
            first, allowed = await self.dedup.claim(key), True  # nothing to answer: not counted
        else:  # claim and rate limit in one Redis round trip
            first, allowed = await self.dedup.claim_counted(key, self.limiter, msg.from_user)
        if not first:
            left = self.settings.reply_budget_s - (asyncio.get_running_loop().time() - started)
            reply = await self.dedup.wait(key, left)
            log.info("retry of %s from %s: %s", key.split(":")[0], mask_openid(msg.from_user),
                     "same reply" if reply is not None else "still processing, answered success")
            return reply or ""
        reply = APOLOGY_TEXT
        try:
            reply = await self._answer(msg, decided, allowed, started)
        finally:
            # Stored in the background while the reply goes out: one Redis round trip less
            # before every answer (bench/, docs/bench.md). A retry that comes first finds
            # the message pending and waits for the reply (Dedup.wait); when Redis fails
            # here the user still gets the answer (it used to turn into the apology).
            self._spawn(self._store_reply(key, reply))
        return reply

    async def _store_reply(self, key: str, reply: str) -> None:
        try:
            await self.dedup.finish(key, reply)
        except Exception:
            log.exception("reply to %s not stored for WeChat's retries", key.split(":")[0])

    async def _answer(self, msg: Message, decided: Incoming | Local, allowed: bool, started: float) -> str:
        if isinstance(decided, Local) and not decided.text:
            return ""
        if not allowed:
            log.info("rate limit: %s", mask_openid(msg.from_user))
            return RATE_LIMITED_TEXT
        if isinstance(decided, Local):
            return decided.text
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(ask_rasa(self.rasa, decided, handoff=self.app.get(HANDOFF)))
        left = self.settings.reply_budget_s - (loop.time() - started)
        done, _ = await asyncio.wait({task}, timeout=max(0.0, left))
        if task not in done:
            metrics.WECHAT_MISSED_WINDOWS.inc()
            log.info("answer for %s not ready in %.2f s; will send it through the customer-service API",
                     mask_openid(msg.from_user), self.settings.reply_budget_s)
            self._spawn(self._deliver_late(task, msg.from_user))
            return ""
        messages = plan_replies(task.result().texts)
        if len(messages) > 1:
            self._spawn(self._send_all(msg.from_user, messages[1:], delay=FOLLOW_UP_DELAY_S))
        return messages[0] if messages else ""

    # -- customer-service messages ------------------------------------------------------

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def _deliver_late(self, task: asyncio.Future, openid: str) -> None:
        try:
            out = await task
        except Exception:
            log.exception("late answer for %s failed", mask_openid(openid))
            out = None
        texts = plan_replies(out.texts) if out is not None else [APOLOGY_TEXT]
        await self._send_all(openid, texts)

    async def _send_all(self, openid: str, texts: list[str], delay: float = 0.0) -> None:
        if delay:
            await asyncio.sleep(delay)
        for i, text in enumerate(texts, 1):
            try:
                await self.api.send_text(openid, text)
            except WeChatApiError as e:
                log.error("customer-service message %d/%d to %s not sent: %s", i, len(texts), mask_openid(openid), e)
                return
            except Exception:
                log.exception("customer-service message %d/%d to %s not sent", i, len(texts), mask_openid(openid))
                return

    async def drain(self, timeout: float) -> None:
        """Let pending customer-service deliveries finish (on shutdown)."""
        if self.background:
            _, pending = await asyncio.wait(set(self.background), timeout=timeout)
            for t in pending:
                t.cancel()


GATEWAY = web.AppKey("wechat_gateway", WeChatGateway)


async def _gateway_ctx(app: web.Application):
    app[GATEWAY] = WeChatGateway(app)
    yield
    await app[GATEWAY].drain(timeout=10)


async def _handshake(request: web.Request) -> web.Response:
    return await request.app[GATEWAY].handshake(request)


async def _callback(request: web.Request) -> web.Response:
    return await request.app[GATEWAY].callback(request)


def setup(app: web.Application) -> None:
    """Register GET/POST /wechat (after the Redis and HTTP cleanup contexts)."""
    app.cleanup_ctx.append(_gateway_ctx)
    app.router.add_get("/wechat", _handshake)
    app.router.add_post("/wechat", _callback)
