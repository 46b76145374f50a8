"""{{name}}: adds `hour`, the hour of the day (UTC) of each event's `ts`
(epoch milliseconds); null when the event has no `ts`.

    [[pipeline.step]]
    plugin = "{{name}}"
"""

from weir import Event, Fields, enricher


@enricher(
    name="{{name}}",
    version="0.1.0",
    reads={"ts": "int?"},
    writes={"hour": "int?"},
)
def enrich(event: Event, out: Fields) -> None:
    ts = event.get("ts")
    out.set("hour", None if ts is None else ts // 3_600_000 % 24)
