"""Rasa's REST channel, with the gateway's request id in Rasa's logs.

credentials.yml names this class instead of `rest:`. It is Rasa's own
`RestInput` (same name "rest", same URL /webhooks/rest/webhook, same request
and answer); the one difference: while Rasa handles a message, the request id
the gateway put in `metadata.request_id` and the sender are in the context
variables of core/jsonlog.py, so every line Rasa logs for that message carries
them (NLU, policies, the call to the action server, its errors). One line per
message says that it was handled and how long it took.

It also hands Sanic's loggers to the JSON handler: Rasa's API server (Sanic)
sets up its own console handlers after the logging config file was read.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Awaitable, Callable

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint

from core.jsonlog import adopt, clean_request_id, request_context

log = logging.getLogger(__name__)

SANIC_LOGGERS = ("sanic.root", "sanic.error", "sanic.access")


class TracedRestInput(RestInput):
    @classmethod
    def name(cls) -> str:
        return "rest"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        # Called after Rasa created its Sanic app (and Sanic its console handlers).
        adopt(SANIC_LOGGERS)

        async def traced(message: UserMessage) -> None:
            metadata = message.metadata if isinstance(message.metadata, dict) else {}
            rid = clean_request_id(metadata.get("request_id"))
            started = time.monotonic()
            with request_context(rid, message.sender_id):
                try:
                    await on_new_message(message)
                finally:
                    log.info("message handled", extra={
                        "channel": metadata.get("channel") or message.input_channel,
                        "duration_ms": round((time.monotonic() - started) * 1000, 1)})

        return super().blueprint(traced)
