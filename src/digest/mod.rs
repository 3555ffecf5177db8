//! The daily digest: the schedule, the selection of articles, rendering
//! once per variant, and the fan-out to every subscriber with retries.

pub mod model;
pub mod render;
pub mod send;
pub mod service;
pub mod store;

pub use model::{DeliveryStatus, DigestRun, RunId};
pub use send::DigestSender;
pub use service::{DigestError, DigestService, RunView};
