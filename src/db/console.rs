//! Queries of the operator console: its browser sessions, the tail of the as-run log a live page
//! follows, and the health overview. Everything else it shows comes from the other modules.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text, Timestamptz};

use super::playout::LogRow;

/// A session to store: the hash of its cookie value, never the value.
pub struct NewSession<'a> {
    pub id_hash: &'a str,
    pub token_id: Option<i64>,
    pub identity: &'a str,
    pub scopes: &'a [String],
    pub csrf: &'a str,
    pub expires_at: DateTime<Utc>,
}

/// A live session as a request sees it.
#[derive(Debug, Clone, QueryableByName)]
pub struct SessionRow {
    #[diesel(sql_type = Text)]
    pub identity: String,
    #[diesel(sql_type = Text)]
    pub csrf: String,
    #[diesel(sql_type = Timestamptz)]
    pub expires_at: DateTime<Utc>,
    #[diesel(sql_type = Array<Text>)]
    pub scopes: Vec<String>,
}

/// Stores a session, and forgets expired ones on the way (sign-ins are rare, so this keeps
/// the table small without a job of its own).
pub fn insert_session(conn: &mut PgConnection, s: &NewSession<'_>) -> QueryResult<()> {
    diesel::sql_query("DELETE FROM console_session WHERE expires_at < now()").execute(conn)?;
    diesel::sql_query(
        "INSERT INTO console_session (id_hash, token_id, identity, scopes, csrf, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind::<Text, _>(s.id_hash)
    .bind::<Nullable<BigInt>, _>(s.token_id)
    .bind::<Text, _>(s.identity)
    .bind::<Array<Text>, _>(s.scopes)
    .bind::<Text, _>(s.csrf)
    .bind::<Timestamptz, _>(s.expires_at)
    .execute(conn)?;
    Ok(())
}

/// The unexpired session whose cookie hashes to `id_hash`.
pub fn session(conn: &mut PgConnection, id_hash: &str) -> QueryResult<Option<SessionRow>> {
    diesel::sql_query(include_str!("../../sql/console_session_find.sql"))
        .bind::<Text, _>(id_hash)
        .get_result(conn)
        .optional()
}

/// Ends a session (sign-out).
pub fn delete_session(conn: &mut PgConnection, id_hash: &str) -> QueryResult<usize> {
    diesel::sql_query("DELETE FROM console_session WHERE id_hash = $1")
        .bind::<Text, _>(id_hash)
        .execute(conn)
}

/// Entries of `station`'s log written after entry `after_id`, in the order written.
pub fn log_after(
    conn: &mut PgConnection,
    station: &str,
    after_id: i64,
    limit: i64,
) -> QueryResult<Vec<LogRow>> {
    diesel::sql_query(include_str!("../../sql/console_log_after.sql"))
        .bind::<Text, _>(station)
        .bind::<BigInt, _>(after_id)
        .bind::<BigInt, _>(limit)
        .load(conn)
}

/// The id of the newest entry of the whole log (0 when empty): where a live page starts.
pub fn last_log_id(conn: &mut PgConnection) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    diesel::sql_query("SELECT coalesce(max(id), 0) AS n FROM onair_log")
        .get_result::<N>(conn)
        .map(|r| r.n)
}

/// Whether a station is monitored now, and when it last logged.
#[derive(Debug, Clone)]
pub struct MonitorState {
    pub monitored: bool,
    pub last_entry: Option<DateTime<Utc>>,
    /// Since when the streamer has been unreachable, as reported to webhooks (`station_offline`
    /// without a `station_online` after it); unknown when no endpoint listens to those events.
    pub unreachable_since: Option<DateTime<Utc>>,
}

#[derive(QueryableByName)]
struct LockState {
    #[diesel(sql_type = Bool)]
    monitored: bool,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    last_entry: Option<DateTime<Utc>>,
}

/// The monitor state of station `station_id`, whose monitor lock key is `lock_key`.
pub fn monitor_state(
    conn: &mut PgConnection,
    station_id: i64,
    lock_key: i64,
) -> QueryResult<MonitorState> {
    let lock: LockState = diesel::sql_query(include_str!("../../sql/console_monitor_state.sql"))
        .bind::<BigInt, _>(lock_key)
        .bind::<BigInt, _>(station_id)
        .get_result(conn)?;
    Ok(MonitorState {
        monitored: lock.monitored,
        last_entry: lock.last_entry,
        unreachable_since: super::webhooks::outage_reported(conn, station_id)?,
    })
}

/// One job's recent record.
#[derive(Debug, Clone, QueryableByName)]
pub struct JobHealth {
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_run: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_success: Option<DateTime<Utc>>,
    #[diesel(sql_type = BigInt)]
    pub failures_24h: i64,
    #[diesel(sql_type = Nullable<Text>)]
    pub last_error: Option<String>,
}

/// What one log-shipper origin last sent.
#[derive(Debug, Clone, QueryableByName)]
pub struct ShipperHealth {
    #[diesel(sql_type = Text)]
    pub origin: String,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_event: Option<DateTime<Utc>>,
    #[diesel(sql_type = BigInt)]
    pub last_hour: i64,
}

/// One captured mpv instance.
#[derive(Debug, Clone, QueryableByName)]
pub struct MpvHealth {
    #[diesel(sql_type = Text)]
    pub instance: String,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_event: Option<DateTime<Utc>>,
    #[diesel(sql_type = BigInt)]
    pub plays: i64,
}

/// Jobs, shippers and mpv instances, as the health page lists them.
pub struct Health {
    pub jobs: Vec<JobHealth>,
    pub shippers: Vec<ShipperHealth>,
    pub mpv: Vec<MpvHealth>,
}

/// The health overview.
pub fn health(conn: &mut PgConnection) -> QueryResult<Health> {
    Ok(Health {
        jobs: diesel::sql_query(include_str!("../../sql/console_health.sql")).load(conn)?,
        shippers: diesel::sql_query(include_str!("../../sql/console_shippers.sql")).load(conn)?,
        mpv: diesel::sql_query(include_str!("../../sql/console_mpv.sql")).load(conn)?,
    })
}
