"""Fixtures for the ticket store and spool tests: a real Redis client under a
key prefix unique to each test (deleted with SCAN + DEL afterwards), and an
injectable clock.

Uses the `redis_url` fixture of tests/conftest.py (REDIS_URL, or a redis-server
started for the session).
"""
from __future__ import annotations

import os
import uuid
from datetime import datetime, timedelta

import pytest
import pytest_asyncio

from core.keys import Keys
from core.redis_conn import create_redis
from core.settings import Settings
from core.ticket_model import SHANGHAI, ComplaintReport
from core.tickets import TicketStore


class FakeClock:
    """A settable clock: `clock()` returns the current fake time (Asia/Shanghai)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs) -> None:
        self.now = self.now + timedelta(**kwargs)


async def delete_prefix(client, prefix: str) -> int:
    deleted = 0
    batch = []
    async for key in client.scan_iter(match=prefix + "*", count=500):
        batch.append(key)
        if len(batch) >= 500:
            deleted += await client.delete(*batch)
            batch = []
    if batch:
        deleted += await client.delete(*batch)
    return deleted


@pytest.fixture
def key_prefix_t() -> str:
    return f"test{os.getpid()}{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def settings_t(redis_url, key_prefix_t) -> Settings:
    return Settings(redis_url=redis_url, redis_key_prefix=key_prefix_t)


@pytest_asyncio.fixture
async def rc(settings_t):
    """redis.asyncio client (decode_responses=True); the test's keys are removed afterwards."""
    client = create_redis(settings_t)
    yield client
    await delete_prefix(client, settings_t.redis_key_prefix)
    left = [k async for k in client.scan_iter(match=settings_t.redis_key_prefix + "*")]
    await client.close()
    assert left == [], f"keys left behind: {left[:5]}"


@pytest.fixture
def keys(settings_t) -> Keys:
    return Keys(settings_t.redis_key_prefix)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 29, 10, 0, 0, tzinfo=SHANGHAI))


@pytest.fixture
def store(rc, keys, clock) -> TicketStore:
    return TicketStore(rc, keys, clock=clock)


def report(**overrides) -> ComplaintReport:
    base = dict(reporter="oWx_citizen_A", channel="wechat", pollution_type="air",
                description="工厂晚上偷偷排放黑烟", location_text="城东工业园", occurred="每天晚上",
                contact_phone="13912345678")
    base.update(overrides)
    return ComplaintReport(**base)
