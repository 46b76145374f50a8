//! The database Weir keeps its own state in, beside the rows it writes:
//! connections and the classification of their errors ([`db`]), SQL text and
//! quoting ([`sql`]) and the per-partition offsets table ([`offsets`]).
//!
//! Uses only [`crate::config`]. Both the source (where a partition resumes)
//! and the sink (the offset committed with its rows) use it.

pub mod db;
pub mod offsets;
pub mod sql;
