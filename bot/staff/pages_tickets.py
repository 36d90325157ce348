"""Hotline tickets in the console: the list with filters (status, category,
urgency, date), one ticket with its history, evidence photos, location and
deadline clocks, and the staff actions: status change with a note, link as a
duplicate, transfer to another department. The citizen is told of each change
(WeChat customer-service message or the web chat outbox).
"""
from __future__ import annotations

from datetime import date, datetime
from urllib.parse import quote, urlencode

from aiohttp import web

from bot.staff.auth import console, record, staff_page
from bot.staff.deadlines import ticket_clocks
from bot.staff.layout import (
    CHANNEL_LABELS, POLLUTION_LABELS, clock_html, csrf_field, fmt_iso, h, page, select, table,
)
from bot.staff.privacy import has_phone, mask_phone, show_phone, show_text
from core.ticket_model import (
    A_CREATED, A_DUPLICATE_REPORT, A_ESCALATED, A_EVIDENCE, A_LINKED_DUPLICATE, A_STAFF_REPLY, A_STATUS,
    STATUS_CODES, TICKET_ID_RE, TRANSITIONS, IllegalTransition, Status, Ticket,
)
from core.tickets import TicketNotFound
from core.workdays import CHINA_TZ

PAGE_SIZE = 50
CODE_TO_STATUS = {v: k for k, v in STATUS_CODES.items()}
ACTION_LABELS = {A_CREATED: "受理", A_DUPLICATE_REPORT: "同一问题的新反映", A_STATUS: "状态变更",
                 A_LINKED_DUPLICATE: "合并了重复工单", A_EVIDENCE: "补充证据", A_STAFF_REPLY: "答复群众",
                 A_ESCALATED: "列为紧急"}
MAX_NOTE = 500


def _now() -> datetime:
    return datetime.now(CHINA_TZ)


def ticket_table(tickets: list[Ticket], settings) -> str:
    """The ticket list; phone numbers are always masked here (full numbers only on a supervisor's ticket page)."""
    now = _now()
    rows = []
    for t in tickets:
        clocks = "<br>".join(clock_html(c) for c in ticket_clocks(
            t, now, settings.complaint_accept_workdays, settings.complaint_close_workdays))
        urgent = '<span class="badge urgent">紧急</span>' if t.urgent else ""
        place = t.location_label or t.location_text
        rows.append(
            f'<tr class="{"urgent" if t.urgent else ""}" data-ticket="{h(t.ticket_id)}">'
            f'<td><a href="/staff/tickets/{h(t.ticket_id)}">{h(t.ticket_id)}</a> {urgent}</td>'
            f'<td>{h(fmt_iso(t.created_at))}</td><td>{h(POLLUTION_LABELS.get(t.pollution_type, t.pollution_type))}</td>'
            f'<td>{h(t.status)}</td><td>{h(show_text(place, False))}</td>'
            f'<td>{h(mask_phone(t.contact_phone) if t.contact_phone else "匿名")}</td><td>{clocks}</td></tr>')
    return table(["工单号", "受理时间", "类别", "状态", "地点", "联系电话", "时限"], rows, "tickets")


def _parse_day(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@staff_page()
async def ticket_list(request: web.Request) -> web.Response:
    c, s = console(request), request["session"]
    q = request.query
    status_code = q.get("status", "")
    ptype = q.get("type", "")
    urgent = q.get("urgent", "")
    day_from, day_to = _parse_day(q.get("from", "")), _parse_day(q.get("to", ""))
    overdue_only = q.get("overdue") == "1"
    try:
        page_no = max(1, int(q.get("page", "1")))
    except ValueError:
        page_no = 1
    tickets = await c.tickets.list_tickets(
        status=CODE_TO_STATUS.get(status_code), pollution_type=ptype if ptype in POLLUTION_LABELS else None,
        urgent={"1": True, "0": False}.get(urgent), date_from=day_from, date_to=day_to,
        limit=PAGE_SIZE if not overdue_only else 5000, offset=(page_no - 1) * PAGE_SIZE if not overdue_only else 0)
    if overdue_only:
        now = _now()
        tickets = [t for t in tickets if any(
            not ck.done_at and ck.overdue for ck in ticket_clocks(
                t, now, c.settings.complaint_accept_workdays, c.settings.complaint_close_workdays))]
    filters = (
        '<form method="get" action="/staff/tickets" class="filters">'
        + select("status", [("", "全部状态")] + [(code, st) for st, code in STATUS_CODES.items()], status_code, "状态")
        + select("type", [("", "全部类别")] + list(POLLUTION_LABELS.items()), ptype, "类别")
        + select("urgent", [("", "全部"), ("1", "紧急"), ("0", "一般")], urgent, "紧急程度")
        + f'<label for="f-from">从</label><input type="date" id="f-from" name="from" value="{h(day_from or "")}">'
        + f'<label for="f-to">到</label><input type="date" id="f-to" name="to" value="{h(day_to or "")}">'
        + f'<label><input type="checkbox" name="overdue" value="1"{" checked" if overdue_only else ""}> 只看超期</label>'
        + '<button type="submit">筛选</button></form>')
    body = filters + (ticket_table(tickets, c.settings) if tickets else '<p class="muted">没有符合条件的工单。</p>')
    if not overdue_only and len(tickets) == PAGE_SIZE:
        params = {k: v for k, v in q.items() if k != "page"}
        params["page"] = str(page_no + 1)
        body += f'<p><a href="/staff/tickets?{h(urlencode(params))}">下一页</a></p>'
    return page("热线工单", body, s, "tickets")


def _history_rows(t: Ticket, full: bool) -> list[str]:
    rows = []
    for e in t.history:
        action = e.get("action", "")
        change = f'{e.get("status_from") or ""} → {e.get("status_to")}' if e.get("status_to") else ""
        extra = []
        if e.get("linked_to"):
            extra.append(f"关联工单 {e['linked_to']}")
        if e.get("linked_from"):
            extra.append(f"重复工单 {e['linked_from']}")
        if e.get("transferred_to"):
            extra.append(f"转交 {e['transferred_to']}")
        if e.get("contact_phone"):
            extra.append(f"联系电话 {show_phone(e['contact_phone'], full)}")
        if e.get("location_text"):
            extra.append(f"地点 {e['location_text']}")
        if e.get("evidence"):
            extra.append(f"{len(e['evidence'])}张图片")
        rows.append(f'<tr><td>{h(fmt_iso(e.get("at")))}</td><td>{h(e.get("actor"))}</td>'
                    f'<td>{h(ACTION_LABELS.get(action, action))}</td><td>{h(change)}</td>'
                    f'<td>{h(show_text(e.get("note") or "", full))}<br><span class="muted">'
                    f'{h(show_text("；".join(extra), full))}</span></td></tr>')
    return rows


def _evidence(t: Ticket) -> str:
    items = list(t.evidence)
    for e in t.history:
        items.extend(e.get("evidence") or [])
    if not items:
        return '<p class="muted">没有图片。</p>'
    out = []
    for ev in items:
        url = ev.get("url") or ""
        img = (f'<a href="{h(url)}" target="_blank" rel="noopener"><img src="{h(url)}" alt="证据照片"></a>'
               if url.startswith(("http://", "https://", "/uploads/")) else "")
        out.append(f'<figure>{img}<figcaption>{h(ev.get("media_id"))} · {h(fmt_iso(ev.get("received_at")))}'
                   f'</figcaption></figure>')
    return f'<div class="evidence">{"".join(out)}</div>'


def _location(t: Ticket, full: bool) -> str:
    parts = [h(show_text(t.location_text, full))]
    if t.location_label and t.location_label != t.location_text:
        parts.append(h(show_text(t.location_label, full)))
    if t.lat is not None and t.lon is not None:
        link = f"https://uri.amap.com/marker?position={t.lon},{t.lat}&name={quote(t.ticket_id)}"
        parts.append(f'坐标 {t.lat:.6f}, {t.lon:.6f} <a href="{h(link)}" target="_blank" rel="noopener">在地图中查看</a>')
    return "<br>".join(p for p in parts if p) or "未提供"


def _forms(t: Ticket, s) -> str:
    allowed = [st for st in TRANSITIONS.get(t.status, ()) if st not in (Status.DUPLICATE, Status.TRANSFERRED)]
    if not TRANSITIONS.get(t.status):
        return f'<p class="muted">工单已是最终状态（{h(t.status)}），不再变更。</p>'
    base = f"/staff/tickets/{h(t.ticket_id)}"
    out = []
    if allowed:
        out.append(f'<form method="post" action="{base}/status" class="ticket-status">{csrf_field(s)}'
                   + select("status", [(STATUS_CODES[st], st) for st in sorted(allowed)], "", "新状态")
                   + f'<label for="note-status">说明（会告知群众）</label>'
                   f'<textarea id="note-status" name="note" maxlength="{MAX_NOTE}"></textarea>'
                   '<button type="submit">变更状态</button></form>')
    if Status.DUPLICATE in TRANSITIONS.get(t.status, ()):
        out.append(f'<form method="post" action="{base}/duplicate" class="ticket-duplicate">{csrf_field(s)}'
                   '<label for="linked_to">与此工单重复（原工单号）</label>'
                   '<input id="linked_to" name="linked_to" pattern="HB[0-9]{12}" placeholder="HB202611290001" required>'
                   f'<label for="note-dup">说明</label><textarea id="note-dup" name="note" maxlength="{MAX_NOTE}"></textarea>'
                   '<button type="submit" class="secondary">标记为重复</button></form>')
    if Status.TRANSFERRED in TRANSITIONS.get(t.status, ()):
        out.append(f'<form method="post" action="{base}/transfer" class="ticket-transfer">{csrf_field(s)}'
                   '<label for="department">转交部门</label>'
                   '<input id="department" name="department" maxlength="60" placeholder="如：县住建局" required>'
                   f'<label for="note-tr">说明</label><textarea id="note-tr" name="note" maxlength="{MAX_NOTE}"></textarea>'
                   '<button type="submit" class="secondary">转办</button></form>')
    return "".join(out)


@staff_page()
async def ticket_page(request: web.Request) -> web.Response:
    c, s = console(request), request["session"]
    tid = request.match_info["ticket_id"]
    t = await c.tickets.get(tid)
    if t is None:
        return page("没有找到", f'<p>没有工单 {h(tid)}。<a href="/staff/tickets">返回列表</a></p>', s, "tickets", status=404)
    full = s.is_supervisor
    phones = [t.contact_phone] + [e.get("contact_phone") for e in t.history]
    texts = [t.description, t.location_text] + [e.get("note") for e in t.history]
    if full and (any(phones) or any(has_phone(x) for x in texts)):
        await record(request, "view_phone", tid, detail="工单中的完整手机号")
    clocks = ticket_clocks(t, _now(), c.settings.complaint_accept_workdays, c.settings.complaint_close_workdays)
    urgent = f'<span class="badge urgent">紧急</span> {h(t.urgent_reason)}' if t.urgent else "一般"
    contact = "匿名" if t.anonymous or not t.contact_phone else show_phone(t.contact_phone, full)
    info = (f'<dl class="kv"><dt>状态</dt><dd class="status">{h(t.status)}</dd>'
            f'<dt>时限</dt><dd>{"<br>".join(clock_html(ck) for ck in clocks)}</dd>'
            f'<dt>紧急程度</dt><dd>{urgent}</dd>'
            f'<dt>类别</dt><dd>{h(POLLUTION_LABELS.get(t.pollution_type, t.pollution_type))}</dd>'
            f'<dt>受理时间</dt><dd>{h(fmt_iso(t.created_at))}</dd><dt>发生时间</dt><dd>{h(t.occurred or "未说明")}</dd>'
            f'<dt>地点</dt><dd>{_location(t, full)}</dd>'
            f'<dt>情况描述</dt><dd>{h(show_text(t.description, full))}</dd>'
            f'<dt>联系电话</dt><dd class="phone">{h(contact)}</dd>'
            f'<dt>来源</dt><dd>{h(CHANNEL_LABELS.get(t.channel, t.channel))}</dd>'
            + (f'<dt>重复于</dt><dd><a href="/staff/tickets/{h(t.linked_to)}">{h(t.linked_to)}</a></dd>' if t.linked_to else "")
            + (f'<dt>转办至</dt><dd>{h(t.transferred_to)}</dd>' if t.transferred_to else "")
            + (f'<dt>给群众的答复</dt><dd>{h(t.staff_reply)}</dd>' if t.staff_reply else "")
            + "</dl>")
    body = (info + "<h2>证据照片</h2>" + _evidence(t)
            + "<h2>办理记录</h2>" + table(["时间", "操作人", "操作", "状态", "说明"], _history_rows(t, full))
            + "<h2>办理</h2>" + _forms(t, s))
    return page(f"工单 {tid}", body, s, "tickets")


def _status_text(status: str) -> str:
    return {Status.PROCESSING: "正在处理", Status.CLOSED: "已办结"}.get(status, status)


async def notify_citizen(request: web.Request, t: Ticket, text: str) -> tuple[bool, str]:
    if t.channel not in ("wechat", "web"):
        return False, "该工单不是来自微信或网页，请电话告知群众"
    return await console(request).handoff.deliver(t.reporter, t.channel, text, by="staff")


async def _apply(request: web.Request, action: str, new_status: str, note: str, citizen_text: str,
                 linked_to: str | None = None, transferred_to: str | None = None) -> web.Response:
    c, s = console(request), request["session"]
    tid = request.match_info["ticket_id"]
    back = web.HTTPSeeOther(f"/staff/tickets/{tid}")
    try:
        before = await c.tickets.get(tid)
        t = await c.tickets.change_status(tid, new_status, s.user, note, linked_to=linked_to,
                                          transferred_to=transferred_to)
        if note:
            t = await c.tickets.set_staff_reply(tid, note, s.user)
    except (IllegalTransition, TicketNotFound) as e:
        await c.sessions.flash(s, f"!状态没有变更：{e}")
        raise back
    ok, why = await notify_citizen(request, t, citizen_text + (f"工作人员说明：{note}" if note else ""))
    await record(request, action, tid, {"status": before.status if before else None},
                 {"status": t.status, "note": note, "linked_to": linked_to, "transferred_to": transferred_to,
                  "citizen_told": ok}, why)
    await c.sessions.flash(s, f"{tid} 已变更为「{t.status}」。" + ("已通知群众。" if ok else f"（{why}）"))
    raise back


@staff_page()
async def change_status(request: web.Request) -> web.Response:
    form = request["form"]
    new_status = CODE_TO_STATUS.get(str(form.get("status") or ""), "")
    note = str(form.get("note") or "").strip()[:MAX_NOTE]
    tid = request.match_info["ticket_id"]
    text = f"【工单进度】您反映的问题（工单{tid}）{_status_text(new_status)}。"
    return await _apply(request, "ticket_status", new_status, note, text)


@staff_page()
async def mark_duplicate(request: web.Request) -> web.Response:
    form = request["form"]
    linked = str(form.get("linked_to") or "").strip().upper()
    tid = request.match_info["ticket_id"]
    if not TICKET_ID_RE.match(linked):
        await console(request).sessions.flash(request["session"], "!原工单号格式应为 HB + 12位数字。")
        raise web.HTTPSeeOther(f"/staff/tickets/{tid}")
    note = str(form.get("note") or "").strip()[:MAX_NOTE]
    text = (f"【工单进度】您反映的问题（工单{tid}）与工单{linked}为同一问题，已合并到该工单一并办理，"
            f"回复“{linked}”可查询进度。")
    return await _apply(request, "ticket_duplicate", Status.DUPLICATE, note, text, linked_to=linked)


@staff_page()
async def transfer(request: web.Request) -> web.Response:
    form = request["form"]
    dept = str(form.get("department") or "").strip()[:60]
    note = str(form.get("note") or "").strip()[:MAX_NOTE]
    tid = request.match_info["ticket_id"]
    text = f"【工单进度】您反映的问题（工单{tid}）由{dept}负责，已转交{dept}办理。"
    return await _apply(request, "ticket_transfer", Status.TRANSFERRED, note, text, transferred_to=dept)


def setup(app: web.Application) -> None:
    app.router.add_get("/staff/tickets", ticket_list)
    app.router.add_get(r"/staff/tickets/{ticket_id:HB\d{12}}", ticket_page)
    app.router.add_post(r"/staff/tickets/{ticket_id:HB\d{12}}/status", change_status)
    app.router.add_post(r"/staff/tickets/{ticket_id:HB\d{12}}/duplicate", mark_duplicate)
    app.router.add_post(r"/staff/tickets/{ticket_id:HB\d{12}}/transfer", transfer)
