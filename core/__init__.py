"""Code shared by the gateway (`bot/`) and the action server (`actions/`).

Everything that both processes need lives here and is imported, never copied:
configuration (`settings`), the Redis key layout (`keys`), the ticket store,
and the knowledge loader.
"""
