//! What another capability or flow may read or do to accounts inside its
//! own transaction: look an account up (by id, address or role) to name or
//! notify it, and mark an address verified when its owner proved it
//! another way (a company's join link). Each takes that transaction's
//! connection.

pub use super::store::{by_ids, find, find_by_email, mark_verified, with_role};
