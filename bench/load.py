"""Closed-loop load: N simulated users, each a sequential conversation with
think time between messages, for a bounded duration (and message count).

With more than one path (the WeChat gateway and Rasa's REST channel), each
user holds every conversation once through each path, one after the other
(which path goes first alternates): both paths get the same messages, and at
every moment about half the users are on each, so both are measured under
the same load and the same background noise of the machine, at the same time."""
from __future__ import annotations

import asyncio
import random
import re
import time

from bench import mix
from bench.stats import Sample

TICKET_RE = re.compile(r"HB\d{12}")


async def user_loop(paths: list, level: int, index: int, seed: int, deadline: float, started: float,
                    think: tuple[float, float], max_messages: int, out: list[Sample]) -> None:
    rng = random.Random(seed * 1000 + index)
    n = 0
    conv_no = 0
    while time.monotonic() < deadline and n < max_messages:
        conv = mix.pick(rng, seed * 100_000 + index * 1000 + conv_no)
        # The same conversation through every path, in turns (who goes first alternates).
        first = (index + conv_no) % len(paths)
        conv_no += 1
        conv_id = f"{level}-{index}-{conv_no}"
        for path in paths[first:] + paths[:first]:
            n += await converse(path, conv, conv_id, level, started, deadline, think, rng, out)
            if time.monotonic() >= deadline:
                return


async def converse(path, conv: mix.Conversation, conv_id: str, level: int, started: float, deadline: float,
                   think: tuple[float, float], rng: random.Random, out: list[Sample]) -> int:
    """One conversation as a new user of `path`; returns the number of messages sent."""
    sender = path.new_user()
    ticket = ""
    for i, turn in enumerate(conv.turns):
        if time.monotonic() >= deadline:
            return i
        text = turn.text.replace("{ticket}", ticket or "我的举报")
        t = time.monotonic() - started
        a = await path.send(sender, text)
        ok = not a.error and mix_ok(a.text, turn.expect)
        out.append(Sample(path.name, level, conv.kind, i, t, a.http_s, a.latency_s, a.passive, a.late, ok,
                          a.error, "" if ok else f"{text} -> {a.text[:60]}", conv_id))
        m = TICKET_RE.search(a.text)
        if m:
            ticket = m.group(0)
        await asyncio.sleep(rng.uniform(*think))
        if not ok:
            return i + 1  # the conversation went somewhere else: start a new one
    return len(conv.turns)


def mix_ok(answer: str, expect: tuple[str, ...]) -> bool:
    return any(e in answer for e in expect)


async def run_level(paths: list, users: int, duration_s: float, think: tuple[float, float], seed: int,
                    max_messages_per_user: int = 10_000) -> tuple[list[Sample], float]:
    """Run `users` users for `duration_s`; returns the samples and the elapsed time."""
    out: list[Sample] = []
    started = time.monotonic()
    deadline = started + duration_s

    # Users start spread over the first think time, as people do, not all in the same millisecond.
    async def staggered(i: int) -> None:
        await asyncio.sleep(random.Random(seed + i).uniform(0, think[1]))
        await user_loop(paths, users, i, seed, deadline, started, think, max_messages_per_user, out)

    await asyncio.gather(*[staggered(i) for i in range(users)])
    return out, time.monotonic() - started


async def warm_up(path, seed: int = 7) -> None:
    """Every conversation kind once (not measured): the first call of each
    action pays for imports and caches."""
    rng = random.Random(seed)
    builders = [b for _, b in mix.KINDS]
    for b in builders:
        conv = mix.complaint(rng, 9999) if b is None else b(rng)
        sender = path.new_user()
        ticket = ""
        for turn in conv.turns:
            a = await path.send(sender, turn.text.replace("{ticket}", ticket or "我的举报"))
            m = TICKET_RE.search(a.text)
            ticket = m.group(0) if m else ticket
            await asyncio.sleep(0.05)
