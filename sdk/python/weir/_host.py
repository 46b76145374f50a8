"""What the host offers a plugin: its log and its lookup tables.

In a component these are the contract's `host` imports (bound by
`weir._component`); natively they are the tables and log of `weir.testing`.
"""

import sys

__all__ = ["log", "lookup", "bind"]

LEVELS = ("trace", "debug", "info", "warn", "error")


def _native_log(level, message):
    sys.stderr.write(f"[{level}] {message}\n")


def _native_lookup(table, key):
    return None


def _native_lookup_many(table, keys, ends):
    n = len(ends)
    return b"", [0] * n, [False] * n


_backend = {"log": _native_log, "lookup": _native_lookup, "lookup_many": _native_lookup_many}


def bind(log=None, lookup=None, lookup_many=None):
    """Routes the host calls: `log(level, message)` with a level of LEVELS,
    `lookup(table, key) -> str | None`, `lookup_many(table, keys, ends) ->
    (values, value_ends, found)`. Unset ones go back to the native defaults."""
    _backend["log"] = log or _native_log
    _backend["lookup"] = lookup or _native_lookup
    _backend["lookup_many"] = lookup_many or _native_lookup_many


def lookup(table, key):
    """Looks `key` up in reference table `table` (a table granted to the step
    with `lookups = [...]`): its value, or None when the table lacks it."""
    if not isinstance(key, str):
        key = str(key)
    return _backend["lookup"](table, key)


def lookup_many(table, keys, ends):
    return _backend["lookup_many"](table, keys, ends)


def _write(level, message, args):
    if args:
        try:
            message = message % args
        except (TypeError, ValueError):
            message = " ".join([str(message), *map(str, args)])
    elif not isinstance(message, str):
        message = str(message)
    _backend["log"](level, message)


class _Log:
    """`log.info("loaded %d rules", n)`: a line in the host's log, tagged with
    the plugin (rate-limited by the host). Arguments are %-formatted."""

    __slots__ = ()

    def trace(self, message, *args):
        _write("trace", message, args)

    def debug(self, message, *args):
        _write("debug", message, args)

    def info(self, message, *args):
        _write("info", message, args)

    def warn(self, message, *args):
        _write("warn", message, args)

    warning = warn

    def error(self, message, *args):
        _write("error", message, args)


log = _Log()
