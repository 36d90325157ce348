"""Place-text normalisation, so that two citizens describing the same spot in
slightly different words produce the same key for duplicate detection.

    "幸福小区３号楼 附近"  -> "幸福小区3号"
    "幸福小区三号楼那边。" -> "幸福小区3号"
    "在幸福小区3栋旁边"    -> "幸福小区3号"

Pure functions, no I/O.
"""
from __future__ import annotations

import re
import unicodedata

# Words that only say "around there"; stripped from the end (repeatedly).
_NOISE_SUFFIXES = (
    "那一块", "这一块", "那一带", "这一带", "那个地方", "这个地方", "的位置", "位置",
    "那边", "这边", "那里", "这里", "那儿", "这儿", "附近", "旁边", "边上", "周边",
    "周围", "一带", "门口", "里面", "外面", "后面", "前面",
)
# Words that only introduce the place; stripped from the start (repeatedly).
_NOISE_PREFIXES = (
    "地址是", "地点是", "地址在", "地点在", "位置在", "位于", "就在", "靠近", "地址", "地点",
    "那个", "这个", "我们", "咱们", "在",
)
# After normalisation these say nothing about where: never used as a duplicate key.
_GENERIC = frozenset({
    "我家", "家", "家里", "家门口", "小区", "村", "村里", "村子", "楼下", "楼上", "隔壁",
    "对面", "路边", "河边", "马路", "马路上", "路上", "街上", "镇上", "县城", "本地",
    "单位", "工厂", "厂里", "厂", "学校", "这", "那", "此处", "此地", "不知道", "不清楚",
}) | frozenset(_NOISE_SUFFIXES) | frozenset(_NOISE_PREFIXES)

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4,
              "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN_NUM = "零〇一二两三四五六七八九十百千"
# Chinese numerals directly before a building/unit word are turned into digits.
_CN_BEFORE_UNIT = re.compile(f"([{_CN_NUM}]+)(?=号|栋|幢|座|单元|组|室|层|楼)")
# "3号楼", "3栋", "3幢", "3座", "第3栋" all name building 3: one spelling, "3号".
_BUILDING = re.compile(r"第?(\d+)(?:号楼|号院|号|栋|幢|座)")


def chinese_numeral_to_int(text: str) -> int:
    """"十二" -> 12, "二十三" -> 23, "一百零五" -> 105, "三" -> 3.

    A run without unit characters ("一二三") is read digit by digit (123).
    """
    if not any(ch in _CN_UNITS for ch in text):
        return int("".join(str(_CN_DIGITS[ch]) for ch in text))
    total, num = 0, 0
    for ch in text:
        if ch in _CN_DIGITS:
            num = _CN_DIGITS[ch]
        else:
            total += (num or 1) * _CN_UNITS[ch]
            num = 0
    return total + num


def _strip_noise(text: str) -> str:
    changed = True
    while changed and text:
        changed = False
        for p in _NOISE_PREFIXES:
            if text.startswith(p) and len(text) > len(p):
                text, changed = text[len(p):], True
        for s in _NOISE_SUFFIXES:
            if text.endswith(s) and len(text) > len(s):
                text, changed = text[: -len(s)], True
        if text.endswith("的") and len(text) > 1:
            text, changed = text[:-1], True
    return text


def normalise_place(text: str | None) -> str:
    """The comparable form of a place description ("" when there is none)."""
    if not text:
        return ""
    # Full-width -> half-width (digits, Latin letters, punctuation), ① -> 1.
    text = unicodedata.normalize("NFKC", text).lower()
    # Keep letters and digits only: drops spaces, punctuation and symbols.
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] in "LN")
    text = _CN_BEFORE_UNIT.sub(lambda m: str(chinese_numeral_to_int(m.group(1))), text)
    text = _BUILDING.sub(lambda m: f"{int(m.group(1))}号", text)
    return _strip_noise(text)


def is_specific_place(normalised: str) -> bool:
    """True when a normalised place text is precise enough to link reports by.

    "我家附近" or "村里" would link unrelated complaints, so they never count.
    """
    return len(normalised) >= 2 and normalised not in _GENERIC


def place_keys(*texts: str | None) -> list[str]:
    """Distinct, specific normalised forms of the given texts (in order)."""
    out: list[str] = []
    for t in texts:
        n = normalise_place(t)
        if is_specific_place(n) and n not in out:
            out.append(n)
    return out
