#![forbid(unsafe_code)]
//! masthead: the subscription backend of a news publisher.

pub mod access;
pub mod accounts;
pub mod app;
pub mod articles;
pub mod cli;
pub mod digest;
pub mod flows;
pub mod http;
pub mod inquiries;
pub mod jobs;
pub mod newsletter;
pub mod organizations;
pub mod platform;
pub mod state;
pub mod trials;
