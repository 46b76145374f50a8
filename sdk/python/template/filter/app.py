"""{{name}}: keeps the events whose `action` is one of the configured ones.

    [[pipeline.step]]
    plugin = "{{name}}"
    config = { actions = "click,save" }
"""

from weir import Config, Event, Reject, filter


@filter(
    name="{{name}}",
    version="0.1.0",
    reads={"action": "text?"},
    config={"actions": "click,save"},
)
def keep(event: Event, config: Config) -> bool:
    if not event.is_object():
        raise Reject("payload is not a JSON object")
    return event.get("action") in config.list("actions")
