//! The session query of the replaced system (`../shared/reference/openbroadcast-stats-notes.md`)
//! runs verbatim in psql against airlog's database and agrees with `stats_player_session`.

use std::path::PathBuf;
use std::process::Command;

use airlog::config::JobSettings;
use airlog::db::cluster::PgBinaries;
use airlog::jobs::{self, Trigger, Window};
use chrono::Duration;
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text, Timestamptz};

use crate::helpers::{stdout_ok, utc, TestDb};

pub fn reference_sql() -> Option<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/reference/openbroadcast-stats-notes.md");
    let notes = std::fs::read_to_string(path).ok()?;
    let section = &notes[notes.find("Session\" Aggregation")?..];
    let start = section.find("```postgresql")? + "```postgresql".len();
    let end = section[start..].find("```")?;
    Some(section[start..start + end].to_string())
}

pub fn psql(url: &str, sql: &str) -> String {
    let psql = PgBinaries::discover().unwrap().bindir.join("psql");
    stdout_ok(Command::new(psql).args([
        url,
        "-X",
        "-A",
        "-t",
        "-F",
        "|",
        "-v",
        "ON_ERROR_STOP=1",
        "-c",
        sql,
    ]))
}

#[test]
fn the_reference_session_query_agrees_with_the_materialised_sessions() {
    let Some(sql) = reference_sql() else {
        eprintln!("skipped: ../shared/reference is not beside this checkout");
        return;
    };
    let db = TestDb::new();
    let c = &mut db.conn();
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut rnd = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let start = utc("2024-06-03T06:00:00Z");
    for (user, ip) in [
        ("account.user:D34C5A0A", "198.51.100.4"),
        ("account.user:D34C5A0A", "2001:db8::7"),
        ("account.user:OTHER", "198.51.100.9"),
    ] {
        let device = airlog::domain::stream_event::device_key(&ip.parse().unwrap(), "Chrome");
        let mut time = start;
        for _ in 0..150 {
            let source = ["live", "on-demand", "news"][rnd(3) as usize];
            let state = ["playing", "playing", "playing", "paused", "stopped"][rnd(5) as usize];
            diesel::sql_query(
                "INSERT INTO stats_player_event (time, state, max_duration, obj_key, source, user_identity, device_key) \
                 VALUES ($1, $2, make_interval(secs => $3), 'catalog.media:S', $4, $5, $6)",
            )
            .bind::<Timestamptz, _>(time)
            .bind::<Text, _>(state)
            .bind::<Nullable<diesel::sql_types::Double>, _>((rnd(4) > 0).then(|| (rnd(600) + 10) as f64))
            .bind::<Text, _>(source)
            .bind::<Text, _>(user)
            .bind::<Text, _>(&device)
            .execute(c)
            .unwrap();
            time += Duration::seconds(if rnd(6) == 0 {
                301 + rnd(5000) as i64
            } else {
                3 + rnd(290) as i64
            });
        }
    }
    let settings = JobSettings {
        session_gap_s: 300,
        session_min_s: 30,
        ..JobSettings::default()
    };
    let window = Window {
        start: start - Duration::days(1),
        end: start + Duration::days(10),
    };
    jobs::run_all(
        c,
        window,
        start + Duration::days(20),
        &settings,
        Trigger::Cli,
    )
    .unwrap();

    let reference = psql(&db.url, &sql);
    let ours = psql(
        &db.url,
        "SELECT time_start, time_end, duration_s, duration_playing_s, duration_playing_live_s, \
         duration_playing_ondemand_s, user_identity, remote_addr FROM stats_player_session \
         WHERE user_identity = 'account.user:D34C5A0A' ORDER BY time_start",
    );
    assert!(
        reference.lines().count() > 10,
        "the data makes sessions:\n{reference}"
    );
    assert_eq!(ours, reference);
}
