"""Talk to the bot in the terminal, through the gateway: python -m bot.chat_cli

Uses the same JSON endpoint as the web chat page. GATEWAY_URL (default
http://127.0.0.1:8080) says where the gateway is.
"""
from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
import uuid


def send(base: str, sender: str, text: str) -> list[str]:
    req = urllib.request.Request(
        f"{base}/api/chat", json.dumps({"sender": sender, "text": text}).encode(),
        {"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            data = json.load(r)
    except urllib.error.HTTPError as e:
        data = json.load(e)
        return [f"[{e.code}] {data.get('error', '')}"]
    return [m.get("text", "") for m in data.get("messages", [])]


def main() -> int:
    base = os.environ.get("GATEWAY_URL", "http://127.0.0.1:8080").rstrip("/")
    sender = os.environ.get("CHAT_SENDER") or f"cli-{uuid.uuid4().hex[:12]}"
    print(f"已连接 {base}（会话 {sender}）。输入内容回车发送，Ctrl-D 退出。")
    while True:
        try:
            line = input("你> ")
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if not line.strip():
            continue
        try:
            replies = send(base, sender, line)
        except (urllib.error.URLError, OSError) as e:
            print(f"连接不上网关（{e}）。请先在另一个终端运行 make run。", file=sys.stderr)
            continue
        for r in replies:
            print("助手> " + r.replace("\n", "\n      "))


if __name__ == "__main__":
    sys.exit(main())
