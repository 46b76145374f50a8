"""python-raiser: divides by the user id modulo 7, so that one user in seven
raises ZeroDivisionError: each such event must become a dead letter carrying
Python's message and the line that raised, and the others flow on."""

from weir import Event, Fields, enricher


@enricher(
    name="python-raiser",
    version="0.1.0",
    reads={"user_id": "int"},
    writes={"ratio": "float?"},
)
def enrich(event: Event, out: Fields) -> None:
    out.set("ratio", 1 / (event.get("user_id") % 7))
