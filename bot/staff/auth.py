"""Who may use the console: the shared services of one gateway process
(`Console`), the `staff_page` guard (session, CSRF, role), and login/logout.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from urllib.parse import quote

from aiohttp import web

from bot.staff.accounts import AccountStore
from bot.staff.audit import AuditLog
from bot.staff.layout import h, page
from bot.staff.sessions import (
    COOKIE, COOKIE_PATH, LOGIN_CSRF_COOKIE, SESSION_TTL_S, Session, SessionStore, new_login_csrf, same,
)
from core.escalations import EscalationStore
from core.tickets import TicketStore


@dataclass
class Console:
    accounts: AccountStore
    sessions: SessionStore
    audit: AuditLog
    escalations: EscalationStore
    tickets: TicketStore
    handoff: object  # bot.handoff.Handoff: delivers staff messages to users
    settings: object
    http: object


STAFF = web.AppKey("staff_console", Console)


def console(request: web.Request) -> Console:
    return request.app[STAFF]


def _wants_json(request: web.Request) -> bool:
    return request.path.startswith("/staff/api/")


def _refuse(request: web.Request, status: int, text: str, session: Session | None = None) -> web.Response:
    if _wants_json(request):
        return web.json_response({"error": text}, status=status)
    return page("没有权限" if status == 403 else "请求被拒绝", f"<p>{h(text)}</p>"
                '<p><a href="/staff/queue">返回工作台</a></p>', session, status=status)


def staff_page(role: str | None = None):
    """Guard a handler: a valid session; on POST a matching CSRF token; `role`="supervisor" for supervisor pages."""

    def deco(handler):
        @functools.wraps(handler)
        async def wrapper(request: web.Request) -> web.StreamResponse:
            c = console(request)
            session = await c.sessions.get(request.cookies.get(COOKIE))
            if session is None:
                if request.method == "GET" and not _wants_json(request):
                    raise web.HTTPSeeOther(f"/staff/login?next={quote(request.path_qs, safe='')}")
                return _refuse(request, 401, "请先登录工作台。")
            if request.method == "POST":
                form = await request.post()
                token = form.get("csrf") or request.headers.get("X-CSRF-Token")
                if not same(token if isinstance(token, str) else None, session.csrf):
                    await c.audit.record(session.user, "csrf_refused", request.path, role=session.role)
                    return _refuse(request, 403, "表单校验失败（CSRF），请刷新页面后重新提交。", session)
                request["form"] = form
            if role == "supervisor" and not session.is_supervisor:
                await c.audit.record(session.user, "denied", request.path, role=session.role)
                return _refuse(request, 403, "此页面仅限主管查看，如需查看请联系主管。", session)
            request["session"] = session
            return await handler(request)

        return wrapper

    return deco


# --- login / logout ----------------------------------------------------------------------
def _safe_next(target: str | None) -> str:
    if target and target.startswith("/staff/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/staff/queue"


def _login_page(next_url: str, error: str = "", status: int = 200) -> web.Response:
    token = new_login_csrf()
    err = f'<p class="flash error" role="alert">{h(error)}</p>' if error else ""
    body = (f'{err}<form method="post" action="/staff/login" class="login">'
            f'<input type="hidden" name="csrf" value="{h(token)}">'
            f'<input type="hidden" name="next" value="{h(next_url)}">'
            '<label for="name">用户名</label><input id="name" name="name" autocomplete="username" required>'
            '<label for="password">密码</label>'
            '<input id="password" name="password" type="password" autocomplete="current-password" required>'
            '<p><button type="submit">登录</button></p></form>'
            '<p class="muted">账号由管理员用 <code>python -m bot.staff add-user</code> 创建。</p>')
    resp = page("登录", body, status=status)
    resp.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="Strict", path=COOKIE_PATH, max_age=3600)
    return resp


async def login_form(request: web.Request) -> web.Response:
    session = await console(request).sessions.get(request.cookies.get(COOKIE))
    if session is not None:
        raise web.HTTPSeeOther(_safe_next(request.query.get("next")))
    return _login_page(_safe_next(request.query.get("next")))


async def login_submit(request: web.Request) -> web.Response:
    c = console(request)
    form = await request.post()
    next_url = _safe_next(form.get("next"))
    token = form.get("csrf")
    if not same(token if isinstance(token, str) else None, request.cookies.get(LOGIN_CSRF_COOKIE)):
        return _login_page(next_url, "表单已过期，请重新登录。", status=403)
    name = str(form.get("name") or "").strip()[:64]
    result = await c.accounts.login(name, str(form.get("password") or ""))
    if result.locked:
        await c.audit.record(name or "?", "login_locked", name)
        return _login_page(next_url, "登录失败次数过多，该账号已锁定15分钟。请稍后再试，或请主管重设密码。",
                           status=429)
    if result.user is None:
        await c.audit.record(name or "?", "login_failed", name, detail=f"failures={result.failures}")
        return _login_page(next_url, "用户名或密码不对，请重试（连续错5次将锁定15分钟）。", status=401)
    session = await c.sessions.create(result.user.name, result.user.role)
    await c.audit.record(session.user, "login", session.user, role=session.role)
    resp = web.HTTPSeeOther(next_url)
    resp.set_cookie(COOKIE, session.token, httponly=True, samesite="Strict", path=COOKIE_PATH,
                    secure=request.secure, max_age=SESSION_TTL_S)
    resp.del_cookie(LOGIN_CSRF_COOKIE, path=COOKIE_PATH)
    raise resp


@staff_page()
async def logout(request: web.Request) -> web.Response:
    c, session = console(request), request["session"]
    await c.sessions.destroy(session.token)
    await c.audit.record(session.user, "logout", session.user, role=session.role)
    resp = web.HTTPSeeOther("/staff/login")
    resp.del_cookie(COOKIE, path=COOKIE_PATH)
    raise resp


async def record(request: web.Request, action: str, target: str, before=None, after=None, detail: str = "") -> None:
    """Audit a staff action by the request's user."""
    s: Session = request["session"]
    await console(request).audit.record(s.user, action, target, before, after, detail, role=s.role)


def dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False)
