// `#host` in a component build (export condition `weir-component`): the
// host's imports, and stack frames mapped back to the plugin's sources
// through the source map the build appends to the bundle.

import { log, lookup, lookupMany } from "weir:plugin/host@0.1.0";
import { locator } from "./sourcemap.js";

export const host = { log, lookup, lookupMany };

const MAP = Symbol.for("weir.sourcemap");
let located = null;

/** A frame as `path:line:col` in the plugin's sources; null for one to skip. */
export function locate(file, line, col) {
  const map = globalThis[MAP];
  if (map === undefined) return `${file}:${line}:${col}`;
  if (located === null) located = locator(map);
  return located(file, line, col);
}
