// The SDK's own tests, natively: `cd sdk/js && node --test` (the package
// imports itself by its name, `weir`).

import { test } from "node:test";
import assert from "node:assert/strict";

import { ConfigError, enricher, filter, log, lookup, Reject, RetryLater } from "weir";
import { batch, describe, dropped, enriched, InitError, kept, rejected, run } from "weir/testing";

const everyType = enricher(
  {
    name: "every-type",
    reads: { t: "text?", i: "int?", f: "float?", b: "boolean?", j: "json?" },
    writes: { out: "json" },
  },
  (event, out) => {
    out.set("out", { t: event.get("t"), i: event.get("i"), f: event.get("f"), b: event.get("b"), j: event.get("j") });
  },
);

test("a read gives its type, or null when absent, null or of another type", () => {
  const out = run(everyType, {
    events: [
      '{"t":"x","i":-3,"f":2.5,"b":true,"j":{"k":[1]}}',
      '{"t":1,"i":2.5,"f":2,"b":"true","j":null}',
      '{"i":9223372036854775807,"f":"1"}',
      "{}",
    ],
  });
  assert.deepEqual(out, [
    enriched({ out: { t: "x", i: -3, f: 2.5, b: true, j: { k: [1] } } }),
    enriched({ out: { t: null, i: null, f: 2, b: null, j: null } }),
    // 2^63 - 1 reads as the nearest double, 2^63: outside the 64-bit range.
    enriched({ out: { t: null, i: null, f: null, b: null, j: null } }),
    enriched({ out: { t: null, i: null, f: null, b: null, j: null } }),
  ]);
});

test("fields set by earlier steps win over the payload's members", () => {
  const out = run(everyType, {
    events: ['{"t":"payload","i":1}', '{"t":"payload"}'],
    fields: ['{"t":"earlier"}', undefined],
  });
  assert.equal(out[0].fields.out.t, "earlier");
  assert.equal(out[0].fields.out.i, 1);
  assert.equal(out[1].fields.out.t, "payload");
});

test("payloads that cannot be parsed as one batch are parsed one by one", () => {
  const keepIfA = filter({ name: "keep-if-a", reads: { a: "int" } }, (e) => e.get("a") === 1);
  const batches = [
    ['{"a":1}', '{"a":2}', '{"a":1}'],
    // `}{` inside a string, spaces between objects, an array, a non-object.
    ['{"s":"}{","a":1}', '{"a":2}', ' {"a":1} ', "[1]", "7", '{"a":1}'],
    ['{"a":1,"a":2}', '{"a":2,"a":1}'],
  ];
  assert.deepEqual(run(keepIfA, { events: batches[0] }), [kept, dropped, kept]);
  assert.deepEqual(run(keepIfA, { events: batches[1] }), [kept, dropped, kept, dropped, dropped, kept]);
  // The last of duplicate members wins, as the host reads them.
  assert.deepEqual(run(keepIfA, { events: batches[2] }), [dropped, kept]);
  const noProto = filter({ name: "no-proto", reads: { constructor: "json?", toString: "json?" } }, (e) =>
    e.get("constructor") === null && e.get("toString") === 1,
  );
  assert.deepEqual(run(noProto, { events: ['{"toString":1}', '{"toString":1}'] }), [kept, kept]);
});

test("non-ASCII payloads and additions keep their byte offsets", () => {
  const upper = enricher({ name: "upper", reads: { city: "text?" }, writes: { city_upper: "text?" } }, (e, out) => {
    out.set("city_upper", e.get("city")?.toUpperCase());
  });
  const out = run(upper, { events: ['{"city":"São Paulo"}', '{"city":"Zürich 🏔"}', "{}", '{"city":"Oslo"}'] });
  assert.deepEqual(out, [
    enriched({ city_upper: "SÃO PAULO" }),
    enriched({ city_upper: "ZÜRICH 🏔" }),
    enriched({ city_upper: null }),
    enriched({ city_upper: "OSLO" }),
  ]);
  assert.equal(out[0].json, '{"city_upper":"SÃO PAULO"}');
});

test("the event's Kafka coordinates", () => {
  const coords = enricher(
    { name: "coords", writes: { c: "json" } },
    (e, out) => out.set("c", [e.index, e.offset, e.partition, e.timestampMs, e.keyText, e.topic, e.payloadText]),
  );
  const out = run(coords, { events: ['{"a":1}', "{}"], keys: ["k1"], timestampsMs: [1764000000000], topic: "t" });
  assert.deepEqual(out[0].fields.c, [0, 0, 0, 1764000000000, "k1", "t", '{"a":1}']);
  assert.deepEqual(out[1].fields.c, [1, 1, 0, -1, "", "t", "{}"]);
  const b = batch(["{}"]);
  assert.equal(b.payloadEnds[0], 2);
  assert.equal(b.offsets[0], 0n);
});

test("writes are checked against the declared fields and types", () => {
  const writer = enricher(
    { name: "writer", reads: { v: "json?" }, writes: { n: "int", s: "text?", f: "float?", b: "boolean?" } },
    (e, out) => {
      const [field, value] = e.get("v");
      out.set(field, value);
    },
  );
  const out = run(writer, {
    events: [
      '{"v":["n",3]}',
      '{"v":["n",3.5]}',
      '{"v":["n",null]}',
      '{"v":["s",null]}',
      '{"v":["s",1]}',
      '{"v":["x",1]}',
      '{"v":["f",1e400]}',
      '{"v":["b",true]}',
    ],
  });
  assert.deepEqual(out[0], enriched({ n: 3 }));
  assert.match(out[1].reason, /^TypeError: `n` is int: it cannot be set to 3\.5 \(a number\) \(at test\/sdk\.test\.js:\d+:\d+\)$/);
  assert.match(out[2].reason, /^TypeError: `n` is int, not nullable: it cannot be set to null/);
  assert.deepEqual(out[3], enriched({ s: null }));
  assert.match(out[4].reason, /^TypeError: `s` is text\?: it cannot be set to 1 \(an integer\)/);
  assert.match(out[5].reason, /^TypeError: `x` is not among the fields writer writes \(n, s, f, b\): declare it in the spec's `writes`/);
  // Not finite: null, as the Rust SDK writes it.
  assert.equal(out[6].json, '{"f":null}');
  assert.deepEqual(out[7], enriched({ b: true }));
});

test("an undeclared read fails that event, naming the declared fields", () => {
  const reader = filter({ name: "reader", reads: { a: "int" } }, (e) => e.get("b") !== null);
  const [out] = run(reader, { events: ['{"b":1}'] });
  assert.match(out.reason, /^TypeError: `b` is not among the fields reader reads \(a\): declare it in the spec's `reads` \(at test\/sdk\.test\.js:\d+:\d+\)$/);
});

test("a throw rejects only its event, with the message and the plugin's line", () => {
  const thrower = filter({ name: "thrower", reads: { n: "int" } }, (e) => {
    const n = e.get("n");
    if (n === 1) throw new Reject("one is not wanted");
    if (n === 2) return undefined.x;
    if (n === 3) throw "plain string";
    if (n === 4) return "yes";
    return true;
  });
  const out = run(thrower, { events: ['{"n":0}', '{"n":1}', '{"n":2}', '{"n":3}', '{"n":4}', '{"n":5}'] });
  assert.deepEqual(out[0], kept);
  assert.deepEqual(out[1], rejected("one is not wanted"));
  assert.match(out[2].reason, /^TypeError: .+ \(at test\/sdk\.test\.js:\d+:\d+\)$/);
  assert.deepEqual(out[3], rejected('"plain string"'));
  assert.deepEqual(out[4], rejected('the filter returned "yes": a filter returns true (keep) or false (drop), or throws new Reject(reason)'));
  assert.deepEqual(out[5], kept);
});

test("RetryLater retries the whole batch", () => {
  const later = filter({ name: "later" }, () => {
    throw new RetryLater("table not loaded");
  });
  assert.throws(() => run(later, { events: ["{}"] }), (e) => e instanceof RetryLater && e.message === "table not loaded");
});

test("configuration: defaults, types, unknown keys, init", () => {
  const configured = filter(
    {
      name: "configured",
      config: { s: "x", n: 1.5, b: false, l: ["a"], o: null },
      init: (c) => ({ ...c, doubled: c.n * 2 }),
    },
    (_e, c) => {
      log.info(JSON.stringify(c));
      return true;
    },
  );
  let out = run(configured, { events: ["{}"] });
  assert.deepEqual(JSON.parse(out.logs[0].message), { s: "x", n: 1.5, b: false, l: ["a"], o: null, doubled: 3 });
  out = run(configured, { events: ["{}"], config: { s: "y", n: " 4 ", b: "true", l: "p, q,,r", o: "set", "file.data": "/weir/files/data" } });
  assert.deepEqual(JSON.parse(out.logs[0].message), { s: "y", n: 4, b: true, l: ["p", "q", "r"], o: "set", doubled: 8 });
  assert.throws(() => run(configured, { config: { nn: "1" } }), {
    name: "InitError",
    message: "config `nn`: unknown key (known: s, n, b, l, o)",
  });
  assert.throws(() => run(configured, { config: { n: "x" } }), { message: "config `n`: expected a number (got `x`)" });
  assert.throws(() => run(configured, { config: { b: "yes" } }), { message: "config `b`: expected `true` or `false` (got `yes`)" });
  const bare = filter({ name: "bare" }, () => true);
  assert.throws(() => run(bare, { config: { x: "1" } }), { message: "config `x`: unknown key: the plugin takes no configuration" });
  const strict = filter(
    {
      name: "strict",
      config: { limit: 10 },
      init: ({ limit }) => {
        if (limit < 0) throw new ConfigError("limit", `must not be negative (got \`${limit}\`)`);
        if (limit === 0) return null.x;
        return limit;
      },
    },
    () => true,
  );
  assert.throws(() => run(strict, { config: { limit: "-1" } }), { message: "config `limit`: must not be negative (got `-1`)" });
  assert.throws(() => run(strict, { config: { limit: "0" } }), (e) => e instanceof InitError && /^TypeError: .+ \(at test\/sdk\.test\.js:\d+:\d+\)$/.test(e.message));
});

test("lookups: declared tables are fetched per batch, others one key at a time", () => {
  const categories = enricher(
    { name: "categories", reads: { pin_id: "int" }, writes: { category: "text?", direct: "text?" }, lookups: { categories: "pin_id" } },
    (e, out) => {
      out.set("category", e.lookup("categories"));
      out.set("direct", lookup("categories", String(e.get("pin_id"))));
    },
  );
  const out = run(categories, {
    events: ['{"pin_id":7919}', '{"pin_id":15838}', '{"pin_id":1}', "{}"],
    lookups: { categories: { 7919: "Home Decor", 15838: "Food & Drink" } },
  });
  assert.deepEqual(out, [
    enriched({ category: "Home Decor", direct: "Home Decor" }),
    enriched({ category: "Food & Drink", direct: "Food & Drink" }),
    enriched({ category: null, direct: null }),
    enriched({ category: null, direct: null }),
  ]);
  const undeclared = filter({ name: "undeclared", reads: { a: "int" } }, (e) => e.lookup("geo") !== null);
  assert.match(run(undeclared, { events: ["{}"] })[0].reason, /^TypeError: lookup table `geo` is not declared in the spec's `lookups` \(declared: none\)/);
});

test("the spec is checked where it is written", () => {
  assert.throws(() => filter({ name: "Bad Name" }, () => true), /spec\.name must be the plugin's file name/);
  assert.throws(() => filter({ name: "f", reads: { a: "integer" } }, () => true), /reads: field `a` has type "integer": use one of text, int, float, boolean, json/);
  assert.throws(() => filter({ name: "f", writes: { a: "int" } }, () => true), /unknown spec member `writes`: a filter writes nothing/);
  assert.throws(() => enricher({ name: "e", lookups: { t: "k" } }, () => {}), /table `t` is keyed by "k", which is not among the fields the plugin reads \(none\)/);
  assert.throws(() => filter({ name: "f", config: { a: {} } }, () => true), /config `a`: the default \{\} is not a string/);
  assert.throws(() => filter({ name: "f" }), /fn must be a function/);
});

test("describe lists the fields with their types and nullability", () => {
  assert.deepEqual(describe(everyType), {
    name: "every-type",
    version: "0.1.0",
    reads: [
      { name: "t", type: "text", nullable: true },
      { name: "i", type: "int", nullable: true },
      { name: "f", type: "float", nullable: true },
      { name: "b", type: "boolean", nullable: true },
      { name: "j", type: "json", nullable: true },
    ],
    writes: [{ name: "out", type: "json", nullable: false }],
  });
});

test("an enricher's result and an empty addition", () => {
  const quiet = enricher({ name: "quiet", reads: { a: "int?" }, writes: { a2: "int" } }, (e, out) => {
    if (e.get("a") !== null) out.set("a2", e.get("a") * 2);
    if (e.get("a") === 5) return Promise.resolve();
    if (e.get("a") === 6) return new Reject("six");
    return e.get("a") === 7 && out;
  });
  const out = run(quiet, { events: ['{"a":1}', "{}", '{"a":5}', '{"a":6}', '{"a":7}'] });
  assert.deepEqual(out[0], enriched({ a2: 2 }));
  assert.deepEqual(out[1], enriched({}));
  assert.equal(out[1].json, "");
  assert.match(out[2].reason, /^the enricher returned a Promise: plugin functions are synchronous/);
  assert.deepEqual(out[3], rejected("six"));
  assert.deepEqual(out[4], enriched({ a2: 14 }));
});

test("source map mappings decode to the original positions", async () => {
  const { decode, locator } = await import("../lib/sourcemap.js");
  // Line 1: col 0 -> source 0 line 0 col 0; col 4 -> source 0 line 0 col 2.
  // Line 2: col 2 -> source 1 line 3 col 1. Line 3: none.
  assert.deepEqual(decode("AAAA,IAAE;ECGD;"), [[0, 0, 0, 0, 4, 0, 0, 2], [2, 1, 3, 1], []]);
  const at = locator({ file: "plugin.js", sources: ["app.js", null], mappings: "AAAA,IAAE;ECGD;" });
  assert.equal(at("plugin.js", 1, 1), "app.js:1:1");
  assert.equal(at("plugin.js", 1, 9), "app.js:1:3");
  assert.equal(at("plugin.js", 2, 5), null); // an SDK source
  assert.equal(at("plugin.js", 3, 1), null);
  assert.equal(at("/tmp/x/initializer.js", 1, 1), null);
});

test("a batch parsed whole reads as each payload parsed alone", () => {
  const pick = enricher({ name: "pick", reads: { a: "json?", b: "json?" }, writes: { a: "json?", b: "json?" } }, (e, out) => {
    out.set("a", e.get("a")).set("b", e.get("b"));
  });
  let seed = 7;
  const rand = (n) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  const pieces = ["}{", "},{", '\\"', "\\\\", "{", "}", "[", "é", "a", ":", ","];
  const str = () => Array.from({ length: rand(4) }, () => pieces[rand(pieces.length)]).join("");
  const val = () => [() => rand(100), () => str(), () => ({ a: str() }), () => null, () => [rand(3), str()]][rand(5)]();
  for (let round = 0; round < 200; round++) {
    const events = Array.from({ length: 1 + rand(6) }, () => {
      const o = {};
      for (const k of ["a", "b", "c"]) if (rand(3) > 0) o[k] = val();
      const text = JSON.stringify(o);
      return rand(10) === 0 ? ` ${text}` : text;
    });
    const out = run(pick, { events });
    events.forEach((text, i) => {
      const o = JSON.parse(text);
      assert.deepEqual(out[i], enriched({ a: o.a ?? null, b: o.b ?? null }), text);
    });
  }
});

test("a batch larger than a parse chunk reads every event, odd ones included", () => {
  const echo = enricher(
    { name: "echo", reads: { n: "int?", s: "text?" }, writes: { n2: "int?", s2: "text?" } },
    (event, out) => {
      out.set("n2", event.get("n"));
      out.set("s2", event.get("s"));
    },
  );
  // 700 events over three chunks; a `}{` inside a string, non-ASCII text and
  // a payload that is not an object break the one-parse path of their chunks.
  const events = [];
  for (let i = 0; i < 700; i++) {
    if (i === 300) events.push('{"n":300,"s":"}{"}');
    else if (i === 520) events.push('{"n":520,"s":"Zürich"}');
    else if (i === 650) events.push("[650]");
    else events.push(`{"n":${i}}`);
  }
  const out = run(echo, { events });
  assert.equal(out.length, 700);
  for (let i = 0; i < 700; i++) {
    const s = i === 300 ? "}{" : i === 520 ? "Zürich" : null;
    const n = i === 650 ? null : i;
    assert.deepEqual(out[i], enriched({ n2: n, s2: s }), `event ${i}`);
  }
});
