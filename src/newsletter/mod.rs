//! The free daily newsletter: sign-up with double opt-in, preferences,
//! one-click unsubscribe, the suppression list, and the subscriber's data
//! rights.

pub mod csv_file;
pub mod emails;
pub mod export;
pub mod import;
pub mod links;
pub mod model;
pub mod service;
pub mod store;
pub mod tx;

pub use crate::platform::mail::suppression::{BounceKind, EmailHash, SuppressionReason};
pub use links::LinkSigner;
pub use model::{Sections, Source, Subscriber, SubscriberId, SubscriberStatus};
pub use service::{NewsletterError, NewsletterService};
