"""HTML of the console: the page frame, escaping, small widgets, the CSS and
the script (served from /staff/console.css and /staff/console.js so that the
Content-Security-Policy can forbid inline code). Server-rendered, no build
step, nothing loaded from the internet.
"""
from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Iterable, Optional

from aiohttp import web

from bot.staff.sessions import Session

POLLUTION_LABELS = {"air": "大气", "water": "水", "noise": "噪声", "solid_waste": "固废",
                    "livestock": "畜禽养殖", "other": "其他"}
CHANNEL_LABELS = {"wechat": "微信", "web": "网页", "hotline": "电话"}
INTENT_LABELS = {
    "greet": "问候", "goodbye": "告别", "thank": "致谢", "affirm": "肯定", "deny": "否定", "bot_challenge": "问是不是机器人",
    "request_human": "要求转人工", "ask_contact": "问联系方式", "ask_materials": "问申报材料", "ask_time_limit": "问办理时限",
    "ask_process": "问办理流程", "ask_eia_category": "问环评类别", "report_pollution": "举报污染",
    "check_status": "查询进度", "out_of_scope": "非环保事项", "cancel": "取消", "send_image": "发图片",
    "send_location": "发位置", "nlu_fallback": "没听懂",
}


def intent_label(intent: str | None) -> str:
    if not intent:
        return "无"
    label = INTENT_LABELS.get(intent)
    return f"{label}（{intent}）" if label else intent

CSP = ("default-src 'self'; img-src 'self' data: http: https:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")


def h(value: object) -> str:
    """Escape for HTML text and attribute values."""
    return "" if value is None else escape(str(value), quote=True)


def fmt_ts(ts: float | None) -> str:
    if not ts:
        return ""
    from core.workdays import CHINA_TZ

    return datetime.fromtimestamp(float(ts), CHINA_TZ).strftime("%Y-%m-%d %H:%M")


def fmt_iso(at: str | None) -> str:
    if not at:
        return ""
    try:
        return datetime.fromisoformat(at).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return at


def csrf_field(session: Session) -> str:
    return f'<input type="hidden" name="csrf" value="{h(session.csrf)}">'


def post_button(action: str, label: str, session: Session, css: str = "", extra: str = "") -> str:
    return (f'<form method="post" action="{h(action)}" class="inline">{csrf_field(session)}{extra}'
            f'<button type="submit" class="{h(css)}">{h(label)}</button></form>')


def table(headers: Iterable[str], rows: Iterable[str], css: str = "") -> str:
    head = "".join(f"<th>{h(x)}</th>" for x in headers)
    body = "".join(rows)
    return f'<table class="{h(css)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def select(name: str, options: Iterable[tuple[str, str]], chosen: str = "", label: str = "") -> str:
    opts = "".join(f'<option value="{h(v)}"{" selected" if v == chosen else ""}>{h(t)}</option>'
                   for v, t in options)
    field = f'<select name="{h(name)}" id="f-{h(name)}">{opts}</select>'
    return f'<label for="f-{h(name)}">{h(label)}</label>{field}' if label else field


def _nav(session: Optional[Session], active: str) -> str:
    if session is None:
        return ""
    links = [("queue", "/staff/queue", "转人工队列"), ("tickets", "/staff/tickets", "热线工单"),
             ("dashboard", "/staff/dashboard", "统计")]
    if session.is_supervisor:
        links.append(("audit", "/staff/audit", "审计日志"))
    items = "".join(f'<a href="{u}" class="{"active" if k == active else ""}">{t}</a>' for k, u, t in links)
    role = "主管" if session.is_supervisor else "坐席"
    logout = post_button("/staff/logout", "退出", session, "link")
    return (f'<nav>{items}<span class="me">{h(session.user)}（{role}）{logout}</span></nav>'
            '<div id="alerts" aria-live="polite"></div>')


def page(title: str, body: str, session: Optional[Session] = None, active: str = "",
         status: int = 200, flash: str = "") -> web.Response:
    notice = ""
    flash = flash or (session.flash if session is not None else "")
    if flash:
        kind = "error" if flash.startswith("!") else "ok"
        notice = f'<p class="flash {kind}" role="status">{h(flash.lstrip("!"))}</p>'
    html = ("<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{h(title)} - 生态环境局工作台</title>"
            "<link rel=\"stylesheet\" href=\"/staff/console.css\"></head>"
            f"<body data-base-title=\"{h(title)} - 生态环境局工作台\">"
            f"<header><strong>县生态环境局 · 工作台</strong>{_nav(session, active)}</header>"
            f"<main>{notice}<h1>{h(title)}</h1>{body}</main>"
            + ("<script src=\"/staff/console.js\"></script>" if session is not None else "")
            + "</body></html>")
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8",
                        headers=security_headers())


def security_headers() -> dict:
    return {"Content-Security-Policy": CSP, "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin", "Cache-Control": "no-store"}


def clock_html(clock) -> str:
    return f'<span class="clock {h(clock.css)}">{h(clock.text)}</span>'


CSS = """
body{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:0;color:#222;background:#f5f6f4}
header{background:#2f7d5b;color:#fff;padding:8px 16px;display:flex;flex-wrap:wrap;align-items:center;gap:16px}
header nav{display:flex;gap:12px;align-items:center;flex:1}
header nav a{color:#e8f5ee;text-decoration:none;padding:4px 8px;border-radius:4px}
header nav a.active{background:#1f5a40;color:#fff}
header .me{margin-left:auto}
main{padding:12px 20px;max-width:1200px}
h1{font-size:20px}
h2{font-size:16px;margin-top:24px}
table{border-collapse:collapse;width:100%;background:#fff;margin:8px 0}
th,td{border:1px solid #ddd;padding:5px 8px;text-align:left;vertical-align:top;font-size:14px}
th{background:#eef3ef}
tr.urgent td{background:#fff1f0}
.badge{display:inline-block;padding:0 6px;border-radius:8px;font-size:12px;background:#ddd}
.badge.urgent{background:#d4380d;color:#fff}
.badge.claimed{background:#1677ff;color:#fff}
.clock{font-size:13px;white-space:nowrap}
.clock.overdue,.clock.late{color:#cf1322;font-weight:bold}
.clock.due-soon{color:#d46b08}
.clock.ok,.clock.ontime{color:#389e0d}
.flash{padding:8px 12px;border-radius:4px}
.flash.ok{background:#f6ffed;border:1px solid #b7eb8f}
.flash.error{background:#fff1f0;border:1px solid #ffa39e}
form.inline{display:inline}
button{background:#2f7d5b;color:#fff;border:0;border-radius:4px;padding:5px 12px;cursor:pointer;font-size:14px}
button.secondary{background:#8c8c8c}
button.danger{background:#cf1322}
button.link{background:none;color:#fff;text-decoration:underline;padding:0 4px}
textarea{width:100%;min-height:70px;font-size:14px}
input,select{font-size:14px;padding:3px}
.filters{display:flex;flex-wrap:wrap;gap:8px;align-items:center;background:#fff;padding:8px;border:1px solid #ddd}
.msgs{background:#fff;border:1px solid #ddd;padding:8px;max-height:420px;overflow-y:auto}
.msg{margin:6px 0;padding:6px 10px;border-radius:6px;max-width:80%;white-space:pre-wrap}
.msg.user{background:#f0f0f0}
.msg.bot{background:#e6f4ff;margin-left:auto}
.msg.staff{background:#d9f7be;margin-left:auto}
.msg.system{background:#fffbe6;font-size:13px;margin:6px auto}
.msg .meta{display:block;font-size:11px;color:#888}
.msg img,.evidence img{max-width:240px;max-height:240px;display:block}
.evidence{display:flex;flex-wrap:wrap;gap:12px}
#alerts{width:100%}
#alerts .alert{background:#fff1f0;color:#a8071a;border:1px solid #ffa39e;border-radius:4px;padding:4px 10px;margin:4px 0;display:block}
#alerts .alert.new{font-weight:bold}
dl.kv{display:grid;grid-template-columns:120px 1fr;gap:4px 12px;background:#fff;padding:10px;border:1px solid #ddd}
dl.kv dt{color:#666}
dl.kv dd{margin:0}
.cols{display:flex;flex-wrap:wrap;gap:24px}
.cols>div{flex:1;min-width:320px}
.chart{background:#fff;border:1px solid #ddd;margin:8px 0;max-width:100%;height:auto}
.muted{color:#888}
.actions form{margin:8px 8px 0 0}
.actions label{display:block;margin-top:8px}
.login{max-width:360px;background:#fff;padding:16px;border:1px solid #ddd}
.login label{display:block;margin-top:8px}
.login input{width:100%}
"""

JS = r"""
(function () {
  "use strict";
  var base = document.body.getAttribute("data-base-title") || document.title;
  var box = document.getElementById("alerts");
  var seen = null;
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function alerts() {
    fetch("/staff/api/alerts", {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) {
        if (!d) return;
        document.title = (d.count > 0 ? "(" + d.count + ") " : "") + base;
        if (!box) return;
        var ids = {};
        box.textContent = "";
        d.items.forEach(function (it) {
          ids[it.key] = true;
          var a = el("a", "alert" + (seen && !seen[it.key] ? " new" : ""), it.label);
          a.href = it.href;
          a.setAttribute("data-key", it.key);
          box.appendChild(a);
        });
        seen = ids;
      })
      .catch(function () {});
  }
  alerts();
  setInterval(alerts, 3000);

  var msgs = document.getElementById("messages");
  if (msgs) {
    var url = msgs.getAttribute("data-poll");
    var count = parseInt(msgs.getAttribute("data-count") || "0", 10);
    setInterval(function () {
      fetch(url + "?after=" + count, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (d) {
          if (!d) return;
          d.messages.forEach(function (m) {
            var div = el("div", "msg " + m.role);
            div.appendChild(el("span", "meta", m.meta));
            if (m.text) div.appendChild(document.createTextNode(m.text));
            if (m.image) { var img = el("img"); img.src = m.image; img.alt = "用户发送的图片"; div.appendChild(img); }
            msgs.appendChild(div);
            count += 1;
          });
          if (d.messages.length) msgs.scrollTop = msgs.scrollHeight;
        })
        .catch(function () {});
    }, 3000);
  }
})();
"""
