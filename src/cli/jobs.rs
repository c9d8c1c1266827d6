//! `airlog jobs run|list|backfill`: the player-event jobs and the audience rollups by hand.

use anyhow::bail;
use diesel::{Connection, PgConnection};

use super::JobsCommand;
use crate::config::Settings;

/// Runs a `jobs` command.
pub(super) fn run(
    conn: &mut PgConnection,
    settings: &Settings,
    cmd: JobsCommand,
) -> anyhow::Result<()> {
    use crate::jobs::{self, Job, Named, Trigger, Window};
    let js = &settings.jobs;
    match cmd {
        JobsCommand::Run {
            name,
            from,
            to,
            full,
        } => {
            let now = chrono::Utc::now();
            let default = Window::lookback(now, js);
            let window = Window {
                start: from.unwrap_or(default.start),
                end: to.unwrap_or(default.end),
            };
            if window.end <= window.start {
                bail!("--to must be after --from");
            }
            let named: Named = name.parse().map_err(anyhow::Error::msg)?;
            if full {
                if named != Named::One(Job::Sessions) {
                    bail!("--full applies to the sessions job only");
                }
                let written = conn.transaction(|c| {
                    jobs::refresh_sessions(c, js.session_gap_s, js.session_min_s, true)
                })?;
                println!("sessions: {written} sessions written (full recomputation)");
                return Ok(());
            }
            for outcome in jobs::run_named(conn, named, window, now, settings, Trigger::Cli)? {
                let job = &outcome.job;
                match outcome.rows_changed {
                    Some(rows) => println!("{job}: {rows} rows changed (run {})", outcome.run_id),
                    None => println!(
                        "{job}: skipped, another run is in progress (run {})",
                        outcome.run_id
                    ),
                }
            }
            Ok(())
        }
        JobsCommand::List { limit } => {
            for r in jobs::recent_runs(conn, None, limit)? {
                let state = match (&r.error, r.finished_at) {
                    (Some(e), _) => e.clone(),
                    (None, Some(_)) => format!("{} rows", r.rows_changed.unwrap_or(0)),
                    (None, None) => "running".into(),
                };
                let took = r
                    .finished_at
                    .map(|f| {
                        format!(
                            "{:.1}s",
                            (f - r.started_at).num_milliseconds() as f64 / 1000.0
                        )
                    })
                    .unwrap_or_default();
                println!(
                    "{:>6} {} {:<22} {:<9} {:>7} {}",
                    r.id,
                    r.started_at.format("%Y-%m-%d %H:%M:%S"),
                    r.name,
                    r.trigger,
                    took,
                    state
                );
            }
            Ok(())
        }
        JobsCommand::Backfill { from, to } => {
            if to < from {
                bail!("--to is before --from");
            }
            let tz = settings.station.time_zone.0;
            let hour = settings.station.day_start_hour.0;
            let days: Vec<chrono::NaiveDate> = from.iter_days().take_while(|d| *d <= to).collect();
            let bar = super::progress_bar(
                days.len() as u64,
                "{bar:40} {pos}/{len} days {msg} ({eta} left)",
            );
            let now = chrono::Utc::now();
            let mut rows = 0;
            for day in days {
                let (start, end) = crate::broadcast::day_bounds(day, hour, tz);
                // Events of the day may be closed by events up to the cap after it.
                let window = Window {
                    start,
                    end: end + chrono::Duration::seconds(js.open_event_cap_s as i64),
                };
                bar.set_message(day.to_string());
                for job in [
                    Job::CloseByNextEvent,
                    Job::CloseByMaxDuration,
                    Job::FixDurations,
                ] {
                    rows += jobs::run(conn, job, window, now, js, Trigger::Backfill)?
                        .rows_changed
                        .unwrap_or(0);
                }
                bar.inc(1);
            }
            bar.finish_with_message("cleanup done");
            let sessions = jobs::run(
                conn,
                Job::Sessions,
                Window {
                    start: now,
                    end: now,
                },
                now,
                js,
                Trigger::Backfill,
            )?;
            println!(
                "backfill {from} to {to}: {rows} events changed, {} sessions written",
                sessions.rows_changed.unwrap_or(0)
            );
            Ok(())
        }
    }
}
