//! Listening figures do not depend on when, or in which order, the jobs saw the data. Every
//! check compares airlog's events and sessions with the test's own computation of the closing
//! and session rules (README "Player events, jobs and listening sessions"), and with the
//! replaced system's session query where that query's own order is determined.

use std::collections::{BTreeMap, BTreeSet};

use airlog::config::JobSettings;
use airlog::db::player_events::{self, NewPlayerEvent};
use airlog::domain::player_event::PlayerEvent;
use airlog::jobs::{self, Trigger, Window};
use chrono::{DateTime, Duration, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz};
use proptest::prelude::*;

use crate::helpers::{utc, TestDb};
use crate::session_sql::{psql, reference_sql};

/// The listeners of the generated histories: the first is the one the reference query selects.
const LISTENERS: [(&str, &str); 3] = [
    ("account.user:D34C5A0A", "198.51.100.4"),
    ("account.user:D34C5A0A", "2001:db8::7"),
    ("account.user:OTHER", "198.51.100.9"),
];
const OBJECTS: [&str; 3] = ["catalog.media:A", "catalog.media:B", "catalog.media:C"];
const STATES: [&str; 4] = ["playing", "playing", "paused", "stopped"];
const SOURCES: [&str; 3] = ["live", "on-demand", "news"];
/// Media lengths: unknown, under a second (treated as unknown), shorter and longer than gaps,
/// and longer than the open-event cap.
const MAX_S: [Option<f64>; 6] = [
    None,
    Some(0.5),
    Some(30.0),
    Some(299.5),
    Some(3600.0),
    Some(20_000.0),
];
/// Steps between a listener's events: ties, the minimum and the gap at their edges, the cap at
/// its edge, and the long silences that made closing depend on job timing.
const STEPS_S: [f64; 16] = [
    0.0, 0.0, 1.0, 30.0, 59.999, 120.5, 299.999, 300.0, 300.001, 301.0, 1800.0, 14_399.0, 14_400.0,
    14_401.0, 72_000.0, 273_600.0,
];

fn device(listener: usize) -> String {
    airlog::domain::stream_event::device_key(&LISTENERS[listener].1.parse().unwrap(), "Chrome")
}

/// One generated player event.
#[derive(Debug, Clone)]
struct Ev {
    listener: usize,
    time: DateTime<Utc>,
    obj: &'static str,
    state: &'static str,
    source: &'static str,
    max_s: Option<f64>,
    client_end: Option<DateTime<Utc>>,
}

impl Ev {
    /// The key the database keeps unique, and the order the rules follow within a listener.
    fn order(&self) -> (usize, DateTime<Utc>, &'static str, &'static str) {
        (self.listener, self.time, self.obj, self.state)
    }
}

fn store(conn: &mut PgConnection, events: &[&Ev]) {
    let checked: Vec<PlayerEvent> = events
        .iter()
        .map(|e| PlayerEvent {
            time: Some(e.time),
            time_end: e.client_end,
            state: e.state.parse().unwrap(),
            obj_key: e.obj.to_string(),
            source: e.source.parse().unwrap(),
            max_duration_s: e.max_s,
            client_ts: None,
            user_identity: None,
            device_key: None,
        })
        .collect();
    let devices: Vec<String> = events.iter().map(|e| device(e.listener)).collect();
    let rows: Vec<NewPlayerEvent> = events
        .iter()
        .zip(&checked)
        .zip(&devices)
        .map(|((e, c), d)| NewPlayerEvent {
            event: c,
            time: e.time,
            user_identity: LISTENERS[e.listener].0,
            device_key: d,
            listener_key: None,
        })
        .collect();
    player_events::insert(conn, &rows).unwrap();
}

/// Runs every job over `window` as a backfill does, at a `now` after every bound.
fn pass(conn: &mut PgConnection, window: Window, settings: &JobSettings) {
    let now = utc("2030-01-01T00:00:00Z");
    jobs::run_all(conn, window, now, settings, Trigger::Backfill).unwrap();
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// An event as stored: (listener key, time, obj, state) -> (end, calculated ms).
type Events = BTreeMap<(String, String, i64, String, String), (Option<i64>, Option<i64>)>;
/// A session: (user, device, start) -> (end, duration µs, playing ms, live, on-demand, news).
type Sessions = BTreeMap<(String, String, i64), (i64, i64, i64, i64, i64, i64)>;

#[derive(QueryableByName)]
struct EventRow {
    #[diesel(sql_type = Text)]
    user_identity: String,
    #[diesel(sql_type = Text)]
    device_key: String,
    #[diesel(sql_type = BigInt)]
    t: i64,
    #[diesel(sql_type = Text)]
    obj_key: String,
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    end_us: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    ms: Option<i64>,
}

#[derive(QueryableByName)]
struct SessionRow {
    #[diesel(sql_type = Text)]
    user_identity: String,
    #[diesel(sql_type = Text)]
    device_key: String,
    #[diesel(sql_type = BigInt)]
    start_us: i64,
    #[diesel(sql_type = BigInt)]
    end_us: i64,
    #[diesel(sql_type = BigInt)]
    duration_us: i64,
    #[diesel(sql_type = BigInt)]
    playing_ms: i64,
    #[diesel(sql_type = BigInt)]
    live_ms: i64,
    #[diesel(sql_type = BigInt)]
    ondemand_ms: i64,
    #[diesel(sql_type = BigInt)]
    news_ms: i64,
}

fn stored_events(conn: &mut PgConnection) -> Events {
    diesel::sql_query(
        "SELECT user_identity, device_key, (extract(epoch FROM time) * 1000000)::int8 AS t, obj_key, \
         state, (extract(epoch FROM time_end) * 1000000)::int8 AS end_us, \
         (calculated_duration_s * 1000)::int8 AS ms FROM stats_player_event",
    )
    .load::<EventRow>(conn)
    .unwrap()
    .into_iter()
    .map(|r| {
        (
            (r.user_identity, r.device_key, r.t, r.obj_key, r.state),
            (r.end_us, r.ms),
        )
    })
    .collect()
}

fn stored_sessions(conn: &mut PgConnection) -> Sessions {
    diesel::sql_query(
        "SELECT user_identity, device_key, (extract(epoch FROM time_start) * 1000000)::int8 AS start_us, \
         (extract(epoch FROM time_end) * 1000000)::int8 AS end_us, (duration_s * 1000000)::int8 AS duration_us, \
         (duration_playing_s * 1000)::int8 AS playing_ms, (duration_playing_live_s * 1000)::int8 AS live_ms, \
         (duration_playing_ondemand_s * 1000)::int8 AS ondemand_ms, \
         (duration_playing_news_s * 1000)::int8 AS news_ms FROM stats_player_session",
    )
    .load::<SessionRow>(conn)
    .unwrap()
    .into_iter()
    .map(|r| {
        (
            (r.user_identity, r.device_key, r.start_us),
            (
                r.end_us,
                r.duration_us,
                r.playing_ms,
                r.live_ms,
                r.ondemand_ms,
                r.news_ms,
            ),
        )
    })
    .collect()
}

/// The test's own reading of the rules: each event ends at the earliest of its client end,
/// the next event (by time, obj_key, state), time + max_duration (playing, >= 1 s) and time +
/// the cap; durations are cut to the millisecond; sessions follow the gap and minimum.
fn expected(events: &[Ev], s: &JobSettings) -> (Events, Sessions) {
    let mut sorted: Vec<&Ev> = events.iter().collect();
    sorted.sort_by_key(|e| e.order());
    let mut out_events = Events::new();
    let mut ends = Vec::with_capacity(sorted.len());
    for (i, e) in sorted.iter().enumerate() {
        let t = micros(e.time);
        let next = sorted
            .get(i + 1)
            .filter(|n| n.listener == e.listener)
            .map(|n| micros(n.time));
        let media = (e.state == "playing")
            .then_some(e.max_s)
            .flatten()
            .filter(|m| *m >= 1.0)
            .map(|m| t + (m * 1e6).round() as i64);
        let cap = Some(t + s.open_event_cap_s as i64 * 1_000_000);
        let end = [e.client_end.map(micros), next, media, cap]
            .into_iter()
            .flatten()
            .min()
            .unwrap();
        let ms = (end - t) / 1000;
        ends.push((end, ms));
        out_events.insert(
            (
                LISTENERS[e.listener].0.to_string(),
                device(e.listener),
                t,
                e.obj.to_string(),
                e.state.to_string(),
            ),
            (Some(end), Some(ms)),
        );
    }
    let mut sessions = Sessions::new();
    let mut group: Vec<(i64, i64, i64, &str)> = Vec::new();
    let mut flush = |group: &mut Vec<(i64, i64, i64, &str)>, listener: usize| {
        if group.is_empty() {
            return;
        }
        let start = group.iter().map(|g| g.0).min().unwrap();
        let end = group.iter().map(|g| g.1).max().unwrap();
        let by = |src: &str| {
            group
                .iter()
                .filter(|g| src.is_empty() || g.3 == src)
                .map(|g| g.2)
                .sum::<i64>()
        };
        if by("") > i64::from(s.session_min_s) * 1000 {
            sessions.insert(
                (LISTENERS[listener].0.into(), device(listener), start),
                (
                    end,
                    end - start,
                    by(""),
                    by("live"),
                    by("on-demand"),
                    by("news"),
                ),
            );
        }
        group.clear();
    };
    let mut prev: Option<(usize, i64)> = None;
    for (e, (end, ms)) in sorted.iter().zip(&ends) {
        if e.state != "playing" {
            continue;
        }
        let t = micros(e.time);
        match prev {
            Some((l, prev_end))
                if l == e.listener && t - prev_end <= i64::from(s.session_gap_s) * 1_000_000 => {}
            Some((l, _)) => flush(&mut group, l),
            None => {}
        }
        group.push((t, *end, *ms, e.source));
        prev = Some((e.listener, *end));
    }
    if let Some((l, _)) = prev {
        flush(&mut group, l);
    }
    (out_events, sessions)
}

/// Invariants that hold for any data: no listener's events overlap; a session plays no longer
/// than it lasts; each source's time is within the playing time.
fn check_invariants(events: &Events, sessions: &Sessions) {
    let mut last: Option<(&str, &str, i64)> = None;
    for ((user, dev, t, ..), (end, _)) in events {
        if let Some((u, d, prev_end)) = last {
            if u == user && d == dev {
                assert!(prev_end <= *t, "events of {user} overlap at {t}");
            }
        }
        last = Some((user, dev, end.expect("every event is closed")));
    }
    for (key, (_, duration_us, playing, live, ondemand, news)) in sessions {
        assert!(*playing * 1000 <= *duration_us, "{key:?}: played > lasted");
        for part in [live, ondemand, news] {
            assert!(part <= playing, "{key:?}: a source > playing");
        }
        assert!(live + ondemand + news == *playing, "{key:?}: sources");
    }
}

fn reset(conn: &mut PgConnection) {
    conn.batch_execute(
        "TRUNCATE stats_player_event, stats_player_session, stats_player_dirty, \
         stats_player_session_params, job_run RESTART IDENTITY",
    )
    .unwrap();
}

/// A small deterministic shuffle driven by the generated seed.
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        items.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}

fn history() -> impl Strategy<Value = Vec<Ev>> {
    let event = (
        0..STEPS_S.len() + 4,
        0..1000u32,
        0..OBJECTS.len(),
        0..STATES.len(),
        0..SOURCES.len(),
        0..MAX_S.len(),
        prop::option::weighted(0.15, 0..2000u32),
    );
    prop::collection::vec(prop::collection::vec(event, 1..25), LISTENERS.len()).prop_map(
        |listeners| {
            let base = utc("2024-10-26T20:00:00Z");
            let mut seen = BTreeSet::new();
            let mut out = Vec::new();
            for (listener, events) in listeners.into_iter().enumerate() {
                let mut time = base;
                for (step, ms, obj, state, source, max, client) in events {
                    let step_s = STEPS_S.get(step).copied().unwrap_or(f64::from(ms) * 0.6);
                    time += Duration::microseconds((step_s * 1e6) as i64);
                    let e = Ev {
                        listener,
                        time,
                        obj: OBJECTS[obj],
                        state: STATES[state],
                        source: SOURCES[source],
                        max_s: MAX_S[max],
                        client_end: client
                            .map(|c| time + Duration::milliseconds(i64::from(c) * 997)),
                    };
                    // The database keeps one event per (listener, time, obj_key, state).
                    if seen.insert((listener, e.time, e.obj, e.state)) {
                        out.push(e);
                    }
                }
            }
            out
        },
    )
}

/// The three databases a case loads its history into, one per way of loading.
struct Dbs {
    _dbs: Vec<TestDb>,
    conns: Vec<PgConnection>,
    reference_url: String,
}

fn dbs() -> Dbs {
    let dbs: Vec<TestDb> = (0..3).map(|_| TestDb::new()).collect();
    let conns = dbs.iter().map(|d| d.conn()).collect();
    Dbs {
        reference_url: dbs[0].url.clone(),
        _dbs: dbs,
        conns,
    }
}

fn check_history(dbs: &mut Dbs, events: &[Ev], seed: u64, batches: usize) {
    let settings = JobSettings::default();
    let (want_events, want_sessions) = expected(events, &settings);
    check_invariants(&want_events, &want_sessions);
    for conn in &mut dbs.conns {
        reset(conn);
    }
    let all: Vec<&Ev> = events.iter().collect();
    let first = events.iter().map(|e| e.time).min().unwrap();
    let last = events.iter().map(|e| e.time).max().unwrap();

    // 1. Everything at once, one pass.
    let c = &mut dbs.conns[0];
    store(c, &all);
    pass(
        c,
        Window {
            start: first,
            end: last + Duration::seconds(1),
        },
        &settings,
    );

    // 2. Day by day (UTC days) in a shuffled order, a backfill of that day after each.
    let c = &mut dbs.conns[1];
    let mut days: BTreeMap<chrono::NaiveDate, Vec<&Ev>> = BTreeMap::new();
    for e in events {
        days.entry(e.time.date_naive()).or_default().push(e);
    }
    let mut days: Vec<_> = days.into_iter().collect();
    shuffle(&mut days, seed);
    for (day, evs) in &days {
        store(c, evs);
        let start = day.and_hms_opt(0, 0, 0).unwrap().and_utc();
        pass(
            c,
            Window {
                start,
                end: start + Duration::days(1),
            },
            &settings,
        );
    }

    // 3. Shuffled batches (late arrivals), each followed by a pass over its own time span.
    let c = &mut dbs.conns[2];
    let mut shuffled = all.clone();
    shuffle(&mut shuffled, seed.rotate_left(17) | 1);
    for chunk in shuffled.chunks(shuffled.len().div_ceil(batches).max(1)) {
        store(c, chunk);
        let start = chunk.iter().map(|e| e.time).min().unwrap();
        let end = chunk.iter().map(|e| e.time).max().unwrap() + Duration::microseconds(1);
        pass(c, Window { start, end }, &settings);
    }

    for (i, conn) in dbs.conns.iter_mut().enumerate() {
        let got_events = stored_events(conn);
        let got_sessions = stored_sessions(conn);
        assert_eq!(got_events, want_events, "events, way of loading {}", i + 1);
        assert_eq!(
            got_sessions,
            want_sessions,
            "sessions, way of loading {}",
            i + 1
        );
    }
    // Incremental = full: recompute everything on the day-by-day database.
    let c = &mut dbs.conns[1];
    c.transaction(|c| {
        jobs::refresh_sessions(c, settings.session_gap_s, settings.session_min_s, true)
            .map(|_| ())
            .map_err(|e| diesel::result::Error::QueryBuilderError(e.into()))
    })
    .unwrap();
    assert_eq!(stored_sessions(c), want_sessions, "full recomputation");

    // The replaced system's query, verbatim, where its own order (by time only) is determined:
    // no two `playing` events of one listener at the same instant, inside its date range.
    let Some(sql) = reference_sql() else { return };
    let mut playing: Vec<(usize, DateTime<Utc>)> = events
        .iter()
        .filter(|e| e.state == "playing")
        .map(|e| (e.listener, e.time))
        .collect();
    let n = playing.len();
    playing.sort();
    playing.dedup();
    if playing.len() == n && last < utc("2024-10-30T00:00:00Z") {
        let ours = psql(
            &dbs.reference_url,
            "SELECT time_start, time_end, duration_s, duration_playing_s, duration_playing_live_s, \
             duration_playing_ondemand_s, user_identity, remote_addr FROM stats_player_session \
             WHERE user_identity = 'account.user:D34C5A0A' ORDER BY time_start",
        );
        assert_eq!(ours, psql(&dbs.reference_url, &sql), "reference query");
    }
}

#[test]
fn any_order_of_loading_gives_the_same_events_and_sessions_as_the_rules() {
    // The databases are made once and emptied per case (a case runs in well under a second).
    let dbs = std::cell::RefCell::new(dbs());
    let config = ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let result = runner.run(
        &(history(), 1..u64::MAX, 1..6usize),
        |(events, seed, batches)| {
            check_history(&mut dbs.borrow_mut(), &events, seed, batches);
            Ok(())
        },
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}

fn ev(listener: usize, time: &str, obj: &'static str, state: &'static str) -> Ev {
    Ev {
        listener,
        time: utc(time),
        obj,
        state,
        source: "live",
        max_s: None,
        client_end: None,
    }
}

#[test]
fn events_at_the_same_instant_give_the_same_session_incremental_and_full() {
    // Media servers send whole seconds: a pause of A and a play of B at one instant. Sent in
    // both arrival orders, the session is one of 1000 s played either way.
    for flipped in [false, true] {
        let db = TestDb::new();
        let c = &mut db.conn();
        let settings = JobSettings::default();
        let mut tie = vec![
            ev(0, "2024-10-28T10:08:20Z", "catalog.media:B", "playing"),
            ev(0, "2024-10-28T10:08:20Z", "catalog.media:A", "paused"),
        ];
        if flipped {
            tie.reverse();
        }
        let events = [
            vec![ev(0, "2024-10-28T10:00:00Z", "catalog.media:A", "playing")],
            tie,
            vec![ev(0, "2024-10-28T10:16:40Z", "catalog.media:B", "stopped")],
        ]
        .concat();
        let window = Window {
            start: utc("2024-10-28T00:00:00Z"),
            end: utc("2024-10-29T00:00:00Z"),
        };
        // Incremental: the sessions job runs after each event arrives.
        for e in &events {
            store(c, &[e]);
            pass(c, window, &settings);
        }
        let incremental = stored_sessions(c);
        let (_, want) = expected(&events, &settings);
        assert_eq!(incremental, want);
        assert_eq!(want.values().next().unwrap().2, 1_000_000, "1000 s played");
        c.transaction(|c| {
            jobs::refresh_sessions(c, 300, 30, true)
                .map(|_| ())
                .map_err(|e| diesel::result::Error::QueryBuilderError(e.into()))
        })
        .unwrap();
        assert_eq!(stored_sessions(c), incremental, "full = incremental");
    }
}

#[derive(QueryableByName, Debug)]
struct Closed {
    #[diesel(sql_type = Nullable<Timestamptz>)]
    time_end: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    closed_by: Option<String>,
}

fn closed(conn: &mut PgConnection, time: &str) -> Closed {
    diesel::sql_query("SELECT time_end, closed_by FROM stats_player_event WHERE time = $1")
        .bind::<Timestamptz, _>(utc(time))
        .get_result(conn)
        .unwrap()
}

#[test]
fn a_live_play_ends_at_the_cap_even_when_the_next_event_comes_days_later() {
    let db = TestDb::new();
    let c = &mut db.conn();
    let settings = JobSettings::default();
    store(
        c,
        &[
            &ev(0, "2024-10-25T08:00:00Z", "catalog.media:A", "playing"),
            &ev(0, "2024-10-28T12:00:00Z", "catalog.media:A", "playing"),
        ],
    );
    pass(
        c,
        Window {
            start: utc("2024-10-25T00:00:00Z"),
            end: utc("2024-10-29T00:00:00Z"),
        },
        &settings,
    );
    let first = closed(c, "2024-10-25T08:00:00Z");
    assert_eq!(first.time_end, Some(utc("2024-10-25T12:00:00Z")));
    assert_eq!(first.closed_by.as_deref(), Some("cap"));
    // No session plays more than the cap, nor more than it lasted.
    for (_, (_, duration_us, playing_ms, ..)) in stored_sessions(c) {
        assert!(playing_ms <= 4 * 3_600_000 && playing_ms * 1000 <= duration_us);
    }
}

#[test]
fn a_client_end_past_the_next_event_is_cut_there_whichever_day_is_backfilled() {
    // The old fix-durations looked only at its window: an event with a client end long after
    // its successor, left from an earlier day, played more than its session lasted.
    let db = TestDb::new();
    let c = &mut db.conn();
    let settings = JobSettings::default();
    let mut long = ev(0, "2024-10-27T22:30:00Z", "catalog.media:A", "playing");
    long.client_end = Some(utc("2024-10-28T03:00:00Z"));
    store(c, &[&long]);
    store(
        c,
        &[&ev(0, "2024-10-28T00:10:00Z", "catalog.media:A", "stopped")],
    );
    // Only the second day is backfilled.
    pass(
        c,
        Window {
            start: utc("2024-10-28T00:00:00Z"),
            end: utc("2024-10-29T00:00:00Z"),
        },
        &settings,
    );
    let got = closed(c, "2024-10-27T22:30:00Z");
    assert_eq!(got.time_end, Some(utc("2024-10-28T00:10:00Z")));
    assert_eq!(got.closed_by.as_deref(), Some("fix"));
    let (_, (_, duration_us, playing_ms, ..)) = stored_sessions(c).into_iter().next().unwrap();
    assert_eq!((duration_us, playing_ms), (6_000_000_000, 6_000_000));
}

#[test]
fn an_open_event_older_than_the_lookback_is_closed_by_the_next_scheduled_pass() {
    let db = TestDb::new();
    let c = &mut db.conn();
    let settings = JobSettings::default();
    let now = utc("2024-10-28T12:00:00Z");
    // Two days old (airlog was down): no successor, and one whose successor is as old.
    store(
        c,
        &[
            &ev(0, "2024-10-26T09:00:00Z", "catalog.media:A", "playing"),
            &ev(1, "2024-10-26T09:00:00Z", "catalog.media:A", "playing"),
            &ev(1, "2024-10-26T09:30:00Z", "catalog.media:A", "stopped"),
        ],
    );
    jobs::run_all(
        c,
        Window::lookback(now, &settings),
        now,
        &settings,
        Trigger::Schedule,
    )
    .unwrap();
    #[derive(QueryableByName)]
    struct Open {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let open: Open =
        diesel::sql_query("SELECT count(*) AS n FROM stats_player_event WHERE time_end IS NULL")
            .get_result(c)
            .unwrap();
    assert_eq!(open.n, 0, "no event is left open");
    let (want, _) = expected(
        &[
            ev(0, "2024-10-26T09:00:00Z", "catalog.media:A", "playing"),
            ev(1, "2024-10-26T09:00:00Z", "catalog.media:A", "playing"),
            ev(1, "2024-10-26T09:30:00Z", "catalog.media:A", "stopped"),
        ],
        &settings,
    );
    assert_eq!(stored_events(c), want);
}

#[tokio::test]
async fn a_gap_of_exactly_300_s_in_unix_seconds_does_not_split_the_session() {
    // One end in Unix seconds (a float), the next start as text: 300.000 s apart, not 300.000001.
    use airlog::auth::Scope;
    let app = crate::helpers::TestApp::spawn().await;
    let token = app.token(&[Scope::Ingest]);
    let device = device(0);
    let body = serde_json::json!([
        {"time": 1730000000.123, "time_end": 1730000100.123, "state": "playing", "objKey": "catalog.media:A",
         "source": "live", "user_identity": "account.user:D34C5A0A", "device_key": device},
        {"time": "2024-10-27T03:40:00.123Z", "state": "playing", "objKey": "catalog.media:A", "duration": 100,
         "source": "live", "user_identity": "account.user:D34C5A0A", "device_key": device},
    ]);
    let (status, answer) = app
        .post_json("/api/v1/stats/ingest/player-events/trusted/", &token, &body)
        .await;
    assert_eq!(status, 201, "{answer}");
    let c = &mut app.db.conn();
    pass(
        c,
        Window {
            start: utc("2024-10-27T00:00:00Z"),
            end: utc("2024-10-28T00:00:00Z"),
        },
        &JobSettings::default(),
    );
    let sessions = stored_sessions(c);
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let (_, (_, duration_us, playing_ms, ..)) = sessions.into_iter().next().unwrap();
    assert_eq!((duration_us, playing_ms), (500_000_000, 200_000));
    app.stop().await;
}
