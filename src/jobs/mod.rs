//! The background worker: delivers the outbox on every tick.

mod worker;

pub use worker::Worker;
