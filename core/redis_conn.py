"""The Redis client every process uses (redis.asyncio, str responses).

Timeouts are short on purpose: when Redis is down, callers must find out in
about a second so they can spool the complaint and still answer WeChat within
its 5-second budget.
"""
from __future__ import annotations

from redis.asyncio import Redis

from core.keys import Keys
from core.settings import Settings

CONNECT_TIMEOUT_S = 1.0
SOCKET_TIMEOUT_S = 3.0


def create_redis(settings: Settings, *, connect_timeout: float = CONNECT_TIMEOUT_S,
                 socket_timeout: float = SOCKET_TIMEOUT_S, **kwargs) -> Redis:
    """A client for `settings.redis_url`; nothing is connected until the first command."""
    return Redis.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_connect_timeout=connect_timeout,
        socket_timeout=socket_timeout,
        health_check_interval=30,
        **kwargs,
    )


def create_keys(settings: Settings) -> Keys:
    return Keys(settings.redis_key_prefix)
