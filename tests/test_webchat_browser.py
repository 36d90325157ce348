"""The web chat page (/chat) in headless Chromium against the real stack:
type a message and see the bot's reply bubble; use a menu button, the image
upload and the location button; check Rasa saw each message once; a staff
reply (human mode) shows up through the page's polling. Saves a screenshot
to var/screenshots/chat.png.
"""
from __future__ import annotations

import asyncio
import json
import struct
import urllib.request
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from bot.menu import load_menu

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
SCREENSHOT = ROOT / "var" / "screenshots" / "chat.png"


def png(width: int, height: int, rgb=(60, 140, 90)) -> bytes:
    """A small solid-colour PNG, built by hand (no imaging library needed)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    row = b"\x00" + bytes(rgb) * width
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(row * height)) + chunk(b"IEND", b""))


def tracker_user_events(rasa_url: str, sender: str) -> list[dict]:
    with urllib.request.urlopen(f"{rasa_url}/conversations/{sender}/tracker", timeout=10) as r:
        events = json.load(r).get("events") or []
    return [e for e in events if e.get("event") == "user"]


async def push_staff_reply(stack, sender: str, text: str) -> None:
    from core.escalations import EscalationStore
    from core.keys import Keys
    from core.redis_conn import create_redis
    from core.settings import Settings

    redis = create_redis(Settings(redis_url=stack.redis_url))
    try:
        await EscalationStore(redis, Keys(stack.key_prefix)).push_outbox(sender, text, by="staff")
    finally:
        await redis.close()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (make test does it)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def test_chat_page_conversation(stack, browser, tmp_path):
    ctx = browser.new_context(viewport={"width": 430, "height": 860}, locale="zh-CN",
                              geolocation={"latitude": 31.2304, "longitude": 121.4737},
                              permissions=["geolocation"])
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{stack.gateway_url}/chat")
        welcome = load_menu().welcome
        bot = page.locator(".row.bot .bubble")
        bot.first.wait_for(timeout=10_000)
        assert bot.first.inner_text() == welcome
        sender = page.evaluate("localStorage.getItem('ecobot-web-sender')")
        assert sender.startswith("web-")

        # Type a question: the user's green bubble, then the bot's reply bubble.
        page.fill("#text", "环评报告表要交什么材料")
        page.press("#text", "Enter")
        user = page.locator(".row.user .bubble")
        assert user.last.inner_text() == "环评报告表要交什么材料"
        page.wait_for_function("document.querySelectorAll('.row.bot .bubble').length >= 2", timeout=60_000)
        reply = bot.nth(1).inner_text()
        assert reply.strip() and reply != welcome
        users = tracker_user_events(stack.rasa_url, sender)
        assert [u["text"] for u in users] == ["环评报告表要交什么材料"]
        page.wait_for_selector("#typing", state="hidden")

        # A menu button goes through the same pipeline as WeChat's CLICK.
        n = bot.count()
        page.click(".menu-top:has-text('联系我们')")
        page.click(".menu-item:has-text('联系方式')")
        page.wait_for_function(f"document.querySelectorAll('.row.bot .bubble').length > {n}", timeout=60_000)
        page.wait_for_selector("#typing", state="hidden")

        # The location button uses the browser's geolocation.
        n = bot.count()
        page.click("#btn-plus")
        page.click("#btn-location")
        page.click("#btn-geo")
        page.wait_for_function(f"document.querySelectorAll('.row.bot .bubble').length > {n}", timeout=60_000)
        page.wait_for_selector("#typing", state="hidden")

        # An image: uploaded, shown in the user's bubble, sent as an image message.
        photo = tmp_path / "photo.png"
        photo.write_bytes(png(64, 48))
        n = bot.count()
        page.click("#btn-plus")
        page.set_input_files("#file", str(photo))
        page.locator(".row.user .bubble img").wait_for(timeout=20_000)
        page.wait_for_function(f"document.querySelectorAll('.row.bot .bubble').length > {n}", timeout=60_000)
        page.wait_for_selector("#typing", state="hidden")
        assert page.evaluate("document.querySelector('.row.user .bubble img').naturalWidth") == 64

        users = tracker_user_events(stack.rasa_url, sender)
        intents = [u["parse_data"]["intent"]["name"] for u in users]
        assert intents[1:] == ["ask_contact", "send_location", "send_image"]
        loc = {e["entity"]: e["value"] for e in users[2]["parse_data"]["entities"]}
        assert loc["latitude"] == 31.2304 and loc["longitude"] == 121.4737
        img = {e["entity"]: e["value"] for e in users[3]["parse_data"]["entities"]}
        assert img["pic_url"].startswith("/uploads/") and img["media_id"].startswith("web:")

        # A staff member's reply (human mode) reaches the page through GET /api/chat/poll.
        # (in another thread: Playwright's sync API keeps an event loop running in this one)
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, push_staff_reply(
                stack, sender, "您好，我是县环保局工作人员，您的问题我们正在处理。")).result(30)
        staff = page.locator(".row.staff .bubble")
        staff.first.wait_for(timeout=15_000)
        assert staff.first.inner_text() == "您好，我是县环保局工作人员，您的问题我们正在处理。"
        assert page.locator(".row.staff .avatar").first.inner_text() == "人工"

        page.evaluate("document.getElementById('messages').scrollTop = 0")
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=False)
        assert SCREENSHOT.stat().st_size > 10_000
        assert errors == []
    finally:
        ctx.close()


def test_chat_page_escapes_html(stack, browser):
    """Bot and user texts are shown as text: markup typed by a user is not run."""
    ctx = browser.new_context()
    page = ctx.new_page()
    try:
        page.goto(f"{stack.gateway_url}/chat")
        page.locator(".row.bot .bubble").first.wait_for(timeout=10_000)
        page.fill("#text", "<img src=x onerror=\"document.body.dataset.pwned=1\">")
        page.press("#text", "Enter")
        page.wait_for_function("document.querySelectorAll('.row.bot .bubble').length >= 2", timeout=60_000)
        assert page.locator(".row.user .bubble img").count() == 0
        assert page.evaluate("document.body.dataset.pwned") is None
    finally:
        ctx.close()
