"""Rasa's REST channel, with the gateway's request id in Rasa's logs.

credentials.yml names this class instead of `rest:`. It is Rasa's own
`RestInput` (same name "rest", same URL /webhooks/rest/webhook, same request
and answer); the one difference: while Rasa handles a message, the request id
the gateway put in `metadata.request_id` and the sender are in the context
variables of core/jsonlog.py, so every line Rasa logs for that message carries
them (NLU, policies, the call to the action server, its errors). One line per
message ("message <request id> handled in <n> ms") says that it was handled
and how long it took.

It also hands two libraries' loggers to the JSON handler, which set up their
own console handlers after the logging config file was read: Sanic's (Rasa's
API server creates them) and jieba's (created when jieba is imported, so it is
imported here first).
"""
from __future__ import annotations

import logging
import time
from typing import Any, Awaitable, Callable

import jieba  # noqa: F401 - imported now so that its console handler exists to be replaced
from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint

from core.jsonlog import adopt, clean_request_id, request_context
from nlu_ext import fast_action_validation

# Rasa re-checked its constant action-response schema on every custom action call
# (~47 ms of CPU each): validate against a validator built once (bench/, docs/bench.md).
fast_action_validation.install()

log = logging.getLogger(__name__)

OWN_CONSOLE_LOGGERS = ("sanic.root", "sanic.error", "sanic.access", "jieba")


class TracedRestInput(RestInput):
    @classmethod
    def name(cls) -> str:
        return "rest"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        # Called after Rasa created its Sanic app (and Sanic its console handlers).
        adopt(OWN_CONSOLE_LOGGERS)

        async def traced(message: UserMessage) -> None:
            metadata = message.metadata if isinstance(message.metadata, dict) else {}
            rid = clean_request_id(metadata.get("request_id"))
            started = time.monotonic()
            with request_context(rid, message.sender_id):
                try:
                    await on_new_message(message)
                finally:
                    elapsed_ms = round((time.monotonic() - started) * 1000, 1)
                    # The id is in the message text on purpose: Rasa's RepeatedLogFilter
                    # (on the root handlers) drops a line whose msg and args equal the last one's.
                    log.info("message %s handled in %.0f ms", rid or "without request id", elapsed_ms, extra={
                        "channel": metadata.get("channel") or message.input_channel, "duration_ms": elapsed_ms})

        return super().blueprint(traced)
