"""The one exception hierarchy of the WeChat protocol layer.

Everything in `bot.wechat` that handles untrusted input raises only these
(never a bare ValueError, binascii.Error, IndexError, UnicodeError, ...), so
the gateway can catch `WeChatProtocolError` and answer WeChat with `success`.
"""
from __future__ import annotations


class WeChatProtocolError(Exception):
    """Base class: the request or reply does not follow the WeChat protocol."""


class InvalidSignature(WeChatProtocolError):
    """`signature` or `msg_signature` does not match."""


class InvalidAesKey(WeChatProtocolError):
    """The EncodingAESKey is not 43 base64 characters decoding to 32 bytes."""


class InvalidPadding(WeChatProtocolError):
    """The ciphertext is not whole AES blocks, or its PKCS#7 padding is wrong."""


class InvalidAppId(WeChatProtocolError):
    """The decrypted message names another AppID."""


class MalformedMessage(WeChatProtocolError):
    """Not parseable: bad base64, bad length field, bad UTF-8, bad or unsafe XML,
    missing required fields."""


class InvalidReply(WeChatProtocolError):
    """A reply we were asked to build cannot be rendered (bad time, nonce, ...)."""
