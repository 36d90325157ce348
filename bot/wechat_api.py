"""Calls to the WeChat server API: the access token and customer-service messages.

- The access token (`cgi-bin/stable_token`, lives 7200 s) is shared by every
  gateway process through Redis (`Keys.wx_token`), stored with an expiry a
  little shorter than WeChat's. Only one process refreshes it at a time, under
  a Redis lock; the others wait for the new value.
- An API answer saying the token is invalid or expired (40001, 40014, 42001)
  refreshes it once (force_refresh) and retries the call once.
- `WECHAT_API_BASE` says where the API is, so tests run a local fake of it.
"""
from __future__ import annotations

import asyncio
import json
import logging
import uuid

import aiohttp

from core.keys import Keys
from core.settings import Settings

log = logging.getLogger(__name__)

TOKEN_ERRORS = {40001, 40014, 42001}
TOKEN_MARGIN_S = 300  # refresh 5 minutes before WeChat would expire it
LOCK_TTL_MS = 15_000
WAIT_FOR_TOKEN_S = 20.0
HTTP_TIMEOUT_S = 10.0

# Delete the lock only when we still hold it.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class WeChatApiError(Exception):
    def __init__(self, message: str, errcode: int | None = None) -> None:
        super().__init__(message)
        self.errcode = errcode


def mask_openid(openid: str | None) -> str:
    """For logs: enough to tell users apart, not enough to identify one."""
    if not openid:
        return "-"
    return openid[:4] + "***" + openid[-3:] if len(openid) > 10 else "***"


class WeChatApi:
    def __init__(self, settings: Settings, redis, keys: Keys, session: aiohttp.ClientSession) -> None:
        self.settings, self.redis, self.keys, self.session = settings, redis, keys, session
        self.base = settings.wechat_api_base.rstrip("/")
        self._release = redis.register_script(_RELEASE)

    # -- access token ----------------------------------------------------------

    async def access_token(self) -> str:
        token = await self.redis.get(self.keys.wx_token())
        return token or await self._refresh(stale=None)

    async def _refresh(self, stale: str | None) -> str:
        """A token other than `stale`: the cached one if someone refreshed it
        already, else a new one fetched under the lock."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_FOR_TOKEN_S
        lock_key, me = self.keys.wx_token_lock(), uuid.uuid4().hex
        while True:
            cached = await self.redis.get(self.keys.wx_token())
            if cached and cached != stale:
                return cached
            if await self.redis.set(lock_key, me, nx=True, px=LOCK_TTL_MS):
                try:
                    cached = await self.redis.get(self.keys.wx_token())
                    if cached and cached != stale:
                        return cached
                    token, expires_in = await self._fetch_token(force=stale is not None)
                    ttl = max(60, expires_in - TOKEN_MARGIN_S)
                    await self.redis.set(self.keys.wx_token(), token, ex=ttl)
                    log.info("wechat access token refreshed (expires in %d s, cached %d s)", expires_in, ttl)
                    return token
                finally:
                    await self._release(keys=[lock_key], args=[me])
            if loop.time() > deadline:
                raise WeChatApiError("timed out waiting for another process to refresh the access token")
            await asyncio.sleep(0.05)

    async def _fetch_token(self, force: bool) -> tuple[str, int]:
        s = self.settings
        if not s.wechat_appid or not s.wechat_appsecret:
            raise WeChatApiError("WECHAT_APPID and WECHAT_APPSECRET must be set to call the WeChat API")
        payload = {"grant_type": "client_credential", "appid": s.wechat_appid,
                   "secret": s.wechat_appsecret, "force_refresh": force}
        data = await self._post_json(f"{self.base}/cgi-bin/stable_token", payload)
        token, expires_in = data.get("access_token"), data.get("expires_in")
        if not isinstance(token, str) or not token or not isinstance(expires_in, int):
            raise WeChatApiError(f"stable_token failed: {data.get('errcode')} {data.get('errmsg')}",
                                 data.get("errcode"))
        return token, expires_in

    # -- calls -------------------------------------------------------------------

    async def _post_json(self, url: str, payload: dict, params: dict | None = None) -> dict:
        # WeChat shows \uXXXX escapes literally in some places: send UTF-8 characters.
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        try:
            async with self.session.post(
                url, params=params, data=body, headers={"Content-Type": "application/json; charset=utf-8"},
                timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S),
            ) as r:
                if r.status != 200:
                    raise WeChatApiError(f"HTTP {r.status} from {url.split('?')[0]}")
                data = await r.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as e:
            raise WeChatApiError(f"{type(e).__name__} calling {url.split('?')[0]}: {e}") from e
        if not isinstance(data, dict):
            raise WeChatApiError("unexpected answer from the WeChat API")
        return data

    async def call(self, path: str, payload: dict) -> dict:
        """POST an API call with the access token; refresh it once on a token error."""
        token = await self.access_token()
        for attempt in (1, 2):
            data = await self._post_json(f"{self.base}/{path}", payload, {"access_token": token})
            code = data.get("errcode", 0)
            if code in TOKEN_ERRORS and attempt == 1:
                log.warning("wechat api %s: errcode %s, refreshing the access token", path, code)
                token = await self._refresh(stale=token)
                continue
            if code != 0:
                raise WeChatApiError(f"{path}: errcode {code} {data.get('errmsg', '')}", code)
            return data
        raise AssertionError("unreachable")  # pragma: no cover

    async def send_text(self, openid: str, content: str) -> None:
        """One customer-service text message (allowed 48 h after the user's last message)."""
        await self.call("cgi-bin/message/custom/send",
                        {"touser": openid, "msgtype": "text", "text": {"content": content}})
