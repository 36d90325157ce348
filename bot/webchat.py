"""The web chat page (/chat) and what it needs besides POST /api/chat.

- GET  /chat              the page (bot/static/chat.html; /chat/chat.js, /chat/chat.css; no build step)
- GET  /api/menu          welcome text and menu buttons (knowledge/menu.yml)
- POST /api/upload        an image (raw bytes, ?sender=...) → {"upload": name, "url": "/uploads/name"}
- GET  /uploads/{name}    the stored image

Uploaded images are kept under UPLOAD_DIR (var/uploads); a chat message
`{"type": "image", "upload": name}` then goes through the same pipeline as a
WeChat image, with `pic_url` pointing at /uploads/{name}.
"""
from __future__ import annotations

import math
import os
import re
import uuid
from pathlib import Path

from aiohttp import web

from bot.menu import Menu, load_menu, web_menu_json
from bot.pipeline import Incoming
from bot.ratelimit import RATE_LIMITED_TEXT, RateLimiter
from bot.wechat_handler import Local, click_to

STATIC_DIR = Path(__file__).resolve().parent / "static"
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
UPLOAD_NAME_RE = re.compile(r"^[0-9a-f]{32}\.(jpg|png|gif|webp)$")
SENDER_RE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
MAX_LABEL_CHARS = 100
CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp"}

WEB_MENU = web.AppKey("web_menu", Menu)


def sniff_image(data: bytes) -> str | None:
    """The file extension for JPEG/PNG/GIF/WebP bytes, else None (no SVG, no HTML)."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def _coord(value: object, bound: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    v = float(value)
    return v if math.isfinite(v) and -bound <= v <= bound else None


def web_incoming(app: web.Application, sender: str, body: dict) -> Incoming | Local | str:
    """A non-text web chat message as a pipeline message, a local answer, or
    a Chinese error text for HTTP 400."""
    from bot.app import SETTINGS

    kind = body.get("type")
    if kind == "image":
        name = body.get("upload")
        if not isinstance(name, str) or not UPLOAD_NAME_RE.match(name):
            return "图片没有上传成功，请重新选择图片发送"
        if not (app[SETTINGS].upload_dir / name).is_file():
            return "找不到这张图片，请重新上传"
        return Incoming(sender=sender, channel="web", kind="image", media_id=f"web:{name}",
                        pic_url=f"/uploads/{name}")
    if kind == "location":
        lat_raw, lon_raw = body.get("latitude"), body.get("longitude")
        lat, lon = _coord(lat_raw, 90), _coord(lon_raw, 180)
        label = body.get("label")
        label = label.strip()[:MAX_LABEL_CHARS] if isinstance(label, str) else ""
        has_coords = lat is not None and lon is not None
        if (lat_raw is not None or lon_raw is not None) and not has_coords:
            return "位置坐标不对：纬度在 -90 到 90 之间，经度在 -180 到 180 之间"
        if not has_coords and not label:
            return "请允许浏览器获取位置，或输入地点名称（如“XX镇XX村”）"
        return Incoming(sender=sender, channel="web", kind="location", latitude=lat if has_coords else None,
                        longitude=lon if has_coords else None, label=label)
    if kind == "click":
        key = body.get("key")
        if not isinstance(key, str):
            return "菜单按钮缺少 key"
        return click_to(key, app[WEB_MENU], sender, "web")
    return "type 只能是 text、image、location 或 click"


async def chat_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "chat.html", headers={"Cache-Control": "no-cache"})


async def chat_asset(request: web.Request) -> web.FileResponse:
    name = request.match_info["name"]  # the route allows chat.js and chat.css only
    return web.FileResponse(STATIC_DIR / name, headers={"Cache-Control": "no-cache"})


async def menu(request: web.Request) -> web.Response:
    return web.json_response(web_menu_json(request.app[WEB_MENU]))


async def upload(request: web.Request) -> web.Response:
    from bot.app import KEYS, REDIS, SETTINGS

    app = request.app
    sender = request.rel_url.query.get("sender", "")
    if not SENDER_RE.match(sender):
        return web.json_response({"error": "sender 需要是 1-64 位字母、数字、下划线或短横线"}, status=400)
    if request.content_length is not None and request.content_length > MAX_UPLOAD_BYTES:
        return web.json_response({"error": "图片太大了，请选择 5MB 以内的图片"}, status=413)
    data = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        data += chunk
        if len(data) > MAX_UPLOAD_BYTES:
            return web.json_response({"error": "图片太大了，请选择 5MB 以内的图片"}, status=413)
    ext = sniff_image(bytes(data[:16]))
    if ext is None:
        return web.json_response({"error": "只能发送 JPG、PNG、GIF 或 WebP 图片"}, status=400)
    if not await RateLimiter(app[REDIS], app[KEYS], app[SETTINGS].rate_limit_per_min).allow(sender):
        return web.json_response({"error": RATE_LIMITED_TEXT}, status=429)
    folder: Path = app[SETTINGS].upload_dir
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{uuid.uuid4().hex}.{ext}"
    tmp = folder / f".{name}.part"
    tmp.write_bytes(data)
    os.replace(tmp, folder / name)
    return web.json_response({"upload": name, "url": f"/uploads/{name}"})


async def uploaded(request: web.Request) -> web.StreamResponse:
    from bot.app import SETTINGS

    name = request.match_info["name"]
    path = request.app[SETTINGS].upload_dir / name
    if not UPLOAD_NAME_RE.match(name) or not path.is_file():
        raise web.HTTPNotFound(text="图片不存在")
    return web.FileResponse(path, headers={
        "Content-Type": CONTENT_TYPES[name.rsplit(".", 1)[1]],
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, max-age=86400",
    })


def setup(app: web.Application) -> None:
    app[WEB_MENU] = load_menu()
    app.router.add_get("/chat", chat_page)
    app.router.add_get(r"/chat/{name:chat\.(?:js|css)}", chat_asset)
    app.router.add_get("/api/menu", menu)
    app.router.add_post("/api/upload", upload)
    app.router.add_get("/uploads/{name}", uploaded)
