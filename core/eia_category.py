"""Which EIA document a project needs, from the user's own words.

`classify(text)` finds the industry (keywords of `knowledge/eia_categories.yml`),
the quantities with units ("存栏3000头", "20兆瓦", "占地5亩"), and flags such as
涉及环境敏感区 or 技改, then applies the row's rules:

- every condition whose flag is in the text and every threshold whose range
  holds the quantity gives a document; the highest one wins (名录: 按单项等级
  最高的确定);
- a number without a qualifier ("3000头") is tried against every measure of
  the row with that unit (年出栏 and 存栏); if they disagree, we ask which;
- no rule applies: the row's `default` document, or (null) a question;
- 技改/改造 with a document above "none": undecided, because 名录 decides a
  modification that does not touch the main works by its own content.

The result (`Match`) is data; `core.consult_text.category_answer` words it.
Pure logic: the knowledge is passed in (or loaded once from the default
directory).
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Dict, FrozenSet, List, Optional, Tuple

from core.knowledge import (
    DOCUMENT_LEVEL,
    Contact,
    EiaCategory,
    EiaTable,
    Knowledge,
    Threshold,
    load_knowledge,
)

# unit as written -> (base unit, factor). Longest spellings are tried first.
_UNIT_TABLE: Dict[str, Tuple[str, float]] = {
    "头": ("头", 1), "只": ("头", 1), "羽": ("头", 1),
    "平方米": ("平方米", 1), "平米": ("平方米", 1), "㎡": ("平方米", 1), "m2": ("平方米", 1),
    "m²": ("平方米", 1), "亩": ("平方米", 666.67), "公顷": ("平方米", 10000),
    "兆瓦": ("兆瓦", 1), "mw": ("兆瓦", 1), "千瓦": ("兆瓦", 0.001), "kw": ("兆瓦", 0.001),
    "吉瓦": ("兆瓦", 1000), "gw": ("兆瓦", 1000),
    "千伏": ("千伏", 1), "kv": ("千伏", 1),
    "张床位": ("张", 1), "张": ("张", 1), "个床位": ("张", 1), "床": ("张", 1),
    "吨": ("吨", 1), "t": ("吨", 1),
    "公里": ("千米", 1), "千米": ("千米", 1), "km": ("千米", 1), "米": ("千米", 0.001),
    "立方米": ("立方米", 1), "立方": ("立方米", 1), "方": ("立方米", 1), "m3": ("立方米", 1),
    "m³": ("立方米", 1),
    "千升": ("千升", 1), "升": ("千升", 0.001),
}
_MULTIPLIERS = {"万": 10000, "千": 1000, "百": 100, "亿": 100000000}
_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4,
              "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10000, "亿": 100000000}

_UNIT_RE = "|".join(re.escape(u) for u in sorted(_UNIT_TABLE, key=len, reverse=True))
_QUANTITY_RE = re.compile(
    r"(?P<num>\d+(?:\.\d+)?|[零〇一二两三四五六七八九十百千万亿]+)"
    r"\s*(?P<mult>[万千百亿])?\s*(?:多|余|来)?\s*(?P<unit>" + _UNIT_RE + r")",
    re.IGNORECASE,
)
_CLAUSE_BREAK = re.compile(r"[，。,;；！!？?\n]")
_NEGATION = re.compile(r"(不|没|无|非|未|远离)[^，。,；;！!？?]{0,3}$")
_LOOKBACK = 8
_LOOKAHEAD = 4


@dataclass(frozen=True)
class Quantity:
    value: float          # in the base unit
    unit: str             # base unit (see core.knowledge.UNITS)
    measure: Optional[str]  # measure id from the qualifier word, if any
    text: str             # as written


@dataclass(frozen=True)
class Alternative:
    measure: str          # measure id
    label: str            # e.g. 年出栏量
    quantity: str         # as written, e.g. 3000头
    document: Optional[str]
    rule: Optional[str]


@dataclass(frozen=True)
class Match:
    text: str
    category: Optional[EiaCategory]
    decided: bool
    document: Optional[str]           # decided, or the tentative one for 技改
    rules: Tuple[str, ...]            # the rule texts that gave `document`
    question: Optional[str]           # what to ask when not decided
    caveats: Tuple[Tuple[str, str], ...]   # (rule, document) that could still raise it
    alternatives: Tuple[Alternative, ...]
    quantities: Tuple[Quantity, ...]
    flags: FrozenSet[str]
    modification: bool
    bring: Tuple[str, ...]            # what to bring to the technical service unit
    contact: Contact
    catalogue: str
    from_default: bool = False        # decided by the row's default document
    flag_labels: Dict[str, str] = field(default_factory=dict)

    @property
    def needs_confirmation(self) -> bool:
        return self.category is None or self.category.needs_confirmation


# ---------------------------------------------------------------- parsing


def normalise(text: str) -> str:
    """Full-width to half-width, no thousands separators, collapsed spaces."""
    text = unicodedata.normalize("NFKC", text or "")
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)
    return re.sub(r"\s+", " ", text).strip()


def cn_number(s: str) -> Optional[float]:
    """Chinese numerals to a number: 三千 3000, 两万五 25000, 一百二十 120."""
    if not s:
        return None
    if s.isdigit() or re.fullmatch(r"\d+\.\d+", s):
        return float(s)
    total, section, digit = 0, 0, None
    last_unit = 1
    for ch in s:
        if ch in _CN_DIGITS:
            digit = _CN_DIGITS[ch]
        elif ch in _CN_UNITS:
            unit = _CN_UNITS[ch]
            if unit >= 10000:
                section = (section + (digit or 0)) * unit
                total += section
                section, digit = 0, None
            else:
                section += (digit if digit is not None else 1) * unit
                digit = None
            last_unit = unit
        else:
            return None
    if digit is not None:
        # 两万五 / 三千五: a trailing digit is one step below the last unit.
        section += digit * (last_unit // 10 if last_unit >= 10 else 1)
    return float(total + section)


def extract_quantities(text: str, table: EiaTable) -> List[Quantity]:
    text = normalise(text)
    out = []
    for m in _QUANTITY_RE.finditer(text):
        value = cn_number(m.group("num"))
        if value is None:
            continue
        if m.group("mult"):
            value *= _MULTIPLIERS[m.group("mult")]
        base, factor = _UNIT_TABLE[m.group("unit").lower()]
        value *= factor
        measure = _qualifier(text, m.start(), m.end(), base, table)
        out.append(Quantity(value=value, unit=base, measure=measure, text=m.group(0)))
    return out


def _clause_window(text: str, start: int, end: int) -> Tuple[str, str]:
    before = text[max(0, start - _LOOKBACK):start]
    cut = list(_CLAUSE_BREAK.finditer(before))
    if cut:
        before = before[cut[-1].end():]
    after = text[end:end + _LOOKAHEAD]
    brk = _CLAUSE_BREAK.search(after)
    if brk:
        after = after[:brk.start()]
    return before, after


def _qualifier(text: str, start: int, end: int, unit: str, table: EiaTable) -> Optional[str]:
    before, after = _clause_window(text, start, end)
    best: Optional[Tuple[int, int, str]] = None  # (end position, length, measure)
    for measure_id, measure in table.measures.items():
        if measure.unit != unit:
            continue
        for word in measure.words:
            pos = before.rfind(word)
            if pos >= 0:
                key = (pos + len(word), len(word), measure_id)
                if best is None or key[:2] > best[:2]:
                    best = key
    if best:
        return best[2]
    for measure_id, measure in table.measures.items():
        if measure.unit == unit and any(after.startswith(w) or after[1:].startswith(w) for w in measure.words):
            return measure_id
    return None


def detect_flags(text: str, table: EiaTable) -> FrozenSet[str]:
    text = normalise(text)
    found = set()
    for flag_id, flag in table.flags.items():
        for word in flag.words:
            for m in re.finditer(re.escape(word), text):
                before = _CLAUSE_BREAK.split(text[max(0, m.start() - 6):m.start()])[-1]
                if _NEGATION.search(before) and not before.endswith("不远"):
                    continue
                found.add(flag_id)
                break
            if flag_id in found:
                break
    return frozenset(found)


def find_category(text: str, table: EiaTable) -> Optional[EiaCategory]:
    text = normalise(text)
    best, best_key = None, None
    for cat in table.categories:
        for kw in cat.keywords:
            pos = text.find(kw)
            if pos < 0:
                continue
            key = (cat.priority, len(kw), -pos)
            if best_key is None or key > best_key:
                best, best_key = cat, key
    return best


# ---------------------------------------------------------------- deciding


def _level(doc: Optional[str]) -> int:
    return -1 if doc is None else DOCUMENT_LEVEL[doc]


def _best(thresholds: List[Threshold]) -> Threshold:
    return max(thresholds, key=lambda t: _level(t.document))


def classify(text: str, knowledge: Optional[Knowledge] = None) -> Match:
    """Classify free text. `knowledge` defaults to the default directory's."""
    table = (knowledge or load_knowledge()).eia
    flags = detect_flags(text, table)
    quantities = tuple(extract_quantities(text, table))
    cat = find_category(text, table)
    labels = {f: table.flags[f].label for f in flags}
    base = dict(text=text, quantities=quantities, flags=flags, contact=table.contact,
                catalogue=table.catalogue, flag_labels=labels,
                modification="modification" in flags)
    if cat is None:
        return Match(category=None, decided=False, document=None, rules=(),
                     question=table.unknown.question, caveats=(), alternatives=(),
                     bring=tuple(table.unknown.bring), **base)

    docs: List[Tuple[str, str]] = []
    for cond in cat.conditions:
        if cond.flag in flags:
            docs.append((cond.document, cond.rule))

    alternatives: List[Alternative] = []
    cat_measures = {t.measure for t in cat.thresholds}
    measured: Dict[str, List[float]] = {}
    for q in quantities:
        compatible = [m for m in sorted(cat_measures) if table.measures[m].unit == q.unit]
        candidates = [q.measure] if q.measure in compatible else compatible
        if not candidates:
            continue
        for m in candidates:
            measured.setdefault(m, []).append(q.value)
        outcomes = []
        for m in candidates:
            hits = [t for t in cat.thresholds if t.measure == m and t.applies(flags) and t.contains(q.value)]
            best = _best(hits) if hits else None
            outcomes.append(Alternative(m, table.measures[m].label, q.text,
                                        best.document if best else None, best.rule if best else None))
        if len(outcomes) == 1:
            if outcomes[0].document is not None:
                docs.append((outcomes[0].document, outcomes[0].rule))
        elif len({o.document for o in outcomes}) == 1 and outcomes[0].document is not None:
            docs.append((outcomes[0].document, outcomes[0].rule))
        else:
            alternatives.extend(outcomes)

    from_default = False
    if docs:
        top = max(_level(d) for d, _ in docs)
        document = next(d for d, _ in docs if _level(d) == top)
        rules = tuple(dict.fromkeys(r for d, r in docs if _level(d) == top))
        decided = not any(_level(a.document) > top or a.document is None for a in alternatives)
    elif alternatives:
        document, rules, decided = None, (), False
    elif cat.default is not None:
        document, rules, decided, from_default = cat.default, (), True, True
    else:
        document, rules, decided = None, (), False

    question = None
    if alternatives and not decided:
        question = _which_measure_question(alternatives)
    elif not decided:
        question = cat.question
    if decided and base["modification"] and _level(document) > 0:
        decided = False
        question = ("请问技改具体改什么？涉及生产线、窑炉、产能等主体工程的，按上面的类别办理；"
                    "只改造除尘、脱硫、污水处理等环保设施或辅助设施的，按改造内容确定类别。")

    caveats = _caveats(cat, flags, measured, document)
    bring = tuple(cat.bring) or tuple(table.unknown.bring)
    if base["modification"]:
        bring = bring + ("技改方案（改什么、改后产能）",)
        if not any("环评手续" in b for b in bring):
            bring = bring + ("原有环评手续",)
    return Match(category=cat, decided=decided, document=document, rules=rules,
                 question=question, caveats=caveats, alternatives=tuple(alternatives),
                 bring=bring, from_default=from_default, **base)


def _which_measure_question(alternatives: List[Alternative]) -> str:
    quantity = alternatives[0].quantity
    labels = "还是".join(dict.fromkeys(a.label for a in alternatives))
    return f"请问{quantity}是{labels}？"


def _caveats(cat: EiaCategory, flags: FrozenSet[str], measured: Dict[str, List[float]],
             document: Optional[str]) -> Tuple[Tuple[str, str], ...]:
    """Rules that would give a higher document and that the text left open:
    a flag it did not mention, a measure it did not give, or a flag that would
    make a threshold apply to the quantity it gave."""
    out: List[Tuple[str, str]] = []
    level = _level(document)
    for cond in cat.conditions:
        if cond.flag not in flags and _level(cond.document) > level:
            out.append((cond.rule, cond.document))
    for t in cat.thresholds:
        if _level(t.document) <= level:
            continue
        values = measured.get(t.measure)
        if values is None:
            out.append((t.rule, t.document))
        elif t.with_flag and t.with_flag not in flags and any(t.contains(v) for v in values):
            out.append((t.rule, t.document))
    return tuple(dict.fromkeys(out))[:3]
