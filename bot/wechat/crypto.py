"""WeChat safe-mode message encryption (WXBizMsgCrypt), pure, no I/O.

- EncodingAESKey: 43 base64 characters; with one "=" appended it decodes to
  the 32-byte AES key. AES-256-CBC, IV = key[:16].
- Plaintext: 16 random bytes + 4-byte big-endian length + XML + AppID,
  PKCS#7-padded to a multiple of 32 bytes (not 16).
- Every inbound ciphertext is signed with ``msg_signature`` over token,
  timestamp, nonce and Encrypt; the signature is checked before decrypting.

Only `WeChatProtocolError` subclasses leave this module, whatever the input.
"""
from __future__ import annotations

import base64
import binascii
import os
import re
import struct
from typing import Optional, Union

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .errors import (
    InvalidAesKey,
    InvalidAppId,
    InvalidPadding,
    InvalidReply,
    InvalidSignature,
    MalformedMessage,
    WeChatProtocolError,
)
from .messages import parse_encrypted_envelope
from .replies import render_encrypted_envelope, xml_safe_text
from .signature import check_msg_signature, make_msg_signature

PAD_BLOCK = 32
_AES_BLOCK = 16
_KEY_CHARS = re.compile(r"[A-Za-z0-9+/]{43}", re.ASCII)
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}", re.ASCII)
# Safe-mode ciphertexts are small; refuse to run AES over megabytes of junk.
MAX_ENCRYPT_CHARS = 1 << 20


def decode_aes_key(encoding_aes_key: str) -> bytes:
    """43-character EncodingAESKey -> 32-byte AES key, or `InvalidAesKey`."""
    if not isinstance(encoding_aes_key, str) or not _KEY_CHARS.fullmatch(encoding_aes_key):
        raise InvalidAesKey("EncodingAESKey must be exactly 43 base64 characters")
    key = base64.b64decode(encoding_aes_key + "=")
    if len(key) != 32:  # pragma: no cover - 43 valid characters always give 32 bytes
        raise InvalidAesKey("EncodingAESKey does not decode to 32 bytes")
    return key


def pkcs7_pad(data: bytes, block: int = PAD_BLOCK) -> bytes:
    amount = block - len(data) % block
    return data + bytes([amount]) * amount


def pkcs7_unpad(data: bytes, block: int = PAD_BLOCK) -> bytes:
    """Strict: pad value 1..block, no longer than the data, all pad bytes equal."""
    if not data:
        raise InvalidPadding("empty plaintext")
    amount = data[-1]
    if not 1 <= amount <= block or amount > len(data):
        raise InvalidPadding(f"pad value {amount} out of range 1..{block}")
    if data[-amount:] != bytes([amount]) * amount:
        raise InvalidPadding("pad bytes differ")
    return data[:-amount]


def _b64decode_strict(value: str) -> bytes:
    if len(value) > MAX_ENCRYPT_CHARS:
        raise MalformedMessage("Encrypt too long")
    if not _BASE64.fullmatch(value) or len(value) % 4:
        raise MalformedMessage("Encrypt is not base64")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):  # pragma: no cover - the regex filters these
        raise MalformedMessage("Encrypt is not base64") from None


def _as_str(value: object, what: str) -> str:
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedMessage(f"{what} is not UTF-8") from None
    if isinstance(value, str):
        return value
    raise MalformedMessage(f"{what} must be text, got {type(value).__name__}")


class WeChatCrypto:
    """Encrypt replies and decrypt callbacks for one Official Account."""

    def __init__(self, token: str, encoding_aes_key: str, appid: str) -> None:
        if not isinstance(token, str) or not token:
            raise WeChatProtocolError("token must be a non-empty string")
        if not isinstance(appid, str) or not appid:
            raise InvalidAppId("appid must be a non-empty string")
        self.token = token
        self.appid = appid
        self._appid_bytes = appid.encode("utf-8")
        self._key = decode_aes_key(encoding_aes_key)

    # -- low level -----------------------------------------------------------

    def _cipher(self) -> Cipher:
        return Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16]))

    def encrypt(self, text: str, random16: Optional[bytes] = None) -> str:
        """Base64 ciphertext of ``text`` (the Encrypt value, unsigned)."""
        if random16 is None:
            random16 = os.urandom(16)
        if not isinstance(random16, (bytes, bytearray)) or len(random16) != 16:
            raise InvalidReply("random16 must be exactly 16 bytes")
        if not isinstance(text, str):
            raise InvalidReply("reply must be text")
        try:
            body = text.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidReply("reply is not encodable as UTF-8") from None
        plain = bytes(random16) + struct.pack(">I", len(body)) + body + self._appid_bytes
        enc = self._cipher().encryptor()
        ct = enc.update(pkcs7_pad(plain)) + enc.finalize()
        return base64.b64encode(ct).decode("ascii")

    def decrypt(self, encrypt: str) -> str:
        """Plaintext of an Encrypt value (no signature check: use the public
        methods, which check ``msg_signature`` first)."""
        ct = _b64decode_strict(_as_str(encrypt, "Encrypt"))
        if not ct or len(ct) % _AES_BLOCK:
            raise InvalidPadding("ciphertext is not whole AES blocks")
        dec = self._cipher().decryptor()
        plain = pkcs7_unpad(dec.update(ct) + dec.finalize())
        if len(plain) < 20:
            raise MalformedMessage("plaintext shorter than its header")
        (length,) = struct.unpack(">I", plain[16:20])
        if 20 + length > len(plain):
            raise MalformedMessage("length field exceeds plaintext")
        body, appid = plain[20 : 20 + length], plain[20 + length :]
        if appid != self._appid_bytes:
            raise InvalidAppId("message is for another AppID")
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedMessage("message is not UTF-8") from None

    # -- protocol ------------------------------------------------------------

    def _verified_decrypt(self, encrypt: str, msg_signature: object, timestamp: object, nonce: object) -> str:
        timestamp = _as_str(timestamp, "timestamp")
        nonce = _as_str(nonce, "nonce")
        if not check_msg_signature(self.token, msg_signature, timestamp, nonce, encrypt):
            raise InvalidSignature("msg_signature mismatch")
        return self.decrypt(encrypt)

    def decrypt_message(
        self,
        body_xml_or_encrypt: Union[str, bytes],
        msg_signature: object,
        timestamp: object,
        nonce: object,
    ) -> str:
        """Check ``msg_signature`` and return the decrypted message XML.

        Takes the POST body (safe or compatible mode) or the bare Encrypt value.
        """
        body = _as_str(body_xml_or_encrypt, "body")
        if body.lstrip().startswith("<"):
            _to_user, encrypt = parse_encrypted_envelope(body)
        else:
            encrypt = body.strip()
            if not encrypt:
                raise MalformedMessage("empty body")
        return self._verified_decrypt(encrypt, msg_signature, timestamp, nonce)

    def decrypt_echostr(self, echostr: object, msg_signature: object, timestamp: object, nonce: object) -> str:
        """Safe-mode URL verification where ``echostr`` arrives encrypted:
        check ``msg_signature`` over it and return the plain echostr to echo.
        (Read ``echostr`` from the raw query string: '+' must not become ' '.)"""
        return self._verified_decrypt(_as_str(echostr, "echostr"), msg_signature, timestamp, nonce)

    def encrypt_message(
        self,
        reply_xml: str,
        nonce: str,
        timestamp: Union[int, str],
        random16: Optional[bytes] = None,
    ) -> str:
        """Encrypt and sign ``reply_xml``; returns the full reply envelope
        ``<xml><Encrypt/><MsgSignature/><TimeStamp/><Nonce/></xml>``."""
        if isinstance(timestamp, int) and not isinstance(timestamp, bool):
            timestamp = str(timestamp)
        if not isinstance(timestamp, str) or not isinstance(nonce, str):
            raise InvalidReply("timestamp and nonce must be text")
        if xml_safe_text(nonce) != nonce:
            # The envelope could not carry it unchanged, so the signature would not verify.
            raise InvalidReply("nonce holds characters XML cannot carry")
        encrypt = self.encrypt(reply_xml, random16)
        signature = make_msg_signature(self.token, timestamp, nonce, encrypt)
        return render_encrypted_envelope(encrypt, signature, timestamp, nonce)
