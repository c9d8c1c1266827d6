//! The station supervisor and the station workers it starts: one per monitored station, which
//! takes the station's lock (waiting while another process holds it) and, while it holds it,
//! runs the station's Liquidsoap monitor and playlist writer.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;

use super::liquidsoap::monitor::{Monitor, StationConfig};
use super::playlists::PlaylistWriter;
use super::{lock_alive, release_lock, station_lock_key, take_lock, LockConn};
use crate::db::playout::{self, StationRow};
use crate::db::DbPool;
use crate::domain::playout::Streamer;
use crate::shutdown::{self, ShutdownTrigger};
use crate::worker::{self, Backoff, Next, OnError, Running, Worker};

/// How often the supervisor looks for new or changed stations.
const RELOAD: Duration = Duration::from_secs(10);
/// How often a monitor checks that its lock connection is alive, and how often a waiting
/// monitor tries to take the lock.
const LOCK_CHECK: Duration = Duration::from_secs(5);

/// Starts, restarts (when its settings change) and stops one station worker per Liquidsoap
/// station.
pub struct Supervisor {
    pool: DbPool,
    running: HashMap<i64, (StationRow, ShutdownTrigger, Running)>,
    offline_after: Option<std::time::Duration>,
}

impl Supervisor {
    /// A supervisor with no station started yet.
    pub fn new(pool: DbPool) -> Supervisor {
        Supervisor {
            pool,
            running: HashMap::new(),
            offline_after: None,
        }
    }

    /// How long a station's streamer must be unreachable before `station_offline` is reported
    /// (`webhooks.offline_after_s`; the monitor's default otherwise).
    pub fn offline_after(mut self, wait: std::time::Duration) -> Supervisor {
        self.offline_after = Some(wait);
        self
    }

    /// Stops the workers of stations that are gone or changed, and starts the missing ones.
    async fn reconcile(&mut self, stations: Vec<StationRow>) {
        let wanted: HashMap<i64, StationRow> = stations
            .into_iter()
            .filter(|s| s.streamer == Streamer::Liquidsoap)
            .map(|s| (s.id, s))
            .collect();
        let stale: Vec<i64> = self
            .running
            .iter()
            .filter(|(id, (row, _, _))| wanted.get(id) != Some(row))
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            if let Some((_, trigger, task)) = self.running.remove(&id) {
                trigger.fire();
                let _ = task.join().await;
            }
        }
        for (id, row) in wanted {
            if self.running.contains_key(&id) {
                continue;
            }
            match StationConfig::try_from(&row) {
                Ok(mut config) => {
                    if let Some(wait) = self.offline_after {
                        config.offline_after = wait;
                    }
                    let (trigger, stop) = shutdown::channel();
                    let task = worker::spawn(Station::new(config, self.pool.clone()), stop);
                    self.running.insert(id, (row, trigger, task));
                }
                Err(e) => tracing::warn!(error = e.as_str(), "station not monitored"),
            }
        }
    }
}

impl Worker for Supervisor {
    fn name(&self) -> &str {
        "station supervisor"
    }

    fn period(&self) -> Option<Duration> {
        Some(RELOAD)
    }

    fn on_error(&self) -> OnError {
        OnError::Retry(Backoff::constant(RELOAD))
    }

    async fn step(&mut self) -> anyhow::Result<Next> {
        let stations = crate::db::run(&self.pool, playout::stations)
            .await
            .context("cannot load stations")?;
        self.reconcile(stations).await;
        Ok(Next::Wait)
    }

    async fn stopped(&mut self) {
        for (_, (_, trigger, task)) in self.running.drain() {
            trigger.fire();
            let _ = task.join().await;
        }
    }
}

/// What a station worker runs while it holds the station's lock.
struct Held {
    conn: LockConn,
    trigger: ShutdownTrigger,
    monitor: Running,
    playlists: Option<Running>,
}

impl Held {
    /// Stops the station's workers, then frees the lock.
    async fn release(self, key: i64) {
        self.trigger.fire();
        let _ = self.monitor.join().await;
        if let Some(p) = self.playlists {
            let _ = p.join().await;
        }
        release_lock(self.conn, key).await;
    }
}

/// One station: takes its lock (waiting while another process holds it), then monitors until
/// told to stop; when the lock's connection is lost it stops monitoring and waits for the
/// lock again.
pub struct Station {
    station: StationConfig,
    pool: DbPool,
    held: Option<Held>,
    announced_wait: bool,
}

impl Station {
    /// A station worker that holds nothing yet.
    pub fn new(station: StationConfig, pool: DbPool) -> Station {
        Station {
            station,
            pool,
            held: None,
            announced_wait: false,
        }
    }

    fn key(&self) -> i64 {
        station_lock_key(self.station.id)
    }

    /// Tries to take the lock; with it, starts the monitor and the playlist writer.
    async fn take(&mut self) -> anyhow::Result<()> {
        let Some(conn) = take_lock(&self.pool, self.key())
            .await
            .context("cannot take the station lock")?
        else {
            if !self.announced_wait {
                tracing::info!(
                    station = self.station.name.as_str(),
                    "another airlog monitors this station; standing by"
                );
                self.announced_wait = true;
            }
            return Ok(());
        };
        tracing::info!(station = self.station.name.as_str(), endpoint = %self.station.endpoint, "monitoring station");
        self.announced_wait = false;
        let (trigger, stop) = shutdown::channel();
        let monitor = worker::spawn(
            Monitor::new(self.station.clone(), self.pool.clone()),
            stop.clone(),
        );
        let playlists =
            PlaylistWriter::new(&self.station, self.pool.clone()).map(|w| worker::spawn(w, stop));
        self.held = Some(Held {
            conn: std::sync::Arc::new(std::sync::Mutex::new(Some(conn))),
            trigger,
            monitor,
            playlists,
        });
        Ok(())
    }
}

impl Worker for Station {
    fn name(&self) -> &str {
        "station"
    }

    fn span(&self) -> tracing::Span {
        crate::worker::station_span(self.name(), self.station.name.as_str())
    }

    fn period(&self) -> Option<Duration> {
        Some(LOCK_CHECK)
    }

    fn on_error(&self) -> OnError {
        OnError::Retry(Backoff::constant(LOCK_CHECK))
    }

    async fn step(&mut self) -> anyhow::Result<Next> {
        let Some(held) = &self.held else {
            self.take().await?;
            return Ok(Next::Wait);
        };
        if held.monitor.is_finished() {
            // The monitor only ends when told to: nothing more to supervise.
            return Ok(Next::Stop);
        }
        if !lock_alive(&held.conn).await {
            let held = self.held.take().expect("checked above");
            held.release(self.key()).await;
            tracing::warn!(
                station = self.station.name.as_str(),
                "lost the station lock's database connection; monitoring paused"
            );
        }
        Ok(Next::Wait)
    }

    async fn stopped(&mut self) {
        if let Some(held) = self.held.take() {
            held.release(self.key()).await;
        }
    }
}
