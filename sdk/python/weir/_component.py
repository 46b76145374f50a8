"""The glue between componentize-py's bindings of `wit/plugin.wit` and the
decorated plugin. Imported only inside a component build, by the entry module
that `sdk/python/build` generates:

    import app
    from weir import _component
    Enricher = _component.export("enricher")
"""

from componentize_py_types import Err
from wit_world.imports import host as _wit_host
from wit_world.imports import types as _wit

from . import _host, _plugin

_LEVELS = {
    "trace": _wit_host.Level.TRACE,
    "debug": _wit_host.Level.DEBUG,
    "info": _wit_host.Level.INFO,
    "warn": _wit_host.Level.WARN,
    "error": _wit_host.Level.ERROR,
}

_FIELD_TYPES = {
    "text": _wit.FieldType.TEXT,
    "int": _wit.FieldType.INT,
    "float": _wit.FieldType.FLOAT,
    "boolean": _wit.FieldType.BOOLEAN,
    "json": _wit.FieldType.JSON,
}


def _log(level, message):
    _wit_host.log(_LEVELS[level], message)


_host.bind(_log, _wit_host.lookup, _wit_host.lookup_many)

# The one plugin of this component and its state after `init`.
_plugin_ref = []
_state = []


def _the_plugin():
    return _plugin_ref[0]


def _the_state():
    if not _state:
        # The host calls `init` first; should it not, the defaults apply.
        _state.append(_the_plugin().init([]))
    return _state[0]


def _spec(spec):
    return _wit.FieldSpec(spec.name, _FIELD_TYPES[spec.type], spec.nullable)


def _describe():
    d = _the_plugin().describe()
    return _wit.Description(d.name, d.version, [_spec(s) for s in d.reads], [_spec(s) for s in d.writes])


def _init(config):
    try:
        state = _the_plugin().init(config)
    except _plugin.InitError as e:
        raise Err(str(e)) from None
    _state.clear()
    _state.append(state)


class Filter:
    """The `weir:plugin/filter` export."""

    def describe(self):
        return _describe()

    def init(self, config):
        _init(config)

    def keep(self, events):
        try:
            keep, rejected = _the_plugin().keep_batch(_the_state(), events)
        except _plugin.RetryLater as r:
            raise Err(_wit.RetryLater(r.reason)) from None
        return keep, [_wit.Rejection(i, reason) for i, reason in rejected]


class Enricher:
    """The `weir:plugin/enricher` export."""

    def describe(self):
        return _describe()

    def init(self, config):
        _init(config)

    def enrich(self, events):
        try:
            data, ends, rejected = _the_plugin().enrich_batch(_the_state(), events)
        except _plugin.RetryLater as r:
            raise Err(_wit.RetryLater(r.reason)) from None
        return _wit.Additions(data, ends, [_wit.Rejection(i, reason) for i, reason in rejected])


def export(kind):
    """The export class for `kind` ("filter" or "enricher"), once the app
    module has registered exactly one plugin of that kind."""
    plugins = _plugin.registered()
    mine = [p for p in plugins if p.kind == kind]
    if len(mine) != 1:
        found = ", ".join(f"{p.kind} {p.name!r}" for p in plugins) or "none"
        raise RuntimeError(
            f"a {kind} component needs exactly one function decorated with @{kind}; "
            f"the app registered: {found}"
        )
    _plugin_ref.clear()
    _plugin_ref.append(mine[0])
    return Filter if kind == "filter" else Enricher
