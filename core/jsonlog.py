"""Structured logs: one JSON object per line, for all three processes.

    {"ts": "2026-03-01T02:03:04.567Z", "level": "INFO", "logger": "bot.pipeline",
     "msg": "reply", "request_id": "5f0c…", "sender": "web-ab***3fa9c1", "channel": "web", ...}

Fields: `ts` (UTC), `level`, `logger`, `msg`, then `request_id` and `sender`
when the line belongs to a message, then any `extra={...}` fields of the call,
then `exc` (the traceback) when there is one. The `sender` field is masked
(`mask_sender`); messages themselves must not name whole OpenIDs either.

The request id follows one user message: the gateway takes the caller's
`X-Request-Id` or makes one (bot/request_ids.py), sends it to Rasa in the REST
channel's `metadata.request_id` (bot/pipeline.py), Rasa's REST channel binds it
while it handles the message (nlu_ext/rest_channel.py), and the action server
reads it back from the tracker Rasa sends (actions/request_log.py). Each
process keeps it in a context variable, so every line logged while the message
is handled carries it, whoever logs it.

Who configures what:
- the gateway: `configure()` in bot/__main__.py;
- Rasa and the action server: deploy/rasa-logging.yml, given to `rasa run` and
  `rasa run actions` as `--logging-config-file` (scripts/stack.py). Rasa's
  structlog lines arrive as JSON text (Rasa renders JSON when stderr is not a
  terminal); they are merged into the line instead of being quoted in `msg`.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import sys
import threading
import traceback
import uuid
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Iterator, Optional

_request_id: ContextVar[Optional[str]] = ContextVar("ecobot_request_id", default=None)
_sender: ContextVar[Optional[str]] = ContextVar("ecobot_sender", default=None)

REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}
_RESERVED = ("ts", "level", "logger", "msg", "request_id", "sender")
# Keys of Rasa's structlog events that hold a conversation id: masked like senders.
_SENDER_KEYS = ("sender", "sender_id", "conversation_id")
# One line at a time on the stream, whichever handler instance writes it.
_write_lock = threading.Lock()


# -- request ids and senders ------------------------------------------------------

def new_request_id() -> str:
    return uuid.uuid4().hex


def clean_request_id(value: object) -> Optional[str]:
    """`value` when it is a usable request id (what a proxy or client sends), else None."""
    if isinstance(value, str) and REQUEST_ID_RE.fullmatch(value):
        return value
    return None


def mask_sender(sender: object) -> Optional[str]:
    """The first 6 characters, `***`, and 6 hex digits of the sender's SHA-256.

    The prefix alone would not tell users apart (all OpenIDs of one Official
    Account start alike); the digest does, without showing the id.
    """
    if sender is None or sender == "":
        return None
    s = str(sender)
    digest = hashlib.sha256(s.encode("utf-8")).hexdigest()[:6]
    return f"{s[:6] if len(s) > 6 else ''}***{digest}"


def current_request_id() -> Optional[str]:
    return _request_id.get()


def bind_sender(sender: Optional[str]) -> None:
    """Attach `sender` to the following lines of the current request (inside `request_context`)."""
    _sender.set(sender or None)


def set_request(request_id: Optional[str], sender: Optional[str] = None) -> None:
    """Set (or with None, clear) both for the rest of the current task: for
    frameworks whose hooks cannot wrap the handler in `request_context` (Sanic
    middleware). Call it at the start of every request, so that nothing is
    left from the previous request on the same connection."""
    _request_id.set(request_id or None)
    _sender.set(sender or None)


@contextlib.contextmanager
def request_context(request_id: Optional[str] = None, sender: Optional[str] = None) -> Iterator[Optional[str]]:
    """Lines logged inside carry `request_id` and `sender`; both are restored on exit.

    Both are always set (None clears them), so a value never leaks from one
    request into the next one handled by the same task.
    """
    rid_token = _request_id.set(request_id or None)
    sender_token = _sender.set(sender or None)
    try:
        yield request_id
    finally:
        _sender.reset(sender_token)
        _request_id.reset(rid_token)


# -- formatting -------------------------------------------------------------------

def _embedded_json(record: logging.LogRecord) -> Optional[dict]:
    """Rasa's structlog renders its events as JSON text: take them apart."""
    msg = record.msg
    if record.args or not isinstance(msg, str) or not msg.startswith("{") or not msg.endswith("}"):
        return None
    try:
        data = json.loads(msg)
    except ValueError:
        return None
    return data if isinstance(data, dict) and "event" in data else None


def _ts(created: float) -> str:
    return datetime.fromtimestamp(created, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict = {"ts": _ts(record.created), "level": record.levelname, "logger": record.name}
        embedded = _embedded_json(record)
        out["msg"] = str(embedded["event"]) if embedded is not None else record.getMessage()
        rid = getattr(record, "request_id", None) or _request_id.get()
        if rid:
            out["request_id"] = rid
        sender = getattr(record, "sender", None) or _sender.get()
        if sender:
            out["sender"] = mask_sender(sender)
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in _RESERVED and not key.startswith("_"):
                out[key] = value
        if embedded is not None:
            for key, value in embedded.items():
                if key in ("event", "level", "timestamp") or key in out:
                    continue
                out[key] = mask_sender(value) if key in _SENDER_KEYS else value
        if record.exc_info:
            out["exc"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        elif record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = record.stack_info
        return json.dumps(out, ensure_ascii=False, default=str)


class JsonLinesHandler(logging.Handler):
    """Writes one JSON line per record to stdout (or stderr), resolved at each write.

    Deliberately not a `logging.StreamHandler`: coloredlogs, which Rasa and
    rasa_sdk install after reading the logging config, replaces any
    StreamHandler on stdout/stderr it finds (see deploy/rasa-logging.yml).
    """

    def __init__(self, stream: str = "stdout", level: int | str = logging.NOTSET,
                 capture_warnings: bool = False) -> None:
        super().__init__(level)
        if stream not in ("stdout", "stderr"):
            raise ValueError(f"stream must be stdout or stderr, not {stream!r}")
        self.stream_name = stream
        self.setFormatter(JsonFormatter())
        if capture_warnings:  # Python warnings (deprecations ...) become JSON lines too (process-wide)
            logging.captureWarnings(True)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            stream = getattr(sys, self.stream_name)
            with _write_lock:
                stream.write(line + "\n")
                stream.flush()
        except Exception:  # noqa: BLE001 - logging must never break the caller
            self.handleError(record)


class DropAll(logging.Filter):
    """Lets nothing through (used to silence a handler, see deploy/rasa-logging.yml)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return False


def json_handlers() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if isinstance(h, JsonLinesHandler)]


def adopt(logger_names: tuple[str, ...]) -> None:
    """Give loggers that a library set up with its own console handlers (Sanic's
    `sanic.*`, jieba's) the root's JSON handler instead, and stop them
    propagating (Rasa turns Sanic's propagation off anyway), so each record is
    one JSON line. Does nothing where the root has no JSON handler."""
    handlers = json_handlers()
    if not handlers:
        return
    for name in logger_names:
        lg = logging.getLogger(name)
        for h in list(lg.handlers):
            if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
                lg.removeHandler(h)
        for h in handlers:
            if h not in lg.handlers:
                lg.addHandler(h)
        lg.propagate = False


def configure(level: int | str = logging.INFO) -> None:
    """JSON lines on stdout for this process (the gateway; Rasa uses deploy/rasa-logging.yml)."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(JsonLinesHandler(capture_warnings=True))
    root.setLevel(level)
