"""The SDK's own tests, natively: `pytest sdk/python`."""

import json

import pytest

import weir
from weir import Reject, RetryLater, enricher, filter, log, lookup
from weir.testing import Dropped, Enriched, InitError, Kept, Rejected, logs, make_batch, run


@enricher(
    name="t-enricher",
    reads={"a": "int?", "t": "text?", "f": "float?", "b": "boolean?", "j": "json?"},
    writes={"n": "int", "s": "text?", "x": "float?", "ok": "boolean?", "blob": "json?"},
)
def echo(event, out):
    if event.get("a") is not None:
        out.set("n", event.get("a") * 2)
    else:
        out.set("n", 0)
    out["s"] = event.get("t")
    out["x"] = event.get("f")
    out["ok"] = event.get("b")
    out["blob"] = event.get("j")


def test_reads_give_their_type_or_none():
    out = run(echo, ['{"a":2,"t":"x","f":2,"b":true,"j":{"k":[1]}}',
                     '{"a":"2","t":3,"f":"x","b":1,"j":null}',
                     '{"a":2.0,"a2":1}', "[1,2]", "not json", ""])
    assert out[0] == Enriched({"n": 4, "s": "x", "x": 2.0, "ok": True, "blob": {"k": [1]}})
    assert out[0].json == '{"n":4,"s":"x","x":2.0,"ok":true,"blob":{"k":[1]}}'
    nulls = {"n": 0, "s": None, "x": None, "ok": None, "blob": None}
    for o in out[1:]:
        assert o == Enriched(nulls)


def test_earlier_fields_win_even_when_null():
    out = run(echo, ['{"a":1,"t":"p"}', '{"a":1,"t":"p"}', '{"a":1}'],
              fields=[{"a": 5}, {"t": None}, ""])
    assert out[0]["n"] == 10 and out[0]["s"] == "p"
    assert out[1]["n"] == 2 and out[1]["s"] is None
    assert out[2]["n"] == 2


def test_additions_are_ascii_json_whatever_the_text():
    out = run(echo, [json.dumps({"t": "Zürich ☃ 🐍", "j": ["é"]}, ensure_ascii=False)])
    assert out[0]["s"] == "Zürich ☃ 🐍" and out[0]["blob"] == ["é"]
    assert out[0].json.isascii()


@enricher(name="t-strict", reads={"v": "json?"}, writes={"s": "text", "i": "int?", "f": "float?"})
def strict(event, out):
    kind = event.get("v")
    if kind == "undeclared":
        out.set("zz", 1)
    elif kind == "wrong":
        out.set("s", 3)
    elif kind == "null":
        out.set("s", None)
    elif kind == "bool":
        out.set("i", True)
    elif kind == "big":
        out.set("i", 1 << 64)
    elif kind == "nan":
        out.set("f", float("nan"))
    elif kind == "surrogate":
        out.set("s", "\ud800")
    elif kind == "read":
        event.get("nope")
    elif kind == "reject":
        out.set("s", "set before")
        raise Reject("not today")
    elif kind == "zero":
        return 1 / 0
    elif kind == "dict":
        return {"s": "from a dict", "i": 3}
    else:
        out.set("s", "fine")


def test_writes_are_checked_against_the_declaration():
    kinds = ["undeclared", "wrong", "null", "bool", "big", "nan", "surrogate", "read", "reject",
             "zero", "dict", "ok"]
    out = run(strict, [json.dumps({"v": k}) for k in kinds])
    reasons = [o.reason if isinstance(o, Rejected) else o for o in out]
    assert reasons[0].startswith(
        "FieldError: field `zz` is not among the fields the plugin writes (writes: s, i, f) "
        "(at test_weir.py:")
    assert reasons[0].endswith(" in strict)")
    assert reasons[1].startswith("FieldError: field `s` is text: cannot be set to int 3 (at ")
    assert reasons[2].startswith("FieldError: field `s` is text, not nullable: cannot be set to None")
    assert reasons[3].startswith("FieldError: field `i` is int?: cannot be set to bool True")
    assert "out of the 64-bit range" in reasons[4]
    assert "is not a finite number" in reasons[5]
    assert "lone surrogate" in reasons[6]
    assert reasons[7].startswith("FieldError: field `nope` is not among the fields the plugin "
                                 "reads (reads: v)")
    assert reasons[8] == "not today"
    assert reasons[9].startswith("ZeroDivisionError: division by zero (at test_weir.py:")
    assert reasons[10] == Enriched({"s": "from a dict", "i": 3})
    assert reasons[11] == Enriched({"s": "fine"})


def helper_that_fails(text):
    return json.loads(text)


@filter(name="t-filter", reads={"action": "text?", "n": "int?"}, config={"actions": "click,save"})
def keep(event, config):
    action = event.get("action")
    if action == "boom":
        helper_that_fails("{")
    if action == "reject":
        return Reject("refused")
    if action == "none":
        return None
    if action == "retry":
        raise RetryLater("table not loaded")
    return action in config.list("actions")


def test_filter_verdicts_rejections_and_locations():
    out = run(keep, [json.dumps({"action": a}) for a in
                     ["click", "hide", "save", "boom", "reject", "none"]])
    assert out[:3] == [Kept, Dropped, Kept]
    boom = out[3].reason
    assert boom.startswith("JSONDecodeError: Expecting property name enclosed in double quotes")
    # The last frame is json's own; the plugin's last frame follows it.
    assert "(at decoder.py:" in boom and ", from test_weir.py:" in boom
    assert boom.endswith(" in helper_that_fails)")
    assert out[4] == Rejected("refused")
    assert out[5].reason.startswith(
        "TypeError: a filter returns True (keep) or False (drop), or raises Reject, not NoneType None")
    assert run(keep, ['{"action":"hide"}'], config={"actions": "hide"}) == [Kept]


def test_retry_later_retries_the_whole_batch():
    with pytest.raises(RetryLater, match="table not loaded"):
        run(keep, ['{"action":"click"}', '{"action":"retry"}'])


def test_unknown_config_keys_fail_init_naming_the_known_ones():
    with pytest.raises(InitError, match=r"^config `action`: unknown key \(known: actions\)$"):
        run(keep, [], config={"action": "x"})
    with pytest.raises(InitError, match=r"^config `x`: unknown key: the plugin takes no "
                                        r"configuration$"):
        run(echo, [], config={"x": "1"})
    # Granted files are not configuration keys.
    assert run(echo, ["{}"], config={"file.geo": "/weir/files/geo"})[0]["n"] == 0


@enricher(name="t-typed", reads={}, writes={"out": "json"},
          config={"limit": 10, "ratio": 0.5, "on": False, "names": ["a"], "label": "x",
                  "opt": None})
def typed(event, out, config):
    out.set("out", [config.limit, config.ratio, config.on, config.names, config["label"],
                    config.opt])


def test_typed_defaults_parse_the_steps_values_at_init():
    assert run(typed, ["{}"])[0]["out"] == [10, 0.5, False, ["a"], "x", None]
    got = run(typed, ["{}"], config={"limit": "3", "on": "true", "names": "b, c", "opt": "y"})
    assert got[0]["out"] == [3, 0.5, True, ["b", "c"], "x", "y"]
    with pytest.raises(InitError, match=r"^config `limit`: expected an integer \(got `ten`\)$"):
        run(typed, [], config={"limit": "ten"})


@enricher(name="t-setup", reads={"x": "int?"}, writes={"y": "int?"}, config={"add": "1"})
def with_setup(event, out, add):
    x = event.get("x")
    out.set("y", None if x is None else x + add)


@with_setup.setup
def _setup(config):
    if config.int("add") < 0:
        raise ValueError("add must not be negative")
    return config.int("add")


def test_setup_makes_the_state_and_its_errors_fail_init():
    assert run(with_setup, ['{"x":1}'], config={"add": "5"})[0]["y"] == 6
    with pytest.raises(InitError, match=r"^config `add`: expected an integer \(got `x`\)$"):
        run(with_setup, [], config={"add": "x"})
    with pytest.raises(InitError) as e:
        run(with_setup, [], config={"add": "-1"})
    assert str(e.value).startswith("ValueError: add must not be negative (at test_weir.py:")
    assert str(e.value).endswith(" in _setup)")


@enricher(name="t-lookups", reads={"pin_id": "int?", "ip": "text?"},
          writes={"category": "text?", "place": "json?", "single": "text?"},
          lookups={"categories": "pin_id", "geo": "ip", "pins": None})
def lookups(event, out):
    out.set("category", event.lookup("categories"))
    place = event.lookup("geo")
    out.set("place", json.loads(place) if place else None)
    out.set("single", lookup("pins", event.get("pin_id") or 0))
    log.info("pin %s", event.get("pin_id"))


def test_lookups_are_prefetched_per_batch_and_single_keys_go_to_the_host():
    tables = {"categories": {"7919": "Home Decor", "": "none?"},
              "geo": {"8.8.8.8": {"country": "US"}},
              "pins": {"7919": "known pin"}}
    out = run(lookups, ['{"pin_id":7919,"ip":"8.8.8.8"}', '{"pin_id":1}', "{}"], lookups=tables)
    assert out[0] == Enriched({"category": "Home Decor", "place": {"country": "US"},
                               "single": "known pin"})
    assert out[1] == Enriched({"category": None, "place": None, "single": None})
    # An absent key field is the empty key.
    assert out[2]["category"] == "none?"
    assert logs == [("info", "pin 7919"), ("info", "pin 1"), ("info", "pin None")]


def test_an_undeclared_prefetched_table_is_a_clear_error():
    @enricher(name="t-undeclared-table", reads={"a": "int?"}, writes={"b": "text?"})
    def f(event, out):
        out.set("b", event.lookup("categories"))

    [o] = run(f, ["{}"])
    assert "lookup table `categories` is not declared with a key field" in o.reason


@filter(name="t-coordinates", reads={})
def coordinates(event):
    return (event.key, event.timestamp_ms, event.partition, event.offset, event.topic,
            event.payload, event.index) == (b"k1", 1700, 0, 1, "test", b'{"z":1}', 1)


def test_events_carry_their_kafka_coordinates():
    out = run(coordinates, ["{}", '{"z":1}'], keys=["k0", "k1"], timestamps=[1, 1700])
    assert out == [Dropped, Kept]


def test_declarations_are_checked_at_import():
    with pytest.raises(weir.DeclarationError, match="unknown type `txt`"):
        enricher(name="x", writes={"a": "txt"})(lambda e, o: None)
    with pytest.raises(weir.DeclarationError, match=r"name=\.\.\.\) is required"):
        enricher(writes={"a": "text"})(lambda e, o: None)
    with pytest.raises(weir.DeclarationError, match="`pin_id` is not among the fields"):
        enricher(name="x", writes={"a": "text"}, lookups={"t": "pin_id"})(lambda e, o: None)
    with pytest.raises(weir.DeclarationError, match=r"takes \(event, out\) or"):
        enricher(name="x", writes={"a": "text"})(lambda e: None)
    with pytest.raises(weir.DeclarationError, match="at least one field"):
        enricher(name="x", writes={})(lambda e, o: None)


def test_the_batch_columns_are_laid_out_as_the_contract_says():
    b = make_batch(['{"a":1}', "{}"], fields=[None, {"x": 1}], keys=["k", None])
    assert (b.payloads, b.payload_ends) == (b'{"a":1}{}', [7, 9])
    assert (b.keys, b.key_ends) == (b"k", [1, 1])
    assert (b.fields, b.field_ends) == (b'{"x":1}', [0, 7])
    assert (b.timestamps_ms, b.partitions, b.offsets) == ([-1, -1], [0, 0], [0, 1])
