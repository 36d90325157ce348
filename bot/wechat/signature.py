"""WeChat request signatures (pure functions, no I/O).

- Plain mode: ``signature = sha1(sorted([token, timestamp, nonce]) joined)``.
- Safe mode: ``msg_signature = sha1(sorted([token, timestamp, nonce, encrypt]) joined)``.

The check functions take untrusted values straight from the query string and
never raise: anything that is not a matching signature is ``False``.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from typing import Union

Text = Union[str, bytes, int]

_DIGITS = re.compile(r"[0-9]{1,12}", re.ASCII)


def _as_bytes(value: Text) -> bytes:
    if isinstance(value, bool):
        raise TypeError("bool is not a signature part")
    if isinstance(value, int):
        return str(value).encode("ascii")
    if isinstance(value, str):
        # surrogatepass: a lone surrogate smuggled into a query string must
        # not turn a signature check into a UnicodeEncodeError.
        return value.encode("utf-8", "surrogatepass")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    raise TypeError(f"unsupported signature part type {type(value).__name__}")


def _sha1_sorted(*parts: Text) -> str:
    # Sorting the UTF-8 bytes is what Tencent's samples do; for ASCII (and for
    # any valid Unicode) it equals code-point order.
    return hashlib.sha1(b"".join(sorted(_as_bytes(p) for p in parts))).hexdigest()


def _equal(expected_hex: str, given: object) -> bool:
    if not isinstance(given, (str, bytes)):
        return False
    try:
        given_b = _as_bytes(given)
    except TypeError:
        return False
    return hmac.compare_digest(expected_hex.encode("ascii"), given_b)


def make_signature(token: Text, timestamp: Text, nonce: Text) -> str:
    """The plain-mode ``signature`` (hex sha1)."""
    return _sha1_sorted(token, timestamp, nonce)


def check_signature(token: Text, signature: object, timestamp: Text, nonce: Text) -> bool:
    """True when ``signature`` is the plain-mode signature (constant-time compare)."""
    try:
        expected = make_signature(token, timestamp, nonce)
    except TypeError:
        return False
    return _equal(expected, signature)


def make_msg_signature(token: Text, timestamp: Text, nonce: Text, encrypt: Text) -> str:
    """The safe-mode ``msg_signature`` over token, timestamp, nonce and Encrypt."""
    return _sha1_sorted(token, timestamp, nonce, encrypt)


def check_msg_signature(
    token: Text, msg_signature: object, timestamp: Text, nonce: Text, encrypt: Text
) -> bool:
    """True when ``msg_signature`` matches (constant-time compare)."""
    try:
        expected = make_msg_signature(token, timestamp, nonce, encrypt)
    except TypeError:
        return False
    return _equal(expected, msg_signature)


def timestamp_fresh(ts: object, now: float, window_s: float = 300) -> bool:
    """True when ``ts`` (decimal Unix seconds, as WeChat sends it) lies within
    ``window_s`` seconds of ``now`` either way. Garbage is never fresh."""
    if isinstance(ts, bytes):
        ts = ts.decode("ascii", "replace")
    if isinstance(ts, int) and not isinstance(ts, bool):
        ts = str(ts)
    if not isinstance(ts, str) or not _DIGITS.fullmatch(ts):
        return False
    return abs(float(now) - int(ts)) <= window_s
