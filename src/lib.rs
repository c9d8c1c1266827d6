//! airlog: watches what goes on air and measures who listens.

pub mod api;
pub mod app;
pub mod audience;
pub mod auth;
pub mod broadcast;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod console;
pub mod db;
pub mod domain;
pub mod ingest;
pub mod jobs;
pub mod monitor;
pub mod reports;
pub mod ship;
pub mod shutdown;
pub mod telemetry;
pub mod webhooks;
pub mod worker;
