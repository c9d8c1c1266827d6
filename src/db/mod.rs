//! The database: connection pool, embedded migrations, the private cluster, and one module of
//! queries per table.

pub mod audience;
pub mod cluster;
pub mod console;
pub mod item_audience;
pub mod items;
pub mod jobs;
pub mod keyset;
pub mod locks;
pub mod mpv;
mod named;
pub mod player_events;
pub mod playout;
pub mod schema;
pub mod sessions;
pub mod stream_events;
pub mod tokens;
pub mod webhooks;

use std::time::Duration;

use anyhow::Context;
use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, Pool, PooledConnection};
use diesel::Connection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::config::Settings;
use cluster::{Cluster, Membership};

/// The migrations in `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// A pool of PostgreSQL connections.
pub type DbPool = Pool<ConnectionManager<PgConnection>>;
/// One connection taken from the pool.
pub type DbConn = PooledConnection<ConnectionManager<PgConnection>>;

/// Why a database call did not return a result.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had in time: the database is down or saturated.
    #[error("database unavailable: {0}")]
    Unavailable(#[from] diesel::r2d2::PoolError),
    /// The query failed.
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    /// The blocking task panicked or was cancelled.
    #[error("database task did not finish: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// What a closure given to [`run`] may fail with, and what `run` then answers: a diesel
/// error becomes a [`DbError`]; an error type that has room for database failures already (the
/// API's, `anyhow`) stays itself. So callers map errors nowhere: `?` does the rest.
pub trait RunError: Send + 'static {
    /// What `run` returns for this error (and for a failed checkout or task).
    type Out: From<DbError> + Send + 'static;
    /// This error as `run` returns it.
    fn into_out(self) -> Self::Out;
}

impl RunError for diesel::result::Error {
    type Out = DbError;
    fn into_out(self) -> DbError {
        DbError::Query(self)
    }
}

impl RunError for DbError {
    type Out = DbError;
    fn into_out(self) -> DbError {
        self
    }
}

impl RunError for anyhow::Error {
    type Out = anyhow::Error;
    fn into_out(self) -> anyhow::Error {
        self
    }
}

/// Runs synchronous diesel code on the blocking pool, inside the caller's tracing span.
///
/// This is the one way async code reaches the database, so connection checkout, blocking and
/// error mapping live in one place (see [`RunError`]).
pub async fn run<T, E, F>(pool: &DbPool, f: F) -> Result<T, E::Out>
where
    F: FnOnce(&mut PgConnection) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: RunError,
{
    let pool = pool.clone();
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        let mut conn = pool.get().map_err(DbError::from)?;
        f(&mut conn).map_err(E::into_out)
    })
    .await
    .map_err(DbError::from)?
}

/// Builds a pool for `url`. It connects lazily, so a server can start while the database is
/// still coming up; `/healthz` reports the state.
pub fn pool(url: &str, size: u32, timeout: Duration) -> DbPool {
    Pool::builder()
        .max_size(size)
        .min_idle(Some(0))
        .connection_timeout(timeout)
        .build_unchecked(ConnectionManager::new(url))
}

/// Applies pending migrations and returns their names.
pub fn migrate(url: &str) -> anyhow::Result<Vec<String>> {
    let mut conn =
        PgConnection::establish(url).context("cannot connect to the database to migrate it")?;
    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map_err(|e| anyhow::anyhow!("migration failed: {e}"))?;
    Ok(applied.iter().map(|v| v.to_string()).collect())
}

/// The database airlog talks to: an external URL, or the private cluster this process uses
/// (started if needed; stopped by `shutdown` when this is the last airlog using it).
pub struct Database {
    pub url: String,
    cluster: Option<(Cluster, Membership)>,
}

impl Database {
    /// Resolves the configured database, starting the private cluster when no URL is set.
    pub fn open(settings: &Settings) -> anyhow::Result<Database> {
        if let Some(url) = settings.database_url() {
            return Ok(Database {
                url: url.to_string(),
                cluster: None,
            });
        }
        settings.prepare_data_dir()?;
        let cluster = Cluster::new(settings.cluster_dir())?;
        let membership = cluster.join()?;
        Ok(Database {
            url: cluster.url(),
            cluster: Some((cluster, membership)),
        })
    }

    /// Leaves the private cluster; the last airlog using it stops it.
    pub fn shutdown(self) -> anyhow::Result<()> {
        if let Some((cluster, membership)) = self.cluster {
            cluster.leave(membership)?;
        }
        Ok(())
    }
}

/// The id a query returns (`RETURNING id`, `SELECT id`).
#[derive(diesel::QueryableByName)]
pub(crate) struct Id {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub id: i64,
}
