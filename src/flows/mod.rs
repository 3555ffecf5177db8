//! The transactions that span capabilities: each is one workflow that
//! calls several capabilities' faces inside one transaction.

pub mod bounce;
pub mod join;
pub mod revoke;
