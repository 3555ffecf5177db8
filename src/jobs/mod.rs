//! The background worker: on every tick it delivers the outbox and publishes
//! scheduled articles; hourly it clears expired sessions and links.

mod worker;

pub use worker::Worker;
