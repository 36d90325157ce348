"""The Rasa action server (rasa_sdk): `rasa run actions --actions actions`.

Modules: `consult` (enterprise approvals, one-time notification), `complaint`
(the pollution report form and tickets), `status` (ticket lookup), `media`
(images and locations), `handoff` (escalation to staff, fallback), `forms`
(questions and cancel), `deps` (process-wide Redis and settings).
"""

# Observability: the gateway's request id in the action server's logs (actions/request_log.py).
from actions import request_log as _request_log  # noqa: E402

_request_log.install()
