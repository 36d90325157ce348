"""nlu_ext/fast_action_validation.py: the cached validator accepts and refuses
exactly what Rasa's own check (jsonschema.validate with the same schema) does."""
from __future__ import annotations

import jsonschema
import pytest
from rasa.core.actions.action import RemoteAction

from nlu_ext import fast_action_validation

SCHEMA = RemoteAction.action_response_format_spec()

GOOD = [
    {"events": [], "responses": []},
    {"events": [{"event": "slot", "name": "location_text", "value": "城关镇"}],
     "responses": [{"text": "请问发生在哪里？", "buttons": [{"title": "取消", "payload": "/cancel"}]}]},
    {"events": [{"event": "active_loop", "name": None}], "responses": [{"template": "utter_greet"}]},
    {},
]
BAD = [
    {"events": "not a list", "responses": []},
    {"events": [{"no_event_key": 1}], "responses": []},
    {"events": [], "responses": "text"},
    {"events": [{"event": "not_an_event_type"}]},
]


@pytest.fixture(scope="module")
def remote():
    fast_action_validation.install()
    fast_action_validation.install()  # idempotent
    assert getattr(RemoteAction._validate_action_result, "fast", False)
    return RemoteAction.__new__(RemoteAction)


def rasa_verdict(result) -> str | None:
    try:
        jsonschema.validate(result, SCHEMA)
        return None
    except jsonschema.ValidationError as e:
        return e.message


@pytest.mark.parametrize("result", GOOD)
def test_accepts_what_rasa_accepts(remote, result):
    assert rasa_verdict(result) is None
    assert remote._validate_action_result(result) is True


@pytest.mark.parametrize("result", BAD)
def test_refuses_what_rasa_refuses_with_the_same_message(remote, result):
    expected = rasa_verdict(result)
    assert expected is not None
    with pytest.raises(jsonschema.ValidationError) as info:
        remote._validate_action_result(result)
    assert info.value.message.startswith(expected)
    assert "Failed to validate Action server response" in info.value.message
