//! Every play captured, whatever order mpv reports it in: the test holds its own IPC
//! connection to each real mpv, records mpv's file boundaries (`start-file` / `end-file` of each
//! playlist entry, and the kill time of a killed mpv) itself, and airlog's stored plays must be
//! the same: count, order, path, start and end within 0.5 s.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use airlog::monitor::mpv::client::{MpvClient, MpvError};
use airlog::monitor::mpv::protocol::Incoming;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use serde_json::{json, Value};

use crate::helpers::{
    capture_mpv, epoch_secs as secs, mpv_command, private_temp_dir, start_mpv, tone, watch_mpv,
    TestDb,
};
use crate::mpv_capture::{plays_of, Play};

/// A play as mpv's own events show it.
#[derive(Debug, Clone)]
struct Boundary {
    path: String,
    start: f64,
    end: f64,
    reason: String,
}

/// The test's own connection to one mpv: every event with its arrival time, and the path of
/// every playlist entry the test created (from `loadfile`'s reply).
struct Witness {
    client: MpvClient,
    seen: Arc<Mutex<Vec<(f64, Incoming)>>>,
    paths: HashMap<i64, String>,
    /// The entry mpv was already playing when the test connected, from then.
    playing: Option<(i64, f64)>,
}

impl Witness {
    /// Connects, trying again while a starting mpv refuses.
    async fn connect(socket: &Path) -> Witness {
        let started = Instant::now();
        let (client, mut events) = loop {
            match MpvClient::connect(socket, Duration::from_secs(5)).await {
                Ok(c) => break c,
                Err(MpvError::Connect(_, e)) if started.elapsed() < Duration::from_secs(30) => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("the test cannot connect to mpv: {e}"),
            }
        };
        let seen: Arc<Mutex<Vec<(f64, Incoming)>>> = Arc::default();
        let sink = seen.clone();
        tokio::spawn(async move {
            while let Some((at, e)) = events.recv().await {
                sink.lock().unwrap().push((secs(at), e));
            }
        });
        Witness {
            client,
            seen,
            paths: HashMap::new(),
            playing: None,
        }
    }

    /// For an mpv started with files: their entry ids, and the one already playing.
    async fn adopt_playlist(&mut self) {
        let at = secs(chrono::Utc::now());
        let list = self
            .command(&[json!("get_property"), json!("playlist")])
            .await
            .unwrap();
        for e in list.as_array().unwrap() {
            let id = e["id"].as_i64().unwrap();
            self.paths
                .insert(id, e["filename"].as_str().unwrap().to_string());
            if e.get("playing") == Some(&json!(true)) {
                self.playing = Some((id, at));
            }
        }
    }

    async fn command(&self, command: &[Value]) -> Option<Value> {
        self.client
            .request(command)
            .await
            .unwrap_or_else(|e| panic!("{command:?}: {e}"))
    }

    /// `loadfile` with a mode; remembers the new entry's path.
    async fn load(&mut self, file: &Path, mode: &str) {
        let reply = self
            .command(&[
                json!("loadfile"),
                json!(file.display().to_string()),
                json!(mode),
            ])
            .await;
        let id = reply
            .as_ref()
            .and_then(|r| r.get("playlist_entry_id"))
            .and_then(Value::as_i64)
            .expect("mpv 0.35 answers loadfile with the entry id");
        self.paths.insert(id, file.display().to_string());
    }

    fn events_named(&self, name: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, e)| matches!(e, Incoming::Event { name: n, .. } if n == name))
            .count()
    }

    /// Waits until mpv has sent `n` events called `name`.
    async fn wait_events(&self, name: &str, n: usize) {
        let started = Instant::now();
        while self.events_named(name) < n {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "mpv sent {} {name}, not {n}",
                self.events_named(name)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// mpv's file boundaries; a file still open when mpv was killed ends at `killed`.
    fn boundaries(&self, killed: Option<f64>) -> Vec<Boundary> {
        let id = |f: &serde_json::Map<String, Value>| {
            f.get("playlist_entry_id").and_then(Value::as_i64).unwrap()
        };
        let mut out = Vec::new();
        let mut open: Option<(i64, f64)> = self.playing;
        let mut adopted = self.playing.is_some();
        for (t, e) in self.seen.lock().unwrap().iter() {
            let Incoming::Event { name, fields } = e else {
                continue;
            };
            match name.as_str() {
                "start-file" => {
                    // The start of the playing entry raced the test's look at the playlist.
                    let same = adopted && open.is_some_and(|(e, _)| e == id(fields));
                    assert!(
                        open.is_none() || same,
                        "mpv started a file before ending one"
                    );
                    adopted = false;
                    open = Some((id(fields), *t));
                }
                "end-file" => {
                    adopted = false;
                    let (entry, start) = open.take().expect("an end-file ends a started file");
                    assert_eq!(entry, id(fields));
                    out.push(Boundary {
                        path: self.paths[&entry].clone(),
                        start,
                        end: *t,
                        reason: fields["reason"].as_str().unwrap().to_string(),
                    });
                }
                _ => {}
            }
        }
        if let (Some((entry, start)), Some(k)) = (open, killed) {
            out.push(Boundary {
                path: self.paths[&entry].clone(),
                start,
                end: k,
                reason: "crash".into(),
            });
        }
        out
    }
}

fn instance_of(socket: &Path) -> String {
    socket.file_name().unwrap().to_string_lossy().into_owned()
}

/// Waits (generously: the machine may be loaded) until airlog stored `n` plays of the instance.
async fn wait_plays(db: &TestDb, instance: &str, n: usize) -> Vec<Play> {
    let started = Instant::now();
    loop {
        let p = plays_of(db, Some(instance));
        if p.len() >= n || started.elapsed() > Duration::from_secs(30) {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until airlog's capture of the instance is connected.
async fn wait_connected(db: &TestDb, instance: &str) {
    let started = Instant::now();
    loop {
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let n: N = diesel::sql_query(
            "SELECT count(*) AS n FROM mpv_event WHERE instance = $1 AND event = 'connected'",
        )
        .bind::<Text, _>(instance)
        .get_result(&mut db.conn())
        .unwrap();
        if n.n > 0 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "airlog never captured {instance}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// airlog's plays are mpv's boundaries: count, order, path, start and end within 0.5 s, and
/// the end reason.
fn assert_same(instance: &str, ours: &[Play], mpv: &[Boundary]) {
    let table = || {
        let mut s = format!("instance {instance}\nmpv ({}):\n", mpv.len());
        for b in mpv {
            s.push_str(&format!(
                "  {:.3} {:.3} {:6} {}\n",
                b.start, b.end, b.reason, b.path
            ));
        }
        s.push_str(&format!("airlog ({}):\n", ours.len()));
        for r in ours {
            s.push_str(&format!(
                "  {:.3} {:.3} {:6} {}\n",
                r.start,
                r.end,
                r.end_reason.as_deref().unwrap_or("-"),
                r.path
            ));
        }
        s
    };
    assert_eq!(ours.len(), mpv.len(), "{}", table());
    for (r, b) in ours.iter().zip(mpv) {
        assert_eq!(r.path, b.path, "{}", table());
        assert!((r.start - b.start).abs() < 0.5, "start\n{}", table());
        assert!((r.end - b.end).abs() < 0.5, "end\n{}", table());
        assert_eq!(
            r.end_reason.as_deref(),
            Some(b.reason.as_str()),
            "{}",
            table()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_skips_replaces_repeats_and_a_kill_lose_no_play() {
    let _turn = crate::helpers::heavy_load().await;
    let dir = private_temp_dir("airlog-mpv-skips");
    let songs: Vec<PathBuf> = (0..6).map(|i| tone(&dir, &format!("s{i}"), 3)).collect();
    let jingle = tone(&dir, "jingle", 1);
    let db = TestDb::new();
    let pool = airlog::db::pool(&db.url, 3, Duration::from_secs(5));
    let socket = dir.join(format!(
        "{}",
        chrono::Utc::now().timestamp_nanos_opt().unwrap()
    ));
    let instance = instance_of(&socket);
    let mut child = start_mpv(&socket);
    let (_trigger, task) = capture_mpv(&pool, &socket, Default::default());
    let mut mpv = Witness::connect(&socket).await;
    wait_connected(&db, &instance).await;

    // 60 entries; 50 rapid playlist-next (20 to 110 ms apart) with a playlist-prev after every
    // seventh: most files are left before they load, some after.
    mpv.load(&songs[0], "replace").await;
    for i in 1..60 {
        mpv.load(&songs[i % songs.len()], "append").await;
    }
    mpv.wait_events("file-loaded", 1).await;
    let mut starts = 1;
    for i in 0..50u64 {
        mpv.command(&[json!("playlist-next")]).await;
        starts += 1;
        tokio::time::sleep(Duration::from_millis(20 + (i * 37) % 90)).await;
        if i % 7 == 6 {
            mpv.command(&[json!("playlist-prev")]).await;
            starts += 1;
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
    }
    mpv.wait_events("start-file", starts).await;
    // `loadfile X replace` while playing (the position does not change), twice in a row.
    mpv.load(&songs[2], "replace").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    mpv.load(&songs[2], "replace").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    // The same short file twice, each played to its end (the first replaces what plays, the
    // second starts from idle).
    for replaced in [2, 1] {
        let ends = mpv.events_named("end-file");
        mpv.load(&jingle, "replace").await;
        mpv.wait_events("end-file", ends + replaced).await;
    }
    // Then mpv is killed while playing.
    mpv.load(&songs[3], "replace").await;
    mpv.wait_events("file-loaded", 1).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    child.kill().unwrap();
    let killed = secs(chrono::Utc::now());
    child.wait().unwrap();

    let expected = mpv.boundaries(Some(killed));
    task.await.unwrap().unwrap();
    let ours = wait_plays(&db, &instance, expected.len()).await;
    assert_same(&instance, &ours, &expected);
    let skipped = expected.iter().filter(|b| b.end - b.start < 0.2).count();
    let jingles = expected
        .iter()
        .filter(|b| b.path == jingle.display().to_string() && b.reason == "eof")
        .count();
    assert!(skipped >= 30, "the skips were rapid: {skipped}");
    assert_eq!(jingles, 2, "a file played twice is two plays");
    eprintln!(
        "rapid skips: {} plays ({} shorter than 0.2 s) equal to mpv's boundaries",
        expected.len(),
        skipped
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_five_instances_launched_back_to_back_are_all_captured() {
    let _turn = crate::helpers::heavy_load().await;
    let dir = private_temp_dir("airlog-mpv-25");
    let sockets_dir = dir.join("sockets");
    std::fs::create_dir_all(&sockets_dir).unwrap();
    let song = tone(&dir, "song", 1);
    let db = TestDb::new();
    let pool = airlog::db::pool(&db.url, 6, Duration::from_secs(10));
    // No rescan during the test: inotify and the retries of refused sockets must do it, and
    // remove_dead must not take a starting mpv's socket.
    let (trigger, watcher) = watch_mpv(
        &pool,
        &sockets_dir,
        Duration::from_secs(3600),
        true,
        Default::default(),
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut children = Vec::new();
    let mut sockets = Vec::new();
    for i in 0..25 {
        let socket = sockets_dir.join(format!(
            "{}{i:02}",
            chrono::Utc::now().timestamp_nanos_opt().unwrap()
        ));
        children.push(
            mpv_command(&socket)
                .spawn()
                .expect("mpv is installed (make deps)"),
        );
        sockets.push(socket);
    }
    let mut witnesses = Vec::new();
    for socket in &sockets {
        witnesses.push(Witness::connect(socket).await);
    }
    for socket in &sockets {
        wait_connected(&db, &instance_of(socket)).await;
    }
    for socket in &sockets {
        assert!(socket.exists(), "a live mpv's socket was removed");
    }
    for w in witnesses.iter_mut() {
        w.load(&song, "replace").await;
    }
    for w in &witnesses {
        w.wait_events("end-file", 1).await;
        let _ = w.client.request(&[json!("quit")]).await;
    }
    for c in children.iter_mut() {
        c.wait().unwrap();
    }
    for (socket, w) in sockets.iter().zip(&witnesses) {
        let expected = w.boundaries(None);
        assert_eq!(expected.len(), 1);
        let instance = instance_of(socket);
        let ours = wait_plays(&db, &instance, 1).await;
        assert_same(&instance, &ours, &expected);
    }
    trigger.fire();
    watcher.await.unwrap();
}

/// A Unix socket bound at `path` that does not listen yet: connecting is refused, as with an
/// mpv that has created its socket file but does not accept yet (a window too short to hit on
/// demand with mpv itself).
fn bound_not_listening(path: &Path) -> OwnedFd {
    unsafe {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let mut addr: libc::sockaddr_un = std::mem::zeroed();
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let bytes = path.as_os_str().as_bytes();
        assert!(bytes.len() < addr.sun_path.len());
        for (i, b) in bytes.iter().enumerate() {
            addr.sun_path[i] = *b as libc::c_char;
        }
        let len = (std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1) as libc::socklen_t;
        assert_eq!(
            libc::bind(fd, &addr as *const _ as *const libc::sockaddr, len),
            0
        );
        OwnedFd::from_raw_fd(fd)
    }
}

/// Starts listening and waits for a connection (airlog's).
async fn accepts(fd: OwnedFd) -> bool {
    assert_eq!(unsafe { libc::listen(fd.as_raw_fd(), 8) }, 0);
    let listener = std::os::unix::net::UnixListener::from(fd);
    listener.set_nonblocking(true).unwrap();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(15) {
        if listener.accept().is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_sockets_are_retried_and_only_dead_unheld_ones_removed() {
    let dir = private_temp_dir("airlog-mpv-refused");
    let db = TestDb::new();
    let pool = airlog::db::pool(&db.url, 2, Duration::from_secs(5));
    let opts = airlog::monitor::mpv::capture::CaptureOptions {
        refused_grace: Duration::from_secs(1),
        ..Default::default()
    };
    let (trigger, watcher) = watch_mpv(&pool, &dir, Duration::from_secs(3600), true, opts);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let starting = bound_not_listening(&dir.join("starting"));
    let stuck = bound_not_listening(&dir.join("stuck"));
    let dead = dir.join("dead");
    drop(bound_not_listening(&dead));
    // A socket that accepts 300 ms after it appeared is captured by the retries.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        accepts(starting).await,
        "a refused socket was not tried again"
    );
    // A socket left behind (the one accepted above, once it refuses, and one that was dead
    // from the start) is removed once it refused for the grace and nobody holds it.
    let started = Instant::now();
    while dead.exists() || dir.join("starting").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "dead sockets nobody holds are removed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Refusing for longer than the grace, but held by a process: kept, and after the retries
    // stopped, tried again on SIGUSR1 (listening changes nothing inotify sees).
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert!(dir.join("stuck").exists(), "a held socket was removed");
    let usr1 = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) };
    };
    let (accepted, ()) = tokio::join!(accepts(stuck), usr1);
    assert!(accepted, "SIGUSR1 tries refusing sockets again");
    trigger.fire();
    watcher.await.unwrap();
}

/// A child process killed when the test ends, even by a panic.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// mpv-history-daemon itself captures the same mpv as airlog; importing its file afterwards
/// adds nothing: the imported instance is the live one (same socket name), and each play is
/// stored once, with mpv's boundaries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn importing_the_daemon_file_of_a_live_session_stores_each_play_once() {
    let _turn = crate::helpers::heavy_load().await;
    let dir = private_temp_dir("airlog-mpv-both");
    let (sockets_dir, data_dir) = (dir.join("sockets"), dir.join("data"));
    std::fs::create_dir_all(&sockets_dir).unwrap();
    std::fs::create_dir_all(&data_dir).unwrap();
    let songs: Vec<PathBuf> = (0..4).map(|i| tone(&dir, &format!("t{i}"), 2)).collect();
    let db = TestDb::new();
    let pool = airlog::db::pool(&db.url, 3, Duration::from_secs(5));
    let daemon = Reaped(
        std::process::Command::new("python3")
            .args([
                "-m",
                "mpv_history_daemon",
                "daemon",
                "--scan-time",
                "1",
                "--write-period",
                "1",
            ])
            .arg(&sockets_dir)
            .arg(&data_dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("mpv-history-daemon is installed (make deps)"),
    );
    let (trigger, watcher) = watch_mpv(
        &pool,
        &sockets_dir,
        Duration::from_secs(1),
        false,
        Default::default(),
    );
    // As mpv-sockets starts it: with its files (the daemon reads the playlist's length once,
    // when it connects, and follows only that many files), here paused at the start.
    let socket = sockets_dir.join(format!(
        "{}",
        chrono::Utc::now().timestamp_nanos_opt().unwrap()
    ));
    let instance = instance_of(&socket);
    let mut child = Reaped(
        mpv_command(&socket)
            .arg("--pause")
            .args(&songs)
            .spawn()
            .expect("mpv is installed (make deps)"),
    );
    let mut mpv = Witness::connect(&socket).await;
    mpv.adopt_playlist().await;
    wait_connected(&db, &instance).await;
    // The daemon writes its file every second once it is connected.
    let file = data_dir.join(format!("{instance}.json"));
    let started = Instant::now();
    while !file.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "mpv-history-daemon did not connect"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Skips (where the daemon goes wrong), a replace, a file to its end, then quit.
    mpv.command(&[json!("set_property"), json!("pause"), json!(false)])
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..2 {
        mpv.command(&[json!("playlist-next")]).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    mpv.load(&songs[1], "replace").await;
    mpv.wait_events("end-file", 4).await;
    let _ = mpv.client.request(&[json!("quit")]).await;
    child.0.wait().unwrap();
    let expected = mpv.boundaries(None);
    let ours = wait_plays(&db, &instance, expected.len()).await;
    assert_same(&instance, &ours, &expected);

    // The daemon's final file says mpv quit.
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        if text.contains("final-write") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "no final write: {text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(daemon);
    trigger.fire();
    watcher.await.unwrap();
    let env = [("DATABASE_URL", db.url.as_str())];
    let (code, out, err) =
        crate::helpers::airlog_cmd(&["mpv", "import", file.to_str().unwrap()], &env, &dir);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("in 1 files, 0 new"), "{out}");
    assert_same(&instance, &plays_of(&db, Some(&instance)), &expected);
    let theirs: Value = serde_json::from_str(&airlog_parse(&file)).unwrap();
    eprintln!(
        "mpv {} plays, airlog live {}, mpv-history-daemon {} (all events)",
        expected.len(),
        ours.len(),
        theirs.as_array().unwrap().len()
    );
}

fn airlog_parse(file: &Path) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_airlog"))
        .args(["mpv", "parse", "--all-events"])
        .arg(file)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}
