//! The private PostgreSQL cluster airlog runs when no `DATABASE_URL` is given.
//!
//! It lives in `<data dir>/pg` (`data/` is the cluster, `run/` its Unix socket, `postgres.log`
//! the server log), listens on the Unix socket only, and trusts local connections because the
//! socket is private to the cluster's owner (mode 0700). As root it runs as the `postgres`
//! system user, since `initdb` and `postgres` refuse to run as root.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{bail, Context};
use diesel::{Connection, PgConnection, RunQueryDsl};

/// The superuser and database the private cluster is created with.
pub const CLUSTER_USER: &str = "airlog";
/// The database airlog uses inside the private cluster.
pub const CLUSTER_DATABASE: &str = "airlog";
/// The port only names the socket file (`.s.PGSQL.5432`); nothing listens on TCP.
const SOCKET_PORT: u16 = 5432;
/// The system user the cluster runs as when airlog runs as root.
const UNPRIVILEGED_USER: &str = "postgres";
/// Longest Unix socket path the kernel accepts (`sun_path` is 108 bytes with the NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Where the PostgreSQL server programs are.
#[derive(Debug, Clone)]
pub struct PgBinaries {
    pub bindir: PathBuf,
}

impl PgBinaries {
    /// Finds `initdb`, `pg_ctl` and `postgres`: on PATH, then via `pg_config --bindir`, then
    /// under `/usr/lib/postgresql/*/bin` (newest version first).
    pub fn discover() -> anyhow::Result<PgBinaries> {
        let complete = |dir: &Path| {
            ["initdb", "pg_ctl", "postgres"]
                .iter()
                .all(|b| dir.join(b).is_file())
        };
        if let Some(path) = std::env::var_os("PATH") {
            for dir in std::env::split_paths(&path) {
                let initdb = dir.join("initdb");
                if initdb.is_file() {
                    // Debian links single programs into /usr/local/bin; follow to the real bindir.
                    let real = std::fs::canonicalize(&initdb).unwrap_or(initdb);
                    if let Some(parent) = real.parent().filter(|d| complete(d)) {
                        return Ok(PgBinaries {
                            bindir: parent.to_path_buf(),
                        });
                    }
                }
            }
        }
        if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if out.status.success() && complete(&dir) {
                return Ok(PgBinaries { bindir: dir });
            }
        }
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let version = e.file_name().to_str()?.parse::<u32>().ok()?;
                let bin = e.path().join("bin");
                complete(&bin).then_some((version, bin))
            })
            .collect();
        versions.sort();
        if let Some((_, bindir)) = versions.pop() {
            return Ok(PgBinaries { bindir });
        }
        bail!(
            "no PostgreSQL server programs found (looked for initdb on PATH, in `pg_config --bindir` \
             and under /usr/lib/postgresql/*/bin): install them with `apt-get install postgresql`, \
             or set DATABASE_URL to use an existing server"
        )
    }

    fn program(&self, name: &str) -> PathBuf {
        self.bindir.join(name)
    }
}

/// What `status` found in the cluster directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterState {
    /// No cluster was created yet.
    Absent,
    /// Created but not running.
    Stopped,
    /// A postmaster.pid names a process that is not this cluster's server (a crash left it).
    Stale { pid: i32 },
    /// The server runs with this process id.
    Running { pid: i32 },
}

/// Whether `start` found the server running or started it; only the starter stops it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    ByUs,
    AlreadyRunning,
}

/// One airlog process's use of the private cluster: a file under `<root>/airlog-users/`
/// locked (flock) for as long as the process lives, so even a kill -9 releases it.
#[derive(Debug)]
pub struct Membership {
    file: std::fs::File,
    path: PathBuf,
}

/// Takes an flock on `file`; false when another open file holds it.
fn try_flock(file: &std::fs::File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is valid for the life of `file`.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// A private cluster rooted at one directory.
#[derive(Debug, Clone)]
pub struct Cluster {
    root: PathBuf,
    bins: PgBinaries,
    run_as: Option<SystemUser>,
    extra_conf: String,
}

#[derive(Debug, Clone)]
struct SystemUser {
    name: String,
    uid: u32,
    gid: u32,
}

impl Cluster {
    /// A cluster in `root` (created on first `start`). Fails when no server programs exist or,
    /// as root, when there is no `postgres` user to run them as.
    pub fn new(root: impl Into<PathBuf>) -> anyhow::Result<Cluster> {
        let root = absolute(root.into())?;
        let bins = PgBinaries::discover()?;
        // SAFETY: geteuid has no preconditions.
        let run_as = if unsafe { libc::geteuid() } == 0 {
            Some(lookup_user(UNPRIVILEGED_USER).with_context(|| {
                format!(
                    "airlog runs as root, and PostgreSQL refuses to: a `{UNPRIVILEGED_USER}` \
                     system user is needed to run the private cluster (apt-get install postgresql \
                     creates it)"
                )
            })?)
        } else {
            None
        };
        let cluster = Cluster {
            root,
            bins,
            run_as,
            extra_conf: String::new(),
        };
        let socket = cluster.socket_dir().join(format!(".s.PGSQL.{SOCKET_PORT}"));
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            bail!(
                "the data directory path is too long for a Unix socket ({} is over {MAX_SOCKET_PATH} \
                 bytes): choose a shorter data directory",
                socket.display()
            );
        }
        Ok(cluster)
    }

    /// Adds lines to the server configuration (the test harness turns fsync off with it).
    pub fn with_extra_conf(mut self, conf: &str) -> Cluster {
        self.extra_conf = conf.to_string();
        self
    }

    /// The cluster directory (`<data dir>/pg`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// The directory holding the server's Unix socket.
    pub fn socket_dir(&self) -> PathBuf {
        self.root.join("run")
    }

    fn log_file(&self) -> PathBuf {
        self.root.join("postgres.log")
    }

    /// The libpq URL of a database in this cluster.
    pub fn url_for(&self, database: &str) -> String {
        format!(
            "postgresql:///{database}?host={}&port={SOCKET_PORT}&user={CLUSTER_USER}",
            percent_encode(&self.socket_dir().to_string_lossy())
        )
    }

    /// The libpq URL of airlog's database in this cluster.
    pub fn url(&self) -> String {
        self.url_for(CLUSTER_DATABASE)
    }

    /// What state the cluster is in.
    pub fn status(&self) -> ClusterState {
        if !self.data_dir().join("PG_VERSION").is_file() {
            return ClusterState::Absent;
        }
        let pid_file = self.data_dir().join("postmaster.pid");
        let Ok(text) = std::fs::read_to_string(&pid_file) else {
            return ClusterState::Stopped;
        };
        let Some(pid) = text
            .lines()
            .next()
            .and_then(|l| l.trim().parse::<i32>().ok())
        else {
            return ClusterState::Stale { pid: 0 };
        };
        if self.is_our_postmaster(pid) {
            ClusterState::Running { pid }
        } else {
            ClusterState::Stale { pid }
        }
    }

    /// True when `pid` is a live `postgres` process serving this data directory. A bare
    /// `kill(pid, 0)` is not enough: after a crash and reboot the number may belong to anyone.
    fn is_our_postmaster(&self, pid: i32) -> bool {
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            return false;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let is_postgres = args
            .first()
            .map(|a| a.ends_with("postgres") || a.ends_with("postmaster"))
            .unwrap_or(false);
        let data = self.data_dir();
        is_postgres && args.iter().any(|a| Path::new(a) == data)
    }

    /// Creates the cluster if needed and starts it unless it already runs. A stale
    /// postmaster.pid from a crash is removed first.
    pub fn start(&self) -> anyhow::Result<Started> {
        self.init_if_absent()?;
        match self.status() {
            ClusterState::Running { pid } => {
                tracing::info!(pid, dir = %self.root.display(), "private PostgreSQL cluster already running, reusing it");
                self.ensure_database()?;
                return Ok(Started::AlreadyRunning);
            }
            ClusterState::Stale { pid } => {
                tracing::warn!(pid, dir = %self.root.display(), "removing stale postmaster.pid left by a crash");
                self.remove_stale_files()?;
            }
            ClusterState::Stopped | ClusterState::Absent => {}
        }
        self.write_conf()?;
        let out = self.run(
            &self.bins.program("pg_ctl"),
            &[
                "-D".as_ref(),
                self.data_dir().as_os_str(),
                "-l".as_ref(),
                self.log_file().as_os_str(),
                "-w".as_ref(),
                "-t".as_ref(),
                "60".as_ref(),
                "start".as_ref(),
            ],
        )?;
        if !out.status.success() {
            bail!(
                "the private PostgreSQL cluster in {} did not start: {}{}",
                self.root.display(),
                failure_text(&out),
                self.log_tail()
            );
        }
        tracing::info!(dir = %self.root.display(), "private PostgreSQL cluster started");
        self.ensure_database()?;
        Ok(Started::ByUs)
    }

    fn users_dir(&self) -> PathBuf {
        self.root.join("airlog-users")
    }

    /// Present while the server runs because an airlog process started it (not `db start`):
    /// the last airlog out stops it then.
    fn started_by_airlog(&self) -> PathBuf {
        self.root.join("airlog-started")
    }

    /// Runs `f` while holding the lock that orders joins and leaves, so a process leaving never
    /// stops the server under one that is joining.
    fn exclusively<T>(&self, f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
        use std::os::fd::AsRawFd;
        std::fs::create_dir_all(&self.root)
            .with_context(|| format!("cannot create {}", self.root.display()))?;
        let path = self.root.join("airlog-users.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        // SAFETY: the descriptor is valid for the life of `lock`; it is unlocked when closed.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            bail!("cannot lock {}", path.display());
        }
        f()
    }

    /// Starts the server if needed and registers this process as a user of it: it stays up
    /// while any airlog uses it, whoever started it, and whoever was killed.
    pub fn join(&self) -> anyhow::Result<Membership> {
        self.exclusively(|| {
            if self.start()? == Started::ByUs {
                std::fs::write(self.started_by_airlog(), std::process::id().to_string())?;
            }
            let dir = self.users_dir();
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let path = dir.join(std::process::id().to_string());
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .open(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            if !try_flock(&file) {
                bail!("{} is locked by another process", path.display());
            }
            Ok(Membership { file, path })
        })
    }

    /// The airlog processes alive that use the cluster (files of dead ones are removed).
    fn live_users(&self) -> usize {
        let Ok(entries) = std::fs::read_dir(self.users_dir()) else {
            return 0;
        };
        let mut live = 0;
        for entry in entries.flatten() {
            let Ok(file) = std::fs::OpenOptions::new().write(true).open(entry.path()) else {
                continue;
            };
            if try_flock(&file) {
                // Its process is gone (a kill -9 leaves the file, never the lock).
                let _ = std::fs::remove_file(entry.path());
            } else {
                live += 1;
            }
        }
        live
    }

    /// Unregisters this process. The last airlog out stops the server if an airlog started it
    /// (a server started by hand with `db start` stays up). Returns true when it stopped it.
    pub fn leave(&self, membership: Membership) -> anyhow::Result<bool> {
        self.exclusively(|| {
            let Membership { file, path } = membership;
            let _ = std::fs::remove_file(&path);
            drop(file);
            let others = self.live_users();
            if others > 0 {
                tracing::info!(
                    others,
                    "other airlog processes use the private PostgreSQL cluster; leaving it running"
                );
                return Ok(false);
            }
            if !self.started_by_airlog().exists() {
                return Ok(false);
            }
            self.stop()?;
            let _ = std::fs::remove_file(self.started_by_airlog());
            Ok(true)
        })
    }

    /// Stops the server (fast shutdown: open sessions are ended, data is flushed).
    pub fn stop(&self) -> anyhow::Result<()> {
        if !matches!(self.status(), ClusterState::Running { .. }) {
            return Ok(());
        }
        let out = self.run(
            &self.bins.program("pg_ctl"),
            &[
                "-D".as_ref(),
                self.data_dir().as_os_str(),
                "-m".as_ref(),
                "fast".as_ref(),
                "-w".as_ref(),
                "stop".as_ref(),
            ],
        )?;
        if !out.status.success() {
            bail!(
                "the private PostgreSQL cluster did not stop: {}",
                failure_text(&out)
            );
        }
        tracing::info!(dir = %self.root.display(), "private PostgreSQL cluster stopped");
        let _ = std::fs::remove_file(self.started_by_airlog());
        Ok(())
    }

    /// The shell command that stops this cluster; the test harness leaves it to a watchdog.
    pub fn stop_command(&self) -> Command {
        let mut cmd = self.command(&self.bins.program("pg_ctl"));
        cmd.arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "stop"]);
        cmd
    }

    fn init_if_absent(&self) -> anyhow::Result<()> {
        if self.status() != ClusterState::Absent {
            return Ok(());
        }
        std::fs::create_dir_all(&self.root)
            .with_context(|| format!("cannot create {}", self.root.display()))?;
        std::fs::create_dir_all(self.socket_dir())?;
        if let Some(user) = &self.run_as {
            for dir in [self.root.clone(), self.socket_dir()] {
                std::os::unix::fs::chown(&dir, Some(user.uid), Some(user.gid)).with_context(
                    || format!("cannot hand {} to the {} user", dir.display(), user.name),
                )?;
            }
            // initdb's error for an unreachable parent is cryptic; say it plainly.
            let probe = self
                .command(Path::new("test"))
                .arg("-w")
                .arg(&self.root)
                .status()?;
            if !probe.success() {
                bail!(
                    "the {} user cannot reach {} (is a parent directory private?): choose a data \
                     directory it can enter",
                    user.name,
                    self.root.display()
                );
            }
        }
        tracing::info!(dir = %self.root.display(), "creating the private PostgreSQL cluster");
        let out = self.run(
            &self.bins.program("initdb"),
            &[
                "-D".as_ref(),
                self.data_dir().as_os_str(),
                "-U".as_ref(),
                CLUSTER_USER.as_ref(),
                "--auth=trust".as_ref(),
                "--encoding=UTF8".as_ref(),
                "--no-locale".as_ref(),
            ],
        )?;
        if !out.status.success() {
            // Leave no half-made cluster behind, or the next start would think it exists.
            let _ = std::fs::remove_dir_all(self.data_dir());
            bail!(
                "initdb failed in {}: {}",
                self.root.display(),
                failure_text(&out)
            );
        }
        let conf = self.data_dir().join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf)?;
        text.push_str(
            "\n# Settings written by airlog at every start.\ninclude_if_exists = 'airlog.conf'\n",
        );
        std::fs::write(&conf, text)?;
        Ok(())
    }

    /// Rewritten at every start so a moved data directory still finds its socket.
    fn write_conf(&self) -> anyhow::Result<()> {
        let conf = format!(
            "# Written by airlog; edits are lost at the next start.\n\
             listen_addresses = ''\n\
             port = {SOCKET_PORT}\n\
             unix_socket_directories = '{}'\n\
             unix_socket_permissions = 0700\n\
             {}\n",
            self.socket_dir().display().to_string().replace('\'', "''"),
            self.extra_conf
        );
        let path = self.data_dir().join("airlog.conf");
        std::fs::write(&path, conf).with_context(|| format!("cannot write {}", path.display()))?;
        if let Some(user) = &self.run_as {
            std::os::unix::fs::chown(&path, Some(user.uid), Some(user.gid))?;
        }
        Ok(())
    }

    fn remove_stale_files(&self) -> anyhow::Result<()> {
        let pid_file = self.data_dir().join("postmaster.pid");
        std::fs::remove_file(&pid_file)
            .with_context(|| format!("cannot remove stale {}", pid_file.display()))?;
        for name in [
            format!(".s.PGSQL.{SOCKET_PORT}"),
            format!(".s.PGSQL.{SOCKET_PORT}.lock"),
        ] {
            let _ = std::fs::remove_file(self.socket_dir().join(name));
        }
        Ok(())
    }

    fn ensure_database(&self) -> anyhow::Result<()> {
        let mut conn = PgConnection::establish(&self.url_for("postgres"))
            .context("cannot connect to the private PostgreSQL cluster")?;
        let exists: i64 = diesel::dsl::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "count(*) FROM pg_database WHERE datname = 'airlog'",
        ))
        .get_result(&mut conn)?;
        if exists == 0 {
            diesel::sql_query(format!("CREATE DATABASE {CLUSTER_DATABASE}")).execute(&mut conn)?;
        }
        Ok(())
    }

    fn command(&self, program: &Path) -> Command {
        match &self.run_as {
            Some(user) => {
                let mut cmd = Command::new("runuser");
                cmd.args(["-u", &user.name, "--"]).arg(program);
                cmd
            }
            None => Command::new(program),
        }
    }

    fn run(&self, program: &Path, args: &[&std::ffi::OsStr]) -> anyhow::Result<Output> {
        let mut cmd = self.command(program);
        cmd.args(args);
        // pg_ctl's server inherits our stdio unless told otherwise; keep it off our terminal.
        cmd.stdin(std::process::Stdio::null());
        cmd.output()
            .with_context(|| format!("cannot run {}", program.display()))
    }

    fn log_tail(&self) -> String {
        let Ok(text) = std::fs::read_to_string(self.log_file()) else {
            return String::new();
        };
        let tail: Vec<&str> = text.lines().rev().take(5).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!(
            " (server log {}: {})",
            self.log_file().display(),
            tail.join(" | ")
        )
    }
}

fn failure_text(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let text = if stderr.trim().is_empty() {
        stdout
    } else {
        stderr
    };
    text.trim().lines().collect::<Vec<_>>().join(" | ")
}

fn absolute(path: PathBuf) -> anyhow::Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path);
    }
    Ok(std::env::current_dir()?.join(path))
}

fn lookup_user(name: &str) -> anyhow::Result<SystemUser> {
    let cname = CString::new(name)?;
    // SAFETY: getpwnam returns NULL or a pointer to static storage, read at once.
    let pw = unsafe { libc::getpwnam(cname.as_ptr()) };
    if pw.is_null() {
        bail!("no system user named {name}");
    }
    // SAFETY: checked non-null above.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    Ok(SystemUser {
        name: name.to_string(),
        uid,
        gid,
    })
}

/// Enough percent-encoding for a socket directory in a libpq URL.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'.' | b'_' | b'-' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_paths_are_percent_encoded() {
        assert_eq!(percent_encode("/var/my data/pg"), "/var/my%20data/pg");
        assert_eq!(percent_encode("/a&b=c"), "/a%26b%3Dc");
    }
}
