use airlog::config::JobSettings;
use airlog::jobs::{self, Job, Trigger, Window};
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz};

use crate::helpers::{utc as t, TestDb};

fn key(ip: &str) -> String {
    airlog::domain::stream_event::device_key(&ip.parse().unwrap(), "Firefox")
}

/// Inserts one player event and returns its id.
pub fn add(
    conn: &mut PgConnection,
    device: &str,
    time: DateTime<Utc>,
    state: &str,
    max_s: Option<f64>,
    source: &str,
) -> i64 {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    diesel::sql_query(
        "INSERT INTO stats_player_event (time, state, max_duration, obj_key, source, user_identity, device_key) \
         VALUES ($1, $2, make_interval(secs => $3), 'catalog.media:X', $4, 'anonymous:' || $5, $5) RETURNING id",
    )
    .bind::<Timestamptz, _>(time)
    .bind::<Text, _>(state)
    .bind::<Nullable<diesel::sql_types::Double>, _>(max_s)
    .bind::<Text, _>(source)
    .bind::<Text, _>(device)
    .get_result::<Id>(conn)
    .unwrap()
    .id
}

/// A live play of 600 s at 10:00Z on 2024-05-01 by the device at `ip`: its key and the id.
fn ten_minute_play(conn: &mut PgConnection, ip: &str) -> (String, i64) {
    let device = key(ip);
    let id = add(
        conn,
        &device,
        t("2024-05-01T10:00:00Z"),
        "playing",
        Some(600.0),
        "live",
    );
    (device, id)
}

#[derive(QueryableByName, Debug, PartialEq)]
struct Closed {
    #[diesel(sql_type = Nullable<Timestamptz>)]
    time_end: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<diesel::sql_types::Double>)]
    seconds: Option<f64>,
    #[diesel(sql_type = Nullable<Text>)]
    closed_by: Option<String>,
}

fn closed(conn: &mut PgConnection, id: i64) -> Closed {
    diesel::sql_query("SELECT time_end, calculated_duration_s::float8 AS seconds, closed_by FROM stats_player_event WHERE id = $1")
        .bind::<BigInt, _>(id)
        .get_result(conn)
        .unwrap()
}

fn is(end: &str, seconds: f64, by: &str) -> Closed {
    Closed {
        time_end: Some(t(end)),
        seconds: Some(seconds),
        closed_by: Some(by.into()),
    }
}

fn open() -> Closed {
    Closed {
        time_end: None,
        seconds: None,
        closed_by: None,
    }
}

fn cleanup(conn: &mut PgConnection, window: Window, now: DateTime<Utc>) -> Vec<i64> {
    [
        Job::CloseByNextEvent,
        Job::CloseByMaxDuration,
        Job::FixDurations,
    ]
    .iter()
    .map(|j| {
        jobs::run(conn, *j, window, now, &JobSettings::default(), Trigger::Cli)
            .unwrap()
            .rows_changed
            .unwrap()
    })
    .collect()
}

#[test]
fn open_events_are_closed_by_the_next_event_max_duration_or_cap() {
    let db = TestDb::new();
    let c = &mut db.conn();
    // Play, pause between plays, play again with nothing after.
    let (a, a1) = ten_minute_play(c, "10.0.0.1");
    let a2 = add(c, &a, t("2024-05-01T10:01:40Z"), "paused", None, "live");
    let a3 = add(
        c,
        &a,
        t("2024-05-01T10:06:40Z"),
        "playing",
        Some(600.0),
        "on-demand",
    );
    // The next event comes after max_duration: the play ends at max_duration.
    let b = key("10.0.0.2");
    let b1 = add(
        c,
        &b,
        t("2024-05-01T10:00:00Z"),
        "playing",
        Some(60.0),
        "live",
    );
    let b2 = add(c, &b, t("2024-05-01T10:05:00Z"), "stopped", None, "live");
    // No max_duration and no successor: closed at the 4 h cap once it has passed.
    let d = key("10.0.0.3");
    let d1 = add(c, &d, t("2024-05-01T10:00:00Z"), "playing", None, "live");
    let d_late = add(c, &d, t("2024-05-01T13:00:00Z"), "paused", None, "live");

    let window = Window {
        start: t("2024-05-01T10:00:00Z"),
        end: t("2024-05-01T16:00:00Z"),
    };
    let now = t("2024-05-01T16:30:00Z");
    cleanup(c, window, now);

    assert_eq!(closed(c, a1), is("2024-05-01T10:01:40Z", 100.0, "next"));
    assert_eq!(closed(c, a2), is("2024-05-01T10:06:40Z", 300.0, "next"));
    assert_eq!(
        closed(c, a3),
        is("2024-05-01T10:16:40Z", 600.0, "max_duration")
    );
    assert_eq!(
        closed(c, b1),
        is("2024-05-01T10:01:00Z", 60.0, "max_duration")
    );
    assert_eq!(closed(c, b2), is("2024-05-01T14:05:00Z", 14400.0, "cap"));
    assert_eq!(closed(c, d1), is("2024-05-01T13:00:00Z", 10800.0, "next"));
    assert_eq!(closed(c, d_late), open(), "its cap has not passed yet");

    assert_eq!(
        cleanup(c, window, now),
        vec![0, 0, 0],
        "a second pass changes nothing"
    );
}

#[test]
fn a_play_still_within_its_max_duration_stays_open() {
    let db = TestDb::new();
    let c = &mut db.conn();
    let (_, a1) = ten_minute_play(c, "10.0.1.1");
    let window = Window {
        start: t("2024-05-01T09:00:00Z"),
        end: t("2024-05-01T11:00:00Z"),
    };
    cleanup(c, window, t("2024-05-01T10:05:00Z"));
    assert_eq!(closed(c, a1), open());
    cleanup(c, window, t("2024-05-01T10:10:01Z"));
    assert_eq!(
        closed(c, a1),
        is("2024-05-01T10:10:00Z", 600.0, "max_duration")
    );
}

#[test]
fn window_edges_include_the_start_exclude_the_end_and_see_successors_beyond() {
    let db = TestDb::new();
    let c = &mut db.conn();
    let a = key("10.0.2.1");
    let at_start = add(c, &a, t("2024-05-01T10:00:00Z"), "playing", None, "live");
    let at_end = add(c, &a, t("2024-05-01T11:00:00Z"), "playing", None, "live");
    let after = add(c, &a, t("2024-05-01T11:30:00Z"), "stopped", None, "live");
    let window = Window {
        start: t("2024-05-01T10:00:00Z"),
        end: t("2024-05-01T11:00:00Z"),
    };
    cleanup(c, window, t("2024-05-01T12:00:00Z"));
    assert_eq!(
        closed(c, at_start),
        is("2024-05-01T11:00:00Z", 3600.0, "next"),
        "successor at the window end counts"
    );
    assert_eq!(
        closed(c, at_end),
        open(),
        "events at the window end belong to the next window"
    );
    assert_eq!(closed(c, after), open());
}

#[test]
fn ends_past_a_late_successor_are_pulled_back_and_stale_durations_fixed() {
    let db = TestDb::new();
    let c = &mut db.conn();
    let (a, a1) = ten_minute_play(c, "10.0.3.1");
    let window = Window {
        start: t("2024-05-01T09:00:00Z"),
        end: t("2024-05-01T12:00:00Z"),
    };
    cleanup(c, window, t("2024-05-01T11:00:00Z"));
    assert_eq!(
        closed(c, a1),
        is("2024-05-01T10:10:00Z", 600.0, "max_duration")
    );
    // A delayed event shows the play was stopped earlier.
    add(c, &a, t("2024-05-01T10:02:00Z"), "stopped", None, "live");
    let stale = add(c, &a, t("2024-05-01T10:30:00Z"), "playing", None, "live");
    diesel::sql_query("UPDATE stats_player_event SET time_end = time + interval '90 s', calculated_duration_s = 0 WHERE id = $1")
        .bind::<BigInt, _>(stale)
        .execute(c)
        .unwrap();
    let changed = cleanup(c, window, t("2024-05-01T11:00:00Z"));
    assert_eq!(closed(c, a1), is("2024-05-01T10:02:00Z", 120.0, "fix"));
    assert_eq!(closed(c, stale).seconds, Some(90.0));
    assert_eq!(
        changed[2], 2,
        "fix-durations changed the pulled-back end and the stale duration"
    );
}

#[test]
fn runs_are_recorded_and_never_overlap() {
    let db = TestDb::new();
    let c = &mut db.conn();
    let window = Window {
        start: t("2024-05-01T09:00:00Z"),
        end: t("2024-05-01T12:00:00Z"),
    };
    let now = t("2024-05-01T12:00:00Z");
    let mut holder = db.conn();
    diesel::sql_query("SELECT pg_advisory_lock($1)")
        .bind::<BigInt, _>(Job::FixDurations.lock_key())
        .execute(&mut holder)
        .unwrap();
    let skipped = jobs::run(
        c,
        Job::FixDurations,
        window,
        now,
        &JobSettings::default(),
        Trigger::Cli,
    )
    .unwrap();
    assert!(skipped.skipped);
    let ran = jobs::run(
        c,
        Job::CloseByNextEvent,
        window,
        now,
        &JobSettings::default(),
        Trigger::Cli,
    )
    .unwrap();
    assert_eq!(ran.rows_changed, Some(0));
    diesel::sql_query("SELECT pg_advisory_unlock_all()")
        .execute(&mut holder)
        .unwrap();
    let runs = jobs::recent_runs(c, None, 10).unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].name, "close-by-next-event");
    assert_eq!(runs[0].rows_changed, Some(0));
    assert!(runs[0].finished_at.is_some() && runs[0].error.is_none());
    assert_eq!(runs[1].name, "fix-durations");
    assert!(runs[1].error.as_deref().unwrap().contains("skipped"));
    assert_eq!(runs[1].window_start, Some(window.start));
}

/// Listening of `devices` devices over `days` days, with pauses and gaps, deterministic.
fn simulate(conn: &mut PgConnection, devices: usize, from: DateTime<Utc>, hours: i64, seed: u64) {
    let mut x = seed | 1;
    let mut rnd = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    for d in 0..devices {
        let device = key(&format!("10.1.{}.{}", d / 200, d % 200 + 1));
        let mut time = from + Duration::seconds(rnd(3600) as i64);
        while time < from + Duration::hours(hours) {
            let source = ["live", "on-demand", "news"][rnd(3) as usize];
            let state = ["playing", "playing", "paused", "stopped"][rnd(4) as usize];
            let max = (rnd(3) > 0).then(|| (rnd(900) + 5) as f64);
            add(conn, &device, time, state, max, source);
            // Mostly short steps, sometimes a gap longer than the session gap.
            time += Duration::seconds(if rnd(5) == 0 {
                400 + rnd(3000) as i64
            } else {
                5 + rnd(280) as i64
            });
        }
    }
}

#[derive(QueryableByName, Debug, PartialEq, PartialOrd)]
struct SessionText {
    #[diesel(sql_type = Text)]
    row: String,
}

fn sessions(conn: &mut PgConnection) -> Vec<String> {
    diesel::sql_query(
        "SELECT concat_ws('|', user_identity, device_key, time_start, time_end, duration_s, duration_playing_s, \
         duration_playing_live_s, duration_playing_ondemand_s, duration_playing_news_s, remote_addr) AS row \
         FROM stats_player_session ORDER BY 1",
    )
    .load::<SessionText>(conn)
    .unwrap()
    .into_iter()
    .map(|r| r.row)
    .collect()
}

#[test]
fn incremental_sessions_equal_a_full_recomputation() {
    let db = TestDb::new();
    let c = &mut db.conn();
    let settings = JobSettings::default();
    let start = t("2024-05-01T00:00:00Z");
    for (chunk, seed) in [(0, 7u64), (1, 11), (2, 13)] {
        let from = start + Duration::hours(6 * chunk);
        simulate(c, 15, from, 6, seed);
        let window = Window {
            start: from - Duration::hours(5),
            end: from + Duration::hours(7),
        };
        let now = from + Duration::hours(12);
        jobs::run_all(c, window, now, &settings, Trigger::Cli).unwrap();
    }
    // A late event in the middle of history, as a trusted backfill would bring.
    add(
        c,
        &key("10.1.0.3"),
        start + Duration::minutes(95),
        "playing",
        Some(240.0),
        "news",
    );
    jobs::run_all(
        c,
        Window {
            start,
            end: start + Duration::hours(20),
        },
        start + Duration::hours(30),
        &settings,
        Trigger::Cli,
    )
    .unwrap();
    let incremental = sessions(c);
    assert!(
        incremental.len() > 30,
        "the simulation makes sessions: {}",
        incremental.len()
    );

    let written = c
        .transaction(|c| {
            jobs::refresh_sessions(c, settings.session_gap_s, settings.session_min_s, true)
        })
        .unwrap();
    assert_eq!(written, incremental.len());
    assert_eq!(sessions(c), incremental);

    // A different gap is noticed and everything is recomputed with it.
    let more = c
        .transaction(|c| jobs::refresh_sessions(c, 30, 10, false))
        .unwrap();
    assert!(
        more > incremental.len(),
        "a shorter gap splits sessions ({more})"
    );
}
