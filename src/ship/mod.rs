//! `airlog ship` and `airlog import-log`: access logs to stream events, sent to the ingest API.
//!
//! Exactly once: the read positions (file identity and offset, of the log and of rotated files
//! still being read) and the sessions still open are saved only after the server acknowledged
//! the batch that contains everything read up to there. After a crash the shipper resends from
//! there, and the server's idempotent ingest drops what it already has.
//!
//! Garbage in real logs must not stall a shipper: fields are cleaned of what cannot be stored
//! (invalid UTF-8, control characters, text past the server's length limit), and when the server
//! still refuses some events of a batch, only those are dropped (counted by reason) and the rest
//! is sent again.

pub mod follow;
pub mod parse;
pub mod session;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::shutdown::Shutdown;
use crate::worker::{Backoff, Next, OnError, Worker};
use follow::{FileId, Follower, Positions};
use parse::{parse_line, skip_reason, Format, Hit};
use session::{icecast_event, OpenSession, Sessionizer};

/// Longest text field sent, in bytes (the ingest API's limit); longer is cut on a character
/// boundary rather than have the server refuse the listener.
const MAX_FIELD_BYTES: usize = 8192;
/// A batch answered 500 this many times in a row is split, to find the event the server fails on.
const FAILURES_BEFORE_SPLIT: u32 = 3;
/// Longest wait between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

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
    /// How long a renamed log is still read after nothing more was written to it.
    pub rotate_grace: Duration,
}

/// What a shipper saves after each acknowledged batch.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct State {
    /// The file at the log's path when saved, and the offset reached in it.
    pub file: Option<FileId>,
    pub offset: u64,
    /// Renamed (rotated) files still being read, and the offset reached in each.
    #[serde(default)]
    pub draining: Vec<(FileId, u64)>,
    pub sessions: Vec<OpenSession>,
}

impl State {
    fn positions(&self) -> Positions {
        Positions {
            current: self.file.map(|f| (f, self.offset)),
            draining: self.draining.clone(),
        }
    }

    /// The saved state, or an empty one when there is no file yet.
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
    /// Lines whose fields had invalid UTF-8, control characters or too much text, replaced.
    pub cleaned: u64,
    /// Lines older than the disorder allowance when read (their session may be split).
    pub late: u64,
    pub skipped: BTreeMap<&'static str, u64>,
    pub events_sent: u64,
    pub events_created: u64,
    pub events_duplicate: u64,
    /// Events the server refused for good, by reason (`invalid_<field>`, `http_<status>`,
    /// `server_error`).
    pub dropped: BTreeMap<String, u64>,
    pub batches: u64,
    pub retries: u64,
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
        line("cleaned_lines_total", "", self.cleaned);
        line("late_lines_total", "", self.late);
        for (reason, n) in &self.skipped {
            line("skipped_total", &format!("{{reason=\"{reason}\"}}"), *n);
        }
        line("events_sent_total", "", self.events_sent);
        line("events_created_total", "", self.events_created);
        line("events_duplicate_total", "", self.events_duplicate);
        for (reason, n) in &self.dropped {
            line(
                "events_dropped_total",
                &format!("{{reason=\"{reason}\"}}"),
                *n,
            );
        }
        line("batches_total", "", self.batches);
        line("retries_total", "", self.retries);
        out
    }

    /// Events dropped for any reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }

    fn drop_event(&mut self, reason: &str) {
        *self.dropped.entry(reason.to_string()).or_default() += 1;
    }
}

/// Replaces control characters (NUL among them: PostgreSQL cannot store it) with U+FFFD and
/// cuts text past the server's limit. True when something was changed.
fn clean(text: &mut String) -> bool {
    let mut changed = false;
    if text.chars().any(char::is_control) {
        *text = text
            .chars()
            .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
            .collect();
        changed = true;
    }
    if text.len() > MAX_FIELD_BYTES {
        let mut end = MAX_FIELD_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        changed = true;
    }
    changed
}

fn clean_hit(hit: &mut Hit) -> bool {
    let mut changed = false;
    for field in [
        &mut hit.method,
        &mut hit.path,
        &mut hit.user_agent,
        &mut hit.referer,
    ] {
        changed |= clean(field);
    }
    if let Some(range) = hit.range.as_mut() {
        changed |= clean(range);
    }
    changed
}

/// Turns lines into events.
pub struct Converter {
    format: Format,
    robots: crate::domain::robots::Robots,
    pub sessions: Sessionizer,
    pub counters: Counters,
}

impl Converter {
    /// A converter with the built-in robot rules and the default disorder allowance.
    pub fn new(format: Format, gap: Duration, carried: Vec<OpenSession>) -> Converter {
        Converter {
            format,
            robots: crate::domain::robots::Robots::default(),
            sessions: Sessionizer::new(gap, carried),
            counters: Counters::default(),
        }
    }

    /// Takes the robot lists and the disorder allowance of these options.
    pub fn with_rules(mut self, opts: &ShipOptions) -> Converter {
        self.robots = crate::domain::robots::Robots::new(&opts.bot_allow, &opts.bot_deny);
        self.sessions = self.sessions.with_disorder(opts.max_disorder);
        self
    }

    /// The events one line (raw bytes, without its newline) completes: usually none for HLS,
    /// one for Icecast.
    pub fn line(&mut self, raw: impl AsRef<[u8]>) -> Vec<Value> {
        self.counters.lines += 1;
        let text = String::from_utf8_lossy(raw.as_ref());
        let invalid_utf8 = matches!(text, Cow::Owned(_));
        let mut hit = match parse_line(self.format, &text) {
            Ok(hit) => hit,
            Err(why) => {
                self.counters.unparsable += 1;
                tracing::debug!(reason = why.as_str(), "line skipped");
                return Vec::new();
            }
        };
        if clean_hit(&mut hit) || invalid_utf8 {
            self.counters.cleaned += 1;
            tracing::debug!(
                line = self.counters.lines,
                "a line had invalid UTF-8, control characters or overlong text; replaced"
            );
        }
        if let Some(reason) = skip_reason(&hit, &self.robots) {
            *self.counters.skipped.entry(reason.as_str()).or_default() += 1;
            return Vec::new();
        }
        match self.format {
            Format::Icecast => vec![icecast_event(&hit)],
            Format::NginxHls | Format::NginxCombined => {
                let late_before = self.sessions.late;
                let events = self.sessions.hit(&hit);
                self.counters.late += self.sessions.late - late_before;
                events
            }
        }
    }
}

/// How the server answered one request, once whatever is worth retrying was retried.
enum Answer {
    Stored {
        created: u64,
        duplicates: u64,
    },
    /// Refused as invalid, naming the items: (index in the request, reason).
    Invalid(Vec<(usize, String)>),
    /// Refused for good without naming an item: the reason.
    Refused(String),
    /// Answered 500 several times in a row.
    Failing,
}

/// A metrics label from a server's field name: `invalid_` and lowercase letters, digits and `_`.
fn reason_of(field: &str) -> String {
    let name: String = field
        .chars()
        .take(40)
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if name.trim_matches('_').is_empty() {
        "invalid_item".into()
    } else {
        format!("invalid_{}", name.trim_matches('_'))
    }
}

/// Reads a 4xx error body (`{"error","message","details":[{"index","field","message"}]}`)
/// into the items it names. A detail names an item by `index`, or by a field written
/// `[i].name`.
fn refusal(status: u16, body: &str, items: usize) -> Answer {
    let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let mut named = Vec::new();
    for d in parsed["details"].as_array().into_iter().flatten() {
        let field = d["field"].as_str().unwrap_or("");
        let (index, field) = match d["index"].as_u64() {
            Some(i) => (Some(i as usize), field),
            None => match field
                .strip_prefix('[')
                .and_then(|f| f.split_once(']'))
                .and_then(|(i, rest)| Some((i.parse::<usize>().ok()?, rest)))
            {
                Some((i, rest)) => (Some(i), rest.trim_start_matches('.')),
                None => (None, field),
            },
        };
        if let Some(i) = index.filter(|i| *i < items) {
            named.push((i, reason_of(field)));
        }
    }
    if named.is_empty() {
        Answer::Refused(format!("http_{status}"))
    } else {
        Answer::Invalid(named)
    }
}

/// Posts batches to the ingest API, retrying with backoff until acknowledged.
pub struct Sender {
    client: reqwest::Client,
    to: String,
    token: String,
}

impl Sender {
    /// A sender to this ingest URL with this token.
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

    /// One request, retried while the server is away (no answer, 408, 429, 502-504) until
    /// shutdown; a 500 is retried a few times only, as it may be the batch's fault.
    async fn post(
        &self,
        events: &[&Value],
        counters: &mut Counters,
        shutdown: &mut Shutdown,
    ) -> anyhow::Result<Answer> {
        let mut backoff = Backoff::new(Duration::from_millis(250), MAX_BACKOFF);
        let mut failures = 0;
        loop {
            let attempt = self
                .client
                .post(&self.to)
                .header("Authorization", format!("Token {}", self.token))
                .json(events)
                .send()
                .await;
            match attempt {
                Ok(res) => match res.status().as_u16() {
                    200 | 201 => {
                        let body: Value = res.json().await.unwrap_or(Value::Null);
                        return Ok(Answer::Stored {
                            created: body["created"].as_u64().unwrap_or(0),
                            duplicates: body["duplicates"].as_u64().unwrap_or(0),
                        });
                    }
                    status @ (401 | 403) => {
                        let body = res.text().await.unwrap_or_default();
                        bail!(
                            "the server refused the token ({status}): {}",
                            body.chars().take(300).collect::<String>()
                        );
                    }
                    408 | 429 => {
                        tracing::warn!(status = res.status().as_u16(), "ingest busy; retrying")
                    }
                    status @ 400..=499 => {
                        let body = res.text().await.unwrap_or_default();
                        return Ok(refusal(status, &body, events.len()));
                    }
                    500 => {
                        failures += 1;
                        tracing::warn!(
                            events = events.len(),
                            attempt = failures,
                            "the server failed on a batch (500)"
                        );
                        if failures >= FAILURES_BEFORE_SPLIT {
                            return Ok(Answer::Failing);
                        }
                    }
                    status => tracing::warn!(status, "ingest not available; retrying"),
                },
                Err(e) => tracing::warn!(error = %e, "cannot reach the ingest API; retrying"),
            }
            counters.retries += 1;
            if !backoff.sleep(shutdown).await {
                bail!("stopped before the batch was acknowledged");
            }
        }
    }

    /// Delivers a batch: returns once every event is stored or dropped. Events the server names
    /// as invalid are dropped and the others sent again; a batch refused without names, or
    /// failing with 500, is split in halves until the culprit is alone. A lone event is dropped
    /// on a 500 only if the server answered an empty batch before and after failing on it again
    /// (so it works, but not with this event); otherwise the server is down and the event waits. Gives up only on
    /// shutdown or a refused token.
    pub async fn deliver(
        &self,
        events: &[Value],
        counters: &mut Counters,
        shutdown: &mut Shutdown,
    ) -> anyhow::Result<()> {
        counters.batches += 1;
        counters.events_sent += events.len() as u64;
        // Parts still to send, as indexes into `events`, the last sent first; and whether the
        // server, seen working, already failed on this lone event once.
        let mut work: Vec<(Vec<usize>, bool)> = vec![((0..events.len()).collect(), false)];
        let mut pause = Backoff::new(Duration::from_millis(250), MAX_BACKOFF);
        while let Some((part, suspect)) = work.pop() {
            if part.is_empty() {
                continue;
            }
            let items: Vec<&Value> = part.iter().map(|&i| &events[i]).collect();
            match self.post(&items, counters, shutdown).await? {
                Answer::Stored {
                    created,
                    duplicates,
                } => {
                    counters.events_created += created;
                    counters.events_duplicate += duplicates;
                }
                Answer::Invalid(named) => {
                    let mut bad: BTreeMap<usize, String> = BTreeMap::new();
                    for (i, reason) in named {
                        bad.entry(i).or_insert(reason);
                    }
                    let mut reasons: BTreeMap<&str, u64> = BTreeMap::new();
                    for reason in bad.values() {
                        counters.drop_event(reason);
                        *reasons.entry(reason).or_default() += 1;
                    }
                    tracing::warn!(
                        dropped = bad.len(),
                        sent_again = part.len() - bad.len(),
                        reasons = ?reasons,
                        "the server refused some events as invalid; they are dropped, the others sent again"
                    );
                    work.push((
                        part.iter()
                            .enumerate()
                            .filter(|(k, _)| !bad.contains_key(k))
                            .map(|(_, &i)| i)
                            .collect(),
                        false,
                    ));
                }
                Answer::Refused(_) | Answer::Failing if part.len() > 1 => {
                    let (first, second) = part.split_at(part.len() / 2);
                    work.push((second.to_vec(), false));
                    work.push((first.to_vec(), false));
                }
                Answer::Refused(reason) => {
                    tracing::warn!(
                        reason = reason.as_str(),
                        "the server refused an event; it is dropped"
                    );
                    counters.drop_event(&reason);
                }
                // Working before and after two failures on this event: it is the event. (Once
                // is not enough: the server may have come back just before the probe.)
                Answer::Failing => match self.post(&[], counters, shutdown).await? {
                    Answer::Stored { .. } if suspect => {
                        tracing::error!(
                            "the server fails on one event (500) but answers others; it is dropped"
                        );
                        counters.drop_event("server_error");
                    }
                    Answer::Stored { .. } => work.push((part, true)),
                    _ => {
                        tracing::warn!("the server fails on every request; retrying");
                        counters.retries += 1;
                        if !pause.sleep(shutdown).await {
                            bail!("stopped before the batch was acknowledged");
                        }
                        work.push((part, false));
                    }
                },
            }
        }
        Ok(())
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

/// How long an idle shipper waits before it looks at the log again.
const IDLE_WAIT: Duration = Duration::from_millis(200);

/// Follows `log` until shutdown, shipping events and saving `state_path` after each ack.
pub async fn ship(
    log: &Path,
    state_path: &Path,
    opts: &ShipOptions,
    shutdown: Shutdown,
) -> anyhow::Result<Counters> {
    let mut shipper = Shipper::open(log, state_path, opts, shutdown.clone())?;
    crate::worker::run_until_stopped(&mut shipper, shutdown).await?;
    Ok(shipper.conv.counters)
}

/// A shipper as a worker: each step reads what is new in the log, converts it, and sends
/// the batch when it is full or old enough. It steps again at once while the log has more,
/// and every `IDLE_WAIT` when it has not. Any error stops it (the server's absence is no
/// error: `Sender` waits for it).
pub struct Shipper {
    state_path: PathBuf,
    opts: ShipOptions,
    follower: Follower,
    /// The positions in the state file.
    saved: Positions,
    conv: Converter,
    sender: Sender,
    batch: Vec<Value>,
    batch_started: Instant,
    last_report: Instant,
    /// Lets a delivery waiting for the server give up at shutdown.
    shutdown: Shutdown,
}

impl Shipper {
    /// Opens `log` at the positions saved in `state_path`, with the sessions saved there.
    pub fn open(
        log: &Path,
        state_path: &Path,
        opts: &ShipOptions,
        shutdown: Shutdown,
    ) -> anyhow::Result<Shipper> {
        let state = State::load(state_path)?;
        let follower = Follower::open(log, &state.positions(), opts.rotate_grace)
            .with_context(|| format!("cannot open {}", log.display()))?;
        let saved = state.positions();
        let conv = Converter::new(opts.format, opts.session_gap, state.sessions).with_rules(opts);
        tracing::info!(log = %log.display(), offset = saved.current.map_or(0, |(_, o)| o), sessions = conv.sessions.open_sessions().len(), "shipping");
        Ok(Shipper {
            state_path: state_path.to_path_buf(),
            opts: opts.clone(),
            follower,
            saved,
            conv,
            sender: Sender::new(&opts.to, &opts.token)?,
            batch: Vec::new(),
            batch_started: Instant::now(),
            last_report: Instant::now(),
            shutdown,
        })
    }
}

impl Worker for Shipper {
    fn name(&self) -> &str {
        "shipper"
    }

    fn period(&self) -> Option<Duration> {
        Some(IDLE_WAIT)
    }

    fn on_error(&self) -> OnError {
        OnError::Stop
    }

    async fn step(&mut self) -> anyhow::Result<Next> {
        let opts = &self.opts;
        // Local file reads are short; no need to leave the async thread for them.
        let lines = self.follower.read_lines(opts.batch_size)?;
        let idle = lines.is_empty();
        for line in lines {
            let events = self.conv.line(&line.raw);
            if self.batch.is_empty() && !events.is_empty() {
                self.batch_started = Instant::now();
            }
            self.batch.extend(events);
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
            let ended = self.conv.sessions.close_idle(chrono::Utc::now() - margin);
            if self.batch.is_empty() && !ended.is_empty() {
                self.batch_started = Instant::now();
            }
            self.batch.extend(ended);
        }
        // Every line returned is converted: the follower's position is the batch's.
        let position = self.follower.positions();
        let due = self.batch.len() >= opts.batch_size
            || (!self.batch.is_empty() && self.batch_started.elapsed() >= opts.max_delay);
        if due || (self.batch.is_empty() && position != self.saved && idle) {
            // Stopped while the server was away: the loop ends quietly (shutdown), and the
            // batch is read again next time.
            flush(
                &self.sender,
                &mut self.batch,
                &mut self.conv,
                &position,
                &self.state_path,
                opts,
                &mut self.shutdown,
            )
            .await?;
            self.saved = position.clone();
            write_metrics(opts.metrics_file.as_deref(), &self.conv.counters);
        }
        if self.last_report.elapsed() >= Duration::from_secs(60) {
            let c = &self.conv.counters;
            tracing::info!(
                lines = c.lines,
                events = c.events_sent,
                created = c.events_created,
                duplicates = c.events_duplicate,
                dropped = c.dropped_total(),
                unparsable = c.unparsable,
                cleaned = c.cleaned,
                late = c.late,
                skipped = c.skipped.values().sum::<u64>(),
                rotated_files_open = position.draining.len(),
                "shipper progress"
            );
            self.last_report = Instant::now();
        }
        Ok(if idle { Next::Wait } else { Next::Now })
    }

    /// What was read but not acknowledged is simply read again next time.
    async fn stopped(&mut self) {
        write_metrics(self.opts.metrics_file.as_deref(), &self.conv.counters);
    }
}

/// Delivers the batch in requests of at most `batch_size`, then saves the position.
async fn flush(
    sender: &Sender,
    batch: &mut Vec<Value>,
    conv: &mut Converter,
    position: &Positions,
    state_path: &Path,
    opts: &ShipOptions,
    shutdown: &mut Shutdown,
) -> anyhow::Result<()> {
    for chunk in batch.chunks(opts.batch_size.max(1)) {
        sender.deliver(chunk, &mut conv.counters, shutdown).await?;
    }
    batch.clear();
    State {
        file: position.current.map(|(f, _)| f),
        offset: position.current.map_or(0, |(_, o)| o),
        draining: position.draining.clone(),
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
            batch.extend(conv.line(&line));
            if batch.len() >= opts.batch_size {
                sender
                    .deliver(&batch, &mut conv.counters, &mut shutdown)
                    .await?;
                batch.clear();
            }
        }
    }
    batch.extend(conv.sessions.close_all());
    for chunk in batch.chunks(opts.batch_size.max(1)) {
        sender
            .deliver(chunk, &mut conv.counters, &mut shutdown)
            .await?;
    }
    progress.finish_and_clear();
    write_metrics(opts.metrics_file.as_deref(), &conv.counters);
    Ok(conv.counters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_control_characters_and_invalid_utf8_are_cleaned_from_fields() {
        let mut conv = Converter::new(Format::Icecast, Duration::from_secs(20), Vec::new());
        let good = br#"203.0.113.9 - - [05/Nov/2024:11:16:32 +0000] "GET /live.mp3 HTTP/1.1" 200 480 "-" "VLC/3.0" 60"#;
        let mut raw_nul = good.to_vec();
        let at = raw_nul.windows(3).position(|w| w == b"VLC").unwrap();
        raw_nul.insert(at + 1, 0);
        let mut bad_utf8 = good.to_vec();
        bad_utf8.splice(at..at, [0xff, 0xfe]);
        let escaped = br#"203.0.113.9 - - [05/Nov/2024:11:16:32 +0000] "GET /live.mp3 HTTP/1.1" 200 480 "-" "M\xC3\xBCller\x00\x07" 60"#;
        let ua = |raw: &[u8], conv: &mut Converter| {
            conv.line(raw)[0]["user_agent"]
                .as_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(ua(good, &mut conv), "VLC/3.0");
        assert_eq!(ua(&raw_nul, &mut conv), "V\u{FFFD}LC/3.0");
        assert_eq!(ua(&bad_utf8, &mut conv), "\u{FFFD}\u{FFFD}VLC/3.0");
        // nginx escapes each byte of a UTF-8 character: decoded as bytes, not as Latin-1.
        assert_eq!(ua(escaped, &mut conv), "Müller\u{FFFD}\u{FFFD}");
        assert_eq!(conv.counters.cleaned, 3);

        let long = format!(
            r#"{{"msec":"1730805392.1","ip":"1.2.3.4","method":"GET","uri":"/hls/a/1.ts","status":200,"bytes":5,"ua":"{}é\u0000"}}"#,
            "x".repeat(MAX_FIELD_BYTES - 1)
        );
        let mut hls = Converter::new(Format::NginxHls, Duration::from_secs(20), Vec::new());
        assert!(hls.line(long.as_bytes()).is_empty());
        let ua = &hls.sessions.open_sessions()[0].user_agent;
        assert_eq!(ua.len(), MAX_FIELD_BYTES - 1, "cut on a character boundary");
        assert_eq!(hls.counters.cleaned, 1);

        // Seconds connected that leave no representable start: unparsable, not a panic.
        let huge = br#"203.0.113.9 - - [05/Nov/2024:11:16:32 +0000] "GET /live.mp3 HTTP/1.1" 200 480 "-" "VLC" 18446744073709551615"#;
        assert!(conv.line(huge).is_empty());
        assert_eq!(conv.counters.unparsable, 1);
    }

    #[test]
    fn refusals_name_items_by_index_or_by_a_bracketed_field() {
        let body = r#"{"error":"validation","message":"2 problems","details":[
            {"index":1,"field":"user_agent","message":"contains NUL"},
            {"index":1,"field":"path","message":"x"},
            {"field":"[3].seconds_connected","message":"too large"},
            {"index":99,"field":"path","message":"not in this request"}]}"#;
        match refusal(400, body, 4) {
            Answer::Invalid(named) => assert_eq!(
                named,
                [
                    (1, "invalid_user_agent".to_string()),
                    (1, "invalid_path".to_string()),
                    (3, "invalid_seconds_connected".to_string())
                ]
            ),
            _ => panic!("items are named"),
        }
        assert!(matches!(
            refusal(400, r#"{"error":"bad_request","message":"not an array","details":[]}"#, 4),
            Answer::Refused(r) if r == "http_400"
        ));
        assert!(matches!(refusal(413, "<html>", 4), Answer::Refused(r) if r == "http_413"));
        assert_eq!(reason_of("{weird\"} field"), "invalid_weird___field");
        assert_eq!(reason_of(""), "invalid_item");
    }
}
