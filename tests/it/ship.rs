//! `airlog ship` against a real nginx serving HLS with the shipped configuration.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use airlog::auth::Scope;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use crate::helpers::{
    free_port, private_temp_dir, settings_for, stdout_ok, token_in, Running, TestDb,
};

struct Nginx {
    child: Child,
    port: u16,
    log: PathBuf,
    dir: PathBuf,
}

impl Nginx {
    /// nginx with deploy/nginx/hls.conf, its port, root and log moved into `dir`.
    fn start(dir: &Path) -> Nginx {
        Nginx::start_with_workers(dir, 1)
    }

    /// The same with `workers` worker processes (each reopens its logs on its own).
    fn start_with_workers(dir: &Path, workers: usize) -> Nginx {
        let port = free_port();
        let log = dir.join("hls.log");
        let shipped = std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/nginx/hls.conf"),
        )
        .unwrap();
        let site = shipped
            .replace("listen 8000;", &format!("listen 127.0.0.1:{port};"))
            .replace("/var/log/nginx/hls.log", &log.display().to_string())
            .replace("root /var/www;", &format!("root {};", dir.display()));
        assert_ne!(site, shipped);
        let conf = format!(
            "worker_processes {workers};\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{ worker_connections 256; }}\n\
             http {{\n access_log off;\n client_body_temp_path {d}/tmp;\n{site}\n}}\n",
            d = dir.display()
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let child = Command::new("nginx")
            .args([
                "-p",
                dir.to_str().unwrap(),
                "-c",
                dir.join("nginx.conf").to_str().unwrap(),
                "-e",
                dir.join("error.log").to_str().unwrap(),
                "-g",
                "daemon off;",
            ])
            .stdin(Stdio::null())
            .spawn()
            .expect("nginx is installed (make deps)");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "nginx did not start: {}",
                std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Nginx {
            child,
            port,
            log,
            dir: dir.to_path_buf(),
        }
    }

    /// `nginx -s reopen`: nginx's own command, which signals the master (USR1) by its pid file.
    fn reopen(&self) {
        stdout_ok(Command::new("nginx").args([
            "-p",
            self.dir.to_str().unwrap(),
            "-c",
            self.dir.join("nginx.conf").to_str().unwrap(),
            "-e",
            self.dir.join("error.log").to_str().unwrap(),
            "-s",
            "reopen",
        ]));
    }

    /// Rotation as logrotate does it: rename, then tell nginx to reopen its logs.
    fn rotate(&self, to: &str) {
        std::fs::rename(&self.log, self.dir.join(to)).unwrap();
        unsafe { libc::kill(self.child.id() as i32, libc::SIGUSR1) };
        let started = Instant::now();
        while !self.log.exists() {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "nginx did not reopen its log"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGQUIT) };
        let _ = self.child.wait();
    }
}

/// An HLS stream: a playlist and `n` segments of growing size under `<dir>/hls/live/`.
fn stream(dir: &Path, n: usize) -> Vec<u64> {
    let live = dir.join("hls/live");
    std::fs::create_dir_all(&live).unwrap();
    let mut sizes = vec![];
    let playlist: String = (1..=n)
        .map(|i| format!("#EXTINF:1.0,\nseg-{i}.ts\n"))
        .collect();
    std::fs::write(
        live.join("index.m3u8"),
        format!("#EXTM3U\n#EXT-X-TARGETDURATION:1\n{playlist}"),
    )
    .unwrap();
    sizes.push(std::fs::metadata(live.join("index.m3u8")).unwrap().len());
    for i in 1..=n {
        std::fs::write(live.join(format!("seg-{i}.ts")), vec![b'x'; 1000 * i]).unwrap();
        sizes.push(1000 * i as u64);
    }
    for p in [dir.join("hls"), live] {
        std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    sizes
}

async fn listen(client: &reqwest::Client, port: u16, ua: &str, paths: &[&str], pause_ms: u64) {
    for p in paths {
        let res = client
            .get(format!("http://127.0.0.1:{port}/hls/live/{p}"))
            .header("User-Agent", ua)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{p}");
        res.bytes().await.unwrap();
        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
    }
}

/// A shipper process, killed if the test fails before stopping it (else it would outlive the
/// test and hold its output open).
struct Shipper(Child);

impl std::ops::Deref for Shipper {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Shipper {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Shipper {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn shipper(log: &Path, state: &Path, token_file: &Path, to: &str, extra: &[&str]) -> Shipper {
    let child = Command::new(env!("CARGO_BIN_EXE_airlog"))
        .args([
            "ship",
            "--log",
            log.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
            "--format",
            "nginx-hls",
        ])
        .args([
            "--to",
            to,
            "--token-file",
            token_file.to_str().unwrap(),
            "--session-gap",
            "1.5",
            "--max-delay",
            "0.2",
        ])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    Shipper(child)
}

/// A shipper of nginx's log in batches of `batch_size`, writing its metrics to a file in `dir`;
/// that file's path.
fn metered_shipper(
    nginx: &Nginx,
    dir: &Path,
    token_file: &Path,
    to: &str,
    batch_size: &str,
) -> (Shipper, PathBuf) {
    let metrics = dir.join("ship.prom");
    let extra = [
        "--batch-size",
        batch_size,
        "--metrics-file",
        metrics.to_str().unwrap(),
    ];
    let ship = shipper(&nginx.log, &dir.join("state.json"), token_file, to, &extra);
    (ship, metrics)
}

#[derive(QueryableByName, Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    #[diesel(sql_type = Text)]
    ip: String,
    #[diesel(sql_type = Text)]
    user_agent: String,
    #[diesel(sql_type = Text)]
    path: String,
    #[diesel(sql_type = BigInt)]
    bytes_sent: i64,
    #[diesel(sql_type = Text)]
    span: String,
}

fn rows(db: &TestDb) -> Vec<Row> {
    diesel::sql_query(
        "SELECT host(ip) AS ip, user_agent, path, bytes_sent, time_start::text || '/' || time_end::text AS span \
         FROM stats_stream_event ORDER BY user_agent, time_start",
    )
    .load(&mut db.conn())
    .unwrap()
}

async fn wait_rows(db: &TestDb, n: usize, within: Duration) -> Vec<Row> {
    let started = Instant::now();
    loop {
        let r = rows(db);
        if r.len() >= n || started.elapsed() > within {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// airlog serving `db` on `port` (a restarted server comes back on the same port).
fn serve(db: &TestDb, port: u16) -> Running {
    let mut settings = settings_for(db);
    settings.server.bind = format!("127.0.0.1:{port}");
    Running::start(settings)
}

/// Where the shipper sends to: a fresh database, the port airlog is to serve it on, the file
/// `<dir>/token` holding an ingest token, and the ingest URL at that port.
fn target(dir: &Path) -> (TestDb, u16, PathBuf, String) {
    let db = TestDb::new();
    let port = free_port();
    let token_file = dir.join("token");
    let secret = token_in(&db, &[Scope::Ingest]);
    std::fs::write(&token_file, format!("{secret}\n")).unwrap();
    let to = format!("http://127.0.0.1:{port}/api/v1/stats/ingest/stream-events/");
    (db, port, token_file, to)
}

/// The events the shipper's rules make of these log lines read in order, the sessions still
/// open at the end closed.
fn converted<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<serde_json::Value> {
    let mut conv = airlog::ship::Converter::new(
        airlog::ship::parse::Format::NginxHls,
        Duration::from_secs_f64(1.5),
        Vec::new(),
    );
    let mut events = Vec::new();
    for line in lines {
        events.extend(conv.line(line));
    }
    events.extend(conv.sessions.close_all());
    events
}

/// (user agent, bytes sent) of each event.
fn agents_and_bytes(events: &[serde_json::Value]) -> BTreeSet<(String, i64)> {
    events
        .iter()
        .map(|e| {
            (
                e["user_agent"].as_str().unwrap().to_string(),
                e["bytes_sent"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// (user agent, bytes sent) of each stored row.
fn stored_agents_and_bytes(rows: &[Row]) -> BTreeSet<(String, i64)> {
    rows.iter()
        .map(|r| (r.user_agent.clone(), r.bytes_sent))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_listeners_become_sessions_bots_and_probes_are_skipped_and_rotation_is_followed() {
    let dir = private_temp_dir("airlog-ship");
    let sizes = stream(&dir, 4);
    let nginx = Nginx::start(&dir);
    let (db, port, token_file, to) = target(&dir);
    let server = serve(&db, port);
    let (mut ship, metrics) = metered_shipper(&nginx, &dir, &token_file, &to, "2");

    let client = reqwest::Client::new();
    let vlc = "VLC/3.0.18 LibVLC/3.0.18";
    let iphone = "AppleCoreMedia/1.0.0.21A329 (iPhone; U; CPU OS 17_0 like Mac OS X)";
    listen(
        &client,
        nginx.port,
        vlc,
        &["index.m3u8", "seg-1.ts", "seg-2.ts"],
        150,
    )
    .await;
    listen(
        &client,
        nginx.port,
        iphone,
        &["index.m3u8", "seg-1.ts"],
        100,
    )
    .await;
    listen(
        &client,
        nginx.port,
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        &["index.m3u8"],
        0,
    )
    .await;
    client
        .head(format!("http://127.0.0.1:{}/hls/live/seg-3.ts", nginx.port))
        .header("User-Agent", vlc)
        .send()
        .await
        .unwrap();
    let probe = client
        .get(format!("http://127.0.0.1:{}/hls/live/seg-4.ts", nginx.port))
        .header("User-Agent", "Lavf/58")
        .header("Range", "bytes=0-1")
        .send()
        .await
        .unwrap();
    assert_eq!(probe.status(), 206);
    nginx.rotate("hls.log.1");
    listen(
        &client,
        nginx.port,
        "Lavf/58.76.100",
        &["index.m3u8", "seg-3.ts"],
        100,
    )
    .await;
    // VLC comes back after more than the gap: a second session.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    listen(&client, nginx.port, vlc, &["index.m3u8", "seg-4.ts"], 100).await;

    let got = wait_rows(&db, 4, Duration::from_secs(15)).await;
    let summary: Vec<(String, String, i64)> = got
        .iter()
        .map(|r| (r.user_agent.clone(), r.path.clone(), r.bytes_sent))
        .collect();
    let (playlist, seg) = (sizes[0] as i64, |i: usize| sizes[i] as i64);
    assert_eq!(
        summary,
        vec![
            (
                iphone.to_string(),
                "/hls/live/index.m3u8".to_string(),
                playlist + seg(1)
            ),
            (
                "Lavf/58.76.100".to_string(),
                "/hls/live/index.m3u8".to_string(),
                playlist + seg(3)
            ),
            (
                vlc.to_string(),
                "/hls/live/index.m3u8".to_string(),
                playlist + seg(1) + seg(2)
            ),
            (
                vlc.to_string(),
                "/hls/live/index.m3u8".to_string(),
                playlist + seg(4)
            ),
        ],
        "{got:#?}"
    );
    assert!(got.iter().all(|r| r.ip == "127.0.0.1"));
    let text = std::fs::read_to_string(&metrics).unwrap_or_default();
    assert!(
        text.contains(r#"airlog_ship_skipped_total{reason="bot"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"airlog_ship_skipped_total{reason="head"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"airlog_ship_skipped_total{reason="range_probe"} 1"#),
        "{text}"
    );

    unsafe { libc::kill(ship.id() as i32, libc::SIGTERM) };
    assert!(ship.wait().unwrap().success());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_shipper_and_restarting_the_server_loses_nothing_and_counts_nothing_twice() {
    let dir = private_temp_dir("airlog-ship-crash");
    stream(&dir, 3);
    let nginx = Nginx::start(&dir);
    let (db, port, token_file, to) = target(&dir);
    let mut server = Some(serve(&db, port));
    let state = dir.join("state.json");
    let mut ship = shipper(&nginx.log, &state, &token_file, &to, &["--batch-size", "3"]);

    // 60 listeners, each a short session, in waves; the shipper is killed and the server
    // restarted while they listen.
    let client = reqwest::Client::new();
    for wave in 0..6 {
        let mut tasks = Vec::new();
        for l in 0..10 {
            let (client, port) = (client.clone(), nginx.port);
            tasks.push(tokio::spawn(async move {
                let ua = format!("Player/{wave}.{l}");
                listen(
                    &client,
                    port,
                    &ua,
                    &["index.m3u8", "seg-1.ts", "seg-2.ts"],
                    50,
                )
                .await;
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        match wave {
            1 => {
                ship.kill().unwrap();
                ship.wait().unwrap();
                ship = shipper(&nginx.log, &state, &token_file, &to, &["--batch-size", "3"]);
            }
            2 => {
                let s = server.take().unwrap();
                s.stop().await;
            }
            3 => {
                server = Some(serve(&db, port));
                ship.kill().unwrap();
                ship.wait().unwrap();
                ship = shipper(&nginx.log, &state, &token_file, &to, &["--batch-size", "3"]);
            }
            4 => nginx.rotate("hls.log.1"),
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let got = wait_rows(&db, 60, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got_after = rows(&db);
    assert_eq!(got.len(), got_after.len(), "nothing more arrives");

    // What the logs say, computed offline with the same rules, is exactly what was stored.
    let texts: Vec<String> = [dir.join("hls.log.1"), nginx.log.clone()]
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    let expected = converted(texts.iter().flat_map(|t| t.lines()));
    let want = agents_and_bytes(&expected);
    let have = stored_agents_and_bytes(&got_after);
    assert_eq!(expected.len(), 60);
    assert_eq!(got_after.len(), 60, "no event lost or counted twice");
    assert_eq!(have, want);

    ship.kill().unwrap();
    ship.wait().unwrap();
    if let Some(s) = server {
        s.stop().await;
    }
}

#[test]
fn import_log_sends_old_files_in_one_go() {
    let dir = private_temp_dir("airlog-import");
    let log = dir.join("access.log");
    let lines = [
        r#"203.0.113.9 - - [05/Nov/2024:11:16:32 +0000] "GET /live.mp3 HTTP/1.1" 200 480000 "-" "VLC/3.0.18 LibVLC/3.0.18" 60"#,
        r#"203.0.113.10 - - [05/Nov/2024:11:20:00 +0000] "GET /live.mp3 HTTP/1.1" 200 9600000 "https://radio.example/" "Mozilla/5.0 (X11)" 1200"#,
        r#"203.0.113.11 - - [05/Nov/2024:11:21:00 +0000] "HEAD /live.mp3 HTTP/1.1" 200 0 "-" "curl/8" 0"#,
        "this is not a log line",
    ];
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (db, port, token_file, to) = target(&dir);
    let server = rt.block_on(async { serve(&db, port) });
    for round in 0..2 {
        let stdout = import(&log, &to, &token_file);
        let new = if round == 0 { 2 } else { 0 };
        assert!(
            stdout.contains(&format!("4 lines: 2 events sent ({new} new")),
            "{stdout}"
        );
        assert!(
            stdout.contains("1 skipped") && stdout.contains("1 unparsable"),
            "{stdout}"
        );
    }
    let got = rows(&db);
    assert_eq!(got.len(), 2);
    assert!(
        got.iter()
            .any(|r| r.span == "2024-11-05 11:15:32+00/2024-11-05 11:16:32+00"),
        "{got:#?}"
    );
    rt.block_on(server.stop());
}

/// logrotate's numbering: `hls.log.N` becomes `hls.log.N+1`, `hls.log` becomes `hls.log.1`.
fn logrotate_shift(dir: &Path, kept: usize) {
    for n in (1..kept).rev() {
        let from = dir.join(format!("hls.log.{n}"));
        if from.exists() {
            std::fs::rename(&from, dir.join(format!("hls.log.{}", n + 1))).unwrap();
        }
    }
    std::fs::rename(dir.join("hls.log"), dir.join("hls.log.1")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_real_nginx_with_its_reopen_signal_under_traffic_ships_every_line_once() {
    let dir = private_temp_dir("airlog-ship-rotate");
    stream(&dir, 4);
    // Two workers: each reopens the log on its own after the signal.
    let nginx = Nginx::start_with_workers(&dir, 2);
    let (db, port, token_file, to) = target(&dir);
    let server = serve(&db, port);
    let (mut ship, metrics) = metered_shipper(&nginx, &dir, &token_file, &to, "20");

    // Six listeners fetch the playlist and segments without pause longer than the gap.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut listeners = Vec::new();
    for l in 0..6 {
        let (stop, port) = (stop.clone(), nginx.port);
        listeners.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let ua = format!("Rotator/{l}.0");
            let mut k = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let seg = format!("seg-{}.ts", k % 4 + 1);
                listen(&client, port, &ua, &["index.m3u8", &seg], 60 + 15 * l).await;
                k += 1;
            }
        }));
    }

    // Four rotations the way logrotate does them. Twice with `create` (a new empty log exists
    // at once) and a slow reopen, so nginx keeps writing the renamed file while the new one
    // is already there; twice without, nginx creating the new file when it reopens.
    let mut created_at = Vec::new();
    for r in 0..4 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        logrotate_shift(&dir, 5);
        if r % 2 == 0 {
            std::fs::File::create(&nginx.log).unwrap();
            created_at.push((r, std::time::SystemTime::now()));
            tokio::time::sleep(Duration::from_millis(800)).await;
        }
        nginx.reopen();
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for l in listeners {
        l.await.unwrap();
    }

    // The test's own reading of every log file, oldest first.
    let files: Vec<PathBuf> = (1..=4)
        .rev()
        .map(|n| dir.join(format!("hls.log.{n}")))
        .chain([nginx.log.clone()])
        .collect();
    let mut all_lines = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        all_lines.push(text.lines().map(str::to_string).collect::<Vec<_>>());
    }
    let total_lines: usize = all_lines.iter().map(Vec::len).sum();
    assert!(total_lines > 100, "{total_lines} lines of traffic");
    // The hard case happened: lines went to a renamed file after the new one existed.
    for (r, at) in &created_at {
        // Rotation r's renamed file is hls.log.(4 - r) once all four rotations are done.
        let renamed = &all_lines[*r];
        let at_ms = at
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let after = renamed
            .iter()
            .filter(|l| {
                let j: serde_json::Value = serde_json::from_str(l).unwrap();
                j["msec"].as_str().unwrap().parse::<f64>().unwrap() > at_ms
            })
            .count();
        assert!(
            after > 0,
            "rotation {r}: nothing written to the renamed file after the new one was created"
        );
    }
    // Bytes per listener, summed from the lines themselves.
    let mut want_bytes: BTreeMap<String, i64> = BTreeMap::new();
    for line in all_lines.iter().flatten() {
        let j: serde_json::Value = serde_json::from_str(line).unwrap();
        *want_bytes
            .entry(j["ua"].as_str().unwrap().to_string())
            .or_default() += j["bytes"].as_i64().unwrap();
    }
    assert_eq!(want_bytes.len(), 6);

    // Sessions end once idle for the gap plus the margin, by the wall clock.
    let started = Instant::now();
    let have_bytes = loop {
        let mut have: BTreeMap<String, i64> = BTreeMap::new();
        for r in rows(&db) {
            *have.entry(r.user_agent).or_default() += r.bytes_sent;
        }
        if have == want_bytes || started.elapsed() > Duration::from_secs(60) {
            break have;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(have_bytes, want_bytes, "every line shipped exactly once");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = rows(&db);

    // The sessions are those of the whole log read in order.
    let expected = converted(all_lines.iter().flatten().map(String::as_str));
    let want = agents_and_bytes(&expected);
    let have = stored_agents_and_bytes(&got);
    assert_eq!(got.len(), expected.len(), "{got:#?}");
    assert_eq!(have, want, "no session cut");

    unsafe { libc::kill(ship.id() as i32, libc::SIGTERM) };
    assert!(ship.wait().unwrap().success());
    let text = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        text.contains(&format!("airlog_ship_lines_total {total_lines}\n")),
        "every line read once: {total_lines} in the files\n{text}"
    );
    server.stop().await;
}

fn import(log: &Path, to: &str, token_file: &Path) -> String {
    stdout_ok(
        Command::new(env!("CARGO_BIN_EXE_airlog"))
            .args([
                "import-log",
                log.to_str().unwrap(),
                "--format",
                "icecast",
                "--to",
                to,
                "--token-file",
                token_file.to_str().unwrap(),
            ])
            .env("RUST_LOG", "warn"),
    )
}

fn icecast_line(ip: &str, method: &str, ua: &[u8], seconds: u64) -> Vec<u8> {
    let mut line = format!(
        "{ip} - - [05/Nov/2024:11:16:32 +0000] \"{method} /live.mp3 HTTP/1.1\" 200 4800 \"-\" \""
    )
    .into_bytes();
    line.extend_from_slice(ua);
    line.extend_from_slice(format!("\" {seconds}\n").as_bytes());
    line
}

#[test]
fn import_log_with_a_nul_byte_invalid_utf8_and_an_invalid_event_stores_every_other_line() {
    let dir = private_temp_dir("airlog-import-garbage");
    let log = dir.join("access.log");
    // One request per batch holds all of them (the default batch is 1000).
    let mut file = Vec::new();
    file.extend(icecast_line("203.0.113.1", "GET", b"VLC/3.0.18", 60));
    file.extend(icecast_line("203.0.113.2", "GET", b"Win\0amp/5.9", 61));
    file.extend(icecast_line(
        "203.0.113.3",
        "GET",
        b"Caf\xe9 Player \xff",
        62,
    ));
    file.extend(icecast_line(
        "203.0.113.4",
        "GET",
        br"M\xC3\xBCller\x00Radio",
        63,
    ));
    // Not an HTTP method to the server: refused, named by index.
    file.extend(icecast_line("203.0.113.5", "get", b"Sonos/57.21", 64));
    file.extend(icecast_line("203.0.113.6", "GET", b"Lavf/58", 65));
    std::fs::write(&log, &file).unwrap();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (db, port, token_file, to) = target(&dir);
    let server = rt.block_on(async { serve(&db, port) });
    for round in 0..2 {
        let stdout = import(&log, &to, &token_file);
        let new = if round == 0 { 5 } else { 0 };
        assert!(
            stdout.contains(&format!(
                "6 lines: 6 events sent ({new} new, {} duplicates, 1 dropped)",
                5 - new
            )),
            "{stdout}"
        );
        assert!(stdout.contains("3 cleaned"), "{stdout}");
        assert!(stdout.contains("dropped 1: invalid_method"), "{stdout}");
    }
    let got: BTreeSet<(String, String)> = rows(&db)
        .into_iter()
        .map(|r| (r.ip, r.user_agent))
        .collect();
    let want: BTreeSet<(String, String)> = [
        ("203.0.113.1", "VLC/3.0.18"),
        ("203.0.113.2", "Win\u{FFFD}amp/5.9"),
        ("203.0.113.3", "Caf\u{FFFD} Player \u{FFFD}"),
        ("203.0.113.4", "Müller\u{FFFD}Radio"),
        ("203.0.113.6", "Lavf/58"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(got, want);
    rt.block_on(server.stop());
}

/// What the stand-in ingest server received and how it misbehaves.
#[derive(Default)]
struct Faulty {
    /// 500 for a batch holding the poisoned event; else a 400 that names no item.
    fail_with_500: bool,
    /// Every request fails with 500 until then.
    down_until: Option<Instant>,
    stored: Vec<String>,
    empty_probes: usize,
}

/// A server failing on one event in ways the real one should not (a 500 on one bad event, a
/// 400 without item indexes) is a fault the real server cannot be made to produce on demand.
async fn faulty_ingest(
    body: actix_web::web::Json<Vec<serde_json::Value>>,
    state: actix_web::web::Data<std::sync::Mutex<Faulty>>,
) -> actix_web::HttpResponse {
    use actix_web::HttpResponse;
    let mut s = state.lock().unwrap();
    if s.down_until.is_some_and(|t| Instant::now() < t) {
        return HttpResponse::InternalServerError().body("down");
    }
    let uas: Vec<String> = body
        .iter()
        .map(|e| e["user_agent"].as_str().unwrap().to_string())
        .collect();
    if uas.is_empty() {
        s.empty_probes += 1;
    }
    if uas.iter().any(|u| u == "poison") {
        return if s.fail_with_500 {
            HttpResponse::InternalServerError().body("boom")
        } else {
            HttpResponse::BadRequest().json(serde_json::json!({
                "error": "bad_request", "message": "something in there", "details": []
            }))
        };
    }
    s.stored.extend(uas.iter().cloned());
    HttpResponse::Created().json(serde_json::json!({"created": uas.len(), "duplicates": 0}))
}

#[test]
fn a_server_failing_on_one_event_gets_every_other_once_and_a_server_down_loses_nothing() {
    let dir = private_temp_dir("airlog-import-faulty");
    let log = dir.join("access.log");
    let token_file = dir.join("token");
    std::fs::write(&token_file, "not checked\n").unwrap();
    let good: Vec<String> = (0..9).map(|i| format!("Player/{i}")).collect();
    let rt = actix_web::rt::System::new();
    for (case, poisoned) in [("500", true), ("400", true), ("down", false)] {
        let mut file = Vec::new();
        for (i, ua) in good.iter().enumerate() {
            file.extend(icecast_line(
                &format!("198.51.100.{i}"),
                "GET",
                ua.as_bytes(),
                10,
            ));
            if i == 5 && poisoned {
                file.extend(icecast_line("198.51.100.99", "GET", b"poison", 10));
            }
        }
        std::fs::write(&log, &file).unwrap();
        let state = actix_web::web::Data::new(std::sync::Mutex::new(Faulty {
            fail_with_500: case == "500",
            down_until: (case == "down").then(|| Instant::now() + Duration::from_secs(4)),
            ..Faulty::default()
        }));
        let app_state = state.clone();
        let (port, handle) = rt.block_on(async move {
            let server = actix_web::HttpServer::new(move || {
                actix_web::App::new()
                    .app_data(app_state.clone())
                    .route("/ingest", actix_web::web::post().to(faulty_ingest))
            })
            .workers(1)
            .bind(("127.0.0.1", 0))
            .unwrap();
            let port = server.addrs()[0].port();
            let running = server.run();
            let handle = running.handle();
            actix_web::rt::spawn(running);
            (port, handle)
        });
        let to = format!("http://127.0.0.1:{port}/ingest");
        let stdout = rt.block_on(async {
            let (log, token_file) = (log.clone(), token_file.clone());
            actix_web::rt::task::spawn_blocking(move || import(&log, &to, &token_file))
                .await
                .unwrap()
        });
        let s = state.lock().unwrap();
        let mut stored = s.stored.clone();
        stored.sort();
        assert_eq!(stored, good, "{case}: every good event once\n{stdout}");
        let (dropped, reason) = match case {
            "500" => (1, "server_error"),
            "400" => (1, "http_400"),
            _ => (0, ""),
        };
        assert!(
            stdout.contains(&format!("9 new, 0 duplicates, {dropped} dropped")),
            "{case}: {stdout}"
        );
        if dropped > 0 {
            assert!(stdout.contains(&format!("dropped 1: {reason}")), "{stdout}");
        }
        if case == "500" {
            assert!(s.empty_probes >= 1, "the server was seen to work");
        }
        drop(s);
        rt.block_on(handle.stop(true));
    }
}
