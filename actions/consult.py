"""Enterprise consultation: materials, time limits, process, EIA category, contacts.

Every answer comes from knowledge/ (core/knowledge.py) and is formatted by
core/consult_text.py: one message when it fits WeChat's 2048 bytes, otherwise
parts split between items.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import deps
from actions.handoff import escalate_on_error
from core import consult_text
from core.consult_text import contact_lines, parse_approval_choice
from core.eia_category import classify
from core.knowledge import knowledge_for

SHANGHAI = ZoneInfo("Asia/Shanghai")
CANONICAL = ("report_book", "report_form", "registration_form", "acceptance")
CONSULT_INTENTS = ("ask_materials", "ask_time_limit", "ask_process")
UNSURE_TEXT = (
    "没关系，我帮您判断。请告诉我项目是做什么的、规模多大，比如：\n"
    "· “养猪场 存栏3000头”\n· “开汽修厂 有喷漆”\n· “光伏电站 20兆瓦 屋顶”\n"
    "也可以直接联系环保技术服务股当面咨询（回复“联系方式”查看电话）。"
)


def now_shanghai() -> dt.datetime:
    return dt.datetime.now(SHANGHAI)


_REL_DAYS = {"今天": 0, "今日": 0, "明天": 1, "明日": 1, "后天": 2, "大后天": 3}
_DATE_RE = re.compile(r"(?:(\d{4})[年\-/.])?(\d{1,2})[月\-/.](\d{1,2})[日号]?")


def submit_date_in(text: str, today: dt.date) -> dt.date | None:
    """The submission date a question names ("我今天交", "12月1日交"), if any."""
    for word in sorted(_REL_DAYS, key=len, reverse=True):
        if word in text:
            return today + dt.timedelta(days=_REL_DAYS[word])
    m = _DATE_RE.search(text)
    if m:
        year = int(m.group(1) or today.year)
        try:
            day = dt.date(year, int(m.group(2)), int(m.group(3)))
        except ValueError:
            return None
        if not m.group(1) and day < today - dt.timedelta(days=30):
            day = day.replace(year=year + 1)  # "1月5日" asked in December
        return day
    return None


def question_text(tracker: Tracker) -> str:
    """The text of the user's latest consultation question (the form may have asked in between)."""
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            intent = (event.get("parse_data") or {}).get("intent", {}).get("name")
            if intent in CONSULT_INTENTS:
                return event.get("text") or ""
    return tracker.latest_message.get("text") or ""


def utter_parts(dispatcher: CollectingDispatcher, parts: list[str]) -> None:
    for part in parts:
        dispatcher.utter_message(text=part)


class AskApprovalType(Action):
    def name(self) -> str:
        return "action_ask_approval_type"

    @escalate_on_error
    async def run(self, dispatcher, tracker, domain) -> list[dict[str, Any]]:
        dispatcher.utter_message(text=consult_text.approval_choice_prompt())
        return []


class ValidateApprovalForm(FormValidationAction):
    def name(self) -> str:
        return "validate_approval_form"

    async def validate_approval_type(self, value: Any, dispatcher, tracker: Tracker, domain) -> dict:
        text = str(value or "").strip()
        if text in CANONICAL or text == "unsure":
            return {"approval_type": text}
        choice = parse_approval_choice(text)
        if choice is None:
            from core.prompts import prompt

            dispatcher.utter_message(text=prompt("approval_type_again", deps.settings()))
        return {"approval_type": choice}


class AnswerConsult(Action):
    """The one-time notification: the whole answer for the type and topic asked."""

    def name(self) -> str:
        return "action_answer_consult"

    @escalate_on_error
    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain) -> list[dict[str, Any]]:
        kind = tracker.get_slot("approval_type")
        if kind not in CANONICAL:
            dispatcher.utter_message(text=UNSURE_TEXT)
            return [SlotSet("approval_type", None)]
        knowledge = knowledge_for(deps.settings())
        service = knowledge.service(kind)
        topic = tracker.get_slot("consult_topic") or "materials"
        if topic == "time_limit":
            submit = submit_date_in(question_text(tracker), now_shanghai().date())
            parts = consult_text.time_limit_answer(service, submit, knowledge.contacts)
        elif topic == "process":
            parts = consult_text.process_answer(service, now_shanghai(), knowledge.contacts)
        else:
            parts = consult_text.materials_answer(service, knowledge.contacts)
        utter_parts(dispatcher, parts)
        return []


class EiaCategory(Action):
    def name(self) -> str:
        return "action_eia_category"

    @escalate_on_error
    async def run(self, dispatcher, tracker: Tracker, domain) -> list[dict[str, Any]]:
        text = tracker.latest_message.get("text") or ""
        match = classify(text, knowledge_for(deps.settings()))
        utter_parts(dispatcher, consult_text.category_answer(match))
        return []


class Contact(Action):
    def name(self) -> str:
        return "action_contact"

    @escalate_on_error
    async def run(self, dispatcher, tracker: Tracker, domain) -> list[dict[str, Any]]:
        knowledge = knowledge_for(deps.settings())
        blocks = []
        for contact in knowledge.contacts.values():
            blocks.append("\n".join(contact_lines(contact)))
        utter_parts(dispatcher, consult_text.pack(["联系方式："] + blocks))
        return []
