// Native tests: `node --test` in this folder. This checkout's SDK is made to
// resolve as `weir` first (its resolve hook), then the modules importing it
// are loaded.
import "../../sdk/js/register.js";
import { test } from "node:test";
import assert from "node:assert/strict";

const { run, describe, kept, dropped, rejected } = await import("weir/testing");
const { default: plugin, bucket, fnv1a } = await import("./app.js");

/** FNV-1a, 32-bit, written again here from its definition. */
function reference(text) {
  let h = 0x811c9dc5n;
  for (const byte of Buffer.from(text, "utf8")) h = ((h ^ BigInt(byte)) * 0x01000193n) & 0xffffffffn;
  return Number(h);
}

const users = Array.from({ length: 2000 }, (_, i) => i * 7919 + 1);
const events = users.map((u) => JSON.stringify({ event_id: `e${u}`, user_id: u, action: "save" }));

test("FNV-1a gives the published test vectors", () => {
  assert.equal(fnv1a(""), 0x811c9dc5);
  assert.equal(fnv1a("a"), 0xe40c292c);
  assert.equal(fnv1a("foobar"), 0xbf9cf968);
  assert.equal(bucket("weir", 42), reference("weir:42") % 10000);
});

test("keeps exactly the users whose bucket is below percent × 100", () => {
  const out = run(plugin, { events, config: { percent: "25" } });
  const want = users.map((u) => (reference(`weir:${u}`) % 10000 < 2500 ? kept : dropped));
  assert.deepEqual(out, want);
  const share = out.filter((o) => o === kept).length / users.length;
  assert.ok(share > 0.22 && share < 0.28, `kept ${share}`);
});

test("the default is 10 percent, and the salt picks another sample", () => {
  const tenth = run(plugin, { events });
  assert.deepEqual(tenth, users.map((u) => (reference(`weir:${u}`) % 10000 < 1000 ? kept : dropped)));
  const salted = run(plugin, { events, config: { salt: "other" } });
  assert.deepEqual(salted, users.map((u) => (reference(`other:${u}`) % 10000 < 1000 ? kept : dropped)));
  assert.notDeepEqual(salted, tenth);
});

test("the same event gets the same verdict in any batch, order or instance", () => {
  const config = { percent: "33.3" };
  const whole = run(plugin, { events, config });
  const reversed = run(plugin, { events: [...events].reverse(), config }).reverse();
  const oneByOne = events.slice(0, 200).map((e) => run(plugin, { events: [e], config })[0]);
  assert.deepEqual(reversed, whole);
  assert.deepEqual(oneByOne, whole.slice(0, 200));
});

test("0 keeps no one, 100 everyone but the excluded users", () => {
  assert.ok(run(plugin, { events, config: { percent: "0" } }).every((o) => o === dropped));
  const all = run(plugin, { events, config: { percent: "100", exclude_users: `${users[3]}, ${users[5]}` } });
  assert.deepEqual(all.slice(0, 7), [kept, kept, kept, dropped, kept, dropped, kept]);
  assert.equal(all.filter((o) => o === kept).length, users.length - 2);
});

test("an event without an integer user_id is a dead letter", () => {
  const out = run(plugin, {
    events: ['{"user_id":"12"}', '{"user_id":1.5}', '{"user_id":null}', '{"event_id":"x"}', '{"user_id":12}'],
    config: { percent: "100" },
  });
  const why = rejected("no integer `user_id`");
  assert.deepEqual(out, [why, why, why, why, kept]);
});

test("a wrong configuration stops init, naming the key", () => {
  assert.throws(() => run(plugin, { config: { percentage: "5" } }), {
    name: "InitError",
    message: "config `percentage`: unknown key (known: percent, salt, exclude_users)",
  });
  assert.throws(() => run(plugin, { config: { percent: "120" } }), { message: "config `percent`: must be between 0 and 100 (got `120`)" });
  assert.throws(() => run(plugin, { config: { percent: "ten" } }), { message: "config `percent`: expected a number (got `ten`)" });
  assert.throws(() => run(plugin, { config: { exclude_users: "1,bob" } }), {
    message: "config `exclude_users`: item `bob`: expected an integer user id",
  });
});

test("declares what it reads", () => {
  assert.deepEqual(describe(plugin), {
    name: "js-sample-filter",
    version: "0.1.0",
    reads: [{ name: "user_id", type: "int", nullable: false }],
    writes: [],
  });
});
