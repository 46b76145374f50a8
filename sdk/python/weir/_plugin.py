"""The decorators, a plugin's declarations and the batch loops the host drives."""

import os

from ._config import ConfigError, build_config, parse_defaults
from ._event import Columns, Fields
from ._spec import READERS, DeclarationError, FieldSpec, parse_fields, writer

__all__ = [
    "Plugin",
    "Description",
    "Reject",
    "RetryLater",
    "InitError",
    "enricher",
    "filter",
    "registered",
]

_SDK_DIR = os.path.dirname(__file__) + os.sep
_MAX_REASON = 1000


class Reject(Exception):
    """Refuses the event: it leaves the pipeline as a dead letter carrying
    `reason`. Raise it from the plugin's function (a filter may also return
    one)."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = str(reason)


class RetryLater(Exception):
    """The whole batch cannot be processed now (a lookup table is not loaded
    yet, say): the host retries the same batch later, with backoff."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = str(reason)


class InitError(Exception):
    """`init` failed: the pipeline does not start, with this message."""


class Description:
    """What a plugin is and the fields it reads and writes."""

    __slots__ = ("name", "version", "reads", "writes")

    def __init__(self, name, version, reads, writes):
        self.name = name
        self.version = version
        self.reads = reads
        self.writes = writes

    def __repr__(self):
        return (
            f"Description(name={self.name!r}, version={self.version!r}, "
            f"reads={self.reads!r}, writes={self.writes!r})"
        )


def _where(filename, line, function):
    return f"{os.path.basename(filename)}:{line} in {function}"


def failure_reason(exc, user_dir):
    """`ZeroDivisionError: division by zero (at app.py:17 in enrich)`: the
    exception's type and message, and where it was raised: the traceback's
    last frame outside the SDK (and, when that is not in the plugin's own
    files, the plugin's last frame too)."""
    try:
        message = str(exc)
    except Exception:
        message = ""
    head = type(exc).__name__ + (": " + message if message else "")
    if len(head) > _MAX_REASON:
        head = head[: _MAX_REASON - 3] + "..."
    last = mine = None
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        filename = code.co_filename
        if not filename.startswith(_SDK_DIR):
            last = (filename, tb.tb_lineno, code.co_name)
            if user_dir and filename.startswith(user_dir):
                mine = last
        tb = tb.tb_next
    if last is None:
        return head
    where = _where(*last)
    if mine is not None and mine is not last:
        where += ", from " + _where(*mine)
    return f"{head} (at {where})"


def _positional(fn):
    """How many positional arguments `fn` takes (None: any number)."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return None
    if code.co_flags & 0x04:  # *args
        return None
    n = code.co_argcount
    if hasattr(fn, "__self__"):  # a bound method
        n -= 1
    return n


class Plugin:
    """A filter or an enricher: the decorated function and its declarations.
    Calling it calls the function."""

    def __init__(self, kind, fn, name, version, reads, writes, lookups, config):
        if not callable(fn):
            raise DeclarationError(f"@{kind} decorates a function, not {fn!r}")
        if not isinstance(name, str) or not name:
            raise DeclarationError(
                f"@{kind}(name=...) is required: the plugin's name, which is also its "
                "file's (`NAME.wasm`)"
            )
        if not isinstance(version, str) or not version:
            raise DeclarationError(f"@{kind}: version= is a non-empty string")
        self.kind = kind
        self.fn = fn
        self.name = name
        self.version = version
        self.reads = parse_fields("reads", reads)
        self.writes = parse_fields("writes", writes)
        for what, specs in (("reads", self.reads), ("writes", self.writes)):
            seen = set()
            for spec in specs:
                if spec.name in seen:
                    raise DeclarationError(f"{what}=: field `{spec.name}` is declared twice")
                seen.add(spec.name)
        self._readers = {s.name: READERS[s.type] for s in self.reads}
        self._writers = {s.name: writer(s) for s in self.writes}
        self.lookups = self._parse_lookups(lookups)
        self._plan = [(table, field) for table, field in self.lookups.items() if field]
        self.config = parse_defaults(config)
        self._setup = None
        arity = _positional(fn)
        least = 1 if kind == "filter" else 2
        takes = "(event)" if kind == "filter" else "(event, out)"
        if arity is not None and arity < least:
            raise DeclarationError(
                f"@{kind} function `{getattr(fn, '__name__', fn)}` takes {takes} or "
                f"{takes[:-1]}, config), not {arity} argument(s)"
            )
        self._with_state = arity is None or arity > least
        code = getattr(fn, "__code__", None)
        self._user_dir = os.path.dirname(code.co_filename) + os.sep if code else None
        self.__name__ = getattr(fn, "__name__", kind)
        self.__doc__ = getattr(fn, "__doc__", None)
        self.__wrapped__ = fn

    def _parse_lookups(self, lookups):
        if lookups is None:
            return {}
        if isinstance(lookups, (list, tuple)):
            lookups = dict.fromkeys(lookups)
        if not isinstance(lookups, dict):
            raise DeclarationError(
                'lookups= takes a dict of table to key field, such as {"categories": "pin_id"} '
                "(None for a table looked up with weir.lookup only)"
            )
        for table, field in lookups.items():
            if not isinstance(table, str) or not table:
                raise DeclarationError(f"lookups=: a table name is a non-empty string, not {table!r}")
            if field is None:
                continue
            if field not in self._readers:
                raise DeclarationError(
                    f"lookups=: `{field}` is not among the fields this plugin reads: the key "
                    f"field of table `{table}` is read from every event, so declare it in reads="
                )
        return dict(lookups)

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    def __repr__(self):
        return f"<weir {self.kind} {self.name!r} {self.version}>"

    def setup(self, fn):
        """Decorates `setup(config) -> state`, run once by `init`: its result
        is what the plugin's function gets as its last argument instead of
        the Config. An exception fails `init` with its message."""
        self._setup = fn
        return fn

    def describe(self):
        return Description(self.name, self.version, list(self.reads), list(self.writes))

    def init(self, pairs):
        """The state for the step's config pairs; raises InitError."""
        try:
            config = build_config(self.config, pairs)
            if self._setup is None:
                return config
            return self._setup(config)
        except ConfigError as e:
            raise InitError(str(e)) from None
        except Exception as e:
            raise InitError(failure_reason(e, self._user_dir)) from None

    def _bad_verdict(self, value):
        code = getattr(self.fn, "__code__", None)
        where = f" (at {_where(code.co_filename, code.co_firstlineno, code.co_name)})" if code else ""
        text = repr(value)
        if len(text) > 60:
            text = text[:57] + "..."
        return (
            "TypeError: a filter returns True (keep) or False (drop), or raises Reject, "
            f"not {type(value).__name__} {text}{where}"
        )

    def keep_batch(self, state, batch):
        """Runs the filter over a batch: (keep per event, [(index, reason)])."""
        columns = Columns(batch, self._readers)
        events = columns.events()
        if self._plan:
            # The key fields decode every payload first; the events are kept.
            events = list(events)
            columns.prefetch(self._plan, events)
        fn = self.fn
        with_state = self._with_state
        keep = []
        rejected = []
        for event in events:
            try:
                verdict = fn(event, state) if with_state else fn(event)
            except Reject as r:
                keep.append(False)
                rejected.append((event.index, r.reason))
                continue
            except RetryLater:
                raise
            except Exception as e:
                keep.append(False)
                rejected.append((event.index, failure_reason(e, self._user_dir)))
                continue
            if verdict is True:
                keep.append(True)
            elif verdict is False:
                keep.append(False)
            else:
                keep.append(False)
                if isinstance(verdict, Reject):
                    rejected.append((event.index, verdict.reason))
                else:
                    rejected.append((event.index, self._bad_verdict(verdict)))
        return keep, rejected

    def enrich_batch(self, state, batch):
        """Runs the enricher over a batch: (additions bytes, end per event,
        [(index, reason)]). Each event's additions are one JSON object of
        the fields it set (nothing when it set none), all joined once."""
        columns = Columns(batch, self._readers)
        events = columns.events()
        if self._plan:
            # The key fields decode every payload first; the events are kept.
            events = list(events)
            columns.prefetch(self._plan, events)
        fn = self.fn
        with_state = self._with_state
        writers = self._writers
        parts = []
        ends = []
        pos = 0
        rejected = []
        for event in events:
            out = Fields(writers)
            try:
                result = fn(event, out, state) if with_state else fn(event, out)
                if result is not None:
                    if not isinstance(result, dict):
                        raise TypeError(
                            "an enricher sets fields on `out` and returns None (or a dict of "
                            f"fields), not {type(result).__name__}"
                        )
                    out.update(result)
            except Reject as r:
                rejected.append((event.index, r.reason))
                ends.append(pos)
                continue
            except RetryLater:
                raise
            except Exception as e:
                rejected.append((event.index, failure_reason(e, self._user_dir)))
                ends.append(pos)
                continue
            members = out._m
            if members:
                text = "{" + ",".join(members.values()) + "}"
                parts.append(text)
                pos += len(text)
            ends.append(pos)
        return "".join(parts).encode("ascii"), ends, rejected


_registry = []


def registered():
    """The plugins decorated so far, in order."""
    return list(_registry)


def _decorator(kind, name, version, reads, writes, lookups, config):
    def wrap(fn):
        plugin = Plugin(kind, fn, name, version, reads, writes, lookups, config)
        _registry.append(plugin)
        return plugin

    return wrap


def enricher(fn=None, *, name=None, version="0.1.0", reads=None, writes=None, lookups=None, config=None):
    """Makes `fn(event, out[, config])` an enricher: it reads the declared
    fields with `event.get(name)` and sets the declared writes on `out`.

    `reads`/`writes`: field name -> type (`text`, `int`, `float`, `boolean`,
    `json`; `?` for nullable). `lookups`: table -> key field (prefetched for
    the whole batch, read with `event.lookup(table)`), or None. `config`:
    known configuration keys and their defaults."""
    if fn is not None:
        raise DeclarationError("@enricher takes arguments: @enricher(name=..., reads=..., writes=...)")
    if writes is None or not writes:
        raise DeclarationError("@enricher: writes= declares at least one field the plugin sets")
    return _decorator("enricher", name, version, reads, writes, lookups, config)


def filter(fn=None, *, name=None, version="0.1.0", reads=None, lookups=None, config=None):  # noqa: A001
    """Makes `fn(event[, config])` a filter: it returns True to keep the
    event, False to drop it, or raises Reject(reason) to make it a dead
    letter. Declarations as for `enricher`, without writes."""
    if fn is not None:
        raise DeclarationError("@filter takes arguments: @filter(name=..., reads=...)")
    return _decorator("filter", name, version, reads, None, lookups, config)

