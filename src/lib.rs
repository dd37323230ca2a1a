//! Custodian: a web control panel for database administration.
//!
//! Requests flow one way: `web` (auth, roles, CSRF, typed paths, pages and
//! JSON) → `service` (the rules: roles, audit, jobs, time boxes) → `engine`
//! (the managed databases, one folder per engine behind one trait) and
//! `store` (the panel's own state). `cli` and `server` open the same
//! services (`service::Services`). `lint` checks migrations; `domain`,
//! `clock`, `format`, `files` and `sqltext` are leaves every layer may use.

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
pub mod sqltext;
pub mod store;
pub mod web;

pub use error::{AppError, AppResult};
