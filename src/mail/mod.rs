//! Mail: composing messages from templates, the transactional outbox, and
//! the transports that deliver it.

pub mod bulk;
pub mod compose;
pub mod delivery;
pub mod model;
pub mod service;
pub mod store;
pub mod transport;

pub use compose::{ComposedEmail, Composer, Email, Stream};
pub use transport::Transport;
