"""Closed-loop load: N simulated users, each a sequential conversation with
think time between messages, for a bounded duration (and message count)."""
from __future__ import annotations

import asyncio
import random
import re
import time

from bench import mix
from bench.stats import Sample

TICKET_RE = re.compile(r"HB\d{12}")


async def user_loop(path, level: int, index: int, seed: int, deadline: float, started: float,
                    think: tuple[float, float], max_messages: int, out: list[Sample]) -> None:
    rng = random.Random(seed * 1000 + index)
    n = 0
    conv_no = 0
    while time.monotonic() < deadline and n < max_messages:
        conv = mix.pick(rng, seed * 100_000 + index * 1000 + conv_no)
        conv_no += 1
        sender = path.new_user()
        ticket = ""
        for i, turn in enumerate(conv.turns):
            if time.monotonic() >= deadline or n >= max_messages:
                return
            text = turn.text.replace("{ticket}", ticket or "我的举报")
            t = time.monotonic() - started
            a = await path.send(sender, text)
            n += 1
            ok = not a.error and mix_ok(a.text, turn.expect)
            out.append(Sample(path.name, level, conv.kind, i, t, a.http_s, a.latency_s, a.passive, a.late, ok,
                              a.error, "" if ok else f"{text} -> {a.text[:60]}"))
            m = TICKET_RE.search(a.text)
            if m:
                ticket = m.group(0)
            await asyncio.sleep(rng.uniform(*think))
            if not ok:
                break  # the conversation went somewhere else: start a new one


def mix_ok(answer: str, expect: tuple[str, ...]) -> bool:
    return any(e in answer for e in expect)


async def run_level(path, users: int, duration_s: float, think: tuple[float, float], seed: int,
                    max_messages_per_user: int = 10_000) -> tuple[list[Sample], float]:
    """Run `users` users for `duration_s`; returns the samples and the elapsed time."""
    out: list[Sample] = []
    started = time.monotonic()
    deadline = started + duration_s
    # Users start spread over the first think time, as people do, not all in the same millisecond.
    async def staggered(i: int) -> None:
        await asyncio.sleep(random.Random(seed + i).uniform(0, think[1]))
        await user_loop(path, users, i, seed, deadline, started, think, max_messages_per_user, out)

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
