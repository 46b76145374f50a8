//! Records as they travel: a partition's batch ([`batch`]) and the reading of
//! mapped fields out of a JSON payload ([`scan`], [`convert`]).
//!
//! Uses [`crate::config`] (the declared field types) and [`crate::store::sql`]
//! (a converted cell writes itself as a `LOAD DATA` field or an SQL literal).
//! Everything here is pure computation on bytes: no I/O, no async.

pub mod batch;
pub mod convert;
pub mod scan;
