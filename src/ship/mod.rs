//! `airlog ship` and `airlog import-log`: access logs to stream events, sent to the ingest API.
//!
//! Exactly once: the read position (file identity and offset) and the sessions still open are
//! saved only after the server acknowledged the batch that contains everything read up to that
//! position. After a crash the shipper resends from there, and the server's idempotent ingest
//! drops what it already has.

pub mod follow;
pub mod parse;
pub mod robots;
pub mod session;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::shutdown::Shutdown;
use follow::{FileId, Follower};
use parse::{parse_line, skip_reason, Format};
use session::{icecast_event, OpenSession, Sessionizer};

/// How a shipper sends and groups.
#[derive(Debug, Clone)]
pub struct ShipOptions {
    pub format: Format,
    pub to: String,
    pub token: String,
    pub batch_size: usize,
    pub max_delay: Duration,
    pub session_gap: Duration,
    /// How far out of time order log lines may come.
    pub max_disorder: Duration,
    /// User-agent substrings that are listeners / robots, beyond the built-in rules.
    pub bot_allow: Vec<String>,
    pub bot_deny: Vec<String>,
    pub metrics_file: Option<PathBuf>,
}

/// What a shipper saves after each acknowledged batch.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct State {
    pub file: Option<FileId>,
    pub offset: u64,
    pub sessions: Vec<OpenSession>,
}

impl State {
    pub fn load(path: &Path) -> anyhow::Result<State> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text)
                .with_context(|| format!("the state file {} is damaged", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => {
                Err(e).with_context(|| format!("cannot read the state file {}", path.display()))
            }
        }
    }

    /// Written to a temporary file, synced and renamed, so a crash leaves the old or the new.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        use std::io::Write;
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(&serde_json::to_vec(self)?)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("cannot replace {}", path.display()))?;
        Ok(())
    }
}

/// The shipper's own counters.
#[derive(Debug, Default, Clone)]
pub struct Counters {
    pub lines: u64,
    pub unparsable: u64,
    pub skipped: BTreeMap<&'static str, u64>,
    pub events_sent: u64,
    pub events_created: u64,
    pub events_duplicate: u64,
    pub batches: u64,
    pub retries: u64,
    pub dropped: u64,
}

impl Counters {
    /// Prometheus text (for node_exporter's textfile collector).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut line = |name: &str, labels: &str, v: u64| {
            out.push_str(&format!("airlog_ship_{name}{labels} {v}\n"))
        };
        line("lines_total", "", self.lines);
        line("unparsable_lines_total", "", self.unparsable);
        for (reason, n) in &self.skipped {
            line("skipped_total", &format!("{{reason=\"{reason}\"}}"), *n);
        }
        line("events_sent_total", "", self.events_sent);
        line("events_created_total", "", self.events_created);
        line("events_duplicate_total", "", self.events_duplicate);
        line("batches_total", "", self.batches);
        line("retries_total", "", self.retries);
        line("events_dropped_total", "", self.dropped);
        out
    }
}

/// Turns lines into events.
pub struct Converter {
    format: Format,
    robots: robots::Robots,
    pub sessions: Sessionizer,
    pub counters: Counters,
}

impl Converter {
    /// A converter with the built-in robot rules and the default disorder allowance.
    pub fn new(format: Format, gap: Duration, carried: Vec<OpenSession>) -> Converter {
        Converter {
            format,
            robots: robots::Robots::default(),
            sessions: Sessionizer::new(gap, carried),
            counters: Counters::default(),
        }
    }

    /// Takes the robot lists and the disorder allowance of these options.
    pub fn with_rules(mut self, opts: &ShipOptions) -> Converter {
        self.robots = robots::Robots::new(&opts.bot_allow, &opts.bot_deny);
        self.sessions = self.sessions.with_disorder(opts.max_disorder);
        self
    }

    /// The events one line completes (usually none for HLS, one for Icecast).
    pub fn line(&mut self, text: &str) -> Vec<Value> {
        self.counters.lines += 1;
        let hit = match parse_line(self.format, text) {
            Ok(hit) => hit,
            Err(why) => {
                self.counters.unparsable += 1;
                tracing::debug!(reason = why.as_str(), "line skipped");
                return Vec::new();
            }
        };
        if let Some(reason) = skip_reason(&hit, &self.robots) {
            *self.counters.skipped.entry(reason.as_str()).or_default() += 1;
            return Vec::new();
        }
        match self.format {
            Format::Icecast => vec![icecast_event(&hit)],
            Format::NginxHls | Format::NginxCombined => self.sessions.hit(&hit),
        }
    }
}

/// Posts batches to the ingest API, retrying with backoff until acknowledged.
pub struct Sender {
    client: reqwest::Client,
    to: String,
    token: String,
}

impl Sender {
    pub fn new(to: &str, token: &str) -> anyhow::Result<Sender> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(Sender {
            client,
            to: to.to_string(),
            token: token.to_string(),
        })
    }

    /// Sends until the server says 201 (then returns created and duplicates) or refuses the
    /// batch for good (4xx other than 408/429: `Ok(None)`, logged). Gives up only on shutdown.
    pub async fn send(
        &self,
        events: &[Value],
        counters: &mut Counters,
        shutdown: &mut Shutdown,
    ) -> anyhow::Result<Option<(u64, u64)>> {
        let mut backoff = Duration::from_millis(250);
        loop {
            let attempt = self
                .client
                .post(&self.to)
                .header("Authorization", format!("Token {}", self.token))
                .json(events)
                .send()
                .await;
            match attempt {
                Ok(res) if res.status().as_u16() == 201 => {
                    let body: Value = res.json().await.unwrap_or(Value::Null);
                    return Ok(Some((
                        body["created"].as_u64().unwrap_or(0),
                        body["duplicates"].as_u64().unwrap_or(0),
                    )));
                }
                Ok(res)
                    if res.status().is_client_error()
                        && !matches!(res.status().as_u16(), 408 | 429) =>
                {
                    let status = res.status();
                    let body = res.text().await.unwrap_or_default();
                    if matches!(status.as_u16(), 401 | 403) {
                        bail!(
                            "the server refused the token ({status}): {}",
                            body.chars().take(300).collect::<String>()
                        );
                    }
                    tracing::error!(
                        status = status.as_u16(),
                        events = events.len(),
                        answer = body.chars().take(500).collect::<String>(),
                        "the server refused a batch; it is dropped"
                    );
                    return Ok(None);
                }
                Ok(res) => tracing::warn!(
                    status = res.status().as_u16(),
                    "ingest not available; retrying"
                ),
                Err(e) => tracing::warn!(error = %e, "cannot reach the ingest API; retrying"),
            }
            counters.retries += 1;
            tokio::select! {
                _ = shutdown.requested() => bail!("stopped before the batch was acknowledged"),
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }
}

fn account(counters: &mut Counters, sent: usize, answer: Option<(u64, u64)>) {
    counters.batches += 1;
    counters.events_sent += sent as u64;
    match answer {
        Some((created, duplicates)) => {
            counters.events_created += created;
            counters.events_duplicate += duplicates;
        }
        None => counters.dropped += sent as u64,
    }
}

fn write_metrics(path: Option<&Path>, counters: &Counters) {
    if let Some(path) = path {
        let tmp = path.with_extension("tmp");
        if std::fs::write(&tmp, counters.render())
            .and_then(|_| std::fs::rename(&tmp, path))
            .is_err()
        {
            tracing::warn!(file = %path.display(), "cannot write the metrics file");
        }
    }
}

/// Follows `log` until shutdown, shipping events and saving `state_path` after each ack.
pub async fn ship(
    log: &Path,
    state_path: &Path,
    opts: &ShipOptions,
    mut shutdown: Shutdown,
) -> anyhow::Result<Counters> {
    let state = State::load(state_path)?;
    let mut follower = Follower::open(log, state.file, state.offset)
        .with_context(|| format!("cannot open {}", log.display()))?;
    let mut conv = Converter::new(opts.format, opts.session_gap, state.sessions).with_rules(opts);
    let sender = Sender::new(&opts.to, &opts.token)?;
    let mut batch: Vec<Value> = Vec::new();
    let mut batch_started = Instant::now();
    let mut position = follower
        .position()
        .map(|(f, o)| (Some(f), o))
        .unwrap_or((state.file, state.offset));
    let mut saved = position;
    let mut last_report = Instant::now();
    tracing::info!(log = %log.display(), offset = position.1, sessions = conv.sessions.open_sessions().len(), "shipping");
    loop {
        if shutdown.is_requested() {
            break;
        }
        // Local file reads are short; no need to leave the async thread for them.
        let lines = follower.read_lines(opts.batch_size)?;
        let idle = lines.is_empty();
        let mut stopped = false;
        for line in lines {
            let events = conv.line(&line.text);
            if batch.is_empty() && !events.is_empty() {
                batch_started = Instant::now();
            }
            batch.extend(events);
            position = (Some(line.file), line.end);
            // Cut between lines, so the saved position and sessions match the batch exactly.
            if batch.len() >= opts.batch_size {
                match flush(
                    &sender,
                    &mut batch,
                    &mut conv,
                    position,
                    state_path,
                    &mut shutdown,
                )
                .await
                {
                    Ok(()) => {}
                    // Stopped while the server was away: the batch is read again next time.
                    Err(_) if shutdown.is_requested() => {
                        stopped = true;
                        break;
                    }
                    Err(e) => return Err(e),
                }
                saved = position;
                write_metrics(opts.metrics_file.as_deref(), &conv.counters);
            }
        }
        if stopped {
            break;
        }
        if idle {
            // Nothing new: close sessions idle for longer than the gap (plus a margin, as log
            // lines can arrive a little late), by the wall clock.
            let margin = chrono::Duration::from_std(
                (opts.session_gap / 2)
                    .min(Duration::from_secs(5))
                    .max(opts.max_disorder),
            )
            .unwrap_or_default();
            let ended = conv.sessions.close_idle(chrono::Utc::now() - margin);
            if batch.is_empty() && !ended.is_empty() {
                batch_started = Instant::now();
            }
            batch.extend(ended);
            if let Some((f, o)) = follower.position() {
                position = (Some(f), o);
            }
        }
        let due = !batch.is_empty() && batch_started.elapsed() >= opts.max_delay;
        if due || (batch.is_empty() && position != saved && idle) {
            match flush(
                &sender,
                &mut batch,
                &mut conv,
                position,
                state_path,
                &mut shutdown,
            )
            .await
            {
                Ok(()) => {}
                Err(_) if shutdown.is_requested() => break,
                Err(e) => return Err(e),
            }
            saved = position;
            write_metrics(opts.metrics_file.as_deref(), &conv.counters);
        }
        if last_report.elapsed() >= Duration::from_secs(60) {
            let c = &conv.counters;
            tracing::info!(
                lines = c.lines,
                events = c.events_sent,
                created = c.events_created,
                duplicates = c.events_duplicate,
                unparsable = c.unparsable,
                skipped = c.skipped.values().sum::<u64>(),
                "shipper progress"
            );
            last_report = Instant::now();
        }
        if idle {
            tokio::select! {
                _ = shutdown.requested() => {}
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    }
    // At shutdown, what was read but not acknowledged is simply read again next time.
    write_metrics(opts.metrics_file.as_deref(), &conv.counters);
    Ok(conv.counters)
}

async fn flush(
    sender: &Sender,
    batch: &mut Vec<Value>,
    conv: &mut Converter,
    position: (Option<FileId>, u64),
    state_path: &Path,
    shutdown: &mut Shutdown,
) -> anyhow::Result<()> {
    if !batch.is_empty() {
        let answer = sender.send(batch, &mut conv.counters, shutdown).await?;
        account(&mut conv.counters, batch.len(), answer);
        batch.clear();
    }
    State {
        file: position.0,
        offset: position.1,
        sessions: conv.sessions.open_sessions(),
    }
    .save(state_path)
}

/// Sends whole log files (no following, no state: the ingest is idempotent), closing every
/// session at the end. `progress` is advanced by bytes read.
pub async fn import(
    files: &[PathBuf],
    opts: &ShipOptions,
    progress: &indicatif::ProgressBar,
    mut shutdown: Shutdown,
) -> anyhow::Result<Counters> {
    use std::io::BufRead;
    let sender = Sender::new(&opts.to, &opts.token)?;
    let mut conv = Converter::new(opts.format, opts.session_gap, Vec::new()).with_rules(opts);
    let total: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    progress.set_length(total);
    let mut batch: Vec<Value> = Vec::new();
    for file in files {
        let reader = std::io::BufReader::new(
            std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?,
        );
        for line in reader.split(b'\n') {
            let line = line?;
            progress.inc(line.len() as u64 + 1);
            batch.extend(conv.line(&String::from_utf8_lossy(&line)));
            if batch.len() >= opts.batch_size {
                let answer = sender
                    .send(&batch, &mut conv.counters, &mut shutdown)
                    .await?;
                account(&mut conv.counters, batch.len(), answer);
                batch.clear();
            }
        }
    }
    batch.extend(conv.sessions.close_all());
    for chunk in batch.chunks(opts.batch_size.max(1)) {
        let answer = sender
            .send(chunk, &mut conv.counters, &mut shutdown)
            .await?;
        account(&mut conv.counters, chunk.len(), answer);
    }
    progress.finish_and_clear();
    write_metrics(opts.metrics_file.as_deref(), &conv.counters);
    Ok(conv.counters)
}
