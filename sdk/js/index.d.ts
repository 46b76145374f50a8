// Types of the `weir` SDK: a filter or enricher plugin as one plain function.
// The spec's declarations type what the function reads, writes and gets as
// its configuration: `reads: { ts: "int?" }` makes `event.get("ts")` a
// `number | null`, and `event.get("other")` an error.

/** A field type of the contract. */
export type FieldType = "text" | "int" | "float" | "boolean" | "json";

/** A field's declared type; `?` after it: the field may be null. */
export type FieldDecl = FieldType | `${FieldType}?`;

/** Field name -> declared type. */
export type Fields = Record<string, FieldDecl>;

/** What a read of a field of type `T` gives (before `| null`). */
export type ReadValue<T extends FieldDecl> = T extends "text" | "text?"
  ? string
  : T extends "int" | "int?" | "float" | "float?"
    ? number
    : T extends "boolean" | "boolean?"
      ? boolean
      : unknown;

/** What a field of type `T` can be set to (`null` only for a nullable one). */
export type WriteValue<T extends FieldDecl> =
  | (T extends "text" | "text?"
      ? string
      : T extends "int" | "int?"
        ? number | bigint
        : T extends "float" | "float?"
          ? number
          : T extends "boolean" | "boolean?"
            ? boolean
            : unknown)
  | (T extends `${FieldType}?` ? null | undefined : never);

/**
 * Configuration key -> default. The default's type is the key's: a string, a
 * number, a boolean, a list (an array of strings; the TOML value is comma
 * separated), or null (a string, null when not set).
 */
export type ConfigDecl = Record<string, string | number | boolean | readonly string[] | null>;

/** The parsed configuration of a `ConfigDecl`. */
export type Config<C extends ConfigDecl> = {
  readonly [K in keyof C]: C[K] extends string
    ? string
    : C[K] extends number
      ? number
      : C[K] extends boolean
        ? boolean
        : C[K] extends readonly string[]
          ? string[]
          : string | null;
};

/**
 * One event of the batch, for the duration of the call: one Event object
 * walks the whole batch, so read what you need and do not keep it.
 */
export interface Event<R extends Fields = Fields, L extends string = string> {
  /**
   * Field `name` (declared in `reads`) as its type: a string for text, a number
   * for int and float, a boolean, any JSON value for json. `null` when the
   * field is absent, null or of another type. Fields set by earlier steps win
   * over the payload's members.
   */
  get<K extends keyof R & string>(name: K): ReadValue<R[K]> | null;
  /** Whether field `name` (declared in `reads`) is present and not null. */
  has<K extends keyof R & string>(name: K): boolean;
  /** Whether the payload is a JSON object. */
  isObject(): boolean;
  /**
   * The answer of lookup table `table` (declared in `lookups`) for this
   * event's key field, fetched for the whole batch in one host call; `null`
   * when the table has no row for it.
   */
  lookup(table: L): string | null;
  /** The event's index in its batch. */
  readonly index: number;
  readonly topic: string;
  /** The Kafka value's bytes (a view into the batch). */
  readonly payload: Uint8Array;
  /** The Kafka value as text. */
  readonly payloadText: string;
  /** The Kafka key's bytes (empty when the record had none). */
  readonly key: Uint8Array;
  /** The Kafka key as text. */
  readonly keyText: string;
  /** Kafka's timestamp in milliseconds since the Unix epoch (-1: none). */
  readonly timestampMs: number;
  readonly partition: number;
  readonly offset: number;
}

/** What an enricher adds to one event. */
export interface Out<W extends Fields = Fields> {
  /**
   * Sets field `name` (declared in `writes`) to `value`, of the field's type.
   * An undeclared field or a value of another type throws: a dead letter for
   * the event.
   */
  set<K extends keyof W & string>(name: K, value: WriteValue<W[K]>): this;
}

interface SpecBase<R extends Fields, C extends ConfigDecl, L extends string> {
  /** The plugin's file name without `.wasm`: lower-case letters, digits and `-`. */
  name: string;
  /** The plugin's own version (default "0.1.0"), shown in logs and dead letters. */
  version?: string;
  /** The fields it reads, by name: `{ user_id: "int", action: "text?" }`. */
  reads?: R;
  /** The step's configuration keys and their defaults; any other key fails init. */
  config?: C;
  /** Lookup table -> the read field whose value is its key, fetched per batch. */
  lookups?: Record<L, keyof R & string>;
}

/** A defined plugin: the default export of the plugin's module. */
export interface Plugin<Kind extends "filter" | "enricher" = "filter" | "enricher"> {
  readonly kind: Kind;
  readonly name: string;
  readonly version: string;
}

/** A filter whose `init(config)` makes what the function gets (once per instance). */
export function filter<const R extends Fields = {}, const C extends ConfigDecl = {}, L extends string = never, S = unknown>(
  spec: SpecBase<R, C, L> & { init: (config: Config<C>) => S },
  fn: (event: Event<R, L>, state: S) => boolean | Reject,
): Plugin<"filter">;

/**
 * A filter: `fn(event, config)` returns `true` to keep the event, `false` to
 * drop it, or throws `new Reject(reason)` to make it a dead letter. Any other
 * throw is a dead letter too, with its message and the plugin's line;
 * `throw new RetryLater(reason)` retries the whole batch.
 */
export function filter<const R extends Fields = {}, const C extends ConfigDecl = {}, L extends string = never>(
  spec: SpecBase<R, C, L>,
  fn: (event: Event<R, L>, config: Config<C>) => boolean | Reject,
): Plugin<"filter">;
/** An enricher whose `init(config)` makes what the function gets (once per instance). */
export function enricher<
  const R extends Fields = {},
  const W extends Fields = {},
  const C extends ConfigDecl = {},
  L extends string = never,
  S = unknown,
>(
  spec: SpecBase<R, C, L> & { writes?: W; init: (config: Config<C>) => S },
  fn: (event: Event<R, L>, out: Out<W>, state: S) => unknown,
): Plugin<"enricher">;

/**
 * An enricher: `fn(event, out, config)` sets the fields it adds with
 * `out.set(name, value)`. Throws as for a filter.
 */
export function enricher<
  const R extends Fields = {},
  const W extends Fields = {},
  const C extends ConfigDecl = {},
  L extends string = never,
>(
  spec: SpecBase<R, C, L> & { writes?: W },
  fn: (event: Event<R, L>, out: Out<W>, config: Config<C>) => unknown,
): Plugin<"enricher">;
/** Thrown (or returned by a filter): the event becomes a dead letter with `reason`. */
export class Reject extends Error {
  constructor(reason: string);
}

/** Thrown: the host retries the whole batch later, with backoff. */
export class RetryLater extends Error {
  constructor(reason: string);
}

/** Thrown by `init`: init fails with "config `key`: message". */
export class ConfigError extends Error {
  constructor(key: string, message: string);
  readonly key: string;
}

/** The host's log, tagged with the plugin and rate-limited there. Not at module top level. */
export const log: {
  trace(...args: unknown[]): void;
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
};

/**
 * Looks `key` up in the host's table `table` (one call across the boundary;
 * only tables granted to the step answer): `null` when absent. For a field of
 * every event, declare `lookups` in the spec instead: one call per batch.
 */
export function lookup(table: string, key: string): string | null;
