// The SDK's runtime: plugin definitions, configuration, the lazy event view,
// the enricher's output writer and the batch loops behind the WIT exports.
// The same code runs in the component and natively (tests); only `#host`
// differs (see package.json "imports").

import { host, locate } from "#host";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** The field types of the contract, in the order of their codes. */
export const TYPES = ["text", "int", "float", "boolean", "json"];
const TYPE_RE = /^(text|int|float|boolean|json)(\?)?$/;
const NAME_RE = /^[a-z][a-z0-9-]*$/;
const PLUGIN = Symbol.for("weir.plugin");

// The range of a 64-bit signed integer, as doubles: [-2^63, 2^63).
const I64_MIN = -9223372036854775808;
const I64_END = 9223372036854775808;
const I64_MIN_BIG = -(2n ** 63n);
const I64_MAX_BIG = 2n ** 63n - 1n;

// ---------------------------------------------------------------- errors

/** Thrown by a plugin function: the event becomes a dead letter with `reason`. */
export class Reject extends Error {
  constructor(reason) {
    super(String(reason));
    this.name = "Reject";
  }
}

/** Thrown by a plugin function: the host retries the whole batch later. */
export class RetryLater extends Error {
  constructor(reason) {
    super(String(reason));
    this.name = "RetryLater";
  }
}

/** A configuration value that cannot be used: `config \`key\`: message`. */
export class ConfigError extends Error {
  constructor(key, message) {
    super(`config \`${key}\`: ${message}`);
    this.name = "ConfigError";
    this.key = key;
  }
}

// A stack frame: V8's `    at fn (file:line:col)` / `    at file:line:col`,
// SpiderMonkey's `fn@file:line:col`.
const FRAME_RE = /^\s*(?:at\s+(?:.*?\()?|[^@]*@)(.+?):(\d+):(\d+)\)?\s*$/;

/**
 * The reason a thrown value gives for a dead letter or a failed init: a
 * `Reject`'s or `ConfigError`'s message as it is; for any other error its
 * name, message and the first stack frame in the plugin's own code,
 * `TypeError: x is undefined (at app.js:17:5)`.
 */
export function reasonOf(e) {
  if (e instanceof Reject || e instanceof RetryLater || e instanceof ConfigError) {
    return e.message;
  }
  if (e !== null && typeof e === "object" && typeof e.stack === "string") {
    const name = typeof e.name === "string" && e.name ? e.name : "Error";
    const head = e.message ? `${name}: ${e.message}` : name;
    const at = topFrame(e.stack);
    return at === null ? head : `${head} (at ${at})`;
  }
  return show(e, 200);
}

function topFrame(stack) {
  for (const line of stack.split("\n")) {
    const m = FRAME_RE.exec(line);
    if (m === null) continue;
    const at = locate(m[1], Number(m[2]), Number(m[3]));
    if (at !== null) return at;
  }
  return null;
}

/** A short printable form of any value, for messages. */
function show(v, max = 60) {
  let s;
  if (typeof v === "string") s = JSON.stringify(v);
  else if (typeof v === "bigint") s = `${v}n`;
  else if (typeof v === "function") s = `function ${v.name || "(anonymous)"}`;
  else if (v !== null && typeof v === "object") {
    if (typeof v.then === "function") return "a Promise";
    try {
      s = JSON.stringify(v) ?? String(v);
    } catch {
      s = Object.prototype.toString.call(v);
    }
  } else s = String(v);
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

function kindOf(v) {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "number") return Number.isInteger(v) ? "an integer" : "a number";
  if (typeof v === "object") return typeof v.then === "function" ? "a Promise" : "an object";
  return `a ${typeof v}`;
}

// ------------------------------------------------------------ definitions

/**
 * A filter: `fn(event, config)` returns `true` to keep the event, `false` to
 * drop it, or throws `new Reject(reason)` to make it a dead letter.
 */
export function filter(spec, fn) {
  return define("filter", spec, fn);
}

/** An enricher: `fn(event, out, config)` sets fields with `out.set(name, value)`. */
export function enricher(spec, fn) {
  return define("enricher", spec, fn);
}

/** Plugins defined so far, in order (the build uses the module's default export, else the last). */
export const defined = [];

export function isPlugin(v) {
  return v !== null && typeof v === "object" && v[PLUGIN] === true;
}

const SPEC_KEYS = {
  filter: ["name", "version", "reads", "config", "lookups", "init"],
  enricher: ["name", "version", "reads", "writes", "config", "lookups", "init"],
};

function define(kind, spec, fn) {
  const where = `${kind}(spec, fn)`;
  if (spec === null || typeof spec !== "object" || Array.isArray(spec)) {
    throw new TypeError(`${where}: spec must be an object such as { name: "my-${kind}", reads: { ... } }`);
  }
  if (typeof fn !== "function") {
    throw new TypeError(`${where}: fn must be a function, not ${kindOf(fn)}`);
  }
  const known = SPEC_KEYS[kind];
  for (const k of Object.keys(spec)) {
    if (!known.includes(k)) {
      const hint = k === "writes" ? ": a filter writes nothing (use enricher(...))" : ` (known: ${known.join(", ")})`;
      throw new TypeError(`${where}: unknown spec member \`${k}\`${hint}`);
    }
  }
  const { name, version = "0.1.0" } = spec;
  if (typeof name !== "string" || !NAME_RE.test(name)) {
    throw new TypeError(
      `${where}: spec.name must be the plugin's file name without .wasm: lower-case letters, digits and \`-\`, starting with a letter (got ${show(name)})`,
    );
  }
  if (typeof version !== "string") throw new TypeError(`${where}: spec.version must be a string`);
  if (spec.init !== undefined && typeof spec.init !== "function") {
    throw new TypeError(`${where}: spec.init must be a function (config) => value`);
  }
  const reads = fieldSpecs(spec.reads, "reads", where);
  const writes = fieldSpecs(kind === "enricher" ? spec.writes : undefined, "writes", where);
  const plugin = {
    [PLUGIN]: true,
    kind,
    name,
    version,
    reads,
    writes,
    config: configSpecs(spec.config, where),
    lookups: lookupSpecs(spec.lookups, reads, where),
    init: spec.init,
    fn,
  };
  Object.freeze(plugin);
  defined.push(plugin);
  return plugin;
}

function fieldSpecs(decl, what, where) {
  const list = [];
  const byName = new Map();
  if (decl !== undefined) {
    if (decl === null || typeof decl !== "object" || Array.isArray(decl)) {
      throw new TypeError(`${where}: spec.${what} must be an object of field name to type, such as { user_id: "int", action: "text?" }`);
    }
    for (const [name, t] of Object.entries(decl)) {
      const m = typeof t === "string" ? TYPE_RE.exec(t) : null;
      if (m === null) {
        throw new TypeError(
          `${where}: ${what}: field \`${name}\` has type ${show(t)}: use one of ${TYPES.join(", ")}, with \`?\` after it if the field may be null`,
        );
      }
      const field = {
        name,
        type: m[1],
        code: TYPES.indexOf(m[1]),
        nullable: m[2] === "?",
        member: `${JSON.stringify(name)}:`,
        // A name Object.prototype has (`constructor`) needs an own-property check.
        inherited: name in Object.prototype,
      };
      list.push({ name, type: field.type, nullable: field.nullable });
      byName.set(name, field);
    }
  }
  return { list, byName };
}

function configSpecs(decl, where) {
  const specs = new Map();
  if (decl === undefined) return specs;
  if (decl === null || typeof decl !== "object" || Array.isArray(decl)) {
    throw new TypeError(`${where}: spec.config must be an object of key to default value, such as { percent: 10, actions: ["click"] }`);
  }
  for (const [key, def] of Object.entries(decl)) {
    let type;
    if (typeof def === "string") type = "string";
    else if (typeof def === "number" && Number.isFinite(def)) type = "number";
    else if (typeof def === "boolean") type = "boolean";
    else if (Array.isArray(def) && def.every((x) => typeof x === "string")) type = "list";
    else if (def === null) type = "optional";
    else {
      throw new TypeError(
        `${where}: config \`${key}\`: the default ${show(def)} is not a string, a number, a boolean, an array of strings or null`,
      );
    }
    specs.set(key, { type, def });
  }
  return specs;
}

function lookupSpecs(decl, reads, where) {
  const list = [];
  const index = new Map();
  if (decl === undefined) return { list, index };
  if (decl === null || typeof decl !== "object" || Array.isArray(decl)) {
    throw new TypeError(`${where}: spec.lookups must be an object of table name to key field, such as { categories: "pin_id" }`);
  }
  for (const [table, field] of Object.entries(decl)) {
    if (typeof field !== "string" || !reads.byName.has(field)) {
      throw new TypeError(
        `${where}: lookups: table \`${table}\` is keyed by ${show(field)}, which is not among the fields the plugin reads (${names(reads)})`,
      );
    }
    index.set(table, list.length);
    list.push({ table, field });
  }
  return { list, index };
}

function names(fields) {
  return fields.list.length ? fields.list.map((f) => f.name).join(", ") : "none";
}

/** The WIT `description` of a plugin. */
export function describe(plugin) {
  return {
    name: plugin.name,
    version: plugin.version,
    reads: plugin.reads.list.map((f) => ({ ...f })),
    writes: plugin.writes.list.map((f) => ({ ...f })),
  };
}

// ---------------------------------------------------------- configuration

/**
 * The step's configuration (pairs of strings from the TOML), parsed by the
 * spec's defaults: unknown keys are errors naming the known ones. `file.NAME`
 * keys (granted files) are allowed and not passed on.
 */
export function parseConfig(plugin, pairs) {
  const given = new Map();
  for (const [k, v] of pairs) given.set(k, v);
  const specs = plugin.config;
  for (const k of given.keys()) {
    if (!specs.has(k) && !k.startsWith("file.")) {
      throw new ConfigError(
        k,
        specs.size ? `unknown key (known: ${[...specs.keys()].join(", ")})` : "unknown key: the plugin takes no configuration",
      );
    }
  }
  const config = {};
  for (const [key, { type, def }] of specs) {
    const text = given.get(key);
    config[key] = text === undefined ? (Array.isArray(def) ? [...def] : def) : parseValue(key, type, text);
  }
  return Object.freeze(config);
}

function parseValue(key, type, text) {
  switch (type) {
    case "number": {
      const t = text.trim();
      const n = Number(t);
      if (t === "" || !Number.isFinite(n)) throw new ConfigError(key, `expected a number (got \`${text}\`)`);
      return n;
    }
    case "boolean": {
      const t = text.trim();
      if (t === "true") return true;
      if (t === "false") return false;
      throw new ConfigError(key, `expected \`true\` or \`false\` (got \`${text}\`)`);
    }
    case "list":
      return text
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s !== "");
    default:
      return text;
  }
}

// ------------------------------------------------------------------ events
//
// The component runs JavaScript in an interpreter, where every operation and
// call counts and native calls (JSON.parse, TextDecoder) are cheap by
// comparison: payloads are decoded and parsed CHUNK at a time, by one call
// each, and one Event object walks the batch. Parsing a whole batch of 5,000
// events at once grew an instance's linear memory to 80 MiB (wasm memory
// never shrinks); CHUNK events at a time keeps it near its start-up size at
// the same speed.

const CHUNK = 256;

const hasOwn = Object.hasOwn;

/** The WIT batch, with what is decoded and parsed once for all its events. */
class BatchView {
  constructor(plugin, batch) {
    this.plugin = plugin;
    this.reads = plugin.reads.byName;
    this.b = batch;
    this.n = batch.payloadEnds.length;
    this.text = null; // all payloads as one string
    this.ascii = false; // whether that string's offsets are the bytes' offsets
    this.objs = null; // parsed payloads of the current chunk (null: not an object; undefined: not parsed yet)
    this.base = 0; // the batch index of objs[0]
    this.hasFields = batch.fields.length > 0;
    this.fobjs = this.hasFields ? new Array(this.n) : null; // earlier steps' fields
    this.tables = null; // prefetched lookups, by declared index
  }

  batchText() {
    if (this.text === null) {
      this.text = decoder.decode(this.b.payloads);
      // Every byte ASCII: each event's text is a slice of the batch's.
      this.ascii = this.text.length === this.b.payloads.length;
    }
    return this.text;
  }

  payloadText(i) {
    const b = this.b;
    const s = i === 0 ? 0 : b.payloadEnds[i - 1];
    const e = b.payloadEnds[i];
    const t = this.batchText();
    return this.ascii ? t.slice(s, e) : decoder.decode(b.payloads.subarray(s, e));
  }

  /**
   * Parses the chunk of payloads that holds event i: JSON objects back to
   * back, so `}{` between two of them becomes `},{` and one JSON.parse of
   * `[...]` reads them all. It is right when exactly count-1 were replaced
   * (none inside a string) and the array parses with count items (so every
   * boundary was one); otherwise each payload is parsed on its own when read.
   */
  parseChunk(i) {
    const b = this.b;
    const start = i - (i % CHUNK);
    const end = Math.min(start + CHUNK, this.n);
    const count = end - start;
    this.base = start;
    this.objs = new Array(count);
    if (count > 1) {
      const s = start === 0 ? 0 : b.payloadEnds[start - 1];
      const t = decoder.decode(b.payloads.subarray(s, b.payloadEnds[end - 1]));
      const r = t.replaceAll("}{", "},{");
      if (r.length - t.length === count - 1) {
        try {
          const all = JSON.parse(`[${r}]`);
          if (all.length === count) this.objs = all;
        } catch {
          // A boundary with spaces, or a payload that is not an object.
        }
      }
    }
    return this.objs;
  }

  /** Event i's payload: parsed with its chunk, else on its own; an object, or null. */
  object(i) {
    let objs = this.objs;
    if (objs === null || i < this.base || i >= this.base + objs.length) objs = this.parseChunk(i);
    const p = objs[i - this.base];
    return p === undefined ? (objs[i - this.base] = parseObject(this.payloadText(i))) : p;
  }

  /** The fields earlier steps set on event i: an object, or null. */
  fields(i) {
    let f = this.fobjs[i];
    if (f === undefined) {
      const b = this.b;
      const s = i === 0 ? 0 : b.fieldEnds[i - 1];
      const e = b.fieldEnds[i];
      f = this.fobjs[i] = e > s ? parseObject(decoder.decode(b.fields.subarray(s, e))) : null;
    }
    return f;
  }

  /** The payload of event i: an object, or null. */
  payload(i) {
    return this.object(i);
  }

  /** Field `spec` of event i as parsed JSON: an earlier step's, else the payload's. */
  raw(i, spec) {
    if (this.hasFields) {
      const f = this.fields(i);
      if (f !== null && hasOwn(f, spec.name)) return f[spec.name];
    }
    const p = this.object(i);
    if (p === null || (spec.inherited && !hasOwn(p, spec.name))) return undefined;
    return p[spec.name];
  }
}

function parseObject(text) {
  let v;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  return typeof v === "object" && v !== null && !Array.isArray(v) ? v : null;
}

/**
 * An event of the batch the plugin function is given. Fields are read with
 * `get(name)`, typed as the spec's `reads` declares them. One Event object
 * walks the whole batch: read what you need during the call, do not keep it.
 */
class Event {
  constructor(view) {
    this._v = view;
    this._i = 0;
  }

  /** The event's index in its batch. */
  get index() {
    return this._i;
  }

  get topic() {
    return this._v.b.topic;
  }

  /** The Kafka value's bytes (a view into the batch). */
  get payload() {
    const b = this._v.b;
    const i = this._i;
    return b.payloads.subarray(i === 0 ? 0 : b.payloadEnds[i - 1], b.payloadEnds[i]);
  }

  /** The Kafka value as text. */
  get payloadText() {
    return this._v.payloadText(this._i);
  }

  /** The Kafka key's bytes (empty when the record had none). */
  get key() {
    const b = this._v.b;
    const i = this._i;
    return b.keys.subarray(i === 0 ? 0 : b.keyEnds[i - 1], b.keyEnds[i]);
  }

  /** The Kafka key as text. */
  get keyText() {
    return decoder.decode(this.key);
  }

  /** Kafka's timestamp in milliseconds since the Unix epoch (-1: none). */
  get timestampMs() {
    return Number(this._v.b.timestampsMs[this._i]);
  }

  get partition() {
    return this._v.b.partitions[this._i];
  }

  get offset() {
    return Number(this._v.b.offsets[this._i]);
  }

  /**
   * Field `name` (declared in `reads`) as its type: a string for text, a
   * number for int and float, a boolean, or any JSON value for json. `null`
   * when the field is absent, null or of another type.
   */
  get(name) {
    const view = this._v;
    const spec = view.reads.get(name);
    if (spec === undefined) throw notDeclared(view.plugin, name, "reads");
    const v = view.raw(this._i, spec);
    switch (spec.code) {
      case 0:
        return typeof v === "string" ? v : null;
      case 1:
        return typeof v === "number" && v % 1 === 0 && v >= I64_MIN && v < I64_END ? v : null;
      case 2:
        return typeof v === "number" ? v : null;
      case 3:
        return typeof v === "boolean" ? v : null;
      default:
        return v === undefined ? null : v;
    }
  }

  /** Whether field `name` (declared in `reads`) is present and not null. */
  has(name) {
    const view = this._v;
    const spec = view.reads.get(name);
    if (spec === undefined) throw notDeclared(view.plugin, name, "reads");
    const v = view.raw(this._i, spec);
    return v !== undefined && v !== null;
  }

  /** Whether the payload is a JSON object. */
  isObject() {
    return this._v.payload(this._i) !== null;
  }

  /**
   * The answer of lookup table `table` (declared in `lookups`) for this
   * event's key field, fetched for the whole batch in one host call; `null`
   * when the table has no row for it.
   */
  lookup(table) {
    const plugin = this._v.plugin;
    const idx = plugin.lookups.index.get(table);
    if (idx === undefined) {
      const declared = plugin.lookups.list.map((l) => l.table).join(", ") || "none";
      throw new TypeError(
        `lookup table \`${table}\` is not declared in the spec's \`lookups\` (declared: ${declared}): declare it as { ${table}: "KEY_FIELD" }, or call lookup(table, key)`,
      );
    }
    const t = this._v.tables[idx];
    const i = this._i;
    if (!t.found[i]) return null;
    return decoder.decode(t.values.subarray(i === 0 ? 0 : t.ends[i - 1], t.ends[i]));
  }
}

function notDeclared(plugin, name, what) {
  const fields = what === "reads" ? plugin.reads : plugin.writes;
  return new TypeError(
    `\`${name}\` is not among the fields ${plugin.name} ${what === "reads" ? "reads" : "writes"} (${names(fields)}): declare it in the spec's \`${what}\``,
  );
}

/**
 * What an enricher adds to one event: `out.set(name, value)` for fields
 * declared in `writes`, each value of the field's type (`null` for a field
 * declared with `?`).
 */
class Out {
  constructor(plugin) {
    this._plugin = plugin;
    this._w = plugin.writes.byName;
    this._s = "";
  }

  set(name, value) {
    const w = this._w.get(name);
    if (w === undefined) throw notDeclared(this._plugin, name, "writes");
    this._s += (this._s === "" ? "{" : ",") + w.member + encodeValue(w, value);
    return this;
  }
}

function encodeValue(w, v) {
  if (v === null || v === undefined) {
    if (w.nullable) return "null";
    throw new TypeError(
      `\`${w.name}\` is ${w.type}, not nullable: it cannot be set to ${v} (declare it as "${w.type}?" to allow null)`,
    );
  }
  switch (w.code) {
    case 0:
      if (typeof v === "string") return JSON.stringify(v);
      break;
    case 1:
      if (typeof v === "number" && Number.isInteger(v) && v >= I64_MIN && v < I64_END) return String(v);
      if (typeof v === "bigint" && v >= I64_MIN_BIG && v <= I64_MAX_BIG) return String(v);
      break;
    case 2:
      if (typeof v === "number") return Number.isFinite(v) ? String(v) : "null";
      break;
    case 3:
      if (typeof v === "boolean") return v ? "true" : "false";
      break;
    default: {
      const s = JSON.stringify(v);
      if (s !== undefined) return s;
    }
  }
  throw new TypeError(`\`${w.name}\` is ${w.type}${w.nullable ? "?" : ""}: it cannot be set to ${show(v)} (${kindOf(v)})`);
}

// ----------------------------------------------------------------- batches

/**
 * Strings to UTF-8 back to back, with the end of each: one encode for the
 * whole list when it is ASCII.
 */
export function pack(parts) {
  const n = parts.length;
  const ends = new Uint32Array(n);
  const all = parts.join("");
  const bytes = encoder.encode(all);
  if (bytes.length === all.length) {
    let end = 0;
    for (let i = 0; i < n; i++) {
      end += parts[i].length;
      ends[i] = end;
    }
    return { bytes, ends };
  }
  const buf = new Uint8Array(all.length * 3);
  let end = 0;
  for (let i = 0; i < n; i++) {
    end += encoder.encodeInto(parts[i], buf.subarray(end)).written;
    ends[i] = end;
  }
  return { bytes: buf.subarray(0, end), ends };
}

function keyText(v) {
  if (v === undefined || v === null) return "";
  if (typeof v === "string") return v;
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

/** Looks up each declared (table, key field) for the whole batch: one host call per table. */
function prefetch(view) {
  const specs = view.plugin.lookups.list;
  if (specs.length === 0) return;
  const n = view.n;
  const tables = new Array(specs.length);
  for (let t = 0; t < specs.length; t++) {
    const { table, field } = specs[t];
    const spec = view.reads.get(field);
    const keys = new Array(n);
    for (let i = 0; i < n; i++) keys[i] = keyText(view.raw(i, spec));
    const { bytes, ends } = pack(keys);
    const [values, valueEnds, found] = host.lookupMany(table, bytes, ends);
    const ok = valueEnds.length === n && found.length === n;
    tables[t] = ok ? { values, ends: valueEnds, found } : { values, ends: new Uint32Array(n), found: new Array(n).fill(false) };
  }
  view.tables = tables;
}

function isThenable(v) {
  return v !== null && typeof v === "object" && typeof v.then === "function";
}

function verdictError(v) {
  const sync = kindOf(v) === "a Promise" ? " (plugin functions are synchronous)" : "";
  return `the filter returned ${show(v)}: a filter returns true (keep) or false (drop), or throws new Reject(reason)${sync}`;
}

function runFilter(plugin, state, batch) {
  const view = new BatchView(plugin, batch);
  prefetch(view);
  const n = view.n;
  const fn = plugin.fn;
  const ev = new Event(view);
  const keep = new Array(n);
  const rejected = [];
  for (let i = 0; i < n; i++) {
    ev._i = i;
    let v;
    try {
      v = fn(ev, state);
    } catch (e) {
      if (e instanceof RetryLater) return { tag: "err", val: { reason: e.message } };
      keep[i] = false;
      rejected.push({ index: i, reason: reasonOf(e) });
      continue;
    }
    if (v === true) keep[i] = true;
    else {
      keep[i] = false;
      if (v !== false) rejected.push({ index: i, reason: v instanceof Reject ? v.message : verdictError(v) });
    }
  }
  return { tag: "ok", val: [keep, rejected] };
}

function runEnricher(plugin, state, batch) {
  const view = new BatchView(plugin, batch);
  prefetch(view);
  const n = view.n;
  const fn = plugin.fn;
  const ev = new Event(view);
  const out = new Out(plugin);
  const parts = new Array(n);
  const rejected = [];
  for (let i = 0; i < n; i++) {
    ev._i = i;
    out._s = "";
    let v;
    try {
      v = fn(ev, out, state);
    } catch (e) {
      if (e instanceof RetryLater) return { tag: "err", val: { reason: e.message } };
      parts[i] = "";
      rejected.push({ index: i, reason: reasonOf(e) });
      continue;
    }
    if (v === undefined || v === out || !(v instanceof Reject || isThenable(v))) {
      // What it returns is ignored (`(e, out) => out.set(...)` returns `out`),
      // but for a Reject and a Promise.
      parts[i] = out._s === "" ? "" : `${out._s}}`;
    } else {
      parts[i] = "";
      rejected.push({
        index: i,
        reason:
          v instanceof Reject
            ? v.message
            : "the enricher returned a Promise: plugin functions are synchronous (an async function's writes after its first await are lost)",
      });
    }
  }
  const { bytes, ends } = pack(parts);
  return { tag: "ok", val: { fields: bytes, fieldEnds: ends, rejected } };
}

/** The step's state: the parsed configuration, passed through `spec.init` if it has one. */
function makeState(plugin, pairs) {
  const config = parseConfig(plugin, pairs);
  return plugin.init === undefined ? config : plugin.init(config);
}

/**
 * The WIT exports of a plugin (`describe`, `init`, and `keep` or `enrich`),
 * results as `{ tag: "ok" | "err", val }`. One state per instance.
 */
export function exportsFor(plugin) {
  let state;
  let ready = false;
  const ensure = () => {
    if (!ready) {
      state = makeState(plugin, []);
      ready = true;
    }
  };
  const ex = {
    describe: () => describe(plugin),
    init(pairs) {
      try {
        state = makeState(plugin, pairs);
        ready = true;
        return { tag: "ok", val: undefined };
      } catch (e) {
        return { tag: "err", val: reasonOf(e) };
      }
    },
  };
  if (plugin.kind === "filter") {
    ex.keep = (batch) => {
      ensure();
      return runFilter(plugin, state, batch);
    };
  } else {
    ex.enrich = (batch) => {
      ensure();
      return runEnricher(plugin, state, batch);
    };
  }
  return ex;
}

/** The plugin a module defines: its default export, else the last one it defined. */
export function pluginOf(module) {
  if (isPlugin(module)) return module;
  if (module !== null && typeof module === "object" && isPlugin(module.default)) return module.default;
  if (defined.length > 0) return defined[defined.length - 1];
  throw new TypeError(
    "no plugin defined: the module must call filter(spec, fn) or enricher(spec, fn) (and export the result as its default)",
  );
}

// -------------------------------------------------------------------- host

function text(args) {
  let s = "";
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (i > 0) s += " ";
    s += typeof a === "string" ? a : a instanceof Error ? reasonOf(a) : show(a, 4096);
  }
  return s;
}

/** The host's log (rate-limited there, tagged with the plugin). */
export const log = Object.freeze({
  trace: (...args) => host.log("trace", text(args)),
  debug: (...args) => host.log("debug", text(args)),
  info: (...args) => host.log("info", text(args)),
  warn: (...args) => host.log("warn", text(args)),
  error: (...args) => host.log("error", text(args)),
});

/**
 * Looks `key` up in the host's table `table` (one call across the boundary;
 * only tables granted to the step answer). `null` when absent. For a key field
 * of every event, declare `lookups` in the spec instead: one call per batch.
 */
export function lookup(table, key) {
  const v = host.lookup(String(table), String(key));
  return v === undefined ? null : v;
}
