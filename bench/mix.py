"""The message mix of the benchmark: what simulated users say (pure, no I/O).

A conversation is a list of turns; each turn is what the user types and a
text the bot's answer must contain (so the benchmark also notices wrong
answers, not only slow ones). `{ticket}` in a turn is replaced by the ticket
number the conversation got earlier. Weights follow what the bureau expects
its account to see: mostly consultation questions, one conversation in five
a complaint, a few status checks.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

VILLAGES = ["东河村", "西山村", "南岗村", "北塘村", "青石村", "柳林村", "白沙村", "红旗村", "新华村", "桃源村"]


@dataclass(frozen=True)
class Turn:
    text: str
    expect: tuple[str, ...]   # the answer must contain one of these


@dataclass(frozen=True)
class Conversation:
    kind: str
    turns: tuple[Turn, ...]


def _t(text: str, *expect: str) -> Turn:
    return Turn(text, expect)


def greeting(rng: random.Random) -> Conversation:
    hello = rng.choice(["你好", "您好", "在吗", "你好呀"])
    return Conversation("greeting", (_t(hello, "智能助手", "您好"), _t(rng.choice(["谢谢", "好的谢谢"]), "不客气")))


def materials_with_type(rng: random.Random) -> Conversation:
    text = rng.choice(["环评报告书需要准备什么材料", "报告表要交哪些材料", "环评登记表要准备什么资料",
                       "竣工环保验收需要什么材料"])
    return Conversation("materials_typed", (_t(text, "所需材料", "材料"),))


def materials_then_digit(rng: random.Random) -> Conversation:
    first = rng.choice(["办环评要交哪些材料", "环评要准备啥资料", "环评要交什么材料"])
    digit = str(rng.randint(1, 4))
    return Conversation("materials_digit", (_t(first, "回复数字"), _t(digit, "所需材料", "材料")))


def time_limit(rng: random.Random) -> Conversation:
    text = rng.choice(["报告表审批要多少天", "登记表多久能办好", "报告书审批时限是多久"])
    return Conversation("time_limit", (_t(text, "办理时限", "时限"),))


def process(rng: random.Random) -> Conversation:
    first = rng.choice(["环评审批流程是怎样的", "环评怎么办理", "环评审批要走哪些程序"])
    digit = str(rng.randint(1, 4))
    return Conversation("process", (_t(first, "回复数字", "流程", "办理"), _t(digit, "流程", "办理", "材料", "时限")))


def category(rng: random.Random) -> Conversation:
    text = rng.choice(["建一个养猪场要做什么环评", "开个汽修厂要做哪类环评", "建设加油站要做报告书还是报告表"])
    return Conversation("category", (_t(text, "环评类别", "类别", "报告", "登记"),))


def complaint(rng: random.Random, n: int) -> Conversation:
    village = VILLAGES[n % len(VILLAGES)]
    start = rng.choice([f"{village}边上的化工厂天天晚上冒黑烟", f"{village}有个砖厂一直冒黑烟",
                        f"{village}的养猪场粪水直接排到河里"])
    return Conversation("complaint", (
        _t(start, "地点"),
        _t(f"城关镇{village}{n}组路口", "什么时候"),
        _t(rng.choice(["每天晚上十点以后", "昨天下午", "现在还在"]), "手机号"),
        _t(f"139{n % 10000:04d}{rng.randint(1000, 9999)}", "请核对"),
        _t("确认", "工单编号", "已合并到工单", "已记录"),
        _t("{ticket} 处理得怎么样了", "状态", "已受理", "工单"),
    ))


def status_check(rng: random.Random) -> Conversation:
    return Conversation("status", (_t(rng.choice(["我的举报", "查一下我的举报进度"]), "举报"),))


KINDS = [  # (weight, builder)
    (15, greeting), (15, materials_with_type), (15, materials_then_digit), (10, time_limit),
    (10, process), (10, category), (20, None), (5, status_check),
]


def pick(rng: random.Random, n: int) -> Conversation:
    """The n-th conversation of a user, drawn with the weights above."""
    total = sum(w for w, _ in KINDS)
    x = rng.uniform(0, total)
    for weight, build in KINDS:
        x -= weight
        if x <= 0:
            return complaint(rng, n) if build is None else build(rng)
    return greeting(rng)


def conversations(seed: int, count: int) -> list[Conversation]:
    """A reproducible sequence of conversations (the same for both paths)."""
    rng = random.Random(seed)
    return [pick(rng, seed * 1000 + i) for i in range(count)]
