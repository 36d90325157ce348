"""Handle each WeChat message once, however often WeChat retries it.

WeChat gives up on a request after 5 seconds and sends it again (three tries
in all), possibly to another gateway process. The first request to `claim`
the message's key processes it; `finish` stores the passive reply ("" means
`success`: nothing to say, or the answer goes out later through the
customer-service API). A retry that arrives meanwhile `wait`s for that stored
reply and returns it; a retry after the reply gets it straight from Redis.
So the message reaches Rasa once and every try gets the same answer.
"""
from __future__ import annotations

import asyncio
import json

from typing import TYPE_CHECKING

from core.keys import Keys

if TYPE_CHECKING:
    from bot.ratelimit import RateLimiter

PENDING_TTL_S = 120  # longer than WeChat's retries (3 x 5 s) and a slow Rasa answer
DONE_TTL_S = 600
POLL_S = 0.05
PENDING = json.dumps({"state": "pending"})


class Dedup:
    def __init__(self, redis, keys: Keys, poll_s: float = POLL_S) -> None:
        self.redis, self.keys, self.poll_s = redis, keys, poll_s

    async def claim(self, key: str) -> bool:
        """True for the first try of a message: the caller must process it and call `finish`."""
        return bool(await self.redis.set(self.keys.wx_dedup(key), PENDING, nx=True, ex=PENDING_TTL_S))

    async def claim_counted(self, key: str, limiter: "RateLimiter", sender: str) -> tuple[bool, bool]:
        """`claim`, and count the first try in the sender's rate limit, in one round
        trip: (first try, within the limit). A retry is not counted."""
        if limiter.limit <= 0:  # no rate limit: the plain claim
            first = await self.claim(key)
            return first, first
        allowed = await limiter.claim_and_allow(self.keys.wx_dedup(key), PENDING, PENDING_TTL_S, sender)
        return allowed is not None, bool(allowed)

    async def finish(self, key: str, reply: str) -> None:
        await self.redis.set(self.keys.wx_dedup(key), json.dumps({"state": "done", "reply": reply},
                                                                  ensure_ascii=False), ex=DONE_TTL_S)

    async def result(self, key: str) -> str | None:
        """The stored reply, or None while the first try is still being processed."""
        raw = await self.redis.get(self.keys.wx_dedup(key))
        if raw is None:
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        return data.get("reply", "") if data.get("state") == "done" else None

    async def wait(self, key: str, timeout: float) -> str | None:
        """Wait up to `timeout` s for the first try's reply; None when it is not ready."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        while True:
            reply = await self.result(key)
            if reply is not None:
                return reply
            left = deadline - loop.time()
            if left <= 0:
                return None
            await asyncio.sleep(min(self.poll_s, left))
