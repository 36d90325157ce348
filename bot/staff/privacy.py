"""Reporters' phone numbers in the console: masked for agents (138****5678),
in full for supervisors, and every full view goes to the audit log (the
caller logs it; these functions only say whether a full number was shown).
Pure functions.
"""
from __future__ import annotations

import re

# Mainland mobile numbers, also inside longer texts (a transcript line), not
# inside longer digit runs (a ticket number HB202611290007 is not a phone).
PHONE_IN_TEXT = re.compile(r"(?<!\d)(1[3-9]\d)[\s-]?(\d{4})[\s-]?(\d{4})(?!\d)")


def mask_phone(phone: str | None) -> str:
    """"13812345678" -> "138****5678"; other numbers keep only their last 4 digits."""
    if not phone:
        return ""
    digits = re.sub(r"\D", "", phone)
    if len(digits) == 11:
        return f"{digits[:3]}****{digits[-4:]}"
    if len(digits) <= 4:
        return "*" * len(digits)
    return "*" * (len(digits) - 4) + digits[-4:]


def mask_phones_in_text(text: str) -> str:
    return PHONE_IN_TEXT.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text or "")


def has_phone(text: str | None) -> bool:
    return bool(text) and PHONE_IN_TEXT.search(text) is not None


def show_phone(phone: str | None, full: bool) -> str:
    return (phone or "") if full else mask_phone(phone)


def show_text(text: str | None, full: bool) -> str:
    return (text or "") if full else mask_phones_in_text(text or "")
