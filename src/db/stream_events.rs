//! Queries on `stats_stream_event`.

use chrono::{DateTime, Utc};
use diesel::dsl::sql;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Array, Bool, Int4, Int8, Text, Timestamptz};
use ipnetwork::IpNetwork;
use serde::Serialize;

use super::keyset;
use super::schema::stats_stream_event as se;
use crate::domain::stream_event::{Origin, StreamEvent};
use crate::domain::{Direction, Key};

/// A stored stream event, serialised with the camelCase names clients of the replaced API read.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = se)]
#[serde(rename_all = "camelCase")]
pub struct StreamEventRow {
    pub id: i64,
    pub uuid: uuid::Uuid,
    pub origin: String,
    #[serde(serialize_with = "serialize_ip")]
    #[schema(value_type = String)]
    pub ip: IpNetwork,
    pub method: String,
    pub path: String,
    pub status: i32,
    pub bytes_sent: i64,
    pub referer: String,
    pub user_agent: String,
    pub seconds_connected: i32,
    pub time_start: DateTime<Utc>,
    pub time_end: DateTime<Utc>,
    pub device_key: String,
}

fn serialize_ip<S: serde::Serializer>(ip: &IpNetwork, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&ip.ip())
}

/// Which events a list or export covers; every field narrows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// time_start >= this.
    pub time_from: Option<DateTime<Utc>>,
    /// time_start < this.
    pub time_until: Option<DateTime<Utc>>,
    pub origin: Option<Origin>,
    pub path: Option<String>,
    pub status: Option<i32>,
    /// seconds_connected >= this.
    pub min_seconds: Option<i32>,
    /// bytes_sent >= this.
    pub min_bytes: Option<i64>,
}

type Boxed<'a> =
    se::BoxedQuery<'a, Pg, <diesel::dsl::AsSelect<StreamEventRow, Pg> as Expression>::SqlType>;

fn filtered(f: &Filter) -> Boxed<'_> {
    let mut q = se::table.select(StreamEventRow::as_select()).into_boxed();
    if let Some(t) = f.time_from {
        q = q.filter(se::time_start.ge(t));
    }
    if let Some(t) = f.time_until {
        q = q.filter(se::time_start.lt(t));
    }
    if let Some(o) = f.origin {
        q = q.filter(se::origin.eq(o.as_str()));
    }
    if let Some(p) = &f.path {
        q = q.filter(se::path.eq(p));
    }
    if let Some(s) = f.status {
        q = q.filter(se::status.eq(s));
    }
    if let Some(s) = f.min_seconds {
        q = q.filter(se::seconds_connected.ge(s));
    }
    if let Some(b) = f.min_bytes {
        q = q.filter(se::bytes_sent.ge(b));
    }
    q
}

/// One event as the binary COPY writes it: borrowed from the checked event, nothing copied.
#[derive(Insertable)]
#[diesel(table_name = se, treat_none_as_default_value = false)]
struct CopyRow<'a> {
    origin: &'a str,
    ip: IpNetwork,
    method: &'a str,
    path: &'a str,
    status: i32,
    bytes_sent: i64,
    referer: &'a str,
    user_agent: &'a str,
    seconds_connected: i32,
    time_start: DateTime<Utc>,
    time_end: DateTime<Utc>,
    device_key: &'a str,
}

/// Stores checked events, skipping those already stored; returns how many were new.
///
/// A batch is nearly always new, so it is first sent as one binary `COPY`: PostgreSQL then does
/// the work of a bulk load (no per-row conflict handling, no text parsing of times and
/// addresses). If any event is already stored (a retried batch) or the batch holds one event
/// twice, the natural-key index refuses the whole `COPY`, nothing of it stays, and the batch
/// goes through the statement that skips stored events one by one. The `COPY` runs in a
/// transaction of its own (a savepoint inside a caller's), so its failure leaves the connection
/// usable and costs only that work.
pub fn insert_batch(conn: &mut PgConnection, events: &[StreamEvent]) -> QueryResult<usize> {
    if events.is_empty() {
        return Ok(0);
    }
    match conn.transaction(|conn| copy_batch(conn, events)) {
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => insert_skipping_stored(conn, events),
        other => other,
    }
}

fn copy_batch(conn: &mut PgConnection, events: &[StreamEvent]) -> QueryResult<usize> {
    let rows: Vec<CopyRow<'_>> = events
        .iter()
        .map(|e| CopyRow {
            origin: e.origin.as_str(),
            ip: IpNetwork::from(e.ip),
            method: &e.method,
            path: &e.path,
            status: e.status,
            bytes_sent: e.bytes_sent,
            referer: &e.referer,
            user_agent: &e.user_agent,
            seconds_connected: e.seconds_connected,
            time_start: e.time_start,
            time_end: e.time_end,
            device_key: &e.device_key,
        })
        .collect();
    diesel::copy_from(se::table)
        .from_insertable(&rows)
        .execute(conn)
}

/// The slow path of [`insert_batch`]: one statement that skips events already stored.
fn insert_skipping_stored(conn: &mut PgConnection, events: &[StreamEvent]) -> QueryResult<usize> {
    let col = |f: fn(&StreamEvent) -> String| events.iter().map(f).collect::<Vec<String>>();
    diesel::sql_query(include_str!("../../sql/stream_event_insert.sql"))
        .bind::<Array<Text>, _>(col(|e| e.origin.as_str().to_string()))
        .bind::<Array<Text>, _>(col(|e| e.ip.to_string()))
        .bind::<Array<Text>, _>(col(|e| e.method.clone()))
        .bind::<Array<Text>, _>(col(|e| e.path.clone()))
        .bind::<Array<Int4>, _>(events.iter().map(|e| e.status).collect::<Vec<_>>())
        .bind::<Array<Int8>, _>(events.iter().map(|e| e.bytes_sent).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(col(|e| e.referer.clone()))
        .bind::<Array<Text>, _>(col(|e| e.user_agent.clone()))
        .bind::<Array<Int4>, _>(
            events
                .iter()
                .map(|e| e.seconds_connected)
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Timestamptz>, _>(events.iter().map(|e| e.time_start).collect::<Vec<_>>())
        .bind::<Array<Timestamptz>, _>(events.iter().map(|e| e.time_end).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(col(|e| e.device_key.clone()))
        .execute(conn)
}

/// How many events match.
pub fn count(conn: &mut PgConnection, f: &Filter) -> QueryResult<i64> {
    filtered(f).count().get_result(conn)
}

/// Up to `limit` events in (time_start, id) order, strictly after or before `key`
/// (from the start when `key` is None). Pages read before a key are returned in forward order.
pub fn keyset_page(
    conn: &mut PgConnection,
    f: &Filter,
    key: Option<Key>,
    direction: Direction,
    limit: i64,
) -> QueryResult<Vec<StreamEventRow>> {
    let walk = keyset::walk(direction, false);
    let mut q = filtered(f);
    if let Some(k) = key {
        // A row comparison lets PostgreSQL walk the (time_start, id) index from the key.
        q = q.filter(
            sql::<Bool>("(time_start, id) ")
                .sql(walk.op)
                .sql(" (")
                .bind::<Timestamptz, _>(k.time)
                .sql(", ")
                .bind::<Int8, _>(k.id)
                .sql(")"),
        );
    }
    let q = if walk.ascending {
        q.order((se::time_start.asc(), se::id.asc()))
    } else {
        q.order((se::time_start.desc(), se::id.desc()))
    };
    Ok(keyset::in_list_order(q.limit(limit).load(conn)?, direction))
}

/// `limit` events from `offset` on, for old clients that page by offset.
pub fn offset_page(
    conn: &mut PgConnection,
    f: &Filter,
    offset: i64,
    limit: i64,
) -> QueryResult<Vec<StreamEventRow>> {
    filtered(f)
        .order((se::time_start.asc(), se::id.asc()))
        .offset(offset)
        .limit(limit)
        .load(conn)
}

/// Events that ended in `[from, until)`, in (time_end, id) order after `key`: the order an
/// access log writes them in.
pub fn ended_between(
    conn: &mut PgConnection,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    origin: Option<Origin>,
    key: Option<Key>,
    limit: i64,
) -> QueryResult<Vec<StreamEventRow>> {
    let mut q = se::table
        .select(StreamEventRow::as_select())
        .filter(se::time_end.ge(from))
        .filter(se::time_end.lt(until))
        .into_boxed();
    if let Some(o) = origin {
        q = q.filter(se::origin.eq(o.as_str()));
    }
    if let Some(k) = key {
        q = q.filter(
            sql::<Bool>("(time_end, id) > (") // the export's walk, always forward
                .bind::<Timestamptz, _>(k.time)
                .sql(", ")
                .bind::<Int8, _>(k.id)
                .sql(")"),
        );
    }
    q.order((se::time_end.asc(), se::id.asc()))
        .limit(limit)
        .load(conn)
}
