"""POST /api/chat: the JSON endpoint of the web chat page and the terminal chat.

Request:  {"sender": "web-abc123", "text": "你好"}
          {"sender": ..., "type": "image", "upload": "<name from POST /api/upload>"}
          {"sender": ..., "type": "location", "latitude": 31.2, "longitude": 121.5, "label": "XX村"}
          (coordinates, a typed label, or both)
          {"sender": ..., "type": "click", "key": "EIA_MATERIALS"}  (a menu button, knowledge/menu.yml)
Response: {"messages": [{"text": "..."}, ...]}

Every type goes through the same pipeline as the WeChat messages (bot/pipeline.py);
the same per-sender rate limit applies (bot/ratelimit.py).

Bad input gets HTTP 400 with a Chinese `error` text; Rasa being down still gets
HTTP 200 with a message that says how to reach the bureau.
"""
from __future__ import annotations

import re

from aiohttp import web

from bot.handoff import HANDOFF
from bot.pipeline import Incoming, ask_rasa
from bot.ratelimit import RATE_LIMITED_TEXT, RateLimiter
from bot.webchat import web_incoming

SENDER_RE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
MAX_TEXT_CHARS = 2000

def _bad(msg: str) -> web.Response:
    return web.json_response({"error": msg}, status=400)


async def chat(request: web.Request) -> web.Response:
    from bot.app import KEYS, RASA, REDIS, SETTINGS

    try:
        body = await request.json()
    except Exception:
        return _bad("请求格式不对：请发送 JSON，例如 {\"sender\": \"web-1\", \"text\": \"你好\"}")
    if not isinstance(body, dict):
        return _bad("请求格式不对：需要一个 JSON 对象")
    sender, text = body.get("sender"), body.get("text")
    if not isinstance(sender, str) or not SENDER_RE.match(sender):
        return _bad("sender 需要是 1-64 位字母、数字、下划线或短横线")
    if body.get("type", "text") != "text":
        msg = web_incoming(request.app, sender, body)
        if isinstance(msg, str):  # a Chinese error text
            return _bad(msg)
    elif not isinstance(text, str) or not text.strip():
        return _bad("text 不能为空，请输入您要说的话")
    else:
        msg = Incoming(sender=sender, channel="web", text=text.strip()[:MAX_TEXT_CHARS])
    app = request.app
    if not await RateLimiter(app[REDIS], app[KEYS], app[SETTINGS].rate_limit_per_min).allow(sender):
        return web.json_response({"messages": [{"text": RATE_LIMITED_TEXT}], "rate_limited": True})
    if not isinstance(msg, Incoming):  # answered by the gateway itself (menu help)
        return web.json_response({"messages": [{"text": msg.text}] if msg.text else []})
    out = await ask_rasa(app[RASA], msg, handoff=app.get(HANDOFF))
    body = {"messages": [{"text": t} for t in out.texts]}
    if out.degraded:
        body["degraded"] = True
    return web.json_response(body)


def setup(app: web.Application) -> None:
    app.router.add_post("/api/chat", chat)
