"""Images and locations sent in the chat.

An image is kept in Redis (keys.pending_evidence) until the sender's next
complaint takes it: inside the complaint form that is the complaint being
filed; outside it, the image is acknowledged and kept for the next one.
A location outside the form is remembered in the complaint slots (the slot
mappings do that) so a complaint started next uses it.
"""
from __future__ import annotations

import json
import time
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import deps
from actions.handoff import escalate_on_error

PENDING_TTL_S = 7 * 86400
MAX_PENDING = 20


async def add_pending_evidence(sender: str, media_id: str, url: str) -> int:
    r, key = deps.redis(), deps.keys().pending_evidence(sender)
    item = json.dumps({"media_id": media_id, "url": url, "received_at": time.time()}, ensure_ascii=False)
    async with r.pipeline(transaction=True) as pipe:
        pipe.rpush(key, item).ltrim(key, -MAX_PENDING, -1).expire(key, PENDING_TTL_S).llen(key)
        res = await pipe.execute()
    return int(res[-1])


async def count_pending_evidence(sender: str) -> int:
    try:
        return int(await deps.redis().llen(deps.keys().pending_evidence(sender)))
    except Exception:  # noqa: BLE001 - a count only decorates the summary
        return 0


async def take_pending_evidence(sender: str, peek: bool = False) -> list[dict]:
    """The waiting images; removed unless `peek` (remove only once attached)."""
    r, key = deps.redis(), deps.keys().pending_evidence(sender)
    raw = await r.lrange(key, 0, -1)
    if not peek and raw:
        await r.delete(key)
    items = []
    for x in raw:
        try:
            d = json.loads(x)
        except ValueError:
            continue
        items.append({"media_id": d.get("media_id", ""), "url": d.get("url", "")})
    return items


def _entity(tracker: Tracker, name: str) -> str | None:
    return next(tracker.get_latest_entity_values(name), None)


class ReceiveImage(Action):
    def name(self) -> str:
        return "action_receive_image"

    @escalate_on_error
    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[dict[str, Any]]:
        media_id, url = _entity(tracker, "media_id"), _entity(tracker, "pic_url")
        if not media_id and not url:
            dispatcher.utter_message(text="直接发送照片就行：点输入框旁的“+”，选“相册”或“拍摄”。")
            return []
        try:
            n = await add_pending_evidence(tracker.sender_id, media_id or "", url or "")
        except Exception:  # noqa: BLE001 - Redis down: say how to get the photo to us
            dispatcher.utter_message(text="照片暂时没能保存，请稍后再发一次；急事请拨打 12369。")
            return []
        if tracker.active_loop and tracker.active_loop.get("name") == "complaint_form":
            dispatcher.utter_message(text=f"照片收到（第{n}张），会附在这次举报里。")
        else:
            dispatcher.utter_message(text=(
                f"照片已收到并保存（共{n}张）。如果是要举报污染，请说说在哪里、是什么情况，"
                "我会把照片附在举报里。"))
        return []


class ReceiveLocation(Action):
    def name(self) -> str:
        return "action_receive_location"

    @escalate_on_error
    async def run(self, dispatcher, tracker: Tracker, domain) -> list[dict[str, Any]]:
        label = _entity(tracker, "location_label")
        if not label:
            dispatcher.utter_message(text="发送位置：点输入框旁的“+”，选“位置”，选好地点后发送；也可以直接打字告诉我地址。")
            return []
        dispatcher.utter_message(text=f"位置已收到：{label}。要举报这里的污染问题吗？请说说是什么情况。")
        return []
