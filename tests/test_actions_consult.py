"""Consultation actions against the real knowledge files."""
from __future__ import annotations

import datetime as dt

import pytest

from actions import consult
from actions.consult import submit_date_in
from core.consult_text import utf8_len
from tests.action_helpers import action_env, run, slot_events, tracker  # noqa: F401

pytestmark = pytest.mark.usefixtures("action_env")


@pytest.mark.parametrize("kind,must", [
    ("report_book", ["报告书", "10"]), ("report_form", ["报告表", "5"]),
    ("registration_form", ["登记表"]), ("acceptance", ["验收"]),
])
async def test_materials_answer_is_complete_and_fits_wechat(kind, must):
    texts, _ = await run(consult.AnswerConsult(), tracker(
        "要交什么材料", "ask_materials", slots={"approval_type": kind, "consult_topic": "materials"}))
    joined = "\n".join(texts)
    assert all(m in joined for m in must), joined[:300]
    assert "所需材料" in texts[0] and "下一步" in joined
    assert all(utf8_len(t) <= 2048 for t in texts)
    # Split only between numbered items: every part after the first starts a new item.
    import re

    for part in texts[1:]:
        body = re.sub(r"^（\d+/\d+）\n", "", part)
        assert body[0].isdigit() or body.startswith(("【", "办理时限", "下一步", "办理地点", "咨询")), part[:40]


async def test_time_limit_with_submit_date_across_national_day(monkeypatch):
    monkeypatch.setattr(consult, "now_shanghai", lambda: dt.datetime(2026, 9, 29, 10, 0, tzinfo=consult.SHANGHAI))
    texts, _ = await run(consult.AnswerConsult(), tracker(
        "我今天交报告表，什么时候能批", "ask_time_limit",
        slots={"approval_type": "report_form", "consult_topic": "time_limit"}))
    joined = "\n".join(texts)
    assert "30日" in joined and "5个工作日" in joined  # legal and promised limits
    # Received Tue 29 Sep 2026; day 1 = 30 Sep; 1-7 Oct National Day holidays;
    # 8, 9 Oct; Sat 10 Oct is a make-up working day; day 5 = Mon 12 Oct.
    assert "10月12日" in joined, joined


def test_submit_date_parsing():
    today = dt.date(2026, 11, 29)
    assert submit_date_in("我今天交 啥时候批", today) == today
    assert submit_date_in("明天去交", today) == dt.date(2026, 11, 30)
    assert submit_date_in("12月3日交材料", today) == dt.date(2026, 12, 3)
    assert submit_date_in("1月5号交", today) == dt.date(2027, 1, 5)
    assert submit_date_in("报告表要几天", today) is None


async def test_process_answer_names_meetings_and_green_channel():
    texts, _ = await run(consult.AnswerConsult(), tracker(
        "报告书怎么办理", "ask_process", slots={"approval_type": "report_book", "consult_topic": "process"}))
    joined = "\n".join(texts)
    assert "会审会" in joined and "下一次会审会" in joined and "绿色通道" in joined


async def test_unsure_leads_to_category_guidance():
    texts, events = await run(consult.AnswerConsult(), tracker(
        "不确定", "deny", slots={"approval_type": "unsure", "consult_topic": "materials"}))
    assert "规模" in texts[0] and slot_events(events)["approval_type"] is None


@pytest.mark.parametrize("answer,expected", [
    ("2", "report_form"), ("１", "report_book"), ("报告表", "report_form"), ("登记表吧", "registration_form"),
    ("不确定", "unsure"), ("4", "acceptance"), ("report_book", "report_book"),
])
async def test_form_accepts_digits_and_words(answer, expected):
    v = consult.ValidateApprovalForm()
    assert (await v.validate_approval_type(answer, None, tracker(answer), {}))["approval_type"] == expected


async def test_form_asks_again_on_nonsense():
    from rasa_sdk.executor import CollectingDispatcher

    d = CollectingDispatcher()
    res = await consult.ValidateApprovalForm().validate_approval_type("随便", d, tracker("随便"), {})
    assert res["approval_type"] is None and "1-5" in d.messages[0]["text"]


@pytest.mark.parametrize("text,doc", [
    ("养猪场存栏3000头要做什么环评", "报告"), ("开个汽修厂要不要环评", ""), ("光伏电站做哪类环评", ""),
])
async def test_category_guidance(text, doc):
    texts, _ = await run(consult.EiaCategory(), tracker(text, "ask_eia_category"))
    joined = "\n".join(texts)
    assert joined and all(utf8_len(t) <= 2048 for t in texts)
    assert doc in joined


async def test_unknown_industry_says_what_to_bring_and_offers_a_person():
    texts, _ = await run(consult.EiaCategory(), tracker("我要搞个火箭发射场要啥环评", "ask_eia_category"))
    joined = "\n".join(texts)
    assert "技术服务股" in joined and ("人工" in joined or "工作人员" in joined)


async def test_contact_lists_units_and_hotline():
    texts, _ = await run(consult.Contact(), tracker("电话多少", "ask_contact"))
    joined = "\n".join(texts)
    assert "12369" in joined and "技术服务股" in joined
