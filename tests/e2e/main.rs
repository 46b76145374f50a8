//! End-to-end tests against the real services: Apache Kafka (KRaft, one node)
//! and MariaDB standing in for SingleStore, both started by `scripts/services`.
//! They are marked ignored so that a plain `cargo test` runs the fast tier
//! alone; `scripts/test` runs them (`cargo test --test e2e -- --include-ignored`
//! once `scripts/services up` has run).
//!
//! Every test accounts for every event it produced: rows + filtered + dead
//! letters = produced (from the offsets totals), no position twice, and every
//! offset of every partition covered. They run one at a time (see
//! `support::serial`), since some of them stop the broker or the database.
//!
//! Config error texts are golden files: `WEIR_BLESS=1 cargo test --test e2e config -- --include-ignored`
//! rewrites `tests/config/*.err` from the current messages.

mod support;

mod archive;
mod config_errors;
mod dead_letters;
mod escaping;
mod faults;
mod fencing;
mod hostile;
mod languages;
mod operations;
mod pinterest;
mod plugins;
mod reload;
mod replay;
mod runs;
mod security;
