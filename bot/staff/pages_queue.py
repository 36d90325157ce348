"""Escalations in the console: the queue (urgent first, then the longest
wait), one conversation with its transcript and the messages exchanged in
human mode, and the staff actions claim, reply, resolve and hand back.
"""
from __future__ import annotations

import time
from datetime import datetime

from aiohttp import web

from bot.staff.auth import console, record, staff_page
from bot.staff.deadlines import escalation_clock, format_wait
from bot.staff.layout import (
    CHANNEL_LABELS, clock_html, csrf_field, fmt_ts, h, intent_label, page, post_button, table,
)
from bot.staff.privacy import has_phone, show_text
from core.escalations import (
    CLAIMED, HANDED_BACK, RESOLVED, STATUS_LABELS, WAITING, Escalation, EscalationError, fetch_transcript,
    last_ticket_id,
)
from core.handoff_rules import HANDED_BACK_TEXT, RESOLVED_TEXT, reason_label
from core.workdays import CHINA_TZ

MAX_REPLY_CHARS = 1000
ERRORS = {
    "taken": "这个对话已由 {} 接入。",
    "closed": "这个对话已经结束（{}）。",
    "missing": "没有找到这个对话。",
    "not_claimed": "请先接入这个对话再回复。",
    "not_yours": "这个对话由 {} 处理，只有接入的人或主管可以操作。",
}


def _error_text(e: EscalationError) -> str:
    detail = STATUS_LABELS.get(e.detail, e.detail)
    return "!" + ERRORS.get(e.code, "操作没有完成：{}").format(detail or e.code)


def short_sender(sender: str) -> str:
    return sender if len(sender) <= 12 else f"{sender[:6]}…{sender[-4:]}"


def _now() -> datetime:
    return datetime.now(CHINA_TZ)


def _status_badge(e: Escalation) -> str:
    if e.status == CLAIMED:
        return f'<span class="badge claimed">{h(e.claimed_by)} 处理中</span>'
    return f'<span class="badge">{h(STATUS_LABELS.get(e.status, e.status))}</span>'


def _row(e: Escalation, session, now_ts: float, reply_wd: int) -> str:
    urgent = '<span class="badge urgent">紧急</span> ' if e.urgent else ""
    actions = f'<a href="/staff/esc/{h(e.esc_id)}">查看</a>'
    if e.status == WAITING:
        actions += " " + post_button(f"/staff/esc/{e.esc_id}/claim", "接入", session)
    clock = escalation_clock(e.created_ts, e.closed_ts, _now(), reply_wd)
    unread = f' <span class="badge">{e.unread}条新消息</span>' if e.unread else ""
    ticket = f'<a href="/staff/tickets/{h(e.ticket_id)}">{h(e.ticket_id)}</a>' if e.ticket_id else ""
    return (f'<tr class="{"urgent" if e.urgent else ""}" data-esc="{h(e.esc_id)}"><td>{urgent}{h(e.esc_id)}</td>'
            f'<td>{h(CHANNEL_LABELS.get(e.channel, e.channel))}</td>'
            f'<td>{h(reason_label(e.reason))}<br><span class="muted">{h(show_text(e.detail, False))}</span></td>'
            f'<td>{h(intent_label(e.intent))}</td><td>{ticket}</td>'
            f'<td class="wait">{h(format_wait(e.waiting_s(now_ts)))}</td><td>{clock_html(clock)}</td>'
            f'<td>{_status_badge(e)}{unread}</td><td>{actions}</td></tr>')


@staff_page()
async def queue(request: web.Request) -> web.Response:
    c, s = console(request), request["session"]
    now_ts = time.time()
    open_ = await c.escalations.list_open()
    closed = await c.escalations.list_closed(20)
    urgent_tickets = await c.tickets.list_escalations()
    reply_wd = c.settings.enquiry_reply_workdays
    heads = ["编号", "渠道", "原因", "识别的意图", "工单", "已等待", "时限", "状态", "操作"]
    body = [f'<h2>待处理（{len(open_)}）</h2><p class="muted">紧急的排在最前，其余按等待时间排序。</p>']
    body.append(table(heads, [_row(e, s, now_ts, reply_wd) for e in open_], "queue") if open_
                else '<p class="muted">目前没有等待人工的对话。</p>')
    body.append(f"<h2>紧急工单（{len(urgent_tickets)}）</h2>")
    if urgent_tickets:
        from bot.staff.pages_tickets import ticket_table  # one table format for tickets

        body.append(ticket_table(urgent_tickets, c.settings))
    else:
        body.append('<p class="muted">没有未办结的紧急工单。</p>')
    body.append("<h2>最近结束的对话</h2>")
    body.append(table(["编号", "原因", "结果", "处理人", "结束时间"], [
        f'<tr><td><a href="/staff/esc/{h(e.esc_id)}">{h(e.esc_id)}</a></td><td>{h(reason_label(e.reason))}</td>'
        f'<td>{h(STATUS_LABELS.get(e.status, e.status))}</td><td>{h(e.closed_by or e.claimed_by)}</td>'
        f'<td>{h(fmt_ts(e.closed_ts))}</td></tr>' for e in closed]) if closed else '<p class="muted">暂无。</p>')
    return page("转人工队列", "".join(body), s, "queue")


def message_view(m: dict, full: bool) -> dict:
    """A human-mode message as the console shows it (also the JSON of the live view)."""
    role = m.get("role", "user")
    who = {"user": "用户", "staff": f"工作人员 {m.get('by', '')}", "bot": "机器人", "system": "系统"}.get(role, role)
    text = show_text(m.get("text") or "", full)
    image = ""
    if m.get("kind") == "image":
        url = m.get("pic_url") or ""
        image = url if url.startswith(("http://", "https://", "/uploads/")) else ""
        text = text or f"[图片] {m.get('media_id', '')}"
    elif m.get("kind") == "location":
        text = f"[位置] {m.get('label', '')} ({m.get('latitude')}, {m.get('longitude')})"
    return {"role": role if role in ("user", "staff", "bot", "system") else "system",
            "meta": f"{who} · {fmt_ts(m.get('at'))}", "text": text, "image": image}


def _message_html(v: dict) -> str:
    img = f'<img src="{h(v["image"])}" alt="用户发送的图片">' if v["image"] else ""
    return f'<div class="msg {h(v["role"])}"><span class="meta">{h(v["meta"])}</span>{h(v["text"])}{img}</div>'


async def _transcript(request: web.Request, e: Escalation) -> tuple[list[dict], str]:
    """The live transcript from Rasa's tracker; the one stored at escalation time when Rasa does not answer."""
    c = console(request)
    live = await fetch_transcript(c.http, c.settings.rasa_url, e.sender, timeout_s=3.0)
    if live:
        return live, "来自 Rasa 对话记录（实时）"
    return e.transcript, "转人工时保存的对话记录"


@staff_page()
async def conversation(request: web.Request) -> web.Response:
    c, s = console(request), request["session"]
    esc_id = request.match_info["esc_id"]
    e = await c.escalations.get(esc_id)
    if e is None:
        return page("没有找到", '<p>没有这个对话。<a href="/staff/queue">返回队列</a></p>', s, "queue", status=404)
    full = s.is_supervisor
    transcript, source = await _transcript(request, e)
    msgs = await c.escalations.messages(esc_id)
    ticket_id = e.ticket_id or last_ticket_id([{"event": t.get("role"), "text": t.get("text")} for t in transcript])
    if e.status == CLAIMED and e.claimed_by == s.user and e.unread:
        await c.escalations.mark_read(esc_id)
    shown = [t.get("text") for t in transcript] + [m.get("text") for m in msgs] + [e.detail]
    if full and any(has_phone(t) for t in shown):
        await record(request, "view_phone", esc_id, detail="对话中的完整手机号")
    clock = escalation_clock(e.created_ts, e.closed_ts, _now(), c.settings.enquiry_reply_workdays)
    urgent = '<span class="badge urgent">紧急</span> ' if e.urgent else ""
    ticket = f'<a href="/staff/tickets/{h(ticket_id)}">{h(ticket_id)}</a>' if ticket_id else "无"
    info = (f'<dl class="kv"><dt>状态</dt><dd>{urgent}{_status_badge(e)}</dd>'
            f'<dt>原因</dt><dd>{h(reason_label(e.reason))} <span class="muted">{h(show_text(e.detail, full))}</span></dd>'
            f'<dt>用户</dt><dd>{h(short_sender(e.sender))}（{h(CHANNEL_LABELS.get(e.channel, e.channel))}）</dd>'
            f'<dt>识别的意图</dt><dd>{h(intent_label(e.intent))}</dd><dt>工单</dt><dd>{ticket}</dd>'
            f'<dt>转人工时间</dt><dd>{h(fmt_ts(e.created_ts))}，已等待 {h(format_wait(e.waiting_s(time.time())))}</dd>'
            f'<dt>时限</dt><dd>{clock_html(clock)}</dd></dl>')
    tr_html = "".join(_message_html(message_view({"role": t.get("role"), "text": t.get("text"), "at": t.get("at")}, full))
                      for t in transcript) or '<p class="muted">没有对话记录。</p>'
    views = [message_view(m, full) for m in msgs]
    live = (f'<div class="msgs" id="messages" data-poll="/staff/api/esc/{h(esc_id)}/messages" '
            f'data-count="{len(views)}">' + "".join(_message_html(v) for v in views) + "</div>")
    actions = []
    mine = e.status == CLAIMED and e.claimed_by == s.user
    if e.status == WAITING:
        actions.append(post_button(f"/staff/esc/{esc_id}/claim", "接入这个对话", s))
    if mine:
        actions.append(f'<form method="post" action="/staff/esc/{h(esc_id)}/reply" class="reply">{csrf_field(s)}'
                       f'<label for="reply-text">回复用户（{"微信客服消息" if e.channel == "wechat" else "网页聊天"}）</label>'
                       f'<textarea id="reply-text" name="text" maxlength="{MAX_REPLY_CHARS}" required></textarea>'
                       '<button type="submit">发送</button></form>')
    if e.is_open and (mine or s.is_supervisor):
        actions.append(post_button(f"/staff/esc/{esc_id}/resolve", "已解决，结束人工服务", s))
        actions.append(post_button(f"/staff/esc/{esc_id}/handback", "交回机器人", s, "secondary"))
    body = (f'{info}<div class="cols"><div><h2>机器人对话记录</h2><p class="muted">{h(source)}</p>'
            f'<div class="msgs transcript">{tr_html}</div></div>'
            f'<div><h2>人工服务消息</h2>{live}<div class="actions">{"".join(actions)}</div></div></div>')
    return page(f"对话 {esc_id}", body, s, "queue")


@staff_page()
async def messages_api(request: web.Request) -> web.Response:
    c, s = console(request), request["session"]
    try:
        after = max(0, int(request.query.get("after", "0")))
    except ValueError:
        after = 0
    msgs = await c.escalations.messages(request.match_info["esc_id"])
    new = [message_view(m, s.is_supervisor) for m in msgs[after:]]
    if s.is_supervisor and any(has_phone(m.get("text")) for m in msgs[after:]):
        await record(request, "view_phone", request.match_info["esc_id"], detail="对话中的完整手机号")
    return web.json_response({"messages": new, "count": len(msgs)})


def _back(esc_id: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(f"/staff/esc/{esc_id}")


@staff_page()
async def claim(request: web.Request) -> web.Response:
    c, s = console(request), request["session"]
    esc_id = request.match_info["esc_id"]
    try:
        e = await c.escalations.claim(esc_id, s.user)
    except EscalationError as err:
        await c.sessions.flash(s, _error_text(err))
        raise _back(esc_id)
    await record(request, "claim_escalation", esc_id, {"status": WAITING}, {"status": CLAIMED, "by": s.user})
    await c.escalations.add_message(esc_id, "system", f"{s.user} 接入了对话")
    await c.sessions.flash(s, f"已接入 {esc_id}，用户接下来的消息会显示在这里。")
    raise _back(e.esc_id)


@staff_page()
async def reply(request: web.Request) -> web.Response:
    c, s = console(request), request["session"]
    esc_id = request.match_info["esc_id"]
    text = str(request["form"].get("text") or "").strip()[:MAX_REPLY_CHARS]
    if not text:
        await c.sessions.flash(s, "!回复内容是空的。")
        raise _back(esc_id)
    try:
        await c.escalations.reply(esc_id, s.user, text)
    except EscalationError as err:
        await c.sessions.flash(s, _error_text(err))
        raise _back(esc_id)
    e = await c.escalations.get(esc_id)
    ok, why = await c.handoff.deliver(e.sender, e.channel, text)
    await record(request, "reply_escalation", esc_id, None, {"text": text, "delivered": ok}, why)
    if not ok:
        await c.escalations.add_message(esc_id, "system", f"发送失败：{why}")
        await c.sessions.flash(s, f"!{why}")
    else:
        await c.sessions.flash(s, "已发送。")
    raise _back(esc_id)


async def _close(request: web.Request, outcome: str, user_text: str, action: str, done: str) -> web.Response:
    c, s = console(request), request["session"]
    esc_id = request.match_info["esc_id"]
    try:
        before = await c.escalations.get(esc_id)
        e = await c.escalations.close(esc_id, outcome, s.user, require_claimer=not s.is_supervisor)
    except EscalationError as err:
        await c.sessions.flash(s, _error_text(err))
        raise _back(esc_id)
    await c.escalations.add_message(esc_id, "system", f"{s.user}：{done}")
    ok, why = await c.handoff.deliver(e.sender, e.channel, user_text, by="bot")
    await record(request, action, esc_id, {"status": before.status if before else ""}, {"status": e.status},
                 "" if ok else why)
    await c.sessions.flash(s, f"{esc_id} {done}，机器人已恢复应答。" + ("" if ok else f"（通知用户时出错：{why}）"))
    raise web.HTTPSeeOther("/staff/queue")


@staff_page()
async def resolve(request: web.Request) -> web.Response:
    return await _close(request, RESOLVED, RESOLVED_TEXT, "resolve_escalation", "已解决")


@staff_page()
async def hand_back(request: web.Request) -> web.Response:
    return await _close(request, HANDED_BACK, HANDED_BACK_TEXT, "handback_escalation", "已交回机器人")


def setup(app: web.Application) -> None:
    app.router.add_get("/staff/queue", queue)
    app.router.add_get(r"/staff/esc/{esc_id:E\d+}", conversation)
    app.router.add_get(r"/staff/api/esc/{esc_id:E\d+}/messages", messages_api)
    app.router.add_post(r"/staff/esc/{esc_id:E\d+}/claim", claim)
    app.router.add_post(r"/staff/esc/{esc_id:E\d+}/reply", reply)
    app.router.add_post(r"/staff/esc/{esc_id:E\d+}/resolve", resolve)
    app.router.add_post(r"/staff/esc/{esc_id:E\d+}/handback", hand_back)

