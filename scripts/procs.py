"""Child-process set-up shared by the supervisors (scripts/stack.py, scripts/redis_server.py)."""
from __future__ import annotations

import os
import signal


def own_group_dying_with_parent() -> None:
    """Child set-up: its own process group (so stop() reaches its children), and
    SIGTERM when the supervisor dies (no orphaned Rasa after a killed test run)."""
    os.setsid()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
