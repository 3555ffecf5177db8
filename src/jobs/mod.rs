//! The background worker: delivers the outbox on every tick, and does the
//! hourly housekeeping.

mod worker;

pub use worker::Worker;
