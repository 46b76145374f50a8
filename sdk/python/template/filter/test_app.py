"""Native tests of {{name}}: `python3 -m pytest -q` (with the SDK on PYTHONPATH)."""

import pytest

import app
from weir.testing import Dropped, InitError, Kept, Rejected, run


def test_keeps_the_configured_actions():
    events = ['{"action":"save"}', '{"action":"hide"}', '{"action":"click"}', "{}"]
    assert run(app, events) == [Kept, Dropped, Kept, Dropped]
    assert run(app, events, config={"actions": "hide"}) == [Dropped, Kept, Dropped, Dropped]


def test_rejects_payloads_that_are_not_objects():
    assert run(app, ["[1,2]"]) == [Rejected("payload is not a JSON object")]


def test_a_misspelt_key_fails_init_naming_it():
    with pytest.raises(InitError, match=r"^config `action`: unknown key \(known: actions\)$"):
        run(app, [], config={"action": "save"})
