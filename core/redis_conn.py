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


def sync_client_for_db(url: str, db: int, **kwargs):
    """A synchronous client of database `db` of the server at `url` (scripts, tests).

    Not `redis.Redis.from_url(url, db=db)`: when the URL names a database
    ("redis://host:6379/0") redis-py lets the URL win over `db=`, and every
    store would silently be read from the URL's database."""
    import redis as redis_sync

    base = redis_sync.Redis.from_url(url)
    try:
        params = dict(base.connection_pool.connection_kwargs)
    finally:
        base.close()
    params.update(kwargs, db=db)
    return redis_sync.Redis(**params)
