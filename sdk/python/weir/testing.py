"""Native tests of a plugin, with no wasm: a batch built from JSON lines,
lookup tables set in memory, and what became of each event, through the same
batch loop the host drives.

    from weir.testing import run, Kept, Dropped, Rejected, Enriched
    import app

    def test_devices():
        out = run(app, ['{"user_agent": "Mozilla/5.0 (iPad; ...)"}', "{}"])
        assert out[0] == Enriched({"device_class": "tablet", ...})
"""

import json
import types
from dataclasses import dataclass, field

from . import _host
from ._plugin import InitError, Plugin, RetryLater

__all__ = [
    "run",
    "plugin_of",
    "make_batch",
    "Outcome",
    "Kept",
    "Dropped",
    "Rejected",
    "Enriched",
    "InitError",
    "RetryLater",
    "logs",
]

# The lines the plugin logged during the last `run`: (level, message).
logs = []


class Outcome:
    """What became of one event."""


class _Verdict(Outcome):
    __slots__ = ("_name",)

    def __init__(self, name):
        self._name = name

    def __repr__(self):
        return self._name


Kept = _Verdict("Kept")
"""A filter kept the event."""
Dropped = _Verdict("Dropped")
"""A filter dropped the event (counted, not a dead letter)."""


@dataclass(frozen=True)
class Rejected(Outcome):
    """The plugin refused the event: a dead letter with this reason."""

    reason: str


@dataclass(frozen=True)
class Enriched(Outcome):
    """An enricher added these fields (`{}` when it set none); `json` is the
    text the host receives."""

    fields: dict
    json: str = field(default="", compare=False)

    def __getitem__(self, name):
        return self.fields[name]

    def get(self, name, default=None):
        return self.fields.get(name, default)


class TestBatch:
    """The columns of a batch, as the host sends them."""

    __test__ = False  # not a pytest class

    def __init__(self, topic, payloads, payload_ends, keys, key_ends, fields, field_ends,
                 timestamps_ms, partitions, offsets):
        self.topic = topic
        self.payloads = payloads
        self.payload_ends = payload_ends
        self.keys = keys
        self.key_ends = key_ends
        self.fields = fields
        self.field_ends = field_ends
        self.timestamps_ms = timestamps_ms
        self.partitions = partitions
        self.offsets = offsets

    def __len__(self):
        return len(self.payload_ends)


def _bytes(value, what):
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict) or (what == "event" and isinstance(value, list)):
        return json.dumps(value, separators=(",", ":")).encode("utf-8")
    raise TypeError(f"a test {what} is str, bytes or dict, not {type(value).__name__}")


def _columns(items, what):
    data = bytearray()
    ends = []
    for item in items:
        data += _bytes(item, what)
        ends.append(len(data))
    return bytes(data), ends


def make_batch(events, fields=None, keys=None, timestamps=None, topic="test"):
    """A batch of `events` (JSON text, bytes, or dicts), partition 0, offsets
    from 0. `fields[i]`: what earlier steps set on event i (a dict or JSON
    text); `keys[i]`: its Kafka key; `timestamps[i]`: its Kafka time (ms)."""
    events = list(events)
    n = len(events)

    def per_event(values, default, what):
        if values is None:
            return [default] * n
        values = list(values)
        if len(values) != n:
            raise ValueError(f"{len(values)} {what} for {n} events")
        return values

    payloads, payload_ends = _columns(events, "event")
    key_bytes, key_ends = _columns(per_event(keys, None, "keys"), "key")
    field_bytes, field_ends = _columns(per_event(fields, None, "fields"), "fields")
    return TestBatch(
        topic,
        payloads,
        payload_ends,
        key_bytes,
        key_ends,
        field_bytes,
        field_ends,
        [int(t) for t in per_event(timestamps, -1, "timestamps")],
        [0] * n,
        list(range(n)),
    )


def plugin_of(target):
    """The plugin a module defines (through its decorator), or the plugin
    itself."""
    if isinstance(target, Plugin):
        return target
    if isinstance(target, types.ModuleType):
        found = [v for v in vars(target).values() if isinstance(v, Plugin)]
        if len(found) == 1:
            return found[0]
        raise ValueError(
            f"module `{target.__name__}` defines {len(found)} plugins (decorated with "
            "@filter or @enricher); pass the one to run"
        )
    raise TypeError(
        f"run() takes a plugin (the decorated function) or its module, not {type(target).__name__}"
    )


def _config_pairs(config):
    if config is None:
        return []
    items = config.items() if isinstance(config, dict) else config
    pairs = []
    for key, value in items:
        if isinstance(value, bool):
            value = "true" if value else "false"
        pairs.append((str(key), str(value)))
    return pairs


def _table_value(value):
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _bind(tables):
    tables = {
        name: {str(k): _table_value(v) for k, v in rows.items()}
        for name, rows in (tables or {}).items()
    }

    def log(level, message):
        logs.append((level, message))

    def lookup(table, key):
        return tables.get(table, {}).get(key)

    def lookup_many(table, keys, ends):
        rows = tables.get(table, {})
        values = bytearray()
        value_ends = []
        found = []
        start = 0
        for end in ends:
            value = rows.get(keys[start:end].decode("utf-8", "surrogatepass"))
            start = end
            if value is not None:
                values += value.encode("utf-8")
            found.append(value is not None)
            value_ends.append(len(values))
        return bytes(values), value_ends, found

    _host.bind(log, lookup, lookup_many)


def run(plugin, events, config=None, lookups=None, fields=None, keys=None, timestamps=None,
        topic="test"):
    """Runs `plugin` (the decorated function or its module) over one batch
    of `events` with the step's `config` (key -> value) and lookup tables
    (`{table: {key: value}}`): one Outcome per event. Raises InitError when
    `init` fails and RetryLater when the plugin asks for the batch again."""
    plugin = plugin_of(plugin)
    batch = make_batch(events, fields=fields, keys=keys, timestamps=timestamps, topic=topic)
    logs.clear()
    _bind(lookups)
    try:
        state = plugin.init(_config_pairs(config))
        if plugin.kind == "filter":
            keep, rejected = plugin.keep_batch(state, batch)
            if len(keep) != len(batch):
                raise AssertionError(f"{len(keep)} verdicts for {len(batch)} events")
            out = [Kept if k else Dropped for k in keep]
        else:
            data, ends, rejected = plugin.enrich_batch(state, batch)
            if len(ends) != len(batch):
                raise AssertionError(f"{len(ends)} additions for {len(batch)} events")
            out = []
            start = 0
            for end in ends:
                raw = data[start:end]
                start = end
                text = raw.decode("utf-8")
                out.append(Enriched(json.loads(text) if raw else {}, text))
        for index, reason in rejected:
            out[index] = Rejected(reason)
        return out
    finally:
        _host.bind()
