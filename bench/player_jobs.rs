//! Player-event jobs: the cleanup jobs vs one equivalent raw UPDATE, and incremental sessions
//! on a 10x larger history vs the base history.
//!
//! `cargo bench --bench player_jobs -- --events 1000000 --devices 10000` (see README).

#[path = "common.rs"]
mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use airlog::config::JobSettings;
use airlog::db::schema::stats_player_event_copy as pe;
use airlog::jobs::{self, Job, Trigger, Window};
use chrono::{DateTime, TimeZone, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

/// The raw UPDATE that does in one statement what the three cleanup jobs do.
const RAW_UPDATE: &str = "
UPDATE stats_player_event AS e
SET time_end = c.new_end, calculated_duration_s = round(extract(epoch FROM c.new_end - e.time), 3)
FROM (
    SELECT id, CASE
        WHEN next_time IS NOT NULL THEN
            CASE WHEN state = 'playing' AND max_duration >= interval '1 second' AND time + max_duration < next_time
                 THEN time + max_duration ELSE next_time END
        WHEN state = 'playing' AND max_duration >= interval '1 second' THEN time + max_duration
        ELSE time + interval '4 hours' END AS new_end
    FROM (SELECT id, time, state, max_duration,
                 lead(time) OVER (PARTITION BY user_identity, device_key ORDER BY time, id) AS next_time
          FROM stats_player_event) AS w
) AS c
WHERE e.id = c.id AND e.time_end IS NULL AND c.new_end < now()";

struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// One broadcast day of listening for every device: a few sessions each, on-demand tracks
/// with track changes and pauses, live plays, most sessions ended by a stop, 20 % left open.
fn day_of_listening(devices: usize, events_per_device: usize, day: i64, seed: u64) -> Vec<u8> {
    // A per-day millisecond offset keeps a listener's events of different days apart even
    // where a late session of one day runs into the next (the natural key is unique).
    let base = Utc.with_ymd_and_hms(2024, 1, 1, 4, 0, 0).unwrap()
        + chrono::Duration::days(day)
        + chrono::Duration::milliseconds(day % 1000);
    let mut rng = Rng(seed ^ (day as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut out = Vec::with_capacity(devices * events_per_device * 160);
    for d in 0..devices {
        let ip = format!("10.{}.{}.{}", d / 65536, (d / 256) % 256, d % 256);
        let key = airlog::domain::stream_event::device_key(&ip.parse().unwrap(), "Mozilla/5.0");
        let mut time = base + chrono::Duration::seconds(rng.next(20 * 3600) as i64);
        let mut left = events_per_device;
        while left > 0 {
            let live = rng.next(3) == 0;
            let source = if live {
                "live"
            } else if rng.next(10) == 0 {
                "news"
            } else {
                "on-demand"
            };
            let plays = (rng.next(5) + 1).min(left as u64) as usize;
            for p in 0..plays {
                let track = rng.next(300) + 60;
                let max = if live {
                    "\\N".to_string()
                } else {
                    format!("{track} seconds")
                };
                let state = if p > 0 && rng.next(6) == 0 {
                    "paused"
                } else {
                    "playing"
                };
                write_row(&mut out, time, state, &max, source, &key);
                left -= 1;
                time += chrono::Duration::seconds(if live {
                    rng.next(3600) as i64 + 60
                } else {
                    track as i64
                });
            }
            // 80 % of sessions end with a stop; the rest are left open by the player.
            if left > 0 && rng.next(5) != 0 {
                write_row(&mut out, time, "stopped", "\\N", source, &key);
                left -= 1;
            }
            time += chrono::Duration::seconds(rng.next(4 * 3600) as i64 + 600);
        }
    }
    out
}

fn write_row(
    out: &mut Vec<u8>,
    time: DateTime<Utc>,
    state: &str,
    max: &str,
    source: &str,
    key: &str,
) {
    let _ = writeln!(
        out,
        "{}\t{state}\t{max}\tcatalog.media:X\t{source}\tanonymous:{key}\t{key}",
        time.to_rfc3339()
    );
}

fn copy_rows(conn: &mut PgConnection, data: Vec<u8>) {
    diesel::copy_from(pe::table)
        .from_raw_data(
            (
                pe::time,
                pe::state,
                pe::max_duration,
                pe::obj_key,
                pe::source,
                pe::user_identity,
                pe::device_key,
            ),
            |w: &mut dyn Write| -> Result<(), diesel::result::Error> {
                w.write_all(&data)
                    .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))
            },
        )
        .execute(conn)
        .unwrap();
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let r = f();
    (r, t.elapsed())
}

fn reset(conn: &mut PgConnection) {
    // Separate calls: VACUUM cannot run inside the implicit transaction of a multi-statement batch.
    for sql in [
        "UPDATE stats_player_event SET time_end = NULL, calculated_duration_s = NULL, closed_by = NULL WHERE time_end IS NOT NULL",
        "DELETE FROM stats_player_dirty",
        "VACUUM ANALYZE stats_player_event",
    ] {
        conn.batch_execute(sql).unwrap();
    }
}

fn cleanup(conn: &mut PgConnection, window: Window, s: &JobSettings) -> i64 {
    let now = Utc::now();
    let mut rows = 0;
    let mut times = Vec::new();
    for job in [
        Job::CloseByNextEvent,
        Job::CloseByMaxDuration,
        Job::FixDurations,
    ] {
        let (outcome, t) = timed(|| jobs::run(conn, job, window, now, s, Trigger::Cli).unwrap());
        rows += outcome.rows_changed.unwrap();
        times.push(format!("{job} {:.2} s", t.as_secs_f64()));
    }
    println!("  ({})", times.join(", "));
    rows
}

fn sessions(conn: &mut PgConnection, s: &JobSettings) -> (i64, Duration) {
    let now = Utc::now();
    let w = Window {
        start: now,
        end: now,
    };
    let (o, t) = timed(|| jobs::run(conn, Job::Sessions, w, now, s, Trigger::Cli).unwrap());
    (o.rows_changed.unwrap(), t)
}

fn add_days(conn: &mut PgConnection, devices: usize, per_day: usize, days: std::ops::Range<i64>) {
    for day in days {
        copy_rows(conn, day_of_listening(devices, per_day, day, 42));
    }
    conn.batch_execute("ANALYZE stats_player_event").unwrap();
}

fn window_of(days: std::ops::Range<i64>) -> Window {
    let base = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    Window {
        start: base + chrono::Duration::days(days.start),
        end: base + chrono::Duration::days(days.end + 2),
    }
}

fn main() {
    let events: usize = common::arg("--events", 1_000_000);
    let devices: usize = common::arg("--devices", 10_000);
    let factor: i64 = common::arg("--history-factor", 10);
    let per_day = 10;
    let days = (events / devices / per_day).max(1) as i64;
    println!(
        "airlog player-job bench: {} events ({devices} devices x {per_day} a day x {days} days)",
        devices * per_day * days as usize
    );
    let db = common::BenchDb::open();
    let mut conn = PgConnection::establish(&db.url).unwrap();
    let s = JobSettings::default();

    add_days(&mut conn, devices, per_day, 0..days);
    let all = window_of(0..days);

    let (raw_rows, raw_time) = timed(|| diesel::sql_query(RAW_UPDATE).execute(&mut conn).unwrap());
    reset(&mut conn);
    let (job_rows, job_time) = timed(|| cleanup(&mut conn, all, &s));
    let (open,): (i64,) = diesel::select((diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "(SELECT count(*) FROM stats_player_event WHERE time_end IS NULL)",
    ),))
    .get_result(&mut conn)
    .unwrap();

    // Sessions: the whole base history once, then one new day.
    let (base_sessions, base_full) = sessions(&mut conn, &s);
    add_days(&mut conn, devices, per_day, days..days + 1);
    cleanup(&mut conn, window_of(days - 1..days + 1), &s);
    let (day_sessions_1x, day_time_1x) = sessions(&mut conn, &s);

    // Grow the history to `factor` times, then the same new day again.
    let big = days * factor;
    println!("growing the history to {big} days ...");
    add_days(&mut conn, devices, per_day, days + 1..big);
    // Not measured: the raw UPDATE closes the added history fastest.
    diesel::sql_query(RAW_UPDATE).execute(&mut conn).unwrap();
    conn.batch_execute("VACUUM ANALYZE stats_player_event")
        .unwrap();
    let (_, grow_time) = sessions(&mut conn, &s);
    add_days(&mut conn, devices, per_day, big..big + 1);
    cleanup(&mut conn, window_of(big - 1..big + 1), &s);
    let (day_sessions_nx, day_time_nx) = sessions(&mut conn, &s);

    println!();
    println!("cleanup of {} events", devices * per_day * days as usize);
    println!(
        "  one raw UPDATE (lead() over all)  {:>9.2} s  ({raw_rows} rows)",
        raw_time.as_secs_f64()
    );
    println!("  the three cleanup jobs            {:>9.2} s  ({job_rows} rows, {open} still open: not yet due)", job_time.as_secs_f64());
    println!(
        "  ratio jobs / raw UPDATE           {:>9.2}    (target <= 2)",
        job_time.as_secs_f64() / raw_time.as_secs_f64()
    );
    println!("sessions");
    println!(
        "  full, base history ({days} days)     {:>9.2} s  ({base_sessions} sessions)",
        base_full.as_secs_f64()
    );
    println!(
        "  growing to {big} days                {:>9.2} s",
        grow_time.as_secs_f64()
    );
    println!(
        "  one new day on {days} days            {:>9.3} s  ({day_sessions_1x} sessions written)",
        day_time_1x.as_secs_f64()
    );
    println!(
        "  one new day on {big} days           {:>9.3} s  ({day_sessions_nx} sessions written)",
        day_time_nx.as_secs_f64()
    );
    println!(
        "  ratio {factor}x history / base          {:>9.2}    (target <= 1.2)",
        day_time_nx.as_secs_f64() / day_time_1x.as_secs_f64()
    );
    drop(conn);
    drop(db);
}
