"""Render passive-reply XML and cut long answers to WeChat's size (pure).

Every value is put in CDATA safely: a "]]>" inside the text is split across
two CDATA sections, and characters XML 1.0 forbids (C0/C1 controls other than
newline and tab, lone surrogates, U+FFFE/U+FFFF) are removed, so the output is
always well-formed XML.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, List, Mapping, Sequence, Union

from .errors import InvalidReply

# C0 controls except \t (0x09) and \n (0x0A), DEL, and C1 controls.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Code points XML 1.0 forbids even after the controls are gone.
_XML_FORBIDDEN = re.compile("[\ud800-\udfff\ufffe\uffff]")
_DIGITS = re.compile(r"[0-9]{1,20}", re.ASCII)

# Passive replies may carry one article for most inbound messages, up to 8 otherwise.
MAX_NEWS_ARTICLES = 8
DEFAULT_LIMIT_BYTES = 2048
# Where a too-long line may be cut (after one of these), looked for in the
# second half of the piece only, so pieces stay reasonably full.
_SOFT_BREAKS = "。！？；，、!?;, "


def strip_control_chars(text: str) -> str:
    """Remove C0/C1 control characters except newline and tab.

    CR LF and lone CR become LF first, so Windows line ends keep their break.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", text)


def xml_safe_text(text: str) -> str:
    """`strip_control_chars` plus removal of every other XML-forbidden code point."""
    return _XML_FORBIDDEN.sub("", strip_control_chars(text))


def cdata(text: str) -> str:
    """``<![CDATA[...]]>`` that stays well-formed whatever ``text`` holds."""
    if not isinstance(text, str):
        raise InvalidReply(f"expected text, got {type(text).__name__}")
    safe = xml_safe_text(text).replace("]]>", "]]]]><![CDATA[>")
    return f"<![CDATA[{safe}]]>"


def _time(value: Union[int, str]) -> str:
    if isinstance(value, bool):
        raise InvalidReply("time must be an integer")
    if isinstance(value, int):
        if value < 0:
            raise InvalidReply("time must not be negative")
        return str(value)
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return value
    raise InvalidReply("time must be decimal Unix seconds")


def render_text_reply(to_user: str, from_user: str, content: str, create_time: Union[int, str]) -> str:
    """Passive text reply. ``to_user`` is the user's OpenID (the inbound
    FromUserName), ``from_user`` the account (the inbound ToUserName)."""
    return (
        "<xml>\n"
        f"<ToUserName>{cdata(to_user)}</ToUserName>\n"
        f"<FromUserName>{cdata(from_user)}</FromUserName>\n"
        f"<CreateTime>{_time(create_time)}</CreateTime>\n"
        "<MsgType><![CDATA[text]]></MsgType>\n"
        f"<Content>{cdata(content)}</Content>\n"
        "</xml>"
    )


@dataclass(frozen=True)
class Article:
    title: str
    description: str = ""
    pic_url: str = ""
    url: str = ""


def _article(item: Union[Article, Mapping[str, str]]) -> Article:
    if isinstance(item, Article):
        return item
    if isinstance(item, Mapping):
        return Article(
            title=item.get("title", ""),
            description=item.get("description", ""),
            pic_url=item.get("pic_url", item.get("picurl", "")),
            url=item.get("url", ""),
        )
    raise InvalidReply(f"not an article: {type(item).__name__}")


def render_news_reply(
    to_user: str,
    from_user: str,
    articles: Sequence[Union[Article, Mapping[str, str]]],
    create_time: Union[int, str],
) -> str:
    """Passive news (图文) reply with 1..8 articles."""
    items = [_article(a) for a in articles]
    if not 1 <= len(items) <= MAX_NEWS_ARTICLES:
        raise InvalidReply(f"news reply needs 1..{MAX_NEWS_ARTICLES} articles, got {len(items)}")
    body = "".join(
        "<item>\n"
        f"<Title>{cdata(a.title)}</Title>\n"
        f"<Description>{cdata(a.description)}</Description>\n"
        f"<PicUrl>{cdata(a.pic_url)}</PicUrl>\n"
        f"<Url>{cdata(a.url)}</Url>\n"
        "</item>\n"
        for a in items
    )
    return (
        "<xml>\n"
        f"<ToUserName>{cdata(to_user)}</ToUserName>\n"
        f"<FromUserName>{cdata(from_user)}</FromUserName>\n"
        f"<CreateTime>{_time(create_time)}</CreateTime>\n"
        "<MsgType><![CDATA[news]]></MsgType>\n"
        f"<ArticleCount>{len(items)}</ArticleCount>\n"
        f"<Articles>\n{body}</Articles>\n"
        "</xml>"
    )


def render_encrypted_envelope(encrypt: str, msg_signature: str, timestamp: Union[int, str], nonce: str) -> str:
    """The safe-mode reply body, byte-for-byte the layout wechatpy produces."""
    return (
        "<xml>\n"
        f"<Encrypt>{cdata(encrypt)}</Encrypt>\n"
        f"<MsgSignature>{cdata(msg_signature)}</MsgSignature>\n"
        f"<TimeStamp>{_time(timestamp)}</TimeStamp>\n"
        f"<Nonce>{cdata(nonce)}</Nonce>\n"
        "</xml>"
    )


def utf8_len(text: str) -> int:
    """Length in UTF-8 bytes (a lone surrogate counts 3, as it would encode)."""
    return len(text.encode("utf-8", "surrogatepass"))


def _cut_long_line(line: str, limit: int) -> Iterable[str]:
    """Pieces of ``line`` of at most ``limit`` UTF-8 bytes, cut between
    characters; a cut after punctuation or a space is preferred when one lies
    in the second half of the piece."""
    start = 0
    n = len(line)
    while start < n:
        used = 0
        end = start
        while end < n:
            size = utf8_len(line[end])
            if used + size > limit:
                break
            used += size
            end += 1
        if end < n:
            soft = max(line.rfind(ch, start, end) for ch in _SOFT_BREAKS)
            if soft >= 0 and soft + 1 - start >= (end - start) // 2:
                end = soft + 1
        yield line[start:end]
        start = end


def split_for_wechat(text: str, limit_bytes: int = DEFAULT_LIMIT_BYTES) -> List[str]:
    """Cut ``text`` into messages of at most ``limit_bytes`` UTF-8 bytes each.

    Cuts fall on line boundaries (the newline at a cut is dropped); only a
    single line longer than the limit is cut inside, between characters, so
    a UTF-8 character is never split. Blank lines at a cut are dropped and
    empty or whitespace-only pieces are not returned; "" gives [].
    """
    if isinstance(limit_bytes, bool) or not isinstance(limit_bytes, int) or limit_bytes < 4:
        raise InvalidReply("limit_bytes must be an int >= 4 (one UTF-8 character)")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    chunks: List[str] = []
    current = ""

    def flush() -> None:
        nonlocal current
        piece = current.strip("\n")
        if piece.strip():
            chunks.append(piece)
        current = ""

    for line in text.split("\n"):
        if utf8_len(line) > limit_bytes:
            flush()
            pieces = list(_cut_long_line(line, limit_bytes))
            for piece in pieces[:-1]:
                current = piece
                flush()
            current = pieces[-1]
            continue
        candidate = line if not current else current + "\n" + line
        if current and utf8_len(candidate) > limit_bytes:
            flush()
            candidate = line
        current = candidate
    flush()
    return chunks
