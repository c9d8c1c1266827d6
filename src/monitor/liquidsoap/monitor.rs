//! The Liquidsoap monitor of one station: each tick it logs what is on air (ON_AIR), the
//! tracks reached inside it, starts the scheduled diffusion when the queue is free (START),
//! cancels one that could not start in time (CANCEL), pushes again a started diffusion that a
//! Liquidsoap restart lost, and keeps the programme playlists in sync.
//!
//! Everything it writes is deduplicated by unique indexes, so restarts, reconnects or a
//! second airlog on the same database cannot log anything twice.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use diesel::PgConnection;

use super::client::{Client, ClientError, Endpoint, Timeouts};
use super::protocol::{on_air, parse_float, parse_metadata, parse_rids, parse_uptime, OnAir};
use crate::db::playout::{self, DiffusionRow, NewLog, StationRow};
use crate::db::{DbError, DbPool};

/// How often programme playlists are rewritten (when changed).
const PLAYLIST_SYNC: Duration = Duration::from_secs(300);
/// Push attempts of one diffusion when its requests die without a Liquidsoap restart.
const MAX_ATTEMPTS: i32 = 3;
/// Margin added to the poll interval when judging "nearly done" (the aircox rule).
const MARGIN: Duration = Duration::from_secs(5);

/// A station's monitoring settings, checked.
#[derive(Debug, Clone)]
pub struct StationConfig {
    pub id: i64,
    pub name: String,
    pub tz: Tz,
    pub endpoint: Endpoint,
    pub queue_id: String,
    pub output_id: String,
    pub playlist_dir: Option<PathBuf>,
    pub poll: Duration,
    pub cancel_timeout: Duration,
}

impl TryFrom<&StationRow> for StationConfig {
    type Error = String;
    fn try_from(s: &StationRow) -> Result<StationConfig, String> {
        Ok(StationConfig {
            id: s.id,
            name: s.name.clone(),
            tz: s
                .time_zone
                .parse()
                .map_err(|_| format!("station {}: unknown time zone {:?}", s.name, s.time_zone))?,
            endpoint: s
                .endpoint
                .parse()
                .map_err(|e| format!("station {}: {e}", s.name))?,
            queue_id: s.queue_id.clone(),
            output_id: s.output_id.clone(),
            playlist_dir: (!s.playlist_dir.is_empty()).then(|| PathBuf::from(&s.playlist_dir)),
            poll: Duration::from_millis(s.poll_ms.max(100) as u64),
            cancel_timeout: Duration::from_secs(s.cancel_timeout_s.max(1) as u64),
        })
    }
}

/// What one tick saw and did, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Tick {
    pub on_air: Option<String>,
    pub logged_sounds: usize,
    pub logged_tracks: usize,
    pub started: Option<i64>,
    pub cancelled: Option<i64>,
    pub repushed: Option<i64>,
    pub playlists_written: usize,
}

/// The last sound logged per source, so a sound is looked up in the database only once.
#[derive(Debug, Clone)]
struct Logged {
    log_id: i64,
    path: String,
    date: DateTime<Utc>,
    sound_id: Option<i64>,
    is_show: bool,
}

/// One station's monitor.
pub struct Monitor {
    station: StationConfig,
    client: Client,
    pool: DbPool,
    last: HashMap<String, Logged>,
    next_sync: Instant,
    playlists: HashMap<PathBuf, String>,
}

async fn db<T: Send + 'static>(
    pool: &DbPool,
    f: impl FnOnce(&mut PgConnection) -> diesel::QueryResult<T> + Send + 'static,
) -> anyhow::Result<T> {
    crate::db::run(pool, move |c| f(c).map_err(DbError::from))
        .await
        .map_err(anyhow::Error::from)
}

impl Monitor {
    pub fn new(station: StationConfig, pool: DbPool) -> Monitor {
        let client = Client::new(station.endpoint.clone(), Timeouts::default());
        Monitor {
            station,
            client,
            pool,
            last: HashMap::new(),
            next_sync: Instant::now(),
            playlists: HashMap::new(),
        }
    }

    /// The station monitored.
    pub fn station(&self) -> &StationConfig {
        &self.station
    }

    /// One pass: what is on air, its tracks, the schedule, the playlists.
    pub async fn tick(&mut self, now: DateTime<Utc>) -> anyhow::Result<Tick> {
        let mut tick = Tick::default();
        let rids = parse_rids(&self.client.command("request.on_air").await?);
        let mut queue_on_air = None;
        for rid in rids {
            let reply = match self
                .client
                .command(&format!("request.metadata {rid}"))
                .await
            {
                Ok(r) => r,
                // The request ended between the two commands.
                Err(ClientError::Server { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            let Some(air) = on_air(parse_metadata(&reply), self.station.tz, now) else {
                continue;
            };
            if air.source == self.station.queue_id {
                queue_on_air = Some(air.rid);
            }
            tick.on_air = Some(air.uri.clone());
            let (log, new) = self.log_sound(&air).await?;
            tick.logged_sounds += usize::from(new);
            tick.logged_tracks += self.log_tracks(&air, &log, now).await?;
        }
        self.handle_diffusions(now, queue_on_air.is_some(), &mut tick)
            .await?;
        if Instant::now() >= self.next_sync {
            tick.playlists_written = self.sync_playlists().await?;
            self.next_sync = Instant::now() + PLAYLIST_SYNC;
        }
        Ok(tick)
    }

    async fn log_sound(&mut self, air: &OnAir) -> anyhow::Result<(Logged, bool)> {
        if let Some(last) = self.last.get(&air.source) {
            if last.path == air.uri && last.date == air.air_time {
                return Ok((last.clone(), false));
            }
        }
        let station_id = self.station.id;
        let air = air.clone();
        let moved = air.clone();
        let (logged, new) = db(&self.pool, move |c| {
            let air = moved;
            let sound = playout::sound_by_path(c, &air.uri)?;
            let diffusion_id = playout::diffusion_playing(c, station_id, &air.uri, air.air_time)?;
            let tags: serde_json::Map<String, serde_json::Value> = air
                .metadata
                .0
                .iter()
                .filter(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "rid"
                            | "on_air"
                            | "on_air_timestamp"
                            | "status"
                            | "temporary"
                            | "kind"
                            | "decoder"
                    )
                })
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect();
            let comment = match (&air.artist, &air.title) {
                (Some(a), Some(t)) => format!("{a} - {t}"),
                (None, Some(t)) => t.clone(),
                _ => air.uri.clone(),
            };
            let new = playout::insert_log(
                c,
                &NewLog {
                    station_id,
                    r#type: "on_air",
                    date: air.air_time,
                    source: &air.source,
                    comment: &comment,
                    path: Some(&air.uri),
                    sound_id: sound.as_ref().map(|s| s.id),
                    diffusion_id,
                    tags: serde_json::Value::Object(tags),
                    date_from: Some(air.air_time_from),
                    ..NewLog::default()
                },
            )?;
            let row = playout::sound_log(c, station_id, &air.source, &air.uri, air.air_time)?
                .ok_or(diesel::result::Error::NotFound)?;
            Ok((
                Logged {
                    log_id: row.id,
                    path: air.uri.clone(),
                    date: air.air_time,
                    sound_id: row.sound_id,
                    is_show: row.diffusion_id.is_some(),
                },
                new.is_some(),
            ))
        })
        .await?;
        if new {
            tracing::info!(station = self.station.name.as_str(), path = air.uri.as_str(), source = air.source.as_str(),
                date = %air.air_time, date_from = air.air_time_from, "on air");
        }
        self.last.insert(air.source.clone(), logged.clone());
        Ok((logged, new))
    }

    /// Logs the tracks of a sound already reached, at sound start + timestamp, never ahead of
    /// now; after a restart the ones missed are filled in. Shows (diffusions) get none.
    async fn log_tracks(
        &mut self,
        air: &OnAir,
        log: &Logged,
        now: DateTime<Utc>,
    ) -> anyhow::Result<usize> {
        let Some(sound_id) = log.sound_id else {
            return Ok(0);
        };
        if log.is_show {
            return Ok(0);
        }
        let (station_id, parent, start, source) =
            (self.station.id, log.log_id, log.date, air.source.clone());
        db(&self.pool, move |c| {
            let mut n = 0;
            for t in playout::unlogged_tracks(c, sound_id, parent)? {
                let at = start + chrono::Duration::milliseconds((t.timestamp_s * 1000.0) as i64);
                if at > now {
                    break;
                }
                let comment = if t.artist.is_empty() {
                    t.title.clone()
                } else {
                    format!("{} - {}", t.artist, t.title)
                };
                let new = playout::insert_log(
                    c,
                    &NewLog {
                        station_id,
                        r#type: "on_air",
                        date: at,
                        source: &source,
                        comment: &comment,
                        sound_id: Some(sound_id),
                        track_id: Some(t.id),
                        parent_id: Some(parent),
                        tags: serde_json::json!({}),
                        date_from: Some("track_timestamp"),
                        ..NewLog::default()
                    },
                )?;
                n += usize::from(new.is_some());
            }
            Ok(n)
        })
        .await
    }

    async fn handle_diffusions(
        &mut self,
        now: DateTime<Utc>,
        queue_on_air: bool,
        tick: &mut Tick,
    ) -> anyhow::Result<()> {
        let station_id = self.station.id;
        tick.repushed = self.repush_lost(now).await?;
        let Some(d) = db(&self.pool, move |c| {
            playout::pending_diffusion(c, station_id, now)
        })
        .await?
        else {
            return Ok(());
        };
        let queued = parse_rids(
            &self
                .client
                .command(&format!("{}.queue", self.station.queue_id))
                .await?,
        );
        let nearly_done = if queue_on_air {
            let remaining = self
                .client
                .command(&format!("{}.remaining", self.station.output_id))
                .await
                .ok();
            remaining
                .and_then(|r| parse_float(&r))
                .is_some_and(|r| r < (self.station.poll + MARGIN).as_secs_f64())
        } else {
            true
        };
        let late = now - d.start
            > chrono::Duration::from_std(self.station.cancel_timeout).unwrap_or_default();
        if queued.is_empty() && nearly_done {
            self.start(&d, now).await?;
            tick.started = Some(d.id);
        } else if late {
            // The unique index on start/cancel decisions makes this exclusive with a start.
            let d2 = d.clone();
            if db(&self.pool, move |c| {
                playout::cancel_diffusion(c, station_id, &d2, now)
            })
            .await?
            {
                tracing::warn!(
                    station = self.station.name.as_str(),
                    diffusion = d.id,
                    title = d.title.as_str(),
                    "diffusion cancelled: the queue was busy until its cancel timeout"
                );
                tick.cancelled = Some(d.id);
            }
        }
        Ok(())
    }

    /// Claims the start in the database (START log, unique per diffusion), then pushes.
    async fn start(&mut self, d: &DiffusionRow, now: DateTime<Utc>) -> anyhow::Result<()> {
        let (station_id, id, title) = (self.station.id, d.id, d.title.clone());
        let claimed = db(&self.pool, move |c| {
            playout::insert_log(
                c,
                &NewLog {
                    station_id,
                    r#type: "start",
                    date: now,
                    comment: &title,
                    diffusion_id: Some(id),
                    tags: serde_json::json!({}),
                    ..NewLog::default()
                },
            )
        })
        .await?;
        if claimed.is_none() {
            return Ok(());
        }
        tracing::info!(
            station = self.station.name.as_str(),
            diffusion = d.id,
            title = d.title.as_str(),
            sounds = d.sounds.len(),
            "diffusion started"
        );
        self.push(d.id, 1, &d.sounds).await
    }

    /// Pushes sounds once each, recording every rid answered. A push that failed is not
    /// retried here: whether Liquidsoap queued it is unknown, and `repush_lost` decides later
    /// from what Liquidsoap reports.
    async fn push(
        &mut self,
        diffusion_id: i64,
        attempt: i32,
        paths: &[String],
    ) -> anyhow::Result<()> {
        let mut rids = Vec::new();
        let mut failure = None;
        for (i, path) in paths.iter().enumerate() {
            match self
                .client
                .command(&format!("{}.push {path}", self.station.queue_id))
                .await
            {
                Ok(reply) => {
                    rids.push((i as i32 + 1, parse_rids(&reply).first().map(|r| *r as i64)))
                }
                Err(e) => {
                    rids.push((i as i32 + 1, None));
                    failure = Some(e);
                    break;
                }
            }
        }
        db(&self.pool, move |c| {
            playout::record_push(c, diffusion_id, attempt, &rids)
        })
        .await?;
        match failure {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// A started, still running diffusion none of whose pushed requests Liquidsoap knows any
    /// more (it restarted) and with sounds not yet played gets those pushed again. A restart
    /// is recognised by an uptime shorter than the time since the push, since a new
    /// Liquidsoap numbers its requests from 1 again and an old rid may look alive.
    async fn repush_lost(&mut self, now: DateTime<Utc>) -> anyhow::Result<Option<i64>> {
        let station_id = self.station.id;
        let running = db(&self.pool, move |c| {
            playout::running_diffusions(c, station_id, now)
        })
        .await?;
        if running.is_empty() {
            return Ok(None);
        }
        let alive = parse_rids(&self.client.command("request.alive").await?);
        let uptime = parse_uptime(&self.client.command("uptime").await?);
        for d in running {
            let id = d.id;
            let (push, played) = db(&self.pool, move |c| {
                Ok((playout::last_push(c, id)?, playout::played_paths(c, id)?))
            })
            .await?;
            let restarted = match (uptime, push.pushed_at) {
                (Some(up), Some(at)) => (now - at).num_seconds() > up as i64 + 1,
                _ => false,
            };
            let attempt = push.attempt;
            if !restarted && push.rids.iter().any(|r| alive.contains(&(*r as u64))) {
                continue;
            }
            let missing: Vec<String> = d
                .sounds
                .iter()
                .filter(|p| !played.contains(p))
                .cloned()
                .collect();
            if missing.is_empty() {
                continue;
            }
            // Requests that died without a restart (a missing file, say) are tried a few
            // times, not forever.
            if !restarted && attempt >= MAX_ATTEMPTS {
                continue;
            }
            // Nothing of the last attempt is alive and sounds were never heard: lost.
            tracing::warn!(station = self.station.name.as_str(), diffusion = id, attempt = attempt + 1, sounds = missing.len(),
                "Liquidsoap lost a started diffusion (restart?); pushing its remaining sounds again");
            self.push(id, attempt + 1, &missing).await?;
            return Ok(Some(id));
        }
        Ok(None)
    }

    /// Writes `<playlist_dir>/<programme>.m3u` for each programme whose list changed, atomically.
    pub async fn sync_playlists(&mut self) -> anyhow::Result<usize> {
        let Some(dir) = self.station.playlist_dir.clone() else {
            return Ok(0);
        };
        let lists = db(&self.pool, playout::programme_playlists).await?;
        let mut written = 0;
        for (program, paths) in lists {
            let name: String = program
                .chars()
                .map(|c| {
                    if c.is_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let file = dir.join(format!("{name}.m3u"));
            let content = format!("#EXTM3U\n{}\n", paths.join("\n"));
            if self.playlists.get(&file) == Some(&content)
                || std::fs::read_to_string(&file).ok().as_ref() == Some(&content)
            {
                self.playlists.insert(file, content);
                continue;
            }
            write_atomically(&file, &content)?;
            tracing::info!(station = self.station.name.as_str(), file = %file.display(), sounds = paths.len(), "playlist written");
            self.playlists.insert(file, content);
            written += 1;
        }
        Ok(written)
    }

    /// Ticks every poll interval until shutdown; errors are logged and retried with backoff,
    /// and never touch Liquidsoap beyond reconnecting.
    pub async fn run_until_stopped(mut self, mut shutdown: crate::shutdown::Shutdown) {
        let mut backoff = self.station.poll;
        let mut failing = false;
        loop {
            let wait = match self.tick(Utc::now()).await {
                Ok(_) => {
                    if failing {
                        tracing::info!(station = self.station.name.as_str(), "monitor recovered");
                        failing = false;
                    }
                    backoff = self.station.poll;
                    self.station.poll
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(
                            station = self.station.name.as_str(),
                            error = format!("{e:#}"),
                            "monitor tick failed; retrying with backoff"
                        );
                    }
                    failing = true;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    backoff
                }
            };
            tokio::select! {
                _ = shutdown.requested() => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        self.client.close().await;
        tracing::info!(station = self.station.name.as_str(), "monitor stopped");
    }
}

fn write_atomically(file: &Path, content: &str) -> anyhow::Result<()> {
    use anyhow::Context;
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let tmp = file.with_extension("m3u.tmp");
    std::fs::write(&tmp, content).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, file).with_context(|| format!("cannot replace {}", file.display()))?;
    Ok(())
}
