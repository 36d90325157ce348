"""Pure parsing of what residents type inside the complaint form."""
from __future__ import annotations

import re
import unicodedata

ANONYMOUS = "匿名"
ANONYMOUS_WORDS = ("匿名", "不留", "不想留", "不方便", "不用", "算了不留", "保密", "不要电话", "不给")
CONFIRM_WORDS = ("确认", "确定", "提交", "对的", "对", "是的", "是", "没问题", "没错", "好的", "好", "可以", "ok", "嗯", "行")
CHANGE_TARGETS = {
    "complaint_location": ("地点", "地址", "位置", "地方"),
    "complaint_time": ("时间", "什么时候", "时候"),
    "complaint_description": ("描述", "情况", "内容", "说明"),
    "complaint_contact": ("电话", "手机", "号码", "联系方式"),
}
_MOBILE = re.compile(r"^1[3-9]\d{9}$")

POLLUTION_NAMES = {
    "air": "大气（烟尘、异味）", "water": "水污染", "noise": "噪声",
    "solid_waste": "固体废物（垃圾、渣土）", "livestock": "畜禽养殖污染", "other": "其他",
}


def normalise(text: str) -> str:
    """Full-width to half-width, no spaces or trailing punctuation."""
    text = unicodedata.normalize("NFKC", text or "")
    return re.sub(r"[\s。．.!！?？~～，,、]+", "", text).lower()


def parse_contact(text: str) -> tuple[str, str | None]:
    """("anonymous", None) | ("phone", "13812345678") | ("invalid", None)."""
    t = normalise(text)
    if any(w in t for w in ANONYMOUS_WORDS):
        return "anonymous", None
    digits = re.sub(r"[-—－()（）]", "", t)
    digits = re.sub(r"^(\+?86|0086)", "", digits)
    found = re.findall(r"1[3-9]\d{9}", digits)
    if _MOBILE.match(digits) or len(found) == 1:
        return "phone", digits if _MOBILE.match(digits) else found[0]
    return "invalid", None


def parse_confirmation(text: str) -> tuple[str, str | None]:
    """("confirm", None) | ("change", slot) | ("other", None)."""
    t = normalise(text)
    if t.startswith(("改", "修改", "更正", "重填", "换")) or "改" in t[:3]:
        for slot, words in CHANGE_TARGETS.items():
            if any(w in t for w in words):
                return "change", slot
    if t in CONFIRM_WORDS or (len(t) <= 6 and any(t.startswith(w) for w in ("确认", "确定", "提交", "没问题"))):
        return "confirm", None
    return "other", None


def mask_phone(phone: str | None) -> str:
    if not phone:
        return "匿名"
    return phone[:3] + "****" + phone[-4:] if len(phone) == 11 else "****"


def is_descriptive(text: str) -> bool:
    """Does the first message already describe the problem (not just "我要举报")?"""
    t = normalise(text)
    bare = re.sub(r"(我|俺)?(要|想)?(举报|投诉|反映|反应|报告)(一下|个|一个)?(事情|情况|问题|污染)?(了|啊|呀)?", "", t)
    return len(bare) >= 6


def summary(slots: dict, evidence_count: int) -> str:
    lines = [
        "请核对您的举报：",
        f"类别：{POLLUTION_NAMES.get(slots.get('pollution_type') or 'other', '其他')}",
        f"地点：{slots.get('complaint_location') or '（未填）'}",
        f"时间：{slots.get('complaint_time') or '（未填）'}",
        f"情况：{slots.get('complaint_description') or '（未填）'}",
        f"联系：{mask_phone(None if slots.get('complaint_contact') == ANONYMOUS else slots.get('complaint_contact'))}",
    ]
    if evidence_count:
        lines.append(f"照片：{evidence_count} 张")
    return "\n".join(lines)
