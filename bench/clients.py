"""The two ways the benchmark talks to the bot.

- `WeChatPath`: as WeChat's servers do: a signed, safe-mode encrypted XML text
  message POSTed to the gateway's /wechat; the reply is checked (msg_signature)
  and decrypted. When the gateway answers `success` (the answer was not ready
  in its reply budget), the answer arrives later at the local fake of the
  WeChat API (`LateInbox`), and the time until then is what the user waited.
- `RasaPath`: the same text straight to Rasa's REST channel.

Timers cover the HTTP round trip only: building, encrypting and decrypting
the XML on the client side are outside them (WeChat's servers do that work,
not the bot).
"""
from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from dataclasses import dataclass
import aiohttp
import defusedxml.ElementTree as ET

from bot.wechat import WeChatCrypto, make_msg_signature, make_signature, parse_message
from tests.fake_wechat import FakeWeChat

ACCOUNT = "gh_bench0000001"
# Test credentials of the benchmark's own stack (never a real account's).
TOKEN, APPID, SECRET = "benchtoken", "wxbench000000000", "bench-app-secret-0000000000000000"
AES_KEY = "YmVuY2gtbGF0ZW5jeS1nYXRld2F5LWFlcy1rZXktMzI"
LATE_WAIT_S = 60.0


@dataclass
class Answer:
    http_s: float
    latency_s: float
    text: str
    passive: bool
    late: bool
    error: str = ""


class LateInbox(FakeWeChat):
    """The fake WeChat API (tests/fake_wechat.py) with a per-user index of
    delivered customer-service messages, so waiting for one stays cheap."""

    def __init__(self) -> None:
        super().__init__(appid=APPID, secret=SECRET)
        self._index: dict[str, list[tuple[float, str]]] = {}
        self._scanned = 0
        self._index_lock = threading.Lock()

    def delivered(self, openid: str) -> list[tuple[float, str]]:
        """(wall-clock time, text) of the messages delivered to `openid`."""
        with self._index_lock:
            with self._lock:
                new = self.attempts[self._scanned:]
                self._scanned = len(self.attempts)
            for a in new:
                if a.errcode == 0:
                    self._index.setdefault(a.payload.get("touser", ""), []).append(
                        (a.at, a.payload.get("text", {}).get("content", "")))
            return list(self._index.get(openid, []))


class WeChatPath:
    name = "gateway"

    def __init__(self, base_url: str, session: aiohttp.ClientSession, inbox: LateInbox) -> None:
        self.url = base_url.rstrip("/") + "/wechat"
        self.session = session
        self.inbox = inbox
        self.crypto = WeChatCrypto(TOKEN, AES_KEY, APPID)

    @staticmethod
    def new_user() -> str:
        return "oBench" + uuid.uuid4().hex[:22]

    def _request(self, openid: str, text: str) -> tuple[dict, bytes]:
        ts, nonce = str(int(time.time())), str(uuid.uuid4().int % 10**9)
        xml = (f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{openid}]]>"
               f"</FromUserName><CreateTime>{ts}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
               f"<Content><![CDATA[{text}]]></Content><MsgId>{uuid.uuid4().int % 10**19}</MsgId></xml>")
        encrypt = self.crypto.encrypt(xml)
        query = {"signature": make_signature(TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce,
                 "openid": openid, "encrypt_type": "aes",
                 "msg_signature": make_msg_signature(TOKEN, ts, nonce, encrypt)}
        body = f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        return query, body.encode()

    def _decrypt(self, body: str) -> str:
        env = {c.tag: c.text or "" for c in ET.fromstring(body)}
        xml = self.crypto.decrypt_message(body, env["MsgSignature"], env["TimeStamp"], env["Nonce"])
        return parse_message(xml).content or ""

    async def send(self, openid: str, text: str) -> Answer:
        query, body = self._request(openid, text)
        seen = len(self.inbox.delivered(openid))
        wall0, t0 = time.time(), time.perf_counter()
        try:
            async with self.session.post(self.url, params=query, data=body) as r:
                reply = await r.text()
                status = r.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            dt = time.perf_counter() - t0
            return Answer(dt, dt, "", False, False, f"{type(e).__name__}: {e}"[:200])
        http_s = time.perf_counter() - t0
        if status != 200:
            return Answer(http_s, http_s, "", False, False, f"HTTP {status}: {reply[:100]}")
        if reply != "success":
            return Answer(http_s, http_s, self._decrypt(reply), True, False)
        # Not ready in the reply budget: it comes through the customer-service API.
        deadline = time.perf_counter() + LATE_WAIT_S
        while time.perf_counter() < deadline:
            got = self.inbox.delivered(openid)
            if len(got) > seen:
                at, content = got[seen]
                return Answer(http_s, max(http_s, at - wall0), content, False, True)
            await asyncio.sleep(0.02)
        return Answer(http_s, LATE_WAIT_S, "", False, True, "no answer, passive or late")


class RasaPath:
    name = "rasa"

    def __init__(self, rasa_url: str, session: aiohttp.ClientSession) -> None:
        self.url = rasa_url.rstrip("/") + "/webhooks/rest/webhook"
        self.session = session

    @staticmethod
    def new_user() -> str:
        return "bench-" + uuid.uuid4().hex[:16]

    async def send(self, sender: str, text: str) -> Answer:
        payload = json.dumps({"sender": sender, "message": text}, ensure_ascii=False).encode()
        t0 = time.perf_counter()
        try:
            async with self.session.post(self.url, data=payload, headers={"Content-Type": "application/json"}) as r:
                raw = await r.read()
                status = r.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            dt = time.perf_counter() - t0
            return Answer(dt, dt, "", False, False, f"{type(e).__name__}: {e}"[:200])
        dt = time.perf_counter() - t0
        if status != 200:
            return Answer(dt, dt, "", False, False, f"HTTP {status}")
        texts = [m.get("text") or "" for m in json.loads(raw) if isinstance(m, dict)]
        return Answer(dt, dt, "\n\n".join(t for t in texts if t), True, False)


def session(limit: int = 200) -> aiohttp.ClientSession:
    """Pooled keep-alive connections, as WeChat's servers and the gateway keep them."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit, keepalive_timeout=60),
                                 timeout=aiohttp.ClientTimeout(total=120))

