"""User-facing answers built from the real knowledge files."""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from core.consult_text import (
    APPROVAL_CHOICES,
    MAX_BYTES,
    approval_choice_prompt,
    category_answer,
    material_block,
    materials_answer,
    pack,
    parse_approval_choice,
    process_answer,
    time_limit_answer,
    utf8_len,
)
from core.eia_category import classify
from core.knowledge import REFUSAL_PHRASES, load_knowledge, refusal_in
from core.workdays import CHINA_TZ

ROOT = Path(__file__).resolve().parent.parent
K = load_knowledge(ROOT / "knowledge")
SERVICE_IDS = sorted(K.services)
TUESDAY_EVENING = dt.datetime(2026, 11, 24, 20, 0, tzinfo=CHINA_TZ)
LABEL = re.compile(r"^（(\d+)/(\d+)）\n")


def all_answers():
    for sid in SERVICE_IDS:
        s = K.service(sid)
        yield f"materials {sid}", materials_answer(s, K.contacts)
        yield f"time {sid}", time_limit_answer(s)
        yield f"time {sid} dated", time_limit_answer(s, dt.date(2026, 9, 30))
        yield f"time {sid} 2027", time_limit_answer(s, dt.date(2026, 12, 28))
        yield f"process {sid}", process_answer(s, TUESDAY_EVENING)
    for text in ["养猪场存栏3000头", "养猪场3000头", "汽修厂", "小餐馆", "光伏电站", "砖厂技改", "开网吧",
                 "风电场装机10万千瓦"] + [ex.text for cat in K.eia.categories for ex in cat.examples]:
        yield f"category {text}", category_answer(classify(text, K))
    yield "prompt", [approval_choice_prompt()]


ANSWERS = list(all_answers())


@pytest.mark.parametrize("name,parts", ANSWERS, ids=[a[0] for a in ANSWERS])
def test_every_part_fits_wechat_and_never_refuses(name, parts):
    assert parts and all(p.strip() for p in parts)
    for part in parts:
        assert utf8_len(part) <= MAX_BYTES
        assert refusal_in(part) is None, part
        for phrase in REFUSAL_PHRASES:
            assert phrase not in part
        assert "0000-0000000" not in part  # placeholder numbers are never shown


# ---------------------------------------------------------------- materials


@pytest.mark.parametrize("sid", SERVICE_IDS)
def test_materials_checklist_is_complete_numbered_and_never_split_mid_item(sid):
    s = K.service(sid)
    parts = materials_answer(s, K.contacts)
    joined = "\n".join(parts)
    for i, m in enumerate(s.materials, 1):
        block = material_block(i, m)
        assert sum(block in p for p in parts) == 1, block  # whole, in exactly one part
    positions = [joined.index(f"\n{i}. {m.name}") for i, m in enumerate(s.materials, 1)]
    assert positions == sorted(positions)
    assert s.legal_limit_text in joined and s.promised_limit_text in joined
    assert "下一步" in joined and s.next_step in joined
    if len(parts) > 1:
        assert [LABEL.match(p).groups() for p in parts] == [(str(i), str(len(parts))) for i in range(1, len(parts) + 1)]


def test_a_list_that_fits_is_one_message_without_label():
    parts = materials_answer(K.service("registration_form"), K.contacts)
    assert len(parts) == 1
    assert not LABEL.match(parts[0])
    assert "备案系统" in parts[0]


def test_a_long_list_is_split_between_items():
    s = K.service("report_book")
    many = [m.copy(update={"name": f"{m.name}{n}"}) for n in range(3) for m in s.materials]
    big = s.copy(update={"materials": many})
    big._where_contact, big._contact_contact = s.where_contact, s.contact_entry
    parts = materials_answer(big)
    assert len(parts) >= 3
    for i, m in enumerate(many, 1):
        assert sum(material_block(i, m) in p for p in parts) == 1
    for part in parts:
        assert utf8_len(part) <= MAX_BYTES
    assert f"共{len(many)}项" in parts[0]


def test_contacts_come_from_contacts_yml():
    s = K.service("report_form")
    text = "\n".join(materials_answer(s, K.contacts))
    assert K.contacts["approval_window"].address.value in text
    assert "12369" in text  # placeholder phone: the real hotline is offered instead
    other = {cid: c.copy(update={"address": c.address.copy(update={"value": "新地址一号"})})
             for cid, c in K.contacts.items()}
    for cid, c in other.items():
        c._fallback_contact = K.contacts[cid].fallback_contact
    assert "新地址一号" in "\n".join(materials_answer(s, other))


def test_pack_refuses_an_oversized_block_and_keeps_small_answers_whole():
    assert pack(["a", "b"]) == ["a\nb"]
    with pytest.raises(ValueError):
        pack(["字" * 700])  # 2100 bytes


# ---------------------------------------------------------------- time limits


def test_time_limit_gives_both_limits():
    text = "\n".join(time_limit_answer(K.service("report_book")))
    assert "60日" in text and "10个工作日" in text
    assert "预计" not in text


def test_decision_date_across_national_day():
    text = "\n".join(time_limit_answer(K.service("report_form"), dt.date(2026, 9, 30)))
    assert "30日" in text and "5个工作日" in text
    assert "预计最迟2026年10月13日（周二）办结" in text
    assert "尚未收录" not in text


def test_decision_date_across_spring_festival():
    text = "\n".join(time_limit_answer(K.service("report_book"), dt.date(2026, 2, 13)))
    assert "预计最迟2026年3月5日（周四）办结" in text


def test_weekend_submission_is_received_on_the_next_working_day():
    text = "\n".join(time_limit_answer(K.service("report_form"), dt.date(2026, 11, 29)))
    assert "2026年11月30日（周一）受理" in text
    assert "预计最迟2026年12月7日（周一）办结" in text


def test_dates_beyond_the_calendar_are_flagged_as_estimates():
    text = "\n".join(time_limit_answer(K.service("report_book"), dt.date(2026, 12, 28)))
    assert "2027年的法定节假日安排尚未收录" in text
    assert "周一至周五" in text


def test_services_without_a_decision_date_say_so():
    text = "\n".join(time_limit_answer(K.service("acceptance"), dt.date(2026, 11, 24)))
    assert "不设审批决定日" in text
    assert "20个工作日" in text


# ---------------------------------------------------------------- process


def test_process_has_steps_window_meetings_next_meeting_and_green_channel():
    s = K.service("report_form")
    text = "\n".join(process_answer(s, TUESDAY_EVENING))
    for i, step in enumerate(s.steps, 1):
        assert f"{i}. {step}" in text
    assert s.where_contact.name in text
    assert "每周一、三、五上午7:50-8:30" in text
    assert "下一次会审会：2026年11月25日（周三）上午7:50" in text
    assert "随到随批" in text and "不收费" in text


def test_process_next_meeting_skips_the_national_day_holiday():
    text = "\n".join(process_answer(K.service("report_book"), dt.datetime(2026, 9, 30, 20, 0, tzinfo=CHINA_TZ)))
    assert "下一次会审会：2026年10月9日（周五）上午7:50" in text


# ---------------------------------------------------------------- category


def test_decided_category_answer():
    text = "\n".join(category_answer(classify("养猪场存栏3000头", K)))
    assert "环境影响报告书" in text and "2500" in text
    assert "环保技术服务股" in text


def test_undecided_category_answer_asks_and_offers_a_person():
    text = "\n".join(category_answer(classify("光伏电站", K)))
    assert "装机容量" in text
    assert "可以带上以下材料到环保技术服务股" in text
    assert "人工" in text


def test_ambiguous_count_lists_both_readings():
    text = "\n".join(category_answer(classify("养猪场3000头", K)))
    assert "如果是存栏量3000头：报告书" in text
    assert "如果是年出栏量3000头：登记表" in text


def test_unknown_industry_answer_says_what_to_bring():
    text = "\n".join(category_answer(classify("开网吧", K)))
    for item in K.eia.unknown.bring:
        assert item in text
    assert "人工" in text and "12369" in text


def test_unconfirmed_rows_say_so():
    text = "\n".join(category_answer(classify("小餐馆", K)))
    assert "不需要办理环评手续" in text
    assert "以环保技术服务股确认为准" in text


# ---------------------------------------------------------------- choices


def test_choice_prompt_lists_the_five_options_in_order():
    lines = approval_choice_prompt().splitlines()
    assert [ln.split(" ", 1)[0] for ln in lines[1:]] == ["1", "2", "3", "4", "5"]
    assert "报告书" in lines[1] and "报告表" in lines[2] and "登记表" in lines[3]
    assert "验收" in lines[4] and "不确定" in lines[5]
    assert len(APPROVAL_CHOICES) == 5


@pytest.mark.parametrize("text,expected", [
    ("1", "report_book"), ("１", "report_book"), ("一", "report_book"), ("选1", "report_book"),
    ("1.", "report_book"), ("第一个", "report_book"), ("报告书", "report_book"),
    ("环境影响报告书", "report_book"), ("大环评", "report_book"),
    ("2", "report_form"), ("二", "report_form"), ("２号", "report_form"), ("环评报告表", "report_form"),
    ("3", "registration_form"), ("三", "registration_form"), ("登记表", "registration_form"),
    ("网上备案", "registration_form"),
    ("4", "acceptance"), ("四", "acceptance"), ("竣工验收", "acceptance"), ("环保验收", "acceptance"),
    ("验收备案", "acceptance"),
    ("5", "unsure"), ("五", "unsure"), ("不确定", "unsure"), ("不知道", "unsure"), ("不清楚", "unsure"),
    ("我也不太清楚", "unsure"), ("不知道是报告书还是报告表", "unsure"),
    ("报告书还是报告表", None), ("不是报告书", None), ("你好", None), ("6", None), ("", None),
    ("12", None),
])
def test_parse_approval_choice(text, expected):
    assert parse_approval_choice(text) == expected
