//! Live capture from a real headless mpv: plays with their times, pauses and end reasons.

use std::path::Path;
use std::time::{Duration, Instant};

use airlog::monitor::mpv::client::MpvClient;
use diesel::prelude::*;
use diesel::sql_types::{Double, Nullable, Text};
use serde_json::json;

use crate::helpers::{
    capture_mpv, epoch_secs, private_temp_dir, start_mpv as mpv, station_row, tone, watch_mpv,
    TestDb,
};

fn now() -> f64 {
    epoch_secs(chrono::Utc::now())
}

/// A play airlog stored, its times in seconds since the epoch.
#[derive(QueryableByName, Debug)]
pub struct Play {
    #[diesel(sql_type = Text)]
    pub path: String,
    #[diesel(sql_type = Double)]
    pub start: f64,
    #[diesel(sql_type = Double)]
    pub end: f64,
    #[diesel(sql_type = Double)]
    pub pause_duration_s: f64,
    #[diesel(sql_type = Nullable<Text>)]
    pub end_reason: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub listened: bool,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub scrobbled: bool,
}

/// The plays airlog stored, of one mpv instance or of all, by start.
pub fn plays_of(db: &TestDb, instance: Option<&str>) -> Vec<Play> {
    diesel::sql_query(
        "SELECT path, extract(epoch FROM start_time)::float8 AS start, \
         extract(epoch FROM end_time)::float8 AS \"end\", pause_duration_s, end_reason, listened, \
         scrobbled FROM mpv_play WHERE $1::text IS NULL OR instance = $1 ORDER BY start_time, id",
    )
    .bind::<Nullable<Text>, _>(instance)
    .load(&mut db.conn())
    .unwrap()
}

fn plays(db: &TestDb) -> Vec<Play> {
    plays_of(db, None)
}

/// Waits until the capture of `instances` instances observes their properties (the first
/// `playlist-count` arrives at once on observing).
async fn wait_ready(db: &TestDb, instances: i64) {
    let started = Instant::now();
    loop {
        let n: i64 = diesel::dsl::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "(SELECT count(DISTINCT instance) FROM mpv_event WHERE event = 'playlist-count')",
        ))
        .get_result(&mut db.conn())
        .unwrap();
        if n >= instances {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "capture did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_plays(db: &TestDb, n: usize) -> Vec<Play> {
    let started = Instant::now();
    loop {
        let p = plays(db);
        if p.len() >= n || started.elapsed() > Duration::from_secs(15) {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plays_are_captured_with_pauses_and_end_reasons() {
    let dir = private_temp_dir("airlog-mpv-capture");
    let (a, b) = (tone(&dir, "a", 2), tone(&dir, "b", 3));
    let db = TestDb::new();
    let pool = airlog::db::pool(&db.url, 3, Duration::from_secs(5));
    let socket = dir.join(format!(
        "{}",
        chrono::Utc::now().timestamp_nanos_opt().unwrap()
    ));
    let mut child = mpv(&socket);
    let (_trigger, task) = capture_mpv(&pool, &socket, Default::default());
    wait_ready(&db, 1).await;
    let (ctl, _events) = MpvClient::connect(&socket, Duration::from_secs(2))
        .await
        .unwrap();

    // a: played to its end.
    let a_start = now();
    ctl.request(&[json!("loadfile"), json!(a.display().to_string())])
        .await
        .unwrap();
    let first = wait_plays(&db, 1).await;
    let a_end = now();
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].path, a.display().to_string());
    assert!(
        (first[0].start - a_start).abs() < 0.5,
        "start {} vs {a_start}",
        first[0].start
    );
    assert!(
        (first[0].end - a_end).abs() < 0.5,
        "end {} vs {a_end}",
        first[0].end
    );
    assert_eq!(first[0].end_reason.as_deref(), Some("eof"));
    assert!(first[0].listened, "all of a 2 s file heard");
    assert!(!first[0].scrobbled, "2 s is too short to scrobble");

    // b: paused for a second, then mpv is killed: a crash.
    ctl.request(&[json!("loadfile"), json!(b.display().to_string())])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    ctl.request(&[json!("set_property"), json!("pause"), json!(true)])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    ctl.request(&[json!("set_property"), json!("pause"), json!(false)])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let killed = now();
    let all = wait_plays(&db, 2).await;
    task.await.unwrap().unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    let b_play = &all[1];
    assert_eq!(b_play.end_reason.as_deref(), Some("crash"));
    assert!(
        (b_play.pause_duration_s - 1.0).abs() < 0.5,
        "pause {}",
        b_play.pause_duration_s
    );
    assert!((b_play.end - killed).abs() < 0.5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_instances_are_captured_even_with_one_frozen() {
    let dir = private_temp_dir("airlog-mpv-five");
    let sockets_dir = dir.join("sockets");
    std::fs::create_dir_all(&sockets_dir).unwrap();
    let song = tone(&dir, "song", 1);
    let db = TestDb::new();
    let pool = airlog::db::pool(&db.url, 6, Duration::from_secs(5));
    let mut children = Vec::new();
    let mut sockets = Vec::new();
    for i in 0..5 {
        let socket = sockets_dir.join(format!(
            "{}{i}",
            chrono::Utc::now().timestamp_nanos_opt().unwrap()
        ));
        children.push(mpv(&socket));
        sockets.push(socket);
    }
    // A socket left behind by an mpv that is gone.
    let dead = sockets_dir.join("1600000000000000000");
    drop(std::os::unix::net::UnixListener::bind(&dead).unwrap());
    let frozen = children[4].id() as i32;
    unsafe { libc::kill(frozen, libc::SIGSTOP) };
    let (trigger, watcher) = watch_mpv(
        &pool,
        &sockets_dir,
        Duration::from_millis(300),
        true,
        Default::default(),
    );
    wait_ready(&db, 4).await;
    for socket in &sockets[..4] {
        let (ctl, _e) = MpvClient::connect(socket, Duration::from_secs(2))
            .await
            .unwrap();
        ctl.request(&[json!("loadfile"), json!(song.display().to_string())])
            .await
            .unwrap();
    }
    assert_eq!(
        wait_plays(&db, 4).await.len(),
        4,
        "the frozen instance blocks nobody"
    );
    unsafe { libc::kill(frozen, libc::SIGCONT) };
    wait_ready(&db, 5).await;
    let (ctl, _e) = MpvClient::connect(&sockets[4], Duration::from_secs(2))
        .await
        .unwrap();
    ctl.request(&[json!("loadfile"), json!(song.display().to_string())])
        .await
        .unwrap();
    assert_eq!(wait_plays(&db, 5).await.len(), 5, "captured once it thawed");
    let instances: i64 = diesel::dsl::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "(SELECT count(DISTINCT instance) FROM mpv_play)",
    ))
    .get_result(&mut db.conn())
    .unwrap();
    assert_eq!(instances, 5);
    // A quit instance leaves its socket; with remove_dead it is cleaned up.
    let (ctl, _e) = MpvClient::connect(&sockets[0], Duration::from_secs(2))
        .await
        .unwrap();
    let _ = ctl.request(&[json!("quit")]).await;
    children[0].wait().unwrap();
    for c in children.iter_mut().skip(1) {
        let _ = c.kill();
        let _ = c.wait();
    }
    trigger.fire();
    watcher.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeks_skips_missing_files_and_quit_are_captured_and_logged_on_air() {
    let dir = private_temp_dir("airlog-mpv-scenario");
    let (c, d) = (tone(&dir, "c", 4), tone(&dir, "d", 1));
    let missing = dir.join("missing.ogg");
    let db = TestDb::new();
    let row = airlog::db::playout::StationRow {
        queue_id: "q".into(),
        output_id: "o".into(),
        poll_ms: 1000,
        ..station_row("studio", "none", String::new())
    };
    airlog::db::playout::upsert_station(&mut db.conn(), &row).unwrap();
    let pool = airlog::db::pool(&db.url, 3, Duration::from_secs(5));
    let socket = dir.join(format!(
        "{}",
        chrono::Utc::now().timestamp_nanos_opt().unwrap()
    ));
    let mut child = mpv(&socket);
    let opts = airlog::monitor::mpv::capture::CaptureOptions {
        rules: Default::default(),
        station: Some("studio".into()),
        ..Default::default()
    };
    let (_trigger, task) = capture_mpv(&pool, &socket, opts);
    wait_ready(&db, 1).await;
    let (ctl, _events) = MpvClient::connect(&socket, Duration::from_secs(2))
        .await
        .unwrap();
    ctl.request(&[json!("loadfile"), json!(c.display().to_string())])
        .await
        .unwrap();
    for file in [&missing, &d] {
        let path = file.display().to_string();
        ctl.request(&[json!("loadfile"), json!(path), json!("append")])
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    ctl.request(&[json!("seek"), json!(1), json!("relative")])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    ctl.request(&[json!("playlist-next")]).await.unwrap();
    // missing.ogg fails at once; d plays to its end; then mpv is told to quit.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let _ = ctl.request(&[json!("quit")]).await;
    child.wait().unwrap();
    task.await.unwrap().unwrap();

    let all = plays(&db);
    let summary: Vec<(String, Option<String>)> = all
        .iter()
        .map(|p| {
            (
                Path::new(&p.path)
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                p.end_reason.clone(),
            )
        })
        .collect();
    assert_eq!(
        summary[0],
        ("c.ogg".to_string(), Some("stop".to_string())),
        "{all:?}"
    );
    assert!(
        summary
            .iter()
            .any(|(n, r)| n == "d.ogg" && r.as_deref() == Some("eof")),
        "{all:?}"
    );
    #[derive(QueryableByName)]
    struct Actions {
        #[diesel(sql_type = diesel::sql_types::Jsonb)]
        actions: serde_json::Value,
    }
    let a: Actions = diesel::sql_query("SELECT actions FROM mpv_play ORDER BY start_time LIMIT 1")
        .get_result(&mut db.conn())
        .unwrap();
    assert!(
        a.actions
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["action"] == "seek"),
        "{:?}",
        a.actions
    );
    let logged: Vec<String> =
        diesel::sql_query("SELECT path FROM onair_log WHERE type = 'on_air' ORDER BY date")
            .load::<PathRow>(&mut db.conn())
            .unwrap()
            .into_iter()
            .map(|r| r.path)
            .collect();
    assert_eq!(logged.first(), Some(&c.display().to_string()), "{logged:?}");
    assert!(logged.contains(&d.display().to_string()), "{logged:?}");
}

#[derive(QueryableByName)]
struct PathRow {
    #[diesel(sql_type = Text)]
    path: String,
}
