//! The job scheduler inside `airlog serve`: a clokwerk schedule that runs a cleanup pass
//! (every job in order over the look-back window) every `jobs.interval_s` seconds.

use std::sync::Arc;
use std::time::Duration;

use clokwerk::{AsyncScheduler, TimeUnits};

use super::{run_all, Outcome, Trigger, Window};
use crate::config::JobSettings;
use crate::db::DbPool;
use crate::shutdown::Shutdown;

/// One scheduled pass: every job over the look-back window ending now.
pub async fn tick(pool: &DbPool, settings: &JobSettings) -> anyhow::Result<Vec<Outcome>> {
    let settings = settings.clone();
    crate::db::run(pool, move |conn| {
        let now = chrono::Utc::now();
        run_all(
            conn,
            Window::lookback(now, &settings),
            now,
            &settings,
            Trigger::Schedule,
        )
    })
    .await
}

/// Runs passes on schedule until shutdown. A failed pass is logged (and recorded in
/// `job_run`); the next one runs as planned.
pub async fn run_until_stopped(pool: DbPool, settings: JobSettings, mut shutdown: Shutdown) {
    if !settings.enabled {
        tracing::info!("job scheduler disabled (jobs.enabled = false)");
        return;
    }
    let settings = Arc::new(settings);
    let mut scheduler = AsyncScheduler::with_tz(chrono::Utc);
    let interval = u32::try_from(settings.interval_s).unwrap_or(u32::MAX);
    {
        let (pool, settings) = (pool.clone(), settings.clone());
        scheduler.every(interval.seconds()).run(move || {
            let (pool, settings) = (pool.clone(), settings.clone());
            async move {
                if let Err(e) = tick(&pool, &settings).await {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "scheduled job pass failed; retrying at the next interval"
                    );
                }
            }
        });
    }
    tracing::info!(interval_s = settings.interval_s, "job scheduler started");
    loop {
        // A pass in progress is abandoned at shutdown: its transaction rolls back, and the
        // next start catches up because every job is idempotent.
        tokio::select! {
            _ = shutdown.requested() => break,
            _ = async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                scheduler.run_pending().await;
            } => {}
        }
    }
    tracing::info!("job scheduler stopped");
}
