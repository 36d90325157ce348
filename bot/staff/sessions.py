"""Console sessions and CSRF tokens.

The session token lives only in the browser's cookie (HttpOnly, SameSite=Strict,
Path=/staff, Secure over HTTPS); Redis keeps its SHA-256, so a leaked Redis dump
does not hand out sessions. Each session has its own CSRF token, which every
form posts back (hidden field `csrf`) and every JSON POST sends as X-CSRF-Token.
The login form, before any session, uses a double-submit cookie instead.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Optional

from core.keys import Keys

COOKIE = "staff_session"
LOGIN_CSRF_COOKIE = "staff_login_csrf"
SESSION_TTL_S = 8 * 3600
COOKIE_PATH = "/staff"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


@dataclass
class Session:
    token: str
    user: str
    role: str
    csrf: str
    flash: str = ""

    @property
    def is_supervisor(self) -> bool:
        return self.role == "supervisor"


class SessionStore:
    def __init__(self, redis, keys: Keys) -> None:
        self.r = redis
        self.keys = keys

    async def create(self, user: str, role: str) -> Session:
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        key = self.keys.staff_session(_digest(token))
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"user": user, "role": role, "csrf": csrf, "created": repr(time.time())})
            pipe.expire(key, SESSION_TTL_S)
            await pipe.execute()
        return Session(token, user, role, csrf)

    async def get(self, token: str | None) -> Optional[Session]:
        if not token or len(token) > 100:
            return None
        key = self.keys.staff_session(_digest(token))
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.hgetall(key)
            pipe.hget(key, "flash")
            pipe.hdel(key, "flash")
            pipe.expire(key, SESSION_TTL_S)
            raw, flash, _, _ = await pipe.execute()
        if not raw or not raw.get("user"):
            return None
        return Session(token, raw["user"], raw.get("role", "agent"), raw.get("csrf", ""), flash or "")

    async def flash(self, session: Session, text: str) -> None:
        """A one-line notice shown on the next page (post/redirect/get)."""
        await self.r.hset(self.keys.staff_session(_digest(session.token)), "flash", text[:500])

    async def destroy(self, token: str) -> None:
        await self.r.delete(self.keys.staff_session(_digest(token)))


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)
