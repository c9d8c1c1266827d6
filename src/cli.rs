//! The command line: `airlog serve`, `migrate`, `token ...`, `db ...`.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use diesel::{Connection, PgConnection};

use crate::app::Application;
use crate::auth::{self, Scope};
use crate::config::Settings;
use crate::db::cluster::{Cluster, ClusterState};
use crate::db::{self, tokens, Database};

/// airlog: the as-run log and listener statistics of a radio station.
///
/// Settings come from airlog.toml (or --config), then AIRLOG_* environment variables
/// (AIRLOG_SERVER__BIND for server.bind), then flags. Without DATABASE_URL airlog runs a
/// private PostgreSQL cluster under <data dir>/pg.
#[derive(Debug, Parser)]
#[command(name = "airlog", version, propagate_version = true)]
pub struct Cli {
    /// Configuration file [default: ./airlog.toml when it exists]
    #[arg(long, global = true, env = "AIRLOG_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Data directory (overrides data_dir)
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API, playout monitors and job scheduler until SIGINT/SIGTERM
    Serve(ServeArgs),
    /// Apply pending database migrations and list them (serve does this at start too)
    Migrate,
    /// Create, list and revoke API tokens
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage the private PostgreSQL cluster by hand (for psql users)
    #[command(subcommand)]
    Db(DbCommand),
    /// Run the player-event jobs by hand, list their runs, or backfill past days
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Manage the catalogue of sounds
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Follow an access log (like tail -F) and send its listeners as stream events, exactly once
    Ship(ShipArgs),
    /// mpv play history
    #[command(subcommand)]
    Mpv(MpvCommand),
    /// Send old access log files as stream events in one go
    ImportLog(ImportArgs),
    /// Print the API's OpenAPI 3.1 document (what `/api/v1/openapi.json` serves)
    Openapi,
}

#[derive(Debug, Subcommand)]
pub enum MpvCommand {
    /// Print the plays in mpv-history-daemon JSON files (plain or merged) as JSON, in the shape
    /// `mpv-history-daemon parse` prints
    Parse {
        /// Keep plays the default rule drops (under 10 minutes: 75 % heard; else a minute)
        #[arg(long)]
        all_events: bool,
        /// mpv-history-daemon JSON files
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Store the plays of mpv-history-daemon JSON files (plain or merged); importing twice adds
    /// nothing
    Import {
        /// mpv-history-daemon JSON files
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// Where and how to send events.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// Log format: nginx-hls (deploy/nginx/hls.conf), nginx-combined or icecast
    #[arg(long, value_enum)]
    pub format: crate::ship::parse::Format,
    /// The ingest endpoint, e.g. http://127.0.0.1:8080/api/v1/stats/ingest/stream-events/
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// File holding an API token with the ingest scope
    #[arg(long, value_name = "FILE")]
    pub token_file: PathBuf,
    /// Events per request
    #[arg(long, default_value_t = 1000)]
    pub batch_size: usize,
    /// HLS: a listener's session ends after this many seconds without a request
    /// (2 x segment length + slack)
    #[arg(long, default_value_t = 20.0)]
    pub session_gap: f64,
    /// HLS: how many seconds out of time order log lines may come (nginx workers flush their
    /// buffers at different times); a session is closed only after gap + this much log time
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    pub max_disorder: f64,
    /// A user-agent substring that is a listener even if the known-robot list matches it
    /// (repeatable; listening apps such as okhttp, ExoPlayer, AppleCoreMedia, VLC and Lavf are
    /// allowed already)
    #[arg(long, value_name = "TEXT")]
    pub bot_allow: Vec<String>,
    /// A user-agent substring that is never a listener (repeatable; wins over --bot-allow)
    #[arg(long, value_name = "TEXT")]
    pub bot_deny: Vec<String>,
    /// Write the shipper's counters here in Prometheus text format after each batch
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ShipArgs {
    /// The access log to follow (rotation by rename or copytruncate is followed)
    #[arg(long, value_name = "FILE")]
    pub log: PathBuf,
    /// Where the acknowledged position and open sessions are kept [default: <log>.airlog-ship]
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Longest wait, in seconds, before a partial batch is sent
    #[arg(long, default_value_t = 2.0)]
    pub max_delay: f64,
    /// After a rename rotation, the renamed log is still read (alongside the new one) until
    /// nothing was written to it for this many seconds: nginx writes there until it reopens
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    pub rotate_grace: f64,
    #[command(flatten)]
    pub send: SendArgs,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Log files, oldest first
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub send: SendArgs,
}

fn ship_options(send: &SendArgs, max_delay: f64) -> anyhow::Result<crate::ship::ShipOptions> {
    let token = std::fs::read_to_string(&send.token_file)
        .with_context(|| format!("cannot read the token file {}", send.token_file.display()))?
        .trim()
        .to_string();
    if token.is_empty() {
        bail!("the token file {} is empty", send.token_file.display());
    }
    if !send.to.starts_with("http://") && !send.to.starts_with("https://") {
        bail!("--to must be an http:// or https:// URL, got {:?}", send.to);
    }
    if send.batch_size == 0 || send.batch_size > 10_000 {
        bail!("--batch-size must be 1 to 10000");
    }
    if !(send.max_disorder.is_finite() && (0.0..=600.0).contains(&send.max_disorder)) {
        bail!("--max-disorder must be 0 to 600 seconds");
    }
    let gap_ok = send.session_gap.is_finite() && send.session_gap > 0.0;
    let delay_ok = max_delay.is_finite() && max_delay >= 0.0;
    if !gap_ok || !delay_ok {
        bail!("--session-gap and --max-delay must be positive numbers of seconds");
    }
    Ok(crate::ship::ShipOptions {
        format: send.format,
        to: send.to.clone(),
        token,
        batch_size: send.batch_size,
        max_delay: std::time::Duration::from_secs_f64(max_delay),
        session_gap: std::time::Duration::from_secs_f64(send.session_gap),
        max_disorder: std::time::Duration::from_secs_f64(send.max_disorder),
        bot_allow: send.bot_allow.clone(),
        bot_deny: send.bot_deny.clone(),
        metrics_file: send.metrics_file.clone(),
        rotate_grace: std::time::Duration::from_secs(30),
    })
}

fn ship_command(args: ShipArgs) -> anyhow::Result<()> {
    let mut opts = ship_options(&args.send, args.max_delay)?;
    if !(args.rotate_grace.is_finite() && (0.0..=86_400.0).contains(&args.rotate_grace)) {
        bail!("--rotate-grace must be 0 to 86400 seconds");
    }
    opts.rotate_grace = std::time::Duration::from_secs_f64(args.rotate_grace);
    let state = args.state.clone().unwrap_or_else(|| {
        let mut name = args.log.clone().into_os_string();
        name.push(".airlog-ship");
        PathBuf::from(name)
    });
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let (trigger, shutdown) = crate::shutdown::channel();
        tokio::spawn(crate::shutdown::on_signals(trigger));
        let c = crate::ship::ship(&args.log, &state, &opts, shutdown).await?;
        eprintln!(
            "shipped {} events ({} new, {} duplicates) from {} lines",
            c.events_sent, c.events_created, c.events_duplicate, c.lines
        );
        Ok(())
    })
}

fn import_command(args: ImportArgs) -> anyhow::Result<()> {
    let opts = ship_options(&args.send, 0.0)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let (trigger, shutdown) = crate::shutdown::channel();
        tokio::spawn(crate::shutdown::on_signals(trigger));
        let bar = indicatif::ProgressBar::new(0).with_style(
            indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} ({eta} left)").expect("valid template"),
        );
        let c = crate::ship::import(&args.files, &opts, &bar, shutdown).await?;
        let skipped: u64 = c.skipped.values().sum();
        println!(
            "{} lines: {} events sent ({} new, {} duplicates, {} dropped), {} skipped by the audience rules, {} unparsable, {} cleaned",
            c.lines, c.events_sent, c.events_created, c.events_duplicate, c.dropped_total(), skipped, c.unparsable, c.cleaned
        );
        for (reason, n) in &c.dropped {
            println!("  dropped {n}: {reason}");
        }
        Ok(())
    })
}

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Register the audio files under DIR as sounds (duration and tags read from the files);
    /// running it again updates them
    Scan {
        /// Directory to walk (recursively)
        dir: PathBuf,
        /// Sound type: archive (whole shows), excerpt or other
        #[arg(long = "type", default_value = "other", value_parser = ["archive", "excerpt", "other"])]
        sound_type: String,
        /// Programme the sounds belong to (each programme gets a playlist file)
        #[arg(long, default_value = "")]
        program: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Run one job now (or `all` of them in order) over the look-back window or --from/--to
    Run {
        /// close-by-next-event, close-by-max-duration, fix-durations, sessions, or all
        name: String,
        /// Start of the window of event times (default: now - jobs.lookback_s - gap)
        #[arg(long, value_parser = parse_cli_time)]
        from: Option<chrono::DateTime<chrono::Utc>>,
        /// End of the window (default: now)
        #[arg(long, value_parser = parse_cli_time)]
        to: Option<chrono::DateTime<chrono::Utc>>,
        /// For `sessions`: recompute every session, not only those of changed listeners
        #[arg(long)]
        full: bool,
    },
    /// Show the latest job runs (the audit trail)
    List {
        /// How many runs
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Run the cleanup jobs day by day over past broadcast days, then the sessions
    Backfill {
        /// First broadcast day, YYYY-MM-DD (days start at station.day_start_hour, station time)
        #[arg(long)]
        from: chrono::NaiveDate,
        /// Last broadcast day, YYYY-MM-DD (included)
        #[arg(long)]
        to: chrono::NaiveDate,
    },
}

fn parse_cli_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    crate::domain::time::parse_time_str(s)
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on, host:port (overrides server.bind)
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it once; only its hash is stored
    Create {
        /// A name that says who uses the token, e.g. "nginx-shipper"
        #[arg(long)]
        name: String,
        /// What the token may do; repeat for several (admin implies the others)
        #[arg(long = "scope", value_enum, required = true)]
        scopes: Vec<Scope>,
    },
    /// List tokens (names, prefixes, scopes, last use; never secrets)
    List,
    /// Revoke the active token with this name
    Revoke {
        /// The token's name
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Create (first time) and start the private cluster, and leave it running
    Start,
    /// Stop the private cluster
    Stop,
    /// Say whether the private cluster exists and runs
    Status,
    /// Print the database URL, e.g. for `psql "$(airlog db url)"`
    Url,
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let mut settings = Settings::load(cli.config.as_deref(), env)?;
    if let Some(dir) = cli.data_dir {
        settings.data_dir = dir;
    }
    crate::telemetry::init(&settings.log);
    match cli.command {
        Command::Serve(args) => {
            if let Some(bind) = args.bind {
                settings.server.bind = bind;
            }
            serve(settings)
        }
        Command::Migrate => with_database(&settings, |url| {
            let applied = db::migrate(url)?;
            if applied.is_empty() {
                println!("database is up to date");
            }
            for name in applied {
                println!("applied {name}");
            }
            Ok(())
        }),
        Command::Token(cmd) => with_database(&settings, |url| {
            db::migrate(url)?;
            let mut conn =
                PgConnection::establish(url).context("cannot connect to the database")?;
            token_command(&mut conn, cmd)
        }),
        Command::Db(cmd) => db_command(&settings, cmd),
        Command::Ship(args) => ship_command(args),
        Command::Mpv(MpvCommand::Import { files }) => with_database(&settings, |url| {
            db::migrate(url)?;
            let mut conn =
                PgConnection::establish(url).context("cannot connect to the database")?;
            let bar = indicatif::ProgressBar::new(0).with_style(
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} files")
                    .expect("valid template"),
            );
            let (found, new) =
                crate::mpv::history::import_files(&mut conn, &files, &Default::default(), &bar)?;
            println!("{found} plays in {} files, {new} new", files.len());
            Ok(())
        }),
        Command::Mpv(MpvCommand::Parse { all_events, files }) => {
            let plays = crate::mpv::history::parse_files(&files, all_events, &Default::default())?;
            println!("{}", serde_json::to_string(&plays)?);
            Ok(())
        }
        Command::ImportLog(args) => import_command(args),
        Command::Openapi => {
            println!("{}", crate::api::openapi::document_json());
            Ok(())
        }
        Command::Catalog(CatalogCommand::Scan {
            dir,
            sound_type,
            program,
        }) => with_database(&settings, |url| {
            db::migrate(url)?;
            let mut conn =
                PgConnection::establish(url).context("cannot connect to the database")?;
            let bar = indicatif::ProgressBar::new(0).with_style(
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} files {msg}")
                    .expect("valid template"),
            );
            let done = crate::catalog::scan(&mut conn, &dir, &sound_type, &program, &bar)?;
            for (file, why) in &done.skipped {
                eprintln!("skipped {}: {why}", file.display());
            }
            println!(
                "{} sounds registered from {}, {} files skipped",
                done.registered,
                dir.display(),
                done.skipped.len()
            );
            Ok(())
        }),
        Command::Jobs(cmd) => with_database(&settings, |url| {
            db::migrate(url)?;
            let mut conn =
                PgConnection::establish(url).context("cannot connect to the database")?;
            jobs_command(&mut conn, &settings, cmd)
        }),
    }
}

fn serve(settings: Settings) -> anyhow::Result<()> {
    // Bad settings and an unusable data directory fail before anything starts.
    if settings.database_url().is_none() {
        settings.prepare_data_dir()?;
    }
    let database = Database::open(&settings)?;
    let result = (|| {
        let applied = db::migrate(&database.url)?;
        for name in &applied {
            tracing::info!(migration = name.as_str(), "migration applied");
        }
        let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
        runtime.block_on(async {
            let app = Application::build(settings, &database.url)?;
            let (trigger, shutdown) = crate::shutdown::channel();
            tokio::spawn(crate::shutdown::on_signals(trigger));
            app.run_until_stopped(shutdown).await
        })
    })();
    // The database goes last, also when serving failed (e.g. the port was taken).
    let stopped = database.shutdown();
    result.and(stopped)
}

/// Opens the database for a one-off command and closes what it opened.
fn with_database(
    settings: &Settings,
    f: impl FnOnce(&str) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let database = Database::open(settings)?;
    let result = f(&database.url);
    let stopped = database.shutdown();
    result.and(stopped)
}

fn token_command(conn: &mut PgConnection, cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Create { name, mut scopes } => {
            let name = name.trim();
            if name.is_empty() {
                bail!("--name must not be empty");
            }
            scopes.sort_by_key(|s| s.as_str());
            scopes.dedup();
            let token = auth::generate_token()?;
            let row = tokens::NewToken {
                name,
                prefix: &token.prefix,
                hash: &token.hash,
                scopes: scopes.iter().map(|s| s.as_str().to_string()).collect(),
            };
            match tokens::insert(conn, &row) {
                Ok(_) => {}
                Err(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _,
                )) => bail!(
                    "an active token named {name:?} exists; revoke it first or pick another name"
                ),
                Err(e) => return Err(e.into()),
            }
            eprintln!("token {name:?} created; it is shown once, store it now:");
            println!("{}", token.secret);
            Ok(())
        }
        TokenCommand::List => {
            let rows = tokens::list(conn)?;
            if rows.is_empty() {
                println!(
                    "no tokens; create one with `airlog token create --name NAME --scope read`"
                );
            }
            for t in rows {
                let state = match t.revoked_at {
                    Some(at) => format!("revoked {}", at.format("%Y-%m-%d %H:%M")),
                    None => "active".to_string(),
                };
                let used = t
                    .last_used_at
                    .map(|at| at.format("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_else(|| "never".into());
                println!(
                    "{:<24} {}…  scopes={:<18} created={} last_used={} {}",
                    t.name,
                    t.prefix,
                    t.scopes.join(","),
                    t.created_at.format("%Y-%m-%d %H:%M"),
                    used,
                    state
                );
            }
            Ok(())
        }
        TokenCommand::Revoke { name } => {
            if tokens::revoke(conn, &name)? == 0 {
                bail!("no active token named {name:?}");
            }
            println!("token {name:?} revoked");
            Ok(())
        }
    }
}

fn db_command(settings: &Settings, cmd: DbCommand) -> anyhow::Result<()> {
    if let Some(url) = settings.database_url() {
        if let DbCommand::Url = cmd {
            println!("{url}");
            return Ok(());
        }
        bail!("a database URL is configured (DATABASE_URL or database.url), so there is no private cluster to manage");
    }
    let cluster = Cluster::new(settings.cluster_dir())?;
    match cmd {
        DbCommand::Start => {
            settings.prepare_data_dir()?;
            cluster.start()?;
            println!("running; connect with: psql \"{}\"", cluster.url());
        }
        DbCommand::Stop => {
            cluster.stop()?;
            println!("stopped");
        }
        DbCommand::Status => match cluster.status() {
            ClusterState::Absent => println!(
                "no cluster yet in {} (airlog serve or airlog db start creates it)",
                cluster.root().display()
            ),
            ClusterState::Stopped => println!("stopped ({})", cluster.root().display()),
            ClusterState::Stale { pid } => println!(
                "stopped, with a stale postmaster.pid (pid {pid}) that the next start removes"
            ),
            ClusterState::Running { pid } => println!("running (pid {pid}); {}", cluster.url()),
        },
        DbCommand::Url => println!("{}", cluster.url()),
    }
    Ok(())
}

fn jobs_command(
    conn: &mut PgConnection,
    settings: &Settings,
    cmd: JobsCommand,
) -> anyhow::Result<()> {
    use crate::jobs::{self, Job, Trigger, Window};
    let js = &settings.jobs;
    match cmd {
        JobsCommand::Run {
            name,
            from,
            to,
            full,
        } => {
            let now = chrono::Utc::now();
            let default = Window::lookback(now, js);
            let window = Window {
                start: from.unwrap_or(default.start),
                end: to.unwrap_or(default.end),
            };
            if window.end <= window.start {
                bail!("--to must be after --from");
            }
            let selected: Vec<Job> = if name == "all" {
                Job::ALL.to_vec()
            } else {
                vec![name.parse::<Job>().map_err(anyhow::Error::msg)?]
            };
            if full {
                if selected != [Job::Sessions] {
                    bail!("--full applies to the sessions job only");
                }
                let written = conn.transaction(|c| {
                    jobs::refresh_sessions(c, js.session_gap_s, js.session_min_s, true)
                })?;
                println!("sessions: {written} sessions written (full recomputation)");
                return Ok(());
            }
            for job in selected {
                let outcome = jobs::run(conn, job, window, now, js, Trigger::Cli)?;
                match outcome.rows_changed {
                    Some(rows) => println!("{job}: {rows} rows changed (run {})", outcome.run_id),
                    None => println!(
                        "{job}: skipped, another run is in progress (run {})",
                        outcome.run_id
                    ),
                }
            }
            Ok(())
        }
        JobsCommand::List { limit } => {
            for r in jobs::recent_runs(conn, None, limit)? {
                let state = match (&r.error, r.finished_at) {
                    (Some(e), _) => e.clone(),
                    (None, Some(_)) => format!("{} rows", r.rows_changed.unwrap_or(0)),
                    (None, None) => "running".into(),
                };
                let took = r
                    .finished_at
                    .map(|f| {
                        format!(
                            "{:.1}s",
                            (f - r.started_at).num_milliseconds() as f64 / 1000.0
                        )
                    })
                    .unwrap_or_default();
                println!(
                    "{:>6} {} {:<22} {:<9} {:>7} {}",
                    r.id,
                    r.started_at.format("%Y-%m-%d %H:%M:%S"),
                    r.name,
                    r.trigger,
                    took,
                    state
                );
            }
            Ok(())
        }
        JobsCommand::Backfill { from, to } => {
            if to < from {
                bail!("--to is before --from");
            }
            let tz = settings.station.time_zone.0;
            let hour = settings.station.day_start_hour.0;
            let days: Vec<chrono::NaiveDate> = from.iter_days().take_while(|d| *d <= to).collect();
            let bar = indicatif::ProgressBar::new(days.len() as u64).with_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} days {msg} ({eta} left)",
                )
                .expect("valid template"),
            );
            let now = chrono::Utc::now();
            let mut rows = 0;
            for day in days {
                let (start, end) = crate::broadcast::day_bounds(day, hour, tz);
                // Events of the day may be closed by events up to the cap after it.
                let window = Window {
                    start,
                    end: end + chrono::Duration::seconds(js.open_event_cap_s as i64),
                };
                bar.set_message(day.to_string());
                for job in [
                    Job::CloseByNextEvent,
                    Job::CloseByMaxDuration,
                    Job::FixDurations,
                ] {
                    rows += jobs::run(conn, job, window, now, js, Trigger::Backfill)?
                        .rows_changed
                        .unwrap_or(0);
                }
                bar.inc(1);
            }
            bar.finish_with_message("cleanup done");
            let sessions = jobs::run(
                conn,
                Job::Sessions,
                Window {
                    start: now,
                    end: now,
                },
                now,
                js,
                Trigger::Backfill,
            )?;
            println!(
                "backfill {from} to {to}: {rows} events changed, {} sessions written",
                sessions.rows_changed.unwrap_or(0)
            );
            Ok(())
        }
    }
}
