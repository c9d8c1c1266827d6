//! The command line's arguments (clap): what each command accepts, checked by clap. The
//! commands themselves live in the sibling modules.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::auth::Scope;

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
    /// Print a report in a terminal (or as CSV/JSON)
    #[command(subcommand)]
    Report(ReportCommand),
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Audience figures (AQH, Cume, TLH, TSL, AAS, peak, sessions) per interval, as
    /// `GET /api/v1/audience/` answers them; e.g.
    /// `airlog report audience --station radio --from 2024-06-01 --until 2024-07-01 --interval week`
    Audience(AudienceArgs),
    /// SoundExchange census Report of Use, e.g.
    /// `airlog report soundexchange --station radio --month 2024-11 -o rou.txt`
    Soundexchange(FileReportArgs),
    /// Generic music report (CSV, one line per play: date, time, duration, artist, title,
    /// album, label, ISRC, composer, plays, performances, TLH)
    Music(FileReportArgs),
    /// Programme log for regulators: every as-run entry in local time (CSV, or `--format html`
    /// for a printable page)
    ProgrammeLog(FileReportArgs),
    /// Recordings that aired without ISRC or label, the most heard first (CSV or JSON)
    Coverage(FileReportArgs),
}

#[derive(Debug, clap::Args)]
pub struct FileReportArgs {
    /// The station's name
    #[arg(long)]
    pub station: String,
    /// A local month, YYYY-MM (or give --from and --until)
    #[arg(long, conflicts_with_all = ["from", "until"])]
    pub month: Option<String>,
    /// Start: an RFC 3339 instant, or YYYY-MM-DD (local midnight)
    #[arg(long, requires = "until")]
    pub from: Option<String>,
    /// End, exclusive: an RFC 3339 instant, or YYYY-MM-DD (local midnight)
    #[arg(long, requires = "from")]
    pub until: Option<String>,
    /// programme-log: csv or html; coverage: csv or json
    #[arg(long)]
    pub format: Option<String>,
    /// Write the report to this file (default: standard output)
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct AudienceArgs {
    /// The station's name (its time zone and dayparts apply); every station when absent
    #[arg(long)]
    pub station: Option<String>,
    /// Start: an RFC 3339 instant, or YYYY-MM-DD (local midnight)
    #[arg(long)]
    pub from: String,
    /// End, exclusive: an RFC 3339 instant, or YYYY-MM-DD (local midnight)
    #[arg(long)]
    pub until: String,
    /// quarter_hour, hour, day, week (from Monday), month or total
    #[arg(long, default_value = "day")]
    pub interval: String,
    /// A station daypart's name, or a spec such as "mon-fri 06:00-10:00"
    #[arg(long)]
    pub daypart: Option<String>,
    /// Add a row per stream, source or station after each total row
    #[arg(long)]
    pub by: Option<String>,
    /// table (for a terminal), csv or json
    #[arg(long, default_value = "table", value_parser = ["table", "csv", "json"])]
    pub format: String,
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
        /// close-by-next-event, close-by-max-duration, fix-durations, sessions, audience (the
        /// audience rollups; ignores --from/--to), or all
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

/// A time in any form the API accepts (RFC 3339, Unix seconds ...).
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
