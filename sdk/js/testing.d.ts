// Types of `weir/testing`: native tests of a plugin under node.

import type { Plugin } from "./index.js";
export { RetryLater } from "./index.js";

/** A filter kept the event. */
export const kept: { readonly outcome: "kept" };
/** A filter dropped the event (counted, not a dead letter). */
export const dropped: { readonly outcome: "dropped" };

export interface Rejected {
  outcome: "rejected";
  /** The dead letter's reason. */
  reason: string;
}

export interface Enriched {
  outcome: "enriched";
  /** The JSON object the enricher added, parsed (`{}` when it set nothing). */
  fields: Record<string, unknown>;
  /** That object's JSON text as the host receives it ("" when nothing; not enumerable). */
  readonly json: string;
}

export type Outcome = typeof kept | typeof dropped | Rejected | Enriched;

/** The plugin rejected the event: a dead letter with this reason. */
export function rejected(reason: string): Rejected;
/** An enricher added these fields. */
export function enriched(fields: Record<string, unknown>): { outcome: "enriched"; fields: Record<string, unknown> };

/** `init` failed: `message` is the error the pipeline would stop with. */
export class InitError extends Error {}

export interface RunOptions {
  /** The events' payloads: JSON text, or values to serialize. */
  events?: readonly unknown[];
  /** The step's `config`, as in the TOML (values are passed as strings; arrays joined with commas). */
  config?: Record<string, unknown> | Map<string, unknown>;
  /** Lookup tables for the run: table -> key -> value. */
  lookups?: Record<string, Record<string, string>> | Map<string, Map<string, string>>;
  /** Per event, the fields earlier steps set (an object or JSON text). */
  fields?: readonly unknown[];
  /** Per event, the Kafka key. */
  keys?: readonly (string | Uint8Array | undefined)[];
  /** Per event, the Kafka timestamp in milliseconds (default -1: none). */
  timestampsMs?: readonly number[];
  /** The batch's topic (default "test"). */
  topic?: string;
}

/**
 * Runs the plugin (or the module exporting it) over one batch of `events`, as
 * a fresh instance initialised with `config`: one outcome per event, with the
 * lines it logged in `logs`. Throws `InitError` if init fails and
 * `RetryLater` if the plugin asked to retry the batch.
 */
export function run(
  plugin: Plugin | { default: Plugin },
  options?: RunOptions,
): Outcome[] & { readonly logs: { level: string; message: string }[] };

/** The WIT `description` of the plugin. */
export function describe(plugin: Plugin | { default: Plugin }): {
  name: string;
  version: string;
  reads: { name: string; type: string; nullable: boolean }[];
  writes: { name: string; type: string; nullable: boolean }[];
};

/** The WIT batch of `events`, laid out as the host sends it (for benchmarks and bindings-level tests). */
export function batch(
  events: readonly unknown[],
  options?: Pick<RunOptions, "topic" | "fields" | "keys" | "timestampsMs">,
): {
  topic: string;
  payloads: Uint8Array;
  payloadEnds: Uint32Array;
  keys: Uint8Array;
  keyEnds: Uint32Array;
  fields: Uint8Array;
  fieldEnds: Uint32Array;
  timestampsMs: BigInt64Array;
  partitions: Int32Array;
  offsets: BigInt64Array;
};
