//! The SingleStore sink: turns a partition's batch into rows and dead letters and
//! commits them with the partition's offset in one transaction.
//!
//! One [`Writer`] per connection; each partition is always handled by the same
//! writer, so its batches commit in order. The write path is `LOAD DATA LOCAL
//! INFILE` streamed from memory (or multi-row `INSERT`, see [`WriteMethod`]); any
//! warning fails the attempt, and the rows at fault are found one by one, turned
//! into dead letters, and the batch is written again without them.
//!
//! Architecture Invariant: rows, dead letters and the offsets row of a batch are
//! committed together or not at all, and the offsets row moves only by a
//! compare-and-set from the offset this owner last read or wrote.
//!
//! The files: `plan` (the table checked against the mapping), `encode` (rows
//! and dead letters), `writer` (a batch's write as named states), `io` (the
//! [`Database`] a writer commits to, and [`MySql`]), `report` (metrics and log
//! samples), [`dead_letter`] (the dead-letter table's statements). Uses
//! `chain`, `source` (claims and notes), `store`, `event`, `config` and `ops`;
//! never `pipeline`: a reloaded chain arrives through its [`Slot`].

pub mod dead_letter;
mod encode;
mod io;
mod plan;
mod report;
mod writer;

pub use encode::{encode, ChainView, EncodeContext, Encoded, RowFormat};
pub use io::{insert_rows, load_rows, Attempt, Database, MySql, Transaction};
pub use plan::{ColumnSource, PlanError, PlannedColumn, TablePlan};
pub use writer::{
    off_worker, offer, Backoff, Ending, Links, Mode, Slot, State, Swap, Writer, WriterSettings,
    STOP_GRACE,
};
