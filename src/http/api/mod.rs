//! The JSON API, by capability, and its OpenAPI description.

pub mod access;
pub mod accounts;
pub mod articles;
pub mod digest;
pub mod inquiries;
pub mod newsletter;
pub mod openapi;
pub mod ops;
pub mod organizations;
pub mod responses;
pub mod trials;
