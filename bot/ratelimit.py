"""Per-sender rate limit (sliding 60-second window, shared by all gateway
processes through Redis).

A sender over the limit gets `RATE_LIMITED_TEXT` instead of an answer; the
refused messages are not counted, so a user who pauses gets through again as
soon as the window has room.
"""
from __future__ import annotations

import time
import uuid

from core.keys import Keys

WINDOW_S = 60

RATE_LIMITED_TEXT = (
    "您发消息有点快，我还在处理前面的内容。请稍等一分钟再发，我会接着为您服务。"
    "急事请直接拨打12369环保举报热线。"
)

# KEYS[1] = zset of accepted message times; ARGV = now, window, limit, member.
_SLIDING_WINDOW = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])) + 1)
return 1
"""

# The WeChat path's first round trip (bot/dedup.py): claim the message with
# KEYS[2] = its dedup key (SET NX, value ARGV[5], ARGV[6] s), and only when the
# claim is new (not one of WeChat's retries) count it in the window.
# Returns -1 for a retry, else the window's answer (1 allowed, 0 over the limit).
_CLAIM_THEN_WINDOW = """
if not redis.call('SET', KEYS[2], ARGV[5], 'NX', 'EX', tonumber(ARGV[6])) then
  return -1
end
""" + _SLIDING_WINDOW


class RateLimiter:
    def __init__(self, redis, keys: Keys, limit: int, window_s: float = WINDOW_S) -> None:
        self.redis, self.keys, self.limit, self.window_s = redis, keys, limit, window_s
        self._script = redis.register_script(_SLIDING_WINDOW)
        self._claim_script = redis.register_script(_CLAIM_THEN_WINDOW)

    async def allow(self, sender: str, now: float | None = None) -> bool:
        """Count one message of `sender`; False when it is over the limit."""
        if self.limit <= 0:
            return True
        now = time.time() if now is None else now
        member = f"{now:.6f}:{uuid.uuid4().hex[:8]}"
        ok = await self._script(keys=[self.keys.rate_limit(sender)],
                                args=[f"{now:.6f}", self.window_s, self.limit, member])
        return bool(int(ok))

    async def claim_and_allow(self, claim_key: str, claim_value: str, claim_ttl_s: int, sender: str,
                              now: float | None = None) -> bool | None:
        """`SET claim_key claim_value NX EX claim_ttl_s` and, when that claim is new,
        `allow(sender)` — in one round trip (bot/dedup.py, docs/bench.md). None when
        the key was already claimed (the message was not counted). Needs a limit
        (Dedup.claim_counted does the plain claim when there is none)."""
        now = time.time() if now is None else now
        member = f"{now:.6f}:{uuid.uuid4().hex[:8]}"
        res = int(await self._claim_script(
            keys=[self.keys.rate_limit(sender), claim_key],
            args=[f"{now:.6f}", self.window_s, self.limit, member, claim_value, int(claim_ttl_s)]))
        return None if res < 0 else bool(res)
