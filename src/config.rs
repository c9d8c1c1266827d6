//! One typed `Settings`, read from `airlog.toml`, then `AIRLOG_*` variables, then flags.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use figment::providers::{Format, Toml};
use figment::value::Value;
use figment::Figment;
use serde::{Deserialize, Deserializer};

/// Everything airlog can be configured with; every key is documented in
/// `deploy/airlog.example.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Where airlog keeps its state (the private PostgreSQL cluster lives in `<data_dir>/pg`).
    pub data_dir: PathBuf,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub station: StationSettings,
    pub player: PlayerSettings,
    pub jobs: JobSettings,
    pub mpv: MpvSettings,
    pub log: LogSettings,
    pub audience: AudienceSettings,
    pub console: ConsoleSettings,
    pub webhooks: WebhookSettings,
    pub reports: ReportSettings,
}

/// The operator console (`/console/`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleSettings {
    /// Hours a browser stays signed in.
    pub session_hours: u32,
    /// A header a trusted proxy (`player.trusted_proxies`) sets to the signed-in user's name
    /// (e.g. `X-Forwarded-User`); empty: sign-in only by pasting a token.
    pub proxy_user_header: String,
    /// What users signed in by the proxy header may do: `read`, or `admin`.
    #[serde(deserialize_with = "scope_named")]
    pub proxy_scope: crate::auth::Scope,
}

fn scope_named<'de, D: Deserializer<'de>>(d: D) -> Result<crate::auth::Scope, D::Error> {
    let name = String::deserialize(d)?;
    name.parse().map_err(serde::de::Error::custom)
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        ConsoleSettings {
            session_hours: 12,
            proxy_user_header: String::new(),
            proxy_scope: crate::auth::Scope::Read,
        }
    }
}

/// Outgoing webhooks: how deliveries are sent, retried and guarded.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookSettings {
    /// Run the delivery worker (deliveries are recorded either way).
    pub enabled: bool,
    /// Milliseconds between looks for due deliveries (a finished delivery looks at once).
    pub poll_ms: u64,
    /// Milliseconds one request may take, connection to last byte.
    pub timeout_ms: u64,
    /// The first retry waits this long (milliseconds), each next one twice as long (with
    /// jitter), never more than `max_backoff_s`.
    pub initial_backoff_ms: u64,
    pub max_backoff_s: u64,
    /// A delivery still failing this long after its event is given up (`failed`).
    pub give_up_after_s: u64,
    /// Consecutive failed attempts after which an endpoint is shown `failing`.
    pub failing_after: u32,
    /// Allow URLs that resolve to private, loopback, link-local or unique-local addresses.
    pub allow_private: bool,
    /// Networks allowed even though private (e.g. `10.0.0.7/32` for an intranet receiver).
    pub allow_networks: Vec<ipnetwork::IpNetwork>,
    /// Seconds a station's streamer must be unreachable before `station_offline` is sent.
    pub offline_after_s: u64,
    /// Days finished deliveries (and their attempts) are kept; 0 keeps them forever.
    pub keep_days: u32,
    /// Listener counts (devices listening now) whose crossing sends `listeners`; empty: none.
    pub listener_thresholds: Vec<u32>,
    /// Seconds between looks at the listeners now, for `listener_thresholds`.
    pub listener_check_s: u64,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            enabled: true,
            poll_ms: 1000,
            timeout_ms: 10_000,
            initial_backoff_ms: 1000,
            max_backoff_s: 3600,
            give_up_after_s: 86_400,
            failing_after: 5,
            allow_private: false,
            allow_networks: Vec::new(),
            offline_after_s: 30,
            keep_days: 30,
            listener_thresholds: Vec::new(),
            listener_check_s: 60,
        }
    }
}

/// Royalty and regulator reports.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportSettings {
    /// The service's name in SoundExchange reports (with call letters); empty: the station's name.
    pub service_name: String,
    /// SoundExchange transmission category: A (webcast), B (broadcast simulcast), C
    /// (news, talk, sports or business programming), ...
    pub transmission_category: String,
}

impl Default for ReportSettings {
    fn default() -> Self {
        ReportSettings {
            service_name: String::new(),
            transmission_category: "A".into(),
        }
    }
}

/// What counts as listening in the audience figures.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AudienceSettings {
    /// Sessions shorter than this (seconds) are not counted at all.
    pub min_session_s: u32,
    /// Listening a listener needs in an interval (seconds) to count in its Cume.
    pub cume_min_s: u32,
    /// Addresses of relays (other streaming servers pulling a stream); their sessions are not
    /// listening. Icecast and Shoutcast relay user agents are recognised without this.
    pub relay_addresses: Vec<std::net::IpAddr>,
    /// User-agent substrings that are listeners even where the robot list matches them.
    pub bot_allow: Vec<String>,
    /// User-agent substrings that are robots whatever else says.
    pub bot_deny: Vec<String>,
    /// Listening (seconds) a listener needs of an item on air to count as one performance of
    /// it (SoundExchange counts a listener who heard any part).
    pub min_performance_s: f64,
    /// Days stream events are kept once every station's audience rollups have taken them in
    /// (0: kept for ever). Figures of older periods are then read from the rollups only.
    pub stream_events_retention_days: u32,
}

impl Default for AudienceSettings {
    fn default() -> Self {
        AudienceSettings {
            min_session_s: 60,
            cume_min_s: 60,
            relay_addresses: Vec::new(),
            bot_allow: Vec::new(),
            bot_deny: Vec::new(),
            min_performance_s: 1.0,
            stream_events_retention_days: 0,
        }
    }
}

/// Capturing what mpv plays.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MpvSettings {
    /// Directories of mpv IPC sockets (the mpv-sockets convention: /tmp/mpvsockets); empty
    /// disables capture. Directories that do not exist are watched for once they do.
    pub socket_dirs: Vec<std::path::PathBuf>,
    /// Seconds between rescans (inotify and SIGUSR1 trigger one at once too).
    pub rescan_s: u64,
    /// Delete sockets whose mpv is gone (connections refused).
    pub remove_dead: bool,
    /// The station (by name) whose as-run log gets an ON_AIR entry for every file mpv plays;
    /// empty: none.
    pub station: String,
    /// Single socket paths to capture besides the directories.
    pub sockets: Vec<std::path::PathBuf>,
    /// "Listened": media shorter than `short_media_s` need more than `listened_fraction` heard,
    /// longer ones more than `long_min_s` seconds.
    pub short_media_s: f64,
    pub listened_fraction: f64,
    pub long_min_s: f64,
    /// "Scrobbled" (last.fm): longer than `scrobble_min_length_s`, heard for half its length or
    /// `scrobble_cap_s`; otherwise skipped.
    pub scrobble_min_length_s: f64,
    pub scrobble_cap_s: f64,
}

impl MpvSettings {
    /// The listening rules these settings describe.
    pub fn rules(&self) -> crate::domain::play::Rules {
        crate::domain::play::Rules {
            short_media_s: self.short_media_s,
            short_fraction: self.listened_fraction,
            long_min_s: self.long_min_s,
            scrobble_min_length_s: self.scrobble_min_length_s,
            scrobble_cap_s: self.scrobble_cap_s,
        }
    }
}

impl Default for MpvSettings {
    fn default() -> Self {
        MpvSettings {
            socket_dirs: vec!["/tmp/mpvsockets".into()],
            rescan_s: 10,
            remove_dead: false,
            station: String::new(),
            sockets: Vec::new(),
            short_media_s: 600.0,
            listened_fraction: 0.75,
            long_min_s: 60.0,
            scrobble_min_length_s: 30.0,
            scrobble_cap_s: 240.0,
        }
    }
}

/// Web players and the browser endpoints.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlayerSettings {
    /// Origins (e.g. `https://radio.example`) whose pages may post player events and
    /// heartbeats; `*` allows any.
    pub allowed_origins: Vec<String>,
    /// Requests per minute one device may make to the browser endpoints before it gets 429.
    pub rate_limit_per_minute: u32,
    /// Proxies whose `X-Forwarded-For` (first entry) and identity header are believed.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// A header set by a trusted proxy with the signed-in user's id (e.g. `X-Airlog-User`);
    /// empty disables it and every listener is `anonymous:<device_key>`.
    pub identity_header: String,
    /// Most events one browser request may carry.
    pub max_events_per_request: usize,
}

/// The scheduled jobs on player events.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobSettings {
    /// Run the cleanup and session jobs on a schedule inside `airlog serve`.
    pub enabled: bool,
    /// Seconds between scheduled passes.
    pub interval_s: u64,
    /// Seconds of event history each scheduled pass looks at (the session gap is added).
    pub lookback_s: u64,
    /// Seconds after which an event with no successor and no known duration is closed.
    pub open_event_cap_s: u64,
    /// A pause longer than this many seconds starts a new listening session.
    pub session_gap_s: u32,
    /// Sessions with this many seconds played or fewer are not kept.
    pub session_min_s: u32,
    /// Seconds one job may run before it is cancelled.
    pub timeout_s: u64,
}

impl Default for PlayerSettings {
    fn default() -> Self {
        PlayerSettings {
            allowed_origins: Vec::new(),
            rate_limit_per_minute: 120,
            trusted_proxies: Vec::new(),
            identity_header: String::new(),
            max_events_per_request: 100,
        }
    }
}

impl Default for JobSettings {
    fn default() -> Self {
        JobSettings {
            enabled: true,
            interval_s: 300,
            lookback_s: 4 * 3600,
            open_event_cap_s: 4 * 3600,
            session_gap_s: 300,
            session_min_s: 30,
            timeout_s: 600,
        }
    }
}

/// The HTTP API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// `host:port` to listen on; port 0 picks a free port.
    pub bind: String,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// Seconds in-flight requests get to finish at shutdown.
    pub shutdown_timeout_s: u64,
    /// Seconds a client gets to send a whole request body (408 past that).
    pub body_timeout_s: u64,
    /// Exports that may stream at once; each holds a database connection while its client
    /// reads, so at most `database.pool_size` - 1 are used (more get 429 with Retry-After).
    pub max_exports: usize,
    /// Seconds an export waits for a client that stopped reading before it gives up.
    pub export_send_timeout_s: u64,
    /// Stream-event batches written to the database at once; 0 means one per core. Batches
    /// beyond wait (parsed and checked meanwhile): concurrent loads into one table contend for
    /// the same index pages, so more writers than cores cost CPU without adding throughput.
    pub ingest_writers: usize,
    /// The URL clients reach airlog at (e.g. `https://stats.example.org`), used for `next` and
    /// `previous` links; empty: from the request (forwarded headers only from trusted proxies).
    pub public_url: String,
}

/// The PostgreSQL database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// A libpq URL; empty means the private cluster under `<data_dir>/pg`.
    pub url: String,
    /// Connections in the pool.
    pub pool_size: u32,
    /// Seconds to wait for a pooled connection before answering 503.
    pub connect_timeout_s: u64,
}

/// Station-wide defaults for time keeping.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StationSettings {
    /// IANA time zone of the station, e.g. `Europe/Zurich`.
    pub time_zone: TimeZone,
    /// Hour (0-23, station time) at which the broadcast day starts.
    pub day_start_hour: DayStartHour,
}

/// Logging.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// A tracing filter such as `info` or `airlog=debug,actix_web=info`; `RUST_LOG` wins.
    pub level: String,
    /// `text` for people, `json` for log collectors.
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// A checked IANA time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeZone(pub chrono_tz::Tz);

impl<'de> Deserialize<'de> for TimeZone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse::<chrono_tz::Tz>().map(TimeZone).map_err(|_| {
            serde::de::Error::custom(format!(
                "unknown time zone {name:?} (expected an IANA name such as Europe/Zurich or UTC)"
            ))
        })
    }
}

impl fmt::Display for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name())
    }
}

/// An hour of the day, 0 to 23.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayStartHour(pub u32);

impl<'de> Deserialize<'de> for DayStartHour {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let hour = i64::deserialize(d)?;
        if (0..24).contains(&hour) {
            Ok(DayStartHour(hour as u32))
        } else {
            Err(serde::de::Error::custom(format!(
                "day start hour {hour} is not an hour of the day (0 to 23)"
            )))
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            data_dir: PathBuf::from("./var"),
            server: ServerSettings::default(),
            database: DatabaseSettings::default(),
            station: StationSettings::default(),
            player: PlayerSettings::default(),
            jobs: JobSettings::default(),
            mpv: MpvSettings::default(),
            log: LogSettings::default(),
            audience: AudienceSettings::default(),
            reports: ReportSettings::default(),
            console: ConsoleSettings::default(),
            webhooks: WebhookSettings::default(),
        }
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            bind: "127.0.0.1:8080".into(),
            max_body_bytes: 16 * 1024 * 1024,
            workers: 0,
            shutdown_timeout_s: 30,
            body_timeout_s: 30,
            public_url: String::new(),
            max_exports: 3,
            export_send_timeout_s: 30,
            ingest_writers: 0,
        }
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: String::new(),
            pool_size: 10,
            connect_timeout_s: 5,
        }
    }
}

impl Default for StationSettings {
    fn default() -> Self {
        StationSettings {
            time_zone: TimeZone(chrono_tz::UTC),
            day_start_hour: DayStartHour(4),
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// The file searched when `--config` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "airlog.toml";

/// Environment variables that look like settings but belong to the command line.
const CLI_ONLY_VARS: &[&str] = &["config"];

/// The top-level keys of `Settings` (sections and plain keys).
const TOP_LEVEL_KEYS: &[&str] = &[
    "data_dir", "server", "database", "station", "player", "jobs", "mpv", "log", "console",
];

/// Letters apart (Levenshtein distance), to tell a misspelt setting from another program's
/// variable.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Whether `AIRLOG_<key>` is meant as an airlog setting. `SECTION__KEY` always is (a wrong
/// key is then refused by name); a plain name is when it names a top-level key or nearly does
/// (a misspelling, refused). Other plain names belong to other programs, such as the shipped
/// Liquidsoap script's `AIRLOG_LIQ_SOCKET`, and are left alone.
fn is_setting(key: &str) -> bool {
    key.contains('.')
        || TOP_LEVEL_KEYS
            .iter()
            .any(|k| distance(key, k) <= 2.min(k.len() / 3 + 1))
}

impl Settings {
    /// Reads settings from `path` (or `./airlog.toml` when it exists), then the environment.
    ///
    /// `env` is the process environment as pairs, passed in so tests need not mutate it.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Settings> {
        let mut figment = Figment::new();
        match path {
            Some(p) => {
                if !p.exists() {
                    bail!("configuration file {} does not exist", p.display());
                }
                figment = figment.merge(Toml::file_exact(p));
            }
            None if Path::new(DEFAULT_CONFIG_FILE).is_file() => {
                figment = figment.merge(Toml::file_exact(DEFAULT_CONFIG_FILE));
            }
            None => {}
        }
        let env: Vec<(String, String)> = env.into_iter().collect();
        // DATABASE_URL is the convention every PostgreSQL tool follows; AIRLOG_DATABASE__URL wins.
        if let Some((_, url)) = env
            .iter()
            .find(|(k, v)| k == "DATABASE_URL" && !v.is_empty())
        {
            figment = figment.merge(EnvVar {
                name: "DATABASE_URL".into(),
                key: "database.url".into(),
                value: Value::from(url.clone()),
            });
        }
        // AIRLOG_SERVER__BIND is `server.bind`; values are read like TOML scalars.
        for (name, value) in env {
            let Some(key) = name.strip_prefix("AIRLOG_") else {
                continue;
            };
            let key = key.to_ascii_lowercase().replace("__", ".");
            if key.is_empty() || CLI_ONLY_VARS.contains(&key.as_str()) {
                continue;
            }
            if !is_setting(&key) {
                tracing::debug!(variable = name.as_str(), "not an airlog setting; ignored");
                continue;
            }
            // Values read like TOML scalars, so "3" is a number and "true" a boolean.
            let value: Value = value
                .parse()
                .expect("parsing a figment value is infallible");
            figment = figment.merge(EnvVar { name, key, value });
        }
        let settings: Settings = figment.extract().map_err(describe_figment_error)?;
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> anyhow::Result<()> {
        if self.server.bind.trim().is_empty() {
            bail!("server.bind is empty (expected host:port such as 127.0.0.1:8080)");
        }
        if !self.server.bind.contains(':') {
            bail!(
                "server.bind {:?} has no port (expected host:port such as 127.0.0.1:8080)",
                self.server.bind
            );
        }
        if self.database.pool_size == 0 {
            bail!("database.pool_size must be at least 1");
        }
        if self.jobs.interval_s == 0 {
            bail!("jobs.interval_s must be at least 1");
        }
        if self.player.rate_limit_per_minute == 0 {
            bail!("player.rate_limit_per_minute must be at least 1");
        }
        if self.server.max_body_bytes < 1024 {
            bail!("server.max_body_bytes must be at least 1024");
        }
        if self.server.max_exports == 0 {
            bail!("server.max_exports must be at least 1");
        }
        let url = &self.server.public_url;
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            bail!("server.public_url must be an http:// or https:// URL, got {url:?}");
        }
        Ok(())
    }

    /// The database URL to use, or `None` for the private cluster.
    pub fn database_url(&self) -> Option<&str> {
        let url = self.database.url.trim();
        (!url.is_empty()).then_some(url)
    }

    /// The directory of the private PostgreSQL cluster.
    pub fn cluster_dir(&self) -> PathBuf {
        self.data_dir.join("pg")
    }

    /// Creates the data directory if needed and proves it is writable.
    pub fn prepare_data_dir(&self) -> anyhow::Result<()> {
        let dir = &self.data_dir;
        std::fs::create_dir_all(dir)
            .with_context(|| format!("data directory {} cannot be created", dir.display()))?;
        let probe = dir.join(".airlog-write-test");
        std::fs::write(&probe, b"ok")
            .with_context(|| format!("data directory {} is not writable", dir.display()))?;
        let _ = std::fs::remove_file(probe);
        Ok(())
    }
}

/// Names each problem by its key and where the value came from, on one line.
fn describe_figment_error(err: figment::Error) -> anyhow::Error {
    let problems: Vec<String> = err
        .into_iter()
        .map(|e| {
            let origin = match e.metadata.as_ref() {
                Some(m) => match &m.source {
                    Some(figment::Source::File(path)) => format!(" (in {})", path.display()),
                    _ => format!(" (from {})", m.name),
                },
                None => String::new(),
            };
            if e.path.is_empty() {
                format!("{}{origin}", e.kind)
            } else {
                format!("{}: {}{origin}", e.path.join("."), e.kind)
            }
        })
        .collect();
    anyhow::anyhow!("invalid configuration: {}", problems.join("; "))
}

/// One `AIRLOG_*` variable as a figment provider, so errors can name the variable.
struct EnvVar {
    name: String,
    key: String,
    value: Value,
}

impl figment::Provider for EnvVar {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named(format!("environment variable {}", self.name))
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        let dict = figment::util::nest(&self.key, self.value.clone())
            .into_dict()
            .ok_or_else(|| figment::Error::from(format!("{} names no setting", self.name)))?;
        Ok(figment::Profile::Default.collect(dict))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_need_no_file() {
        let s = Settings::load(Some(Path::new("/dev/null")), env(&[])).unwrap();
        assert_eq!(s.server.bind, "127.0.0.1:8080");
        assert_eq!(s.station.day_start_hour, DayStartHour(4));
        assert!(s.database_url().is_none());
    }

    #[test]
    fn environment_overrides_nested_keys_and_database_url_is_honoured() {
        let s = Settings::load(
            Some(Path::new("/dev/null")),
            env(&[
                ("AIRLOG_SERVER__BIND", "0.0.0.0:9000"),
                ("AIRLOG_DATABASE__POOL_SIZE", "3"),
                ("AIRLOG_STATION__TIME_ZONE", "Europe/Zurich"),
                ("AIRLOG_CONFIG", "ignored.toml"),
                ("DATABASE_URL", "postgres://x@db/airlog"),
                ("UNRELATED", "1"),
            ]),
        )
        .unwrap();
        assert_eq!(s.server.bind, "0.0.0.0:9000");
        assert_eq!(s.database.pool_size, 3);
        assert_eq!(s.station.time_zone.0, chrono_tz::Europe::Zurich);
        assert_eq!(s.database_url(), Some("postgres://x@db/airlog"));
    }

    #[test]
    fn unknown_environment_key_is_named() {
        let err = Settings::load(
            Some(Path::new("/dev/null")),
            env(&[("AIRLOG_SERVER__PORT", "1")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("port"), "{err}");
    }

    #[test]
    fn other_programs_variables_are_left_alone_and_misspelt_settings_refused() {
        let s = Settings::load(
            Some(Path::new("/dev/null")),
            env(&[
                ("AIRLOG_LIQ_SOCKET", "/run/airlog/liquidsoap.sock"),
                ("AIRLOG_PLAYLIST", "/var/lib/airlog/rotation.m3u"),
                ("AIRLOG_OUTPUT", "icecast"),
                ("AIRLOG_REPORT", "false"),
                ("AIRLOG_DATA_DIR", "/tmp/x"),
            ]),
        )
        .unwrap();
        assert_eq!(s.data_dir, Path::new("/tmp/x"));
        for (name, named) in [
            ("AIRLOG_DATADIR", "datadir"),
            ("AIRLOG_SERVR__BIND", "servr"),
            ("AIRLOG_DATABASE__URI", "uri"),
        ] {
            let err = Settings::load(Some(Path::new("/dev/null")), env(&[(name, "x")]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(named), "{name}: {err}");
        }
    }

    #[test]
    fn bind_without_port_is_refused() {
        let err = Settings::load(
            Some(Path::new("/dev/null")),
            env(&[("AIRLOG_SERVER__BIND", "localhost")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("no port"), "{err}");
    }
}
