"""Ticket store against a real Redis (core/tickets.py, core/places.py, core/emergency.py)."""
from __future__ import annotations

import asyncio
import json
import math
import re
import socket
import time
from datetime import date, datetime, timezone

import pytest

from core.emergency import is_emergency
from core.places import is_specific_place, normalise_place, place_keys
from core.redis_conn import create_redis
from core.settings import Settings
from core.ticket_model import SHANGHAI, Status
from core.tickets import (
    IllegalTransition, StoreUnavailable, TicketNotFound, TicketStore,
)
from tests.redis_fixtures import (  # noqa: F401  (fixtures)
    FakeClock, clock, key_prefix_t, keys, rc, report, settings_t, store,
)

ID_RE = re.compile(r"^HB\d{8}\d{4}$")
EARTH_R = 6372797.560856  # the radius Redis uses for GEO distances


def north_of(lat: float, metres: float) -> float:
    return lat + math.degrees(metres / EARTH_R)


# --- pure logic -------------------------------------------------------------------

@pytest.mark.parametrize("a,b", [
    ("幸福小区３号楼 附近", "幸福小区三号楼那边。"),
    ("在幸福小区3栋旁边", "幸福小区第三幢这里"),
    ("县城东 化工厂 那边", "县城东化工厂附近！"),
    ("ＡＢＣ科技公司门口", "abc科技公司"),
    ("人民路十二号", "人民路12号的旁边"),
])
def test_place_variants_normalise_to_the_same_text(a, b):
    assert normalise_place(a) == normalise_place(b)
    assert is_specific_place(normalise_place(a))


def test_place_normalisation_keeps_different_places_apart_and_drops_vague_ones():
    assert normalise_place("幸福小区3号楼") != normalise_place("幸福小区5号楼")
    assert normalise_place("幸福小区３号楼 附近") == "幸福小区3号"
    assert place_keys("我家附近", "这里", "村里", "") == []
    assert place_keys("城东工业园那边", "城东工业园") == ["城东工业园"]


@pytest.mark.parametrize("text,ptype,reason_part", [
    ("河里漂着好多死鱼", "water", "死鱼"),
    ("鱼塘的鱼都死光了", "water", "死鱼"),
    ("我家自来水有股怪味", "water", "饮用水"),
    ("村里的井水变黑了", "water", "饮用水"),
    ("化工厂氯气泄漏了", "air", "泄漏"),
    ("气味很刺鼻，好几个人头晕", "air", "刺鼻"),
    ("半夜有人在沟里倒化学桶", "solid_waste", "危险废物"),
    ("有人乱扔医疗废物", "solid_waste", "危险废物"),
    ("厂里爆炸了，冒黑烟", "air", "爆炸"),
    ("取水口上游有人排污", "water", "饮用水"),
])
def test_emergencies_are_recognised(text, ptype, reason_part):
    urgent, reason = is_emergency(text, ptype)
    assert urgent is True
    assert reason_part in reason


@pytest.mark.parametrize("text,ptype", [
    ("工地晚上施工太吵", "noise"),
    ("河水有点臭，没有死鱼", "water"),
    ("气味很刺鼻", "air"),             # a smell alone is not an emergency
    ("未发现泄漏，就是有烟", "air"),
    ("取水口附近有人唱歌", "noise"),   # 取水口 only counts for water reports
    ("", "other"),
])
def test_ordinary_complaints_are_not_emergencies(text, ptype):
    assert is_emergency(text, ptype) == (False, "")


# --- numbers --------------------------------------------------------------------------

async def test_ticket_number_format_and_daily_sequence_with_rollover(store, rc, keys, clock):
    clock.now = datetime(2026, 11, 29, 23, 59, 58, tzinfo=SHANGHAI)
    a = await store.create(report(location_text="东街1号"), "m1")
    b = await store.create(report(location_text="西街2号"), "m2")
    assert (a.ticket.ticket_id, b.ticket.ticket_id) == ("HB202611290001", "HB202611290002")
    assert a.created and b.created and ID_RE.match(a.ticket.ticket_id)
    ttl = await rc.ttl(keys.ticket_seq("20261129"))
    assert 2 * 86400 < ttl <= 3 * 86400

    clock.advance(seconds=5)  # 2026-11-30 00:00:03 in Shanghai
    c = await store.create(report(location_text="南街3号"), "m3")
    assert c.ticket.ticket_id == "HB202611300001"
    assert c.ticket.created_at == "2026-11-30T00:00:03+08:00"


async def test_ticket_date_is_the_shanghai_date_even_for_a_utc_clock(rc, keys):
    utc_clock = FakeClock(datetime(2026, 11, 29, 16, 30, tzinfo=timezone.utc))  # 00:30 next day in Shanghai
    s = TicketStore(rc, keys, clock=utc_clock)
    res = await s.create(report(), "m1")
    assert res.ticket.ticket_id == "HB202611300001"
    assert res.ticket.created_at.endswith("+08:00")


async def test_create_writes_ticket_and_every_index_before_returning(store, rc, keys):
    r = report(pollution_type="water", description="排污口冒黄水", location_text="清河桥下",
               lat=30.1, lon=120.2, location_label="清河桥",
               evidence=[{"media_id": "MEDIA1", "url": "http://img/1"}])
    res = await store.create(r, "msg-100")
    t = res.ticket
    tid = t.ticket_id
    assert res.created and res.duplicate_of is None
    assert (await store.get(tid)) == t
    assert t.status == Status.ACCEPTED and t.reporter == r.reporter and t.idempotency_key == "msg-100"
    assert t.contact_phone == "13912345678" and t.anonymous is False
    assert t.evidence[0]["media_id"] == "MEDIA1" and t.evidence[0]["received_at"]
    assert t.history[0]["action"] == "created" and t.history[0]["status_to"] == Status.ACCEPTED
    assert await rc.zscore(keys.tickets_by_reporter(r.reporter), tid) is not None
    assert await rc.zscore(keys.tickets_by_status("accepted"), tid) is not None
    assert await rc.zscore(keys.tickets_by_type("water"), tid) is not None
    assert await rc.zscore(keys.tickets_by_created(), tid) is not None
    assert await rc.geopos(keys.tickets_geo("water"), tid) != [None]
    assert await rc.zscore(keys.tickets_place("water", "清河桥"), tid) is not None
    entries = await rc.xrange(keys.queue_normal())
    assert [f["ticket_id"] for _, f in entries] == [tid]
    assert await rc.xlen(keys.queue_urgent()) == 0


async def test_anonymous_report_keeps_no_phone(store):
    t = (await store.create(report(contact_phone="13900001111", anonymous=True), "m1")).ticket
    assert t.anonymous is True and t.contact_phone is None
    t2 = (await store.create(report(contact_phone=None, location_text="另一个地方"), "m2")).ticket
    assert t2.anonymous is True


# --- idempotency ------------------------------------------------------------------------

async def test_concurrent_retries_with_the_same_idem_key_create_one_ticket(store, rc, keys):
    results = await asyncio.gather(*[store.create(report(), "wx-msgid-777") for _ in range(3)])
    ids = {r.ticket.ticket_id for r in results}
    assert len(ids) == 1
    assert sum(r.created for r in results) == 1
    assert sum(r.replayed for r in results) == 2
    assert await rc.zcard(keys.tickets_by_created()) == 1
    assert await rc.xlen(keys.queue_normal()) == 1
    assert await rc.get(keys.ticket_seq("20261129")) == "1"
    # and a later retry, too
    again = await store.create(report(), "wx-msgid-777")
    assert again.replayed and not again.created and again.ticket.ticket_id in ids


async def test_idem_keys_are_per_reporter(store):
    a = await store.create(report(reporter="userA", location_text="甲地"), "1")
    b = await store.create(report(reporter="userB", location_text="乙地"), "1")
    assert a.created and b.created and a.ticket.ticket_id != b.ticket.ticket_id


async def test_concurrent_reports_of_one_place_give_one_ticket_and_duplicates(store, rc, keys):
    reps = [report(reporter=f"user{i}", location_text="城东工业园那边") for i in range(3)]
    results = await asyncio.gather(*[store.create(r, f"m{i}") for i, r in enumerate(reps)])
    created = [r for r in results if r.created]
    assert len(created) == 1
    tid = created[0].ticket.ticket_id
    assert sorted(r.duplicate_of for r in results if not r.created) == [tid, tid]
    assert await rc.zcard(keys.tickets_by_created()) == 1


# --- duplicates ---------------------------------------------------------------------------

async def test_duplicate_within_500m_is_linked_and_not_queued(store, rc, keys):
    lat, lon = 30.25, 120.16
    first = await store.create(report(pollution_type="water", location_text="清河上游", lat=lat, lon=lon,
                                      evidence=[{"media_id": "P1", "url": "u1"}]), "m1")
    near = report(reporter="oWx_citizen_B", pollution_type="water", description="河水发黑发臭，联系我13700001111",
                  location_text="清河边的村口", lat=north_of(lat, 300), lon=lon, contact_phone="13700001111",
                  evidence=[{"media_id": "P2", "url": "u2"}])
    res = await store.create(near, "m2")
    tid = first.ticket.ticket_id
    assert not res.created and res.duplicate_of == tid and res.ticket.ticket_id == tid
    assert res.ticket.status == Status.ACCEPTED
    last = res.ticket.history[-1]
    assert last["action"] == "duplicate_report" and last["actor"] == "oWx_citizen_B"
    assert "河水发黑发臭" in last["note"]
    assert [e["media_id"] for e in res.ticket.evidence] == ["P1", "P2"]
    assert await rc.xlen(keys.queue_normal()) == 1                      # not queued again
    assert await rc.zcard(keys.tickets_by_created()) == 1
    # the second citizen finds the ticket among theirs
    mine = await store.list_by_reporter("oWx_citizen_B")
    assert [t.ticket_id for t in mine] == [tid]
    # a retry of the merged message gives the same answer and merges nothing twice
    again = await store.create(near, "m2")
    assert again.replayed and again.duplicate_of == tid
    assert len((await store.get(tid)).history) == 2


async def test_reports_800m_apart_or_of_another_type_are_not_linked(store):
    lat, lon = 30.25, 120.16
    a = await store.create(report(pollution_type="water", location_text="甲处", lat=lat, lon=lon), "m1")
    far = await store.create(report(pollution_type="water", location_text="乙处",
                                    lat=north_of(lat, 800), lon=lon), "m2")
    other_type = await store.create(report(pollution_type="noise", location_text="丙处",
                                           lat=lat, lon=lon), "m3")
    assert far.created and far.duplicate_of is None
    assert other_type.created and other_type.duplicate_of is None
    assert len({a.ticket.ticket_id, far.ticket.ticket_id, other_type.ticket.ticket_id}) == 3


async def test_duplicate_by_normalised_place_text(store):
    a = await store.create(report(location_text="幸福小区３号楼 附近"), "m1")
    b = await store.create(report(reporter="u2", location_text="幸福小区三号楼那边。"), "m2")
    c = await store.create(report(reporter="u3", location_text="幸福小区5号楼"), "m3")
    d = await store.create(report(reporter="u4", location_text="我家附近"), "m4")
    e = await store.create(report(reporter="u5", location_text="我家附近"), "m5")
    assert b.duplicate_of == a.ticket.ticket_id
    assert c.created and d.created and e.created    # other building; vague places never link


async def test_72_hour_window(store, clock):
    loc = dict(location_text="城西砖厂", lat=30.0, lon=120.0)
    a = await store.create(report(**loc), "m1")
    clock.advance(hours=71)
    b = await store.create(report(reporter="u2", **loc), "m2")
    assert b.duplicate_of == a.ticket.ticket_id
    clock.advance(hours=2)      # 73 h after the first report
    c = await store.create(report(reporter="u3", **loc), "m3")
    assert c.created and c.duplicate_of is None
    clock.advance(hours=1)
    d = await store.create(report(reporter="u4", **loc), "m4")
    assert d.duplicate_of == c.ticket.ticket_id


@pytest.mark.parametrize("path", [
    [(Status.PROCESSING, {}), (Status.CLOSED, {})],
    [(Status.TRANSFERRED, {"transferred_to": "县水利局"})],
])
async def test_finished_tickets_are_not_linked(store, path):
    loc = dict(location_text="城北养殖场", lat=30.0, lon=120.0, pollution_type="livestock")
    a = await store.create(report(**loc), "m1")
    for status, kw in path:
        await store.change_status(a.ticket.ticket_id, status, "staff1", "", **kw)
    b = await store.create(report(reporter="u2", **loc), "m2")
    assert b.created and b.duplicate_of is None


# --- urgent / queue -------------------------------------------------------------------------

async def test_urgent_ticket_is_served_first_and_escalated(store, rc, keys):
    a = await store.create(report(location_text="甲"), "m1")
    b = await store.create(report(location_text="乙"), "m2")
    c = await store.create(report(pollution_type="water", description="河里大量死鱼", location_text="丙"), "m3")
    assert c.ticket.urgent and "死鱼" in c.ticket.urgent_reason
    assert not a.ticket.urgent and not b.ticket.urgent
    first = await store.read_queue("staff-li", count=1)
    assert [i.ticket_id for i in first] == [c.ticket.ticket_id] and first[0].urgent
    rest = await store.read_queue("staff-li", count=5)
    assert [i.ticket_id for i in rest] == [a.ticket.ticket_id, b.ticket.ticket_id]
    assert [t.ticket_id for t in await store.list_escalations()] == [c.ticket.ticket_id]
    # finished: no longer escalated
    await store.change_status(c.ticket.ticket_id, Status.PROCESSING, "staff-li")
    assert [t.ticket_id for t in await store.list_escalations()] == [c.ticket.ticket_id]
    await store.change_status(c.ticket.ticket_id, Status.CLOSED, "staff-li")
    assert await store.list_escalations() == []


async def test_explicit_urgent_flag_and_urgent_duplicate_escalates_the_open_ticket(store, rc, keys):
    flagged = await store.create(report(location_text="甲", urgent=True, urgent_reason="群众反映有人晕倒"), "m0")
    assert flagged.ticket.urgent and flagged.ticket.urgent_reason == "群众反映有人晕倒"
    a = await store.create(report(pollution_type="water", description="河水有点臭", location_text="清河桥"), "m1")
    assert not a.ticket.urgent
    b = await store.create(report(reporter="u2", pollution_type="water", description="清河桥下死鱼一片",
                                  location_text="清河桥附近"), "m2")
    assert b.duplicate_of == a.ticket.ticket_id
    assert b.ticket.urgent and "死鱼" in b.ticket.urgent_reason
    assert b.ticket.history[-1]["action"] == "escalated"
    items = await store.read_queue("staff-wang", count=10)
    assert [(i.ticket_id, i.kind) for i in items[:2]] == [
        (flagged.ticket.ticket_id, "new"), (a.ticket.ticket_id, "escalated")]
    assert a.ticket.ticket_id in [t.ticket_id for t in await store.list_escalations()]


async def test_consumer_group_read_and_ack(store, rc, keys):
    await store.ensure_queue_groups()
    await store.ensure_queue_groups()   # idempotent
    ids = [(await store.create(report(location_text=f"地点{i}"), f"m{i}")).ticket.ticket_id for i in range(4)]
    got_a = await store.read_queue("staff-a", count=2)
    got_b = await store.read_queue("staff-b", count=10)
    assert [i.ticket_id for i in got_a + got_b] == ids          # each entry to one consumer
    assert await store.read_queue("staff-c", count=10) == []
    assert len(await store.pending("staff-a")) == 2
    assert await store.ack(got_a[0]) is True
    assert await store.ack(got_a[0].ref) is False               # already acknowledged
    assert [i.ticket_id for i in await store.pending("staff-a")] == [ids[1]]
    summary = await rc.xpending(keys.queue_normal(), "staff")
    assert summary["pending"] == 3
    # a crashed console's entries can be taken over
    taken = await store.reclaim("staff-c", min_idle_ms=0)
    assert {i.ticket_id for i in taken} == set(ids[1:])
    for item in taken:
        await store.ack(item)
    assert (await rc.xpending(keys.queue_normal(), "staff"))["pending"] == 0
    with pytest.raises(ValueError):
        await store.ack("nonsense")


async def test_queue_group_created_after_tickets_still_delivers_them(store):
    t = await store.create(report(), "m1")
    items = await store.read_queue("staff-a")
    assert [i.ticket_id for i in items] == [t.ticket.ticket_id]


# --- status lifecycle -------------------------------------------------------------------------

async def test_legal_status_changes_record_history(store, rc, keys, clock):
    tid = (await store.create(report(), "m1")).ticket.ticket_id
    clock.advance(minutes=5)
    t = await store.change_status(tid, Status.PROCESSING, "staff-zhang", "已派人到现场")
    clock.advance(hours=2)
    t = await store.change_status(tid, Status.CLOSED, "staff-zhang", "企业已停产整改")
    assert t.status == Status.CLOSED
    steps = [(h["status_from"], h["status_to"], h["actor"], h["note"], h["at"]) for h in t.history[1:]]
    assert steps == [
        (Status.ACCEPTED, Status.PROCESSING, "staff-zhang", "已派人到现场", "2026-11-29T10:05:00+08:00"),
        (Status.PROCESSING, Status.CLOSED, "staff-zhang", "企业已停产整改", "2026-11-29T12:05:00+08:00"),
    ]
    assert (await store.get(tid)) == t
    assert await rc.zscore(keys.tickets_by_status("closed"), tid) is not None
    assert await rc.zscore(keys.tickets_by_status("accepted"), tid) is None
    assert await rc.zscore(keys.tickets_by_status("processing"), tid) is None


async def test_illegal_status_changes_raise_and_change_nothing(store):
    tid = (await store.create(report(), "m1")).ticket.ticket_id
    with pytest.raises(IllegalTransition, match="已受理 -> 已办结"):
        await store.change_status(tid, Status.CLOSED, "staff")
    with pytest.raises(IllegalTransition, match="unknown status"):
        await store.change_status(tid, "完成", "staff")
    with pytest.raises(IllegalTransition, match="needs transferred_to"):
        await store.change_status(tid, Status.TRANSFERRED, "staff")
    with pytest.raises(IllegalTransition, match="needs linked_to"):
        await store.change_status(tid, Status.DUPLICATE, "staff")
    with pytest.raises(IllegalTransition, match="does not exist"):
        await store.change_status(tid, Status.DUPLICATE, "staff", linked_to="HB202611290999")
    with pytest.raises(IllegalTransition, match="itself"):
        await store.change_status(tid, Status.DUPLICATE, "staff", linked_to=tid)
    t = await store.get(tid)
    assert t.status == Status.ACCEPTED and len(t.history) == 1
    await store.change_status(tid, Status.PROCESSING, "staff")
    await store.change_status(tid, Status.CLOSED, "staff")
    with pytest.raises(IllegalTransition, match="final status"):
        await store.change_status(tid, Status.PROCESSING, "staff")
    with pytest.raises(TicketNotFound):
        await store.change_status("HB209901010001", Status.PROCESSING, "staff")


async def test_duplicate_and_transfer_statuses(store):
    a = (await store.create(report(location_text="甲地"), "m1")).ticket.ticket_id
    b = (await store.create(report(location_text="乙地"), "m2")).ticket.ticket_id
    c = (await store.create(report(location_text="丙地"), "m3")).ticket.ticket_id
    tb = await store.change_status(b, Status.DUPLICATE, "staff", "同一企业", linked_to=a)
    assert tb.status == Status.DUPLICATE and tb.linked_to == a
    ta = await store.get(a)
    assert ta.history[-1]["action"] == "linked_duplicate" and ta.history[-1]["linked_from"] == b
    with pytest.raises(IllegalTransition, match=f"duplicate of {a}"):
        await store.change_status(c, Status.DUPLICATE, "staff", linked_to=b)
    tc = await store.change_status(c, Status.TRANSFERRED, "staff", "属水利部门职责", transferred_to="县水利局")
    assert tc.transferred_to == "县水利局" and tc.status == Status.TRANSFERRED


async def test_staff_reply_and_evidence(store, clock):
    tid = (await store.create(report(), "m1")).ticket.ticket_id
    t = await store.add_evidence(tid, "MEDIA9", "http://img/9")
    t = await store.add_evidence(tid, "MEDIA9", "http://img/9")       # same media once
    assert [e["media_id"] for e in t.evidence] == ["MEDIA9"]
    t = await store.set_staff_reply(tid, "您好，经核查该企业已整改。", "staff-zhang")
    assert t.staff_reply == "您好，经核查该企业已整改。"
    assert [h["action"] for h in (await store.get(tid)).history] == ["created", "evidence_added", "staff_reply"]


async def test_concurrent_updates_lose_nothing(store):
    tid = (await store.create(report(), "m1")).ticket.ticket_id
    await asyncio.gather(*[store.add_evidence(tid, f"MEDIA{i}", f"http://img/{i}") for i in range(6)],
                         store.set_staff_reply(tid, "已收到", "staff"),
                         store.change_status(tid, Status.PROCESSING, "staff"))
    t = await store.get(tid)
    assert sorted(e["media_id"] for e in t.evidence) == [f"MEDIA{i}" for i in range(6)]
    assert t.status == Status.PROCESSING and t.staff_reply == "已收到"
    assert len(t.history) == 1 + 6 + 2


# --- views and lists ------------------------------------------------------------------------

async def test_public_and_owner_views_leak_no_reporter_details(store):
    first = await store.create(report(reporter="oWx_SECRET_A", contact_phone="13912345678",
                                      location_text="城南木材厂"), "m1")
    tid = first.ticket.ticket_id
    await store.create(report(reporter="oWx_SECRET_B", contact_phone="13811112222",
                              description="我是老王，电话13811112222，烟太大了",
                              location_text="城南木材厂附近"), "m2")
    await store.change_status(tid, Status.PROCESSING, "staff-internal-id", "内部备注：老板是熟人")
    t = await store.set_staff_reply(tid, "已责令企业整改，感谢您的监督。", "staff-internal-id")

    pub = store.public_view(t)
    assert pub == {"ticket_id": tid, "status": Status.PROCESSING, "updated_at": t.updated_at}
    own = store.owner_view(t)
    assert own["status"] == Status.PROCESSING and own["staff_reply"] == "已责令企业整改，感谢您的监督。"
    assert [h["status_to"] for h in own["history"] if h["status_to"]] == [Status.ACCEPTED, Status.PROCESSING]
    assert len(own["history"]) == 4
    for view in (pub, own):
        dumped = json.dumps(view, ensure_ascii=False)
        for secret in ("13912345678", "13811112222", "oWx_SECRET_A", "oWx_SECRET_B",
                       "老王", "内部备注", "staff-internal-id"):
            assert secret not in dumped, (secret, view)


async def test_staff_list_filters(store, clock):
    a = (await store.create(report(pollution_type="air", location_text="一"), "m1")).ticket.ticket_id
    b = (await store.create(report(pollution_type="noise", location_text="二"), "m2")).ticket.ticket_id
    clock.advance(days=1)
    c = (await store.create(report(pollution_type="water", description="发现死鱼", location_text="三"), "m3")).ticket.ticket_id
    d = (await store.create(report(pollution_type="air", location_text="四"), "m4")).ticket.ticket_id
    await store.change_status(d, Status.PROCESSING, "staff")

    ids = lambda ts: [t.ticket_id for t in ts]  # noqa: E731
    assert ids(await store.list()) == [d, c, b, a]
    assert ids(await store.list(pollution_type="air")) == [d, a]
    assert ids(await store.list(status=Status.ACCEPTED)) == [c, b, a]
    assert ids(await store.list(status=Status.PROCESSING, pollution_type="air")) == [d]
    assert ids(await store.list(urgent=True)) == [c]
    assert ids(await store.list(urgent=False)) == [d, b, a]
    assert ids(await store.list(date_from=date(2026, 11, 30))) == [d, c]
    assert ids(await store.list(date_to=date(2026, 11, 29))) == [b, a]
    assert ids(await store.list(date_from=date(2026, 11, 29), date_to=date(2026, 11, 29),
                                pollution_type="air")) == [a]
    assert ids(await store.list(limit=2, offset=1)) == [c, b]
    assert await store.list(status=Status.CLOSED) == []


async def test_list_by_reporter_newest_first(store, clock):
    a = (await store.create(report(location_text="一"), "m1")).ticket.ticket_id
    clock.advance(minutes=1)
    b = (await store.create(report(location_text="二"), "m2")).ticket.ticket_id
    await store.create(report(reporter="someone-else", location_text="三"), "m3")
    assert [t.ticket_id for t in await store.list_by_reporter("oWx_citizen_A")] == [b, a]
    assert await store.list_by_reporter("nobody") == []
    assert await store.get("HB209901010001") is None


# --- Redis unreachable ----------------------------------------------------------------------

def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_unreachable_redis_raises_store_unavailable_quickly(keys):
    settings = Settings(redis_url=f"redis://127.0.0.1:{_closed_port()}/0")
    client = create_redis(settings, connect_timeout=0.5, socket_timeout=0.5)
    s = TicketStore(client, keys)
    t0 = time.monotonic()
    with pytest.raises(StoreUnavailable, match="unreachable"):
        await s.create(report(), "m1")
    assert time.monotonic() - t0 < 2.0
    with pytest.raises(StoreUnavailable):
        await s.get("HB202611290001")
    with pytest.raises(StoreUnavailable):
        await s.read_queue("staff")
    await client.close()


async def test_silent_redis_times_out_as_store_unavailable(keys):
    """A server that accepts connections but never answers (hung, overloaded)."""
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = create_redis(Settings(redis_url=f"redis://127.0.0.1:{port}/0"),
                          connect_timeout=0.5, socket_timeout=0.5)
    s = TicketStore(client, keys)
    t0 = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await s.create(report(), "m1")
    assert time.monotonic() - t0 < 3.0
    await client.close()
    server.close()
