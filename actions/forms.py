"""Form questions (texts from knowledge/prompts.yml) and leaving a form."""
from __future__ import annotations

import abc
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import deps
from core.prompts import prompt

FORM_SLOTS = {
    "approval_form": ["approval_type"],
    "complaint_form": [
        "complaint_location", "complaint_latitude", "complaint_longitude", "complaint_time",
        "complaint_description", "complaint_contact", "complaint_confirmed", "complaint_urgent",
        "pollution_type",
    ],
}


class _AskAction(Action, abc.ABC):
    """Asks for one slot with its prompt (abstract: rasa_sdk registers only the subclasses)."""

    @property
    @abc.abstractmethod
    def slot(self) -> str: ...

    def name(self) -> str:
        return f"action_ask_{self.slot}"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[dict[str, Any]]:
        dispatcher.utter_message(text=prompt(f"ask_{self.slot}", deps.settings()))
        return []


class AskComplaintLocation(_AskAction):
    slot = "complaint_location"


class AskComplaintTime(_AskAction):
    slot = "complaint_time"


class AskComplaintDescription(_AskAction):
    slot = "complaint_description"


class AskComplaintContact(_AskAction):
    slot = "complaint_contact"


class CancelForm(Action):
    """"取消" inside a form: leave it, forget what was typed, say so."""

    def name(self) -> str:
        return "action_cancel_form"

    async def run(self, dispatcher, tracker, domain):
        form = tracker.active_loop.get("name") if tracker.active_loop else None
        events: list[dict[str, Any]] = [ActiveLoop(None), SlotSet("requested_slot", None)]
        events += [SlotSet(s, None) for s in FORM_SLOTS.get(form, [])]
        dispatcher.utter_message(text=prompt("cancelled", deps.settings()))
        return events
