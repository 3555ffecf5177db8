//! One question, answered in one place: may this reader read an article in
//! full now, and why (not)?

pub mod model;
pub mod service;
pub mod store;
pub mod tx;

pub use model::{
    Decision, Entitlement, EntitlementId, EntitlementKind, Level, NewEntitlement, Reason,
};
pub use service::{decide, for_anonymous, AccessError, AccessService};
