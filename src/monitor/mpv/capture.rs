//! Live capture from running mpv instances: each instance's events are written as they arrive
//! (nothing is lost on a crash or a suspend), numbered in their order, and its plays are
//! rebuilt from them by mpv's own file boundaries (`super::live`) as they end.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::client::{MpvClient, MpvError, Timed};
use super::history::content_hash;
use super::live::{Change, Event, LivePlay, Rebuild};
use super::protocol::Incoming;
use crate::db::DbPool;
use crate::domain::play::Rules;
use crate::domain::playout::LogType;
use crate::shutdown::Shutdown;
use crate::worker::{Backoff, Next, OnError, Worker};

/// Properties observed on every instance, with their observer ids.
const OBSERVED: &[(u64, &str)] = &[
    (1, "pause"),
    (2, "path"),
    (3, "media-title"),
    (4, "metadata"),
    (5, "duration"),
    (6, "playlist-pos"),
    (7, "playlist-count"),
    (8, "idle-active"),
    (9, "playlist"),
];

fn seconds(t: chrono::DateTime<chrono::Utc>) -> f64 {
    t.timestamp_micros() as f64 / 1e6
}

/// Stores finished plays (again: each is stored once, by its key).
async fn store_plays(
    pool: &DbPool,
    instance: &str,
    plays: Vec<LivePlay>,
    rules: Rules,
) -> anyhow::Result<usize> {
    if plays.is_empty() {
        return Ok(0);
    }
    let instance = instance.to_string();
    crate::db::run(pool, move |c| -> Result<usize, anyhow::Error> {
        let mut new = 0;
        for lp in &plays {
            let p = &lp.play;
            let hash = if p.is_stream {
                None
            } else {
                content_hash(Path::new(&p.path))
            };
            let item = crate::db::mpv::item_for(
                c,
                &p.path,
                p.is_stream,
                p.media_title.as_deref().unwrap_or(""),
                hash.as_deref(),
            )?;
            let key = format!("live:{instance}:{}", lp.key);
            new += usize::from(crate::db::mpv::insert_play(
                c,
                item,
                "live",
                &key,
                &instance,
                p,
                Some(&lp.end_reason),
                &rules,
            )?);
        }
        Ok(new)
    })
    .await
}

/// Rebuilds an instance's plays from all its stored events and stores those not stored yet
/// (a play still open is left for later); returns how many were new.
pub async fn rebuild(pool: &DbPool, instance: &str, rules: Rules) -> anyhow::Result<usize> {
    let (_, ended) = replay(pool, instance).await?;
    store_plays(pool, instance, ended, rules).await
}

/// The rebuild state after an instance's stored events, the plays they finished, and the
/// next sequence number.
async fn replay(pool: &DbPool, instance: &str) -> anyhow::Result<(Replayed, Vec<LivePlay>)> {
    let name = instance.to_string();
    let rows = crate::db::run(pool, move |c| crate::db::mpv::events(c, &name)).await?;
    let home = std::env::var("HOME").unwrap_or_else(|_| "/".into());
    let mut state = Rebuild::new(&home);
    let mut ended = Vec::new();
    let mut next_seq = 1;
    for r in rows {
        next_seq = r.seq + 1;
        let e = Event {
            seq: r.seq,
            time: seconds(r.time),
            name: r.event,
            data: r.data.unwrap_or(Value::Null),
        };
        for change in state.feed(&e) {
            if let Change::Ended(p) = change {
                ended.push(p);
            }
        }
    }
    Ok((Replayed { state, next_seq }, ended))
}

struct Replayed {
    state: Rebuild,
    next_seq: i64,
}

/// Writes one instance's events in order, and acts on what they change.
struct Recorder {
    pool: DbPool,
    instance: String,
    next_seq: i64,
    state: Rebuild,
    opts: CaptureOptions,
}

impl Recorder {
    /// Stores an event, then feeds it to the rebuild: finished plays are stored, started ones
    /// logged on air.
    async fn record(
        &mut self,
        at: chrono::DateTime<chrono::Utc>,
        event: &str,
        data: Value,
    ) -> anyhow::Result<()> {
        let seq = self.next_seq;
        let (instance, name, stored) = (self.instance.clone(), event.to_string(), data.clone());
        crate::db::run(&self.pool, move |c| {
            crate::db::mpv::insert_event(c, &instance, seq, at, &name, &stored)
        })
        .await?;
        self.next_seq += 1;
        let changes = self.state.feed(&Event {
            seq,
            time: seconds(at),
            name: event.to_string(),
            data,
        });
        let mut ended = Vec::new();
        for change in changes {
            match change {
                Change::Ended(p) => ended.push(p),
                Change::Started { time, path, .. } => {
                    if let Some(station) = &self.opts.station {
                        let at = chrono::DateTime::<chrono::Utc>::from_timestamp_micros(
                            (time * 1e6).round() as i64,
                        )
                        .unwrap_or(at);
                        log_on_air(&self.pool, station, &self.instance, at, path).await?;
                    }
                }
            }
        }
        store_plays(&self.pool, &self.instance, ended, self.opts.rules).await?;
        Ok(())
    }

    /// Records the playlist entries (id and filename) the rebuild does not know yet.
    async fn record_entries(
        &mut self,
        at: chrono::DateTime<chrono::Utc>,
        playlist: &Value,
    ) -> anyhow::Result<()> {
        let mut new = Map::new();
        for entry in playlist.as_array().into_iter().flatten() {
            if let (Some(id), Some(f)) = (
                entry.get("id").and_then(Value::as_i64),
                entry.get("filename").and_then(Value::as_str),
            ) {
                if self.state.entry(id) != Some(f) {
                    new.insert(id.to_string(), Value::from(f));
                }
            }
        }
        if new.is_empty() {
            return Ok(());
        }
        self.record(at, "playlist-entries", Value::Object(new))
            .await
    }
}

/// What mpv is doing as a capture begins: its process, directory and the entry it plays.
async fn snapshot(client: &MpvClient) -> Result<(Value, Option<Value>), MpvError> {
    let pid = client.get("pid").await?;
    let working_dir = client.get("working-directory").await?;
    let playlist = client.get("playlist").await?;
    let time_pos = client.get("time-pos").await?;
    let pause = client.get("pause").await?;
    let playing = playlist
        .as_ref()
        .and_then(Value::as_array)
        .and_then(|l| {
            l.iter()
                .find(|e| e.get("playing").and_then(Value::as_bool) == Some(true))
        })
        .map(|e| json!({"id": e.get("id"), "filename": e.get("filename")}));
    Ok((
        json!({
            "pid": pid,
            "working-directory": working_dir,
            "playing": playing,
            "time-pos": time_pos,
            "pause": pause,
        }),
        playlist,
    ))
}

/// How plays are judged and logged, and how long a refusing socket is tried.
#[derive(Debug, Clone)]
pub struct CaptureOptions {
    pub rules: Rules,
    /// The station whose as-run log gets an ON_AIR entry for each file played.
    pub station: Option<String>,
    /// A socket that refuses connections is tried again (with backoff) this long before it
    /// counts as dead: a starting mpv creates its socket file before it accepts.
    pub refused_grace: Duration,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        CaptureOptions {
            rules: Rules::default(),
            station: None,
            refused_grace: Duration::from_secs(30),
        }
    }
}

/// Logs a file's start in the station's as-run log (deduplicated like every entry).
async fn log_on_air(
    pool: &DbPool,
    station: &str,
    instance: &str,
    at: chrono::DateTime<chrono::Utc>,
    path: String,
) -> anyhow::Result<()> {
    let (station, source) = (station.to_string(), format!("mpv:{instance}"));
    crate::db::run(pool, move |c| -> Result<(), anyhow::Error> {
        let Some(s) = crate::db::playout::station(c, &station)? else {
            tracing::warn!(
                station = station.as_str(),
                "mpv.station names no station; nothing logged on air"
            );
            return Ok(());
        };
        let sound = crate::db::playout::sound_by_path(c, &path)?;
        crate::db::playout::insert_log(
            c,
            &crate::db::playout::NewLog {
                station_id: s.id,
                r#type: LogType::OnAir,
                date: at,
                source: &source,
                comment: &path,
                path: Some(&path),
                sound_id: sound.map(|s| s.id),
                tags: json!({}),
                date_from: Some("mpv"),
                ..Default::default()
            },
        )?;
        Ok(())
    })
    .await
}

/// Captures one instance until its socket closes (or shutdown). The events stored before (an
/// earlier connection to the same socket name) are replayed first, so a play in progress goes
/// on across a restart of airlog.
pub async fn capture(
    pool: DbPool,
    socket: PathBuf,
    opts: CaptureOptions,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    crate::worker::run_until_stopped(&mut Capture::new(pool, socket, opts), shutdown).await
}

/// One instance's capture as a worker: its first step connects, each later step records the
/// event that woke it. Any failure ends it (the watcher tries the socket again at its next
/// scan).
pub struct Capture {
    pool: DbPool,
    socket: PathBuf,
    instance: String,
    opts: CaptureOptions,
    live: Option<Live>,
    /// What the trigger received: an event, or `None` when the connection's reader ended.
    pending: Option<Option<Timed>>,
}

/// A connected instance.
struct Live {
    client: MpvClient,
    events: tokio::sync::mpsc::UnboundedReceiver<Timed>,
    rec: Recorder,
    /// mpv said it quits (an `end-file` with reason `quit`).
    quit: bool,
}

impl Capture {
    /// The capture of the mpv at `socket` (not connected yet).
    pub fn new(pool: DbPool, socket: PathBuf, opts: CaptureOptions) -> Capture {
        let instance = socket
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Capture {
            pool,
            socket,
            instance,
            opts,
            live: None,
            pending: None,
        }
    }

    /// Connects, replays the stored events, observes the properties and records what mpv is
    /// doing now.
    async fn connect(&self) -> anyhow::Result<Live> {
        let (pool, instance) = (&self.pool, self.instance.as_str());
        let (client, events) = MpvClient::connect(&self.socket, Duration::from_secs(2)).await?;
        let (replayed, ended) = replay(pool, instance).await?;
        store_plays(pool, instance, ended, self.opts.rules).await?;
        let mut rec = Recorder {
            pool: pool.clone(),
            instance: instance.to_string(),
            next_seq: replayed.next_seq,
            state: replayed.state,
            opts: self.opts.clone(),
        };
        // Observed first, so nothing that changes after the snapshot goes unseen.
        for (id, name) in OBSERVED {
            client.observe(*id, name).await?;
        }
        let (state, playlist) = snapshot(&client).await?;
        let at = chrono::Utc::now();
        if let Some(list) = &playlist {
            rec.record_entries(at, list).await?;
        }
        rec.record(at, "connected", state).await?;
        tracing::info!(instance, "capturing mpv");
        Ok(Live {
            client,
            events,
            rec,
            quit: false,
        })
    }
}

impl Live {
    /// Records one thing mpv said; `Stop` once its socket closed.
    async fn handle(
        &mut self,
        at: chrono::DateTime<chrono::Utc>,
        incoming: Incoming,
    ) -> anyhow::Result<Next> {
        let (client, rec) = (&self.client, &mut self.rec);
        match incoming {
            Incoming::PropertyChange { name, data, .. } => match (name.as_str(), data) {
                ("pause", Some(Value::Bool(p))) => {
                    let pos = client.get("percent-pos").await.ok().flatten();
                    let event = if p { "paused" } else { "resumed" };
                    rec.record(at, event, json!({"percent-pos": pos})).await?;
                }
                ("playlist", Some(list)) => rec.record_entries(at, &list).await?,
                (
                    "path" | "media-title" | "metadata" | "duration" | "playlist-pos"
                    | "playlist-count" | "idle-active",
                    Some(v),
                ) if !v.is_null() => rec.record(at, &name, v).await?,
                _ => {}
            },
            Incoming::Event { name, fields } => match name.as_str() {
                "start-file" => {
                    let id = fields.get("playlist_entry_id").and_then(Value::as_i64);
                    if id.is_some_and(|id| rec.state.entry(id).is_none()) {
                        // Not in any playlist seen yet (replaced at once): ask while it is there.
                        if let Ok(Some(list)) = client.get("playlist").await {
                            rec.record_entries(at, &list).await?;
                        }
                    }
                    rec.record(at, "start-file", Value::Object(fields)).await?;
                }
                "end-file" => {
                    self.quit |= fields.get("reason").and_then(Value::as_str) == Some("quit");
                    rec.record(at, "end-file", Value::Object(fields)).await?;
                }
                "file-loaded" => rec.record(at, "file-loaded", json!({})).await?,
                "seek" => {
                    let pos = client.get("percent-pos").await.ok().flatten();
                    rec.record(at, "seek", json!({"percent-pos": pos})).await?;
                }
                _ => {}
            },
            Incoming::Closed => {
                // A quit if mpv said so. Otherwise it died, or quit while idle (mpv then sends
                // nothing): a file still playing ends as a crash.
                let reason = if self.quit { "quit" } else { "closed" };
                rec.record(at, "disconnected", json!({ "reason": reason }))
                    .await?;
                tracing::info!(
                    instance = rec.instance.as_str(),
                    reason,
                    "mpv instance gone"
                );
                return Ok(Next::Stop);
            }
            Incoming::Reply { .. } => {}
        }
        Ok(Next::Wait)
    }
}

impl Worker for Capture {
    fn name(&self) -> &str {
        "mpv capture"
    }

    fn span(&self) -> tracing::Span {
        tracing::info_span!(
            "worker",
            worker = self.name(),
            instance = self.instance.as_str()
        )
    }

    /// Woken by mpv's events only.
    fn period(&self) -> Option<Duration> {
        None
    }

    fn on_error(&self) -> OnError {
        OnError::Stop
    }

    async fn step(&mut self) -> anyhow::Result<Next> {
        let Some(live) = self.live.as_mut() else {
            self.live = Some(self.connect().await?);
            return Ok(Next::Wait);
        };
        match self.pending.take() {
            None => Ok(Next::Wait),
            Some(None) => Ok(Next::Stop),
            Some(Some((at, incoming))) => live.handle(at, incoming).await,
        }
    }

    async fn trigger(&mut self) {
        match self.live.as_mut() {
            Some(live) => self.pending = Some(live.events.recv().await),
            None => std::future::pending().await,
        }
    }
}

/// Whether some process still has a socket bound to `path` (it is listed in /proc/net/unix):
/// mpv binds its socket before it listens, and a socket file whose mpv is gone is listed by
/// nobody. Paths bound relative to another directory match by their end.
fn socket_held(path: &Path) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/unix") else {
        // Cannot tell: assume held, so nothing live is ever deleted.
        return true;
    };
    let full = path.display().to_string();
    table.lines().skip(1).any(|line| {
        // Num RefCount Protocol Flags Type St Inode Path: the path is what follows the 7th field.
        let mut rest = line.trim_start();
        for _ in 0..7 {
            rest = match rest.split_once(char::is_whitespace) {
                Some((_, r)) => r.trim_start(),
                None => return false,
            };
        }
        let bound = rest.trim_end();
        !bound.is_empty()
            && (bound == full || (!bound.starts_with('/') && full.ends_with(&format!("/{bound}"))))
    })
}

fn refused(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<MpvError>(),
            Some(MpvError::Connect(_, io)) if io.kind() == std::io::ErrorKind::ConnectionRefused
        )
    })
}

/// How one socket stands with the watcher.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Known {
    /// A task is capturing it, or trying to.
    Busy,
    /// It refused for long and nobody holds it: not tried again until the file changes (a new
    /// mpv at the same path) or SIGUSR1.
    Dead(u64),
}

fn inode(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.ino())
}

/// Captures one socket: connects (a refused connection is tried again with backoff for
/// `refused_grace`), captures until mpv goes, and says whether the socket is dead.
async fn attend(
    pool: DbPool,
    socket: PathBuf,
    remove_dead: bool,
    opts: CaptureOptions,
    mut shutdown: Shutdown,
) -> Option<Known> {
    let mut first_refused: Option<Instant> = None;
    let mut retry = Backoff::new(Duration::from_millis(50), Duration::from_secs(2));
    loop {
        let Err(e) = capture(pool.clone(), socket.clone(), opts.clone(), shutdown.clone()).await
        else {
            return None;
        };
        if !refused(&e) {
            tracing::info!(socket = %socket.display(), error = format!("{e:#}"), "mpv instance not captured; trying again at the next scan");
            return None;
        }
        let since = *first_refused.get_or_insert_with(Instant::now);
        if since.elapsed() < opts.refused_grace {
            if !retry.sleep(&mut shutdown).await {
                return None;
            }
            continue;
        }
        if socket_held(&socket) {
            tracing::info!(socket = %socket.display(), refused_s = since.elapsed().as_secs(), "mpv socket held but refusing; trying again at the next scan");
            return None;
        }
        if remove_dead {
            match std::fs::remove_file(&socket) {
                Ok(()) => {
                    tracing::info!(socket = %socket.display(), "dead mpv socket removed");
                    return None;
                }
                Err(e) => {
                    tracing::warn!(socket = %socket.display(), error = %e, "dead mpv socket not removed")
                }
            }
        } else {
            tracing::debug!(socket = %socket.display(), "mpv socket dead; left in place");
        }
        return inode(&socket).map(Known::Dead);
    }
}

/// Watches socket directories: at start, every `rescan`, on SIGUSR1 and when a directory
/// changes (inotify), each new socket gets its own capture task, so a stuck or dying instance
/// never blocks the others. A socket that refuses connections is tried again for a while (mpv
/// creates it before it listens); one that refused for long and that no process holds is dead
/// (mpv leaves it behind) and is removed when `remove_dead` is set, else tried again only once
/// it changes or on SIGUSR1. A capture that fails otherwise (a frozen mpv, say) or ends is
/// tried again at the next scan.
pub async fn watch(
    pool: DbPool,
    dirs: Vec<PathBuf>,
    rescan: Duration,
    remove_dead: bool,
    opts: CaptureOptions,
    shutdown: Shutdown,
) {
    let mut watcher = Watcher::new(pool, dirs, rescan, remove_dead, opts, shutdown.clone());
    // A scan cannot fail.
    let _ = crate::worker::run_until_stopped(&mut watcher, shutdown).await;
}

/// The socket watcher as a worker: a step is a scan; the period is the rescan interval, and
/// inotify or SIGUSR1 wake it early.
pub struct Watcher {
    pool: DbPool,
    dirs: Vec<PathBuf>,
    rescan: Duration,
    remove_dead: bool,
    opts: CaptureOptions,
    /// Handed to each capture task.
    shutdown: Shutdown,
    known: std::sync::Arc<std::sync::Mutex<HashMap<PathBuf, Known>>>,
    /// Any change in a watched directory sends one.
    poke: tokio::sync::mpsc::UnboundedReceiver<()>,
    _poke_sender: tokio::sync::mpsc::UnboundedSender<()>,
    _inotify: Option<notify::RecommendedWatcher>,
    usr1: Option<tokio::signal::unix::Signal>,
    /// The next scan tries dead sockets too (after SIGUSR1).
    everything: bool,
}

impl Watcher {
    /// A watcher of these directories (or single sockets), watching them with inotify.
    pub fn new(
        pool: DbPool,
        dirs: Vec<PathBuf>,
        rescan: Duration,
        remove_dead: bool,
        opts: CaptureOptions,
        shutdown: Shutdown,
    ) -> Watcher {
        let (poke_tx, poke) = tokio::sync::mpsc::unbounded_channel::<()>();
        // inotify: any change in a watched directory triggers a scan.
        let inotify = {
            use notify::Watcher;
            let tx = poke_tx.clone();
            let mut w = notify::recommended_watcher(move |_res: notify::Result<notify::Event>| {
                let _ = tx.send(());
            })
            .ok();
            if let Some(w) = w.as_mut() {
                for dir in &dirs {
                    if let Err(e) = w.watch(dir, notify::RecursiveMode::NonRecursive) {
                        tracing::debug!(dir = %dir.display(), error = %e, "not watching with inotify; rescans only");
                    }
                }
            }
            w
        };
        let usr1 =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1()).ok();
        Watcher {
            pool,
            dirs,
            rescan,
            remove_dead,
            opts,
            shutdown,
            known: Default::default(),
            poke,
            _poke_sender: poke_tx,
            _inotify: inotify,
            usr1,
            everything: false,
        }
    }

    /// Starts a capture task for each socket that has none (and is not known dead).
    fn scan(&mut self) {
        for dir in &self.dirs {
            // A configured path is a directory of sockets, or a socket itself.
            let candidates: Vec<PathBuf> = match std::fs::read_dir(dir) {
                Ok(entries) => entries.flatten().map(|e| e.path()).collect(),
                Err(_) if dir.exists() => vec![dir.clone()],
                Err(_) => continue,
            };
            for socket in candidates {
                {
                    let mut k = self.known.lock().unwrap_or_else(|e| e.into_inner());
                    match k.get(&socket) {
                        Some(Known::Busy) => continue,
                        Some(Known::Dead(ino))
                            if !self.everything && inode(&socket) == Some(*ino) =>
                        {
                            continue
                        }
                        _ => {}
                    }
                    k.insert(socket.clone(), Known::Busy);
                }
                let (pool, stop, known, opts) = (
                    self.pool.clone(),
                    self.shutdown.clone(),
                    self.known.clone(),
                    self.opts.clone(),
                );
                let remove_dead = self.remove_dead;
                tokio::spawn(async move {
                    let outcome = attend(pool, socket.clone(), remove_dead, opts, stop).await;
                    let mut k = known.lock().unwrap_or_else(|e| e.into_inner());
                    match outcome {
                        Some(state) => k.insert(socket, state),
                        None => k.remove(&socket),
                    };
                });
            }
        }
        self.everything = false;
    }
}

impl Worker for Watcher {
    fn name(&self) -> &str {
        "mpv socket watcher"
    }

    fn period(&self) -> Option<Duration> {
        Some(self.rescan)
    }

    fn on_error(&self) -> OnError {
        OnError::Retry(Backoff::constant(self.rescan))
    }

    async fn step(&mut self) -> anyhow::Result<Next> {
        self.scan();
        Ok(Next::Wait)
    }

    async fn trigger(&mut self) {
        let usr1 = async {
            match self.usr1.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = self.poke.recv() => {}
            _ = usr1 => {
                tracing::info!("SIGUSR1: rescanning mpv sockets, dead ones too");
                self.everything = true;
            }
        }
    }
}
