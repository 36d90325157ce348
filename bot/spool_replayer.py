"""Replays the complaint spool into Redis once Redis answers again.

The action server spools a complaint (core/spool.py) when Redis cannot be
reached and tells the citizen it was recorded. This background task of the
gateway checks the spool every few seconds; when Redis is back it moves every
spooled complaint into the ticket store exactly once (the spool is idempotent
by message id) and tells each citizen their ticket number.
"""
from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from core.spool import Spool
from core.tickets import TicketStore

log = logging.getLogger(__name__)
INTERVAL_S = 3.0


def ticket_message(result) -> str:
    t = result.ticket
    if result.duplicate_of:
        return f"您之前的举报已登记：与工单 {t.ticket_id} 为同一问题，已合并办理（当前状态：{t.status}）。"
    return f"您之前的举报已登记，工单编号：{t.ticket_id}。回复编号可查询进度。"


async def replay_once(app: web.Application) -> int:
    from bot.app import KEYS, REDIS, SETTINGS

    spool = Spool.from_settings(app[SETTINGS])
    if spool.pending_count() == 0:
        return 0
    store = TicketStore(app[REDIS], app[KEYS])
    result = await spool.replay(store)
    for record, created in result.replayed:
        log.info("spooled complaint %s is now ticket %s", record.spool_id, created.ticket.ticket_id)
        try:
            # WeChat: customer-service message; web chat: the user's outbox (bot/handoff.py).
            # (It imported a module bot.notify that never existed: nobody was told, silently.)
            from bot.handoff import HANDOFF

            ok, why = await app[HANDOFF].deliver(record.report.reporter, record.report.channel,
                                                 ticket_message(created), by="system")
            if not ok:
                log.warning("citizen not told ticket %s: %s", created.ticket.ticket_id, why)
        except Exception:  # noqa: BLE001 - the ticket exists; the citizen can look it up
            log.exception("could not tell the citizen their ticket number")
    if result.error:
        log.warning("spool replay stopped: %s", result.error)
    return len(result.replayed)


async def _loop(app: web.Application) -> None:
    while True:
        try:
            await replay_once(app)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - keep trying; the spool keeps everything
            log.exception("spool replay failed")
        await asyncio.sleep(INTERVAL_S)


async def spool_replayer_ctx(app: web.Application):
    task = asyncio.create_task(_loop(app))
    yield
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
