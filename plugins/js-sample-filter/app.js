// js-sample-filter: keeps a deterministic sample of users. A user is in the
// sample when the FNV-1a hash (32-bit, over UTF-8) of `SALT:USER_ID` modulo
// 10000 is below `percent` × 100, so every event of a user gets the same
// verdict, in every batch, replay and instance, and the sample can be
// reproduced outside Weir. Internal and test users (`exclude_users`) are
// always dropped; an event without an integer `user_id` is a dead letter.
//
//   [[pipeline.step]]
//   plugin = "js-sample-filter"
//   config = { percent = "25", salt = "weir", exclude_users = "1,42" }

import { filter, ConfigError, Reject } from "weir";

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/**
 * FNV-1a over the UTF-8 bytes of `text`, continuing from `hash`.
 * @param {string} text
 * @param {number} [hash]
 */
export function fnv1a(text, hash = FNV_OFFSET) {
  const bytes = new TextEncoder().encode(text);
  let h = hash;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], FNV_PRIME) >>> 0;
  return h;
}

/**
 * The user's bucket in 0..9999: FNV-1a of `salt:user` modulo 10000.
 * @param {string} salt
 * @param {number | string} user
 */
export function bucket(salt, user) {
  return fnv1a(`${salt}:${user}`) % 10000;
}

export default filter(
  {
    name: "js-sample-filter",
    version: "0.1.0",
    reads: { user_id: "int" },
    config: {
      // Share of users kept, 0 to 100 (up to two decimals: 0.25 is 1 in 400).
      percent: 10,
      // Changes which users are sampled; the same salt gives the same sample.
      salt: "weir",
      // User ids always dropped, comma separated.
      exclude_users: [],
    },
    init({ percent, salt, exclude_users }) {
      if (percent < 0 || percent > 100) {
        throw new ConfigError("percent", `must be between 0 and 100 (got \`${percent}\`)`);
      }
      const excluded = new Set();
      for (const id of exclude_users) {
        if (!/^-?\d+$/.test(id)) throw new ConfigError("exclude_users", `item \`${id}\`: expected an integer user id`);
        excluded.add(Number(id));
      }
      // The hash of `salt:` once; each event hashes only its user id's digits.
      return { below: Math.round(percent * 100), prefix: fnv1a(`${salt}:`), excluded };
    },
  },
  (event, { below, prefix, excluded }) => {
    const user = event.get("user_id");
    if (user === null) throw new Reject("no integer `user_id`");
    if (excluded.has(user)) return false;
    // A user id is ASCII digits (and `-`): its characters are its bytes.
    const digits = String(user);
    let h = prefix;
    for (let i = 0; i < digits.length; i++) h = Math.imul(h ^ digits.charCodeAt(i), FNV_PRIME) >>> 0;
    return h % 10000 < below;
  },
);
