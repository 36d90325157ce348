"""The complaint ticket store (Redis, redis.asyncio).

Layout: see core/keys.py. Model, lifecycle and views: core/ticket_model.py.

create() is ONE Lua script, so everything it does is atomic and happens exactly
once per message:
  1. idempotency: the key ticket:idem:{channel}:{reporter}:{idem} is checked
     first and written last, in the same script; a retry (even a concurrent
     one) gets the ticket the first call produced and creates nothing;
  2. duplicate search: an open (已受理/处理中) ticket of the same pollution type,
     created within 72 h, within 500 m (GEOSEARCH) or at the same normalised
     place text; a match gets the new report appended to its history and
     evidence, is NOT queued again, and its id is returned as duplicate_of
     (if the new report is an emergency and the old ticket was not, the old
     ticket is escalated: flagged urgent and put on the urgent queue);
  3. otherwise: INCR of the day's counter -> HB{yyyymmdd}{seq:04d}, the hash,
     the indexes, the GEO entry, the place entry, the queue entry.
The script returns only after Redis has applied all of it; it reads
everything before its first write, so a bad input cannot leave half a ticket.

Hotline queue priority: two Streams, queue:urgent and queue:normal, each with
the consumer group "staff". read_queue() takes from queue:urgent first and only
fills the rest of `count` from queue:normal, so an emergency is always handed
out before any ordinary complaint. Urgent tickets also go into the
`tickets:escalated` sorted set (watched by staff consoles) until they are finished.

Every Redis error that means "cannot reach Redis" surfaces as StoreUnavailable,
so the caller can spool the complaint (core/spool.py) and still tell the
citizen it was recorded.
"""
from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass, replace
from datetime import date, datetime, time as dtime, timedelta
from typing import Callable, Dict, List, Optional, Sequence, Union

from redis import exceptions as rexc

from core.emergency import is_emergency
from core.keys import Keys
from core.places import place_keys
from core.ticket_model import (
    A_ESCALATED, A_EVIDENCE, A_LINKED_DUPLICATE, A_STAFF_REPLY, OPEN_STATUSES, SHANGHAI, STATUS_CODES,
    ComplaintReport, IllegalTransition, Status, Ticket, apply_status_change,
    duplicate_report_entry, encode, evidence_item, history_entry, iso, new_ticket,
    normalise_pollution_type, now_shanghai, owner_view, public_view,
)

__all__ = [
    "TicketStore", "CreateResult", "QueueItem", "StoreUnavailable", "TicketNotFound",
    "IllegalTransition", "ComplaintReport", "Ticket", "Status", "is_emergency",
    "public_view", "owner_view",
]

log = logging.getLogger(__name__)

DUPLICATE_RADIUS_M = 500
DUPLICATE_WINDOW_S = 72 * 3600
SEQ_TTL_S = 3 * 86400
IDEM_TTL_S = 30 * 86400
PLACE_TTL_S = 4 * 86400
QUEUE_GROUP = "staff"


class StoreUnavailable(RuntimeError):
    """Redis cannot be reached (refused, timed out, loading, read-only). Spool and retry."""


class TicketNotFound(KeyError):
    pass


@dataclass
class CreateResult:
    ticket: Ticket
    created: bool                 # a new ticket was written by this call
    duplicate_of: Optional[str]   # the open ticket this report was merged into
    replayed: bool = False        # the idem key was seen before; nothing was written


@dataclass
class QueueItem:
    stream: str                   # "urgent" | "normal"
    entry_id: str
    ticket_id: str
    urgent: bool
    pollution_type: str
    kind: str                     # "new" | "escalated"

    @property
    def ref(self) -> str:
        """A string that ack() accepts, e.g. for a JSON API: "urgent/1700000000000-0"."""
        return f"{self.stream}/{self.entry_id}"


_CREATE_LUA = r"""
-- KEYS: 1 idem, 2 day counter, 3 reporter index, 4 status index (accepted),
--       5 type index, 6 created index, 7 urgent index, 8 escalated (open urgent tickets),
--       9 queue:normal, 10 queue:urgent, 11 geo, 12 geo age zset, 13.. place keys
-- ARGV[1]: JSON parameters; ARGV[2..]: field/value pairs of the new ticket hash
local p = cjson.decode(ARGV[1])
local seen = redis.call('GET', KEYS[1])
if seen then
  local kind, id = string.match(seen, '^(%a+):(.+)$')
  return {'replay', kind, id, redis.call('HGETALL', p.ticket_prefix .. id)}
end

local since = tonumber(p.since)
local function open_recent(id)
  local v = redis.call('HMGET', p.ticket_prefix .. id, 'status', 'created_ts')
  if not v[1] then return false end
  local ts = tonumber(v[2])
  if (not ts) or ts < since then return false end
  for _, s in ipairs(p.open) do
    if v[1] == s then return true end
  end
  return false
end

-- 1. duplicate search (reads only, apart from pruning entries older than the window)
local dup = nil
if p.has_geo == 1 then
  local stale = redis.call('ZRANGEBYSCORE', KEYS[12], '-inf', '(' .. p.since)
  for _, id in ipairs(stale) do redis.call('ZREM', KEYS[11], id) end
  redis.call('ZREMRANGEBYSCORE', KEYS[12], '-inf', '(' .. p.since)
  local near = redis.call('GEOSEARCH', KEYS[11], 'FROMLONLAT', p.lon, p.lat,
                          'BYRADIUS', p.radius, 'm', 'ASC')
  for _, id in ipairs(near) do
    if open_recent(id) then dup = id; break end
  end
end
if not dup then
  for i = 13, #KEYS do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', '(' .. p.since)
    for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[i], p.since, '+inf')) do
      if open_recent(id) then dup = id; break end
    end
    if dup then break end
  end
end

local function append_json(arr, items)
  if items == '[]' then return arr end
  if (not arr) or arr == '' or arr == '[]' or arr == 'null' then return items end
  return string.sub(arr, 1, -2) .. ',' .. string.sub(items, 2)
end

-- 2. merge into the open ticket
if dup then
  local tk = p.ticket_prefix .. dup
  local cur = redis.call('HMGET', tk, 'history', 'evidence', 'urgent', 'created_ts', 'pollution_type')
  local history = append_json(cur[1], p.dup_history)
  if p.urgent == 1 and cur[3] ~= 'true' then
    history = append_json(history, p.escalate_history)
    redis.call('HSET', tk, 'urgent', 'true', 'urgent_reason', p.urgent_reason)
    redis.call('ZADD', KEYS[7], cur[4], dup)
    redis.call('ZADD', KEYS[8], p.now, dup)
    redis.call('XADD', KEYS[10], '*', 'ticket_id', dup, 'urgent', '1',
               'pollution_type', p.type, 'kind', 'escalated')
  end
  redis.call('HSET', tk, 'history', history, 'updated_at', p.updated_at,
             'evidence', append_json(cur[2], p.new_evidence))
  redis.call('ZADD', KEYS[3], p.now, dup)
  redis.call('SET', KEYS[1], 'dup:' .. dup, 'EX', p.idem_ttl)
  return {'duplicate', 'dup', dup, redis.call('HGETALL', tk)}
end

-- 3. a new ticket
local id = nil
for attempt = 1, 50 do
  local seq = redis.call('INCR', KEYS[2])
  if seq > 9999 then break end
  local candidate = 'HB' .. p.date .. string.format('%04d', seq)
  if redis.call('EXISTS', p.ticket_prefix .. candidate) == 0 then id = candidate; break end
end
redis.call('EXPIRE', KEYS[2], p.seq_ttl)
if not id then return redis.error_reply('ERR no free ticket number left for ' .. p.date) end
local tk = p.ticket_prefix .. id
redis.call('HSET', tk, 'ticket_id', '"' .. id .. '"', unpack(ARGV, 2))
redis.call('ZADD', KEYS[3], p.now, id)
redis.call('ZADD', KEYS[4], p.now, id)
redis.call('ZADD', KEYS[5], p.now, id)
redis.call('ZADD', KEYS[6], p.now, id)
if p.urgent == 1 then
  redis.call('ZADD', KEYS[7], p.now, id)
  redis.call('ZADD', KEYS[8], p.now, id)
end
if p.has_geo == 1 then
  redis.call('GEOADD', KEYS[11], p.lon, p.lat, id)
  redis.call('ZADD', KEYS[12], p.now, id)
end
for i = 13, #KEYS do
  redis.call('ZADD', KEYS[i], p.now, id)
  redis.call('EXPIRE', KEYS[i], p.place_ttl)
end
local q = KEYS[9]
if p.urgent == 1 then q = KEYS[10] end
redis.call('XADD', q, '*', 'ticket_id', id, 'urgent', tostring(p.urgent),
           'pollution_type', p.type, 'kind', 'new')
redis.call('SET', KEYS[1], 'new:' .. id, 'EX', p.idem_ttl)
return {'created', 'new', id, redis.call('HGETALL', tk)}
"""

_UNAVAILABLE = (rexc.ConnectionError, rexc.TimeoutError, rexc.ReadOnlyError,
                ConnectionError, TimeoutError, OSError)


@contextlib.contextmanager
def _guard(what: str):
    try:
        yield
    except rexc.BusyLoadingError as e:
        raise StoreUnavailable(f"{what}: Redis is loading its data ({e})") from e
    except _UNAVAILABLE as e:
        raise StoreUnavailable(f"{what}: Redis unreachable ({type(e).__name__}: {e})") from e


def _pairs(raw: list) -> Dict[str, str]:
    return {raw[i]: raw[i + 1] for i in range(0, len(raw), 2)}


class TicketStore:
    def __init__(self, redis, keys: Keys, clock: Callable[[], datetime] = now_shanghai) -> None:
        """`redis`: a redis.asyncio client with decode_responses=True (core/redis_conn.py).

        `clock` returns an aware datetime; tests inject one.
        """
        self.r = redis
        self.keys = keys
        self.clock = clock
        self._create = redis.register_script(_CREATE_LUA)
        self._groups_ready = False

    def _now(self) -> datetime:
        return self.clock().astimezone(SHANGHAI)

    # --- create -------------------------------------------------------------
    async def create(self, report: ComplaintReport, idem_key: str,
                     note: str = "") -> CreateResult:
        """Record a complaint (or merge it into the open ticket it repeats).

        `idem_key` is the id of the message that carries the complaint (the
        WeChat MsgId, the web client's message id, the spool id): the same
        (channel, reporter, idem_key) always yields the same result.
        """
        if not idem_key:
            raise ValueError("idem_key is required (WeChat MsgId or client message id)")
        if not report.reporter:
            raise ValueError("report.reporter is required")
        if report.has_coordinates and not (-85.05 <= float(report.lat) <= 85.05
                                           and -180 <= float(report.lon) <= 180):
            raise ValueError(f"coordinates out of range: lat={report.lat} lon={report.lon}")
        ptype = normalise_pollution_type(report.pollution_type)
        if ptype != report.pollution_type:
            log.warning("pollution_type %r stored as %r", report.pollution_type, ptype)
        report = replace(report, pollution_type=ptype)

        urgent, reason = is_emergency(f"{report.description} {report.location_text}", ptype)
        # Explicitly marked urgent, or detected: an explicit False never hides a detected emergency.
        if report.urgent:
            urgent, reason = True, report.urgent_reason or reason or "受理人员标记为紧急"

        now = self._now()
        ticket = new_ticket(report, now, idem_key, urgent, reason)
        if note:
            ticket.history[0]["note"] = note
        fields = ticket.to_hash()
        fields.pop("ticket_id")
        fields["created_ts"] = repr(now.timestamp())
        argv_fields = [x for kv in fields.items() for x in kv]

        places = place_keys(report.location_text, report.location_label)
        k = self.keys
        keys = [
            k.ticket_idem(report.channel, report.reporter, idem_key),
            k.ticket_seq(now.strftime("%Y%m%d")),
            k.tickets_by_reporter(report.reporter),
            k.tickets_by_status(STATUS_CODES[Status.ACCEPTED]),
            k.tickets_by_type(ptype),
            k.tickets_by_created(),
            k.tickets_urgent(),
            k.tickets_escalated(),
            k.queue_normal(),
            k.queue_urgent(),
            k.tickets_geo(ptype),
            k.tickets_geo_at(ptype),
        ] + [k.tickets_place(ptype, p) for p in places]
        params = {
            "now": repr(now.timestamp()),
            "since": repr(now.timestamp() - DUPLICATE_WINDOW_S),
            "date": now.strftime("%Y%m%d"),
            "ticket_prefix": k.ticket_key_prefix(),
            "open": [encode(s) for s in OPEN_STATUSES],
            "has_geo": 1 if report.has_coordinates else 0,
            "lat": repr(float(report.lat)) if report.has_coordinates else "",
            "lon": repr(float(report.lon)) if report.has_coordinates else "",
            "radius": str(DUPLICATE_RADIUS_M),
            "type": ptype,
            "urgent": 1 if urgent else 0,
            "urgent_reason": encode(reason),
            "updated_at": encode(iso(now)),
            "dup_history": encode([duplicate_report_entry(report, now, idem_key, urgent, reason)]),
            "escalate_history": encode([history_entry(now, "system", A_ESCALATED, reason)]),
            "new_evidence": encode(ticket.evidence),
            "seq_ttl": SEQ_TTL_S,
            "idem_ttl": IDEM_TTL_S,
            "place_ttl": PLACE_TTL_S,
        }
        with _guard("create ticket"):
            outcome, kind, ticket_id, raw = await self._create(
                keys=keys, args=[json.dumps(params)] + argv_fields)
        if not raw:
            raise TicketNotFound(f"{ticket_id} (recorded for idem key {idem_key!r}) no longer exists")
        stored = Ticket.from_hash(_pairs(raw))
        if outcome == "created":
            log.info("ticket %s created (urgent=%s)", ticket_id, urgent)
            return CreateResult(stored, True, None)
        if outcome == "duplicate":
            log.info("report %s merged into open ticket %s", idem_key, ticket_id)
            return CreateResult(stored, False, ticket_id)
        return CreateResult(stored, False, ticket_id if kind == "dup" else None, replayed=True)

    # --- read -----------------------------------------------------------------
    async def get(self, ticket_id: str) -> Optional[Ticket]:
        with _guard("get ticket"):
            raw = await self.r.hgetall(self.keys.ticket(ticket_id))
        return Ticket.from_hash(raw) if raw else None

    async def _get_many(self, ids: Sequence[str]) -> List[Ticket]:
        if not ids:
            return []
        with _guard("get tickets"):
            async with self.r.pipeline(transaction=False) as pipe:
                for tid in ids:
                    pipe.hgetall(self.keys.ticket(tid))
                raws = await pipe.execute()
        return [Ticket.from_hash(raw) for raw in raws if raw]

    async def list_by_reporter(self, reporter: str, limit: int = 50) -> List[Ticket]:
        """The reporter's tickets (created or merged into), newest report first."""
        with _guard("list reporter tickets"):
            ids = await self.r.zrevrange(self.keys.tickets_by_reporter(reporter), 0, limit - 1)
        return await self._get_many(ids)

    async def list_tickets(self, status: Optional[str] = None, pollution_type: Optional[str] = None,
                           urgent: Optional[bool] = None,
                           date_from: Union[date, datetime, None] = None,
                           date_to: Union[date, datetime, None] = None,
                           limit: int = 100, offset: int = 0) -> List[Ticket]:
        """Staff console filter; newest first. Dates are Asia/Shanghai days, both inclusive."""
        lo = "-inf" if date_from is None else _ts(date_from, start=True)
        hi = "+inf" if date_to is None else _ts(date_to, start=False)
        k = self.keys
        sources = [k.tickets_by_created()]
        if status is not None:
            if status not in STATUS_CODES:
                raise ValueError(f"unknown status {status!r}")
            sources.append(k.tickets_by_status(STATUS_CODES[status]))
        if pollution_type is not None:
            sources.append(k.tickets_by_type(pollution_type))
        if urgent is not None:
            sources.append(k.tickets_urgent())
        with _guard("list tickets"):
            async with self.r.pipeline(transaction=False) as pipe:
                for src in sources:
                    pipe.zrangebyscore(src, lo, hi, withscores=True)
                results = await pipe.execute()
        scored = dict(results[0])
        ids = set(scored)
        for src, res in zip(sources[1:], results[1:]):
            members = {m for m, _ in res}
            if src == k.tickets_urgent() and urgent is False:
                ids -= members
            else:
                ids &= members
        ordered = sorted(ids, key=lambda i: (scored[i], i), reverse=True)
        return await self._get_many(ordered[offset:offset + limit])

    list = list_tickets   # the staff console's name for it

    async def list_escalations(self) -> List[Ticket]:
        """Urgent tickets not yet finished, oldest escalation first."""
        with _guard("list escalations"):
            ids = await self.r.zrange(self.keys.tickets_escalated(), 0, -1)
        return await self._get_many(ids)

    public_view = staticmethod(public_view)
    owner_view = staticmethod(owner_view)

    # --- updates ----------------------------------------------------------------
    async def _update(self, ticket_id: str, mutate: Callable[[Ticket], Ticket],
                      extra: Callable[[object, Ticket, Ticket], None] = lambda pipe, old, new: None,
                      watch_also: Sequence[str] = (),
                      check: Callable[[object], object] = None) -> Ticket:
        """Optimistic read-modify-write of one ticket (WATCH/MULTI/EXEC, retried on conflict).

        `mutate` is pure (old -> new ticket); `extra` queues further commands in
        the same transaction; `check` may read the watched keys before the write.
        """
        key = self.keys.ticket(ticket_id)
        with _guard("update ticket"):
            async with self.r.pipeline(transaction=True) as pipe:
                for _attempt in range(100):
                    try:
                        await pipe.watch(key, *watch_also)
                        raw = await pipe.hgetall(key)
                        if not raw:
                            raise TicketNotFound(ticket_id)
                        old = Ticket.from_hash(raw)
                        if check is not None:
                            await check(pipe)
                        new = mutate(old)
                        changed = {f: v for f, v in new.to_hash().items() if raw.get(f) != v}
                        pipe.multi()
                        if changed:
                            pipe.hset(key, mapping=changed)
                        extra(pipe, old, new)
                        await pipe.execute()
                        return new
                    except rexc.WatchError:
                        continue
        raise StoreUnavailable(f"update ticket {ticket_id}: too many concurrent writers, try again")

    async def change_status(self, ticket_id: str, new_status: str, actor: str, note: str = "",
                            linked_to: Optional[str] = None,
                            transferred_to: Optional[str] = None) -> Ticket:
        """Move a ticket along 已受理 → 处理中 → 已办结 (or to 重复 / 转办).

        Illegal changes raise IllegalTransition naming the allowed ones.
        """
        now = self._now()
        k = self.keys
        watch_also: List[str] = []
        target_key = None
        if new_status == Status.DUPLICATE and linked_to:
            target_key = k.ticket(linked_to)
            watch_also.append(target_key)

        async def check(pipe) -> None:
            if target_key is None:
                return
            target = await pipe.hmget(target_key, "status", "linked_to")
            if target[0] is None:
                raise IllegalTransition(f"ticket {ticket_id}: linked_to {linked_to} does not exist")
            if json.loads(target[0]) == Status.DUPLICATE:
                root = json.loads(target[1])
                raise IllegalTransition(
                    f"ticket {ticket_id}: {linked_to} is itself a duplicate of {root}; link to {root}")

        def mutate(old: Ticket) -> Ticket:
            return apply_status_change(old, new_status, actor, note, now, linked_to, transferred_to)

        def extra(pipe, old: Ticket, new: Ticket) -> None:
            created_ts = datetime.fromisoformat(old.created_at).timestamp()
            pipe.zrem(k.tickets_by_status(STATUS_CODES[old.status]), ticket_id)
            pipe.zadd(k.tickets_by_status(STATUS_CODES[new.status]), {ticket_id: created_ts})
            if new.status not in OPEN_STATUSES:
                pipe.zrem(k.tickets_escalated(), ticket_id)
            if target_key is not None:
                # Mark the original ticket too: staff see what was merged into it.
                pipe.eval(_APPEND_HISTORY_LUA, 1, target_key, encode([history_entry(
                    now, actor, A_LINKED_DUPLICATE, note or "", linked_from=ticket_id)]),
                    encode(iso(now)))

        return await self._update(ticket_id, mutate, extra, watch_also, check)

    async def set_staff_reply(self, ticket_id: str, reply: str, actor: str) -> Ticket:
        """The answer the citizen sees in owner_view (the gateway sends it too)."""
        now = self._now()

        def mutate(old: Ticket) -> Ticket:
            entry = history_entry(now, actor, A_STAFF_REPLY, reply)
            return replace(old, staff_reply=reply, history=old.history + [entry], updated_at=iso(now))

        return await self._update(ticket_id, mutate)

    async def add_evidence(self, ticket_id: str, media_id: str, url: str = "",
                           actor: Optional[str] = None) -> Ticket:
        """Attach a photo/video to a ticket; the same media_id is stored once."""
        now = self._now()

        def mutate(old: Ticket) -> Ticket:
            if any(e.get("media_id") == media_id for e in old.evidence):
                return old
            entry = history_entry(now, actor or old.reporter, A_EVIDENCE, media_id=media_id)
            return replace(old, evidence=old.evidence + [evidence_item(media_id, url, at=now)],
                           history=old.history + [entry], updated_at=iso(now))

        return await self._update(ticket_id, mutate)

    # --- hotline queue ------------------------------------------------------------
    def _streams(self) -> Dict[str, str]:
        return {"urgent": self.keys.queue_urgent(), "normal": self.keys.queue_normal()}

    async def ensure_queue_groups(self) -> None:
        """XGROUP CREATE ... MKSTREAM for both streams; safe to call any number of times.

        The group starts at id 0, so tickets queued before it existed are delivered.
        """
        with _guard("create queue groups"):
            for stream in self._streams().values():
                try:
                    await self.r.xgroup_create(stream, QUEUE_GROUP, id="0", mkstream=True)
                except rexc.ResponseError as e:
                    if "BUSYGROUP" not in str(e):
                        raise
        self._groups_ready = True

    async def read_queue(self, consumer: str, count: int = 10) -> List[QueueItem]:
        """Up to `count` new entries for this staff member: urgent ones first."""
        if not self._groups_ready:
            await self.ensure_queue_groups()
        items: List[QueueItem] = []
        with _guard("read queue"):
            for name, stream in self._streams().items():
                want = count - len(items)
                if want <= 0:
                    break
                res = await self.r.xreadgroup(QUEUE_GROUP, consumer, {stream: ">"}, count=want)
                for _, entries in res or []:
                    items.extend(_queue_item(name, eid, f) for eid, f in entries)
        return items

    async def pending(self, consumer: str) -> List[QueueItem]:
        """Entries handed to this consumer and not yet acknowledged (urgent first)."""
        if not self._groups_ready:
            await self.ensure_queue_groups()
        items: List[QueueItem] = []
        with _guard("read pending"):
            for name, stream in self._streams().items():
                res = await self.r.xreadgroup(QUEUE_GROUP, consumer, {stream: "0"})
                for _, entries in res or []:
                    items.extend(_queue_item(name, eid, f) for eid, f in entries if f)
        return items

    async def reclaim(self, consumer: str, min_idle_ms: int = 10 * 60 * 1000,
                      count: int = 10) -> List[QueueItem]:
        """Take over entries another console read but did not ack for `min_idle_ms` (XAUTOCLAIM)."""
        if not self._groups_ready:
            await self.ensure_queue_groups()
        items: List[QueueItem] = []
        with _guard("reclaim queue"):
            for name, stream in self._streams().items():
                res = await self.r.xautoclaim(stream, QUEUE_GROUP, consumer, min_idle_ms,
                                              start_id="0-0", count=count)
                items.extend(_queue_item(name, eid, f) for eid, f in res[1] if f)
        return items

    async def ack(self, item: Union[QueueItem, str]) -> bool:
        """Acknowledge a queue entry (a QueueItem or its `ref`). True if it was pending."""
        ref = item.ref if isinstance(item, QueueItem) else item
        name, _, entry_id = ref.partition("/")
        streams = self._streams()
        if name not in streams or not entry_id:
            raise ValueError(f"bad queue reference {ref!r}; expected 'urgent/<id>' or 'normal/<id>'")
        with _guard("ack queue entry"):
            return bool(await self.r.xack(streams[name], QUEUE_GROUP, entry_id))


# Append JSON history entries to a ticket hash without reading it in Python
# (used inside a MULTI for the second ticket of a 重复 link).
_APPEND_HISTORY_LUA = r"""
local cur = redis.call('HGET', KEYS[1], 'history')
if not cur then return 0 end
local items = ARGV[1]
local merged
if cur == '[]' or cur == '' then merged = items
else merged = string.sub(cur, 1, -2) .. ',' .. string.sub(items, 2) end
redis.call('HSET', KEYS[1], 'history', merged, 'updated_at', ARGV[2])
return 1
"""


def _queue_item(stream: str, entry_id: str, f: Dict[str, str]) -> QueueItem:
    return QueueItem(stream=stream, entry_id=entry_id, ticket_id=f.get("ticket_id", ""),
                     urgent=f.get("urgent") == "1", pollution_type=f.get("pollution_type", ""),
                     kind=f.get("kind", "new"))


def _ts(value: Union[date, datetime], start: bool) -> float:
    if isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=SHANGHAI)
        return dt.timestamp()
    day = datetime.combine(value, dtime.min, tzinfo=SHANGHAI)
    return (day if start else day + timedelta(days=1) - timedelta(microseconds=1)).timestamp()
