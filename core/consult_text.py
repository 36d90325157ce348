"""User-facing Chinese answers for enterprise consultation (pure functions).

Every `*_answer` function returns a list of message parts. Each part is at
most `MAX_BYTES` (2048) UTF-8 bytes, WeChat's limit for a text reply; an answer
that fits is ONE part. Longer answers are split between blocks (a material, a
step, a paragraph), never inside one, and each part then starts with "（k/n）".
Send the parts in order.

The bureau's rule "只说如何办，不说不能办": no text here contains a refusal
phrase (core.knowledge.REFUSAL_PHRASES); when the bot cannot decide, it says
what to bring, to whom, and offers a person ("回复“人工”").

Contacts come from contacts.yml only: pass `contacts` (id -> Contact), or
leave it out to use the entries resolved when the knowledge was loaded.
"""
from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import List, Mapping, Optional, Sequence

from core.eia_category import Match
from core.knowledge import WEEKDAY_NAMES, Contact, ContactValue, Material, Service
from core.workdays import add_working_days, calendar_knows, is_working_day, next_review_meeting

MAX_BYTES = 2048
HUMAN_OFFER = "回复“人工”可转工作人员为您解答。"

DOC_SHORT = {
    "report_book": "报告书",
    "report_form": "报告表",
    "registration_form": "登记表（网上备案）",
    "none": "不需要办环评",
}

# The numbered menu of approval_choice_prompt(), in order.
APPROVAL_CHOICES = (
    ("report_book", "环境影响报告书审批"),
    ("report_form", "环境影响报告表审批"),
    ("registration_form", "环境影响登记表备案"),
    ("acceptance", "竣工环境保护验收"),
    ("unsure", "不确定，帮我判断"),
)


# ---------------------------------------------------------------- packing


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def pack(blocks: Sequence[str], limit: int = MAX_BYTES) -> List[str]:
    """Join blocks with newlines into as few parts as fit in `limit` bytes.

    A block is never split; parts after the first are labelled "（k/n）".
    Raises ValueError if one block alone cannot fit.
    """
    blocks = [b for b in blocks if b]
    whole = "\n".join(blocks)
    if utf8_len(whole) <= limit:
        return [whole]
    reserve = utf8_len("（99/99）\n")
    parts: List[List[str]] = []
    size = 0
    for block in blocks:
        n = utf8_len(block)
        if n + reserve > limit:
            raise ValueError(f"a block of {n} bytes cannot fit in a {limit}-byte message")
        if parts and size + 1 + n <= limit - reserve:
            parts[-1].append(block)
            size += 1 + n
        else:
            parts.append([block])
            size = n
    total = len(parts)
    return [f"（{i}/{total}）\n" + "\n".join(p) for i, p in enumerate(parts, 1)]


# ---------------------------------------------------------------- pieces


def fmt_date(day: dt.date) -> str:
    return f"{day.year}年{day.month}月{day.day}日（{WEEKDAY_NAMES[day.weekday()]}）"


def _value(v: ContactValue) -> str:
    if v.placeholder and not any(w in v.value for w in ("待核实", "为准")):
        return v.value + "（待核实）"
    return v.value


def phone_text(contact: Contact) -> str:
    if not contact.phone.placeholder:
        return contact.phone.value
    fallback = contact.fallback_contact
    if fallback is not None and not fallback.phone.placeholder:
        return f"号码待本局公布，可先拨{fallback.phone.value}（{fallback.name}）转接"
    return "号码待本局公布，" + HUMAN_OFFER


def contact_lines(contact: Contact) -> List[str]:
    return [
        f"{contact.name}（{contact.unit}）",
        f"电话：{phone_text(contact)}",
        f"地址：{_value(contact.address)}",
        f"时间：{_value(contact.office_hours)}",
    ]


def _resolve(service: Service, contacts: Optional[Mapping[str, Contact]]) -> tuple:
    if contacts is not None:
        return contacts[service.where], contacts[service.contact]
    return service.where_contact, service.contact_entry


def _place_block(where: Contact, contact: Contact) -> str:
    lines = [
        f"办理地点：{where.name}，{_value(where.address)}",
        f"办公时间：{_value(where.office_hours)}",
        f"电话：{phone_text(where)}",
    ]
    if contact.id != where.id:
        lines.append(f"咨询：{contact.name}，电话：{phone_text(contact)}")
    return "\n".join(lines)


def material_block(index: int, m: Material) -> str:
    """One checklist item: short lines for a phone screen."""
    need = "必交" if m.required_when == "全部" else f"适用：{m.required_when}"
    lines = [f"{index}. {m.name}", f"   {m.original_or_copy}{m.copies}份·{m.form}；{need}"]
    if m.notes:
        lines.append(f"   {m.notes}")
    return "\n".join(lines)


def _limits_line(service: Service) -> str:
    return f"办理时限：{service.legal_limit_text}；{service.promised_limit_text}。"


def hhmm(t: dt.time) -> str:
    return f"{t.hour}:{t.minute:02d}"


def _meeting_days(service: Service) -> str:
    names = [WEEKDAY_NAMES[d] for d in service.review_meetings.weekdays]
    return "每周" + "、".join(n[1] for n in names)


# ---------------------------------------------------------------- answers


def materials_answer(service: Service, contacts: Optional[Mapping[str, Contact]] = None) -> List[str]:
    """The complete checklist, both time limits and the next step."""
    where, contact = _resolve(service, contacts)
    blocks = [f"【{service.name}】所需材料（一次性告知，共{len(service.materials)}项）："]
    blocks += [material_block(i, m) for i, m in enumerate(service.materials, 1)]
    blocks.append(_limits_line(service) + f"\n费用：{service.fees}")
    blocks.append(f"下一步：{service.next_step}。")
    blocks.append(_place_block(where, contact))
    return pack(blocks)


def time_limit_answer(service: Service, submit_date: Optional[dt.date] = None,
                      contacts: Optional[Mapping[str, Contact]] = None) -> List[str]:
    """Both limits; with submit_date, the expected decision date in working days.

    Rule: the application is received on submit_date if that is a working day,
    else on the next working day; day 1 is the first working day after receipt.
    """
    where, contact = _resolve(service, contacts)
    blocks = [
        f"【{service.name}】办理时限",
        f"· {service.legal_limit_text}\n  依据：{service.legal_limit_basis}",
        f"· {service.promised_limit_text}",
    ]
    n = service.promised_limit_days
    if n is not None:
        blocks.append("计算方法：按工作日计算，从受理的次日起算；法定节假日不计，调休上班日照常计算。")
    if submit_date is not None:
        if isinstance(submit_date, dt.datetime):
            submit_date = submit_date.date()
        if n is None:
            blocks.append("这项业务不设审批决定日，按上面的时限办理即可。")
        else:
            receipt = submit_date
            while not is_working_day(receipt):
                receipt += dt.timedelta(days=1)
            due = add_working_days(receipt, n)
            line = f"如{fmt_date(submit_date)}提交齐全的材料"
            if receipt != submit_date:
                line += f"（当天不是工作日，{fmt_date(receipt)}受理）"
            line += f"，预计最迟{fmt_date(due.date)}办结。"
            if due.estimated or not calendar_knows(submit_date):
                years = sorted({d.year for d in (submit_date, due.date) if not calendar_knows(d)})
                line += (f"\n（{'、'.join(str(y) for y in years)}年的法定节假日安排尚未收录，"
                         "以上按周一至周五推算，遇节假日顺延，具体以窗口告知为准。）")
            blocks.append(line)
    blocks.append(f"绿色通道：{service.green_channel.who}随到随批。")
    blocks.append(f"咨询：{contact.name}，电话：{phone_text(contact)}")
    return pack(blocks)


def process_answer(service: Service, now: dt.datetime,
                   contacts: Optional[Mapping[str, Contact]] = None) -> List[str]:
    """Steps, window, review meetings (and the next one from `now`), green channel."""
    where, contact = _resolve(service, contacts)
    meetings = service.review_meetings
    blocks = [f"【{service.name}】办理流程："]
    blocks += [f"{i}. {step}" for i, step in enumerate(service.steps, 1)]
    blocks.append(_place_block(where, contact))
    ampm = "上午" if meetings.start_time < dt.time(12) else "下午"
    meeting = (f"会审会：{_meeting_days(service)}{ampm}{hhmm(meetings.start_time)}-{hhmm(meetings.end_time)}，"
               f"{meetings.purpose}。")
    upcoming = next_review_meeting(now, meetings.weekdays, meetings.start_time)
    if upcoming is not None:
        meeting += f"\n下一次会审会：{fmt_date(upcoming.date())}{ampm}{hhmm(meetings.start_time)}"
        if not calendar_knows(upcoming.date()):
            meeting += "（节假日安排尚未收录，以本局通知为准）"
        meeting += "。"
    blocks.append(meeting)
    blocks.append(f"绿色通道：{service.green_channel.who}，随到随批。办法：{service.green_channel.how}。")
    blocks.append(f"费用：{service.fees}")
    return pack(blocks)


def _ref(catalogue_ref: str) -> str:
    return catalogue_ref if catalogue_ref.startswith("名录") else f"名录（2021年版）{catalogue_ref}"


def _conclusion(document: str) -> str:
    return {
        "report_book": "需要编制环境影响报告书，开工建设前报本局审批。",
        "report_form": "需要编制环境影响报告表，开工建设前报本局审批。",
        "registration_form": "填报环境影响登记表，在网上备案系统提交即完成，不需要审批；在建成投产前办好。",
        "none": "按名录不需要办理环评手续（不纳入环评管理）。",
    }[document]


def _next_for(document: str) -> str:
    return {
        "report_book": "下一步：要看材料清单，可以问我“报告书要什么材料”。",
        "report_form": "下一步：要看材料清单，可以问我“报告表要什么材料”。",
        "registration_form": "下一步：要看怎么网上备案，可以问我“登记表怎么备案”。",
        "none": "虽然不用办环评，污染防治仍要做到位，有疑问可以找环保技术服务股。",
    }[document]


def _bring_blocks(match: Match) -> List[str]:
    """Heading + one block per item, so a long list splits between items."""
    return [f"可以带上以下材料到{match.contact.name}，当面帮您确定："] + [
        f"{i}. {b}" for i, b in enumerate(match.bring, 1)]


def _contact_block(match: Match) -> str:
    return "\n".join(contact_lines(match.contact)[1:] + [HUMAN_OFFER])


def category_answer(match: Match) -> List[str]:
    """EIA category guidance: the decision, or what to ask / bring next."""
    cat = match.category
    if cat is None:
        return pack([
            "【环评类别】暂时没能从您的描述判断出行业。",
            match.question or "",
            *_bring_blocks(match),
            _contact_block(match),
        ])

    if match.decided:
        doc = match.document
        blocks = [f"【环评类别初步判断】{cat.name}", f"结论：{_conclusion(doc)}"]
        blocks.append("依据：" + "；".join(match.rules + (_ref(cat.catalogue_ref),)))
        if match.caveats:
            blocks.append("注意，以下情况类别会更高：")
            blocks += [f"· {rule} → {DOC_SHORT[d]}" for rule, d in match.caveats]
        if cat.notes:
            blocks.append(f"说明：{cat.notes}")
        blocks.append(_next_for(doc))
        if cat.needs_confirmation:
            blocks.append(f"以上为初步判断，以{match.contact.name}确认为准：")
        else:
            blocks.append(f"拿不准的，可以找{match.contact.name}确认：")
        blocks.append(_contact_block(match))
        return pack(blocks)

    blocks = [f"【环评类别】{cat.name}：还需要确认一点才能判断。", match.question or cat.question]
    if match.alternatives:
        blocks += [f"· 如果是{a.label}{a.quantity}：" + (DOC_SHORT[a.document] if a.document else "还要再补充信息")
                   for a in match.alternatives]
    elif match.modification and match.document:
        blocks.append(f"该行业新建项目按名录为{DOC_SHORT[match.document]}（{_ref(cat.catalogue_ref)}）。")
    else:
        rules = [f"· {t.rule} → {DOC_SHORT[t.document]}" for t in cat.thresholds]
        rules += [f"· {c.rule} → {DOC_SHORT[c.document]}" for c in cat.conditions]
        if cat.default:
            rules.append(f"· 其他情况 → {DOC_SHORT[cat.default]}")
        blocks.append(f"判断标准（{_ref(cat.catalogue_ref)}）：")
        blocks += rules
    if cat.notes:
        blocks.append(f"说明：{cat.notes}")
    blocks += _bring_blocks(match)
    blocks.append(_contact_block(match))
    return pack(blocks)


# ---------------------------------------------------------------- choices


def approval_choice_prompt() -> str:
    lines = ["请问您要办理哪一项？回复数字即可："]
    lines += [f"{i} {label}" for i, (_, label) in enumerate(APPROVAL_CHOICES, 1)]
    return "\n".join(lines)


_DIGITS = {"1": 0, "一": 0, "壹": 0, "2": 1, "二": 1, "两": 1, "贰": 1, "3": 2, "三": 2, "叁": 2,
           "4": 3, "四": 3, "肆": 3, "5": 4, "五": 4, "伍": 4}
_DIGIT_RE = re.compile(
    r"^(?:我)?(?:要|想)?(?:办|选|选择|办理)?(?:第|选项)?([1-5一二两三四五壹贰叁肆伍])(?:个|项|号|种)?(?:吧|啊|呀|呢)?$")
_SYNONYMS = {
    "report_book": ("环境影响报告书", "环评报告书", "报告书", "大环评"),
    "report_form": ("环境影响报告表", "环评报告表", "报告表"),
    "registration_form": ("环境影响登记表", "登记表备案", "登记表", "网上备案", "登记备案", "备案"),
    "acceptance": ("竣工环境保护验收", "竣工环保验收", "验收备案", "竣工验收", "环保验收", "自主验收", "验收"),
}
_UNSURE = re.compile(
    r"不确定|不知道|不清楚|不晓得|不懂|不了解|不明白|没数|搞不清|说不准|拿不准|不会判断|帮我判断|不太确定|不太清楚|不知")
_NEGATED = re.compile(r"不是|不要|不办|不用|不需要")


def parse_approval_choice(text: str) -> Optional[str]:
    """'report_book' | 'report_form' | 'registration_form' | 'acceptance' |
    'unsure' | None (not understood: ask again with approval_choice_prompt)."""
    raw = unicodedata.normalize("NFKC", text or "")
    t = re.sub(r"[\s\.,，。、:：;；!！?？\"'“”‘’()（）\[\]【】]", "", raw)
    if not t:
        return None
    m = _DIGIT_RE.match(t)
    if m:
        return APPROVAL_CHOICES[_DIGITS[m.group(1)]][0]
    if _UNSURE.search(t):
        return "unsure"
    if _NEGATED.search(t):
        return None
    found = set()
    rest = t
    for word, choice in sorted(((w, c) for c, ws in _SYNONYMS.items() for w in ws),
                               key=lambda wc: len(wc[0]), reverse=True):
        if word in rest:
            found.add(choice)
            rest = rest.replace(word, "|")
    return found.pop() if len(found) == 1 else None
