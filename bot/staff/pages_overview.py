"""The dashboard (counts by category, status and day, with charts), the audit
log (supervisors only), and the alerts every open console polls (new urgent
tickets and escalations, with the count in the page title).
"""
from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timedelta

from aiohttp import web

from bot.staff.auth import console, record, staff_page
from bot.staff.chart import bar_chart
from bot.staff.deadlines import format_wait, ticket_clocks
from bot.staff.layout import CSS, JS, POLLUTION_LABELS, fmt_ts, h, page, table
from core.escalations import WAITING
from core.handoff_rules import reason_label
from core.ticket_model import STATUS_CODES
from core.workdays import CHINA_TZ

DASHBOARD_DAYS = 14
DASHBOARD_MAX_TICKETS = 20000


@staff_page()
async def dashboard(request: web.Request) -> web.Response:
    c, s = console(request), request["session"]
    now = datetime.now(CHINA_TZ)
    tickets = await c.tickets.list_tickets(limit=DASHBOARD_MAX_TICKETS)
    by_type = Counter(t.pollution_type for t in tickets)
    by_status = Counter(t.status for t in tickets)
    by_day = Counter(t.created_at[:10] for t in tickets)
    days = [(now.date() - timedelta(days=i)) for i in range(DASHBOARD_DAYS - 1, -1, -1)]
    overdue = sum(1 for t in tickets if any(
        ck.done_at is None and ck.overdue for ck in ticket_clocks(
            t, now, c.settings.complaint_accept_workdays, c.settings.complaint_close_workdays)))
    open_esc = await c.escalations.list_open()
    counts = await c.escalations.open_counts()
    day_series = [(f"{d.month}/{d.day}", by_day.get(d.isoformat(), 0)) for d in days]
    type_series = [(label, by_type.get(code, 0)) for code, label in POLLUTION_LABELS.items()]
    status_series = [(st, by_status.get(st, 0)) for st in STATUS_CODES]
    summary = table(["指标", "数量"], [
        f"<tr><td>工单总数</td><td>{len(tickets)}</td></tr>",
        f'<tr><td>超期未办</td><td class="{"clock overdue" if overdue else ""}">{overdue}</td></tr>',
        f"<tr><td>紧急工单（未办结）</td><td>{sum(1 for t in tickets if t.urgent and t.is_open)}</td></tr>",
        f"<tr><td>转人工对话（进行中）</td><td>{counts['open']}</td></tr>",
        f"<tr><td>其中等待接入</td><td>{sum(1 for e in open_esc if e.status == WAITING)}</td></tr>",
    ], "summary")
    cat_table = table(["类别", "数量"], [f"<tr><td>{h(k)}</td><td>{v}</td></tr>" for k, v in type_series])
    st_table = table(["状态", "数量"], [f"<tr><td>{h(k)}</td><td>{v}</td></tr>" for k, v in status_series])
    body = (summary
            + bar_chart(day_series, f"最近{DASHBOARD_DAYS}天每日工单数")
            + '<div class="cols"><div>' + bar_chart(type_series, "按类别", 420) + cat_table
            + '</div><div>' + bar_chart(status_series, "按状态", 420, colour="#1677ff") + st_table + "</div></div>")
    return page("统计", body, s, "dashboard")


@staff_page(role="supervisor")
async def audit_page(request: web.Request) -> web.Response:
    c, s = console(request), request["session"]
    before = request.query.get("before") or None
    who, action = request.query.get("who", ""), request.query.get("action", "")
    entries = await c.audit.entries(limit=100, before_id=before, who=who, action=action)
    await record(request, "view_audit", "audit", detail=f"who={who} action={action}")
    rows = [f'<tr data-action="{h(e.action)}"><td>{h(fmt_ts(e.at))}</td><td>{h(e.who)}</td><td>{h(e.role)}</td>'
            f'<td>{h(e.action)}</td><td>{h(e.target)}</td><td><code>{h(e.before)}</code></td>'
            f'<td><code>{h(e.after)}</code></td><td>{h(e.detail)}</td></tr>' for e in entries]
    filters = (f'<form method="get" action="/staff/audit" class="filters"><label for="who">人员</label>'
               f'<input id="who" name="who" value="{h(who)}"><label for="action">操作</label>'
               f'<input id="action" name="action" value="{h(action)}"><button type="submit">筛选</button></form>')
    more = (f'<p><a href="/staff/audit?before={h(entries[-1].entry_id)}&amp;who={h(who)}&amp;action={h(action)}">更早</a></p>'
            if len(entries) == 100 else "")
    body = (filters + '<p class="muted">只追加、不可修改的操作记录（Redis Stream）。</p>'
            + table(["时间", "人员", "角色", "操作", "对象", "之前", "之后", "说明"], rows, "audit") + more)
    return page("审计日志", body, s, "audit")


@staff_page()
async def alerts(request: web.Request) -> web.Response:
    """What needs a person now: waiting escalations and unfinished urgent tickets (polled every 3 s)."""
    c = console(request)
    now = time.time()
    items = []
    for e in await c.escalations.list_open():
        if e.status != WAITING:
            continue
        tag = "【紧急】" if e.urgent else ""
        items.append({"key": f"esc:{e.esc_id}", "kind": "escalation", "id": e.esc_id, "urgent": e.urgent,
                      "href": f"/staff/esc/{e.esc_id}",
                      "label": f"{tag}转人工 {e.esc_id}：{reason_label(e.reason)}，已等待{format_wait(e.waiting_s(now))}"})
    for t in await c.tickets.list_escalations():
        items.append({"key": f"ticket:{t.ticket_id}", "kind": "ticket", "id": t.ticket_id, "urgent": True,
                      "href": f"/staff/tickets/{t.ticket_id}",
                      "label": f"【紧急工单】{t.ticket_id}：{POLLUTION_LABELS.get(t.pollution_type, t.pollution_type)}，"
                               f"{t.status}，{(t.urgent_reason or '')[:30]}"})
    items.sort(key=lambda i: (not i["urgent"], i["kind"] != "ticket"))
    return web.json_response({"count": len(items), "items": items[:20]}, headers={"Cache-Control": "no-store"})


async def css(request: web.Request) -> web.Response:
    return web.Response(text=CSS, content_type="text/css", charset="utf-8",
                        headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"})


async def js(request: web.Request) -> web.Response:
    return web.Response(text=JS, content_type="application/javascript", charset="utf-8",
                        headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"})


async def root(request: web.Request) -> web.Response:
    raise web.HTTPSeeOther("/staff/queue")


def setup(app: web.Application) -> None:
    app.router.add_get("/staff", root)
    app.router.add_get("/staff/", root)
    app.router.add_get("/staff/dashboard", dashboard)
    app.router.add_get("/staff/audit", audit_page)
    app.router.add_get("/staff/api/alerts", alerts)
    app.router.add_get("/staff/console.css", css)
    app.router.add_get("/staff/console.js", js)

