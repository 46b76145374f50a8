"""Native tests of {{name}}: `python3 -m pytest -q` (with the SDK on PYTHONPATH)."""

import app
from weir.testing import Enriched, Rejected, run


def test_adds_the_hour_or_null():
    out = run(app, ['{"ts":34200000}', "{}", '{"ts":"soon"}'])
    assert out == [Enriched({"hour": 9}), Enriched({"hour": None}), Enriched({"hour": None})]
    assert out[0].json == '{"hour":9}'


def test_earlier_steps_fields_win_over_the_payload():
    out = run(app, ['{"ts":0}'], fields=[{"ts": 3_600_000}])
    assert out == [Enriched({"hour": 1})]


def test_describes_what_it_reads_and_writes():
    d = app.enrich.describe()
    assert d.name == "{{name}}"
    assert [(f.name, f.type, f.nullable) for f in d.reads] == [("ts", "int", True)]
    assert [(f.name, f.type, f.nullable) for f in d.writes] == [("hour", "int", True)]
    assert not isinstance(run(app, ["{}"])[0], Rejected)
