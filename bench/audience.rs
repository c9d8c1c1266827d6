//! Audience figures at scale: a year of listening (10 M sessions) for one station.
//!
//! `cargo bench --bench audience -- --sessions 10000000` (see README, "Benchmarks") prints:
//! - the one-year query (total, by month, by week) against a one-day query (total, by
//!   quarter-hour), from the rollups: times and their ratio;
//! - the audience job for one new day on a year of history against the same on a week of
//!   history (a second database holding the year's last week): times and their ratio;
//! - whether the figures from the rollups equal a from-scratch computation from the sessions
//!   (a year by month, a week by day in a daypart, a day by quarter-hour).

#[path = "common.rs"]
mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use airlog::config::Settings;
use airlog::reports::audience::{self as report, Asked, Report};
use chrono::{DateTime, Duration as Days, NaiveDate, Utc};
use chrono_tz::Tz;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

const ZONE: Tz = chrono_tz::Europe::Zurich;

/// xorshift: deterministic, no crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const AGENTS: &[&str] = &[
    "VLC/3.0.18 LibVLC/3.0.18",
    "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
    "AppleCoreMedia/1.0.0.21A329 (iPhone; U; CPU OS 17_0 like Mac OS X; en_us)",
    "Lavf/58.76.100",
    "Googlebot/2.1 (+http://www.google.com/bot.html)",
];

/// Day 0 of the history. The year ends on the 7th of a month, so the new days measured are
/// the 8th, 9th and 10th, and the month they fall in holds the same days with either history
/// (a run re-reads the changed month's days: at most 31, whatever the history).
fn first_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 3, 8).unwrap()
}

fn day_start(day: i64) -> DateTime<Utc> {
    let date = first_day() + Days::days(day);
    airlog::audience::period::local_midnight(ZONE, date)
}

/// One local day of listening as COPY text: `per_day` sessions of `listeners` listeners,
/// more in the morning and evening, a tenth under a minute, most 5 minutes to 2 hours.
fn day_of_listening(day: i64, per_day: usize, listeners: u64, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed ^ (day as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let start = day_start(day);
    let len = (day_start(day + 1) - start).num_seconds() as u64;
    let mut out = Vec::with_capacity(per_day * 160);
    for _ in 0..per_day {
        let who = rng.below(listeners);
        let ip = format!("10.{}.{}.{}", who >> 16 & 255, who >> 8 & 255, who & 255);
        let agent = AGENTS[(who % 23 % AGENTS.len() as u64) as usize];
        // Two draws, the later kept: listening leans towards the second half of the day.
        let at = rng.below(len).max(rng.below(len));
        let seconds = match rng.below(10) {
            0 => rng.below(60),
            1..=6 => 300 + rng.below(1800),
            _ => 1800 + rng.below(5400),
        } as i64;
        let from = start + Days::seconds(at as i64) + Days::milliseconds(rng.below(1000) as i64);
        let to = from + Days::seconds(seconds);
        let (origin, path) = if who.is_multiple_of(3) {
            ("icecast", "/live.mp3")
        } else {
            ("hls", "/hls/live/index.m3u8")
        };
        let _ = writeln!(
            out,
            "{origin}\t{ip}\tGET\t{path}\t200\t{}\t{agent}\t{seconds}\t{}\t{}\tk{who}",
            rng.below(1 << 30),
            from.to_rfc3339(),
            to.to_rfc3339()
        );
    }
    out
}

fn copy_days(conn: &mut PgConnection, days: std::ops::Range<i64>, per_day: usize, listeners: u64) {
    let mut data = Vec::new();
    let flush = |conn: &mut PgConnection, data: &mut Vec<u8>| {
        common::copy_stream_events(conn, std::mem::take(data))
    };
    for day in days {
        data.extend(day_of_listening(day, per_day, listeners, 7));
        if data.len() > 64 << 20 {
            flush(conn, &mut data);
        }
    }
    flush(conn, &mut data);
}

/// A database with the schema, a station in Zurich and its two streams.
fn prepare(url: &str) -> PgConnection {
    let mut conn = PgConnection::establish(url).unwrap();
    // The bench loads rows once: the ingest-only unique indexes (re-posts, uuids) are dropped
    // so the load takes minutes, not tens of minutes. The audience reads none of them.
    conn.batch_execute(
        "DROP INDEX IF EXISTS stats_stream_event_natural_key;
         DROP INDEX IF EXISTS stats_stream_event_uuid;
         INSERT INTO station (name, time_zone, streamer) VALUES ('bench', 'Europe/Zurich', 'none');
         INSERT INTO station_stream (station_id, kind, pattern)
         SELECT id, k, p FROM station, (VALUES ('icecast', '/live.mp3'), ('hls', '/hls/live/')) v(k, p);",
    )
    .unwrap();
    conn
}

fn analyze(conn: &mut PgConnection) {
    conn.batch_execute("VACUUM ANALYZE stats_stream_event")
        .unwrap();
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let v = f();
    (v, t.elapsed())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn ask(from: i64, until: i64, interval: &str, daypart: Option<&str>) -> Asked {
    let date = |d: i64| (first_day() + Days::days(d)).to_string();
    Asked {
        station: Some("bench".into()),
        from: Some(date(from)),
        until: Some(date(until)),
        interval: Some(interval.into()),
        daypart: daypart.map(str::to_string),
        by: None,
    }
}

fn query(conn: &mut PgConnection, settings: &Settings, asked: &Asked, direct: bool) -> Report {
    let q = report::check(conn, settings, asked).unwrap().unwrap();
    if direct {
        report::compute_from_sessions(conn, settings, q).unwrap()
    } else {
        report::compute(conn, settings, q).unwrap()
    }
}

/// Median time of `rounds` answers from the rollups (checked to come from them).
fn time_query(
    conn: &mut PgConnection,
    settings: &Settings,
    asked: &Asked,
    rounds: usize,
) -> Duration {
    let mut times = Vec::new();
    for _ in 0..rounds {
        let (r, t) = timed(|| query(conn, settings, asked, false));
        assert_eq!(r.rules.computed_from, "rollups", "{asked:?}");
        times.push(t);
    }
    median(times)
}

fn roll_up(conn: &mut PgConnection, settings: &Settings, now: DateTime<Utc>) -> (usize, Duration) {
    timed(|| {
        conn.transaction(|c| airlog::jobs::audience::roll_up(c, settings, now))
            .unwrap()
    })
}

fn main() {
    let sessions: usize = common::arg("--sessions", 10_000_000);
    let listeners: u64 = common::arg("--listeners", 300_000);
    let rounds: usize = common::arg("--rounds", 7);
    let days = 365i64;
    let per_day = sessions / days as usize;
    println!(
        "airlog audience bench: {} sessions of {listeners} listeners over {days} days ({per_day} a day), one station",
        per_day * days as usize
    );
    let settings = Settings::default();
    let db = common::BenchDb::open();
    let mut year = prepare(&db.url);
    diesel::sql_query("CREATE DATABASE audience_week")
        .execute(&mut year)
        .unwrap();
    let week_url = common::with_database(&db.url, "audience_week");
    airlog::db::migrate(&week_url).unwrap();
    let mut week = prepare(&week_url);

    let (_, load) = timed(|| copy_days(&mut year, 0..days, per_day, listeners));
    copy_days(&mut week, days - 7..days, per_day, listeners);
    analyze(&mut year);
    analyze(&mut week);
    println!("loaded in {:.0} s", load.as_secs_f64());
    let now_after = |day: i64| day_start(day + 1) + Days::hours(1);
    let (n, full) = roll_up(&mut year, &settings, now_after(days - 1));
    println!(
        "audience job, first run (every day of the year): {n} days in {:.1} s",
        full.as_secs_f64()
    );
    roll_up(&mut week, &settings, now_after(days - 1));

    // One new day at a time, alternating the two histories so both see the same machine.
    let (mut on_year, mut on_week) = (Vec::new(), Vec::new());
    let new_days = rounds.clamp(3, 5) as i64;
    for (i, day) in (days..days + new_days).enumerate() {
        for (conn, out) in [(&mut year, &mut on_year), (&mut week, &mut on_week)] {
            copy_days(conn, day..day + 1, per_day, listeners);
            analyze(conn);
            let (n, t) = roll_up(conn, &settings, now_after(day));
            assert!(n <= 3, "the new day and its neighbours, got {n}");
            out.push(t);
        }
        println!(
            "  new day {}: {:.0} ms on a year, {:.0} ms on a week",
            i + 1,
            ms(on_year[i]),
            ms(on_week[i])
        );
    }
    let (job_year, job_week) = (median(on_year), median(on_week));

    let last = days + new_days;
    let one_year = [
        ("a year, total", ask(last - 365, last, "total", None)),
        ("a year by month", ask(last - 365, last, "month", None)),
        ("a year by week", ask(last - 365, last, "week", None)),
    ];
    let one_day = [
        ("a day, total", ask(last - 2, last - 1, "total", None)),
        (
            "a day by quarter-hour",
            ask(last - 2, last - 1, "quarter_hour", None),
        ),
    ];
    let mut year_times = Vec::new();
    for (name, asked) in &one_year {
        let t = time_query(&mut year, &settings, asked, rounds);
        println!("query {name}: {:.1} ms", ms(t));
        year_times.push(t);
    }
    let mut day_times = Vec::new();
    for (name, asked) in &one_day {
        let t = time_query(&mut year, &settings, asked, rounds);
        println!("query {name}: {:.1} ms", ms(t));
        day_times.push(t);
    }

    // The same figures from scratch, from the sessions.
    let checks = [
        ("a year by month", ask(last - 365, last, "month", None)),
        (
            "a week by day, mon-fri 06:00-10:00",
            ask(last - 9, last - 2, "day", Some("mon-fri 06:00-10:00")),
        ),
        (
            "a day by quarter-hour",
            ask(last - 2, last - 1, "quarter_hour", None),
        ),
    ];
    let mut equal = true;
    for (name, asked) in &checks {
        let rolled = query(&mut year, &settings, asked, false);
        let (direct, t) = timed(|| query(&mut year, &settings, asked, true));
        let same = serde_json::to_value(&rolled.results).unwrap()
            == serde_json::to_value(&direct.results).unwrap()
            && rolled.rules.excluded == direct.rules.excluded;
        equal &= same;
        println!(
            "from scratch, {name}: {} (computed from the sessions in {:.1} s)",
            if same { "equal" } else { "DIFFERENT" },
            t.as_secs_f64()
        );
    }

    println!();
    let worst_year = year_times.iter().max().copied().unwrap();
    println!(
        "one-year query (slowest of total/month/week): {:.1} ms (target <= 200 ms)",
        ms(worst_year)
    );
    for ((y, yt), (d, dt)) in [(0, 0), (2, 1)]
        .map(|(y, d)| ((one_year[y].0, year_times[y]), (one_day[d].0, day_times[d])))
    {
        println!(
            "one-year / one-day query, {y} / {d}: {:.2} (target <= 5)",
            yt.as_secs_f64() / dt.as_secs_f64()
        );
    }
    println!(
        "audience job for one new day, year / week of history: {:.0} ms / {:.0} ms = {:.2} (target <= 1.2)",
        ms(job_year),
        ms(job_week),
        job_year.as_secs_f64() / job_week.as_secs_f64()
    );
    println!(
        "figures from rollups equal a from-scratch computation: {}",
        if equal { "yes" } else { "NO" }
    );
}
