"""Build rasa_sdk trackers and run actions the way the action server does."""
from __future__ import annotations

import uuid

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import deps


def tracker(text: str = "", intent: str = "", entities: list | None = None, slots: dict | None = None,
            sender: str | None = None, active_loop: str | None = None, events: list | None = None,
            metadata: dict | None = None) -> Tracker:
    latest = {"text": text, "intent": {"name": intent, "confidence": 1.0}, "entities": entities or [],
              "message_id": uuid.uuid4().hex, "metadata": metadata or {}}
    evs = list(events or []) + [{"event": "user", "text": text, "parse_data": latest, "metadata": metadata or {}}]
    return Tracker(sender or f"u-{uuid.uuid4().hex[:8]}", slots or {}, latest, evs, False, None,
                   {"name": active_loop} if active_loop else {}, "action_listen")


async def run(action, t: Tracker, domain: dict | None = None) -> tuple[list[str], list[dict]]:
    d = CollectingDispatcher()
    events = await action.run(d, t, domain or {})
    return [m.get("text") or "" for m in d.messages], events


def slot_events(events: list[dict]) -> dict:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


@pytest.fixture
def action_env(monkeypatch, redis_url, key_prefix, tmp_path):
    """The action server's environment: the test Redis, a fresh key prefix, a temp spool."""
    prefix = f"{key_prefix}a{uuid.uuid4().hex[:6]}:"
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("REDIS_KEY_PREFIX", prefix)
    monkeypatch.setenv("SPOOL_DIR", str(tmp_path / "spool"))
    deps.reset()
    yield prefix
    deps.reset()
