"""The complaint actions against a real Redis: intake, corrections, evidence,
duplicates, emergencies, retries, the spool, status lookup."""
from __future__ import annotations

import pytest

from actions import complaint, deps, media, status
from actions.complaint_input import parse_confirmation, parse_contact
from core.spool import Spool
from core.tickets import TicketStore
from tests.action_helpers import action_env, run, slot_events, tracker  # noqa: F401

pytestmark = pytest.mark.usefixtures("action_env")

FULL = {"pollution_type": "air", "complaint_location": "城东工业园化工厂", "complaint_time": "每天半夜",
        "complaint_description": "烟囱冒黑烟，气味刺鼻", "complaint_contact": "13812345678",
        "complaint_confirmed": True}


def store() -> TicketStore:
    return TicketStore(deps.redis(), deps.keys())


async def submit(slots: dict, sender: str, msg_id: str, channel: str = "wechat"):
    t = tracker("确认", "affirm", slots=slots, sender=sender, metadata={"msg_id": msg_id, "channel": channel})
    return await run(complaint.SubmitComplaint(), t)


async def test_start_takes_type_and_description_from_the_first_sentence():
    texts, events = await run(complaint.StartComplaint(), tracker(
        "村口那个厂天天冒黑烟 呛死人", "report_pollution",
        entities=[{"entity": "pollution_type", "value": "air"}]))
    slots = slot_events(events)
    assert slots["pollution_type"] == "air" and slots["complaint_description"].startswith("村口")
    assert "12369" not in texts[0]


async def test_emergency_gives_12369_in_the_first_reply():
    texts, events = await run(complaint.StartComplaint(), tracker(
        "河里好多死鱼 自来水也有怪味", "report_pollution", entities=[{"entity": "pollution_type", "value": "water"}]))
    assert "12369" in texts[0] and slot_events(events)["complaint_urgent"] is True


async def test_bare_report_has_no_description_and_other_type():
    _, events = await run(complaint.StartComplaint(), tracker("我要举报", "report_pollution"))
    slots = slot_events(events)
    assert slots["pollution_type"] == "other" and "complaint_description" not in slots


def test_contact_parsing():
    assert parse_contact("138 1234 5678") == ("phone", "13812345678")
    assert parse_contact("+86-139-0000-1111") == ("phone", "13900001111")
    assert parse_contact("匿名吧") == ("anonymous", None)
    assert parse_contact("不想留") == ("anonymous", None)
    assert parse_contact("12345") == ("invalid", None)
    assert parse_contact("23812345678") == ("invalid", None)


def test_confirmation_parsing():
    assert parse_confirmation("确认") == ("confirm", None)
    assert parse_confirmation("对的") == ("confirm", None)
    assert parse_confirmation("改地点") == ("change", "complaint_location")
    assert parse_confirmation("修改一下电话") == ("change", "complaint_contact")
    assert parse_confirmation("改时间") == ("change", "complaint_time")
    assert parse_confirmation("改描述") == ("change", "complaint_description")
    assert parse_confirmation("还有噪音也很大") == ("other", None)


async def test_form_validation_paths():
    v = complaint.ValidateComplaintForm()
    from rasa_sdk.executor import CollectingDispatcher

    d = CollectingDispatcher()
    assert (await v.validate_complaint_contact("1381234", d, tracker(), {}))["complaint_contact"] is None
    assert "11位手机号" in d.messages[0]["text"]
    assert (await v.validate_complaint_contact("匿名", d, tracker(), {}))["complaint_contact"] == "匿名"
    assert (await v.validate_complaint_location("a", d, tracker(), {}))["complaint_location"] is None
    res = await v.validate_complaint_confirmed("改地点", d, tracker(), {})
    assert res == {"complaint_confirmed": None, "complaint_location": None}
    res = await v.validate_complaint_confirmed("晚上更严重", d, tracker(slots={"complaint_description": "冒黑烟"}), {})
    assert res["complaint_description"] == "冒黑烟；晚上更严重" and res["complaint_confirmed"] is None


async def test_full_intake_with_photo_and_location_makes_one_ticket():
    sender = "o-full-intake"
    texts, _ = await run(media.ReceiveImage(), tracker(
        "/send_image", "send_image", sender=sender, active_loop="complaint_form",
        entities=[{"entity": "media_id", "value": "MEDIA1"}, {"entity": "pic_url", "value": "http://x/1.jpg"}]))
    assert "会附在这次举报里" in texts[0]
    summary, _ = await run(complaint.AskComplaintConfirmed(), tracker("", sender=sender, slots=FULL))
    assert "照片：1 张" in summary[0] and "138****5678" in summary[0]
    slots = dict(FULL, complaint_latitude=30.0, complaint_longitude=120.0)
    texts, events = await submit(slots, sender, "MSG-1")
    assert "工单编号：HB" in texts[0]
    ticket_id = texts[0].split("工单编号：")[1][:14]
    t = await store().get(ticket_id)
    assert t.pollution_type == "air" and t.contact_phone == "13812345678" and not t.anonymous
    assert t.lat == pytest.approx(30.0) and [e["media_id"] for e in t.evidence] == ["MEDIA1"]
    assert t.status == "已受理"
    assert slot_events(events)["complaint_location"] is None  # the form is reset
    assert await media.take_pending_evidence(sender) == []  # the photo went into the ticket


async def test_anonymous_report():
    texts, _ = await submit(dict(FULL, complaint_contact="匿名", complaint_location="北街菜市场后面"), "o-anon", "MSG-2")
    t = await store().get(texts[0].split("工单编号：")[1][:14])
    assert t.anonymous and t.contact_phone is None


async def test_three_identical_retries_make_one_ticket():
    slots = dict(FULL, complaint_location="南河桥头养鸡场", pollution_type="livestock")
    results = [await submit(slots, "o-retry", "MSG-SAME") for _ in range(3)]
    ids = {r[0][0].split("工单编号：")[1][:14] for r in results}
    assert len(ids) == 1
    assert len(await store().list_by_reporter("o-retry")) == 1


async def test_duplicate_report_is_linked_to_the_open_ticket():
    first, _ = await submit(dict(FULL, complaint_location="西岭村砖厂"), "o-first", "MSG-A")
    tid = first[0].split("工单编号：")[1][:14]
    second, _ = await submit(dict(FULL, complaint_location="西岭村砖厂", complaint_contact="匿名"), "o-second", "MSG-B")
    assert tid in second[0] and "已合并" in second[0]
    t = await store().get(tid)
    assert any(h.get("action") for h in t.history if "dup" in str(h.get("action")))


async def test_status_lookup_by_owner_and_by_stranger():
    texts, _ = await submit(dict(FULL, complaint_location="东关小学旁边的工地", pollution_type="noise"), "o-owner", "MSG-S")
    tid = texts[0].split("工单编号：")[1][:14]
    owner, _ = await run(status.CheckStatus(), tracker(f"{tid}怎么样了", "check_status", sender="o-owner"))
    assert "当前状态：已受理" in owner[0] and "已受理您的反映" in owner[0]
    stranger, _ = await run(status.CheckStatus(), tracker(f"查一下 {tid.lower()}", "check_status", sender="o-x"))
    assert "已受理" in stranger[0] and "138" not in stranger[0] and "东关" not in stranger[0]
    mine, _ = await run(status.CheckStatus(), tracker("我的举报", "check_status", sender="o-owner"))
    assert tid in mine[0]
    missing, _ = await run(status.CheckStatus(), tracker("HB209901010001", "check_status", sender="o-owner"))
    assert "没有查到" in missing[0]


async def test_redis_down_spools_and_replays_exactly_once(monkeypatch, redis_url, tmp_path):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:9/0")  # nothing listens there
    deps.reset()
    texts, _ = await submit(dict(FULL, complaint_location="北山垃圾场"), "o-spool", "MSG-SPOOL")
    assert "已记录" in texts[0] and "编号稍后" in texts[0]
    spool = Spool.from_settings(deps.settings())
    assert spool.pending_count() == 1
    monkeypatch.setenv("REDIS_URL", redis_url)
    deps.reset()
    result = await spool.replay(store())
    assert len(result.replayed) == 1 and spool.pending_count() == 0
    again = await spool.replay(store())
    assert again.replayed == []
    tickets = await store().list_by_reporter("o-spool")
    assert len(tickets) == 1 and tickets[0].location_text == "北山垃圾场"
