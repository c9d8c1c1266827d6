//! The audience of every item on air for a month of a busy station: computed from scratch for
//! the month, then for one new day once the month is in (what the audience job does after a
//! day of new log entries and listening).
//!
//! `cargo bench --bench item_audience -- --entries 10000 --sessions 1000000` prints both times,
//! their ratio, and checks the new day's items against a computation of the whole month.

#[path = "common.rs"]
mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use airlog::audience::period::Span;
use airlog::config::Settings;
use airlog::jobs::audience::{self as job, Rules};
use chrono::{DateTime, Duration as Days, NaiveDate, Utc};
use chrono_tz::Tz;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

const ZONE: Tz = chrono_tz::Europe::Zurich;

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn day_start(day: i64) -> DateTime<Utc> {
    let date = NaiveDate::from_ymd_opt(2024, 11, 1).unwrap() + Days::days(day);
    airlog::audience::period::local_midnight(ZONE, date)
}

/// A day of listening as COPY text: `per_day` sessions of `listeners` listeners.
fn listening(day: i64, per_day: usize, listeners: u64) -> Vec<u8> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (day as u64 + 1));
    let start = day_start(day);
    let len = (day_start(day + 1) - start).num_seconds() as u64;
    let mut out = Vec::with_capacity(per_day * 150);
    for _ in 0..per_day {
        let who = rng.below(listeners);
        let from = start + Days::seconds(rng.below(len) as i64);
        let seconds = 60 + rng.below(5400) as i64;
        let _ = writeln!(
            out,
            "hls\t10.{}.{}.{}\tGET\t/hls/live/a.ts\t200\t{}\tVLC/3.0.18\t{seconds}\t{}\t{}\tk{who}",
            who >> 16 & 255,
            who >> 8 & 255,
            who & 255,
            rng.below(1 << 30),
            from.to_rfc3339(),
            (from + Days::seconds(seconds)).to_rfc3339()
        );
    }
    out
}

/// A day of the as-run log: `per_day` sounds of the rotation, back to back from midnight.
fn log_day(conn: &mut PgConnection, station: i64, day: i64, per_day: usize) {
    let step = (day_start(day + 1) - day_start(day)).num_seconds() / per_day as i64;
    diesel::sql_query(
        "INSERT INTO onair_log (station_id, type, date, source, path, sound_id) \
         SELECT $1, 'on_air', $2::timestamptz + make_interval(secs => n * $3), 'main', s.path, s.id \
         FROM generate_series(0, $4 - 1) AS n \
         JOIN sound s ON s.id = (SELECT min(id) FROM sound) + n % 100",
    )
    .bind::<diesel::sql_types::BigInt, _>(station)
    .bind::<diesel::sql_types::Timestamptz, _>(day_start(day))
    .bind::<diesel::sql_types::Double, _>(step as f64)
    .bind::<diesel::sql_types::Integer, _>(per_day as i32)
    .execute(conn)
    .unwrap();
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let v = f();
    (v, t.elapsed())
}

fn main() {
    let entries: usize = common::arg("--entries", 10_000);
    let sessions: usize = common::arg("--sessions", 1_000_000);
    let listeners: u64 = common::arg("--listeners", 50_000);
    let days = 30i64;
    let (per_day, log_per_day) = (sessions / days as usize, entries / days as usize);
    println!(
        "airlog item-audience bench: {} entries and {} sessions over {days} days, one station",
        log_per_day * days as usize,
        per_day * days as usize
    );
    let db = common::BenchDb::open();
    let mut conn = PgConnection::establish(&db.url).unwrap();
    conn.batch_execute(
        "INSERT INTO station (name, time_zone, streamer) VALUES ('bench', 'Europe/Zurich', 'none');
         INSERT INTO station_stream (station_id, kind, pattern)
         SELECT id, 'hls', '/hls/live/' FROM station;
         INSERT INTO sound (path, duration_s, title, artist, isrc)
         SELECT '/music/' || n || '.flac', 240, 'Song ' || n, 'Band ' || n % 17,
                'ZZA01' || lpad(n::text, 7, '0')
         FROM generate_series(1, 100) AS n;",
    )
    .unwrap();
    let station: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "(SELECT id FROM station)",
    ))
    .get_result(&mut conn)
    .unwrap();
    for day in 0..days {
        common::copy_stream_events(&mut conn, listening(day, per_day, listeners));
        log_day(&mut conn, station, day, log_per_day);
    }
    conn.batch_execute("VACUUM ANALYZE stats_stream_event; VACUUM ANALYZE onair_log")
        .unwrap();
    let settings = Settings::default();
    let rules = Rules::of(&settings);
    let now = day_start(days + 1);
    let month = Span::new(day_start(0), day_start(days));
    let (items, scratch) = timed(|| {
        conn.transaction(|c| job::item_audience(c, station, month, now, &rules, "bench"))
            .unwrap()
    });
    println!(
        "from scratch, the month: {items} items in {:.2} s",
        scratch.as_secs_f64()
    );

    // One new day: its log and listening, then its items only.
    common::copy_stream_events(&mut conn, listening(days, per_day, listeners));
    log_day(&mut conn, station, days, log_per_day);
    conn.batch_execute("ANALYZE stats_stream_event; ANALYZE onair_log")
        .unwrap();
    let day = Span::new(day_start(days), day_start(days + 1));
    let mut times = Vec::new();
    let mut n = 0;
    for _ in 0..5 {
        let (items, t) = timed(|| {
            conn.transaction(|c| job::item_audience(c, station, day, now, &rules, "bench"))
                .unwrap()
        });
        n = items;
        times.push(t);
    }
    times.sort();
    let one_day = times[times.len() / 2];
    println!(
        "incrementally, one new day: {n} items in {:.3} s (median of 5)",
        one_day.as_secs_f64()
    );
    println!(
        "from scratch / one new day: {:.1} (the month is {days} days)",
        scratch.as_secs_f64() / one_day.as_secs_f64()
    );

    // The new day's items computed incrementally equal those of a computation over the month
    // and the day at once.
    let stored = |conn: &mut PgConnection| -> Vec<(i64, i32, i64)> {
        diesel::sql_query(
            "SELECT log_id, performances, listening_us FROM item_audience \
             WHERE start_at >= $1 ORDER BY log_id",
        )
        .bind::<diesel::sql_types::Timestamptz, _>(day.start)
        .load::<Row>(conn)
        .unwrap()
        .into_iter()
        .map(|r| (r.log_id, r.performances, r.listening_us))
        .collect()
    };
    let incremental = stored(&mut conn);
    conn.transaction(|c| {
        job::item_audience(
            c,
            station,
            Span::new(month.start, day.end),
            now,
            &rules,
            "bench",
        )
    })
    .unwrap();
    let whole = stored(&mut conn);
    println!(
        "the new day's items, incremental vs computed with the month: {}",
        if incremental == whole && !whole.is_empty() {
            "equal"
        } else {
            "DIFFERENT"
        }
    );
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    log_id: i64,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    performances: i32,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    listening_us: i64,
}
