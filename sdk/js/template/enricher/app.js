// {{name}}: a Weir enricher. It adds `hour`, the hour of the day (UTC) of
// the event's `ts` (milliseconds since the Unix epoch), or null without one.

import { enricher } from "weir";

export default enricher(
  {
    name: "{{name}}",
    version: "0.1.0",
    // The fields it reads and writes, with their types (`?`: may be null);
    // `weir check` matches them against the pipeline's fields and columns.
    reads: { ts: "int?" },
    writes: { hour: "int?" },
  },
  // Sets fields with out.set(name, value); `throw new Reject(reason)`: a dead letter.
  (event, out) => {
    const ms = event.get("ts");
    out.set("hour", ms === null ? null : (Math.floor(ms / 3_600_000) % 24 + 24) % 24);
  },
);
