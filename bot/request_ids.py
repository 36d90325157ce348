"""Request ids and one access line per HTTP request of the gateway.

Every request gets an id: the caller's `X-Request-Id` when it is usable (nginx
or a client may set one), otherwise a new one. It is kept in a context
variable (core/jsonlog.py) for everything the gateway logs while handling the
request, including an answer that goes out later through WeChat's
customer-service API, and answered in the `X-Request-Id` response header.
bot/pipeline.py sends it on to Rasa. The access line carries the path without
its query string (WeChat puts the user's OpenID there).
"""
from __future__ import annotations

import logging
import time

from aiohttp import web

from core.jsonlog import clean_request_id, new_request_id, request_context

log = logging.getLogger("bot.access")

HEADER = "X-Request-Id"
# Polled by machines all day long: their access lines are DEBUG.
QUIET_PATHS = frozenset({"/healthz", "/metrics"})


@web.middleware
async def request_id_middleware(request: web.Request, handler):
    rid = clean_request_id(request.headers.get(HEADER)) or new_request_id()
    started = time.monotonic()
    status = 500
    with request_context(rid):
        try:
            response = await handler(request)
            status = response.status
            if not response.prepared:
                response.headers[HEADER] = rid
            return response
        except web.HTTPException as e:
            status = e.status
            e.headers[HEADER] = rid
            raise
        finally:
            level = logging.DEBUG if request.path in QUIET_PATHS else logging.INFO
            log.log(level, "%s %s %d", request.method, request.path, status, extra={
                "method": request.method, "path": request.path, "status": status,
                "duration_ms": round((time.monotonic() - started) * 1000, 1)})


def setup(app: web.Application) -> None:
    """First middleware of the app, so that every other one logs with the id."""
    app.middlewares.insert(0, request_id_middleware)
