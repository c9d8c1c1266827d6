//! Queries on webhook endpoints and their deliveries (the outbox). Deliveries of as-run log
//! entries are written by the entry's own insert (`playout::insert_log`); these write the rest.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Double, Integer, Jsonb, Nullable, Text, Timestamptz};
use serde::Serialize;

/// A webhook endpoint. The secret is read by the worker and never serialised.
#[derive(Debug, Clone, QueryableByName, Serialize, utoipa::ToSchema)]
pub struct EndpointRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub url: String,
    #[diesel(sql_type = Array<Text>)]
    pub events: Vec<String>,
    /// The only station whose events it gets (none: every station's).
    #[diesel(sql_type = Nullable<Text>)]
    pub station: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    #[serde(skip)]
    pub station_id: Option<i64>,
    #[diesel(sql_type = Text)]
    pub preset: String,
    #[diesel(sql_type = Text)]
    #[serde(skip)]
    #[schema(ignore)]
    pub secret: String,
    #[diesel(sql_type = Bool)]
    pub enabled: bool,
    /// `ok`, or `failing` after `webhooks.failing_after` consecutive failed attempts.
    #[diesel(sql_type = Text)]
    pub state: String,
    #[diesel(sql_type = Integer)]
    pub consecutive_failures: i32,
    /// The last failure (status or transport error), kept after recovery.
    #[diesel(sql_type = Nullable<Text>)]
    pub last_error: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: DateTime<Utc>,
}

const ENDPOINT_COLUMNS: &str = "id, url, events, station_id, \
     (SELECT st.name FROM station st WHERE st.id = station_id) AS station, preset, secret, enabled, \
     state, consecutive_failures, last_error, created_at, updated_at";

/// An endpoint's settings, as written.
#[derive(Debug, Clone)]
pub struct EndpointSettings {
    pub url: String,
    pub events: Vec<String>,
    pub station_id: Option<i64>,
    pub preset: String,
    pub secret: String,
    pub enabled: bool,
}

/// Stores a new endpoint.
pub fn insert_endpoint(conn: &mut PgConnection, e: &EndpointSettings) -> QueryResult<EndpointRow> {
    diesel::sql_query(format!(
        "INSERT INTO webhook_endpoint (url, events, preset, secret, enabled, station_id) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {ENDPOINT_COLUMNS}"
    ))
    .bind::<Text, _>(&e.url)
    .bind::<Array<Text>, _>(&e.events)
    .bind::<Text, _>(&e.preset)
    .bind::<Text, _>(&e.secret)
    .bind::<Bool, _>(e.enabled)
    .bind::<Nullable<BigInt>, _>(e.station_id)
    .get_result(conn)
}

/// Changes an endpoint's settings; a changed URL or re-enabling starts its state afresh.
pub fn update_endpoint(
    conn: &mut PgConnection,
    id: i64,
    e: &EndpointSettings,
) -> QueryResult<Option<EndpointRow>> {
    diesel::sql_query(format!(
        "UPDATE webhook_endpoint SET url = $2, events = $3, preset = $4, secret = $5, enabled = $6, \
         station_id = $7, \
         state = CASE WHEN url <> $2 OR (NOT enabled AND $6) THEN 'ok' ELSE state END, \
         consecutive_failures = CASE WHEN url <> $2 OR (NOT enabled AND $6) THEN 0 ELSE consecutive_failures END, \
         updated_at = now() WHERE id = $1 RETURNING {ENDPOINT_COLUMNS}"
    ))
    .bind::<BigInt, _>(id)
    .bind::<Text, _>(&e.url)
    .bind::<Array<Text>, _>(&e.events)
    .bind::<Text, _>(&e.preset)
    .bind::<Text, _>(&e.secret)
    .bind::<Bool, _>(e.enabled)
    .bind::<Nullable<BigInt>, _>(e.station_id)
    .get_result(conn)
    .optional()
}

/// One endpoint.
pub fn endpoint(conn: &mut PgConnection, id: i64) -> QueryResult<Option<EndpointRow>> {
    diesel::sql_query(format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoint WHERE id = $1"
    ))
    .bind::<BigInt, _>(id)
    .get_result(conn)
    .optional()
}

/// Every endpoint, oldest first.
pub fn endpoints(conn: &mut PgConnection) -> QueryResult<Vec<EndpointRow>> {
    diesel::sql_query(format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoint ORDER BY id"
    ))
    .load(conn)
}

/// Deletes an endpoint and its deliveries; false when there was none.
pub fn delete_endpoint(conn: &mut PgConnection, id: i64) -> QueryResult<bool> {
    Ok(
        diesel::sql_query("DELETE FROM webhook_endpoint WHERE id = $1")
            .bind::<BigInt, _>(id)
            .execute(conn)?
            > 0,
    )
}

/// A delivery: one event for one endpoint, and how its sending went.
#[derive(Debug, Clone, QueryableByName, Serialize, utoipa::ToSchema)]
pub struct DeliveryRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// What receivers get as `X-Airlog-Delivery`.
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub uuid: uuid::Uuid,
    #[diesel(sql_type = BigInt)]
    pub endpoint_id: i64,
    #[diesel(sql_type = Text)]
    pub event: String,
    /// The as-run log entry reported, if the event has one.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub log_id: Option<i64>,
    /// `pending`, `delivered`, `coalesced` or `failed`.
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    /// When a pending delivery is tried next.
    #[diesel(sql_type = Timestamptz)]
    pub next_attempt_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_attempt_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub delivered_at: Option<DateTime<Utc>>,
    /// The HTTP status of the last attempt (none: no answer).
    #[diesel(sql_type = Nullable<Integer>)]
    pub response_status: Option<i32>,
    /// Milliseconds the last attempt took.
    #[diesel(sql_type = Nullable<Integer>)]
    pub latency_ms: Option<i32>,
    /// The start of the last answer's body.
    #[diesel(sql_type = Nullable<Text>)]
    pub response_excerpt: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub last_error: Option<String>,
    /// For a coalesced delivery: the later one sent in its place.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub coalesced_into: Option<i64>,
    /// For a redelivery: the delivery it repeats.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub redelivery_of: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    #[serde(skip)]
    #[schema(ignore)]
    pub station_id: Option<i64>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    #[serde(skip)]
    #[schema(ignore)]
    pub payload: Option<serde_json::Value>,
}

const DELIVERY_COLUMNS: &str = "id, uuid, endpoint_id, event, log_id, status, attempts, created_at, \
     next_attempt_at, last_attempt_at, delivered_at, response_status, latency_ms, response_excerpt, \
     last_error, coalesced_into, redelivery_of, station_id, payload";

/// Records an event without a log entry (a station going offline) for every enabled endpoint
/// that asked for it; returns how many deliveries were written.
pub fn enqueue(
    conn: &mut PgConnection,
    event: &str,
    station_id: Option<i64>,
    payload: &serde_json::Value,
) -> QueryResult<usize> {
    diesel::sql_query(
        "INSERT INTO webhook_delivery (endpoint_id, event, station_id, payload) \
         SELECT id, $1, $2, $3 FROM webhook_endpoint WHERE enabled AND $1 = ANY (events) \
         AND ($2::bigint IS NULL OR station_id IS NULL OR station_id = $2) ORDER BY id",
    )
    .bind::<Text, _>(event)
    .bind::<Nullable<BigInt>, _>(station_id)
    .bind::<Jsonb, _>(payload)
    .execute(conn)
}

/// When the outage of a station reported by the latest `station_offline` began, unless a
/// `station_online` followed it.
pub fn outage_reported(
    conn: &mut PgConnection,
    station_id: i64,
) -> QueryResult<Option<DateTime<Utc>>> {
    #[derive(QueryableByName)]
    struct Since {
        #[diesel(sql_type = Nullable<Timestamptz>)]
        since: Option<DateTime<Utc>>,
    }
    Ok(diesel::sql_query(
        "SELECT CASE WHEN event = 'station_offline' THEN (payload->>'since')::timestamptz END AS since \
         FROM webhook_delivery WHERE station_id = $1 AND event IN ('station_offline', 'station_online') \
         ORDER BY id DESC LIMIT 1",
    )
    .bind::<BigInt, _>(station_id)
    .get_result::<Since>(conn)
    .optional()?
    .and_then(|s| s.since))
}

/// Records one delivery for one endpoint (the test action).
pub fn enqueue_for(
    conn: &mut PgConnection,
    endpoint_id: i64,
    event: &str,
    payload: &serde_json::Value,
) -> QueryResult<DeliveryRow> {
    diesel::sql_query(format!(
        "INSERT INTO webhook_delivery (endpoint_id, event, payload) VALUES ($1, $2, $3) \
         RETURNING {DELIVERY_COLUMNS}"
    ))
    .bind::<BigInt, _>(endpoint_id)
    .bind::<Text, _>(event)
    .bind::<Jsonb, _>(payload)
    .get_result(conn)
}

/// Queues a delivery of the same event again (a new delivery id, at the end of the queue);
/// None when the endpoint has no such delivery.
pub fn redeliver(
    conn: &mut PgConnection,
    endpoint_id: i64,
    delivery_id: i64,
) -> QueryResult<Option<DeliveryRow>> {
    diesel::sql_query(format!(
        "INSERT INTO webhook_delivery (endpoint_id, event, station_id, log_id, payload, redelivery_of) \
         SELECT endpoint_id, event, station_id, log_id, payload, id FROM webhook_delivery \
         WHERE endpoint_id = $1 AND id = $2 RETURNING {DELIVERY_COLUMNS}"
    ))
    .bind::<BigInt, _>(endpoint_id)
    .bind::<BigInt, _>(delivery_id)
    .get_result(conn)
    .optional()
}

/// An endpoint's deliveries, newest first: those older than `before` (an id), with `status`.
pub fn deliveries(
    conn: &mut PgConnection,
    endpoint_id: i64,
    status: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<DeliveryRow>> {
    diesel::sql_query(format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_delivery WHERE endpoint_id = $1 \
         AND ($2::text IS NULL OR status = $2) AND ($3::bigint IS NULL OR id < $3) \
         ORDER BY id DESC LIMIT $4"
    ))
    .bind::<BigInt, _>(endpoint_id)
    .bind::<Nullable<Text>, _>(status)
    .bind::<Nullable<BigInt>, _>(before)
    .bind::<BigInt, _>(limit)
    .load(conn)
}

/// Enabled endpoints whose oldest pending delivery is due at `now`.
pub fn due_endpoints(conn: &mut PgConnection, now: DateTime<Utc>) -> QueryResult<Vec<i64>> {
    #[derive(QueryableByName)]
    struct E {
        #[diesel(sql_type = BigInt)]
        endpoint_id: i64,
    }
    let rows: Vec<E> = diesel::sql_query(
        "SELECT head.endpoint_id FROM webhook_endpoint e CROSS JOIN LATERAL \
         (SELECT endpoint_id, next_attempt_at, locked_until FROM webhook_delivery d \
          WHERE d.endpoint_id = e.id AND d.status = 'pending' ORDER BY d.id LIMIT 1) head \
         WHERE e.enabled AND head.next_attempt_at <= $1 \
         AND (head.locked_until IS NULL OR head.locked_until <= $1) ORDER BY e.id",
    )
    .bind::<Timestamptz, _>(now)
    .load(conn)?;
    Ok(rows.into_iter().map(|e| e.endpoint_id).collect())
}

/// Leases the oldest pending delivery of an endpoint for `lease_s` seconds, unless another
/// process holds it; the delivery leased.
pub fn lease_head(
    conn: &mut PgConnection,
    endpoint_id: i64,
    lease_s: f64,
) -> QueryResult<Option<DeliveryRow>> {
    let Some(head) = head(conn, endpoint_id)? else {
        return Ok(None);
    };
    let leased = diesel::sql_query(
        "UPDATE webhook_delivery SET locked_until = now() + make_interval(secs => $2) \
         WHERE id = $1 AND status = 'pending' AND (locked_until IS NULL OR locked_until <= now())",
    )
    .bind::<BigInt, _>(head.id)
    .bind::<Double, _>(lease_s)
    .execute(conn)?;
    Ok((leased > 0).then_some(head))
}

/// Gives back the leases this process holds on these endpoints' deliveries (it stops).
pub fn release_leases(conn: &mut PgConnection, endpoint_ids: &[i64]) -> QueryResult<usize> {
    diesel::sql_query(
        "UPDATE webhook_delivery SET locked_until = NULL \
         WHERE endpoint_id = ANY ($1) AND status = 'pending' AND locked_until IS NOT NULL",
    )
    .bind::<Array<BigInt>, _>(endpoint_ids)
    .execute(conn)
}

/// Whether another process holds the lease of an endpoint's oldest pending delivery.
pub fn head_leased(conn: &mut PgConnection, endpoint_id: i64) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct L {
        #[diesel(sql_type = Bool)]
        leased: bool,
    }
    Ok(diesel::sql_query(
        "SELECT coalesce((SELECT locked_until > now() FROM webhook_delivery \
         WHERE endpoint_id = $1 AND status = 'pending' ORDER BY id LIMIT 1), false) AS leased",
    )
    .bind::<BigInt, _>(endpoint_id)
    .get_result::<L>(conn)?
    .leased)
}

/// Marks all but the latest of a leading run of now-playing deliveries `coalesced`.
pub fn coalesce(conn: &mut PgConnection, endpoint_id: i64) -> QueryResult<usize> {
    diesel::sql_query(include_str!("../../sql/webhook_coalesce.sql"))
        .bind::<BigInt, _>(endpoint_id)
        .execute(conn)
}

/// The oldest pending delivery of an endpoint.
pub fn head(conn: &mut PgConnection, endpoint_id: i64) -> QueryResult<Option<DeliveryRow>> {
    diesel::sql_query(format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_delivery \
         WHERE endpoint_id = $1 AND status = 'pending' ORDER BY id LIMIT 1"
    ))
    .bind::<BigInt, _>(endpoint_id)
    .get_result(conn)
    .optional()
}

/// What a delivery says about its log entry.
#[derive(Debug, Clone, QueryableByName)]
pub struct EntryFacts {
    #[diesel(sql_type = Text)]
    pub station: String,
    #[diesel(sql_type = BigInt)]
    pub entry_id: i64,
    #[diesel(sql_type = Text)]
    pub entry_type: String,
    #[diesel(sql_type = Timestamptz)]
    pub date: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    pub source: String,
    #[diesel(sql_type = Text)]
    pub comment: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub path: Option<String>,
    #[diesel(sql_type = Double)]
    pub position_s: f64,
    #[diesel(sql_type = Nullable<Text>)]
    pub sound_title: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub sound_artist: Option<String>,
    #[diesel(sql_type = Nullable<Double>)]
    pub sound_duration_s: Option<f64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub track_title: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub track_artist: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub diffusion_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub diffusion_title: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub diffusion_start: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub diffusion_end: Option<DateTime<Utc>>,
}

/// The facts of a log entry a delivery reports.
pub fn entry_facts(conn: &mut PgConnection, log_id: i64) -> QueryResult<Option<EntryFacts>> {
    diesel::sql_query(include_str!("../../sql/webhook_event.sql"))
        .bind::<BigInt, _>(log_id)
        .get_result(conn)
        .optional()
}

/// A station's name by id.
pub fn station_name(conn: &mut PgConnection, station_id: i64) -> QueryResult<Option<String>> {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = Text)]
        name: String,
    }
    Ok(diesel::sql_query("SELECT name FROM station WHERE id = $1")
        .bind::<BigInt, _>(station_id)
        .get_result::<N>(conn)
        .optional()?
        .map(|n| n.name))
}

/// How one attempt went.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub at: DateTime<Utc>,
    pub response_status: Option<i32>,
    pub latency_ms: i32,
    pub response_excerpt: Option<String>,
    /// None: delivered. Otherwise why not.
    pub error: Option<String>,
    /// For a failure: when to try again, or None to give up.
    pub retry_at: Option<DateTime<Utc>>,
    /// Whether the failure counts against the endpoint (a 429 is the receiver pacing us).
    pub counts_as_failure: bool,
}

/// Records an attempt on the delivery and the endpoint's state in one transaction.
pub fn record_attempt(
    conn: &mut PgConnection,
    delivery_id: i64,
    endpoint_id: i64,
    failing_after: i32,
    a: &Attempt,
) -> QueryResult<()> {
    conn.transaction(|conn| {
        let status = match (&a.error, a.retry_at) {
            (None, _) => "delivered",
            (Some(_), Some(_)) => "pending",
            (Some(_), None) => "failed",
        };
        diesel::sql_query(
            "UPDATE webhook_delivery SET status = $2, attempts = attempts + 1, last_attempt_at = $3, \
             delivered_at = CASE WHEN $2 = 'delivered' THEN $3 END, response_status = $4, latency_ms = $5, \
             response_excerpt = $6, last_error = $7, next_attempt_at = coalesce($8, next_attempt_at), \
             locked_until = NULL \
             WHERE id = $1",
        )
        .bind::<BigInt, _>(delivery_id)
        .bind::<Text, _>(status)
        .bind::<Timestamptz, _>(a.at)
        .bind::<Nullable<Integer>, _>(a.response_status)
        .bind::<Integer, _>(a.latency_ms)
        .bind::<Nullable<Text>, _>(a.response_excerpt.as_deref())
        .bind::<Nullable<Text>, _>(a.error.as_deref())
        .bind::<Nullable<Timestamptz>, _>(a.retry_at)
        .execute(conn)?;
        diesel::sql_query(
            "INSERT INTO webhook_attempt (delivery_id, at, response_status, latency_ms, response_excerpt, error) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind::<BigInt, _>(delivery_id)
        .bind::<Timestamptz, _>(a.at)
        .bind::<Nullable<Integer>, _>(a.response_status)
        .bind::<Integer, _>(a.latency_ms)
        .bind::<Nullable<Text>, _>(a.response_excerpt.as_deref())
        .bind::<Nullable<Text>, _>(a.error.as_deref())
        .execute(conn)?;
        match (&a.error, a.counts_as_failure) {
            (None, _) => diesel::sql_query(
                "UPDATE webhook_endpoint SET state = 'ok', consecutive_failures = 0 WHERE id = $1",
            )
            .bind::<BigInt, _>(endpoint_id)
            .execute(conn)?,
            (Some(e), true) => diesel::sql_query(
                "UPDATE webhook_endpoint SET consecutive_failures = consecutive_failures + 1, \
                 last_error = $2, state = CASE WHEN consecutive_failures + 1 >= $3 THEN 'failing' ELSE state END \
                 WHERE id = $1",
            )
            .bind::<BigInt, _>(endpoint_id)
            .bind::<Text, _>(e)
            .bind::<Integer, _>(failing_after)
            .execute(conn)?,
            (Some(e), false) => diesel::sql_query(
                "UPDATE webhook_endpoint SET last_error = $2 WHERE id = $1",
            )
            .bind::<BigInt, _>(endpoint_id)
            .bind::<Text, _>(e)
            .execute(conn)?,
        };
        Ok(())
    })
}

/// One attempt of a delivery.
#[derive(Debug, Clone, QueryableByName, Serialize, utoipa::ToSchema)]
pub struct AttemptRow {
    #[diesel(sql_type = Timestamptz)]
    pub at: DateTime<Utc>,
    /// The HTTP status (none: no answer).
    #[diesel(sql_type = Nullable<Integer>)]
    pub response_status: Option<i32>,
    #[diesel(sql_type = Integer)]
    pub latency_ms: i32,
    /// The start of the answer's body.
    #[diesel(sql_type = Nullable<Text>)]
    pub response_excerpt: Option<String>,
    /// Why it failed (none: delivered).
    #[diesel(sql_type = Nullable<Text>)]
    pub error: Option<String>,
}

/// One delivery of an endpoint.
pub fn delivery(
    conn: &mut PgConnection,
    endpoint_id: i64,
    delivery_id: i64,
) -> QueryResult<Option<DeliveryRow>> {
    diesel::sql_query(format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_delivery WHERE endpoint_id = $1 AND id = $2"
    ))
    .bind::<BigInt, _>(endpoint_id)
    .bind::<BigInt, _>(delivery_id)
    .get_result(conn)
    .optional()
}

/// Every attempt of a delivery, oldest first.
pub fn attempts(conn: &mut PgConnection, delivery_id: i64) -> QueryResult<Vec<AttemptRow>> {
    diesel::sql_query(
        "SELECT at, response_status, latency_ms, response_excerpt, error FROM webhook_attempt \
         WHERE delivery_id = $1 ORDER BY id",
    )
    .bind::<BigInt, _>(delivery_id)
    .load(conn)
}

/// Deletes up to `limit` finished deliveries (delivered, coalesced, failed) older than
/// `before`, with their attempts; how many went.
pub fn prune(conn: &mut PgConnection, before: DateTime<Utc>, limit: i64) -> QueryResult<usize> {
    diesel::sql_query(
        "DELETE FROM webhook_delivery WHERE id IN (SELECT id FROM webhook_delivery \
         WHERE status <> 'pending' AND created_at < $1 ORDER BY created_at LIMIT $2)",
    )
    .bind::<Timestamptz, _>(before)
    .bind::<BigInt, _>(limit)
    .execute(conn)
}

/// The level of listener thresholds stored at the last look, and the listeners then.
pub fn listener_level(conn: &mut PgConnection) -> QueryResult<Option<(i32, i64)>> {
    #[derive(QueryableByName)]
    struct L {
        #[diesel(sql_type = Integer)]
        level: i32,
        #[diesel(sql_type = BigInt)]
        listeners: i64,
    }
    Ok(
        diesel::sql_query("SELECT level, listeners FROM webhook_listener_level")
            .get_result::<L>(conn)
            .optional()?
            .map(|l| (l.level, l.listeners)),
    )
}

/// Stores the level of listener thresholds reached now.
pub fn set_listener_level(conn: &mut PgConnection, level: i32, listeners: i64) -> QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO webhook_listener_level (level, listeners) VALUES ($1, $2) \
         ON CONFLICT (singleton) DO UPDATE SET level = excluded.level, \
         listeners = excluded.listeners, updated_at = now()",
    )
    .bind::<Integer, _>(level)
    .bind::<BigInt, _>(listeners)
    .execute(conn)
    .map(drop)
}
