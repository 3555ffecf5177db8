//! Free two-week trials behind a manual approval queue.

pub mod emails;
pub mod flags;
pub mod model;
pub mod service;
pub mod store;
pub mod tx;

pub use service::{TrialError, TrialService};
