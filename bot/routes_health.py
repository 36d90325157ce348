"""GET /healthz: is the gateway up, and can it reach Redis and Rasa?"""
from __future__ import annotations

import asyncio

from aiohttp import web


async def healthz(request: web.Request) -> web.Response:
    from bot.app import RASA, REDIS

    async def redis_ok() -> bool:
        try:
            return bool(await asyncio.wait_for(request.app[REDIS].ping(), 2))
        except Exception:
            return False

    redis_up, rasa_up = await asyncio.gather(redis_ok(), request.app[RASA].healthy())
    body = {"status": "ok" if redis_up and rasa_up else "degraded", "redis": redis_up, "rasa": rasa_up}
    # 200 while the gateway itself serves: it answers users even when Rasa is
    # down (with how to reach the bureau); the body says what is missing.
    return web.json_response(body)


def setup(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
