// weir/testing: native tests of a plugin under node, with no wasm. A batch is
// built from JSON lines exactly as the host lays it out, the plugin's WIT
// exports run on it (the same code as in the component), and each event's
// outcome comes back to assert on:
//
//   import { test } from "node:test";
//   import assert from "node:assert/strict";
//   import { run, kept, dropped, rejected } from "weir/testing";
//   import plugin from "./app.js";
//
//   test("keeps saves", () => {
//     const out = run(plugin, { events: ['{"action":"save"}', "{}"], config: { actions: "save" } });
//     assert.deepEqual(out, [kept, dropped]);
//   });
//
// The host's imports are a stand-in here: `lookups` sets its tables for the
// run, and what the plugin logs is collected in `out.logs`.

import { native } from "#host";
import { describe as describePlugin, exportsFor, pluginOf, RetryLater } from "./lib/runtime.js";

export { RetryLater };

const encoder = new TextEncoder();

/** A filter kept the event. */
export const kept = Object.freeze({ outcome: "kept" });
/** A filter dropped the event (counted, not a dead letter). */
export const dropped = Object.freeze({ outcome: "dropped" });

/** The plugin rejected the event: a dead letter with this reason. */
export function rejected(reason) {
  return { outcome: "rejected", reason };
}

/**
 * An enricher added these fields (the JSON object the host receives, parsed;
 * `{}` when it set none). The JSON text itself is the non-enumerable `json`.
 */
export function enriched(fields) {
  return { outcome: "enriched", fields };
}

/** `init` failed: the message is the error the pipeline would stop with. */
export class InitError extends Error {
  constructor(message) {
    super(message);
    this.name = "InitError";
  }
}

/** What the plugin declares: the WIT `description` (`name`, `version`, `reads`, `writes`). */
export function describe(plugin) {
  return describePlugin(pluginOf(plugin));
}

function bytesOf(v) {
  if (v === undefined || v === null) return new Uint8Array(0);
  if (v instanceof Uint8Array) return v;
  return encoder.encode(typeof v === "string" ? v : JSON.stringify(v));
}

function column(items) {
  const parts = items.map(bytesOf);
  const ends = new Uint32Array(parts.length);
  let end = 0;
  parts.forEach((p, i) => {
    end += p.length;
    ends[i] = end;
  });
  const bytes = new Uint8Array(end);
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.length;
  }
  return [bytes, ends];
}

/**
 * The WIT batch of `events` (JSON strings, or values to serialize), as the
 * host sends it: partition 0, offsets from 0, no timestamps unless given.
 * `fields[i]` (an object or JSON string) is what earlier steps set on event i,
 * `keys[i]` its Kafka key.
 */
export function batch(events, { topic = "test", fields = [], keys = [], timestampsMs = [] } = {}) {
  const n = events.length;
  const [payloads, payloadEnds] = column(events);
  const [keyBytes, keyEnds] = column(Array.from({ length: n }, (_, i) => keys[i]));
  const [fieldBytes, fieldEnds] = column(Array.from({ length: n }, (_, i) => fields[i]));
  return {
    topic,
    payloads,
    payloadEnds,
    keys: keyBytes,
    keyEnds,
    fields: fieldBytes,
    fieldEnds,
    timestampsMs: BigInt64Array.from({ length: n }, (_, i) => BigInt(timestampsMs[i] ?? -1)),
    partitions: new Int32Array(n),
    offsets: BigInt64Array.from({ length: n }, (_, i) => BigInt(i)),
  };
}

function tablesOf(lookups) {
  const tables = new Map();
  const entries = lookups instanceof Map ? lookups.entries() : Object.entries(lookups);
  for (const [name, rows] of entries) {
    const m = rows instanceof Map ? rows : new Map(Object.entries(rows));
    tables.set(name, new Map([...m].map(([k, v]) => [String(k), String(v)])));
  }
  return tables;
}

function configPairs(config) {
  const entries = config instanceof Map ? [...config] : Object.entries(config);
  return entries.map(([k, v]) => [String(k), Array.isArray(v) ? v.join(",") : String(v)]);
}

const decoder = new TextDecoder();

/**
 * Runs `plugin` (what `filter(...)`/`enricher(...)` returned, or the module
 * exporting it) over one batch of `events`, as a fresh instance initialised
 * with `config` (values as strings, like the TOML's). Returns one outcome per
 * event (`kept`, `dropped`, `rejected(reason)`, `enriched(fields)`), with the
 * lines logged in the non-enumerable `logs`. Throws `InitError` if init fails
 * and `RetryLater` if the plugin asked to retry the batch.
 */
export function run(plugin, { events = [], config = {}, lookups = {}, fields, keys, timestampsMs, topic } = {}) {
  const p = pluginOf(plugin);
  const ex = exportsFor(p);
  const saved = { tables: native.tables, logs: native.logs };
  const logs = [];
  native.tables = tablesOf(lookups);
  native.logs = logs;
  try {
    const init = ex.init(configPairs(config));
    if (init.tag === "err") throw new InitError(init.val);
    const b = batch(events, { topic, fields, keys, timestampsMs });
    const res = p.kind === "filter" ? ex.keep(b) : ex.enrich(b);
    if (res.tag === "err") throw new RetryLater(res.val.reason);
    const out = p.kind === "filter" ? filterOutcomes(res.val) : enricherOutcomes(res.val);
    Object.defineProperty(out, "logs", { value: logs, enumerable: false });
    return out;
  } finally {
    native.tables = saved.tables;
    native.logs = saved.logs;
  }
}

function filterOutcomes([keep, rejections]) {
  const out = keep.map((k) => (k ? kept : dropped));
  for (const r of rejections) out[r.index] = rejected(r.reason);
  return out;
}

function enricherOutcomes({ fields, fieldEnds, rejected: rejections }) {
  const out = [];
  let s = 0;
  for (const e of fieldEnds) {
    const json = decoder.decode(fields.subarray(s, e));
    s = e;
    const o = enriched(json === "" ? {} : JSON.parse(json));
    Object.defineProperty(o, "json", { value: json, enumerable: false });
    out.push(o);
  }
  for (const r of rejections) out[r.index] = rejected(r.reason);
  return out;
}
