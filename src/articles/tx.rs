//! What another capability may read of articles inside its own transaction.

/// The slugs of every section, in their order: the newsletter's choices.
pub use super::store::section_slugs;
