//! Integration tests: one binary, against a real PostgreSQL (TEST_DATABASE_URL, or a private
//! cluster started for this run), one fresh database per test.

mod helpers;

mod audience;
mod auth;
mod bad_input;
mod cluster;
mod config;
mod console;
mod contract;
mod fuzz;
mod health;
mod item_reports;
mod liquidsoap;
mod liquidsoap_record;
mod listening_figures;
mod media_servers;
mod migrations;
mod mpv_boundaries;
mod mpv_capture;
mod mpv_client;
mod mpv_history;
mod player_api;
pub mod player_jobs;
mod playout_api;
mod reference_client;
pub mod session_sql;
mod ship;
mod slow_readers;
mod stream_events;
mod webdriver;
mod webhooks;
