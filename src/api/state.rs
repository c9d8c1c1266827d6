//! What every request handler can reach.

use std::sync::Arc;

use crate::config::Settings;
use crate::db::DbPool;

use super::metrics::Metrics;

/// What every request handler can reach.
pub struct AppState {
    pub pool: DbPool,
    pub settings: Arc<Settings>,
    pub metrics: Metrics,
    pub rate_limiter: super::ratelimit::RateLimiter,
    /// The share of the pool exports may hold.
    pub exports: super::export::ExportLimits,
    /// Where the database is, for the health check's own probe when the pool is busy.
    pub database_url: String,
    /// Permits to write a stream-event batch (`server.ingest_writers`).
    pub ingest_writers: Arc<tokio::sync::Semaphore>,
    /// The operator console's live streams, ended at shutdown.
    pub live: crate::console::live::Live,
}
