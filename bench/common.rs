//! Shared bench plumbing: a database (DATABASE_URL or a private cluster in a temporary
//! directory), the airlog server as a child process, and its memory use.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use airlog::db::cluster::Cluster;

/// The database a bench runs on; a private cluster is stopped and removed on drop.
pub struct BenchDb {
    pub url: String,
    cluster: Option<(Cluster, PathBuf)>,
}

impl BenchDb {
    pub fn open() -> BenchDb {
        if let Ok(url) = std::env::var("DATABASE_URL") {
            if !url.is_empty() {
                airlog::db::migrate(&url).expect("migrate");
                return BenchDb { url, cluster: None };
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("airlog-bench")
            .tempdir()
            .unwrap()
            .keep();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        // Default durability: the figures are what a station would see. Memory enough for the
        // largest history to stay cached, so ratios compare work done, not cache misses.
        let cluster = Cluster::new(dir.join("pg"))
            .expect("PostgreSQL binaries")
            .with_extra_conf("max_wal_size = '8GB'\nshared_buffers = '6GB'\neffective_cache_size = '16GB'\nwork_mem = '64MB'");
        cluster.start().expect("start bench cluster");
        airlog::db::migrate(&cluster.url()).expect("migrate");
        BenchDb {
            url: cluster.url(),
            cluster: Some((cluster, dir)),
        }
    }
}

impl BenchDb {
    /// The private cluster's postmaster, whose processes' CPU time a bench can count.
    pub fn postmaster(&self) -> Option<u32> {
        let (_, dir) = self.cluster.as_ref()?;
        let text = walk_find(dir, "postmaster.pid")?;
        text.lines().next()?.trim().parse().ok()
    }
}

fn walk_find(dir: &std::path::Path, name: &str) -> Option<String> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.file_name().is_some_and(|n| n == name) {
            return std::fs::read_to_string(path).ok();
        }
        if path.is_dir() {
            if let Some(found) = walk_find(&path, name) {
                return Some(found);
            }
        }
    }
    None
}

/// (own CPU, reaped children's CPU, parent pid) of a process, in seconds, from /proc.
fn proc_cpu(pid: u32) -> Option<(f64, f64, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces), numbered from 3 (state).
    let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let field = |n: usize| rest.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let own = (field(14)? + field(15)?) as f64 / tick;
    let children = (field(16)? + field(17)?) as f64 / tick;
    Some((own, children, field(4)? as u32))
}

/// CPU seconds a process has used so far (all its threads).
pub fn process_cpu_s(pid: u32) -> f64 {
    proc_cpu(pid).map_or(0.0, |(own, _, _)| own)
}

/// CPU seconds the whole PostgreSQL cluster has used so far: the postmaster, its live
/// processes (backends, checkpointer, WAL writer, autovacuum) and those already gone.
pub fn cluster_cpu_s(postmaster: u32) -> f64 {
    let Some((own, reaped, _)) = proc_cpu(postmaster) else {
        return 0.0;
    };
    let live: f64 = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(proc_cpu)
        .filter(|(_, _, parent)| *parent == postmaster)
        .map(|(own, _, _)| own)
        .sum();
    own + reaped + live
}

impl Drop for BenchDb {
    fn drop(&mut self) {
        if let Some((cluster, dir)) = self.cluster.take() {
            let _ = cluster.stop();
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The airlog binary serving on a free port.
pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Server {
    pub fn start(database_url: &str) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_airlog"))
            .args([
                "--config",
                "/dev/null",
                "serve",
                "--bind",
                &format!("127.0.0.1:{port}"),
            ])
            .env("DATABASE_URL", database_url)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .expect("start airlog");
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "airlog did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Server { child, base }
    }

    /// Resident memory of the server now, in KiB.
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.child.id())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Samples a process's RSS every 10 ms until stopped; `stop()` returns the peak in KiB.
pub struct PeakRss {
    running: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl PeakRss {
    pub fn watch(pid: u32) -> PeakRss {
        let running = Arc::new(AtomicBool::new(true));
        let peak = Arc::new(AtomicU64::new(rss_kib(pid)));
        let (r, p) = (running.clone(), peak.clone());
        let handle = std::thread::spawn(move || {
            while r.load(Ordering::Relaxed) {
                p.fetch_max(rss_kib(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        PeakRss {
            running,
            peak,
            handle: Some(handle),
        }
    }

    pub fn stop(mut self) -> u64 {
        self.running.store(false, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.peak.load(Ordering::Relaxed)
    }
}

/// Reads `--name value` from the bench's arguments.
pub fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A token with every scope, stored directly.
pub fn admin_token(url: &str) -> String {
    use diesel::Connection;
    let t = airlog::auth::generate_token().unwrap();
    let mut conn = diesel::PgConnection::establish(url).unwrap();
    let name = format!("bench-{}", t.prefix);
    airlog::db::tokens::insert(
        &mut conn,
        &airlog::db::tokens::NewToken {
            name: &name,
            prefix: &t.prefix,
            hash: &t.hash,
            scopes: vec!["admin".into()],
        },
    )
    .unwrap();
    t.secret
}

/// The same URL naming another database (`postgres://h/name?x` or `postgresql:///name?host=..`).
pub fn with_database(url: &str, database: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("database URL has a scheme");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = path.split('/').next().unwrap_or("");
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    format!("{scheme}://{authority}/{database}{query}")
}

/// Loads stream events given as COPY text (origin, ip, method, path, status, bytes_sent,
/// user_agent, seconds_connected, time_start, time_end, device_key; tab-separated lines).
pub fn copy_stream_events(conn: &mut diesel::PgConnection, data: Vec<u8>) {
    use airlog::db::schema::stats_stream_event as se;
    use diesel::ExecuteCopyFromDsl;
    use std::io::Write;
    diesel::copy_from(se::table)
        .from_raw_data(
            (
                se::origin,
                se::ip,
                se::method,
                se::path,
                se::status,
                se::bytes_sent,
                se::user_agent,
                se::seconds_connected,
                se::time_start,
                se::time_end,
                se::device_key,
            ),
            |w: &mut dyn Write| -> Result<(), diesel::result::Error> {
                w.write_all(&data)
                    .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))
            },
        )
        .execute(conn)
        .unwrap();
}
