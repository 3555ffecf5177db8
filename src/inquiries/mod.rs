//! Sales inquiries: readers asking about subscriptions for several people,
//! acknowledged to them, forwarded to sales and worked by admins.

pub mod emails;
pub mod model;
pub mod service;
pub mod store;

pub use service::{InquiryError, InquiryService};
