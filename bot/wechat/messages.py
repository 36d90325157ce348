"""Parse the XML that WeChat POSTs to the callback URL (pure, no I/O).

XML is parsed with defusedxml and DTDs are refused outright (no entity
expansion, no external references, no "billion laughs"). Every failure is a
`MalformedMessage`; unknown message types parse to a generic `Message` with
`raw` holding every field, so a new WeChat message type never crashes us.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple, Union
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from .errors import MalformedMessage

# WeChat callbacks are a few KB; refuse anything absurd before parsing.
MAX_XML_CHARS = 1 << 20

_INT = re.compile(r"-?[0-9]{1,20}", re.ASCII)
_FLOAT = re.compile(r"-?[0-9]{1,20}(?:\.[0-9]{1,20})?", re.ASCII)


@dataclass(frozen=True)
class Message:
    """One inbound message or event. Fields that do not apply are None.

    `msg_type` and `event` are lower-cased (WeChat mixes `subscribe` and
    `CLICK`); `raw` maps every direct child tag to its text, unchanged.
    """

    to_user: str
    from_user: str
    create_time: int
    msg_type: str
    msg_id: Optional[str] = None
    # text
    content: Optional[str] = None
    # image / voice / video / shortvideo
    pic_url: Optional[str] = None
    media_id: Optional[str] = None
    format: Optional[str] = None
    recognition: Optional[str] = None
    thumb_media_id: Optional[str] = None
    # location message
    location_x: Optional[float] = None
    location_y: Optional[float] = None
    scale: Optional[int] = None
    label: Optional[str] = None
    # link
    title: Optional[str] = None
    description: Optional[str] = None
    url: Optional[str] = None
    # event
    event: Optional[str] = None
    event_key: Optional[str] = None
    ticket: Optional[str] = None
    latitude: Optional[float] = None
    longitude: Optional[float] = None
    precision: Optional[float] = None
    raw: Dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_event(self) -> bool:
        return self.msg_type == "event"


def _parse_root(xml: Union[str, bytes]) -> Element:
    if isinstance(xml, (bytearray, memoryview)):
        xml = bytes(xml)
    if not isinstance(xml, (str, bytes)):
        raise MalformedMessage(f"expected XML text, got {type(xml).__name__}")
    if len(xml) > MAX_XML_CHARS:
        raise MalformedMessage("XML body too large")
    if not xml.strip():
        raise MalformedMessage("empty body")
    try:
        root = SafeET.fromstring(xml, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise MalformedMessage(f"unsafe XML refused: {type(exc).__name__}") from None
    except (ParseError, ValueError, LookupError, TypeError) as exc:
        # ValueError covers UnicodeError (lone surrogates, bad bytes);
        # LookupError covers an unknown encoding= declaration.
        raise MalformedMessage(f"not well-formed XML: {type(exc).__name__}") from None
    if root.tag != "xml":
        raise MalformedMessage("root element is not <xml>")
    return root


def _fields(root: Element) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for child in root:
        if isinstance(child.tag, str) and child.tag not in out:
            out[child.tag] = child.text or ""
    return out


def _opt(fields: Dict[str, str], name: str) -> Optional[str]:
    return fields.get(name)


def _int(fields: Dict[str, str], name: str) -> Optional[int]:
    value = fields.get(name)
    if value is None or not value.strip():
        return None
    value = value.strip()
    if not _INT.fullmatch(value):
        raise MalformedMessage(f"{name} is not an integer")
    return int(value)


def _float(fields: Dict[str, str], name: str) -> Optional[float]:
    value = fields.get(name)
    if value is None or not value.strip():
        return None
    value = value.strip()
    if not _FLOAT.fullmatch(value):
        raise MalformedMessage(f"{name} is not a number")
    number = float(value)
    if not math.isfinite(number):  # pragma: no cover - the regex excludes inf/nan
        raise MalformedMessage(f"{name} is not finite")
    return number


def _required(fields: Dict[str, str], name: str) -> str:
    value = fields.get(name)
    if value is None or not value.strip():
        raise MalformedMessage(f"missing {name}")
    return value.strip()


def parse_message(xml: Union[str, bytes]) -> Message:
    """Parse a plaintext callback body into a `Message`.

    Raises `MalformedMessage` for anything that is not a well-formed, DTD-free
    `<xml>` document with ToUserName, FromUserName, CreateTime and MsgType.
    """
    f = _fields(_parse_root(xml))
    create_time = _int(f, "CreateTime")
    if create_time is None:
        raise MalformedMessage("missing CreateTime")
    msg_id = (f.get("MsgId") or f.get("MsgID") or "").strip() or None
    event = f.get("Event")
    return Message(
        to_user=_required(f, "ToUserName"),
        from_user=_required(f, "FromUserName"),
        create_time=create_time,
        msg_type=_required(f, "MsgType").lower(),
        msg_id=msg_id,
        content=_opt(f, "Content"),
        pic_url=_opt(f, "PicUrl"),
        media_id=_opt(f, "MediaId"),
        format=_opt(f, "Format"),
        recognition=_opt(f, "Recognition"),
        thumb_media_id=_opt(f, "ThumbMediaId"),
        location_x=_float(f, "Location_X"),
        location_y=_float(f, "Location_Y"),
        scale=_int(f, "Scale"),
        label=_opt(f, "Label"),
        title=_opt(f, "Title"),
        description=_opt(f, "Description"),
        url=_opt(f, "Url"),
        event=event.strip().lower() if event is not None else None,
        event_key=_opt(f, "EventKey"),
        ticket=_opt(f, "Ticket"),
        latitude=_float(f, "Latitude"),
        longitude=_float(f, "Longitude"),
        precision=_float(f, "Precision"),
        raw=f,
    )


def parse_encrypted_envelope(xml: Union[str, bytes]) -> Tuple[Optional[str], str]:
    """Safe-mode (or compatible-mode) body -> (ToUserName or None, Encrypt)."""
    f = _fields(_parse_root(xml))
    encrypt = (f.get("Encrypt") or "").strip()
    if not encrypt:
        raise MalformedMessage("missing Encrypt")
    to_user = (f.get("ToUserName") or "").strip() or None
    return to_user, encrypt


def dedup_key(msg: Message) -> str:
    """Identity of one inbound message across WeChat's retries.

    WeChat's advice: de-duplicate messages by MsgId, events by
    FromUserName + CreateTime. The event name and key are added so two
    different events in the same second are not mistaken for one retry.
    """
    if msg.msg_id:
        return f"msgid:{msg.msg_id}"
    kind = msg.event or msg.msg_type
    return f"ft:{msg.from_user}:{msg.create_time}:{kind}:{msg.event_key or ''}"
