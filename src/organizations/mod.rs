//! Company subscriptions: organisations with email domains, a number of
//! seats and a subscription period; readers of those domains join them
//! through an emailed link and read through their company's seat.

pub mod emails;
pub mod model;
pub mod service;
pub mod store;
pub mod tx;

pub use service::{OrganizationError, OrganizationService};
