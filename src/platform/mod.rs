//! What every capability stands on, knowing none of them: the database,
//! settings, time, errors, secrets, telemetry, limits, the audit trail,
//! domain types and mail.

pub mod abuse;
pub mod audit;
pub mod base;
pub mod clock;
pub mod config;
pub mod csv;
pub mod db;
pub mod domain;
pub mod error;
pub mod mail;
pub mod ratelimit;
pub mod secret;
pub mod telemetry;
