//! Custodian's integration tests: the real server on a random port, its own
//! store per test (SQLite file or a fresh PostgreSQL database), driven over
//! HTTP like a browser, through the API like a CI job, and in headless
//! chromium for the sign-in flow.

mod helpers;

mod activity;
mod audit;
mod backups;
mod bad_input;
mod browser;
mod budget;
mod cli;
mod csrf;
mod demo;
mod fleet;
mod lint;
mod login;
mod maintenance;
mod migration_requests;
mod migrations;
mod monitoring;
mod permissions;
mod recovery;
mod registry;
mod registry_guards;
mod registry_sync;
mod removal;
mod robustness;
mod roles;
mod secrecy;
mod sessions;
mod setup;
mod slow_clients;
mod throttle;
mod tokens;
mod web_layering;
