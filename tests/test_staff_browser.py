"""The staff console in a real browser: Debian's Chromium (/usr/bin/chromium,
installed by `make test` when missing) driven by Playwright, against the real
stack (gateway, Rasa, action server, Redis).

A web-chat user asks for a person; an agent logs in, sees the escalation in
the queue (and a second one arrive without reloading, with the count in the
page title), claims it, sees the user's new message appear live, replies,
and resolves it; the user receives both through the web chat's poll. The
screenshot of the conversation goes to var/screenshots/console.png.
"""
from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio import Redis

from bot.staff.accounts import AccountStore
from core.escalations import RESOLVED, EscalationStore
from core.handoff_rules import RESOLVED_TEXT
from core.keys import Keys

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
SCREENSHOTS = ROOT / "var" / "screenshots"
PASSWORD = "browser-test-pass-1"


@pytest.fixture
async def browser():
    from playwright.async_api import async_playwright

    assert Path(CHROMIUM).exists() or shutil.which("chromium"), \
        "Debian's chromium is needed: apt-get install -y chromium (make test does it)"
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            await b.close()


async def chat(http: aiohttp.ClientSession, base: str, sender: str, text: str) -> list[str]:
    async with http.post(f"{base}/api/chat", json={"sender": sender, "text": text}) as r:
        assert r.status == 200
        return [m["text"] for m in (await r.json())["messages"]]


async def poll_until(http: aiohttp.ClientSession, base: str, sender: str, want: int, timeout: float = 15) -> list[str]:
    got: list[str] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        async with http.get(f"{base}/api/chat/poll", params={"sender": sender}) as r:
            got += [m["text"] for m in (await r.json())["messages"]]
        if len(got) < want:
            await asyncio.sleep(0.3)
    return got


async def test_agent_claims_replies_and_resolves_in_chromium(stack, browser, redis_url, key_prefix):
    base = stack.gateway_url
    r = Redis.from_url(redis_url, decode_responses=True)
    store = EscalationStore(r, Keys(key_prefix))
    agent = f"li{uuid.uuid4().hex[:6]}"
    await AccountStore(r, Keys(key_prefix)).add_user(agent, "agent", PASSWORD)
    user1, user2 = f"web-br{uuid.uuid4().hex[:10]}", f"web-br{uuid.uuid4().hex[:10]}"
    async with aiohttp.ClientSession() as http:
        await chat(http, base, user1, "你好")
        assert "转接人工" in (await chat(http, base, user1, "转人工"))[0]
        esc1 = (await store.human_mode(user1)).esc_id

        page = await browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
        await page.goto(f"{base}/staff/queue")
        assert "/staff/login" in page.url
        await page.fill("#name", agent)
        await page.fill("#password", PASSWORD)
        await page.click("form.login button[type=submit]")
        await page.wait_for_url(f"{base}/staff/queue")
        assert await page.locator(f'tr[data-esc="{esc1}"]').count() == 1
        await page.wait_for_function("document.title.startsWith('(')", timeout=10_000)
        count_before = int((await page.title()).split(")")[0].lstrip("("))

        # A new escalation shows up in the open console within seconds, without a reload.
        assert "转接人工" in (await chat(http, base, user2, "你们这什么破机器人"))[0]
        esc2 = (await store.human_mode(user2)).esc_id
        await page.wait_for_selector(f'#alerts a[data-key="esc:{esc2}"]', timeout=10_000)
        await page.wait_for_function(f"document.title.startsWith('({count_before + 1})')", timeout=10_000)

        await page.click(f'tr[data-esc="{esc1}"] a')
        await page.wait_for_url(f"{base}/staff/esc/{esc1}")
        await page.click("text=接入这个对话")
        await page.wait_for_selector("text=已接入")
        assert "你好" in await page.inner_text(".transcript")

        # The user writes while the agent has the page open: it appears live.
        assert await chat(http, base, user1, "我家门口的小河这两天发黑发臭") == ["已转给工作人员，请稍候。"]
        await page.wait_for_selector("#messages >> text=我家门口的小河这两天发黑发臭", timeout=10_000)

        await page.fill("#reply-text", "您好，我是工作人员小李。请问具体在哪个村？我们安排人去看看。")
        await page.click("form.reply button[type=submit]")
        await page.wait_for_selector("text=已发送")
        await page.wait_for_selector("#messages >> text=我是工作人员小李")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SCREENSHOTS / "console.png"), full_page=True)
        got = await poll_until(http, base, user1, 1)
        assert got == ["您好，我是工作人员小李。请问具体在哪个村？我们安排人去看看。"]

        await page.click("text=已解决，结束人工服务")
        await page.wait_for_url(f"{base}/staff/queue")
        await page.wait_for_selector("text=已解决")
        assert await page.locator(f'tr[data-esc="{esc1}"]').count() == 0
        await page.screenshot(path=str(SCREENSHOTS / "console-queue.png"), full_page=True)
        assert await poll_until(http, base, user1, 1) == [RESOLVED_TEXT]
        assert (await store.get(esc1)).status == RESOLVED
        assert await store.human_mode(user1) is None
        await page.close()
    await r.close()
    assert (SCREENSHOTS / "console.png").stat().st_size > 10_000
