//! Playout monitors. A supervisor inside `airlog serve` starts one monitor per station (and
//! restarts it when the station's settings change). A station is monitored by one process at a
//! time: its monitor holds a PostgreSQL advisory lock, and another airlog takes over when the
//! holder dies (its session ends and the lock is freed).

pub mod liquidsoap;

use std::collections::HashMap;
use std::time::Duration;

use crate::db::playout::{self, StationRow};
use crate::db::{locks, DbConn, DbPool};
use crate::domain::playout::Streamer;
use crate::shutdown::{self, Shutdown, ShutdownTrigger};
use liquidsoap::monitor::{Monitor, StationConfig};

/// How often the supervisor looks for new or changed stations.
const RELOAD: Duration = Duration::from_secs(10);
/// How often a monitor checks that its lock connection is alive, and how often a waiting
/// monitor tries to take the lock.
const LOCK_CHECK: Duration = Duration::from_secs(5);

/// The advisory lock key of a station's monitor.
pub fn station_lock_key(station_id: i64) -> i64 {
    0x6169_726c_0100_0000 + station_id
}

/// Starts, restarts and stops station monitors until shutdown.
pub async fn run_until_stopped(pool: DbPool, mut shutdown: Shutdown) {
    let mut running: HashMap<i64, (StationRow, ShutdownTrigger, tokio::task::JoinHandle<()>)> =
        HashMap::new();
    loop {
        let loaded = crate::db::run(&pool, playout::stations).await;
        match loaded {
            Ok(stations) => {
                let wanted: HashMap<i64, StationRow> = stations
                    .into_iter()
                    .filter(|s| s.streamer == Streamer::Liquidsoap)
                    .map(|s| (s.id, s))
                    .collect();
                let stale: Vec<i64> = running
                    .iter()
                    .filter(|(id, (row, _, _))| wanted.get(id) != Some(row))
                    .map(|(id, _)| *id)
                    .collect();
                for id in stale {
                    if let Some((_, trigger, handle)) = running.remove(&id) {
                        trigger.fire();
                        let _ = handle.await;
                    }
                }
                for (id, row) in wanted {
                    if running.contains_key(&id) {
                        continue;
                    }
                    match StationConfig::try_from(&row) {
                        Ok(config) => {
                            let (trigger, stop) = shutdown::channel();
                            let handle = tokio::spawn(station_task(pool.clone(), config, stop));
                            running.insert(id, (row, trigger, handle));
                        }
                        Err(e) => tracing::warn!(error = e.as_str(), "station not monitored"),
                    }
                }
            }
            Err(e) => tracing::warn!(error = format!("{e:#}"), "cannot load stations; retrying"),
        }
        tokio::select! {
            _ = shutdown.requested() => break,
            _ = tokio::time::sleep(RELOAD) => {}
        }
    }
    for (_, (_, trigger, handle)) in running.drain() {
        trigger.fire();
        let _ = handle.await;
    }
}

/// Takes the station's lock (waiting while another process holds it), then monitors until
/// told to stop or until the lock connection is lost.
async fn station_task(pool: DbPool, station: StationConfig, mut stop: Shutdown) {
    let key = station_lock_key(station.id);
    let mut announced_wait = false;
    loop {
        let lock = take_lock(&pool, key).await;
        match lock {
            Ok(Some(conn)) => {
                tracing::info!(station = station.name.as_str(), endpoint = %station.endpoint, "monitoring station");
                announced_wait = false;
                let conn = std::sync::Arc::new(std::sync::Mutex::new(Some(conn)));
                let monitor = Monitor::new(station.clone(), pool.clone());
                let (trigger, monitor_stop) = shutdown::channel();
                let mut task = tokio::spawn(monitor.run_until_stopped(monitor_stop));
                let lost = loop {
                    tokio::select! {
                        _ = stop.requested() => break false,
                        _ = &mut task => break false,
                        _ = tokio::time::sleep(LOCK_CHECK) => {
                            if !lock_alive(&conn).await {
                                break true;
                            }
                        }
                    }
                };
                trigger.fire();
                let _ = task.await;
                release_lock(conn, key).await;
                if lost {
                    tracing::warn!(
                        station = station.name.as_str(),
                        "lost the station lock's database connection; monitoring paused"
                    );
                } else {
                    return;
                }
            }
            Ok(None) => {
                if !announced_wait {
                    tracing::info!(
                        station = station.name.as_str(),
                        "another airlog monitors this station; standing by"
                    );
                    announced_wait = true;
                }
            }
            Err(e) => tracing::warn!(
                station = station.name.as_str(),
                error = format!("{e:#}"),
                "cannot take the station lock"
            ),
        }
        tokio::select! {
            _ = stop.requested() => return,
            _ = tokio::time::sleep(LOCK_CHECK) => {}
        }
    }
}

// The lock lives as long as its session, so these three keep one pooled connection out of the
// pool for the whole monitoring (`db::run` gives a connection back after each call).
async fn take_lock(pool: &DbPool, key: i64) -> anyhow::Result<Option<DbConn>> {
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<Option<DbConn>> {
        let mut conn = pool.get()?;
        Ok(locks::try_lock(&mut conn, key)?.then_some(conn))
    })
    .await?
}

type LockConn = std::sync::Arc<std::sync::Mutex<Option<DbConn>>>;

async fn lock_alive(conn: &LockConn) -> bool {
    let conn = conn.clone();
    tokio::task::spawn_blocking(move || {
        let mut guard = conn.lock().unwrap_or_else(|e| e.into_inner());
        guard.as_mut().is_some_and(|c| locks::ping(c).is_ok())
    })
    .await
    .unwrap_or(false)
}

/// Unlocks before the connection goes back to the pool (a session lock would outlive us).
async fn release_lock(conn: LockConn, key: i64) {
    let _ = tokio::task::spawn_blocking(move || {
        let mut guard = conn.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mut c) = guard.take() {
            let _ = locks::unlock(&mut c, key);
        }
    })
    .await;
}
