"""Whole conversations through the real gateway, Rasa (trained model), the action
server and Redis: what a person in the terminal or web chat would see."""
from __future__ import annotations

import re
import uuid

import aiohttp
import pytest


async def say(stack, sender: str, text: str) -> str:
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{stack.gateway_url}/api/chat", json={"sender": sender, "text": text}) as r:
            assert r.status == 200, await r.text()
            body = await r.json()
    return "\n".join(m["text"] for m in body["messages"])


def new_sender() -> str:
    return f"web-{uuid.uuid4().hex[:10]}"


async def test_healthz_reports_redis_and_rasa(stack):
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{stack.gateway_url}/healthz") as r:
            body = await r.json()
    assert r.status == 200 and body["redis"] is True and body["rasa"] is True


async def test_greeting_lists_the_services(stack):
    reply = await say(stack, new_sender(), "你好")
    assert "环评" in reply and "举报" in reply


async def test_materials_question_without_type_then_a_digit(stack):
    u = new_sender()
    first = await say(stack, u, "办环评要交哪些材料")
    assert "1" in first and "报告书" in first and "不确定" in first
    answer = await say(stack, u, "2")
    assert "报告表" in answer and "所需材料" in answer and "下一步" in answer


async def test_materials_question_with_type_answers_at_once(stack):
    answer = await say(stack, new_sender(), "环评报告书需要准备什么材料")
    assert "所需材料" in answer and "报告书" in answer


async def test_unsure_goes_to_category_guidance(stack):
    u = new_sender()
    await say(stack, u, "环评要准备啥资料")
    reply = await say(stack, u, "不确定")
    assert "规模" in reply


async def test_complaint_to_ticket(stack):
    u = new_sender()
    first = await say(stack, u, "我们村边上的化工厂天天晚上冒黑烟")
    assert "地点" in first  # the first sentence already gave the category and the description
    assert "什么时候" in await say(stack, u, "城关镇东方村化工厂")
    assert "手机号" in await say(stack, u, "每天晚上十点以后")
    summary = await say(stack, u, "13912345678")
    assert "请核对" in summary and "139****5678" in summary
    done = await say(stack, u, "确认")
    m = re.search(r"HB\d{12}", done)
    assert m, done
    status = await say(stack, u, f"{m.group(0)} 处理得怎么样了")
    assert "已受理" in status


async def test_cancel_inside_the_complaint_form(stack):
    u = new_sender()
    await say(stack, u, "我要举报")
    reply = await say(stack, u, "取消")
    assert "已取消" in reply
    assert "环评" in await say(stack, u, "你好")


async def test_bad_input_gets_a_clear_400(stack):
    async with aiohttp.ClientSession() as s:
        for body in ("not json", '{"sender": "x"}', '{"sender": "bad id!", "text": "hi"}', "[]"):
            async with s.post(f"{stack.gateway_url}/api/chat", data=body,
                              headers={"Content-Type": "application/json"}) as r:
                assert r.status == 400
                assert "error" in await r.json()
