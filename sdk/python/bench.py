#!/usr/bin/env python3
"""Native throughput of a Python plugin through the SDK's batch loop (no wasm):

    python3 sdk/python/bench.py plugins/python-device-enricher examples/events.jsonl [--batch 500]

Prints ns/event for the whole loop (payload decoding, the plugin's function,
the additions), and for a plugin that reads one field and writes nothing, as
the SDK's own floor. A component runs the same code in CPython compiled to
WebAssembly: expect it several times slower.
"""

import argparse
import importlib
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from weir import enricher  # noqa: E402
from weir.testing import make_batch, plugin_of  # noqa: E402


def measure(plugin, batches, rounds):
    state = plugin.init([])
    run = plugin.keep_batch if plugin.kind == "filter" else plugin.enrich_batch
    events = sum(len(b) for b in batches)
    best = None
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for b in batches:
            run(state, b)
        took = time.perf_counter_ns() - start
        best = took if best is None else min(best, took)
    return best / events


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("plugin_dir")
    parser.add_argument("events")
    parser.add_argument("--module", default="app")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    sys.path.insert(0, os.path.abspath(args.plugin_dir))
    plugin = plugin_of(importlib.import_module(args.module))
    with open(args.events, "rb") as f:
        lines = [line for line in f.read().split(b"\n") if line.strip()]
    batches = [make_batch(lines[i : i + args.batch]) for i in range(0, len(lines), args.batch)]

    field = plugin.reads[0].name if plugin.reads else "x"

    @enricher(name="floor", reads={field: "json?"}, writes={"unused": "int?"})
    def floor(event, out):
        event.get(field)

    ns = measure(plugin, batches, args.rounds)
    base = measure(floor, batches, args.rounds)
    print(f"{plugin.name}: {ns:.0f} ns/event natively ({len(lines)} events, batches of "
          f"{args.batch}, best of {args.rounds}, Python {sys.version.split()[0]})")
    print(f"SDK floor (decode one field, write nothing): {base:.0f} ns/event")


if __name__ == "__main__":
    main()
