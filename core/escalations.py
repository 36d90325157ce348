"""Conversation escalations and human mode, in Redis (redis.asyncio).

An escalation is a conversation the bot hands to a person: who (sender,
channel), why (reason, detail), what the user was talking about (the detected
intent, any ticket), the transcript from Rasa's tracker, and whether it is
urgent. Keys: core/keys.py (esc:*, handoff:*, outbox:*).

Human mode has ONE source of truth: the hash handoff:{sender}. While it exists
with paused=1 the gateway sends the sender's messages to the staff inbox
(esc:msgs:{id}) instead of Rasa; it is removed when staff resolve or hand back
the escalation, or when the gateway times it out (HUMAN_MODE_TTL_S after the
last staff activity). An escalation opened with pause=False (an urgent
complaint while the bot is still taking it down) has paused=0 until an agent
claims it. Rasa's own conversation is never paused, so there is nothing to
keep in sync.

Every state change (open, claim, reply, close, time out) is one Lua script, so
two agents cannot claim the same conversation and a time-out cannot race a
staff reply.
"""
from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Iterable, Optional, Sequence

from core.handoff_rules import DEFAULT_HOURS, OfficeHours, first_office_hours
from core.keys import Keys

WAITING, CLAIMED, RESOLVED, HANDED_BACK, TIMED_OUT = "waiting", "claimed", "resolved", "handed_back", "timed_out"
OPEN_STATUSES = (WAITING, CLAIMED)
STATUS_LABELS = {WAITING: "等待接入", CLAIMED: "处理中", RESOLVED: "已解决",
                 HANDED_BACK: "已交回机器人", TIMED_OUT: "超时交回机器人"}
URGENT_BONUS = 1e10          # subtracted from the queue score of urgent escalations
HANDOFF_GC_S = 30 * 86400    # safety expiry of handoff:{sender}; the gateway times out far earlier
RECENT_TTL_S = 3600
RECENT_KEEP = 3
OUTBOX_TTL_S = 7 * 86400
TRANSCRIPT_LIMIT = 60

TICKET_RE = re.compile(r"HB\d{12}")


# --- pure helpers: Rasa tracker events -> transcript ---------------------------
def _user_text(ev: dict) -> str:
    meta = ev.get("metadata") or {}
    text = meta.get("original_text") or ev.get("text") or ""
    if text.startswith("/send_image"):
        return "[图片]"
    if text.startswith("/send_location"):
        ents = (ev.get("parse_data") or {}).get("entities") or []
        label = next((e.get("value") for e in ents if e.get("entity") == "location_label"), "")
        return f"[位置] {label}".strip()
    return text


def transcript_from_events(events: Iterable[dict], limit: int = TRANSCRIPT_LIMIT) -> list[dict]:
    """User and bot messages from Rasa tracker events, oldest first, the last `limit`."""
    out: list[dict] = []
    for ev in events or []:
        kind = ev.get("event")
        if kind == "user":
            intent = ((ev.get("parse_data") or {}).get("intent") or {}).get("name") or ""
            out.append({"role": "user", "text": _user_text(ev), "intent": intent,
                        "at": ev.get("timestamp")})
        elif kind == "bot" and ev.get("text"):
            out.append({"role": "bot", "text": ev["text"], "at": ev.get("timestamp")})
    return out[-limit:]


def last_intent(events: Sequence[dict], skip: Sequence[str] = ("request_human", "nlu_fallback")) -> str:
    """The most recent intent that says what the user wanted (not "a person" or "not understood")."""
    latest = ""
    for ev in reversed(list(events or [])):
        if ev.get("event") != "user":
            continue
        name = ((ev.get("parse_data") or {}).get("intent") or {}).get("name") or ""
        latest = latest or name
        if name and name not in skip:
            return name
    return latest


def last_ticket_id(events: Sequence[dict]) -> str:
    """The last ticket number set in a slot or said by either side, "" if none."""
    for ev in reversed(list(events or [])):
        kind = ev.get("event")
        if kind == "slot" and isinstance(ev.get("value"), str) and TICKET_RE.fullmatch(ev["value"]):
            return ev["value"]
        if kind in ("user", "bot"):
            found = TICKET_RE.findall(ev.get("text") or "")
            if found:
                return found[-1]
    return ""


async def fetch_transcript(session, rasa_url: str, sender: str, token: str = "",
                           timeout_s: float = 5.0) -> list[dict]:
    """The transcript from Rasa's HTTP API (GET /conversations/{sender}/tracker); [] when unreachable."""
    import aiohttp

    from urllib.parse import quote

    url = f"{rasa_url.rstrip('/')}/conversations/{quote(sender, safe='')}/tracker"
    params = {"token": token} if token else None
    try:
        async with session.get(url, params=params, timeout=aiohttp.ClientTimeout(total=timeout_s)) as r:
            if r.status != 200:
                return []
            data = await r.json(content_type=None)
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
        return []
    return transcript_from_events(data.get("events") or []) if isinstance(data, dict) else []


def load_office_hours(knowledge_dir) -> OfficeHours:
    """Office hours from knowledge/contacts.yml through core/knowledge.py (the
    technical service unit's, else the approval window's); the defaults
    (工作日8:30-12:00、14:30-17:30) when the knowledge cannot be loaded."""
    try:
        from core.knowledge import load_knowledge

        contacts = load_knowledge(knowledge_dir).contacts
    except Exception:  # noqa: BLE001 - missing or malformed knowledge must not stop a handoff
        return DEFAULT_HOURS
    texts = [contacts[c].office_hours.value for c in ("tech_service", "approval_window") if c in contacts]
    texts += [c.office_hours.value for c in contacts.values()]
    return first_office_hours(texts)


# --- the model ----------------------------------------------------------------------
@dataclass
class Escalation:
    esc_id: str
    sender: str
    channel: str
    reason: str
    detail: str = ""
    intent: str = ""
    ticket_id: str = ""
    urgent: bool = False
    status: str = WAITING
    created_ts: float = 0.0
    claimed_by: str = ""
    claimed_ts: float = 0.0
    closed_ts: float = 0.0
    closed_by: str = ""
    last_user_ts: float = 0.0
    unread: int = 0
    transcript: list = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def waiting_s(self, now: float) -> float:
        end = now if self.is_open else (self.closed_ts or now)
        return max(0.0, end - self.created_ts)

    def to_hash(self) -> dict[str, str]:
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "transcript":
                out[f.name] = json.dumps(v, ensure_ascii=False)
            elif isinstance(v, bool):
                out[f.name] = "1" if v else "0"
            else:
                out[f.name] = str(v)
        return out

    @classmethod
    def from_hash(cls, raw: dict) -> "Escalation":
        kw: dict = {}
        for f in fields(cls):
            if f.name not in raw:
                continue
            v = raw[f.name]
            if f.name == "transcript":
                try:
                    kw[f.name] = json.loads(v or "[]")
                except ValueError:
                    kw[f.name] = []
            elif f.type in ("bool", bool):
                kw[f.name] = v == "1"
            elif f.type in ("float", float):
                kw[f.name] = float(v or 0)
            elif f.type in ("int", int):
                kw[f.name] = int(v or 0)
            else:
                kw[f.name] = v
        return cls(**kw)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class OpenResult:
    escalation: Escalation
    created: bool
    ahead: int  # open escalations before this one in the queue


@dataclass
class HumanMode:
    """The state of handoff:{sender}: present = the conversation belongs to staff."""
    esc_id: str
    since: float
    active: float
    notified: bool
    paused: bool   # False: an escalation staff watch while the bot still answers (until claimed)

    def expired(self, now: float, ttl_s: float) -> bool:
        return now - self.active >= ttl_s

    @classmethod
    def from_hash(cls, raw: dict) -> Optional["HumanMode"]:
        if not raw or not raw.get("esc"):
            return None
        return cls(raw["esc"], float(raw.get("since") or 0), float(raw.get("active") or 0),
                   raw.get("notified") == "1", raw.get("paused", "1") == "1")


class EscalationError(Exception):
    """A staff action the escalation's state does not allow; `code` says why."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


# --- Lua ---------------------------------------------------------------------------------
_OPEN_LUA = r"""
-- KEYS: 1 handoff:{sender} 2 esc:seq 3 esc:queue 4 handoff:active 5 handoff:recent:{sender}
-- ARGV: 1 esc key prefix 2 now 3 urgent 4 sender 5 gc ttl 6 pause ('1': human mode now) 7.. field/value pairs
local function pause()
  redis.call('HSET', KEYS[1], 'paused', '1', 'active', ARGV[2], 'notified', '0')
  redis.call('ZADD', KEYS[4], ARGV[2], ARGV[4])
  redis.call('DEL', KEYS[5])
end
local cur = redis.call('HGET', KEYS[1], 'esc')
if cur then
  local ek = ARGV[1] .. cur
  local st = redis.call('HGET', ek, 'status')
  if st == 'waiting' or st == 'claimed' then
    if ARGV[3] == '1' and redis.call('HGET', ek, 'urgent') ~= '1' then
      redis.call('HSET', ek, 'urgent', '1')
      local created = tonumber(redis.call('HGET', ek, 'created_ts'))
      redis.call('ZADD', KEYS[3], created - 1e10, cur)
    end
    if ARGV[6] == '1' and redis.call('HGET', KEYS[1], 'paused') ~= '1' then pause() end
    return {'existing', cur}
  end
end
local id = 'E' .. redis.call('INCR', KEYS[2])
local ek = ARGV[1] .. id
redis.call('HSET', ek, 'esc_id', id, unpack(ARGV, 7))
local score = tonumber(ARGV[2])
if ARGV[3] == '1' then score = score - 1e10 end
redis.call('ZADD', KEYS[3], score, id)
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'esc', id, 'since', ARGV[2], 'active', ARGV[2], 'notified', '0', 'paused', '0')
redis.call('EXPIRE', KEYS[1], ARGV[5])
if ARGV[6] == '1' then pause() end
return {'created', id}
"""

_CLAIM_LUA = r"""
-- KEYS: 1 esc:{id} 2 handoff:{sender} 3 handoff:active   ARGV: 1 agent 2 now 3 id 4 sender 5 gc ttl
-- Claiming takes the conversation: human mode starts (if the escalation was only watched) or is refreshed.
local v = redis.call('HMGET', KEYS[1], 'status', 'claimed_by')
if not v[1] then return {'missing', ''} end
if v[1] == 'claimed' then
  if v[2] == ARGV[1] then return {'ok', v[2]} end
  return {'taken', v[2] or ''}
end
if v[1] ~= 'waiting' then return {'closed', v[1]} end
redis.call('HSET', KEYS[1], 'status', 'claimed', 'claimed_by', ARGV[1], 'claimed_ts', ARGV[2])
local cur = redis.call('HGET', KEYS[2], 'esc')
if not cur then
  redis.call('HSET', KEYS[2], 'esc', ARGV[3], 'since', ARGV[2], 'notified', '0')
  redis.call('EXPIRE', KEYS[2], ARGV[5])
  cur = ARGV[3]
end
if cur == ARGV[3] then
  if redis.call('HGET', KEYS[2], 'paused') ~= '1' then
    redis.call('HSET', KEYS[2], 'paused', '1', 'notified', '0')
  end
  redis.call('HSET', KEYS[2], 'active', ARGV[2])
  redis.call('ZADD', KEYS[3], ARGV[2], ARGV[4])
end
return {'ok', ARGV[1]}
"""

_REPLY_LUA = r"""
-- KEYS: 1 esc:{id} 2 esc:msgs:{id} 3 handoff:{sender} 4 handoff:active
-- ARGV: 1 agent 2 now 3 message JSON 4 id 5 sender
local v = redis.call('HMGET', KEYS[1], 'status', 'claimed_by')
if not v[1] then return {'missing', ''} end
if v[1] ~= 'claimed' then return {'not_claimed', v[1]} end
if v[2] ~= ARGV[1] then return {'not_yours', v[2] or ''} end
redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('HSET', KEYS[1], 'unread', '0')
if redis.call('HGET', KEYS[3], 'esc') == ARGV[4] and redis.call('HGET', KEYS[3], 'paused') == '1' then
  redis.call('HSET', KEYS[3], 'active', ARGV[2])
  redis.call('ZADD', KEYS[4], ARGV[2], ARGV[5])
end
return {'ok', ''}
"""

_CLOSE_LUA = r"""
-- KEYS: 1 esc:{id} 2 esc:queue 3 esc:closed 4 handoff:{sender} 5 handoff:active 6 handoff:recent:{sender}
-- ARGV: 1 outcome 2 actor 3 now 4 id 5 sender 6 required claimer ('' = anyone)
local v = redis.call('HMGET', KEYS[1], 'status', 'claimed_by')
if not v[1] then return {'missing', ''} end
if v[1] ~= 'waiting' and v[1] ~= 'claimed' then return {'closed', v[1]} end
if ARGV[6] ~= '' and v[2] ~= ARGV[6] then return {'not_yours', v[2] or ''} end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'closed_ts', ARGV[3], 'closed_by', ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
if redis.call('HGET', KEYS[4], 'esc') == ARGV[4] then
  redis.call('DEL', KEYS[4])
  redis.call('ZREM', KEYS[5], ARGV[5])
end
redis.call('DEL', KEYS[6])
return {'ok', v[1]}
"""

_TIMEOUT_LUA = r"""
-- KEYS: 1 handoff:{sender} 2 handoff:active 3 esc:queue 4 esc:closed 5 handoff:recent:{sender}
-- ARGV: 1 sender 2 now 3 ttl 4 esc key prefix
local h = redis.call('HMGET', KEYS[1], 'esc', 'active', 'paused')
if (not h[1]) or h[3] ~= '1' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return {'none', ''}
end
if tonumber(h[2] or '0') + tonumber(ARGV[3]) > tonumber(ARGV[2]) then return {'active', h[1]} end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[5])
local ek = ARGV[4] .. h[1]
local st = redis.call('HGET', ek, 'status')
if st == 'waiting' or st == 'claimed' then
  redis.call('HSET', ek, 'status', 'timed_out', 'closed_ts', ARGV[2], 'closed_by', 'system')
  redis.call('ZREM', KEYS[3], h[1])
  redis.call('ZADD', KEYS[4], ARGV[2], h[1])
  return {'timed_out', h[1]}
end
return {'stale', h[1]}
"""


class EscalationStore:
    def __init__(self, redis, keys: Keys, clock=time.time) -> None:
        """`redis`: redis.asyncio client with decode_responses=True (core/redis_conn.py)."""
        self.r = redis
        self.keys = keys
        self.clock = clock
        self._open = redis.register_script(_OPEN_LUA)
        self._claim = redis.register_script(_CLAIM_LUA)
        self._reply = redis.register_script(_REPLY_LUA)
        self._close = redis.register_script(_CLOSE_LUA)
        self._timeout = redis.register_script(_TIMEOUT_LUA)

    def _esc_prefix(self) -> str:
        return self.keys.esc("")

    # --- open ----------------------------------------------------------------
    async def open(self, sender: str, channel: str, reason: str, detail: str = "", intent: str = "",
                   ticket_id: str = "", urgent: bool = False,
                   transcript: Optional[list] = None, pause: bool = True) -> OpenResult:
        """Open an escalation; with `pause` the conversation goes into human mode
        now, otherwise when an agent claims it (the bot keeps answering until then).

        When the sender already has an open one, it is returned (made urgent if
        this one is, paused if this one pauses) and nothing else changes.
        """
        now = self.clock()
        esc = Escalation(esc_id="", sender=sender, channel=channel, reason=reason, detail=detail[:500],
                         intent=intent, ticket_id=ticket_id, urgent=urgent, created_ts=now,
                         transcript=list(transcript or [])[-TRANSCRIPT_LIMIT:])
        fields_ = esc.to_hash()
        fields_.pop("esc_id")
        k = self.keys
        outcome, esc_id = await self._open(
            keys=[k.handoff(sender), k.esc_seq(), k.esc_queue(), k.handoff_active(), k.handoff_recent(sender)],
            args=[self._esc_prefix(), repr(now), "1" if urgent else "0", sender, HANDOFF_GC_S,
                  "1" if pause else "0"] + [x for kv in fields_.items() for x in kv])
        if outcome == "created":  # observability: escalations opened by reason (bot/metrics.py)
            await self.r.hincrby(k.stats_escalations_opened(), reason, 1)
        stored = await self.get(esc_id)
        rank = await self.r.zrank(k.esc_queue(), esc_id)
        return OpenResult(stored, outcome == "created", int(rank or 0))

    # --- read ----------------------------------------------------------------
    async def get(self, esc_id: str) -> Optional[Escalation]:
        raw = await self.r.hgetall(self.keys.esc(esc_id))
        return Escalation.from_hash(raw) if raw else None

    async def _many(self, ids: Sequence[str]) -> list[Escalation]:
        if not ids:
            return []
        async with self.r.pipeline(transaction=False) as pipe:
            for i in ids:
                pipe.hgetall(self.keys.esc(i))
            raws = await pipe.execute()
        return [Escalation.from_hash(r) for r in raws if r]

    async def list_open(self) -> list[Escalation]:
        """Waiting and claimed escalations: urgent first, then the longest wait."""
        return await self._many(await self.r.zrange(self.keys.esc_queue(), 0, -1))

    async def list_closed(self, limit: int = 50) -> list[Escalation]:
        return await self._many(await self.r.zrevrange(self.keys.esc_closed(), 0, limit - 1))

    async def open_counts(self) -> dict:
        """{"open": n, "urgent": n} for notifications (one round trip)."""
        async with self.r.pipeline(transaction=False) as pipe:
            pipe.zcard(self.keys.esc_queue())
            pipe.zcount(self.keys.esc_queue(), "-inf", 0)
            total, urgent = await pipe.execute()
        return {"open": int(total), "urgent": int(urgent)}

    async def messages(self, esc_id: str) -> list[dict]:
        return [json.loads(m) for m in await self.r.lrange(self.keys.esc_msgs(esc_id), 0, -1)]

    async def human_mode(self, sender: str) -> Optional[HumanMode]:
        return HumanMode.from_hash(await self.r.hgetall(self.keys.handoff(sender)))

    # --- the gateway's per-message step ------------------------------------------
    async def check_and_remember(self, sender: str, normalised: str) -> tuple[Optional[HumanMode], list[str]]:
        """One round trip: the sender's human mode and previous normalised texts
        (newest first), and remember this text for the repeat trigger."""
        k = self.keys
        async with self.r.pipeline(transaction=False) as pipe:
            pipe.hgetall(k.handoff(sender))
            pipe.lrange(k.handoff_recent(sender), 0, RECENT_KEEP - 2)
            if normalised:
                pipe.lpush(k.handoff_recent(sender), normalised)
                pipe.ltrim(k.handoff_recent(sender), 0, RECENT_KEEP - 1)
                pipe.expire(k.handoff_recent(sender), RECENT_TTL_S)
            res = await pipe.execute()
        return HumanMode.from_hash(res[0]), list(res[1])

    async def to_inbox(self, mode: HumanMode, sender: str, message: dict) -> bool:
        """Store a user's message for staff; True when the user has not yet been told it was forwarded."""
        now = self.clock()
        msg = dict(message, role="user", at=now)
        k = self.keys
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.rpush(k.esc_msgs(mode.esc_id), json.dumps(msg, ensure_ascii=False))
            pipe.hincrby(k.esc(mode.esc_id), "unread", 1)
            pipe.hset(k.esc(mode.esc_id), "last_user_ts", repr(now))
            pipe.hget(k.handoff(sender), "notified")
            pipe.hset(k.handoff(sender), "notified", "1")
            res = await pipe.execute()
        return res[3] != "1"

    # --- staff actions ----------------------------------------------------------------
    async def _sender(self, esc_id: str) -> str:
        sender = await self.r.hget(self.keys.esc(esc_id), "sender")
        if sender is None:
            raise EscalationError("missing", esc_id)
        return sender

    async def claim(self, esc_id: str, agent: str) -> Escalation:
        """Take the conversation; only one agent at a time (EscalationError "taken" names the other)."""
        sender = await self._sender(esc_id)
        k = self.keys
        code, who = await self._claim(keys=[k.esc(esc_id), k.handoff(sender), k.handoff_active()],
                                      args=[agent, repr(self.clock()), esc_id, sender, HANDOFF_GC_S])
        if code != "ok":
            raise EscalationError(code, who)
        return await self.get(esc_id)

    async def add_message(self, esc_id: str, role: str, text: str, **extra) -> None:
        msg = dict(extra, role=role, text=text, at=self.clock())
        await self.r.rpush(self.keys.esc_msgs(esc_id), json.dumps(msg, ensure_ascii=False))

    async def reply(self, esc_id: str, agent: str, text: str) -> dict:
        """Record a staff reply (the caller delivers it); the agent must hold the claim."""
        sender = await self._sender(esc_id)
        now = self.clock()
        msg = {"role": "staff", "by": agent, "text": text, "at": now}
        k = self.keys
        code, who = await self._reply(
            keys=[k.esc(esc_id), k.esc_msgs(esc_id), k.handoff(sender), k.handoff_active()],
            args=[agent, repr(now), json.dumps(msg, ensure_ascii=False), esc_id, sender])
        if code != "ok":
            raise EscalationError(code, who)
        return msg

    async def mark_read(self, esc_id: str) -> None:
        await self.r.hset(self.keys.esc(esc_id), "unread", "0")

    async def close(self, esc_id: str, outcome: str, actor: str, require_claimer: bool = True) -> Escalation:
        """Resolve or hand back: human mode ends, the bot answers again.

        With `require_claimer` only the agent holding the claim may close it.
        """
        if outcome not in (RESOLVED, HANDED_BACK):
            raise ValueError(f"unknown outcome {outcome!r}")
        sender = await self._sender(esc_id)
        k = self.keys
        code, info = await self._close(
            keys=[k.esc(esc_id), k.esc_queue(), k.esc_closed(), k.handoff(sender), k.handoff_active(),
                  k.handoff_recent(sender)],
            args=[outcome, actor, repr(self.clock()), esc_id, sender, actor if require_claimer else ""])
        if code != "ok":
            raise EscalationError(code, info)
        return await self.get(esc_id)

    async def time_out(self, sender: str, ttl_s: float) -> Optional[str]:
        """End human mode when its time is up; the escalation id when it timed out now."""
        k = self.keys
        code, esc_id = await self._timeout(
            keys=[k.handoff(sender), k.handoff_active(), k.esc_queue(), k.esc_closed(), k.handoff_recent(sender)],
            args=[sender, repr(self.clock()), repr(float(ttl_s)), self._esc_prefix()])
        return esc_id if code == "timed_out" else None

    async def due_senders(self, ttl_s: float, limit: int = 100) -> list[str]:
        """Senders whose human mode has had no staff activity for `ttl_s`."""
        return await self.r.zrangebyscore(self.keys.handoff_active(), "-inf", repr(self.clock() - ttl_s),
                                          start=0, num=limit)

    # --- web chat outbox -------------------------------------------------------------------
    async def push_outbox(self, sender: str, text: str, by: str = "staff") -> None:
        k = self.keys.outbox(sender)
        msg = json.dumps({"text": text, "by": by, "at": self.clock()}, ensure_ascii=False)
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.rpush(k, msg)
            pipe.expire(k, OUTBOX_TTL_S)
            await pipe.execute()

    async def take_outbox(self, sender: str) -> list[dict]:
        k = self.keys.outbox(sender)
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.lrange(k, 0, -1)
            pipe.delete(k)
            items, _ = await pipe.execute()
        return [json.loads(i) for i in items]
