// `#host` under node (unit tests, `weir/testing`): a stand-in for the host's
// imports, whose lookup tables and log the testing module sets per run, and
// stack frames as paths relative to the current folder.

import { fileURLToPath } from "node:url";
import { isAbsolute, relative, sep } from "node:path";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** What the stand-in answers: set by `weir/testing` for each run. */
export const native = {
  /** Lookup tables: name -> Map of key -> value. */
  tables: new Map(),
  /** Where log lines go: an array to collect them, or null for stderr. */
  logs: null,
};

export const host = {
  log(level, message) {
    if (native.logs !== null) native.logs.push({ level, message });
    else console.error(`[${level}] ${message}`);
  },
  lookup(table, key) {
    return native.tables.get(table)?.get(key);
  },
  lookupMany(table, keys, keyEnds) {
    const rows = native.tables.get(table);
    const values = [];
    const valueEnds = new Uint32Array(keyEnds.length);
    const found = new Array(keyEnds.length);
    let s = 0;
    let end = 0;
    for (let i = 0; i < keyEnds.length; i++) {
      const key = decoder.decode(keys.subarray(s, keyEnds[i]));
      s = keyEnds[i];
      const v = rows?.get(key);
      found[i] = v !== undefined;
      if (v !== undefined) {
        const bytes = encoder.encode(v);
        values.push(bytes);
        end += bytes.length;
      }
      valueEnds[i] = end;
    }
    const all = new Uint8Array(end);
    let at = 0;
    for (const b of values) {
      all.set(b, at);
      at += b.length;
    }
    return [all, valueEnds, found];
  },
};

// The SDK's own modules, whose frames a reason skips.
const SDK_DIR = fileURLToPath(new URL("../", import.meta.url));
const SDK_FILES = ["index.js", "testing.js", "register.js"].map((f) => SDK_DIR + f);
const SDK_LIB = `${SDK_DIR}lib${sep}`;

/** A frame as `path:line:col` relative to the current folder; `null` for the SDK's and node's own. */
export function locate(file, line, col) {
  if (file.startsWith("node:") || file.startsWith("internal/")) return null;
  let path = file;
  if (file.startsWith("file://")) {
    try {
      path = fileURLToPath(file);
    } catch {
      return `${file}:${line}:${col}`;
    }
  }
  if (path.startsWith(SDK_LIB) || SDK_FILES.includes(path)) return null;
  if (isAbsolute(path)) {
    const rel = relative(process.cwd(), path);
    if (rel !== "" && !rel.startsWith(`..${sep}`) && !isAbsolute(rel)) path = rel;
  }
  return `${path}:${line}:${col}`;
}
