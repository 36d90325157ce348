"""The pure WeChat protocol layer (bot/wechat): published vectors, attacks,
edge cases, and property tests that only WeChatProtocolError ever escapes."""
from __future__ import annotations

import base64
import json
import os
import re
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.wechat import (
    Article,
    InvalidAesKey,
    InvalidAppId,
    InvalidPadding,
    InvalidReply,
    InvalidSignature,
    MalformedMessage,
    WeChatCrypto,
    WeChatProtocolError,
    check_msg_signature,
    check_signature,
    dedup_key,
    make_msg_signature,
    make_signature,
    parse_encrypted_envelope,
    parse_message,
    render_news_reply,
    render_text_reply,
    split_for_wechat,
    strip_control_chars,
    timestamp_fresh,
    utf8_len,
)
from bot.wechat.crypto import pkcs7_pad
from bot.wechat.replies import cdata


# --------------------------------------------------------------------------
# fixtures


def _vectors_path() -> Path:
    candidates = [Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "wechat_vectors.json"]
    env = os.environ.get("WECHAT_FIXTURES")
    if env:
        p = Path(env)
        candidates.append(p / "wechat_vectors.json" if p.is_dir() else p)
    for p in candidates:
        if p.is_file():
            return p
    raise FileNotFoundError(
        f"wechat_vectors.json not found (tried {[str(c) for c in candidates]}); set WECHAT_FIXTURES"
    )


VECTORS = json.loads(_vectors_path().read_text(encoding="utf-8"))
OA = VECTORS["oa_official_sample_spamtest"]
WORK = VECTORS["wechatpy_tests_test_crypto_work"]


@pytest.fixture()
def oa() -> WeChatCrypto:
    return WeChatCrypto(OA["token"], OA["encoding_aes_key"], OA["appid"])


@pytest.fixture()
def work() -> WeChatCrypto:
    return WeChatCrypto(WORK["token"], WORK["encoding_aes_key"], WORK["receive_id"])


def _aes_encrypt_raw(encoding_aes_key: str, plain: bytes) -> str:
    """AES-256-CBC with the WeChat key/IV over bytes already block-aligned
    (lets tests forge plaintexts with bad padding, lengths or appids)."""
    key = base64.b64decode(encoding_aes_key + "=")
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(plain) + enc.finalize()).decode()


def _signed(crypto: WeChatCrypto, encrypt: str, ts: str = "1700000000", nonce: str = "42"):
    return encrypt, make_msg_signature(crypto.token, ts, nonce, encrypt), ts, nonce


# --------------------------------------------------------------------------
# signatures: every published vector


@pytest.mark.parametrize("vec", VECTORS["plain_signature"], ids=lambda v: v["token"])
def test_plain_signature_vectors(vec):
    assert make_signature(vec["token"], vec["timestamp"], vec["nonce"]) == vec["signature"]
    assert check_signature(vec["token"], vec["signature"], vec["timestamp"], vec["nonce"])
    assert not check_signature(vec["token"], vec["signature"], vec["timestamp"], vec["nonce"] + "1")
    assert not check_signature(vec["token"] + "x", vec["signature"], vec["timestamp"], vec["nonce"])


def test_oa_sample_url_signature():
    assert make_signature(OA["token"], OA["timestamp"], OA["nonce"]) == OA["url_signature_computed"]
    assert check_signature(OA["token"], OA["url_signature_computed"], OA["timestamp"], OA["nonce"])


def test_msg_signature_vectors():
    assert make_msg_signature(OA["token"], OA["timestamp"], OA["nonce"], OA["encrypt"]) == OA["msg_signature"]
    assert check_msg_signature(OA["token"], OA["msg_signature"], OA["timestamp"], OA["nonce"], OA["encrypt"])
    ver = WORK["verify"]
    assert check_msg_signature(WORK["token"], ver["msg_signature"], ver["timestamp"], ver["nonce"], ver["echostr"])
    dec = WORK["decrypt"]
    _, encrypt = parse_encrypted_envelope(dec["post_body"])
    assert check_msg_signature(WORK["token"], dec["msg_signature"], dec["timestamp"], dec["nonce"], encrypt)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "0" * 40,
        OA["msg_signature"].upper(),
        OA["msg_signature"][:-1],
        OA["msg_signature"] + "0",
        "签名" * 20,
        "\ud800" * 40,
        None,
        12345,
        b"\xff" * 40,
    ],
)
def test_wrong_signatures_are_false_never_raise(bad):
    assert check_msg_signature(OA["token"], bad, OA["timestamp"], OA["nonce"], OA["encrypt"]) is False
    assert check_signature(OA["token"], bad, OA["timestamp"], OA["nonce"]) is False


def test_signature_check_accepts_bytes_and_rejects_odd_parts():
    sig = OA["url_signature_computed"]
    assert check_signature(OA["token"], sig.encode(), OA["timestamp"].encode(), OA["nonce"])
    assert check_signature(OA["token"], sig, int(OA["timestamp"]), OA["nonce"])
    assert check_signature(OA["token"], sig, None, OA["nonce"]) is False  # type: ignore[arg-type]
    assert check_signature(OA["token"], sig, True, OA["nonce"]) is False  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "ts, now, expected",
    [
        ("1700000000", 1700000000.0, True),
        ("1700000000", 1700000300.0, True),
        ("1700000000", 1700000300.5, False),
        ("1700000000", 1699999700.0, True),
        ("1700000000", 1699999699.0, False),
        (1700000000, 1700000000.0, True),
        (b"1700000000", 1700000010.0, True),
        ("", 1700000000.0, False),
        ("17e8", 1700000000.0, False),
        ("-1700000000", 1700000000.0, False),
        (" 1700000000", 1700000000.0, False),
        ("１７００００００００", 1700000000.0, False),  # full-width digits
        ("1_700_000_000", 1700000000.0, False),
        ("9" * 5000, 1700000000.0, False),
        (None, 1700000000.0, False),
        (True, 1.0, False),
    ],
)
def test_timestamp_fresh(ts, now, expected):
    assert timestamp_fresh(ts, now) is expected


def test_timestamp_fresh_custom_window():
    assert timestamp_fresh("100", 110.0, window_s=10)
    assert not timestamp_fresh("100", 111.0, window_s=10)


# --------------------------------------------------------------------------
# crypto: published vectors


def test_oa_sample_decrypts_compat_mode_body(oa):
    xml = oa.decrypt_message(OA["post_body_compat_mode"], OA["msg_signature"], OA["timestamp"], OA["nonce"])
    assert xml == OA["decrypted_xml"]
    msg = parse_message(xml)
    assert (msg.msg_type, msg.content, msg.msg_id) == ("text", "abcdteT", "6054768590064713728")
    assert (msg.to_user, msg.from_user, msg.create_time) == (
        "gh_10f6c3c3ac5a",
        "oyORnuP8q7ou2gfYjqLzSIWZf0rs",
        1409735668,
    )


def test_oa_sample_decrypts_bare_encrypt_and_bytes(oa):
    args = (OA["msg_signature"], OA["timestamp"], OA["nonce"])
    assert oa.decrypt_message(OA["encrypt"], *args) == OA["decrypted_xml"]
    assert oa.decrypt_message(OA["post_body_compat_mode"].encode(), *args) == OA["decrypted_xml"]
    assert oa.decrypt_message(OA["encrypt"].encode(), *args) == OA["decrypted_xml"]


def test_oa_sample_encrypt_reproduces_ciphertext(oa):
    """Same random16 and plaintext -> Tencent's exact ciphertext and signature."""
    random16 = OA["decrypted_random16"].encode()
    envelope = oa.encrypt_message(OA["decrypted_xml"], OA["nonce"], OA["timestamp"], random16)
    _, encrypt = parse_encrypted_envelope(envelope)
    assert encrypt == OA["encrypt"]
    root = ET.fromstring(envelope)
    assert root.findtext("MsgSignature") == OA["msg_signature"]
    assert root.findtext("TimeStamp") == OA["timestamp"]
    assert root.findtext("Nonce") == OA["nonce"]


def test_work_vector_verify_echostr(work):
    ver = WORK["verify"]
    got = work.decrypt_echostr(ver["echostr"], ver["msg_signature"], ver["timestamp"], ver["nonce"])
    assert got == ver["decrypted_echostr"]
    with pytest.raises(InvalidSignature):
        work.decrypt_echostr(ver["echostr"], ver["msg_signature"], ver["timestamp"], "1")
    # aiohttp's request.query turns '+' into ' ': such an echostr must not verify.
    mangled = ver["echostr"].replace("+", " ")
    assert mangled != ver["echostr"]
    with pytest.raises(InvalidSignature):
        work.decrypt_echostr(mangled, ver["msg_signature"], ver["timestamp"], ver["nonce"])


def test_work_vector_decrypt(work):
    dec = WORK["decrypt"]
    xml = work.decrypt_message(dec["post_body"], dec["msg_signature"], dec["timestamp"], dec["nonce"])
    assert xml == dec["decrypted_xml"]
    msg = parse_message(xml)
    assert msg.content == "test" and msg.from_user == "messense" and msg.raw["AgentID"] == "1"


def test_work_vector_encrypt_reply_exact(work):
    rep = WORK["encrypt_reply"]
    envelope = work.encrypt_message(rep["reply_plain"], rep["nonce"], rep["timestamp"], rep["random16"].encode())
    assert envelope == rep["expected_envelope"]
    # and it decrypts back through the public API
    root = ET.fromstring(envelope)
    back = work.decrypt_message(envelope, root.findtext("MsgSignature"), rep["timestamp"], rep["nonce"])
    assert back == rep["reply_plain"]
    # int timestamp gives the same envelope
    assert work.encrypt_message(
        rep["reply_plain"], rep["nonce"], int(rep["timestamp"]), rep["random16"].encode()
    ) == rep["expected_envelope"]


# --------------------------------------------------------------------------
# crypto: round trips and failures


@pytest.mark.parametrize(
    "text",
    ["", "a", "x" * 31, "x" * 32, "x" * 33, "您好，噪声扰民请拨打12369。\n第二行 😀", "<xml><Content><![CDATA[a]]]]><![CDATA[>b]]></Content></xml>"],
)
def test_round_trip(oa, text):
    envelope = oa.encrypt_message(text, "nonce1", "1700000000")
    sig = ET.fromstring(envelope).findtext("MsgSignature")
    assert oa.decrypt_message(envelope, sig, "1700000000", "nonce1") == text


def test_random16_default_is_random(oa):
    a = oa.encrypt_message("same", "n", "1")
    b = oa.encrypt_message("same", "n", "1")
    assert a != b


def test_ciphertext_is_padded_to_32(oa):
    for n in range(0, 70):
        ct = base64.b64decode(oa.encrypt("x" * n))
        assert len(ct) % 32 == 0


def test_wrong_signature_raises(oa):
    with pytest.raises(InvalidSignature):
        oa.decrypt_message(OA["post_body_compat_mode"], "0" * 40, OA["timestamp"], OA["nonce"])
    with pytest.raises(InvalidSignature):
        oa.decrypt_message(OA["post_body_compat_mode"], OA["msg_signature"], "1409735670", OA["nonce"])
    other_token = WeChatCrypto("nottoken", OA["encoding_aes_key"], OA["appid"])
    with pytest.raises(InvalidSignature):
        other_token.decrypt_message(OA["post_body_compat_mode"], OA["msg_signature"], OA["timestamp"], OA["nonce"])


def test_wrong_appid_raises():
    crypto = WeChatCrypto(OA["token"], OA["encoding_aes_key"], "wx0000000000000000")
    with pytest.raises(InvalidAppId):
        crypto.decrypt_message(OA["post_body_compat_mode"], OA["msg_signature"], OA["timestamp"], OA["nonce"])
    # a suffix of the right appid is not the appid either
    crypto = WeChatCrypto(OA["token"], OA["encoding_aes_key"], OA["appid"][1:])
    with pytest.raises(InvalidAppId):
        crypto.decrypt_message(OA["encrypt"], OA["msg_signature"], OA["timestamp"], OA["nonce"])


def test_wrong_key_never_decrypts(oa):
    other = WeChatCrypto(OA["token"], WORK["encoding_aes_key"], OA["appid"])
    with pytest.raises(WeChatProtocolError):
        other.decrypt_message(OA["encrypt"], OA["msg_signature"], OA["timestamp"], OA["nonce"])


def _forge(crypto_key: str, payload: bytes) -> str:
    return _aes_encrypt_raw(crypto_key, payload)


def _plain(xml: bytes, appid: bytes, length: int | None = None) -> bytes:
    n = len(xml) if length is None else length
    return b"R" * 16 + struct.pack(">I", n) + xml + appid


@pytest.mark.parametrize(
    "tail",
    [
        b"\x00" * 32,  # pad value 0
        b"\x21" * 32,  # pad value 33 > 32
        b"\xff" * 32,
        b"\x01" * 31 + b"\x03",  # pad bytes differ
        b"\x05" * 28 + b"\x04\x05\x05\x05\x05",  # one differing byte inside the pad
    ],
)
def test_bad_padding_raises(oa, tail):
    body = _plain(b"<xml/>", OA["appid"].encode())
    body += b"z" * (-len(body) % 32)
    raw = body + tail[-32:]
    encrypt = _forge(OA["encoding_aes_key"], raw[: len(raw) // 16 * 16])
    with pytest.raises(InvalidPadding):
        oa.decrypt_message(*_signed(oa, encrypt))


def test_padding_of_whole_message_is_refused(oa):
    # 32 bytes of value 32: padding swallows everything, no header left
    encrypt = _forge(OA["encoding_aes_key"], bytes([32]) * 32)
    with pytest.raises(MalformedMessage):
        oa.decrypt_message(*_signed(oa, encrypt))


def test_correct_forged_plaintext_decrypts(oa):
    """Control for the forgeries: the same helper with a valid layout decrypts."""
    encrypt = _forge(OA["encoding_aes_key"], pkcs7_pad(_plain("<xml>好</xml>".encode(), OA["appid"].encode())))
    assert oa.decrypt_message(*_signed(oa, encrypt)) == "<xml>好</xml>"


@pytest.mark.parametrize(
    "plain, exc",
    [
        (_plain(b"<xml/>", b"wx2c2769f8efd9abc2", length=10_000), MalformedMessage),  # length past the end
        (_plain(b"<xml/>", b"wx2c2769f8efd9abc2", length=0xFFFFFFFF), MalformedMessage),
        (_plain(b"<xml/>", b"wx2c2769f8efd9abc2", length=7), InvalidAppId),  # length eats appid bytes
        (_plain(b"<xml>\xff\xfe</xml>", b"wx2c2769f8efd9abc2"), MalformedMessage),  # not UTF-8
        (_plain(b"<xml/>", b""), InvalidAppId),  # no appid at all
        (b"R" * 10, MalformedMessage),  # shorter than the header
    ],
)
def test_forged_plaintexts_raise(oa, plain, exc):
    encrypt = _forge(OA["encoding_aes_key"], pkcs7_pad(plain))
    with pytest.raises(exc):
        oa.decrypt_message(*_signed(oa, encrypt))


@pytest.mark.parametrize(
    "encrypt, exc",
    [
        (OA["encrypt"][:-1], MalformedMessage),  # length not a multiple of 4
        (OA["encrypt"][:-4], InvalidPadding),  # 317 bytes: not whole AES blocks
        (OA["encrypt"].replace("+", " "), MalformedMessage),  # the aiohttp query trap
        ("!!!!", MalformedMessage),
        ("====", MalformedMessage),
        ("QUJD", InvalidPadding),  # 3 bytes
        ("A" * 21 + "\u00e9" + "AA", MalformedMessage),  # non-ASCII
        ("\ud800AAA", MalformedMessage),  # lone surrogate
        (base64.b64encode(base64.b64decode(OA["encrypt"])[:-32]).decode(), WeChatProtocolError),  # last 2 blocks cut
        (base64.b64encode(base64.b64decode(OA["encrypt"])[16:]).decode(), WeChatProtocolError),  # first block cut
        (base64.b64encode(b"\x00" * 64).decode(), WeChatProtocolError),
    ],
)
def test_truncated_and_garbage_encrypt(oa, encrypt, exc):
    with pytest.raises(exc):
        oa.decrypt_message(*_signed(oa, encrypt))
    # and with the genuine signature of the untouched vector it is InvalidSignature
    with pytest.raises(InvalidSignature):
        oa.decrypt_message(encrypt, OA["msg_signature"], OA["timestamp"], OA["nonce"])


@pytest.mark.parametrize(
    "body",
    [
        "",
        "   ",
        "<xml><ToUserName>x</ToUserName></xml>",  # no Encrypt
        "<xml><Encrypt></Encrypt></xml>",
        "<xml><Encrypt>",  # not well-formed
        '<!DOCTYPE xml [<!ENTITY e "AAAA">]><xml><Encrypt>&e;</Encrypt></xml>',
        b"<xml><Encrypt>\xff</Encrypt></xml>",
    ],
)
def test_bad_envelopes_are_malformed(oa, body):
    with pytest.raises(MalformedMessage):
        oa.decrypt_message(body, OA["msg_signature"], OA["timestamp"], OA["nonce"])


@pytest.mark.parametrize(
    "key",
    [
        OA["encoding_aes_key"][:-1],  # 42
        OA["encoding_aes_key"] + "A",  # 44
        OA["encoding_aes_key"][:-1] + "=",
        OA["encoding_aes_key"][:-1] + "-",  # urlsafe alphabet is not WeChat's
        OA["encoding_aes_key"][:-1] + "é",
        "",
        " " + OA["encoding_aes_key"][1:],
        None,
        b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    ],
)
def test_wrong_key_length_or_alphabet(key):
    with pytest.raises(InvalidAesKey):
        WeChatCrypto("t", key, "wx1")  # type: ignore[arg-type]


def test_constructor_rejects_empty_token_and_appid():
    with pytest.raises(WeChatProtocolError):
        WeChatCrypto("", OA["encoding_aes_key"], OA["appid"])
    with pytest.raises(InvalidAppId):
        WeChatCrypto("t", OA["encoding_aes_key"], "")


def test_encrypt_message_rejects_bad_arguments(oa):
    with pytest.raises(InvalidReply):
        oa.encrypt_message("<xml/>", "n", "1", random16=b"short")
    with pytest.raises(InvalidReply):
        oa.encrypt_message("<xml/>", "n", "not-a-time")
    with pytest.raises(InvalidReply):
        oa.encrypt_message("<xml/>", "n\x00", "1")
    with pytest.raises(InvalidReply):
        oa.encrypt_message("\ud800", "n", "1")


def test_nonce_with_cdata_terminator_still_round_trips(oa):
    envelope = oa.encrypt_message("<xml/>", "a]]>b", "5")
    root = ET.fromstring(envelope)
    assert root.findtext("Nonce") == "a]]>b"
    assert oa.decrypt_message(envelope, root.findtext("MsgSignature"), "5", "a]]>b") == "<xml/>"


# --------------------------------------------------------------------------
# messages


def _xml(**fields: str) -> str:
    base = {"ToUserName": "gh_bureau", "FromUserName": "oUser1", "CreateTime": "1700000000"}
    base.update(fields)
    return "<xml>" + "".join(f"<{k}>{cdata(v)}</{k}>" for k, v in base.items()) + "</xml>"


def test_parse_text():
    m = parse_message(_xml(MsgType="text", Content=" 河里有死鱼\n在桥下 ", MsgId="123456789012345678"))
    assert (m.msg_type, m.content, m.msg_id, m.create_time) == ("text", " 河里有死鱼\n在桥下 ", "123456789012345678", 1700000000)
    assert not m.is_event


def test_parse_image_voice_video():
    m = parse_message(_xml(MsgType="image", PicUrl="http://x/p.jpg", MediaId="m1", MsgId="1"))
    assert (m.pic_url, m.media_id) == ("http://x/p.jpg", "m1")
    m = parse_message(_xml(MsgType="voice", MediaId="m2", Format="amr", Recognition="噪音很大", MsgId="2"))
    assert (m.media_id, m.format, m.recognition) == ("m2", "amr", "噪音很大")
    for kind in ("video", "shortvideo"):
        m = parse_message(_xml(MsgType=kind, MediaId="m3", ThumbMediaId="t3", MsgId="3"))
        assert (m.msg_type, m.media_id, m.thumb_media_id) == (kind, "m3", "t3")


def test_parse_location_and_link():
    m = parse_message(
        "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime>"
        "<MsgType>location</MsgType><Location_X>23.134521</Location_X><Location_Y>-113.358803</Location_Y>"
        "<Scale>20</Scale><Label><![CDATA[某县环保局]]></Label><MsgId>9</MsgId></xml>"
    )
    assert (m.location_x, m.location_y, m.scale, m.label) == (23.134521, -113.358803, 20, "某县环保局")
    m = parse_message(_xml(MsgType="link", Title="标题", Description="描述", Url="https://example.org/a?b=1&c=2", MsgId="5"))
    assert (m.title, m.description, m.url) == ("标题", "描述", "https://example.org/a?b=1&c=2")


def test_parse_events_lower_cased():
    m = parse_message(_xml(MsgType="event", Event="subscribe", EventKey="qrscene_123", Ticket="TK"))
    assert (m.event, m.event_key, m.ticket, m.is_event) == ("subscribe", "qrscene_123", "TK", True)
    m = parse_message(_xml(MsgType="EVENT", Event="CLICK", EventKey="MENU_REPORT"))
    assert (m.msg_type, m.event, m.event_key) == ("event", "click", "MENU_REPORT")
    m = parse_message(
        _xml(MsgType="event", Event="LOCATION", Latitude="23.137466", Longitude="113.352425", Precision="119.385040")
    )
    assert (m.event, m.latitude, m.longitude, m.precision) == ("location", 23.137466, 113.352425, 119.385040)


def test_unknown_type_is_generic():
    m = parse_message(_xml(MsgType="miniprogrampage", Title="t", AppId="wxapp", Weird="w", MsgId="77"))
    assert m.msg_type == "miniprogrampage"
    assert m.raw["AppId"] == "wxapp" and m.raw["Weird"] == "w"
    assert m.title == "t"


def test_nested_event_fields_do_not_crash():
    xml = (
        "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>2</CreateTime>"
        "<MsgType>event</MsgType><Event>scancode_push</Event><EventKey>k</EventKey>"
        "<ScanCodeInfo><ScanType>qrcode</ScanType><ScanResult>1</ScanResult></ScanCodeInfo></xml>"
    )
    m = parse_message(xml)
    assert m.event == "scancode_push" and "ScanCodeInfo" in m.raw


def test_parse_bytes_and_xml_declaration():
    xml = '<?xml version="1.0" encoding="utf-8"?>' + _xml(MsgType="text", Content="你好", MsgId="1")
    assert parse_message(xml.encode("utf-8")).content == "你好"


@pytest.mark.parametrize(
    "xml",
    [
        "",
        "not xml",
        "<xml>",
        "<root><ToUserName>a</ToUserName></root>",
        _xml(MsgType="text").replace("<CreateTime><![CDATA[1700000000]]></CreateTime>", ""),  # no CreateTime
        _xml(MsgType="text", CreateTime="soon"),
        _xml(MsgType="text", CreateTime="1_000"),
        _xml(MsgType="text", CreateTime="9" * 50),
        _xml(MsgType="text", FromUserName=""),
        _xml(Content="no type"),
        _xml(MsgType="location", Location_X="north"),
        _xml(MsgType="location", Location_X="nan"),
        _xml(MsgType="event", Event="LOCATION", Latitude="1e400"),
        _xml(MsgType="location", Scale="1.5"),
        "\ud800",
        b"\xff\xfe<\x00x\x00",
        b'<?xml version="1.0" encoding="no-such-codec"?><xml/>',
        None,
        12,
    ],
)
def test_malformed_messages(xml):
    with pytest.raises(MalformedMessage):
        parse_message(xml)  # type: ignore[arg-type]


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&lol9;</Content></xml>"""

XXE = """<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&xxe;</Content></xml>"""

BARE_DTD = """<!DOCTYPE xml SYSTEM "http://127.0.0.1:9/x.dtd">
<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>x</Content></xml>"""


@pytest.mark.parametrize("xml", [BILLION_LAUGHS, XXE, BARE_DTD], ids=["billion-laughs", "xxe", "dtd"])
def test_dtd_and_entities_refused(xml):
    with pytest.raises(MalformedMessage, match="unsafe XML"):
        parse_message(xml)
    with pytest.raises(MalformedMessage, match="unsafe XML"):
        parse_encrypted_envelope(xml)


def test_oversized_body_refused():
    with pytest.raises(MalformedMessage):
        parse_message(_xml(MsgType="text", Content="x" * (1 << 20)))


def test_parse_encrypted_envelope():
    assert parse_encrypted_envelope(OA["post_body_compat_mode"]) == ("gh_10f6c3c3ac5a", OA["encrypt"])
    to_user, encrypt = parse_encrypted_envelope(WORK["decrypt"]["post_body"])
    assert to_user == "wx49f0ab532d5d035a" and encrypt.startswith("RgqEoJj5")
    assert parse_encrypted_envelope("<xml><Encrypt>QUJD</Encrypt></xml>") == (None, "QUJD")


def test_dedup_key():
    a = parse_message(_xml(MsgType="text", Content="1", MsgId="6054768590064713728"))
    b = parse_message(_xml(MsgType="text", Content="1", MsgId="6054768590064713728", CreateTime="1700000009"))
    assert dedup_key(a) == dedup_key(b) == "msgid:6054768590064713728"
    e1 = parse_message(_xml(MsgType="event", Event="CLICK", EventKey="K1"))
    e1_retry = parse_message(_xml(MsgType="event", Event="click", EventKey="K1"))
    e2 = parse_message(_xml(MsgType="event", Event="CLICK", EventKey="K2"))
    e3 = parse_message(_xml(MsgType="event", Event="subscribe"))
    e4 = parse_message(_xml(MsgType="event", Event="CLICK", EventKey="K1", FromUserName="oUser2"))
    e5 = parse_message(_xml(MsgType="event", Event="CLICK", EventKey="K1", CreateTime="1700000001"))
    assert dedup_key(e1) == dedup_key(e1_retry) == "ft:oUser1:1700000000:click:K1"
    assert len({dedup_key(e) for e in (e1, e2, e3, e4, e5)}) == 5


# --------------------------------------------------------------------------
# replies


def test_text_reply_parses_back():
    xml = render_text_reply("oUser1", "gh_bureau", "已记录，编号 HB202611290007。", 1700000000)
    m = parse_message(xml)
    assert (m.to_user, m.from_user, m.msg_type, m.content, m.create_time) == (
        "oUser1",
        "gh_bureau",
        "text",
        "已记录，编号 HB202611290007。",
        1700000000,
    )


@pytest.mark.parametrize("content", ["]]>", "a]]>b]]>c", "]]]]>>", "<![CDATA[x]]>", "]]", "]>", "&lt;&amp;<>"])
def test_cdata_terminator_in_content(content):
    xml = render_text_reply("u", "gh", content, 1)
    assert parse_message(xml).content == content
    assert ET.fromstring(xml).findtext("Content") == content


def test_control_chars_stripped_from_reply():
    xml = render_text_reply("u", "gh", "a\x00b\x07c\x1bd\x7fe\x85f\tg\nh\r\ni\rj\ud800k\uffff", 1)
    assert parse_message(xml).content == "abcdef\tg\nh\ni\njk"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", ""),
        ("普通文本", "普通文本"),
        ("a\tb\nc", "a\tb\nc"),
        ("a\r\nb", "a\nb"),
        ("a\rb", "a\nb"),
        ("".join(map(chr, range(0x20))), "\t\n\n"),  # the CR (0x0d) becomes a newline
        ("x\x7fy\x80z\x9f\xa0", "xyz\xa0"),  # DEL and C1 go, NBSP stays
        ("\u200b\u3000", "\u200b\u3000"),  # not control characters
    ],
)
def test_strip_control_chars(text, expected):
    assert strip_control_chars(text) == expected


def test_render_rejects_bad_time_and_types():
    for bad in ("soon", -1, True, 1.5, None):
        with pytest.raises(InvalidReply):
            render_text_reply("u", "gh", "x", bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidReply):
        render_text_reply("u", "gh", None, 1)  # type: ignore[arg-type]
    assert "<CreateTime>17</CreateTime>" in render_text_reply("u", "gh", "x", "17")


def test_news_reply():
    xml = render_news_reply(
        "oUser1",
        "gh_bureau",
        [Article("办事指南", "环评]]>审批", "https://x/p.png", "https://x/a?b=1&c=2"), {"title": "第二条", "url": "u2"}],
        1700000000,
    )
    root = ET.fromstring(xml)
    assert root.findtext("MsgType") == "news" and root.findtext("ArticleCount") == "2"
    items = root.find("Articles").findall("item")
    assert [i.findtext("Title") for i in items] == ["办事指南", "第二条"]
    assert items[0].findtext("Description") == "环评]]>审批"
    assert items[0].findtext("Url") == "https://x/a?b=1&c=2"
    assert items[1].findtext("PicUrl") == ""
    for bad in ([], [Article(str(i)) for i in range(9)], ["not an article"]):
        with pytest.raises(InvalidReply):
            render_news_reply("u", "gh", bad, 1)  # type: ignore[arg-type]


def test_utf8_len():
    assert utf8_len("") == 0
    assert utf8_len("abc") == 3
    assert utf8_len("环保") == 6
    assert utf8_len("😀") == 4
    assert utf8_len("\ud800") == 3


def test_split_empty_and_short():
    assert split_for_wechat("") == []
    assert split_for_wechat("\n\n  \n") == []
    assert split_for_wechat("你好") == ["你好"]


def test_split_exact_limit():
    assert split_for_wechat("a" * 2048) == ["a" * 2048]
    assert split_for_wechat("a" * 2049) == ["a" * 2048, "a"]
    # a 3-byte character that would straddle the limit moves to the next piece
    text = "a" * 2047 + "环"
    assert split_for_wechat(text) == ["a" * 2047, "环"]


def test_split_on_line_boundaries():
    lines = [f"第{i}行：" + "内容" * 30 for i in range(60)]  # each ~190 bytes
    text = "\n".join(lines)
    chunks = split_for_wechat(text)
    assert len(chunks) > 1
    for c in chunks:
        assert utf8_len(c) <= 2048
        assert set(c.split("\n")) <= set(lines)  # whole lines only
    assert "\n".join(chunks) == text
    # greedy: no chunk could have taken the next chunk's first line
    for a, b in zip(chunks, chunks[1:]):
        assert utf8_len(a + "\n" + b.split("\n")[0]) > 2048


def test_split_long_line_never_mid_character():
    text = "短行\n" + "环保😀" * 1000 + "\n尾行"
    chunks = split_for_wechat(text, limit_bytes=100)
    for c in chunks:
        assert utf8_len(c) <= 100
        c.encode("utf-8")  # no broken surrogates or halves
    assert chunks[0] == "短行"
    assert chunks[-1].endswith("尾行")
    assert "".join(chunks).replace("\n", "") == text.replace("\n", "")


def test_split_prefers_punctuation_in_long_line():
    sentence = "请携带营业执照复印件。"  # 33 bytes
    # 110 bytes would fit 36 characters; the cut goes back to the full stop
    chunks = split_for_wechat(sentence * 10, limit_bytes=110)
    assert chunks[0] == sentence * 3
    assert all(c.endswith("。") for c in chunks)


def test_split_crlf_and_blank_lines_at_cut():
    text = "a" * 10 + "\r\n\r\n\r\n" + "b" * 10
    assert split_for_wechat(text, limit_bytes=10) == ["a" * 10, "b" * 10]
    assert split_for_wechat(text, limit_bytes=100) == ["a" * 10 + "\n\n\n" + "b" * 10]


@pytest.mark.parametrize("limit", [0, 3, -5, True, 2.5, "2048"])
def test_split_bad_limit(limit):
    with pytest.raises(InvalidReply):
        split_for_wechat("abc", limit_bytes=limit)  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# property tests: only WeChatProtocolError subclasses ever escape

PROPS = settings(max_examples=1000, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

FIELD_NAMES = [
    "ToUserName", "FromUserName", "CreateTime", "MsgType", "MsgId", "Content", "PicUrl", "MediaId",
    "Format", "Recognition", "Location_X", "Location_Y", "Scale", "Label", "Title", "Url", "Event",
    "EventKey", "Latitude", "Longitude", "Precision", "Encrypt", "xml",
]
field_values = st.one_of(
    st.text(max_size=30),
    st.from_regex(r"-?[0-9]{1,25}(\.[0-9]{0,25})?", fullmatch=True),
    st.sampled_from(["text", "event", "CLICK", "LOCATION", "nan", "inf", "1e5", " 12 ", "", "]]>"]),
)


@st.composite
def xmlish(draw):
    """Documents close to WeChat's, so parsing reaches the field logic."""
    items = draw(st.lists(st.tuples(st.sampled_from(FIELD_NAMES), field_values), max_size=12))
    root = draw(st.sampled_from(["xml", "xml", "xml", "root"]))
    parts = []
    for name, value in items:
        value = "".join(ch for ch in value if ch not in "\ud800\udfff")
        mode = draw(st.sampled_from(["cdata", "escaped", "raw"]))
        if mode == "cdata":
            parts.append(f"<{name}>{cdata(value)}</{name}>")
        elif mode == "escaped":
            esc = value.replace("&", "&amp;").replace("<", "&lt;")
            parts.append(f"<{name}>{esc}</{name}>")
        else:
            parts.append(f"<{name}>{value}</{name}>")
    decl = draw(
        st.one_of(
            st.just(""),
            st.sampled_from(["utf-8", "UTF-16", "gbk", "latin-1", "ascii", "no-such-codec", ""]).map(
                lambda enc: f'<?xml version="1.0" encoding="{enc}"?>'
            ),
        )
    )
    return f"{decl}<{root}>{''.join(parts)}</{root}>"


# Text that may hold lone surrogates (st.text() never does): a str from a
# badly decoded request must not turn into a UnicodeEncodeError.
surrogate_text = st.lists(
    st.one_of(st.characters(), st.integers(0xD800, 0xDFFF).map(chr)), max_size=60
).map("".join)


def _only_protocol_errors(fn, *args):
    try:
        return fn(*args)
    except WeChatProtocolError:
        return None
    # any other exception propagates and fails the test


@PROPS
@given(
    st.one_of(
        st.text(),
        st.binary(),
        surrogate_text,
        xmlish(),
        st.tuples(xmlish(), surrogate_text).map(lambda t: t[0].replace("</xml>", t[1] + "</xml>", 1)),
        xmlish().map(lambda s: s.encode("utf-8", "surrogatepass")),
    )
)
def test_parse_message_only_raises_protocol_errors(data):
    msg = _only_protocol_errors(parse_message, data)
    if msg is not None:
        assert isinstance(msg.create_time, int) and msg.from_user and msg.msg_type == msg.msg_type.lower()
        assert isinstance(dedup_key(msg), str)
    _only_protocol_errors(parse_encrypted_envelope, data)


CRYPTO = WeChatCrypto(OA["token"], OA["encoding_aes_key"], OA["appid"])


@PROPS
@given(
    st.one_of(
        st.text(),
        st.binary(),
        surrogate_text,
        xmlish(),
        st.from_regex(r"[A-Za-z0-9+/ ]{0,200}={0,3}", fullmatch=True),
    )
)
def test_decrypt_message_arbitrary_input_correctly_signed(data):
    """Signature made valid for the input, so decoding and decryption run."""
    as_text = data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else data
    sig = make_msg_signature(CRYPTO.token, "1", "2", as_text.strip())
    _only_protocol_errors(CRYPTO.decrypt_message, data, sig, "1", "2")
    _only_protocol_errors(CRYPTO.decrypt_echostr, data, sig, "1", "2")
    # a random signature is always refused as such
    with pytest.raises(WeChatProtocolError):
        CRYPTO.decrypt_message(data, "0" * 40, "1", "2")


@PROPS
@given(st.binary(min_size=0, max_size=200).map(lambda b: b + b"\x00" * (-len(b) % 16)))
def test_decrypt_arbitrary_plaintext_blocks(plain):
    """Any block-aligned plaintext, validly encrypted and signed: decryption
    either succeeds or fails with a protocol error other than the signature."""
    encrypt = _aes_encrypt_raw(OA["encoding_aes_key"], plain)
    try:
        CRYPTO.decrypt_message(*_signed(CRYPTO, encrypt))
    except InvalidSignature:  # pragma: no cover - would be a bug
        raise AssertionError("valid signature refused")
    except WeChatProtocolError:
        pass


@PROPS
@given(
    body=st.binary(max_size=80),
    appid=st.one_of(st.just(OA["appid"].encode()), st.binary(max_size=24)),
    length_delta=st.integers(-30, 30),
    pad=st.one_of(st.none(), st.integers(0, 255)),
)
def test_decrypt_structured_forgeries(body, appid, length_delta, pad):
    """Near-valid plaintexts (wrong lengths, appids, paddings, UTF-8)."""
    plain = b"R" * 16 + struct.pack(">I", max(0, len(body) + length_delta)) + body + appid
    if pad is None:
        plain = pkcs7_pad(plain)
    else:
        plain += bytes([pad]) * (-len(plain) % 16 or 16)
    encrypt = _aes_encrypt_raw(OA["encoding_aes_key"], plain)
    try:
        out = CRYPTO.decrypt_message(*_signed(CRYPTO, encrypt))
    except InvalidSignature:  # pragma: no cover - would be a bug
        raise AssertionError("valid signature refused")
    except WeChatProtocolError:
        return
    # success only when the layout really was valid
    out_b = out.encode("utf-8")
    assert struct.unpack(">I", plain[16:20])[0] == len(out_b)
    assert plain[20 : 20 + len(out_b)] == out_b
    assert plain[20 + len(out_b) :].startswith(OA["appid"].encode())


@PROPS
@given(st.text())
def test_round_trip_property(text):
    if any("\ud800" <= ch <= "\udfff" for ch in text):
        with pytest.raises(InvalidReply):
            CRYPTO.encrypt_message(text, "n", "1")
        return
    envelope = CRYPTO.encrypt_message(text, "n", "1")
    sig = ET.fromstring(envelope).findtext("MsgSignature")
    assert CRYPTO.decrypt_message(envelope, sig, "1", "n") == text


@PROPS
@given(st.text())
def test_text_reply_always_well_formed(content):
    xml = render_text_reply("oUser", "gh_bureau", content, 1700000000)
    m = parse_message(xml)  # would raise MalformedMessage if not well-formed
    expected = re.sub("[\ud800-\udfff\ufffe\uffff]", "", strip_control_chars(content))
    assert m.content == expected


@PROPS
@given(
    st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60), max_size=30).map("\n".join),
    st.integers(4, 120),
)
def test_split_for_wechat_property(text, limit):
    chunks = split_for_wechat(text, limit_bytes=limit)
    for c in chunks:
        assert 0 < utf8_len(c) <= limit
        assert c.strip() and not c.startswith("\n") and not c.endswith("\n")
    norm = text.replace("\r\n", "\n").replace("\r", "\n")
    # nothing lost or reordered apart from the newlines/blank lines at cuts
    joined = "".join(chunks)
    assert re.sub(r"\s", "", joined) == re.sub(r"\s", "", norm)
    # when every line fits, every chunk is made of whole lines
    lines = norm.split("\n")
    if all(utf8_len(line) <= limit for line in lines):
        for c in chunks:
            for line in c.split("\n"):
                assert line in lines
