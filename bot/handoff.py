"""The gateway's side of human mode.

- `Handoff.route(msg)` runs first in bot/pipeline.py for every user message:
  in human mode the message (text, image, location) goes to the staff inbox
  and not to Rasa; the user is told "已转给工作人员" once. After
  HUMAN_MODE_TTL_S without staff activity human mode times out: the bot says
  it takes over again and answers. Outside human mode it checks the gateway's
  own triggers (an angry user, the same question three times) and turns the
  message into "/request_human" with the reason in the metadata, so that
  Rasa's action_escalate opens the escalation and closes any open form.
- `Handoff.deliver()` sends a staff message to a user: the WeChat
  customer-service API for WeChat users, the web outbox for web-chat users
  (GET /api/chat/poll?sender=... returns and clears it).
- A background sweeper times out human mode for users who do not write again,
  and tells them the bot is back.
The state itself lives in Redis (core/escalations.py), shared by every process.
"""
from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

from aiohttp import web

from core.escalations import EscalationStore, fetch_transcript
from core.handoff_rules import (
    FORWARDED_TEXT, R_ANGRY, R_REPEAT, TAKEOVER_TEXT, anger_signals, is_repeat, normalise,
)

if TYPE_CHECKING:
    from bot.pipeline import Incoming, Outgoing

log = logging.getLogger(__name__)

SENDER_RE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
REQUEST_HUMAN = "/request_human"


@dataclass
class Route:
    """What the pipeline does with a message.

    `reply` set: the message was handled here (human mode); send these texts.
    Otherwise ask Rasa, with `rasa_text` instead of the message when set, the
    extra `metadata`, and `prefix` texts before Rasa's answer.
    """
    reply: Optional["Outgoing"] = None
    rasa_text: str = ""
    metadata: dict = field(default_factory=dict)
    prefix: list = field(default_factory=list)


def inbox_message(msg: "Incoming") -> dict:
    """The fields of a user message staff need to see."""
    out = {"kind": msg.kind, "text": msg.text}
    if msg.kind == "intent":  # a menu click
        out["text"] = f"[菜单] {msg.text}"
    elif msg.kind == "image":
        out.update(media_id=msg.media_id, pic_url=msg.pic_url)
    elif msg.kind == "location":
        out.update(latitude=msg.latitude, longitude=msg.longitude, label=msg.label)
    if msg.msg_id:
        out["msg_id"] = msg.msg_id
    return out


class Handoff:
    def __init__(self, app: web.Application) -> None:
        from bot.app import HTTP, KEYS, REDIS, SETTINGS

        self.app = app
        self.settings = app[SETTINGS]
        self.store = EscalationStore(app[REDIS], app[KEYS])
        self.http = app[HTTP]
        self._wechat = None

    @property
    def ttl_s(self) -> float:
        return self.settings.human_mode_ttl_s

    # --- every message -----------------------------------------------------------
    async def route(self, msg: "Incoming") -> Route:
        from bot.pipeline import Outgoing

        norm = normalise(msg.text) if msg.kind == "text" else ""
        try:
            mode, previous = await self.store.check_and_remember(msg.sender, norm)
            prefix: list[str] = []
            if mode is not None and mode.paused:
                if mode.expired(self.store.clock(), self.ttl_s):
                    esc_id = await self.store.time_out(msg.sender, self.ttl_s)
                    if esc_id:
                        log.info("human mode timed out for %s (on message)", msg.sender[:4])
                        await self.store.add_message(esc_id, "system", TAKEOVER_TEXT)
                        prefix = [TAKEOVER_TEXT]
                else:
                    first = await self.store.to_inbox(mode, msg.sender, inbox_message(msg))
                    return Route(reply=Outgoing([FORWARDED_TEXT] if first else []))
        except Exception as e:  # noqa: BLE001 - Redis trouble must not silence the bot
            log.warning("human-mode check failed (%s: %s); answering with the bot", type(e).__name__, e)
            return Route()
        if msg.kind == "text":
            signals = anger_signals(msg.text)
            if signals:
                return self._escalating(msg, R_ANGRY, "、".join(signals), prefix)
            if is_repeat(msg.text, previous):
                return self._escalating(msg, R_REPEAT, f"重复三次：{msg.text[:100]}", prefix)
        return Route(prefix=prefix)

    @staticmethod
    def _escalating(msg: "Incoming", reason: str, detail: str, prefix: list) -> Route:
        return Route(rasa_text=REQUEST_HUMAN, prefix=prefix, metadata={
            "escalation_reason": reason, "escalation_detail": detail, "original_text": msg.text})

    async def escalate_direct(self, msg: "Incoming", reason: str, detail: str = "") -> None:
        """Open an escalation from the gateway (when Rasa cannot do it) and keep the message for staff.

        Not paused: staff see it and answer, and the bot answers again as soon
        as Rasa is back (human mode starts only if an agent claims it).
        """
        try:
            transcript = await fetch_transcript(self.http, self.settings.rasa_url, msg.sender, timeout_s=2.0)
            result = await self.store.open(msg.sender, msg.channel, reason, detail=detail, transcript=transcript,
                                           pause=False)
            await self.store.add_message(result.escalation.esc_id, "user", msg.text, **{
                k: v for k, v in inbox_message(msg).items() if k != "text"})
        except Exception:  # noqa: BLE001
            log.exception("could not escalate %s directly", msg.sender[:4])

    # --- staff -> user ---------------------------------------------------------------
    def wechat(self):
        if self._wechat is None:
            from bot.app import KEYS, REDIS
            from bot.wechat_api import WeChatApi

            self._wechat = WeChatApi(self.settings, self.app[REDIS], self.app[KEYS], self.http)
        return self._wechat

    async def deliver(self, sender: str, channel: str, text: str, by: str = "staff") -> tuple[bool, str]:
        """Send `text` to the user; (True, "") or (False, a Chinese reason for the console)."""
        if channel == "wechat":
            from bot.wechat_api import WeChatApiError

            try:
                await self.wechat().send_text(sender, text)
                return True, ""
            except WeChatApiError as e:
                log.warning("customer-service message to %s failed: %s", sender[:4], e)
                hint = "（用户48小时内没有发过消息时微信不允许再发客服消息）" if e.errcode == 45015 else ""
                return False, f"微信客服消息发送失败：{e}{hint}"
        await self.store.push_outbox(sender, text, by=by)
        return True, ""

    # --- time-outs of users who do not write again ------------------------------------------
    def sweep_interval_s(self) -> float:
        return min(30.0, max(0.5, self.ttl_s / 4))

    async def sweep_once(self) -> int:
        n = 0
        for sender in await self.store.due_senders(self.ttl_s):
            esc_id = await self.store.time_out(sender, self.ttl_s)
            if not esc_id:
                continue
            n += 1
            esc = await self.store.get(esc_id)
            if esc is not None:
                await self.store.add_message(esc_id, "system", TAKEOVER_TEXT)
                await self.deliver(sender, esc.channel, TAKEOVER_TEXT, by="bot")
            log.info("human mode timed out for %s (sweeper)", sender[:4])
        return n

    async def sweeper(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval_s())
            try:
                await self.sweep_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - keep sweeping
                log.exception("human-mode sweep failed")


HANDOFF = web.AppKey("handoff", Handoff)


async def poll(request: web.Request) -> web.Response:
    """GET /api/chat/poll?sender=web-1 -> {"messages": [{"text", "from", "at"}]}; taken messages are gone."""
    sender = request.query.get("sender", "")
    if not SENDER_RE.match(sender):
        return web.json_response({"error": "sender 需要是 1-64 位字母、数字、下划线或短横线"}, status=400)
    items = await request.app[HANDOFF].store.take_outbox(sender)
    return web.json_response({"messages": [{"text": i.get("text", ""), "from": i.get("by", "staff"),
                                            "at": i.get("at")} for i in items]})


async def _handoff_ctx(app: web.Application):
    app[HANDOFF] = Handoff(app)
    task = asyncio.ensure_future(app[HANDOFF].sweeper())
    yield
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


def setup(app: web.Application) -> None:
    """Register after the Redis and HTTP cleanup contexts (bot/app.py)."""
    app.cleanup_ctx.append(_handoff_ctx)
    app.router.add_get("/api/chat/poll", poll)
