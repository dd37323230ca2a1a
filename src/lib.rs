//! Custodian: a web control panel for database administration.
//!
//! Requests flow one way: `web` (auth, roles, CSRF, parsing) → `service`
//! (rules, audit) → `store` (the panel's own state) and, in later areas,
//! `engine` (the managed databases). `cli` calls the same services.

pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod engine;
pub mod error;
pub mod files;
pub mod format;
pub mod lint;
pub mod secrets;
pub mod server;
pub mod service;
pub mod store;
pub mod web;

pub use error::{AppError, AppResult};
