"""The WeChat Official Account protocol, pure (no I/O), after wechatpy's split:

- `signature`: plain `signature` and safe-mode `msg_signature`, timestamp window;
- `crypto`: `WeChatCrypto` (AES-256-CBC safe mode: decrypt callbacks, encrypt replies);
- `messages`: `parse_message` (defusedxml, DTDs refused), `dedup_key`;
- `replies`: passive reply XML (CDATA-safe), `split_for_wechat`;
- `errors`: `WeChatProtocolError` and its subclasses, the only exceptions
  raised for untrusted input.
"""
from .crypto import WeChatCrypto
from .errors import (
    InvalidAesKey,
    InvalidAppId,
    InvalidPadding,
    InvalidReply,
    InvalidSignature,
    MalformedMessage,
    WeChatProtocolError,
)
from .messages import Message, dedup_key, parse_encrypted_envelope, parse_message
from .replies import (
    Article,
    render_news_reply,
    render_text_reply,
    split_for_wechat,
    strip_control_chars,
    utf8_len,
)
from .signature import (
    check_msg_signature,
    check_signature,
    make_msg_signature,
    make_signature,
    timestamp_fresh,
)

__all__ = [
    "Article",
    "InvalidAesKey",
    "InvalidAppId",
    "InvalidPadding",
    "InvalidReply",
    "InvalidSignature",
    "MalformedMessage",
    "Message",
    "WeChatCrypto",
    "WeChatProtocolError",
    "check_msg_signature",
    "check_signature",
    "dedup_key",
    "make_msg_signature",
    "make_signature",
    "parse_encrypted_envelope",
    "parse_message",
    "render_news_reply",
    "render_text_reply",
    "split_for_wechat",
    "strip_control_chars",
    "timestamp_fresh",
    "utf8_len",
]
