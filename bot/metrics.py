"""Prometheus metrics of the gateway: GET /metrics (prometheus_client).

Counted by this process (each gateway process exposes its own counters;
Prometheus scrapes every process and `sum()` adds them up):

| metric | labels | what |
|---|---|---|
| ecobot_messages_received_total | channel, kind | user messages that entered the pipeline (bot/pipeline.py): to Rasa or, in human mode, to the staff inbox. WeChat events the gateway answers itself (subscribe, menu help) and rate-limited messages are not in it |
| ecobot_reply_latency_seconds | channel | histogram: from the message entering the pipeline to its answer (Rasa's, or the maintenance text when Rasa failed); human-mode messages are not timed |
| ecobot_wechat_missed_windows_total | | WeChat answers not ready within REPLY_BUDGET_S: the user got `success` and the answer went out through the customer-service API |
| ecobot_rasa_unavailable_total | reason | `unreachable` (down, timed out, HTTP error) or `empty_answer` (Rasa answered nothing: a failed action or store) |

Read from Redis at each scrape (figures of the whole deployment, the same on
every gateway: aggregate them with `max()`, not `sum()`):

| metric | labels | source (core/keys.py) |
|---|---|---|
| ecobot_tickets_total | pollution_type | ZCARD tickets:type:{pollution_type}: complaint tickets stored (reports merged into an open ticket are not new tickets) |
| ecobot_escalations_opened_total | reason | HGETALL stats:escalations:opened, counted by core/escalations.py when an escalation is created (by the gateway or the action server) |
| ecobot_escalations_open | | ZCARD esc:queue: escalations waiting or claimed |
| ecobot_redis_up | | 1 when the figures above could be read |

Why read tickets and escalations from Redis: they are created in the action
server, which (rasa_sdk) has no metrics endpoint of its own; Redis already
holds the indexes, so one scrape target per gateway covers everything and a
restarted action server loses no count. Standard `process_*`/`python_*`
metrics of the gateway process come with prometheus_client.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Optional

from aiohttp import web
from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import choose_encoder

from core.jsonlog import bind_sender, current_request_id, new_request_id
from core.ticket_model import POLLUTION_TYPES

if TYPE_CHECKING:
    from bot.pipeline import Incoming, Outgoing

log = logging.getLogger("bot.pipeline")

MESSAGES = Counter("ecobot_messages_received", "User messages that entered the gateway's pipeline",
                   ["channel", "kind"])
REPLY_LATENCY = Histogram("ecobot_reply_latency_seconds", "Time from a message entering the pipeline to its answer",
                          ["channel"], buckets=(0.1, 0.25, 0.5, 1, 2, 3, 4, 5, 7.5, 10, 20, 30))
WECHAT_MISSED_WINDOWS = Counter("ecobot_wechat_missed_windows",
                                "WeChat answers not ready in the passive-reply window (sent later)")
RASA_UNAVAILABLE = Counter("ecobot_rasa_unavailable", "Messages Rasa did not answer", ["reason"])

REDIS_TIMEOUT_S = 2.0


class MessageTimer:
    """One message through the pipeline: counted when created, its answer timed by `done()`.

    Also attaches the sender to the gateway's log lines and fixes the request
    id that goes to Rasa (the HTTP request's, or a new one for messages that
    do not come from a request).
    """

    def __init__(self, msg: "Incoming") -> None:
        self.channel, self.kind = msg.channel, msg.kind
        self.started = time.monotonic()
        self.request_id = current_request_id() or new_request_id()
        MESSAGES.labels(msg.channel, msg.kind).inc()
        bind_sender(msg.sender)

    def done(self, out: "Outgoing", rasa_unavailable: str = "") -> "Outgoing":
        elapsed = time.monotonic() - self.started
        REPLY_LATENCY.labels(self.channel).observe(elapsed)
        if rasa_unavailable:
            RASA_UNAVAILABLE.labels(rasa_unavailable).inc()
        log.info("reply", extra={"channel": self.channel, "kind": self.kind, "latency_ms": round(elapsed * 1000, 1),
                                 "texts": len(out.texts), "degraded": out.degraded})
        return out


# -- figures read from Redis ----------------------------------------------------

async def redis_snapshot(redis, keys) -> Optional[dict]:
    """Tickets by type, escalations by reason, open escalations; None when Redis does not answer."""
    try:
        pipe = redis.pipeline(transaction=False)
        for t in POLLUTION_TYPES:
            pipe.zcard(keys.tickets_by_type(t))
        pipe.hgetall(keys.stats_escalations_opened())
        pipe.zcard(keys.esc_queue())
        res = await asyncio.wait_for(pipe.execute(), REDIS_TIMEOUT_S)
    except Exception as e:  # noqa: BLE001 - a scrape must not fail because Redis is down
        log.warning("metrics: Redis figures unavailable (%s: %s)", type(e).__name__, e)
        return None
    n = len(POLLUTION_TYPES)
    return {
        "tickets": dict(zip(POLLUTION_TYPES, (int(x) for x in res[:n]))),
        "escalations_opened": {str(k): int(v) for k, v in (res[n] or {}).items()},
        "escalations_open": int(res[n + 1]),
    }


def redis_families(snap: Optional[dict]):
    yield GaugeMetricFamily("ecobot_redis_up", "1 when the figures read from Redis are current",
                            value=0 if snap is None else 1)
    if snap is None:
        return
    tickets = CounterMetricFamily("ecobot_tickets", "Complaint tickets stored, by pollution_type (from Redis)",
                                  labels=["pollution_type"])
    for ptype, count in sorted(snap["tickets"].items()):
        tickets.add_metric([ptype], count)
    yield tickets
    opened = CounterMetricFamily("ecobot_escalations_opened", "Escalations to staff opened, by reason (from Redis)",
                                 labels=["reason"])
    for reason, count in sorted(snap["escalations_opened"].items()):
        opened.add_metric([reason], count)
    yield opened
    yield GaugeMetricFamily("ecobot_escalations_open", "Escalations waiting or claimed (from Redis)",
                            value=snap["escalations_open"])


class _Scrape:
    """What one scrape exposes: this process's metrics plus the Redis figures."""

    def __init__(self, snap: Optional[dict]) -> None:
        self.snap = snap

    def collect(self):
        yield from REGISTRY.collect()
        yield from redis_families(self.snap)


async def metrics_handler(request: web.Request) -> web.Response:
    from bot.app import KEYS, REDIS

    snap = await redis_snapshot(request.app[REDIS], request.app[KEYS])
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return web.Response(body=encoder(_Scrape(snap)), headers={"Content-Type": content_type})


def setup(app: web.Application) -> None:
    app.router.add_get("/metrics", metrics_handler)
