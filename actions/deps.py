"""Process-wide dependencies of the action server, created once on first use."""
from __future__ import annotations

from functools import lru_cache

from core.keys import Keys
from core.settings import Settings


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings.from_env()


@lru_cache(maxsize=1)
def keys() -> Keys:
    return Keys(settings().redis_key_prefix)


_redis = None


def redis():
    """One redis.asyncio client (with its connection pool) per process."""
    global _redis
    if _redis is None:
        from core.redis_conn import create_redis

        _redis = create_redis(settings())
    return _redis


def reset() -> None:
    """Forget the cached settings and client (tests change the environment)."""
    global _redis
    _redis = None
    settings.cache_clear()
    keys.cache_clear()
