"""check_status: a ticket by number, or the sender's own reports.

The reporter (or a later reporter merged into the ticket) sees status, history
and the staff's reply; anyone else who has a number sees only its status.
"""
from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import deps
from actions.handoff import escalate_on_error
from actions.complaint_input import POLLUTION_NAMES
from core.ticket_model import owner_view, public_view
from core.tickets import StoreUnavailable, TicketStore

TICKET_RE = re.compile(r"[Hh][Bb]\s*(\d{12})")


def find_ticket_id(tracker: Tracker) -> str | None:
    for value in tracker.get_latest_entity_values("ticket_id"):
        m = TICKET_RE.search(str(value))
        if m:
            return "HB" + m.group(1)
    m = TICKET_RE.search(tracker.latest_message.get("text") or "")
    return "HB" + m.group(1) if m else None


def _day(iso: str | None) -> str:
    return (iso or "")[:16].replace("T", " ")


def owner_text(view: dict) -> str:
    lines = [f"工单 {view['ticket_id']}（{POLLUTION_NAMES.get(view['pollution_type'], '其他')}）",
             f"当前状态：{view['status']}"]
    if view.get("linked_to"):
        lines.append(f"已合并到工单 {view['linked_to']} 办理")
    if view.get("transferred_to"):
        lines.append(f"已转交：{view['transferred_to']}")
    for h in view["history"][-5:]:
        lines.append(f"· {_day(h['at'])} {h['text']}")
    if view.get("staff_reply"):
        lines.append(f"工作人员答复：{view['staff_reply']}")
    return "\n".join(lines)


class CheckStatus(Action):
    def name(self) -> str:
        return "action_check_status"

    @escalate_on_error
    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[dict[str, Any]]:
        store = TicketStore(deps.redis(), deps.keys())
        ticket_id = find_ticket_id(tracker)
        try:
            if ticket_id:
                await self._one(dispatcher, store, ticket_id, tracker.sender_id)
            else:
                await self._mine(dispatcher, store, tracker.sender_id)
        except StoreUnavailable:
            dispatcher.utter_message(text="查询系统有点忙，请过几分钟再试；急事请拨打 12369 环保举报热线查询。")
        return []

    async def _one(self, dispatcher, store: TicketStore, ticket_id: str, sender: str) -> None:
        ticket = await store.get(ticket_id)
        if ticket is None:
            dispatcher.utter_message(text=(
                f"没有查到工单 {ticket_id}。请核对编号（HB + 8位日期 + 4位序号，如 HB202611290007），"
                "或回复“我的举报”查看您提交过的举报。"))
            return
        mine = {t.ticket_id for t in await store.list_by_reporter(sender)}
        if ticket.reporter == sender or ticket_id in mine:
            dispatcher.utter_message(text=owner_text(owner_view(ticket)))
        else:
            v = public_view(ticket)
            dispatcher.utter_message(text=f"工单 {v['ticket_id']} 当前状态：{v['status']}（更新于 {_day(v['updated_at'])}）。")

    async def _mine(self, dispatcher, store: TicketStore, sender: str) -> None:
        tickets = await store.list_by_reporter(sender, limit=5)
        if not tickets:
            dispatcher.utter_message(text=(
                "没有查到您通过本号提交的举报。有工单编号的话请直接发编号（如 HB202611290007）；"
                "要举报污染，直接描述情况就行。"))
            return
        lines = ["您最近的举报："]
        for t in tickets:
            lines.append(f"· {t.ticket_id} {POLLUTION_NAMES.get(t.pollution_type, '其他')} —— {t.status}")
        lines.append("发送编号可查看办理详情。")
        dispatcher.utter_message(text="\n".join(lines))
