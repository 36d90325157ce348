"""The staff console at /staff: escalations (claim, reply, resolve, hand back),
hotline tickets (filters, history, status changes the citizen is told of),
deadlines, phone-number privacy, an append-only audit log, a dashboard, and
alerts that reach every open console within seconds.

Server-rendered HTML from aiohttp handlers (no build step, nothing from the
internet). Accounts: `python -m bot.staff add-user NAME --role agent|supervisor`.
"""
from __future__ import annotations

from aiohttp import web


async def _console_ctx(app: web.Application):
    from bot.app import HTTP, KEYS, REDIS, SETTINGS
    from bot.handoff import HANDOFF
    from bot.staff.accounts import AccountStore
    from bot.staff.audit import AuditLog
    from bot.staff.auth import STAFF, Console
    from bot.staff.sessions import SessionStore
    from core.escalations import EscalationStore
    from core.tickets import TicketStore

    r, k = app[REDIS], app[KEYS]
    app[STAFF] = Console(AccountStore(r, k), SessionStore(r, k), AuditLog(r, k), EscalationStore(r, k),
                         TicketStore(r, k), app[HANDOFF], app[SETTINGS], app[HTTP])
    yield


def setup(app: web.Application) -> None:
    """Register after bot.handoff.setup (the console delivers through it)."""
    from bot.staff import auth, pages_overview, pages_queue, pages_tickets

    app.cleanup_ctx.append(_console_ctx)
    app.router.add_get("/staff/login", auth.login_form)
    app.router.add_post("/staff/login", auth.login_submit)
    app.router.add_post("/staff/logout", auth.logout)
    pages_overview.setup(app)
    pages_queue.setup(app)
    pages_tickets.setup(app)
