//! Reader accounts: registration, email verification, sessions, password
//! reset and roles.

pub mod emails;
pub mod export;
pub mod model;
pub mod password;
pub mod service;
pub mod store;
pub mod tx;

pub use model::{Account, AccountId, Role};
pub use service::{AccountError, AccountService};
