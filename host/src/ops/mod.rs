//! What an operator sees: the Prometheus metrics and health endpoint
//! ([`metrics`]), and `weir top` ([`top`]) which reads them.
//!
//! A cross-cutting layer: every other module reports to [`metrics::get`];
//! this folder imports none of them.

pub mod metrics;
pub mod top;
