//! Mail: composing messages from templates, the transactional outbox, and
//! the transports that deliver it.

pub mod bulk;
pub mod compose;
pub mod delivery;
pub mod dkim;
pub mod inbound;
pub mod model;
pub mod retry;
pub mod service;
pub mod store;
pub mod suppression;
pub mod transport;
pub mod verp;
pub mod webhooks;

pub use compose::{ComposedEmail, Composer, Email, Stream};
pub use dkim::DkimSigner;
pub use transport::Transport;
pub use verp::{ReturnPaths, SentMessage};
