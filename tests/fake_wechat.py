"""A local stand-in for api.weixin.qq.com, and a delaying proxy for Rasa.

Both run an aiohttp server in a background thread (their own event loop), so
session-scoped fixtures and synchronous or asynchronous tests can use them.

`FakeWeChat` implements what the gateway calls:
- POST /cgi-bin/stable_token: checks grant_type/appid/secret; returns the
  current token, or a new one with force_refresh (the old one stops working),
  as WeChat does;
- POST /cgi-bin/message/custom/send?access_token=...: 40001 for a token that
  is not the current one; otherwise records exactly what was sent.
Test controls: `fail_next_send(errcode)` (40001 once revokes the token the
way WeChat does), `delay_s` (a slow API).

`DelayProxy` forwards every request to a target (the real Rasa), sleeping
`delay_s` before each REST-channel call, so a slow answer happens on purpose.
"""
from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

APPID = "wx0123456789abcdef"
SECRET = "test-app-secret-0123456789abcdef"
TOKEN = "ecobottesttoken"
# 43 base64 characters (32 bytes once "=" is appended).
ENCODING_AES_KEY = "Y291bnR5LWVjby1ib3QtdGVzdC1hZXMta2V5LTMyYnk"


class ThreadServer:
    """Run an aiohttp Application on 127.0.0.1 in a daemon thread."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "ThreadServer":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


@dataclass
class SendAttempt:
    access_token: str
    body: bytes
    payload: dict
    errcode: int
    at: float


@dataclass
class FakeWeChat:
    appid: str = APPID
    secret: str = SECRET
    delay_s: float = 0.0
    token_requests: list = field(default_factory=list)
    attempts: list = field(default_factory=list)
    _current: str | None = None
    _serial: int = 0
    _fail: list = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadServer | None = None

    # -- test side --------------------------------------------------------------

    def start(self) -> "FakeWeChat":
        app = web.Application()
        app.router.add_post("/cgi-bin/stable_token", self._stable_token)
        app.router.add_post("/cgi-bin/message/custom/send", self._custom_send)
        self.server = ThreadServer(app).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.stop()

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    @property
    def current_token(self) -> str | None:
        return self._current

    def fail_next_send(self, errcode: int) -> None:
        with self._lock:
            self._fail.append(errcode)

    def sent(self, touser: str | None = None) -> list[dict]:
        """Delivered customer-service messages (errcode 0), oldest first."""
        with self._lock:
            return [a.payload for a in self.attempts
                    if a.errcode == 0 and (touser is None or a.payload.get("touser") == touser)]

    def attempts_for(self, touser: str) -> list[SendAttempt]:
        with self._lock:
            return [a for a in self.attempts if a.payload.get("touser") == touser]

    def wait_sent(self, touser: str, count: int = 1, timeout: float = 30.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.sent(touser)
            if len(got) >= count:
                return got
            time.sleep(0.05)
        raise AssertionError(f"expected {count} customer-service message(s) to {touser}, "
                             f"got {self.attempts_for(touser)}")

    # -- server side --------------------------------------------------------------

    async def _stable_token(self, request: web.Request) -> web.Response:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"errcode": 47001, "errmsg": "data format error"})
        with self._lock:
            self.token_requests.append(body)
            if body.get("grant_type") != "client_credential":
                return web.json_response({"errcode": 40002, "errmsg": "invalid grant_type"})
            if body.get("appid") != self.appid or body.get("secret") != self.secret:
                return web.json_response({"errcode": 40125, "errmsg": "invalid appsecret"})
            if self._current is None or self._current.startswith("REVOKED_") or body.get("force_refresh") is True:
                self._serial += 1
                self._current = f"ACCESS_TOKEN_{self._serial}"
            token = self._current
        return web.json_response({"access_token": token, "expires_in": 7200})

    async def _custom_send(self, request: web.Request) -> web.Response:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        token = request.rel_url.query.get("access_token", "")
        raw = await request.read()
        try:
            payload = json.loads(raw.decode("utf-8"))
        except ValueError:
            payload = {}
        with self._lock:
            if token != self._current:
                code, msg = 40001, "invalid credential, access_token is invalid or not latest"
            elif self._fail:
                code, msg = self._fail.pop(0), "injected failure"
                if code in (40001, 42001):
                    # As on WeChat: that token is dead now; only a new one works.
                    self._current = f"REVOKED_{self._current}"
            elif not payload.get("touser") or payload.get("msgtype") != "text":
                code, msg = 40003, "invalid openid or msgtype"
            else:
                code, msg = 0, "ok"
            self.attempts.append(SendAttempt(token, raw, payload, code, time.time()))
        return web.json_response({"errcode": code, "errmsg": msg})


class DelayProxy:
    """Forward everything to `target`, sleeping `delay_s` before REST-channel calls."""

    def __init__(self, target: str, delay_s: float) -> None:
        self.target = target.rstrip("/")
        self.delay_s = delay_s
        self.requests = 0
        app = web.Application(client_max_size=1 << 20)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        app.cleanup_ctx.append(self._session_ctx)
        self.server = ThreadServer(app)

    async def _session_ctx(self, app):
        async with aiohttp.ClientSession() as s:
            self._session = s
            yield

    def start(self) -> "DelayProxy":
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    @property
    def url(self) -> str:
        return self.server.url

    async def _forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.path.startswith("/webhooks/"):
            self.requests += 1
            await asyncio.sleep(self.delay_s)
        async with self._session.request(
            request.method, self.target + request.path_qs, data=body,
            headers={"Content-Type": request.headers.get("Content-Type", "application/json")},
        ) as r:
            return web.Response(status=r.status, body=await r.read(), content_type=r.content_type)
