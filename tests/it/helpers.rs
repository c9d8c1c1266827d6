//! Shared test helpers: the database server of this run, per-test databases, a running app.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use airlog::app::Application;
use airlog::auth::{generate_token, Scope};
use airlog::config::Settings;
use airlog::db::cluster::Cluster;
use airlog::db::playout::StationRow;
use airlog::db::tokens;
use airlog::db::DbPool;
use airlog::monitor::mpv::capture::CaptureOptions;
use airlog::shutdown::{self, ShutdownTrigger};
use chrono::{DateTime, Utc};
use diesel::{Connection, PgConnection, RunQueryDsl};
use reqwest::{Method, RequestBuilder};
use serde_json::Value;
use tokio::task::JoinHandle;

/// Settings for a private test cluster: durability is not what tests check.
pub const FAST_CONF: &str =
    "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 400";

/// The server this test run uses, and the template database every test database copies.
struct TestServer {
    /// Builds the URL of a database on this server.
    base_url: String,
    template: String,
}

static SERVER: OnceLock<TestServer> = OnceLock::new();
static CREATE_LOCK: Mutex<()> = Mutex::new(());
static COUNTER: AtomicUsize = AtomicUsize::new(0);
static TURNS: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Held for the whole of a test that loads the machine hard (dozens of mpv processes, a
/// browser): tests that measure times to a fraction of a second (`timing`) do not run
/// meanwhile, as on two cores the first starve the second.
pub async fn heavy_load() -> tokio::sync::RwLockWriteGuard<'static, ()> {
    TURNS.write().await
}

/// Held for the whole of a test that measures times to a fraction of a second: no
/// `heavy_load` test runs meanwhile (timing tests still run together).
pub async fn timing() -> tokio::sync::RwLockReadGuard<'static, ()> {
    TURNS.read().await
}

/// Replaces the database name in a libpq URL (`postgres://u@h:5432/name?x=y`).
pub fn with_database(url: &str, database: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("database URL has a scheme");
    let (before_query, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let authority = before_query.split('/').next().unwrap_or("");
    let mut out = format!("{scheme}://{authority}/{database}");
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

fn server() -> &'static TestServer {
    SERVER.get_or_init(|| {
        let base_url = match std::env::var("TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => url,
            _ => start_private_cluster(),
        };
        let template = format!("airlog_tpl_{}", std::process::id());
        let mut admin = PgConnection::establish(&with_database(&base_url, "postgres"))
            .expect("connect to test server");
        diesel::sql_query(format!("DROP DATABASE IF EXISTS {template}"))
            .execute(&mut admin)
            .unwrap();
        diesel::sql_query(format!("CREATE DATABASE {template}"))
            .execute(&mut admin)
            .unwrap();
        airlog::db::migrate(&with_database(&base_url, &template)).expect("migrate template");
        TestServer { base_url, template }
    })
}

/// Starts a private cluster for this test process, stopped and removed by a watchdog when the
/// process ends (the test harness has no global teardown).
fn start_private_cluster() -> String {
    let dir = private_temp_dir("airlog-test-pg");
    let cluster = Cluster::new(dir.join("pg"))
        .expect("PostgreSQL binaries")
        .with_extra_conf(FAST_CONF);
    cluster.start().expect("start test cluster");
    let stop = cluster.stop_command();
    let mut script = format!(
        "while kill -0 {} 2>/dev/null; do sleep 0.5; done; ",
        std::process::id()
    );
    script.push_str(&shell_words(&stop));
    script.push_str(&format!(" >/dev/null 2>&1; rm -rf '{}'", dir.display()));
    // The watchdog outlives this process on purpose; it is never waited for.
    #[allow(clippy::zombie_processes)]
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn cluster watchdog");
    cluster.url()
}

/// A temporary directory the `postgres` user can enter (tempfile makes them 0700).
pub fn private_temp_dir(prefix: &str) -> std::path::PathBuf {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .unwrap()
        .keep();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn shell_words(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| format!("'{}'", a.to_string_lossy().replace('\'', "'\\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A database of its own for one test, copied from the migrated template, dropped at the end.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    /// A fresh, migrated database.
    pub fn new() -> TestDb {
        Self::create(true)
    }

    /// A fresh database with no tables.
    pub fn empty() -> TestDb {
        Self::create(false)
    }

    fn create(migrated: bool) -> TestDb {
        let server = server();
        let name = format!(
            "t{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let mut admin =
            PgConnection::establish(&with_database(&server.base_url, "postgres")).unwrap();
        let sql = if migrated {
            format!("CREATE DATABASE {name} TEMPLATE {}", server.template)
        } else {
            format!("CREATE DATABASE {name}")
        };
        {
            // Copies of one template must not overlap, or PostgreSQL refuses the second.
            let _guard = CREATE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
            diesel::sql_query(sql).execute(&mut admin).unwrap();
        }
        TestDb {
            url: with_database(&server.base_url, &name),
            name,
        }
    }

    /// A direct connection for setting up and checking rows.
    pub fn conn(&self) -> PgConnection {
        PgConnection::establish(&self.url).unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let server = server();
        if let Ok(mut admin) = PgConnection::establish(&with_database(&server.base_url, "postgres"))
        {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin);
        }
    }
}

/// Settings for a test app: any free port, one worker.
pub fn test_settings() -> Settings {
    let mut settings = Settings::default();
    settings.server.bind = "127.0.0.1:0".into();
    settings.server.workers = 1;
    settings.server.shutdown_timeout_s = 5;
    settings.database.connect_timeout_s = 2;
    // Tests run jobs when they mean to; the scheduler has a test of its own.
    settings.jobs.enabled = false;
    // Tests capture mpv sockets of their own, not the machine's.
    settings.mpv.socket_dirs.clear();
    settings
}

/// `test_settings` pointed at `db`.
pub fn settings_for(db: &TestDb) -> Settings {
    let mut settings = test_settings();
    settings.database.url = db.url.clone();
    settings
}

/// An airlog application (HTTP server, monitors, scheduler) running in this process.
pub struct Running {
    /// The port it listens on.
    pub port: u16,
    trigger: ShutdownTrigger,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Builds the application from `settings` (on `settings.database.url`) and runs it.
    pub fn start(settings: Settings) -> Running {
        let url = settings.database.url.clone();
        let app = Application::build(settings, &url).expect("build app");
        let port = app.port();
        let (trigger, shutdown) = shutdown::channel();
        Running {
            port,
            trigger,
            task: tokio::spawn(app.run_until_stopped(shutdown)),
        }
    }

    /// Stops it as a signal would and waits until it has; it must end without an error.
    pub async fn stop(self) {
        self.trigger.fire();
        self.task.await.unwrap().unwrap();
    }
}

/// A running airlog API on its own database.
pub struct TestApp {
    pub address: String,
    pub db: TestDb,
    pub client: reqwest::Client,
    running: Running,
}

impl TestApp {
    /// Starts the API with default test settings.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// Starts the API after `adjust` changed the settings.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
        let db = TestDb::new();
        let mut settings = settings_for(&db);
        adjust(&mut settings);
        let running = Running::start(settings);
        TestApp {
            address: format!("http://127.0.0.1:{}", running.port),
            db,
            client: reqwest::Client::new(),
            running,
        }
    }

    /// An absolute URL on this app; an absolute URL (a `next` link) is taken as it is.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{}", self.address, path)
        }
    }

    /// Creates a token with these scopes and returns its secret.
    pub fn token(&self, scopes: &[Scope]) -> String {
        token_in(&self.db, scopes)
    }

    /// Creates a token with the admin scope and returns its secret.
    pub fn admin_token(&self) -> String {
        self.token(&[Scope::Admin])
    }

    /// A request to `path` (or an absolute URL), carrying `token` when there is one.
    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let req = self.client.request(method, self.url(path));
        match token {
            Some(token) => req.header("Authorization", format!("Token {token}")),
            None => req,
        }
    }

    /// GET with a token: the status and the JSON body.
    pub async fn get_json(&self, path: &str, token: &str) -> (u16, Value) {
        json_of(self.request(Method::GET, path, Some(token))).await
    }

    /// GET with a token that must answer 200: the JSON body.
    pub async fn get_ok(&self, path: &str, token: &str) -> Value {
        let (status, body) = self.get_json(path, token).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// GET with a token: the status and the body as text.
    pub async fn get_text(&self, path: &str, token: &str) -> (u16, String) {
        let res = self
            .request(Method::GET, path, Some(token))
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }

    /// The text of `/metrics` (no token needed).
    pub async fn metrics(&self) -> String {
        let res = self
            .request(Method::GET, "/metrics", None)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.text().await.unwrap()
    }

    /// POST `body` as JSON with a token: the status and the JSON body.
    pub async fn post_json(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        json_of(self.request(Method::POST, path, Some(token)).json(body)).await
    }

    /// PUT `body` as JSON with a token: the status and the JSON body.
    pub async fn put_json(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        json_of(self.request(Method::PUT, path, Some(token)).json(body)).await
    }

    /// Stops the app as a signal would, waiting for requests in flight.
    pub async fn stop(self) {
        self.running.stop().await;
    }
}

/// Sends `req`: the status and the JSON body (`Null` for an empty body; any other body that is
/// not JSON fails the test).
pub async fn json_of(req: RequestBuilder) -> (u16, Value) {
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    if text.is_empty() {
        return (status, Value::Null);
    }
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{status}: the body is not JSON ({e}): {text:?}"));
    (status, body)
}

/// The fields an error answer's details name, in order.
pub fn error_fields(body: &Value) -> Vec<&str> {
    body["details"]
        .as_array()
        .unwrap_or_else(|| panic!("no details: {body}"))
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect()
}

/// An instant written in RFC 3339 (`2024-05-01T10:00:00Z`).
pub fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s:?}: {e}"))
        .with_timezone(&Utc)
}

/// Seconds since the Unix epoch, to the microsecond, as mpv and the play tables count them.
pub fn epoch_secs(t: DateTime<Utc>) -> f64 {
    t.timestamp_micros() as f64 / 1e6
}

/// A TCP port free at the time of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `GET /healthz` on `addr` (`host:port`) with a bare HTTP/1.0 request until it answers
/// 200 (no client runtime needed).
pub fn wait_healthy(addr: &str, within: Duration) -> bool {
    use std::io::Read;
    let started = Instant::now();
    while started.elapsed() < within {
        if let Ok(mut stream) = std::net::TcpStream::connect(addr) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = write!(stream, "GET /healthz HTTP/1.0\r\nHost: {addr}\r\n\r\n");
            let mut reply = String::new();
            let _ = stream.read_to_string(&mut reply);
            if reply.starts_with("HTTP/1.1 200") || reply.starts_with("HTTP/1.0 200") {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// Creates a token with these scopes in `db` and returns its secret.
pub fn token_in(db: &TestDb, scopes: &[Scope]) -> String {
    let t = generate_token().unwrap();
    let name = format!("test-{}", &t.prefix);
    tokens::insert(
        &mut db.conn(),
        &tokens::NewToken {
            name: &name,
            prefix: &t.prefix,
            hash: &t.hash,
            scopes: scopes.iter().map(|s| s.as_str().to_string()).collect(),
        },
    )
    .unwrap();
    t.secret
}

/// Runs the airlog binary with these arguments and environment; returns (status, stdout, stderr).
pub fn airlog_cmd(args: &[&str], env: &[(&str, &str)], cwd: &Path) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_airlog"));
    cmd.args(args)
        .current_dir(cwd)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.stdin(Stdio::null()).output().expect("run airlog");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `airlog serve` as a child process on `db`, listening on `port`, logging to `log`, with jobs
/// and mpv capture off and these extra variables; returns once it answers `/healthz`.
pub fn airlog_serve(
    db: &TestDb,
    dir: &Path,
    port: u16,
    log: &Path,
    env: &[(&str, &str)],
) -> std::process::Child {
    let out = std::fs::File::create(log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_airlog"))
        .arg("serve")
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env("AIRLOG_DATABASE__URL", &db.url)
        .env("AIRLOG_SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("AIRLOG_JOBS__ENABLED", "false")
        .env("AIRLOG_MPV__SOCKET_DIRS", "[]")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("start airlog serve");
    assert!(
        wait_healthy(&format!("127.0.0.1:{port}"), Duration::from_secs(60)),
        "airlog serve did not answer: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
    child
}

/// Runs `cmd` to its end, which must be a success; its standard output.
pub fn stdout_ok(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{:?}: {e}", cmd.get_program()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{:?} failed: {stdout}{}",
        cmd.get_program(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
    path
}

/// `<dir>/<name>.ogg`: a sine tone of `seconds`, tagged with title `name` (sox, from make deps).
pub fn tone(dir: &Path, name: &str, seconds: u32) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.ogg"));
    let status = Command::new("sox")
        .args([
            "-q",
            "-D",
            "-n",
            "--comment",
            &format!("title={name}"),
            "--comment",
            "artist=Test Artist",
        ])
        .arg(&path)
        .args(["synth", &seconds.to_string(), "sine", "440"])
        .status()
        .expect("sox is installed (make deps)");
    assert!(status.success());
    path
}

/// The command of a headless, idle mpv serving its IPC on `socket`, silent; add options or
/// files before spawning it.
pub fn mpv_command(socket: &Path) -> Command {
    let mut cmd = Command::new("mpv");
    cmd.args([
        "--no-config",
        "--idle=yes",
        "--ao=null",
        "--vo=null",
        "--no-terminal",
    ])
    .arg(format!("--input-ipc-server={}", socket.display()))
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    cmd
}

/// A headless, idle mpv serving its IPC on `socket` (mpv from make deps).
pub fn start_mpv(socket: &Path) -> std::process::Child {
    let child = mpv_command(socket)
        .spawn()
        .expect("mpv is installed (make deps)");
    let started = Instant::now();
    while !socket.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "mpv did not open its socket"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// airlog's capture of the mpv at `socket`, running until the trigger fires (or mpv goes).
pub fn capture_mpv(
    pool: &DbPool,
    socket: &Path,
    opts: CaptureOptions,
) -> (ShutdownTrigger, JoinHandle<anyhow::Result<()>>) {
    let (trigger, stop) = shutdown::channel();
    let task = tokio::spawn(airlog::monitor::mpv::capture::capture(
        pool.clone(),
        socket.to_path_buf(),
        opts,
        stop,
    ));
    (trigger, task)
}

/// airlog's watcher of the mpv sockets in `dir` (rescanned every `rescan`, dead sockets
/// removed when `remove_dead`), running until the trigger fires.
pub fn watch_mpv(
    pool: &DbPool,
    dir: &Path,
    rescan: Duration,
    remove_dead: bool,
    opts: CaptureOptions,
) -> (ShutdownTrigger, JoinHandle<()>) {
    let (trigger, stop) = shutdown::channel();
    let task = tokio::spawn(airlog::monitor::mpv::capture::watch(
        pool.clone(),
        vec![dir.to_path_buf()],
        rescan,
        remove_dead,
        opts,
        stop,
    ));
    (trigger, task)
}

/// A station row with the shipped script's queue and output ids, polled every 200 ms; tests
/// change what they need with `StationRow { .., ..station_row(..) }`.
pub fn station_row(name: &str, streamer: &str, endpoint: String) -> StationRow {
    StationRow {
        id: 0,
        name: name.into(),
        time_zone: "UTC".into(),
        streamer: streamer.parse().unwrap(),
        endpoint,
        queue_id: "airlog_queue".into(),
        output_id: "airlog_out".into(),
        playlist_dir: String::new(),
        poll_ms: 200,
        cancel_timeout_s: 1200,
    }
}
