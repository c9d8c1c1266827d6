//! The Liquidsoap monitor against a real Liquidsoap running the shipped station script.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use airlog::db::playout::{self, DiffusionRow, NewSound, NewTrack, StationRow};
use airlog::monitor::liquidsoap::monitor::{Monitor, StationConfig};
use airlog::monitor::playlists::PlaylistWriter;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Nullable, Text, Timestamptz};

use crate::helpers::{private_temp_dir, settings_for, station_row, tone, Running, TestApp, TestDb};

/// A Liquidsoap process running `deploy/liquidsoap/station.liq`.
pub struct Liquidsoap {
    child: Option<Child>,
    pub socket: PathBuf,
    playlist: PathBuf,
    log: PathBuf,
    /// Extra environment for the script (AIRLOG_REPORT=false: no exact air times).
    env: Vec<(String, String)>,
}

impl Liquidsoap {
    pub fn start(dir: &Path, playlist_files: &[&Path]) -> Liquidsoap {
        Self::start_with(dir, playlist_files, &[])
    }

    /// Starts the shipped script with these extra variables.
    pub fn start_with(dir: &Path, playlist_files: &[&Path], env: &[(&str, &str)]) -> Liquidsoap {
        let playlist = dir.join("rotation.m3u");
        let list: Vec<String> = playlist_files
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        std::fs::write(&playlist, list.join("\n") + "\n").unwrap();
        let mut ls = Liquidsoap {
            child: None,
            socket: dir.join("ls.sock"),
            playlist,
            log: dir.join("liquidsoap.log"),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        ls.spawn();
        ls
    }

    pub fn spawn(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/liquidsoap/station.liq");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new("liquidsoap")
            .arg(script)
            .env("AIRLOG_LIQ_SOCKET", &self.socket)
            .env("AIRLOG_PLAYLIST", &self.playlist)
            .env("AIRLOG_PLAYLIST_MODE", "normal")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("liquidsoap is installed (make deps)");
        self.child = Some(child);
        let started = Instant::now();
        while std::os::unix::net::UnixStream::connect(&self.socket).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "liquidsoap did not start: {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// kill -9.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Liquidsoap {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn station(db: &TestDb, ls: &Liquidsoap, cancel_timeout_s: i32) -> StationConfig {
    let row = StationRow {
        time_zone: "Europe/Zurich".into(),
        cancel_timeout_s,
        ..station_row("test", "liquidsoap", ls.socket.display().to_string())
    };
    let row = playout::upsert_station(&mut db.conn(), &row).unwrap();
    StationConfig::try_from(&row).unwrap()
}

pub fn sound(db: &TestDb, path: &Path, seconds: f64, tracks: &[(f64, &str)]) -> i64 {
    playout::upsert_sound(
        &mut db.conn(),
        &NewSound {
            path: path.display().to_string(),
            duration_s: Some(seconds),
            r#type: "archive".into(),
            program: "tests".into(),
            tracks: tracks
                .iter()
                .map(|(t, n)| NewTrack {
                    timestamp_s: *t,
                    artist: "Band".to_string(),
                    title: n.to_string(),
                    ..NewTrack::default()
                })
                .collect(),
            ..NewSound::default()
        },
    )
    .unwrap()
    .id
}

/// A monitor of `config` with a pool of its own on `db`.
pub fn new_monitor(db: &TestDb, config: StationConfig) -> Monitor {
    Monitor::new(config, airlog::db::pool(&db.url, 2, Duration::from_secs(5)))
}

/// A show of `sounds` on `station` from `start`, scheduled for ten minutes.
pub fn schedule_show(
    db: &TestDb,
    station: i64,
    start: DateTime<Utc>,
    title: &str,
    sounds: &[i64],
) -> DiffusionRow {
    let end = start + chrono::Duration::minutes(10);
    let on_air = "on_air".parse().unwrap();
    playout::insert_diffusion(&mut db.conn(), station, start, end, title, on_air, sounds).unwrap()
}

/// An entry of the as-run log.
#[derive(QueryableByName, Debug, Clone)]
pub struct Entry {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub r#type: String,
    #[diesel(sql_type = Timestamptz)]
    pub date: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    pub source: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub path: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub track_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub diffusion_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub parent_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub resume_of: Option<i64>,
    #[diesel(sql_type = Double)]
    pub position_s: f64,
    #[diesel(sql_type = Nullable<Text>)]
    pub date_from: Option<String>,
}

/// The whole as-run log, by date.
pub fn entries(db: &TestDb) -> Vec<Entry> {
    diesel::sql_query(
        "SELECT id, type, date, source, path, track_id, diffusion_id, parent_id, resume_of, \
         position_s, date_from FROM onair_log ORDER BY date, id",
    )
    .load(&mut db.conn())
    .unwrap()
}

/// Sound entries (starts and resumes), by date.
pub fn sounds(db: &TestDb) -> Vec<Entry> {
    entries(db)
        .into_iter()
        .filter(|e| e.r#type == "on_air" && e.track_id.is_none())
        .collect()
}

/// Ticks every 200 ms for `seconds`, tolerating failed ticks (Liquidsoap down).
pub async fn run_for(monitor: &mut Monitor, seconds: f64) -> usize {
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let mut failures = 0;
    while Instant::now() < until {
        if monitor.tick(Utc::now()).await.is_err() {
            failures += 1;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    failures
}

#[tokio::test]
async fn sounds_are_logged_in_play_order_at_liquidsoaps_air_time_with_their_tracks() {
    let dir = private_temp_dir("airlog-ls-order");
    let (a, b, c) = (tone(&dir, "a", 3), tone(&dir, "b", 3), tone(&dir, "c", 3));
    let db = TestDb::new();
    sound(&db, &a, 3.0, &[(1.0, "first"), (2.0, "second")]);
    let ls = Liquidsoap::start(&dir, &[&a, &b, &c]);
    let mut monitor = Monitor::new(
        station(&db, &ls, 1200),
        airlog::db::pool(&db.url, 2, Duration::from_secs(5)),
    );

    // Right after the start only the tracks already reached are logged.
    let started = Instant::now();
    while sounds(&db).is_empty() {
        monitor.tick(Utc::now()).await.unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "nothing went on air"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let first = sounds(&db)[0].clone();
    for t in entries(&db).iter().filter(|l| l.track_id.is_some()) {
        assert!(t.date <= Utc::now(), "no track is logged ahead of time");
    }

    run_for(&mut monitor, 8.5).await;
    let played = sounds(&db);
    let paths: Vec<String> = played.iter().map(|l| l.path.clone().unwrap()).collect();
    let expected: Vec<String> = [&a, &b, &c]
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    assert!(paths.len() >= 3, "{paths:?}");
    assert_eq!(paths[..3], expected[..], "play order");
    assert_eq!(played[0].id, first.id);
    for pair in played.windows(2).take(2) {
        let gap = (pair[1].date - pair[0].date).num_milliseconds() as f64 / 1000.0;
        assert!(
            (gap - 3.0).abs() <= 1.0,
            "air times follow the 3 s sounds: {gap}"
        );
    }
    assert!(played
        .iter()
        .all(|l| l.date_from.as_deref() == Some("liquidsoap_report")
            && l.source == "airlog_rotation"));

    let tracks: Vec<Entry> = entries(&db)
        .into_iter()
        .filter(|l| l.track_id.is_some())
        .collect();
    assert_eq!(tracks.len(), 2, "each track once");
    assert!(tracks.iter().all(|t| t.parent_id == Some(played[0].id)));
    assert_eq!((tracks[0].date - played[0].date).num_milliseconds(), 1000);
    assert_eq!((tracks[1].date - played[0].date).num_milliseconds(), 2000);

    // A monitor restarted mid-sound logs nothing twice.
    let before = entries(&db).len();
    let mut again = Monitor::new(
        station(&db, &ls, 1200),
        airlog::db::pool(&db.url, 2, Duration::from_secs(5)),
    );
    again.tick(Utc::now()).await.unwrap();
    let after = entries(&db);
    let new_sounds = after.len() - before;
    assert!(
        new_sounds <= 1,
        "at most a sound that just started: {new_sounds}"
    );
    let mut keys: Vec<(String, chrono::DateTime<Utc>)> = sounds(&db)
        .into_iter()
        .map(|l| (l.path.unwrap(), l.date))
        .collect();
    let n = keys.len();
    keys.dedup();
    assert_eq!(keys.len(), n, "no duplicate");
}

/// Ticks until `done` holds for the as-run log, tolerating failed ticks; fails after `within`
/// seconds, showing the log.
pub async fn wait_for(
    db: &TestDb,
    monitor: &mut Monitor,
    within: f64,
    what: &str,
    done: impl Fn(&[Entry]) -> bool,
) {
    let until = Instant::now() + Duration::from_secs_f64(within);
    loop {
        let _ = monitor.tick(Utc::now()).await;
        if done(&entries(db)) {
            return;
        }
        assert!(
            Instant::now() < until,
            "timed out waiting for {what}: {:#?}",
            entries(db)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_scheduled_diffusion_starts_once_and_its_sounds_play() {
    let dir = private_temp_dir("airlog-ls-diffusion");
    let (filler, show1, show2) = (
        tone(&dir, "filler", 30),
        tone(&dir, "show1", 2),
        tone(&dir, "show2", 2),
    );
    let db = TestDb::new();
    let ids = [
        sound(
            &db,
            &show1,
            2.0,
            &[(1.0, "never logged: shows get no tracks")],
        ),
        sound(&db, &show2, 2.0, &[]),
    ];
    let ls = Liquidsoap::start(&dir, &[&filler]);
    let config = station(&db, &ls, 1200);
    let now = Utc::now();
    let d = playout::insert_diffusion(
        &mut db.conn(),
        config.id,
        now + chrono::Duration::seconds(2),
        now + chrono::Duration::minutes(10),
        "Morning show",
        "on_air".parse().unwrap(),
        &ids,
    )
    .unwrap();
    let mut monitor = new_monitor(&db, config);

    let show2_path = show2.display().to_string();
    wait_for(&db, &mut monitor, 60.0, "the show's sounds", |l| {
        l.iter()
            .any(|x| x.path.as_deref() == Some(show2_path.as_str()))
    })
    .await;
    run_for(&mut monitor, 1.0).await;
    let all = entries(&db);
    let starts: Vec<&Entry> = all.iter().filter(|l| l.r#type == "start").collect();
    assert_eq!(starts.len(), 1, "started once");
    assert_eq!(starts[0].diffusion_id, Some(d.id));
    assert!(starts[0].date >= d.start, "not before its time");
    let show: Vec<&Entry> = all
        .iter()
        .filter(|l| l.diffusion_id == Some(d.id) && l.r#type == "on_air")
        .collect();
    assert_eq!(show.len(), 2, "{all:#?}");
    assert!(show
        .iter()
        .all(|l| l.source == "airlog_queue" && l.track_id.is_none()));
    assert_eq!(
        playout::diffusion(&mut db.conn(), d.id)
            .unwrap()
            .decision
            .as_deref(),
        Some("start")
    );
}

#[tokio::test]
async fn a_diffusion_that_cannot_start_in_time_is_cancelled_and_never_started() {
    let dir = private_temp_dir("airlog-ls-cancel");
    let (long1, long2, show) = (
        tone(&dir, "long1", 30),
        tone(&dir, "long2", 30),
        tone(&dir, "show", 2),
    );
    let db = TestDb::new();
    let id = sound(&db, &show, 2.0, &[]);
    let ls = Liquidsoap::start(&dir, &[&long1]);
    let config = station(&db, &ls, 2);
    // The queue is busy with someone else's requests.
    let mut client = airlog::monitor::liquidsoap::client::Client::new(
        config.endpoint.clone(),
        Default::default(),
    );
    client
        .command(&format!("airlog_queue.push {}", long1.display()))
        .await
        .unwrap();
    client
        .command(&format!("airlog_queue.push {}", long2.display()))
        .await
        .unwrap();
    let now = Utc::now();
    let d = playout::insert_diffusion(
        &mut db.conn(),
        config.id,
        now - chrono::Duration::seconds(1),
        now + chrono::Duration::minutes(10),
        "Late show",
        "on_air".parse().unwrap(),
        &[id],
    )
    .unwrap();
    let mut monitor = new_monitor(&db, config);
    wait_for(&db, &mut monitor, 60.0, "the cancel", |l| {
        l.iter().any(|x| x.r#type == "cancel")
    })
    .await;
    run_for(&mut monitor, 1.0).await;
    let all = entries(&db);
    assert_eq!(all.iter().filter(|l| l.r#type == "cancel").count(), 1);
    assert_eq!(
        all.iter().filter(|l| l.r#type == "start").count(),
        0,
        "cancel and start are exclusive"
    );
    let row = playout::diffusion(&mut db.conn(), d.id).unwrap();
    assert_eq!(row.r#type.as_str(), "cancel");
    let pushes: i64 = diesel::dsl::select(diesel::dsl::sql::<BigInt>(
        "(SELECT count(*) FROM diffusion_push)",
    ))
    .get_result(&mut db.conn())
    .unwrap();
    assert_eq!(pushes, 0, "never pushed");
}

#[tokio::test]
async fn after_a_liquidsoap_restart_the_monitor_reconnects_and_pushes_the_lost_diffusion_again() {
    let dir = private_temp_dir("airlog-ls-restart");
    let (filler, part1, part2) = (
        tone(&dir, "filler", 60),
        tone(&dir, "part1", 8),
        tone(&dir, "part2", 2),
    );
    let db = TestDb::new();
    let ids = [sound(&db, &part1, 8.0, &[]), sound(&db, &part2, 2.0, &[])];
    let mut ls = Liquidsoap::start(&dir, &[&filler]);
    let config = station(&db, &ls, 1200);
    let now = Utc::now();
    let d = schedule_show(&db, config.id, now, "Show", &ids);
    let mut monitor = new_monitor(&db, config);
    let part1_path = part1.display().to_string();
    wait_for(&db, &mut monitor, 60.0, "part 1 on air", |l| {
        l.iter()
            .any(|x| x.path.as_deref() == Some(part1_path.as_str()))
    })
    .await;

    ls.kill();
    let failures = run_for(&mut monitor, 1.5).await;
    assert!(failures > 0, "ticks fail while Liquidsoap is down");
    ls.spawn();
    let part2_path = part2.display().to_string();
    wait_for(&db, &mut monitor, 90.0, "part 2 after the restart", |l| {
        l.iter()
            .any(|x| x.path.as_deref() == Some(part2_path.as_str()))
    })
    .await;

    #[derive(QueryableByName)]
    struct Push {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        attempt: i32,
        #[diesel(sql_type = Double)]
        n: f64,
    }
    let pushes: Vec<Push> = diesel::sql_query("SELECT attempt, count(*)::float8 AS n FROM diffusion_push GROUP BY attempt ORDER BY attempt")
        .load(&mut db.conn())
        .unwrap();
    assert_eq!(pushes.len(), 2, "pushed again once");
    assert_eq!((pushes[0].attempt, pushes[0].n), (1, 2.0));
    assert_eq!(
        (pushes[1].attempt, pushes[1].n),
        (2, 1.0),
        "only what was never heard"
    );
    let all = entries(&db);
    assert_eq!(all.iter().filter(|l| l.r#type == "start").count(), 1);
    assert_eq!(
        all.iter()
            .filter(|l| l.path.as_deref() == Some(part1_path.as_str()))
            .count(),
        1,
        "no duplicate"
    );
    assert!(all
        .iter()
        .filter(|l| l.path.as_deref() == Some(part2_path.as_str()))
        .all(|l| l.diffusion_id == Some(d.id)));
}

#[tokio::test]
async fn a_liquidsoap_that_hangs_times_out_and_the_api_keeps_answering() {
    // Liquidsoap cannot be made to hang on demand: a fake server accepts and never answers.
    let fake = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = fake.local_addr().unwrap().to_string();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in fake.incoming() {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(conn);
        }
    });
    let app = TestApp::spawn_with(|_| {}).await;
    let mut row = StationRow {
        poll_ms: 100,
        ..station_row("hung", "liquidsoap", addr)
    };
    row = playout::upsert_station(&mut app.db.conn(), &row).unwrap();
    let config = StationConfig::try_from(&row).unwrap();
    let mut monitor = new_monitor(&app.db, config);
    let started = Instant::now();
    let err = monitor.tick(Utc::now()).await.unwrap_err();
    assert!(format!("{err:#}").contains("did not answer"), "{err:#}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the read deadline holds"
    );
    let _ = monitor.tick(Utc::now()).await;
    assert!(
        accepted.load(std::sync::atomic::Ordering::SeqCst) >= 2,
        "a new connection after the timeout"
    );
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    app.stop().await;
}

fn advisory_locks(db: &TestDb) -> i64 {
    diesel::dsl::select(diesel::dsl::sql::<BigInt>(
        "(SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))",
    ))
    .get_result(&mut db.conn())
    .unwrap()
}

#[tokio::test]
async fn one_airlog_monitors_a_station_at_a_time_and_another_takes_over() {
    let dir = private_temp_dir("airlog-ls-takeover");
    let files: Vec<PathBuf> = (0..4).map(|i| tone(&dir, &format!("t{i}"), 2)).collect();
    let refs: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    let ls = Liquidsoap::start(&dir, &refs);
    let db = TestDb::new();
    station(&db, &ls, 1200);
    let spawn = || Running::start(settings_for(&db));
    let first = spawn();
    let until = Instant::now() + Duration::from_secs(15);
    while sounds(&db).is_empty() {
        assert!(Instant::now() < until, "the first airlog never logged");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let second = spawn();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(advisory_locks(&db), 1, "one monitor for the station");

    first.stop().await;
    let stopped_at = Utc::now();
    tokio::time::sleep(Duration::from_secs(9)).await;
    assert_eq!(advisory_locks(&db), 1, "the second airlog took over");
    let after: Vec<Entry> = sounds(&db)
        .into_iter()
        .filter(|l| l.date > stopped_at)
        .collect();
    assert!(
        !after.is_empty(),
        "sounds are still logged after the first airlog stopped"
    );
    second.stop().await;
    assert_eq!(advisory_locks(&db), 0, "the lock is released at shutdown");

    let all = sounds(&db);
    let mut keys: Vec<(String, chrono::DateTime<Utc>)> = all
        .iter()
        .map(|l| (l.path.clone().unwrap(), l.date))
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), all.len(), "no sound logged twice");
}

#[tokio::test]
async fn programme_playlists_are_written_only_when_they_change_and_atomically() {
    let dir = private_temp_dir("airlog-playlists");
    let db = TestDb::new();
    let endpoint = dir.join("no-liquidsoap.sock").display().to_string();
    let row = StationRow {
        playlist_dir: dir.join("playlists").display().to_string(),
        poll_ms: 1000,
        ..station_row("lists", "liquidsoap", endpoint)
    };
    let row = playout::upsert_station(&mut db.conn(), &row).unwrap();
    let mut playlists = PlaylistWriter::new(
        &StationConfig::try_from(&row).unwrap(),
        airlog::db::pool(&db.url, 2, Duration::from_secs(5)),
    )
    .expect("the station has a playlist directory");
    sound(&db, Path::new("/srv/b.ogg"), 10.0, &[]);
    sound(&db, Path::new("/srv/a.ogg"), 10.0, &[]);
    assert_eq!(playlists.sync().await.unwrap(), 1);
    let file = dir.join("playlists/tests.m3u");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "#EXTM3U\n/srv/a.ogg\n/srv/b.ogg\n"
    );
    let written_at = std::fs::metadata(&file).unwrap().modified().unwrap();
    assert_eq!(
        playlists.sync().await.unwrap(),
        0,
        "unchanged: not rewritten"
    );
    assert_eq!(
        std::fs::metadata(&file).unwrap().modified().unwrap(),
        written_at
    );
    sound(&db, Path::new("/srv/c.ogg"), 10.0, &[]);
    assert_eq!(playlists.sync().await.unwrap(), 1);
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .ends_with("/srv/c.ogg\n"));
    let leftovers: Vec<_> = std::fs::read_dir(dir.join("playlists"))
        .unwrap()
        .flatten()
        .filter(|e| e.path() != file)
        .collect();
    assert!(leftovers.is_empty(), "no temporary file left behind");
}
