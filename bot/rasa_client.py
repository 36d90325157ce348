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

    async def actions_healthy(self, action_url: str) -> bool:
        """Does the action server answer GET /health? (`action_url` is its /webhook URL.)

        Used when Rasa answers nothing at all: Rasa logs a failed custom action
        and carries on silently, so an unreachable action server looks like an
        empty answer (added with the failure tests, tests/test_failures.py)."""
        base = action_url.rsplit("/webhook", 1)[0] if action_url.endswith("/webhook") else action_url.rstrip("/")
        try:
            async with self.session.get(f"{base}/health", timeout=aiohttp.ClientTimeout(total=1)) as r:
                return r.status == 200
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return False

    async def healthy(self) -> bool:
        try:
            async with self.session.get(f"{self.base_url}/", timeout=aiohttp.ClientTimeout(total=2)) as r:
                return r.status == 200
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return False
