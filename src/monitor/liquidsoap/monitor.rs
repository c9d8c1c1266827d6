//! The Liquidsoap monitor of one station: each tick it reads the output's metadata history and
//! logs every sound it played (ON_AIR) and every sound resumed after an interruption, the
//! tracks heard inside them, starts the scheduled diffusion when the queue is free (START),
//! cancels one that could not start in time (CANCEL), accounts for every push (marked with
//! its id, found in Liquidsoap when its answer was lost), pushes again what a Liquidsoap restart
//! lost. The rules live in `plan`, without I/O; the programme playlists are another worker's
//! (`crate::monitor::playlists`).
//!
//! Everything it writes is deduplicated by unique indexes, so restarts, reconnects or a
//! second airlog on the same database cannot log anything twice.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use diesel::PgConnection;

use super::client::{Client, ClientError, Endpoint, Timeouts};
use super::plan::{
    emission_id, heard_tracks, plan_emissions, plan_pushes, seen_count, EmissionId, Kind,
    PollContext, PushRecord, PushState, PushView, Segment,
};
use super::protocol::{
    on_air, parse_float, parse_metadata, parse_metadata_blocks, parse_rids, parse_uptime, OnAir,
};
use crate::db::playout::{self, DiffusionRow, LogRow, NewLog, StationRow};
use crate::db::{webhooks, DbPool};
use crate::domain::playout::LogType;
use crate::monitor::reachability::Reachability;
use crate::worker::{Backoff, Next, OnError, Worker};

/// A failed tick is retried soon and then every second at most: connection attempts are
/// cheap, and a Liquidsoap that comes back is seen within a second.
const RETRY: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(1));
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
    /// How long the streamer must be unreachable before `station_offline` is reported.
    pub offline_after: Duration,
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
            offline_after: Duration::from_secs(30),
        })
    }
}

/// What one tick saw and did, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Tick {
    /// The file the output plays (its latest emission).
    pub on_air: Option<String>,
    pub logged_sounds: usize,
    pub logged_resumes: usize,
    pub logged_tracks: usize,
    pub started: Option<i64>,
    pub cancelled: Option<i64>,
    /// A diffusion some of whose sounds were pushed again (lost by a restart, or dead).
    pub repushed: Option<i64>,
}

/// The play the output is in: its entry, and the stretch heard since it last went on air.
#[derive(Debug, Clone)]
struct Current {
    play_id: i64,
    sound_id: Option<i64>,
    is_show: bool,
    seg: Segment,
}

/// One station's monitor.
pub struct Monitor {
    station: StationConfig,
    client: Client,
    pool: DbPool,
    /// The output's history at the last poll of this Liquidsoap run, oldest first.
    seen: Vec<EmissionId>,
    last_poll: Option<DateTime<Utc>>,
    booted_at: Option<DateTime<Utc>>,
    current: Option<Current>,
    /// Whether Liquidsoap answers, for the offline/online webhooks; read from the outbox at
    /// the first step (an outage reported by an earlier run still ends with `online`).
    reachability: Option<Reachability>,
}

async fn db<T: Send + 'static>(
    pool: &DbPool,
    f: impl FnOnce(&mut PgConnection) -> diesel::QueryResult<T> + Send + 'static,
) -> anyhow::Result<T> {
    Ok(crate::db::run(pool, f).await?)
}

/// Tags kept from what Liquidsoap says about a request (the rest is bookkeeping).
fn tags_of(air: &OnAir) -> serde_json::Value {
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
                    | "airlog_on_air_ms"
                    | "airlog_push"
                    | "initial_uri"
            )
        })
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    serde_json::Value::Object(tags)
}

fn comment_of(air: &OnAir) -> String {
    match (&air.artist, &air.title) {
        (Some(a), Some(t)) => format!("{a} - {t}"),
        (None, Some(t)) => t.clone(),
        _ => air.uri.clone(),
    }
}

/// Writes the entry of a play starting (or finds the one written before); returns it and
/// whether it is new.
fn log_start(
    c: &mut PgConnection,
    station_id: i64,
    air: &OnAir,
    date: DateTime<Utc>,
    date_from: &str,
) -> diesel::QueryResult<(LogRow, bool)> {
    let key = air.request_key();
    if let Some(k) = &key {
        if let Some(row) = playout::play_by_request(c, station_id, k)? {
            return Ok((row, false));
        }
    }
    let sound = playout::sound_by_path(c, &air.uri)?;
    // A request airlog pushed names its diffusion; other sounds of a started diffusion are
    // recognised by path (pushed by hand, or by an older airlog).
    let diffusion_id = match air.push_id {
        Some(p) => playout::push_by_id(c, p)?.map(|(d, _, _)| d),
        None => None,
    };
    let diffusion_id = match diffusion_id {
        Some(d) => Some(d),
        None if air.source.is_empty() || air.push_id.is_some() => None,
        None => playout::diffusion_playing(c, station_id, &air.uri, date)?,
    };
    let new = playout::insert_log(
        c,
        &NewLog {
            station_id,
            r#type: LogType::OnAir,
            date,
            source: &air.source,
            comment: &comment_of(air),
            path: Some(&air.uri),
            sound_id: sound.as_ref().map(|s| s.id),
            diffusion_id,
            tags: tags_of(air),
            date_from: Some(date_from),
            request_key: key.as_deref(),
            push_id: air.push_id,
            ..NewLog::default()
        },
    )?;
    let row = match &key {
        Some(k) => playout::play_by_request(c, station_id, k)?,
        None => playout::sound_log(c, station_id, &air.source, &air.uri, date)?,
    }
    .ok_or(diesel::result::Error::NotFound)?;
    Ok((row, new.is_some()))
}

/// Writes the entry of a play resumed at `date` (once), starting where it was interrupted.
/// Returns the play, the resume entry's position, and whether it is new.
fn log_resume(
    c: &mut PgConnection,
    station_id: i64,
    air: &OnAir,
    date: DateTime<Utc>,
    date_from: &str,
) -> diesel::QueryResult<(LogRow, f64, bool)> {
    // The play's start fell out of every window airlog saw: its own on-air time dates it.
    let (play, _) = log_start(c, station_id, air, air.air_time, air.air_time_from)?;
    if playout::resume_logged(c, play.id, date)?.is_some() {
        // Seen before: its position is the one stored.
        let position =
            playout::play_position_at(c, play.id, date + chrono::Duration::milliseconds(1))?;
        return Ok((play, position, false));
    }
    let position = playout::play_position_at(c, play.id, date)?;
    let new = playout::insert_log(
        c,
        &NewLog {
            station_id,
            r#type: LogType::OnAir,
            date,
            source: &air.source,
            comment: &comment_of(air),
            path: Some(&air.uri),
            sound_id: play.sound_id,
            diffusion_id: play.diffusion_id,
            tags: tags_of(air),
            date_from: Some(date_from),
            request_key: air.request_key().as_deref(),
            resume_of: Some(play.id),
            position_s: position,
            push_id: air.push_id,
            ..NewLog::default()
        },
    )?;
    Ok((play, position, new.is_some()))
}

impl Monitor {
    pub fn new(station: StationConfig, pool: DbPool) -> Monitor {
        let client = Client::new(station.endpoint.clone(), Timeouts::default());
        Monitor {
            station,
            client,
            pool,
            seen: Vec::new(),
            last_poll: None,
            booted_at: None,
            current: None,
            reachability: None,
        }
    }

    /// The station monitored.
    pub fn station(&self) -> &StationConfig {
        &self.station
    }

    /// One pass: observe Liquidsoap (its run, the output's history, what is on air), plan what
    /// is new (pure rules in `plan`), log it, then the schedule.
    pub async fn tick(&mut self, now: DateTime<Utc>) -> anyhow::Result<Tick> {
        let mut tick = Tick::default();
        let uptime = parse_uptime(&self.client.command("uptime").await?);
        let booted_at = uptime.map(|u| now - chrono::Duration::seconds(u as i64));
        let restarted = match (self.booted_at, booted_at) {
            (Some(a), Some(b)) => (a - b).num_seconds().abs() > 2,
            _ => false,
        };
        if restarted || booted_at.is_none() {
            // A new Liquidsoap: its history is new, and nothing bounds what it played.
            self.seen.clear();
            self.last_poll = None;
        }
        if restarted {
            tracing::info!(
                station = self.station.name.as_str(),
                "Liquidsoap restarted; reading what it played since"
            );
        }
        self.booted_at = booted_at.or(self.booted_at);

        let history = self.history(now).await?;
        let ids: Vec<EmissionId> = history.iter().map(emission_id).collect();
        let fresh_from = seen_count(&self.seen, &ids);
        let fresh = &history[fresh_from..];
        let mut ctx = PollContext {
            polled_at: now,
            last_poll: self.last_poll,
            ..Default::default()
        };
        if !fresh.is_empty() {
            let paths: Vec<String> = history[fresh_from.saturating_sub(1)..]
                .iter()
                .map(|e| e.uri.clone())
                .collect();
            let pushes: Vec<i64> = fresh.iter().filter_map(|e| e.push_id).collect();
            let (durations, sent_at) = db(&self.pool, move |c| {
                let mut durations = HashMap::new();
                for p in paths {
                    if let Some(d) = playout::sound_by_path(c, &p)?.and_then(|s| s.duration_s) {
                        durations.insert(p, d);
                    }
                }
                let mut sent = HashMap::new();
                for id in pushes {
                    if let Some((_, _, at)) = playout::push_by_id(c, id)? {
                        sent.insert(id, at);
                    }
                }
                Ok((durations, sent))
            })
            .await?;
            ctx.durations = durations;
            ctx.sent_at = sent_at;
        }
        for aired in plan_emissions(&history, fresh_from, &ctx) {
            let air = history[aired.index].clone();
            // What played before was heard until this went on air.
            if let Some(cur) = self.current.take() {
                tick.logged_tracks += self.log_tracks(&cur, aired.date).await?;
            }
            let station_id = self.station.id;
            let moved = air.clone();
            let (play, position, new) = db(&self.pool, move |c| match aired.kind {
                Kind::Start => log_start(c, station_id, &moved, aired.date, aired.date_from)
                    .map(|(p, n)| (p, 0.0, n)),
                Kind::Resume => log_resume(c, station_id, &moved, aired.date, aired.date_from),
            })
            .await?;
            if new {
                let kind = if aired.kind == Kind::Start {
                    "on air"
                } else {
                    "resumed on air"
                };
                match aired.kind {
                    Kind::Start => tick.logged_sounds += 1,
                    Kind::Resume => tick.logged_resumes += 1,
                }
                tracing::info!(station = self.station.name.as_str(), path = air.uri.as_str(), source = air.source.as_str(),
                    date = %aired.date, date_from = aired.date_from, position_s = position, "{kind}");
            }
            self.current = Some(Current {
                play_id: play.id,
                sound_id: play.sound_id,
                is_show: play.diffusion_id.is_some(),
                seg: Segment {
                    date: aired.date,
                    position_s: position,
                },
            });
        }
        if let Some(cur) = self.current.clone() {
            tick.logged_tracks += self.log_tracks(&cur, now).await?;
        }
        self.seen = ids;
        self.last_poll = Some(now);
        let on_air_rids = parse_rids(&self.client.command("request.on_air").await?);
        let newest = history.last();
        tick.on_air = newest.map(|e| e.uri.clone());
        let queue_on_air = newest.is_some_and(|e| {
            e.source == self.station.queue_id && e.rid.is_some_and(|r| on_air_rids.contains(&r))
        });
        self.handle_diffusions(now, queue_on_air, &history, &mut tick)
            .await?;
        Ok(tick)
    }

    /// The output's metadata history, oldest first: every sound it played, and every resume,
    /// in order. A script whose output has no such command gets what is on air instead.
    async fn history(&mut self, now: DateTime<Utc>) -> anyhow::Result<Vec<OnAir>> {
        let tz = self.station.tz;
        match self
            .client
            .command(&format!("{}.metadata", self.station.output_id))
            .await
        {
            Ok(reply) => {
                let mut blocks = parse_metadata_blocks(&reply);
                blocks.reverse();
                Ok(blocks
                    .into_iter()
                    .filter_map(|(_, m)| on_air(m, tz, now))
                    .collect())
            }
            Err(ClientError::Server { .. }) => {
                let mut out = Vec::new();
                for rid in parse_rids(&self.client.command("request.on_air").await?) {
                    match self
                        .client
                        .command(&format!("request.metadata {rid}"))
                        .await
                    {
                        Ok(r) => out.extend(on_air(parse_metadata(&r), tz, now)),
                        // The request ended between the two commands.
                        Err(ClientError::Server { .. }) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                out.sort_by_key(|e| e.air_time);
                Ok(out)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Logs the tracks of the current play heard by `until` (shows get none).
    async fn log_tracks(&mut self, cur: &Current, until: DateTime<Utc>) -> anyhow::Result<usize> {
        let Some(sound_id) = cur.sound_id else {
            return Ok(0);
        };
        if cur.is_show {
            return Ok(0);
        }
        let (station_id, cur) = (self.station.id, cur.clone());
        db(&self.pool, move |c| {
            let due = playout::unlogged_tracks(c, sound_id, cur.play_id)?;
            let times: Vec<(i64, f64)> = due.iter().map(|t| (t.id, t.timestamp_s)).collect();
            let play = playout::log_entry(c, cur.play_id)?;
            let mut n = 0;
            for (id, at) in heard_tracks(&times, cur.seg, until) {
                let t = due.iter().find(|t| t.id == id).expect("planned from these");
                let comment = if t.artist.is_empty() {
                    t.title.clone()
                } else {
                    format!("{} - {}", t.artist, t.title)
                };
                let new = playout::insert_log(
                    c,
                    &NewLog {
                        station_id,
                        r#type: LogType::OnAir,
                        date: at,
                        source: &play.source,
                        comment: &comment,
                        sound_id: Some(sound_id),
                        track_id: Some(t.id),
                        parent_id: Some(cur.play_id),
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
        history: &[OnAir],
        tick: &mut Tick,
    ) -> anyhow::Result<()> {
        let station_id = self.station.id;
        tick.repushed = self.drive_pushes(now, history).await?;
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
            if self.start(&d, now).await? {
                tick.started = Some(d.id);
                self.drive_pushes(now, history).await?;
            }
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

    /// Claims the start in the database (START log, unique per diffusion); true if claimed.
    async fn start(&mut self, d: &DiffusionRow, now: DateTime<Utc>) -> anyhow::Result<bool> {
        let (station_id, id, title) = (self.station.id, d.id, d.title.clone());
        let claimed = db(&self.pool, move |c| {
            playout::insert_log(
                c,
                &NewLog {
                    station_id,
                    r#type: LogType::Start,
                    date: now,
                    comment: &title,
                    diffusion_id: Some(id),
                    tags: serde_json::json!({}),
                    ..NewLog::default()
                },
            )
        })
        .await?;
        if claimed.is_some() {
            tracing::info!(
                station = self.station.name.as_str(),
                diffusion = d.id,
                title = d.title.as_str(),
                sounds = d.sounds.len(),
                "diffusion started"
            );
        }
        Ok(claimed.is_some())
    }

    /// For each started, running diffusion: accounts for unanswered pushes (found in
    /// Liquidsoap, or lost), then pushes the sounds `plan_pushes` says are needed.
    async fn drive_pushes(
        &mut self,
        now: DateTime<Utc>,
        history: &[OnAir],
    ) -> anyhow::Result<Option<i64>> {
        let station_id = self.station.id;
        let running = db(&self.pool, move |c| {
            let mut out = Vec::new();
            for d in playout::running_diffusions(c, station_id, now)? {
                let pushes = playout::pushes(c, d.id)?;
                let played = playout::played_pushes(c, d.id)?;
                out.push((d, pushes, played));
            }
            Ok(out)
        })
        .await?;
        if running.is_empty() {
            return Ok(None);
        }
        let mut repushed = None;
        let mut alive: Option<HashSet<u64>> = None;
        let mut found: Option<HashMap<i64, u64>> = None;
        for (d, rows, played) in running {
            let records: Vec<PushRecord> = rows
                .iter()
                .map(|r| PushRecord {
                    id: r.id,
                    position: r.position,
                    state: PushState::parse(&r.state).unwrap_or(PushState::Unknown),
                    rid: r.rid.map(|r| r as u64),
                    sent_at: r.pushed_at,
                })
                .collect();
            let played_positions: HashSet<i32> = played.iter().map(|(_, p)| *p).collect();
            if (1..=d.sounds.len() as i32).all(|p| played_positions.contains(&p)) {
                continue;
            }
            if alive.is_none() {
                alive = Some(
                    parse_rids(&self.client.command("request.alive").await?)
                        .into_iter()
                        .collect(),
                );
            }
            let unresolved = records
                .iter()
                .any(|r| matches!(r.state, PushState::Unknown | PushState::Sending));
            if unresolved && found.is_none() {
                found = Some(
                    self.find_pushes(alive.as_ref().expect("read above"), history)
                        .await?,
                );
            }
            let view = PushView {
                now,
                booted_at: self.booted_at,
                alive: alive.clone().unwrap_or_default(),
                found: found.clone().unwrap_or_default(),
                played: played_positions,
            };
            let plan = plan_pushes(d.sounds.len() as i32, &records, &view);
            let (f, l) = (plan.found.clone(), plan.lost.clone());
            if !f.is_empty() || !l.is_empty() {
                db(&self.pool, move |c| {
                    for (id, rid) in f {
                        playout::set_push(c, id, "found", Some(rid as i64))?;
                    }
                    for id in l {
                        playout::set_push(c, id, "lost", None)?;
                    }
                    Ok(())
                })
                .await?;
            }
            for (id, rid) in &plan.found {
                tracing::info!(
                    station = self.station.name.as_str(),
                    diffusion = d.id,
                    push = id,
                    rid,
                    "an unanswered push was found in Liquidsoap; not pushed again"
                );
            }
            for id in &plan.lost {
                tracing::warn!(
                    station = self.station.name.as_str(),
                    diffusion = d.id,
                    push = id,
                    "an unanswered push never reached Liquidsoap (or a restart lost it)"
                );
            }
            if plan.push.is_empty() {
                continue;
            }
            let first_push = records.is_empty();
            if !first_push {
                tracing::warn!(station = self.station.name.as_str(), diffusion = d.id, sounds = plan.push.len(),
                    "sounds of a started diffusion are not in Liquidsoap any more (restart?); pushing them again");
                repushed = Some(d.id);
            }
            for p in plan.push {
                let path = d.sounds[(p - 1) as usize].clone();
                self.push_one(d.id, p, &path, now).await?;
            }
        }
        Ok(repushed)
    }

    /// Push ids on the requests Liquidsoap holds or played (`airlog_push`), with their rids.
    async fn find_pushes(
        &mut self,
        alive: &HashSet<u64>,
        history: &[OnAir],
    ) -> anyhow::Result<HashMap<i64, u64>> {
        let mut found: HashMap<i64, u64> = history
            .iter()
            .filter_map(|e| Some((e.push_id?, e.rid?)))
            .collect();
        let mut rids: Vec<u64> = alive.iter().copied().collect();
        rids.sort_unstable();
        for rid in rids {
            match self
                .client
                .command(&format!("request.metadata {rid}"))
                .await
            {
                Ok(r) => {
                    let m = parse_metadata(&r);
                    if let Some(p) = m.non_empty("airlog_push").and_then(|p| p.parse().ok()) {
                        found.insert(p, rid);
                    }
                }
                Err(ClientError::Server { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(found)
    }

    /// Pushes one sound, marked with the id of its push written beforehand. Without an answer
    /// the push is `unknown` until found in Liquidsoap (or known lost): never sent again blindly.
    async fn push_one(
        &mut self,
        diffusion_id: i64,
        position: i32,
        path: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let owned = path.to_string();
        let id = db(&self.pool, move |c| {
            playout::new_push(c, diffusion_id, position, &owned, now)
        })
        .await?;
        let command = format!(
            "{}.push annotate:airlog_push=\"{id}\":{path}",
            self.station.queue_id
        );
        let result = self.client.command(&command).await;
        let (state, rid) = match &result {
            Ok(reply) => ("answered", parse_rids(reply).first().map(|r| *r as i64)),
            Err(
                ClientError::Connect { .. }
                | ClientError::ConnectTimeout(..)
                | ClientError::BadCommand(_),
            ) => ("unsent", None),
            // Liquidsoap answered with an error: nothing was queued.
            Err(ClientError::Server { .. }) => ("lost", None),
            Err(_) => ("unknown", None),
        };
        db(&self.pool, move |c| playout::set_push(c, id, state, rid)).await?;
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                if state == "unknown" {
                    tracing::warn!(station = self.station.name.as_str(), diffusion = diffusion_id, push = id,
                        error = %e, "no answer to a push; looking for it in Liquidsoap before anything else");
                }
                Err(e.into())
            }
        }
    }

    /// Reports the streamer going offline or coming back to the webhook outbox.
    async fn report_reachability(
        &mut self,
        now: DateTime<Utc>,
        reachable: bool,
    ) -> anyhow::Result<()> {
        let station_id = self.station.id;
        let r = match self.reachability.take() {
            Some(r) => r,
            None => {
                let reported = db(&self.pool, move |c| {
                    webhooks::outage_reported(c, station_id)
                })
                .await?;
                Reachability::new(self.station.offline_after, reported)
            }
        };
        let r = self.reachability.insert(r);
        let change = r.observe(now, reachable);
        if let Some(change) = change {
            let (event, payload) = change.event();
            db(&self.pool, move |c| {
                webhooks::enqueue(c, event, Some(station_id), &payload)
            })
            .await?;
            tracing::info!(
                station = self.station.name.as_str(),
                event,
                "streamer reachability changed"
            );
        }
        r.record(now, reachable, change);
        Ok(())
    }

    /// Ticks every poll interval until shutdown (see the `Worker` impl).
    pub async fn run_until_stopped(mut self, shutdown: crate::shutdown::Shutdown) {
        // Its failures are retried, never returned.
        let _ = crate::worker::run_until_stopped(&mut self, shutdown).await;
    }
}

/// Ticks every poll interval; failed ticks are retried with backoff (`RETRY`) and never
/// touch Liquidsoap beyond reconnecting.
impl Worker for Monitor {
    fn name(&self) -> &str {
        "liquidsoap monitor"
    }

    fn span(&self) -> tracing::Span {
        crate::worker::station_span(self.name(), self.station.name.as_str())
    }

    fn period(&self) -> Option<Duration> {
        Some(self.station.poll)
    }

    fn on_error(&self) -> OnError {
        OnError::Retry(RETRY)
    }

    async fn step(&mut self) -> anyhow::Result<Next> {
        let now = Utc::now();
        let ticked = self.tick(now).await;
        // Only Liquidsoap not answering is an outage (a database error is ours).
        let reached = match &ticked {
            Ok(_) => Some(true),
            Err(e) if e.downcast_ref::<ClientError>().is_some() => Some(false),
            Err(_) => None,
        };
        if let Some(reachable) = reached {
            self.report_reachability(now, reachable).await?;
        }
        ticked?;
        Ok(Next::Wait)
    }

    async fn stopped(&mut self) {
        self.client.close().await;
        tracing::info!(station = self.station.name.as_str(), "monitor stopped");
    }
}
