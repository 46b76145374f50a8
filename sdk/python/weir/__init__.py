"""Write a Weir filter or enricher in Python as one plain function.

    from weir import enricher, Event, Fields

    @enricher(name="hour-enricher", reads={"ts": "int?"}, writes={"hour": "int?"})
    def enrich(event: Event, out: Fields) -> None:
        ts = event.get("ts")
        out.set("hour", None if ts is None else ts // 3_600_000 % 24)

`sdk/python/build PLUGIN_DIR OUT.wasm` makes the component the host runs;
`weir.testing.run` runs the same batch loop natively, for unit tests.
"""

from ._config import Config, ConfigError
from ._event import Event, Fields
from ._host import log, lookup
from ._plugin import Description, InitError, Plugin, Reject, RetryLater, enricher, filter
from ._spec import DeclarationError, FieldError, FieldSpec

__all__ = [
    "enricher",
    "filter",
    "Event",
    "Fields",
    "Config",
    "ConfigError",
    "Reject",
    "RetryLater",
    "FieldError",
    "DeclarationError",
    "InitError",
    "Plugin",
    "Description",
    "FieldSpec",
    "log",
    "lookup",
]

__version__ = "0.1.0"
