"""The gateway's application factory (aiohttp cleanup-context pattern)."""
from __future__ import annotations

import aiohttp
from aiohttp import web

from core.redis_conn import create_redis
from core.settings import Settings
from core.keys import Keys
from bot import handoff, routes_chat, routes_health, staff, webchat, wechat_handler
from bot import metrics, request_ids  # observability: request ids in the logs, GET /metrics
from bot.rasa_client import RasaClient
from bot.spool_replayer import spool_replayer_ctx

SETTINGS = web.AppKey("settings", Settings)
REDIS = web.AppKey("redis", object)
KEYS = web.AppKey("keys", Keys)
RASA = web.AppKey("rasa", RasaClient)
HTTP = web.AppKey("http", aiohttp.ClientSession)


async def _redis_ctx(app: web.Application):
    settings = app[SETTINGS]
    app[REDIS] = create_redis(settings)
    app[KEYS] = Keys(settings.redis_key_prefix)
    yield
    await app[REDIS].aclose() if hasattr(app[REDIS], "aclose") else await app[REDIS].close()


async def _http_ctx(app: web.Application):
    # One pooled session for Rasa and the WeChat API: connection reuse matters
    # for latency (see bench/).
    connector = aiohttp.TCPConnector(limit=200, keepalive_timeout=60)
    async with aiohttp.ClientSession(connector=connector) as session:
        app[HTTP] = session
        app[RASA] = RasaClient(app[SETTINGS].rasa_url, session, app[SETTINGS].rasa_timeout_s)
        yield


def create_app(settings: Settings | None = None) -> web.Application:
    settings = settings or Settings.from_env()
    app = web.Application(client_max_size=64 * 1024)
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_redis_ctx)
    app.cleanup_ctx.append(_http_ctx)
    app.cleanup_ctx.append(spool_replayer_ctx)
    request_ids.setup(app)
    metrics.setup(app)
    routes_health.setup(app)
    routes_chat.setup(app)
    wechat_handler.setup(app)
    webchat.setup(app)
    handoff.setup(app)
    staff.setup(app)
    return app
