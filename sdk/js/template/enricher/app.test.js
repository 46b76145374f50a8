// `node --test`: the plugin natively, over batches built from JSON lines.

import { test } from "node:test";
import assert from "node:assert/strict";
import { run, enriched } from "weir/testing";

import plugin from "./app.js";

test("adds the hour of the day", () => {
  const out = run(plugin, { events: ['{"ts":34200000}', '{"ts":1764000000000}', "{}"] });
  assert.deepEqual(out, [enriched({ hour: 9 }), enriched({ hour: 16 }), enriched({ hour: null })]);
});

test("takes no configuration", () => {
  assert.throws(() => run(plugin, { config: { zone: "UTC" } }), {
    message: "config `zone`: unknown key: the plugin takes no configuration",
  });
});
