"""The one path every user message takes, whatever the channel.

WeChat (`bot/wechat_handler.py`) and the web chat (`bot/routes_chat.py`) turn
their input into an `Incoming`, call `handle()`, and render the `Outgoing`
texts their own way. Steps: human mode (the conversation belongs to staff) →
translate non-text messages into Rasa intents → Rasa → texts. When Rasa cannot
be reached the user still gets a useful answer.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.metrics import MessageTimer  # observability: counts, latency, request id (bot/metrics.py)
from bot.rasa_client import RasaClient, RasaUnavailable
from core.handoff_rules import R_BOT_DOWN

if TYPE_CHECKING:
    from bot.handoff import Handoff

log = logging.getLogger(__name__)

RASA_DOWN_TEXT = (
    "系统正在维护，您的消息已记录，工作人员会尽快回复您。急事请拨打12369环保举报热线；"
    "环评业务请在工作日到县政务服务中心生态环境局窗口咨询。"
)


@dataclass
class Incoming:
    sender: str
    channel: str  # "wechat" | "web"
    kind: str = "text"  # text | image | location | voice | link | event | intent
    text: str = ""
    media_id: str = ""
    pic_url: str = ""
    latitude: float | None = None
    longitude: float | None = None
    label: str = ""
    msg_id: str = ""
    extra: dict = field(default_factory=dict)


@dataclass
class Outgoing:
    texts: list[str]
    degraded: bool = False


def to_rasa_message(msg: Incoming) -> str:
    """Non-text messages reach Rasa as intent-trigger messages with entities."""
    if msg.kind == "image":
        return "/send_image" + json.dumps(
            {"media_id": msg.media_id, "pic_url": msg.pic_url}, ensure_ascii=False)
    if msg.kind == "location":
        # A typed place name (web chat) comes without coordinates: no null entities.
        loc = {"latitude": msg.latitude, "longitude": msg.longitude,
               "location_label": msg.label or f"{msg.latitude},{msg.longitude}"}
        return "/send_location" + json.dumps({k: v for k, v in loc.items() if v is not None}, ensure_ascii=False)
    if msg.kind == "intent":  # menu clicks (bot/menu.py); the name is checked there
        return "/" + msg.text
    # A user must not trigger intents by typing Rasa's "/intent{...}" syntax.
    return msg.text.lstrip("/") or msg.text


async def ask_rasa(rasa: RasaClient, msg: Incoming, handoff: "Handoff | None" = None) -> Outgoing:
    """`handoff` (bot/handoff.py, `app[HANDOFF]`): human mode and the gateway's
    escalation triggers; every channel passes it."""
    timer = MessageTimer(msg)
    route = await handoff.route(msg) if handoff is not None else None
    if route is not None and route.reply is not None:
        return route.reply  # human mode: the message went to the staff inbox, not to Rasa
    metadata = {"channel": msg.channel, "msg_id": msg.msg_id, "kind": msg.kind, "request_id": timer.request_id}
    text = to_rasa_message(msg)
    if route is not None and route.rasa_text:
        text = route.rasa_text
        metadata.update(route.metadata)
    try:
        replies = await rasa.send(msg.sender, text, metadata)
    except RasaUnavailable as e:
        log.warning("rasa unavailable: %s", e)
        if handoff is not None:  # the text promises a reply from staff: make it true
            await handoff.escalate_direct(msg, R_BOT_DOWN, str(e)[:200])
        return timer.done(Outgoing([RASA_DOWN_TEXT], degraded=True), rasa_unavailable="unreachable")
    prefix = route.prefix if route is not None else []
    texts = [r["text"] for r in replies if r.get("text")]
    if not texts:
        # Rasa answers HTTP 200 with nothing at all when it fails inside: a custom
        # action failed (the action server is down: Rasa logs it and goes on) or
        # its tracker/lock store failed (Redis is down). Without this the user got
        # no answer and a complaint could be dropped silently. Same answer and
        # escalation as when Rasa itself is down (tests/test_failures.py).
        detail = "rasa answered nothing"
        if handoff is not None and not await rasa.actions_healthy(handoff.settings.action_url):
            detail = "rasa answered nothing; action server unreachable"
        log.warning("%s (sender %s)", detail, msg.sender[:4])
        if handoff is not None:
            await handoff.escalate_direct(msg, R_BOT_DOWN, detail)
        return timer.done(Outgoing(prefix + [RASA_DOWN_TEXT], degraded=True), rasa_unavailable="empty_answer")
    return timer.done(Outgoing(prefix + texts))
