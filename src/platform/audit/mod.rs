//! The audit trail: who did what to which thing in the console and the
//! staff API, and when. A service records an action in the transaction that
//! makes the change, so the trail never claims what did not happen.

pub mod model;
pub mod service;
pub mod store;

pub use model::{AuditEntry, Subject};
pub use service::{record, AuditService};
