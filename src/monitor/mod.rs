//! Playout monitors. A supervisor inside `airlog serve` starts one worker per station (and
//! restarts it when the station's settings change; `stations`). A station is monitored by one process at a
//! time: its monitor holds a PostgreSQL advisory lock, and another airlog takes over when the
//! holder dies (its session ends and the lock is freed). mpv instances are found by their IPC
//! sockets and captured by the mpv socket watcher (`mpv::capture`).

pub mod liquidsoap;
pub mod mpv;
pub mod playlists;
pub mod reachability;
pub mod stations;

use crate::db::{locks, DbConn, DbPool};

/// The advisory lock key of a station's monitor.
pub fn station_lock_key(station_id: i64) -> i64 {
    0x6169_726c_0100_0000 + station_id
}

// The lock lives as long as its session, so these three keep one pooled connection out of the
// pool for the whole monitoring (`db::run` gives a connection back after each call).
pub(crate) async fn take_lock(pool: &DbPool, key: i64) -> anyhow::Result<Option<DbConn>> {
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<Option<DbConn>> {
        let mut conn = pool.get()?;
        Ok(locks::try_lock(&mut conn, key)?.then_some(conn))
    })
    .await?
}

pub(crate) type LockConn = std::sync::Arc<std::sync::Mutex<Option<DbConn>>>;

pub(crate) async fn lock_alive(conn: &LockConn) -> bool {
    let conn = conn.clone();
    tokio::task::spawn_blocking(move || {
        let mut guard = conn.lock().unwrap_or_else(|e| e.into_inner());
        guard.as_mut().is_some_and(|c| locks::ping(c).is_ok())
    })
    .await
    .unwrap_or(false)
}

/// Unlocks before the connection goes back to the pool (a session lock would outlive us).
pub(crate) async fn release_lock(conn: LockConn, key: i64) {
    let _ = tokio::task::spawn_blocking(move || {
        let mut guard = conn.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mut c) = guard.take() {
            let _ = locks::unlock(&mut c, key);
        }
    })
    .await;
}
