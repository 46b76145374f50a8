//! Weir streams events from Apache Kafka into SingleStore tables, exactly once.
//!
//! The parts, in the order an event meets them:
//! - [`source`]: a consumer group per pipeline, batches per partition, backpressure;
//! - [`convert`]: payloads scanned for the mapped fields and converted by explicit rules;
//! - [`sink`]: rows, dead letters and the partition's offset in one transaction;
//! - [`offsets`] and [`claim`]: where each partition stands, and who owns it.
//!
//! [`config`] reads `weir.toml`; [`gen`] produces realistic engagement events.

pub mod batch;
pub mod chain;
pub mod check;
pub mod claim;
pub mod config;
pub mod convert;
pub mod db;
pub mod dead_letter;
pub mod gen;
pub mod lookup;
pub mod metrics;
pub mod offline;
pub mod offsets;
pub mod pipeline;
pub mod plugin;
pub mod reload;
pub mod replay;
pub mod scaffold;
pub mod scan;
pub mod sink;
pub mod source;
pub mod sql;
pub mod top;
