//! One integration-test binary, so it compiles and links once. Every test
//! runs against SQLite, or against PostgreSQL when
//! MASTHEAD_TEST_POSTGRES_URL is set.

mod accounts;
mod articles;
mod cli;
mod digest;
mod errors;
mod health;
mod helpers;
mod mail;
mod newsletter;
mod trials;
