//! The as-run log of record against a real Liquidsoap: the test keeps its own record of what
//! Liquidsoap queued and played (its own connection, polled fast) and compares airlog's log
//! with it, under faults: a push held by a proxy, kill -9, a show interrupting a sound.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use airlog::monitor::liquidsoap::monitor::Monitor;
use airlog::monitor::liquidsoap::protocol::{
    parse_metadata, parse_metadata_blocks, parse_rids, take_reply,
};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Text, Timestamptz};

use crate::helpers::{private_temp_dir, tone, TestApp, TestDb};
use crate::liquidsoap::{
    entries, new_monitor, run_for, schedule_show, sound, sounds, station, wait_for, Entry,
    Liquidsoap,
};

/// One thing the output played, as the test saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Which Liquidsoap run (the test counts restarts).
    pub run: u32,
    pub rid: u64,
    pub path: String,
    /// The middle of the interval in which it appeared, and half that interval's length;
    /// None for what was already playing when the test connected.
    pub at: Option<(DateTime<Utc>, f64)>,
    /// A request already seen earlier in the run: a resume.
    pub resume: bool,
}

/// What the test's own connection saw.
#[derive(Debug, Clone, Default)]
pub struct Record {
    /// Requests Liquidsoap held at some point: (run, rid) → path.
    pub requests: HashMap<(u32, u64), String>,
    pub emissions: Vec<Seen>,
}

impl Record {
    /// How many requests for `path` Liquidsoap was given.
    pub fn requests_for(&self, path: &Path) -> usize {
        let p = path.display().to_string();
        self.requests.values().filter(|v| **v == p).count()
    }

    /// How many times `path` started playing (resumes aside).
    pub fn starts_of(&self, path: &Path) -> usize {
        let p = path.display().to_string();
        self.emissions
            .iter()
            .filter(|e| e.path == p && !e.resume)
            .count()
    }
}

fn command(stream: &mut UnixStream, cmd: &str) -> std::io::Result<String> {
    stream.write_all(format!("{cmd}\n").as_bytes())?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        if let Some((_, reply)) = take_reply(&buf) {
            return Ok(reply);
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Polls Liquidsoap every ~30 ms on its own connection until stopped.
pub struct Observer {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<Record>>,
}

impl Observer {
    pub fn start(socket: &Path) -> Observer {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let socket = socket.to_path_buf();
        let handle = std::thread::spawn(move || observe(&socket, &flag));
        Observer {
            stop,
            handle: Some(handle),
        }
    }

    pub fn finish(mut self) -> Record {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.take().unwrap().join().unwrap()
    }
}

fn observe(socket: &Path, stop: &AtomicBool) -> Record {
    let mut record = Record::default();
    let mut run = 0u32;
    let mut stream: Option<UnixStream> = None;
    // The newest emission's identity, and when the poll that saw the state before began.
    let mut newest: Option<(u64, String, String)> = None;
    let mut before: Option<DateTime<Utc>> = None;
    let mut i = 0u64;
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(30));
        let s = match stream.as_mut() {
            Some(s) => s,
            None => match UnixStream::connect(socket) {
                Ok(s) => {
                    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    run += 1;
                    newest = None;
                    before = None;
                    stream.insert(s)
                }
                Err(_) => continue,
            },
        };
        let sent = Utc::now();
        let history = match command(s, "airlog_out.metadata") {
            Ok(h) => h,
            Err(_) => {
                stream = None;
                continue;
            }
        };
        let received = Utc::now();
        let blocks = parse_metadata_blocks(&history);
        if let Some((_, m)) = blocks.first() {
            let rid: u64 = m.get("rid").and_then(|r| r.parse().ok()).unwrap_or(0);
            let id = (
                rid,
                m.get("on_air_timestamp").unwrap_or("").to_string(),
                m.get("airlog_on_air_ms").unwrap_or("").to_string(),
            );
            if newest.as_ref() != Some(&id) {
                let path = m.get("filename").unwrap_or("").to_string();
                let resume = record
                    .emissions
                    .iter()
                    .any(|e| e.run == run && e.rid == rid);
                // Two history entries of the same request in a row are a metadata update.
                let update = newest.as_ref().is_some_and(|n| n.0 == rid);
                if !update {
                    record.emissions.push(Seen {
                        run,
                        rid,
                        path,
                        at: before.map(|b| {
                            (
                                b + (received - b) / 2,
                                (received - b).num_milliseconds() as f64 / 2000.0,
                            )
                        }),
                        resume,
                    });
                }
                newest = Some(id);
            }
        }
        before = Some(sent);
        i += 1;
        if i.is_multiple_of(3) {
            let Ok(alive) = command(s, "request.alive") else {
                stream = None;
                continue;
            };
            for rid in parse_rids(&alive) {
                if record.requests.contains_key(&(run, rid)) {
                    continue;
                }
                if let Ok(m) = command(s, &format!("request.metadata {rid}")) {
                    let m = parse_metadata(&m);
                    if let Some(f) = m.non_empty("filename").or(m.non_empty("initial_uri")) {
                        // A request is a file once resolved; the annotation prefix goes.
                        let f = f.rsplit(':').next().unwrap_or(f).to_string();
                        record.requests.insert((run, rid), f);
                    }
                }
            }
        }
    }
    record
}

/// A TCP proxy to Liquidsoap's socket that holds the first `push` it carries for `hold`, as a
/// Liquidsoap slow to answer would (it still delivers it, even if the client gave up).
pub struct DelayingProxy {
    pub addr: String,
    pub held: Arc<AtomicUsize>,
}

impl DelayingProxy {
    pub fn start(target: &Path, hold: Duration) -> DelayingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let held = Arc::new(AtomicUsize::new(0));
        let counter = held.clone();
        let target = target.to_path_buf();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = UnixStream::connect(&target) else {
                    continue;
                };
                let (mut c_read, mut s_write) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (mut s_read, mut c_write) = (server, client);
                let counter = counter.clone();
                std::thread::spawn(move || {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let n = c_read.read(&mut chunk).unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                            let line: Vec<u8> = buf.drain(..=nl).collect();
                            if String::from_utf8_lossy(&line).contains(".push ")
                                && counter.fetch_add(1, Ordering::SeqCst) == 0
                            {
                                std::thread::sleep(hold);
                            }
                            if s_write.write_all(&line).is_err() {
                                return;
                            }
                        }
                    }
                    // Let Liquidsoap finish what it was given before hanging up.
                    std::thread::sleep(Duration::from_secs(2));
                    let _ = s_write.shutdown(std::net::Shutdown::Both);
                });
                std::thread::spawn(move || {
                    let mut chunk = [0u8; 4096];
                    loop {
                        match s_read.read(&mut chunk) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if c_write.write_all(&chunk[..n]).is_err() {
                                    // The client is gone; keep draining the server side.
                                    continue;
                                }
                            }
                        }
                    }
                    let _ = c_write.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        DelayingProxy { addr, held }
    }
}

/// Matches every emission the test saw after `from` with airlog's entries: each once, of the
/// same kind, and nothing else logged in that time. Returns |date - truth| of those the test
/// timed, in seconds, with the test's own uncertainty (half the interval it was seen in).
fn compare(record: &Record, logged: &[Entry], from: DateTime<Utc>) -> Vec<(f64, f64)> {
    let mut used = HashSet::new();
    let mut errors = Vec::new();
    for e in &record.emissions {
        let Some((truth, uncertainty)) = e.at else {
            continue;
        };
        if truth < from {
            continue;
        }
        let found: Vec<&Entry> = logged
            .iter()
            .filter(|l| {
                l.path.as_deref() == Some(e.path.as_str())
                    && l.resume_of.is_some() == e.resume
                    && (l.date - truth).num_milliseconds().abs() < 2500
            })
            .collect();
        assert_eq!(
            found.len(),
            1,
            "{e:?} is logged once: {found:#?}\nall: {logged:#?}\nseen: {:#?}",
            record.emissions
        );
        used.insert(found[0].id);
        let err = (found[0].date - truth).num_milliseconds().abs() as f64 / 1000.0;
        errors.push((err, uncertainty));
    }
    let last = record
        .emissions
        .iter()
        .filter_map(|e| e.at.map(|a| a.0))
        .max()
        .unwrap_or(from);
    let extra: Vec<&Entry> = logged
        .iter()
        .filter(|l| {
            l.date > from + chrono::Duration::seconds(2) && l.date < last && !used.contains(&l.id)
        })
        .collect();
    assert!(extra.is_empty(), "logged but never played: {extra:#?}");
    errors
}

/// Max and median of |date - truth|, and the largest of the test's own uncertainties.
fn stats(errors: &[(f64, f64)]) -> (f64, f64, f64) {
    let mut v: Vec<f64> = errors.iter().map(|e| e.0).collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let max = v.last().copied().unwrap_or(0.0);
    let median = if v.is_empty() { 0.0 } else { v[v.len() / 2] };
    let uncertainty = errors.iter().map(|e| e.1).fold(0.0, f64::max);
    (max, median, uncertainty)
}

fn pushes(db: &TestDb) -> Vec<(i32, i32, String)> {
    #[derive(QueryableByName)]
    struct P {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        position: i32,
        #[diesel(sql_type = diesel::sql_types::Integer)]
        attempt: i32,
        #[diesel(sql_type = Text)]
        state: String,
    }
    diesel::sql_query("SELECT position, attempt, state FROM diffusion_push ORDER BY id")
        .load::<P>(&mut db.conn())
        .unwrap()
        .into_iter()
        .map(|p| (p.position, p.attempt, p.state))
        .collect()
}

fn logged(db: &TestDb, path: &Path) -> bool {
    let p = path.display().to_string();
    sounds(db)
        .iter()
        .any(|l| l.path.as_deref() == Some(p.as_str()))
}

#[tokio::test]
async fn a_push_whose_answer_is_held_is_found_in_liquidsoap_and_never_pushed_twice() {
    let _turn = crate::helpers::timing().await;
    let dir = private_temp_dir("airlog-ls-held");
    let (filler, show1, show2) = (
        tone(&dir, "filler", 60),
        tone(&dir, "show1", 3),
        tone(&dir, "show2", 3),
    );
    let db = TestDb::new();
    let ids = [sound(&db, &show1, 3.0, &[]), sound(&db, &show2, 3.0, &[])];
    let ls = Liquidsoap::start(&dir, &[&filler]);
    let observer = Observer::start(&ls.socket);
    let proxy = DelayingProxy::start(&ls.socket, Duration::from_secs(8));
    let mut config = station(&db, &ls, 1200);
    config.endpoint = proxy.addr.parse().unwrap();
    let now = Utc::now();
    let d = schedule_show(&db, config.id, now, "Held show", &ids);
    let mut monitor = new_monitor(&db, config);
    wait_for(
        &db,
        &mut monitor,
        90.0,
        "the second sound of the show",
        |_| logged(&db, &show2),
    )
    .await;
    run_for(&mut monitor, 4.0).await;
    let record = observer.finish();
    // Airlog gets to see what the test saw last.
    monitor.tick(Utc::now()).await.unwrap();

    assert!(
        proxy.held.load(Ordering::SeqCst) >= 1,
        "the proxy held a push"
    );
    assert_eq!(
        record.requests_for(&show1),
        1,
        "Liquidsoap got the first sound once: {record:#?}"
    );
    assert_eq!(record.requests_for(&show2), 1, "and the second once");
    assert_eq!(record.starts_of(&show1), 1, "it aired once");
    assert_eq!(record.starts_of(&show2), 1);
    let all = entries(&db);
    assert_eq!(all.iter().filter(|e| e.r#type == "start").count(), 1);
    for path in [&show1, &show2] {
        let p = path.display().to_string();
        let plays: Vec<&Entry> = all
            .iter()
            .filter(|e| e.path.as_deref() == Some(p.as_str()) && e.resume_of.is_none())
            .collect();
        assert_eq!(plays.len(), 1, "{p} logged once: {all:#?}");
        assert_eq!(plays[0].diffusion_id, Some(d.id));
    }
    assert_eq!(
        pushes(&db),
        vec![(1, 1, "found".to_string()), (2, 1, "answered".to_string())],
        "the held push was found, not repeated"
    );
    compare(&record, &sounds(&db), now);
}

#[tokio::test]
async fn after_kill_9_and_an_immediate_restart_airlog_is_back_at_once_and_logs_what_aired_meanwhile(
) {
    let _turn = crate::helpers::timing().await;
    let dir = private_temp_dir("airlog-ls-kill9");
    let rotation: Vec<PathBuf> = (0..4).map(|i| tone(&dir, &format!("r{i}"), 2)).collect();
    let (part1, part2) = (tone(&dir, "part1", 6), tone(&dir, "part2", 3));
    let db = TestDb::new();
    let ids = [sound(&db, &part1, 6.0, &[]), sound(&db, &part2, 3.0, &[])];
    for r in &rotation {
        sound(&db, r, 2.0, &[]);
    }
    let refs: Vec<&Path> = rotation.iter().map(|p| p.as_path()).collect();
    let mut ls = Liquidsoap::start(&dir, &refs);
    let observer = Observer::start(&ls.socket);
    let config = station(&db, &ls, 1200);
    let start = Utc::now() + chrono::Duration::seconds(3);
    schedule_show(&db, config.id, start, "Show", &ids);
    let monitor = new_monitor(&db, config);
    let (trigger, stop) = airlog::shutdown::channel();
    let task = tokio::spawn(monitor.run_until_stopped(stop));
    let until = Instant::now() + Duration::from_secs(60);
    while !logged(&db, &part1) {
        assert!(Instant::now() < until, "part 1 never aired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    ls.kill();
    ls.spawn();
    let back = Utc::now();
    let until = Instant::now() + Duration::from_secs(90);
    while !logged(&db, &part2) {
        assert!(
            Instant::now() < until,
            "part 2 never aired after the restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The rotation resumes and plays on after the show.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let record = observer.finish();
    // Airlog gets to see what the test saw last.
    tokio::time::sleep(Duration::from_secs(1)).await;
    trigger.fire();
    task.await.unwrap();

    #[derive(QueryableByName)]
    struct Pushed {
        #[diesel(sql_type = Timestamptz)]
        at: DateTime<Utc>,
    }
    let repushed: Pushed = diesel::sql_query(
        "SELECT pushed_at AS at FROM diffusion_push WHERE position = 2 ORDER BY id DESC LIMIT 1",
    )
    .get_result(&mut db.conn())
    .unwrap();
    let delay = (repushed.at - back).num_milliseconds() as f64 / 1000.0;
    println!("the lost sound was pushed again {delay:.2} s after Liquidsoap was back");
    assert!(delay < 3.0, "pushed again {delay} s after the restart");
    assert_eq!(
        record.requests_for(&part1),
        1,
        "part 1 was heard: not pushed again"
    );
    assert_eq!(record.starts_of(&part2), 1, "{record:#?}");
    let all = entries(&db);
    assert_eq!(all.iter().filter(|e| e.r#type == "start").count(), 1);
    // Everything the new Liquidsoap played is logged, once.
    let errors = compare(&record, &sounds(&db), back);
    assert!(
        errors.len() >= 3,
        "the rotation and the show after the restart: {record:#?}"
    );
}

/// A rotation sound with tracks is interrupted by a show, then resumed.
#[tokio::test]
async fn a_sound_interrupted_by_a_show_is_logged_resumed_with_its_tracks_as_heard_and_now_follows_the_output(
) {
    let _turn = crate::helpers::timing().await;
    let dir = private_temp_dir("airlog-ls-resume");
    let (long, show) = (tone(&dir, "long", 14), tone(&dir, "show", 4));
    let app = TestApp::spawn().await;
    let db = &app.db;
    sound(
        db,
        &long,
        14.0,
        &[(2.0, "one"), (7.0, "two"), (12.0, "three")],
    );
    let ids = [sound(db, &show, 4.0, &[])];
    let ls = Liquidsoap::start(&dir, &[&long]);
    let observer = Observer::start(&ls.socket);
    let config = station(db, &ls, 1200);
    let station_name = config.name.clone();
    let mut monitor = new_monitor(db, config.clone());
    wait_for(db, &mut monitor, 60.0, "the long sound", |_| {
        logged(db, &long)
    })
    .await;
    // The show starts about 4 s into the long sound.
    let play = sounds(db)[0].clone();
    let show_start = play.date + chrono::Duration::seconds(4);
    let d = schedule_show(db, config.id, show_start, "Interrupting show", &ids);
    wait_for(db, &mut monitor, 60.0, "the show", |_| logged(db, &show)).await;
    // During the show: now is the show, and the current diffusion is the show.
    let token = app.token(&[airlog::auth::Scope::Read]);
    let now_url = format!("/api/v1/onair/now?station={station_name}");
    let body = app.get_ok(&now_url, &token).await;
    assert_eq!(
        body["observed"]["sound"]["path"],
        show.display().to_string(),
        "{body:#}"
    );
    assert_eq!(body["scheduled"]["current"]["id"], d.id, "{body:#}");
    wait_for(db, &mut monitor, 60.0, "the resume", |_| {
        sounds(db).iter().any(|s| s.resume_of.is_some())
    })
    .await;
    run_for(&mut monitor, 1.0).await;
    let body = app.get_ok(&now_url, &token).await;
    assert_eq!(
        body["observed"]["sound"]["path"],
        long.display().to_string(),
        "now is the resumed sound: {body:#}"
    );
    assert!(
        body["scheduled"]["current"].is_null(),
        "the show is over: {body:#}"
    );
    let remaining = body["observed"]["remainingSeconds"].as_f64().unwrap();
    // Run until the long sound has ended.
    run_for(&mut monitor, remaining + 2.0).await;
    let record = observer.finish();
    // Airlog gets to see what the test saw last.
    monitor.tick(Utc::now()).await.unwrap();

    let all = entries(db);
    let resume = all.iter().find(|e| e.resume_of.is_some()).unwrap().clone();
    let show_entry = all
        .iter()
        .find(|e| e.path.as_deref() == Some(show.display().to_string().as_str()))
        .unwrap()
        .clone();
    assert_eq!(resume.resume_of, Some(play.id));
    let heard = (show_entry.date - play.date).num_milliseconds() as f64 / 1000.0;
    assert!(
        (resume.position_s - heard).abs() < 0.3,
        "resumed where it stopped: {} vs {heard}",
        resume.position_s
    );
    // Track times follow what was heard: before the show at start + t, after it at the resume
    // plus what was left.
    // (The rotation plays the long sound again afterwards: a play of its own.)
    let tracks: Vec<&Entry> = all
        .iter()
        .filter(|e| e.track_id.is_some() && e.parent_id == Some(play.id))
        .collect();
    assert_eq!(tracks.len(), 3, "each track once: {all:#?}");
    for (t, offset) in tracks.iter().zip([2.0, 7.0, 12.0]) {
        assert_eq!(t.parent_id, Some(play.id));
        let expected = if offset < heard {
            play.date + chrono::Duration::milliseconds((offset * 1000.0) as i64)
        } else {
            resume.date
                + chrono::Duration::milliseconds(((offset - resume.position_s) * 1000.0) as i64)
        };
        assert!(
            (t.date - expected).num_milliseconds().abs() <= 1,
            "track at {offset}: {} vs {expected}",
            t.date
        );
    }
    assert!(tracks.iter().all(|t| t.date <= Utc::now()));
    let errors = compare(
        &record,
        &sounds(db),
        play.date - chrono::Duration::seconds(1),
    );
    assert!(errors.len() >= 2, "{record:#?}");
    app.stop().await;
}

/// Plays a rotation and a show with airlog polling every `poll`; |date - truth| of each play.
async fn measure(report: bool, poll: Duration) -> Vec<(f64, f64)> {
    let dir = private_temp_dir("airlog-ls-times");
    let rotation: Vec<PathBuf> = (0..6).map(|i| tone(&dir, &format!("m{i}"), 2)).collect();
    let show = tone(&dir, "show", 3);
    let db = TestDb::new();
    for r in &rotation {
        sound(&db, r, 2.0, &[]);
    }
    let ids = [sound(&db, &show, 3.0, &[])];
    let refs: Vec<&Path> = rotation.iter().map(|p| p.as_path()).collect();
    let env = if report {
        vec![]
    } else {
        vec![("AIRLOG_REPORT", "false")]
    };
    let ls = Liquidsoap::start_with(&dir, &refs, &env);
    let observer = Observer::start(&ls.socket);
    let config = station(&db, &ls, 1200);
    let start = Utc::now() + chrono::Duration::seconds(5);
    schedule_show(&db, config.id, start, "Show", &ids);
    let mut monitor = new_monitor(&db, config);
    let began = Utc::now();
    let until = Instant::now() + Duration::from_secs(16);
    while Instant::now() < until {
        let _ = monitor.tick(Utc::now()).await;
        tokio::time::sleep(poll).await;
    }
    let record = observer.finish();
    // Airlog gets to see what the test saw last.
    monitor.tick(Utc::now()).await.unwrap();
    let logged = sounds(&db);
    // Entries of the station are in true order: START before its sound.
    let all = entries(&db);
    let start_at = all.iter().find(|e| e.r#type == "start").unwrap().date;
    let show_at = logged
        .iter()
        .find(|e| e.path.as_deref() == Some(show.display().to_string().as_str()))
        .unwrap()
        .date;
    assert!(
        start_at < show_at,
        "START sorts before the show's first sound"
    );
    if !report {
        assert!(logged
            .iter()
            .all(|e| e.date_from.as_deref() != Some("liquidsoap_report")));
    }
    compare(&record, &logged, began)
}

#[tokio::test]
async fn air_times_are_within_a_fifth_of_a_second_with_the_report_and_a_second_polling_only() {
    let _turn = crate::helpers::timing().await;
    // Stations poll every second by default.
    let with = measure(true, Duration::from_secs(1)).await;
    let without = measure(false, Duration::from_secs(1)).await;
    for (name, errors, target) in [
        ("with the report", &with, 0.2),
        ("polling only", &without, 1.0),
    ] {
        let (max, median, uncertainty) = stats(errors);
        println!(
            "|date - truth| {name}: max {max:.3} s, median {median:.3} s over {} plays \
             (the test's own timing is within {uncertainty:.3} s)",
            errors.len()
        );
        assert!(errors.len() >= 5, "{name}: {errors:?}");
        // Beyond what the test itself cannot tell apart.
        assert!(
            errors.iter().all(|(e, u)| e - u <= target),
            "{name}: {errors:?}"
        );
    }
}

/// An hour of programme in a minute and a half: a rotation, four shows, a push held 8 s, a
/// kill -9 and immediate restart of Liquidsoap, and airlog's monitor restarted. The test's own
/// record of what Liquidsoap played is the reference: every sound aired once and is logged
/// once, each show started once.
#[tokio::test]
async fn an_hour_in_minutes_with_faults_matches_what_liquidsoap_played() {
    let _turn = crate::helpers::timing().await;
    let dir = private_temp_dir("airlog-ls-hour");
    let db = TestDb::new();
    let rotation: Vec<PathBuf> = (0..5).map(|i| tone(&dir, &format!("rot{i}"), 3)).collect();
    for r in &rotation {
        sound(&db, r, 3.0, &[(1.0, "a"), (2.0, "b")]);
    }
    let shows: Vec<[PathBuf; 2]> = (0..4)
        .map(|i| {
            [
                tone(&dir, &format!("show{i}a"), 2),
                tone(&dir, &format!("show{i}b"), 2),
            ]
        })
        .collect();
    let refs: Vec<&Path> = rotation.iter().map(|p| p.as_path()).collect();
    let mut ls = Liquidsoap::start(&dir, &refs);
    let observer = Observer::start(&ls.socket);
    let proxy = DelayingProxy::start(&ls.socket, Duration::from_secs(8));
    let mut config = station(&db, &ls, 1200);
    config.endpoint = proxy.addr.parse().unwrap();
    let began = Utc::now();
    let mut diffusions = Vec::new();
    for (i, show) in shows.iter().enumerate() {
        let ids = [
            sound(&db, &show[0], 2.0, &[]),
            sound(&db, &show[1], 2.0, &[]),
        ];
        let start = began + chrono::Duration::seconds([4, 24, 42, 60][i]);
        diffusions.push(schedule_show(
            &db,
            config.id,
            start,
            &format!("Show {i}"),
            &ids,
        ));
    }
    let pool = airlog::db::pool(&db.url, 2, Duration::from_secs(5));
    let mut monitor = Monitor::new(config.clone(), pool.clone());
    let t0 = Instant::now();
    let (mut killed, mut restarted_monitor) = (false, false);
    while t0.elapsed() < Duration::from_secs(80) {
        let _ = monitor.tick(Utc::now()).await;
        if !killed && t0.elapsed() > Duration::from_secs(34) {
            ls.kill();
            ls.spawn();
            killed = true;
        }
        if !restarted_monitor && t0.elapsed() > Duration::from_secs(50) {
            monitor = Monitor::new(config.clone(), pool.clone());
            restarted_monitor = true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let record = observer.finish();
    // Airlog gets to see what the test saw last.
    monitor.tick(Utc::now()).await.unwrap();

    let all = entries(&db);
    for d in &diffusions {
        let starts = all
            .iter()
            .filter(|e| e.r#type == "start" && e.diffusion_id == Some(d.id))
            .count();
        assert_eq!(starts, 1, "{} started once: {all:#?}", d.title);
    }
    for show in &shows {
        for path in show {
            assert_eq!(
                record.starts_of(path),
                1,
                "{} aired once: {record:#?}",
                path.display()
            );
            let p = path.display().to_string();
            let logged = all
                .iter()
                .filter(|e| e.path.as_deref() == Some(p.as_str()) && e.resume_of.is_none())
                .count();
            assert_eq!(logged, 1, "{p} logged once");
        }
    }
    assert!(proxy.held.load(Ordering::SeqCst) >= 1, "a push was held");
    // Every emission the test saw, of every run, once in the log, and nothing else.
    let errors = compare(&record, &sounds(&db), began);
    let (max, median, uncertainty) = stats(&errors);
    println!(
        "hour in minutes: {} plays, |date - truth| max {max:.3} s, median {median:.3} s (test timing within {uncertainty:.3} s)",
        errors.len()
    );
    assert!(errors.len() >= 15, "{record:#?}");
    // Tracks: once per play, never ahead of the time they were heard.
    let mut seen = HashSet::new();
    for t in all.iter().filter(|e| e.track_id.is_some()) {
        assert!(
            seen.insert((t.parent_id, t.track_id)),
            "track logged twice: {t:?}"
        );
    }
}
