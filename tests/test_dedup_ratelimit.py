"""bot/dedup.py + bot/ratelimit.py against a real Redis: the WeChat path claims
a message and counts it in the sender's rate limit in one round trip."""
from __future__ import annotations

import json

from bot.dedup import PENDING_TTL_S, Dedup
from bot.ratelimit import RateLimiter
from core.redis_conn import sync_client_for_db
from tests.redis_fixtures import keys, key_prefix_t, rc, settings_t  # noqa: F401 - fixtures


async def test_first_try_is_claimed_and_counted(rc, keys):
    dedup, limiter = Dedup(rc, keys), RateLimiter(rc, keys, limit=2)
    assert await dedup.claim_counted("m1:o1", limiter, "o1") == (True, True)
    assert json.loads(await rc.get(keys.wx_dedup("m1:o1"))) == {"state": "pending"}
    assert 0 < await rc.ttl(keys.wx_dedup("m1:o1")) <= PENDING_TTL_S
    assert await rc.zcard(keys.rate_limit("o1")) == 1


async def test_retry_is_not_claimed_and_not_counted(rc, keys):
    dedup, limiter = Dedup(rc, keys), RateLimiter(rc, keys, limit=2)
    assert await dedup.claim_counted("m1:o1", limiter, "o1") == (True, True)
    assert await dedup.claim_counted("m1:o1", limiter, "o1") == (False, False)
    assert await dedup.claim_counted("m1:o1", limiter, "o1") == (False, False)
    assert await rc.zcard(keys.rate_limit("o1")) == 1
    # the retry finds the first try's reply once it is stored
    await dedup.finish("m1:o1", "答复")
    assert await dedup.result("m1:o1") == "答复"


async def test_over_the_limit_is_claimed_but_refused(rc, keys):
    dedup, limiter = Dedup(rc, keys), RateLimiter(rc, keys, limit=2)
    got = [await dedup.claim_counted(f"m{i}:o2", limiter, "o2") for i in range(4)]
    assert got == [(True, True), (True, True), (True, False), (True, False)]
    assert await rc.zcard(keys.rate_limit("o2")) == 2  # refused messages are not counted
    assert await dedup.claim_counted("m0:o3", limiter, "o3") == (True, True)  # per sender


async def test_limit_off_still_claims_once(rc, keys):
    dedup, limiter = Dedup(rc, keys), RateLimiter(rc, keys, limit=0)
    assert await dedup.claim_counted("m1:o4", limiter, "o4") == (True, True)
    assert await dedup.claim_counted("m1:o4", limiter, "o4") == (False, False)
    assert await rc.exists(keys.rate_limit("o4")) == 0


def test_sync_client_for_db_uses_the_db_asked_for(redis_url):
    base = redis_url.rsplit("/", 1)[0] if redis_url.count("/") > 2 else redis_url
    for url in (base + "/0", base):
        c = sync_client_for_db(url, 2)
        try:
            assert c.connection_pool.connection_kwargs["db"] == 2
            assert c.ping()
        finally:
            c.close()
