// `node --test`: the plugin natively, over batches built from JSON lines.

import { test } from "node:test";
import assert from "node:assert/strict";
import { run, kept, dropped } from "weir/testing";

import plugin from "./app.js";

test("keeps the configured actions", () => {
  const events = ['{"action":"save"}', '{"action":"click"}', "{}"];
  assert.deepEqual(run(plugin, { events }), [kept, dropped, dropped]);
  assert.deepEqual(run(plugin, { events, config: { actions: "click" } }), [dropped, kept, dropped]);
});

test("an unknown configuration key stops the step", () => {
  assert.throws(() => run(plugin, { config: { action: "save" } }), {
    message: "config `action`: unknown key (known: actions)",
  });
});
