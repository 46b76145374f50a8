// The glue of a component build: the generated entry module calls
// `component(app, kind)` and exports its result under the WIT interface's
// name (`filter` or `enricher`). Plugin code does not import this.

import { exportsFor, log, pluginOf } from "./runtime.js";

/**
 * The WIT exports of the plugin module `app`, which must define a `kind`.
 * `disabled`: the WASI features the build left out, whose JavaScript APIs
 * then throw a clear error, a dead letter for the event (left alone, some
 * trap the instance and others answer from stubs).
 */
export function component(app, kind, disabled = []) {
  const plugin = pluginOf(app);
  if (plugin.kind !== kind) {
    throw new Error(
      `the plugin \`${plugin.name}\` is ${plugin.kind === "filter" ? "a filter" : "an enricher"}, but it is being built as ${kind === "filter" ? "a filter" : "an enricher"}: set "weir": { "kind": "${plugin.kind}" } in its package.json`,
    );
  }
  // No WASI stdio in the component: console output goes to the host's log.
  const c = globalThis.console ?? (globalThis.console = {});
  const levels = { log: "info", info: "info", debug: "debug", trace: "trace", warn: "warn", error: "error" };
  for (const [name, level] of Object.entries(levels)) {
    try {
      c[name] = (...args) => log[level](...args);
    } catch {
      // A read-only console keeps its own methods.
    }
  }
  if (disabled.includes("clocks")) withoutClocks();
  if (disabled.includes("random")) withoutRandom();
  return exportsFor(plugin);
}

function unavailable(api, feature) {
  return () => {
    throw new Error(
      `${api} is unavailable: the plugin was built without WASI ${feature} (add "${feature}" to "weir": { "features" } in its package.json)`,
    );
  };
}

function withoutClocks() {
  const RealDate = globalThis.Date;
  const noClock = unavailable("the current time (Date.now(), new Date())", "clocks");
  // A Date from a timestamp or a string works; one of "now" throws.
  class Date extends RealDate {
    constructor(...args) {
      if (args.length === 0) noClock();
      super(...args);
    }
    static now() {
      return noClock();
    }
  }
  globalThis.Date = Date;
  if (globalThis.performance) {
    try {
      globalThis.performance.now = unavailable("performance.now()", "clocks");
    } catch {
      // Read-only: it traps instead.
    }
  }
}

function withoutRandom() {
  Math.random = unavailable("Math.random()", "random");
  const c = globalThis.crypto;
  if (c) {
    for (const name of ["getRandomValues", "randomUUID"]) {
      try {
        c[name] = unavailable(`crypto.${name}()`, "random");
      } catch {
        // Read-only: it answers from a sequence fixed at build time.
      }
    }
  }
}
