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


class RateLimiter:
    def __init__(self, redis, keys: Keys, limit: int, window_s: float = WINDOW_S) -> None:
        self.redis, self.keys, self.limit, self.window_s = redis, keys, limit, window_s
        self._script = redis.register_script(_SLIDING_WINDOW)

    async def allow(self, sender: str, now: float | None = None) -> bool:
        """Count one message of `sender`; False when it is over the limit."""
        if self.limit <= 0:
            return True
        now = time.time() if now is None else now
        member = f"{now:.6f}:{uuid.uuid4().hex[:8]}"
        ok = await self._script(keys=[self.keys.rate_limit(sender)],
                                args=[f"{now:.6f}", self.window_s, self.limit, member])
        return bool(int(ok))
