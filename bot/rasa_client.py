"""Client of Rasa's REST channel, one pooled HTTP session per process."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp


class RasaUnavailable(Exception):
    """Rasa did not answer (down, timed out, or answered with an error)."""


@dataclass
class RasaClient:
    base_url: str
    session: aiohttp.ClientSession
    timeout_s: float = 30.0

    async def send(self, sender: str, text: str, metadata: dict | None = None) -> list[dict]:
        """Send one user message; return Rasa's messages (each has text/image/buttons)."""
        payload = {"sender": sender, "message": text, "metadata": metadata or {}}
        url = f"{self.base_url}/webhooks/rest/webhook"
        try:
            async with self.session.post(url, json=payload, timeout=aiohttp.ClientTimeout(total=self.timeout_s)) as r:
                if r.status != 200:
                    raise RasaUnavailable(f"rasa answered HTTP {r.status}")
                data = await r.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as e:
            raise RasaUnavailable(str(e) or type(e).__name__) from e
        if not isinstance(data, list):
            raise RasaUnavailable("unexpected answer from rasa")
        return [m for m in data if isinstance(m, dict)]

    async def healthy(self) -> bool:
        try:
            async with self.session.get(f"{self.base_url}/", timeout=aiohttp.ClientTimeout(total=2)) as r:
                return r.status == 200
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return False
