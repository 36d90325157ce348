"""Which complaints are emergencies (jump the hotline queue, go to the
escalation list). Pure keyword rules, no I/O.

A false alarm costs a staff member a minute; a missed poisoning costs far more,
so the rules lean towards "urgent". Only an explicit negation directly before
the keyword ("没有死鱼", "未发现泄漏") switches a match off.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_NEGATION_BEFORE = re.compile(r"(没有|没|未|无|不是|并非)(发现|看到|看见|出现|闻到|听说)?$")


@dataclass(frozen=True)
class _Rule:
    reason: str
    patterns: tuple[str, ...]
    # Extra patterns that count only for these pollution types.
    typed_patterns: tuple[tuple[str, str], ...] = ()


_RULES = (
    _Rule("饮用水源可能受到污染", ("饮用水", "自来水", "水源地", "井水"),
          (("water", "取水口"), ("water", "水厂"))),
    _Rule("水体出现死鱼", ("死鱼", "鱼死", r"鱼[^，。,.;；!！?？\s]{0,4}死", r"死了?[^，。,.;；!！?？\s]{0,3}鱼")),
    _Rule("疑似化学品或有毒气体泄漏", ("泄漏", "泄露", "毒气", "氯气", "氨气")),
    _Rule("疑似危险废物倾倒", ("危废", "危险废物", "废油桶", "医疗废物", "化学桶")),
    _Rule("企业发生火灾或爆炸", ("爆炸", "着火", "起火", "火灾")),
)
# A pungent smell together with people feeling ill is treated as a gas leak.
_SMELL = re.compile("刺鼻|呛人|呛鼻")
_ILL = re.compile("头晕|头昏|晕倒|昏倒|呕吐|恶心|喘不上气|呼吸困难")


def _affirmed(pattern: str, text: str) -> bool:
    """True when `pattern` occurs in `text` at least once without a negation just before it."""
    return any(not _NEGATION_BEFORE.search(text[: m.start()]) for m in re.finditer(pattern, text))


def is_emergency(text: str | None, pollution_type: str | None = None) -> tuple[bool, str]:
    """(True, reason in Chinese for staff) when the report needs immediate action."""
    text = (text or "").strip()
    if not text:
        return False, ""
    reasons: list[str] = []
    for rule in _RULES:
        patterns = list(rule.patterns) + [p for t, p in rule.typed_patterns if t == pollution_type]
        if any(_affirmed(p, text) for p in patterns):
            reasons.append(rule.reason)
    gas = "疑似化学品或有毒气体泄漏"
    if gas not in reasons and _affirmed(_SMELL.pattern, text) and _affirmed(_ILL.pattern, text):
        reasons.append(gas + "（刺鼻气味并有人身体不适）")
    return (True, "；".join(reasons)) if reasons else (False, "")
