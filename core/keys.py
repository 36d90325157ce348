"""The Redis key layout: the one place that names every key the product writes.

All keys start with the configurable prefix (`REDIS_KEY_PREFIX`, default
`ecobot:`), so that several deployments or test runs can share one server.
Rasa's own tracker and lock stores use their own `key_prefix` (endpoints.yml).

Add a key here (with its type and meaning in the table) before using it
anywhere; the gateway and the action server both import this module.

| key (after prefix)                 | type   | meaning |
|------------------------------------|--------|---------|
| ticket:{ticket_id}                 | hash   | one complaint ticket; every field JSON-encoded (core/ticket_model.py), plus `created_ts` (epoch seconds) |
| ticket:seq:{yyyymmdd}              | string | INCR counter of the day's ticket numbers (Asia/Shanghai date); expires 3 days after last use |
| ticket:idem:{channel}:{reporter}:{idem} | string | `new:{ticket_id}` or `dup:{ticket_id}`: the ticket a message (WeChat MsgId / client message id) created or was linked to; 30 days |
| tickets:reporter:{reporter}        | zset   | ticket ids a reporter created or was linked to; score = epoch seconds of the report |
| tickets:status:{status_code}       | zset   | ticket ids per status (accepted, processing, closed, duplicate, transferred); score = created_ts |
| tickets:type:{pollution_type}      | zset   | ticket ids per pollution_type; score = created_ts |
| tickets:created                    | zset   | every ticket id; score = created_ts (date-range index for the staff console) |
| tickets:urgent                     | zset   | ids of tickets flagged urgent; score = created_ts |
| tickets:geo:{pollution_type}       | geo    | recent tickets with coordinates (duplicate search within 500 m); pruned after 72 h |
| tickets:geo:{pollution_type}:at    | zset   | same members as the geo key, score = created_ts (for pruning) |
| tickets:place:{pollution_type}:{normalised place} | zset | recent tickets at a normalised place text (core/places.py); score = created_ts; pruned after 72 h, key expires after 4 days |
| queue:urgent                       | stream | hotline queue, urgent entries (consumer group `staff`); drained before queue:normal |
| queue:normal                       | stream | hotline queue, all other new tickets (consumer group `staff`) |
| tickets:escalated                  | zset   | urgent complaint tickets not yet finished (staff consoles watch it; not the esc:* conversation hand-overs); score = time escalated; removed at 已办结/重复/转办 |
| wx:dedup:{dedup_key}               | string | one inbound WeChat message across its retries (bot/dedup.py): JSON `{"state": "pending"}` while handled, then `{"state": "done", "reply": text}` ("" = answered `success`, sent later); pending 120 s, done 600 s |
| wx:token                           | string | the shared WeChat access token (bot/wechat_api.py); expires 300 s before WeChat's `expires_in` |
| wx:token:lock                      | string | lock held (random value, 15 s) by the one process refreshing wx:token |
| rl:{sender}                        | zset   | a sender's accepted messages in the last 60 s (bot/ratelimit.py); member = time + random, score = epoch seconds; expires 61 s after the last |
| esc:seq                            | string | INCR counter of conversation escalation ids (core/escalations.py) |
| esc:{esc_id}                       | hash   | one escalation: sender, channel, reason, detail, intent, ticket_id, urgent, status (waiting/claimed/resolved/handed_back/timed_out), claimed_by, times, transcript (JSON) |
| esc:queue                          | zset   | open escalations (waiting or claimed); score = created_ts, minus 1e10 when urgent (urgent first, then longest wait) |
| esc:closed                         | zset   | closed escalations; score = closed_ts |
| esc:msgs:{esc_id}                  | list   | JSON messages exchanged while in human mode (user text/images, staff replies, system notes) |
| handoff:{sender}                   | hash   | human mode of one conversation (THE source of truth): esc, since, active (last staff/open activity, epoch s), notified; expires 30 days |
| handoff:active                     | zset   | senders in human mode; score = last activity (the gateway times them out after HUMAN_MODE_TTL_S) |
| handoff:recent:{sender}            | list   | the sender's last normalised texts, newest first (the "same question three times" trigger); 3 items, 1 h |
| outbox:{sender}                    | list   | JSON staff messages waiting for a web-chat user (GET /api/chat/poll takes them); 7 days |
| stats:escalations:opened           | hash   | escalations created, per reason code (core/escalations.py; read by the gateway's /metrics, bot/metrics.py) |
| staff:user:{name}                  | hash   | staff account: name, role (agent/supervisor), argon2 hash, created_at (bot/staff/accounts.py) |
| staff:users                        | set    | staff account names |
| staff:fail:{name}                  | string | INCR failed logins of an account; expires 15 min after the first |
| staff:lock:{name}                  | string | present while the account is locked (5 failed logins); 15 min |
| staff:sess:{sha256(token)}         | hash   | console session: user, role, csrf, created; 8 h sliding |
| evidence:pending:{sender}         | list   | JSON {media_id, url, received_at} images a sender sent that are not yet attached to a ticket (actions/media.py); the next complaint takes them; 7 days |
| staff:audit                        | stream | append-only audit log of staff actions: who, action, target, before, after, at (supervisors read it) |
"""
from __future__ import annotations


class Keys:
    """Builds key names for one prefix."""

    def __init__(self, prefix: str = "ecobot:") -> None:
        self.prefix = prefix

    def _k(self, *parts: object) -> str:
        return self.prefix + ":".join(str(p) for p in parts)

    # --- complaint tickets (core/tickets.py) ---------------------------------
    def ticket(self, ticket_id: str) -> str:
        return self._k("ticket", ticket_id)

    def ticket_key_prefix(self) -> str:
        """`ticket(id) == ticket_key_prefix() + id` (the create script builds keys of new ids)."""
        return self._k("ticket", "")

    def ticket_seq(self, yyyymmdd: str) -> str:
        return self._k("ticket", "seq", yyyymmdd)

    def ticket_idem(self, channel: str, reporter: str, idem_key: str) -> str:
        return self._k("ticket", "idem", channel, reporter, idem_key)

    def tickets_by_reporter(self, reporter: str) -> str:
        return self._k("tickets", "reporter", reporter)

    def tickets_by_status(self, status_code: str) -> str:
        return self._k("tickets", "status", status_code)

    def tickets_by_type(self, pollution_type: str) -> str:
        return self._k("tickets", "type", pollution_type)

    def tickets_by_created(self) -> str:
        return self._k("tickets", "created")

    def tickets_urgent(self) -> str:
        return self._k("tickets", "urgent")

    def tickets_geo(self, pollution_type: str) -> str:
        return self._k("tickets", "geo", pollution_type)

    def tickets_geo_at(self, pollution_type: str) -> str:
        return self._k("tickets", "geo", pollution_type, "at")

    def tickets_place(self, pollution_type: str, place: str) -> str:
        return self._k("tickets", "place", pollution_type, place)

    def queue_urgent(self) -> str:
        return self._k("queue", "urgent")

    def queue_normal(self) -> str:
        return self._k("queue", "normal")

    def tickets_escalated(self) -> str:
        return self._k("tickets", "escalated")

    # --- WeChat gateway (bot/dedup.py, bot/wechat_api.py, bot/ratelimit.py) ---
    def wx_dedup(self, dedup_key: str) -> str:
        return self._k("wx", "dedup", dedup_key)

    def wx_token(self) -> str:
        return self._k("wx", "token")

    def wx_token_lock(self) -> str:
        return self._k("wx", "token", "lock")

    def rate_limit(self, sender: str) -> str:
        return self._k("rl", sender)

    # --- escalations and human mode (core/escalations.py) ---------------------
    def esc_seq(self) -> str:
        return self._k("esc", "seq")

    def esc(self, esc_id: str) -> str:
        return self._k("esc", esc_id)

    def esc_queue(self) -> str:
        return self._k("esc", "queue")

    def esc_closed(self) -> str:
        return self._k("esc", "closed")

    def esc_msgs(self, esc_id: str) -> str:
        return self._k("esc", "msgs", esc_id)

    def handoff(self, sender: str) -> str:
        return self._k("handoff", sender)

    def handoff_active(self) -> str:
        return self._k("handoff", "active")

    def handoff_recent(self, sender: str) -> str:
        return self._k("handoff", "recent", sender)

    def outbox(self, sender: str) -> str:
        return self._k("outbox", sender)

    # --- observability counters (bot/metrics.py) ---------------------------------
    def stats_escalations_opened(self) -> str:
        return self._k("stats", "escalations", "opened")

    # --- staff console (bot/staff/) -------------------------------------------
    def staff_user(self, name: str) -> str:
        return self._k("staff", "user", name)

    def staff_users(self) -> str:
        return self._k("staff", "users")

    def staff_fail(self, name: str) -> str:
        return self._k("staff", "fail", name)

    def staff_lock(self, name: str) -> str:
        return self._k("staff", "lock", name)

    def staff_session(self, token_hash: str) -> str:
        return self._k("staff", "sess", token_hash)

    def staff_audit(self) -> str:
        return self._k("staff", "audit")

    # --- evidence waiting for a complaint (actions/media.py) ---------------
    def pending_evidence(self, sender: str) -> str:
        return self._k("evidence", "pending", sender)
