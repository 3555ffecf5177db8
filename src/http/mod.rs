//! What is served over HTTP: the JSON API and the HTML pages, both over the
//! same services.

pub mod api;
pub mod extract;
pub mod pages;
pub mod session;
pub mod telemetry;
