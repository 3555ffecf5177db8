//! The background worker: on every tick it delivers the outbox, publishes
//! scheduled articles and sends the morning trial summary when due; hourly it
//! clears expired sessions, links and stale newsletter sign-ups.

mod worker;

pub use worker::Worker;
