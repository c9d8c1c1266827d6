//! Playout monitors. A supervisor inside `airlog serve` starts one worker per station (and
//! restarts it when the station's settings change; `stations`). A station is monitored by one process at a
//! time: its monitor holds a PostgreSQL advisory lock, and another airlog takes over when the
//! holder dies (its session ends and the lock is freed).

pub mod liquidsoap;
pub mod playlists;
pub mod stations;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};

use crate::db::{DbConn, DbPool};

/// The advisory lock key of a station's monitor.
pub fn station_lock_key(station_id: i64) -> i64 {
    0x6169_726c_0100_0000 + station_id
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

pub(crate) async fn take_lock(pool: &DbPool, key: i64) -> anyhow::Result<Option<DbConn>> {
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<Option<DbConn>> {
        let mut conn = pool.get()?;
        let got: Locked = diesel::sql_query("SELECT pg_try_advisory_lock($1) AS locked")
            .bind::<BigInt, _>(key)
            .get_result(&mut conn)?;
        Ok(got.locked.then_some(conn))
    })
    .await?
}

pub(crate) type LockConn = std::sync::Arc<std::sync::Mutex<Option<DbConn>>>;

pub(crate) async fn lock_alive(conn: &LockConn) -> bool {
    let conn = conn.clone();
    tokio::task::spawn_blocking(move || {
        let mut guard = conn.lock().unwrap_or_else(|e| e.into_inner());
        guard
            .as_mut()
            .is_some_and(|c| diesel::sql_query("SELECT 1").execute(c).is_ok())
    })
    .await
    .unwrap_or(false)
}

/// Unlocks before the connection goes back to the pool (a session lock would outlive us).
pub(crate) async fn release_lock(conn: LockConn, key: i64) {
    let _ = tokio::task::spawn_blocking(move || {
        let mut guard = conn.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mut c) = guard.take() {
            let _ = diesel::sql_query("SELECT pg_advisory_unlock($1)")
                .bind::<BigInt, _>(key)
                .execute(&mut c);
        }
    })
    .await;
}
