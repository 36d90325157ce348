"""Handing the conversation to a person: `action_escalate`, `action_default_fallback`,
and the helpers other actions call (`open_escalation`, `escalate_on_failure`,
`escalate_on_error`).

Triggers that end here:
- request_human (rule) -> action_escalate;
- the gateway's own triggers (an angry user, the same question three times)
  reach Rasa as "/request_human" with `escalation_reason` in the metadata, so
  Rasa's tracker records the handoff and an active form is closed;
- nlu_fallback -> action_default_fallback: rephrase with examples the first
  time, escalate on the second fallback in a row;
- an urgent complaint: actions/complaint.py calls open_escalation(pause=False);
- an action that failed: escalate_on_failure() / @escalate_on_error.

The escalation (and human mode) is stored by core/escalations.py; the gateway
routes the user's next messages to the staff inbox from then on.
"""
from __future__ import annotations

import functools
import logging
from datetime import datetime
from typing import Any, Awaitable, Callable

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import deps
from core.escalations import (
    EscalationStore, OpenResult, last_intent, last_ticket_id, load_office_hours, transcript_from_events,
)
from core.handoff_rules import (
    HOTLINE, R_ACTION_FAILED, R_FALLBACK, R_REQUEST, R_URGENT, REASON_LABELS, SHANGHAI, handoff_text,
)

log = logging.getLogger(__name__)

ESCALATE_FAILED_TEXT = (
    "转人工的请求暂时没有送达，请过一会儿再回复“转人工”；急事请直接拨打"
    f"{HOTLINE}环保举报热线，环评业务也可在工作日到县政务服务中心生态环境局窗口咨询。"
)
ACTION_FAILED_LEAD = "抱歉，刚才处理您的请求时出了点问题，"
FALLBACK_LEAD = "抱歉，我还是没明白，"


def _channel(tracker: Tracker) -> str:
    meta = tracker.latest_message.get("metadata") or {}
    return str(meta.get("channel") or "web")


def previous_turn_was_fallback(events: list[dict]) -> bool:
    """True when the bot answered the user's previous message with the fallback too."""
    seen_current = False
    for ev in reversed(events or []):
        kind = ev.get("event")
        if kind == "user":
            if seen_current:
                return False
            seen_current = True
        elif seen_current and kind == "action" and ev.get("name") == "action_default_fallback":
            return True
    return False


async def open_escalation(tracker: Tracker, reason: str, urgent: bool = False, pause: bool = True,
                          detail: str = "", ticket_id: str = "") -> OpenResult:
    """Open (or join) the sender's escalation with the transcript from the tracker.

    `reason` is a code of core.handoff_rules (R_*) or a free text (kept as the
    detail). With `pause` the conversation goes to staff now; otherwise when an
    agent claims it.
    """
    code = reason if reason in REASON_LABELS else (R_URGENT if urgent else R_ACTION_FAILED)
    if code != reason:
        detail = f"{reason}；{detail}" if detail else reason
    events = tracker.events or []
    store = EscalationStore(deps.redis(), deps.keys())
    return await store.open(
        sender=tracker.sender_id, channel=_channel(tracker), reason=code, detail=detail,
        intent=last_intent(events), ticket_id=ticket_id or last_ticket_id(events),
        urgent=urgent, transcript=transcript_from_events(events), pause=pause)


def _close_form(tracker: Tracker) -> list[dict[str, Any]]:
    if (tracker.active_loop or {}).get("name"):
        return [ActiveLoop(None), SlotSet("requested_slot", None)]
    return []


async def escalate(dispatcher: CollectingDispatcher, tracker: Tracker, reason: str,
                   detail: str = "", lead: str = "好的，") -> list[dict[str, Any]]:
    """Open the escalation and tell the user what happens next."""
    urgent = bool(tracker.get_slot("complaint_urgent"))
    try:
        result = await open_escalation(tracker, reason, urgent=urgent, detail=detail)
    except Exception:  # noqa: BLE001 - Redis down: still say how to reach a person
        log.exception("could not open an escalation for %s", tracker.sender_id[:4])
        dispatcher.utter_message(text=ESCALATE_FAILED_TEXT)
        return _close_form(tracker)
    hours = load_office_hours(deps.settings().knowledge_dir)
    text = handoff_text(datetime.now(SHANGHAI), hours, ahead=result.ahead,
                        urgent=result.escalation.urgent, already_open=not result.created, lead=lead)
    dispatcher.utter_message(text=text)
    return _close_form(tracker)


class ActionEscalate(Action):
    def name(self) -> str:
        return "action_escalate"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[dict[str, Any]]:
        meta = tracker.latest_message.get("metadata") or {}
        reason = str(meta.get("escalation_reason") or R_REQUEST)
        detail = str(meta.get("escalation_detail") or "")
        return await escalate(dispatcher, tracker, reason, detail)


def _rephrase_text() -> str:
    from core.prompts import prompt

    return prompt("please_rephrase", deps.settings())


class ActionDefaultFallback(Action):
    """First time: ask to rephrase, with examples. Second time in a row: a person."""

    def name(self) -> str:
        return "action_default_fallback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[dict[str, Any]]:
        if previous_turn_was_fallback(tracker.events):
            text = tracker.latest_message.get("text") or ""
            return await escalate(dispatcher, tracker, R_FALLBACK, detail=f"最后一句：{text[:100]}",
                                  lead=FALLBACK_LEAD)
        dispatcher.utter_message(text=_rephrase_text())
        return []


async def escalate_on_failure(dispatcher: CollectingDispatcher, tracker: Tracker, error: BaseException | str,
                              action_name: str = "") -> list[dict[str, Any]]:
    """For any action's `except`: log, hand the conversation to staff, tell the user.

    Returns the events the failing action should return.
    """
    what = f"{action_name}: {type(error).__name__}: {error}" if isinstance(error, BaseException) \
        else f"{action_name}: {error}"
    log.error("action failed, escalating: %s", what)
    return await escalate(dispatcher, tracker, R_ACTION_FAILED, detail=what[:300], lead=ACTION_FAILED_LEAD)


def escalate_on_error(run: Callable[..., Awaitable[list]]) -> Callable[..., Awaitable[list]]:
    """Decorator for `Action.run`: an exception becomes an escalation instead of a silent bot."""

    @functools.wraps(run)
    async def wrapper(self, dispatcher, tracker, domain):
        try:
            return await run(self, dispatcher, tracker, domain)
        except Exception as e:  # noqa: BLE001
            return await escalate_on_failure(dispatcher, tracker, e, self.name())

    return wrapper
