"""The gateway's request id in the action server's logs.

Rasa calls the action server with the conversation's tracker; the latest user
message's `metadata.request_id` is the id the gateway gave the message
(core/jsonlog.py). A request middleware of rasa_sdk's Sanic app puts it and
the sender into the log context for the whole action call, so every line an
action, a form validation or rasa_sdk itself logs carries them; a response
middleware writes one line per call (action, status, duration).

`install()` runs when `rasa run actions` imports the `actions` package: at that
moment rasa_sdk has created its Sanic app ("rasa_sdk") and not yet started it.
Anywhere else (tests import the actions directly) there is no such app and it
does nothing.
"""
from __future__ import annotations

import json
import logging
import time
import zlib
from typing import Optional

from core.jsonlog import clean_request_id, set_request

log = logging.getLogger("actions.calls")

APP_NAME = "rasa_sdk"


def call_context(action_call: object) -> tuple[Optional[str], Optional[str], str]:
    """(request id, sender, action name) of one action call body (pure)."""
    if not isinstance(action_call, dict):
        return None, None, ""
    tracker = action_call.get("tracker") if isinstance(action_call.get("tracker"), dict) else {}
    latest = tracker.get("latest_message") if isinstance(tracker.get("latest_message"), dict) else {}
    metadata = latest.get("metadata") if isinstance(latest.get("metadata"), dict) else {}
    sender = tracker.get("sender_id") if isinstance(tracker.get("sender_id"), str) else None
    return clean_request_id(metadata.get("request_id")), sender, str(action_call.get("next_action") or "")


def _body(request) -> object:
    try:
        if request.headers.get("Content-Encoding") == "deflate":  # as rasa_sdk's webhook reads it
            return json.loads(zlib.decompress(request.body))
        return request.json
    except Exception:  # noqa: BLE001 - a bad body is rasa_sdk's to answer
        return None


async def _on_request(request) -> None:
    if request.path != "/webhook":
        set_request(None)
        return
    rid, sender, action = call_context(_body(request))
    set_request(rid, sender)
    request.ctx.ecobot_call = (action, time.monotonic())


async def _on_response(request, response) -> None:
    call = getattr(request.ctx, "ecobot_call", None)
    if call is not None:
        action, started = call
        log.info("action %s ran", action, extra={
            "action": action, "status": response.status,
            "duration_ms": round((time.monotonic() - started) * 1000, 1)})
    set_request(None)


def install() -> bool:
    """Attach the middlewares to rasa_sdk's app; False when there is none."""
    try:
        from sanic import Sanic

        app = Sanic.get_app(APP_NAME)
    except Exception:  # noqa: BLE001 - not inside `rasa run actions`
        return False
    if getattr(app.ctx, "ecobot_request_log", False):
        return True
    app.register_middleware(_on_request, "request")
    app.register_middleware(_on_response, "response")
    app.ctx.ecobot_request_log = True
    return True
