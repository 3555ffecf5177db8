#![forbid(unsafe_code)]
//! masthead: the subscription backend of a news publisher.

pub mod abuse;
pub mod access;
pub mod accounts;
pub mod app;
pub mod articles;
pub mod audit;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod demo;
pub mod digest;
pub mod domain;
pub mod error;
pub mod extract;
pub mod inquiries;
pub mod jobs;
pub mod mail;
pub mod newsletter;
pub mod openapi;
pub mod ops;
pub mod organizations;
pub mod ratelimit;
pub mod secret;
pub mod state;
pub mod telemetry;
pub mod trials;
pub mod web;
