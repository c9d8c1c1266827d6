//! Scheduled jobs on player events: close what players leave open, fix durations, aggregate
//! listening sessions. Each job is idempotent SQL in `sql/`, runs under an advisory lock (two
//! runs of one job never overlap, across processes too) and is recorded in `job_run`.

pub mod audience;
pub mod scheduler;

use std::fmt;
use std::str::FromStr;

use anyhow::Context;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use crate::config::{JobSettings, Settings};
use crate::db::{self, locks};
// The audit trail is read where jobs are run (CLI, API, tests).
pub use crate::db::jobs::{recent_runs, JobRun};

/// The jobs, in the order a cleanup pass runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Job {
    /// Open events end where the listener's next event begins (at most max duration or the
    /// cap after their start).
    CloseByNextEvent,
    /// Open events with no successor end at their max duration (or the cap), once past.
    CloseByMaxDuration,
    /// Ends past the next event, the max duration or the cap are pulled back; calculated
    /// durations are refreshed.
    FixDurations,
    /// Listening sessions are recomputed for listeners whose events changed.
    Sessions,
}

impl Job {
    /// Every job, in cleanup order.
    pub const ALL: [Job; 4] = [
        Job::CloseByNextEvent,
        Job::CloseByMaxDuration,
        Job::FixDurations,
        Job::Sessions,
    ];

    /// The name used on the command line, in the API and in `job_run`.
    pub fn name(self) -> &'static str {
        match self {
            Job::CloseByNextEvent => "close-by-next-event",
            Job::CloseByMaxDuration => "close-by-max-duration",
            Job::FixDurations => "fix-durations",
            Job::Sessions => "sessions",
        }
    }

    /// The advisory lock key of this job ("airl" in the high bits).
    pub fn lock_key(self) -> i64 {
        0x6169_726c_0000_0000 + Job::ALL.iter().position(|j| *j == self).unwrap_or(0) as i64
    }
}

impl fmt::Display for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Job {
    type Err = String;
    fn from_str(s: &str) -> Result<Job, String> {
        Job::ALL.into_iter().find(|j| j.name() == s).ok_or_else(|| {
            format!(
                "unknown job {s:?} (expected one of: {})",
                Job::ALL.map(|j| j.name()).join(", ")
            )
        })
    }
}

/// A job asked for by name: a player-event job, the audience rollups, or all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Named {
    One(Job),
    Audience,
    /// Every player-event job in order, then the audience rollups (which read what they close).
    All,
}

impl FromStr for Named {
    type Err = String;
    fn from_str(s: &str) -> Result<Named, String> {
        match s {
            "all" => Ok(Named::All),
            audience::NAME => Ok(Named::Audience),
            _ => s.parse::<Job>().map(Named::One).map_err(|_| {
                format!(
                    "unknown job {s:?} (expected one of: {}, {}, all)",
                    Job::ALL.map(|j| j.name()).join(", "),
                    audience::NAME
                )
            }),
        }
    }
}

/// Runs the named job(s) now, in order; the first failure stops.
pub fn run_named(
    conn: &mut PgConnection,
    named: Named,
    window: Window,
    now: DateTime<Utc>,
    settings: &Settings,
    trigger: Trigger,
) -> anyhow::Result<Vec<Outcome>> {
    let mut out = Vec::new();
    match named {
        Named::One(job) => out.push(run(conn, job, window, now, &settings.jobs, trigger)?),
        Named::Audience => out.push(audience::run(conn, settings, trigger)?),
        Named::All => {
            out = run_all(conn, window, now, &settings.jobs, trigger)?;
            out.push(audience::run(conn, settings, trigger)?);
        }
    }
    Ok(out)
}

/// The event times a cleanup job looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Window {
    /// The scheduled window: the configured look-back (plus the session gap) up to `now`.
    pub fn lookback(now: DateTime<Utc>, jobs: &JobSettings) -> Window {
        let seconds = jobs.lookback_s + u64::from(jobs.session_gap_s);
        Window {
            start: now - chrono::Duration::seconds(seconds as i64),
            end: now + chrono::Duration::seconds(1),
        }
    }

    /// Where repairs of this window start: one open-event cap before it, because an event that
    /// a new one in the window can cut starts at most one cap earlier (no event lasts longer).
    pub fn repair_start(&self, jobs: &JobSettings) -> DateTime<Utc> {
        self.start - chrono::Duration::seconds(jobs.open_event_cap_s as i64)
    }
}

/// What one run did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Outcome {
    pub job: String,
    pub run_id: i64,
    /// Rows written, or None when the run was skipped.
    pub rows_changed: Option<i64>,
    pub skipped: bool,
}

/// Who asked for a run (recorded in `job_run.trigger`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Schedule,
    Cli,
    Api,
    Backfill,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Cli => "cli",
            Trigger::Api => "api",
            Trigger::Backfill => "backfill",
        }
    }
}

/// Runs one job, recording it in `job_run`. A run that finds the job already running elsewhere
/// is recorded as skipped; a failing run is recorded with its error and returned as `Err`.
pub fn run(
    conn: &mut PgConnection,
    job: Job,
    window: Window,
    now: DateTime<Utc>,
    settings: &JobSettings,
    trigger: Trigger,
) -> anyhow::Result<Outcome> {
    let covered = (job != Job::Sessions).then_some((window.start, window.end));
    let recorded = Recorded {
        name: job.name(),
        lock_key: job.lock_key(),
        timeout_s: settings.timeout_s,
        trigger,
        covered,
    };
    recorded.run(conn, |conn| execute(conn, job, window, now, settings))
}

/// How a job run is recorded and guarded: its name in `job_run`, its advisory lock (two runs
/// never overlap, across processes too), its statement timeout.
pub struct Recorded {
    pub name: &'static str,
    pub lock_key: i64,
    pub timeout_s: u64,
    pub trigger: Trigger,
    pub covered: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

impl Recorded {
    /// Runs `work` in one transaction under the lock, recording the run and its outcome.
    pub fn run(
        &self,
        conn: &mut PgConnection,
        work: impl FnOnce(&mut PgConnection) -> anyhow::Result<i64>,
    ) -> anyhow::Result<Outcome> {
        let name = self.name;
        let run_id = db::jobs::start_run(conn, name, self.trigger.as_str(), self.covered)
            .context("cannot record the job run")?;
        let started = std::time::Instant::now();
        let result = conn.transaction(|conn| -> anyhow::Result<Option<i64>> {
            if !locks::try_xact_lock(conn, self.lock_key)? {
                return Ok(None);
            }
            db::jobs::set_statement_timeout(conn, self.timeout_s)?;
            Ok(Some(work(conn)?))
        });
        let (rows, error, skipped) = match &result {
            Ok(Some(rows)) => (Some(*rows), None, false),
            Ok(None) => (
                None,
                Some("skipped: another run of this job is in progress".to_string()),
                true,
            ),
            Err(e) => (None, Some(format!("{e:#}")), false),
        };
        db::jobs::finish_run(conn, run_id, rows, error.as_deref())
            .context("cannot record the end of the job run")?;
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        match result {
            Ok(rows) => {
                tracing::info!(
                    job = name,
                    run_id,
                    rows = rows.unwrap_or(0),
                    skipped,
                    duration_ms,
                    "job finished"
                );
                Ok(Outcome {
                    job: name.into(),
                    run_id,
                    rows_changed: rows,
                    skipped,
                })
            }
            Err(e) => {
                tracing::error!(
                    job = name,
                    run_id,
                    error = format!("{e:#}"),
                    duration_ms,
                    "job failed"
                );
                Err(e.context(format!("job {name} failed")))
            }
        }
    }
}

fn execute(
    conn: &mut PgConnection,
    job: Job,
    w: Window,
    now: DateTime<Utc>,
    s: &JobSettings,
) -> anyhow::Result<i64> {
    let cap_s = s.open_event_cap_s as f64;
    let rows = match job {
        Job::CloseByNextEvent => db::jobs::close_by_next_event(conn, w.end, cap_s)?,
        Job::CloseByMaxDuration => db::jobs::close_by_max_duration(conn, w.end, now, cap_s)?,
        Job::FixDurations => db::jobs::fix_durations(conn, w.repair_start(s), w.end, cap_s)?,
        Job::Sessions => refresh_sessions(conn, s.session_gap_s, s.session_min_s, false)?,
    };
    Ok(rows as i64)
}

/// Recomputes sessions for the listeners marked dirty (all of them when `full`, or when the gap
/// or minimum differ from those the stored sessions were made with). Runs inside the caller's
/// transaction; returns the number of sessions written.
pub fn refresh_sessions(
    conn: &mut PgConnection,
    gap_s: u32,
    min_s: u32,
    full: bool,
) -> anyhow::Result<usize> {
    let same = db::sessions::params(conn)? == Some((gap_s, min_s));
    if full || !same {
        tracing::info!(gap_s, min_s, "recomputing every listening session");
        db::sessions::reset(conn, gap_s, min_s)?;
    }
    Ok(db::sessions::recompute_dirty(conn, gap_s, min_s)?)
}

/// Runs every job once over `window`, in order; the first failure stops the pass.
pub fn run_all(
    conn: &mut PgConnection,
    window: Window,
    now: DateTime<Utc>,
    settings: &JobSettings,
    trigger: Trigger,
) -> anyhow::Result<Vec<Outcome>> {
    Job::ALL
        .iter()
        .map(|job| run(conn, *job, window, now, settings, trigger))
        .collect()
}
