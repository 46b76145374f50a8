//! Commands around the running pipelines rather than in them: the event
//! generator ([`gen`]), plugin scaffolding ([`scaffold`]), running a chain
//! over a file ([`offline`]) and replaying dead letters ([`replay`]).
//!
//! The top layer beside [`crate::pipeline`]: it may use everything below;
//! nothing imports it but the command line.

pub mod gen;
pub mod offline;
pub mod replay;
pub mod scaffold;
