//! The job scheduler inside `airlog serve`: a clokwerk schedule that runs a cleanup pass
//! (every job in order over the look-back window) every `jobs.interval_s` seconds. clokwerk
//! decides when a pass is due; the worker's step asks it every second.

use std::sync::Arc;
use std::time::Duration;

use clokwerk::{AsyncScheduler, TimeUnits};

use super::{run_named, Named, Outcome, Trigger, Window};
use crate::config::Settings;
use crate::db::DbPool;
use crate::shutdown::Shutdown;
use crate::worker::{Next, OnError, Worker};

/// How often the schedule is asked whether a pass is due.
const POLL: Duration = Duration::from_secs(1);

/// One scheduled pass: every job over the look-back window ending now, then the audience
/// rollups.
pub async fn tick(pool: &DbPool, settings: &Settings) -> anyhow::Result<Vec<Outcome>> {
    let settings = settings.clone();
    crate::db::run(pool, move |conn| {
        let now = chrono::Utc::now();
        run_named(
            conn,
            Named::All,
            Window::lookback(now, &settings.jobs),
            now,
            &settings,
            Trigger::Schedule,
        )
    })
    .await
}

/// Runs passes on schedule. A failed pass is logged (and recorded in `job_run`); the next one
/// runs as planned.
pub struct Scheduler {
    schedule: AsyncScheduler<chrono::Utc>,
    shutdown: Shutdown,
}

impl Scheduler {
    /// The scheduler for these settings; `None` when `jobs.enabled` is false.
    pub fn new(pool: DbPool, settings: Settings, shutdown: Shutdown) -> Option<Scheduler> {
        if !settings.jobs.enabled {
            tracing::info!("job scheduler disabled (jobs.enabled = false)");
            return None;
        }
        let interval_s = settings.jobs.interval_s;
        let settings = Arc::new(settings);
        let mut schedule = AsyncScheduler::with_tz(chrono::Utc);
        let interval = u32::try_from(interval_s).unwrap_or(u32::MAX);
        schedule.every(interval.seconds()).run(move || {
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
        tracing::info!(interval_s, "job scheduler started");
        Some(Scheduler { schedule, shutdown })
    }
}

impl Worker for Scheduler {
    fn name(&self) -> &str {
        "job scheduler"
    }

    fn period(&self) -> Option<Duration> {
        Some(POLL)
    }

    /// A pass reports its own failures; asking the schedule cannot fail.
    fn on_error(&self) -> OnError {
        OnError::Stop
    }

    async fn step(&mut self) -> anyhow::Result<Next> {
        // A pass in progress is abandoned at shutdown: its transaction rolls back, and the
        // next start catches up because every job is idempotent.
        tokio::select! {
            _ = self.shutdown.requested() => {}
            _ = self.schedule.run_pending() => {}
        }
        Ok(Next::Wait)
    }

    async fn stopped(&mut self) {
        tracing::info!("job scheduler stopped");
    }
}
