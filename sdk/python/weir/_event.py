"""One event of a batch, read lazily, and what an enricher writes for it."""

import json
from itertools import repeat

from . import _host
from ._spec import FieldError

__all__ = ["Event", "Fields", "Columns"]

_UNREAD = object()
_ABSENT = object()
_loads = json.loads
_scan = json.decoder.JSONDecoder().scan_once
_dumps_key = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _parse_object(raw):
    """A payload as a dict; None when it is not a JSON object (its getters
    then read nothing, as the Rust SDK's do). An object that starts at the
    first byte goes straight to json's C scanner, skipping `json.loads`'s
    encoding detection and Python-level wrapper (about 3x faster)."""
    if not raw:
        return None
    try:
        text = raw.decode("utf-8")
        if text[0] == "{":
            value, end = _scan(text, 0)
            if end != len(text) and not text[end:].isspace():
                return None  # trailing data
        else:
            value = _loads(text)
    except Exception:  # not JSON, not UTF-8, nested too deep
        return None
    return value if value.__class__ is dict else None


def _key_bytes(value):
    """An event's lookup key: a string by its text, a number by its digits,
    absent or null by the empty key."""
    if value is None:
        return b""
    c = value.__class__
    if c is str:
        return value.encode("utf-8", "surrogatepass")
    if c is bool:
        return b"true" if value else b"false"
    if c is int:
        return int.__repr__(value).encode()
    if c is float:
        return float.__repr__(value).encode()
    return _dumps_key(value).encode("utf-8", "surrogatepass")


def _item(data, ends, i):
    if i >= len(ends):
        return b""
    return data[ends[i - 1] if i else 0 : ends[i]]


class Columns:
    """A batch as it crosses the boundary, plus what the plugin declared:
    event i's payload is `payloads[payload_ends[i-1]:payload_ends[i]]`."""

    __slots__ = (
        "topic",
        "payloads",
        "payload_ends",
        "keys",
        "key_ends",
        "fields",
        "field_ends",
        "timestamps_ms",
        "partitions",
        "offsets",
        "readers",
        "tables",
    )

    def __init__(self, batch, readers):
        self.topic = batch.topic
        self.payloads = batch.payloads
        self.payload_ends = batch.payload_ends
        self.keys = batch.keys
        self.key_ends = batch.key_ends
        self.fields = batch.fields
        self.field_ends = batch.field_ends
        self.timestamps_ms = batch.timestamps_ms
        self.partitions = batch.partitions
        self.offsets = batch.offsets
        self.readers = readers
        self.tables = None

    def events(self):
        """The batch's events, made one at a time as they are iterated (so
        that an event's decoded payload is freed once the plugin is done with
        it)."""
        ends = self.payload_ends
        starts = [0]
        starts.extend(ends[:-1])
        return map(Event, repeat(self), range(len(ends)), starts, ends)

    def earlier(self, i):
        """The fields earlier steps set on event i, or None."""
        if not self.fields:
            return None
        raw = _item(self.fields, self.field_ends, i)
        if not raw:
            return None
        return _parse_object(raw)

    def prefetch(self, plan, events):
        """Looks each (table, key field) up for the whole batch, one host call
        per table."""
        n = len(events)
        tables = {}
        for table, field in plan:
            keys = []
            ends = []
            pos = 0
            for event in events:
                key = _key_bytes(event._value(field))
                if key:
                    keys.append(key)
                    pos += len(key)
                ends.append(pos)
            values, value_ends, found = _host.lookup_many(table, b"".join(keys), ends)
            if len(value_ends) != n or len(found) != n:
                values, value_ends, found = b"", [0] * n, [False] * n
            tables[table] = (values, value_ends, found)
        self.tables = tables


class Event:
    """One event: its payload, the fields earlier steps set (which win over
    the payload's members of the same name) and its Kafka coordinates. The
    payload's JSON is decoded once, on the first `get`."""

    __slots__ = ("_b", "index", "_ps", "_pe", "_obj", "_set")

    def __init__(self, columns, index, start, end):
        self._b = columns
        self.index = index
        self._ps = start
        self._pe = end
        self._obj = _UNREAD
        self._set = _UNREAD

    def _value(self, name):
        """Field `name` as decoded JSON (None when absent or null)."""
        s = self._set
        if s is _UNREAD:
            b = self._b
            s = self._set = b.earlier(self.index) if b.fields else None
        if s:
            v = s.get(name, _ABSENT)
            if v is not _ABSENT:
                return v
        o = self._obj
        if o is _UNREAD:
            o = self._obj = _parse_object(self._b.payloads[self._ps : self._pe])
        if o is None:
            return None
        return o.get(name)

    def get(self, name):
        """Field `name` as its declared type (`str` for text, `int`, `float`,
        `bool` for boolean, the decoded value for json); None when it is
        absent, null or of another type."""
        read = self._b.readers.get(name)
        if read is None:
            raise FieldError(self._undeclared(name))
        return read(self._value(name))

    def has(self, name):
        """Whether field `name` is present and not null."""
        if name not in self._b.readers:
            raise FieldError(self._undeclared(name))
        return self._value(name) is not None

    def _undeclared(self, name):
        reads = ", ".join(self._b.readers) or "none"
        return f"field `{name}` is not among the fields the plugin reads (reads: {reads})"

    def is_object(self):
        """Whether the payload is a JSON object."""
        o = self._obj
        if o is _UNREAD:
            o = self._obj = _parse_object(self._b.payloads[self._ps : self._pe])
        return o is not None

    def lookup(self, table):
        """The answer of lookup table `table` for this event's key field,
        fetched for the whole batch in one host call before the plugin's
        function ran (`lookups={"categories": "pin_id"}`); None when the table
        lacks the key."""
        tables = self._b.tables
        entry = tables.get(table) if tables else None
        if entry is None:
            known = ", ".join(tables or ()) or "none"
            raise FieldError(
                f"lookup table `{table}` is not declared with a key field in the decorator's "
                f'lookups= (such as lookups={{"{table}": "KEY_FIELD"}}; declared: {known}); '
                f"look single keys up with weir.lookup(table, key)"
            )
        values, ends, found = entry
        i = self.index
        if not found[i]:
            return None
        return values[ends[i - 1] if i else 0 : ends[i]].decode("utf-8", "replace")

    @property
    def payload(self):
        """The Kafka value, as bytes."""
        return self._b.payloads[self._ps : self._pe]

    @property
    def key(self):
        """The Kafka key, as bytes (empty when the record had none)."""
        return _item(self._b.keys, self._b.key_ends, self.index)

    @property
    def topic(self):
        return self._b.topic

    @property
    def timestamp_ms(self):
        """Kafka's timestamp in milliseconds since the Unix epoch (-1: none)."""
        ts = self._b.timestamps_ms
        return ts[self.index] if self.index < len(ts) else -1

    @property
    def partition(self):
        p = self._b.partitions
        return p[self.index] if self.index < len(p) else -1

    @property
    def offset(self):
        o = self._b.offsets
        return o[self.index] if self.index < len(o) else -1

    def __repr__(self):
        return f"Event(index={self.index}, payload={self.payload[:80]!r})"


class Fields:
    """The fields an enricher sets on one event: `out.set("city", "Paris")`
    or `out["city"] = "Paris"`. A field not declared in `writes=`, or a value
    not of its declared type, raises FieldError (and the event becomes a dead
    letter). Setting a field twice keeps the last value."""

    __slots__ = ("_w", "_m")

    def __init__(self, writers):
        self._w = writers
        self._m = {}

    def set(self, name, value):
        member = self._w.get(name)
        if member is None:
            writes = ", ".join(self._w) or "none"
            raise FieldError(
                f"field `{name}` is not among the fields the plugin writes (writes: {writes})"
            )
        self._m[name] = member(value)

    def __setitem__(self, name, value):
        self.set(name, value)

    def update(self, values=(), **more):
        """Sets several fields: `out.update(city="Paris", country="FR")`."""
        for name, value in dict(values, **more).items():
            self.set(name, value)

    def __contains__(self, name):
        return name in self._m

    def __len__(self):
        return len(self._m)

    def __repr__(self):
        return "Fields({" + ",".join(self._m.values()) + "})"
