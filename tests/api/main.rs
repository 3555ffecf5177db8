//! One integration-test binary, so it compiles and links once. Every test
//! runs against SQLite, or against PostgreSQL when
//! MASTHEAD_TEST_POSTGRES_URL is set.

mod abuse;
mod account_pages;
mod accounts;
mod admin_pages;
mod article_pages;
mod articles;
mod browser;
mod cli;
mod companies;
mod companies_browser;
mod console_articles;
mod console_dashboard;
mod console_digests;
mod console_people;
mod console_trials;
mod deliverability;
mod digest;
mod email_links;
mod errors;
mod health;
mod helpers;
mod import;
mod ingest;
mod inquiries;
mod journey;
mod logs;
mod mail;
mod newsletter;
mod newsletter_pages;
mod openapi;
mod outbox_privacy;
mod proxies;
mod security;
mod smtp_sink;
mod trials;
mod webhooks;
