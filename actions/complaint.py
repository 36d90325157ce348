"""The pollution report: start, form validation, confirmation, submission.

The ticket is written to Redis (and the write confirmed) before the citizen is
told its number; when Redis cannot be reached the complaint goes to the local
spool (core/spool.py), the citizen is told it was recorded, and the gateway
replays the spool when Redis answers again.
"""
from __future__ import annotations

import logging
from typing import Any

from redis.exceptions import RedisError
from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import deps
from actions.handoff import escalate_on_error, open_escalation
from actions.complaint_input import (
    ANONYMOUS, POLLUTION_NAMES, is_descriptive, parse_confirmation, parse_contact, summary,
)
from actions.forms import FORM_SLOTS
from actions.media import take_pending_evidence, count_pending_evidence
from core.emergency import is_emergency
from core.prompts import prompt
from core.spool import Spool
from core.ticket_model import ComplaintReport
from core.tickets import StoreUnavailable, TicketStore

log = logging.getLogger(__name__)

HOTLINE_NOW = "情况紧急！请立即拨打 12369 环保举报热线（24小时）电话报告，我们同时在为您登记，已通知值班人员优先处理。"


def _entity(tracker: Tracker, name: str) -> str | None:
    return next(tracker.get_latest_entity_values(name), None)


def message_key(tracker: Tracker) -> str:
    """The id of the latest user message: WeChat MsgId when the gateway gave one."""
    meta = tracker.latest_message.get("metadata") or {}
    return str(meta.get("msg_id") or tracker.latest_message.get("message_id") or "")


def channel_of(tracker: Tracker) -> str:
    meta = tracker.latest_message.get("metadata") or {}
    return str(meta.get("channel") or tracker.get_latest_input_channel() or "web")


class StartComplaint(Action):
    """Right after a report_pollution message: category, emergency, what was said."""

    def name(self) -> str:
        return "action_start_complaint"

    @escalate_on_error
    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[dict[str, Any]]:
        text = tracker.latest_message.get("text") or ""
        ptype = _entity(tracker, "pollution_type") or "other"
        events: list[dict[str, Any]] = [SlotSet("pollution_type", ptype)]
        if is_descriptive(text) and not tracker.get_slot("complaint_description"):
            events.append(SlotSet("complaint_description", text.strip()))
        urgent, reason = is_emergency(text, ptype)
        if urgent:
            events.append(SlotSet("complaint_urgent", True))
            dispatcher.utter_message(text=HOTLINE_NOW)
            if not tracker.get_slot("complaint_time"):
                events.append(SlotSet("complaint_time", "正在发生"))
            await _escalate_urgent(tracker, reason)
        else:
            name = POLLUTION_NAMES.get(ptype, "其他")
            what = "" if ptype == "other" else f"{name}方面的"
            dispatcher.utter_message(text=f"好的，我来帮您登记{what}举报，问几个问题，随时回复“取消”可退出。")
        return events


async def _escalate_urgent(tracker: Tracker, reason: str) -> None:
    """An urgent complaint also goes to the staff escalation list at once."""
    try:
        await open_escalation(tracker, reason=f"紧急举报：{reason}", urgent=True, pause=False)
    except Exception:  # noqa: BLE001 - never lose the complaint over the alert
        log.exception("could not open the urgent escalation")


class ValidateComplaintForm(FormValidationAction):
    def name(self) -> str:
        return "validate_complaint_form"

    async def validate_complaint_location(self, value: Any, dispatcher, tracker: Tracker, domain) -> dict:
        text = str(value or "").strip()
        if len(text) < 2:
            dispatcher.utter_message(text="地点太简单了，请说具体些：哪个乡镇、哪个村或哪条路、哪家厂。")
            return {"complaint_location": None}
        return {"complaint_location": text[:200]}

    async def validate_complaint_time(self, value: Any, dispatcher, tracker, domain) -> dict:
        text = str(value or "").strip()
        return {"complaint_time": text[:100] or None}

    async def validate_complaint_description(self, value: Any, dispatcher, tracker, domain) -> dict:
        text = str(value or "").strip()
        if len(text) < 2:
            dispatcher.utter_message(text="请多说一点，比如看到了什么、闻到了什么、听到了什么。")
            return {"complaint_description": None}
        return {"complaint_description": text[:1000]}

    async def validate_complaint_contact(self, value: Any, dispatcher, tracker, domain) -> dict:
        kind, phone = parse_contact(str(value or ""))
        if kind == "anonymous":
            return {"complaint_contact": ANONYMOUS}
        if kind == "phone":
            return {"complaint_contact": phone}
        dispatcher.utter_message(text=prompt("contact_invalid", deps.settings()))
        return {"complaint_contact": None}

    async def validate_complaint_confirmed(self, value: Any, dispatcher, tracker: Tracker, domain) -> dict:
        if value is True:
            return {"complaint_confirmed": True}
        kind, slot = parse_confirmation(str(value or ""))
        if kind == "confirm":
            return {"complaint_confirmed": True}
        if kind == "change":
            return {"complaint_confirmed": None, slot: None}
        # Anything else is taken as more detail for the description.
        extra = str(value or "").strip()
        desc = tracker.get_slot("complaint_description") or ""
        if extra:
            dispatcher.utter_message(text="已把这句补充到情况描述里。")
            return {"complaint_confirmed": None, "complaint_description": (desc + "；" + extra)[:1000]}
        return {"complaint_confirmed": None}


class AskComplaintConfirmed(Action):
    def name(self) -> str:
        return "action_ask_complaint_confirmed"

    @escalate_on_error
    async def run(self, dispatcher, tracker: Tracker, domain) -> list[dict[str, Any]]:
        n = await count_pending_evidence(tracker.sender_id)
        dispatcher.utter_message(text=summary(tracker.current_slot_values(), n) + "\n" + prompt("confirm_help", deps.settings()))
        return []


def build_report(tracker: Tracker, evidence: list[dict]) -> ComplaintReport:
    slot = tracker.get_slot
    contact = slot("complaint_contact")
    lat, lon = slot("complaint_latitude"), slot("complaint_longitude")
    has_geo = lat is not None and lon is not None
    return ComplaintReport(
        reporter=tracker.sender_id,
        channel=channel_of(tracker),
        pollution_type=slot("pollution_type") or "other",
        description=slot("complaint_description") or "",
        location_text=slot("complaint_location") or "",
        lat=float(lat) if has_geo else None,
        lon=float(lon) if has_geo else None,
        location_label=(slot("complaint_location") or "") if has_geo else "",
        occurred=slot("complaint_time") or "",
        contact_phone=None if contact in (None, ANONYMOUS) else contact,
        anonymous=contact in (None, ANONYMOUS),
        evidence=evidence,
        urgent=True if slot("complaint_urgent") else None,
    )


def _reset() -> list[dict[str, Any]]:
    return [SlotSet(s, None) for s in FORM_SLOTS["complaint_form"]] + [SlotSet("requested_slot", None)]


class SubmitComplaint(Action):
    def name(self) -> str:
        return "action_submit_complaint"

    @escalate_on_error
    async def run(self, dispatcher, tracker: Tracker, domain) -> list[dict[str, Any]]:
        settings = deps.settings()
        idem = message_key(tracker) or f"{tracker.sender_id}:{len(tracker.events)}"
        try:
            evidence = await take_pending_evidence(tracker.sender_id, peek=True)
        except (RedisError, OSError):
            evidence = []  # Redis is down: the complaint still goes to the spool
        report = build_report(tracker, evidence)
        try:
            result = await TicketStore(deps.redis(), deps.keys()).create(report, idem_key=idem)
        except StoreUnavailable:
            Spool.from_settings(settings).append(report, idem_key=idem)
            dispatcher.utter_message(text=(
                "您的举报已记录（系统繁忙，编号稍后生成）。稍后回复“我的举报”即可看到编号和进度。"
                + ("\n情况紧急请立即拨打 12369。" if report.urgent else "")))
            return _reset()
        try:
            await take_pending_evidence(tracker.sender_id)  # attached: drop them from the waiting list
        except (RedisError, OSError):
            log.warning("attached evidence stays in the waiting list of %s", tracker.sender_id[:6])
        t = result.ticket
        if result.duplicate_of:
            dispatcher.utter_message(text=(
                f"这个问题已有群众反映过，已合并到工单 {t.ticket_id}（当前状态：{t.status}），"
                "您补充的情况和照片已记入该工单，工作人员会一并处理。回复该编号可查询进度。"))
        else:
            lines = [f"举报已受理！工单编号：{t.ticket_id}", f"类别：{POLLUTION_NAMES.get(t.pollution_type, '其他')}"]
            if t.urgent:
                lines.append("已列为紧急件，值班人员优先处理。情况紧急请立即拨打 12369。")
            else:
                lines.append("工作人员会在1个工作日内处理，一般15个工作日内办结。")
            lines.append("回复工单编号或“我的举报”可随时查询进度。")
            dispatcher.utter_message(text="\n".join(lines))
        return _reset()

