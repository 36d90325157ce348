"""Rasa checks every answer of the action server with the module function
`jsonschema.validate(result, schema)`, which first validates the schema itself
against the JSON Schema meta-schema (draft 2020-12) on every call. With
jsonschema 4.17 that costs ~37 ms of CPU per custom action call, ~49 ms with
the check of the answer, where a validator built once needs ~2 ms. A complaint
turn runs two to four custom actions: under load this was a third of Rasa's CPU
time (py-spy profile, docs/bench.md) and the main reason the benchmark's
latency grew with the number of users.

`install()` replaces `RemoteAction._validate_action_result` with the same
check against a validator built once from the same (constant) schema: the same
answers pass, the same ones fail with the same `ValidationError` message. It is
called when Rasa loads the REST channel (nlu_ext/rest_channel.py).
"""
from __future__ import annotations

import functools
from typing import Any, Dict, Text


@functools.lru_cache(maxsize=1)
def _validator():
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction

    spec = RemoteAction.action_response_format_spec()
    cls = validator_for(spec)
    cls.check_schema(spec)  # what jsonschema.validate() did on every call: once is enough
    return cls(spec)


def _validate_action_result(self, result: Dict[Text, Any]) -> bool:
    from jsonschema import ValidationError
    from rasa.shared.constants import DOCS_BASE_URL

    try:
        _validator().validate(result)
        return True
    except ValidationError as e:  # same message as Rasa's own method
        e.message += (
            f". Failed to validate Action server response from API, "
            f"make sure your response from the Action endpoint is valid. "
            f"For more information about the format visit "
            f"{DOCS_BASE_URL}/custom-actions"
        )
        raise e


_validate_action_result.fast = True


def install() -> None:
    """Idempotent."""
    from rasa.core.actions.action import RemoteAction

    if getattr(RemoteAction._validate_action_result, "fast", False):
        return
    _validator()  # build (and check the schema) now, not in the first user's request
    RemoteAction._validate_action_result = _validate_action_result
