//! Queries on media items and mpv plays.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Double, Jsonb, Nullable, Text, Timestamptz};
use serde::Serialize;

use crate::db::Id;
use crate::domain::play::{Play, Rules};

/// The item a play is of: by content hash when the file can be read, else by path. A known
/// hash under a new path keeps its id and learns the path (a rename); a new hash at a known
/// path keeps the id and learns the hash (retagged in place, which changes the bytes).
pub fn item_for(
    conn: &mut PgConnection,
    path: &str,
    is_stream: bool,
    title: &str,
    content_hash: Option<&str>,
) -> QueryResult<i64> {
    let found: Option<Id> = match content_hash {
        Some(h) => diesel::sql_query(
            "UPDATE media_item SET path = $2, updated_at = now() WHERE content_hash = $1 RETURNING id",
        )
        .bind::<Text, _>(h)
        .bind::<Text, _>(path)
        .get_result(conn)
        .optional()?,
        None => diesel::sql_query("SELECT id FROM media_item WHERE path = $1 AND content_hash IS NULL")
            .bind::<Text, _>(path)
            .get_result(conn)
            .optional()?,
    };
    if let Some(f) = found {
        return Ok(f.id);
    }
    if let Some(h) = content_hash {
        let retagged: Option<Id> = diesel::sql_query(
            "UPDATE media_item SET content_hash = $2, updated_at = now() \
             WHERE id = (SELECT id FROM media_item WHERE path = $1 ORDER BY updated_at DESC LIMIT 1) RETURNING id",
        )
        .bind::<Text, _>(path)
        .bind::<Text, _>(h)
        .get_result(conn)
        .optional()?;
        if let Some(r) = retagged {
            return Ok(r.id);
        }
    }
    let inserted: Option<Id> = diesel::sql_query(
        "INSERT INTO media_item (path, content_hash, is_stream, title) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind::<Text, _>(path)
    .bind::<Nullable<Text>, _>(content_hash)
    .bind::<Bool, _>(is_stream)
    .bind::<Text, _>(title)
    .get_result(conn)
    .optional()?;
    match inserted {
        Some(i) => Ok(i.id),
        // Another writer created it meanwhile.
        None => item_for(conn, path, is_stream, title, content_hash),
    }
}

/// One captured event as stored.
#[derive(Debug, QueryableByName)]
pub struct EventRow {
    #[diesel(sql_type = BigInt)]
    pub seq: i64,
    #[diesel(sql_type = Timestamptz)]
    pub time: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    pub event: String,
    #[diesel(sql_type = Nullable<Jsonb>)]
    pub data: Option<serde_json::Value>,
}

/// Appends an event of an instance with its sequence number (unique per instance).
pub fn insert_event(
    conn: &mut PgConnection,
    instance: &str,
    seq: i64,
    time: DateTime<Utc>,
    event: &str,
    data: &serde_json::Value,
) -> QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO mpv_event (instance, seq, time, event, data) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind::<Text, _>(instance)
    .bind::<BigInt, _>(seq)
    .bind::<Timestamptz, _>(time)
    .bind::<Text, _>(event)
    .bind::<Jsonb, _>(data)
    .execute(conn)?;
    Ok(())
}

/// The events of an instance in their order.
pub fn events(conn: &mut PgConnection, instance: &str) -> QueryResult<Vec<EventRow>> {
    diesel::sql_query(
        "SELECT seq, time, event, data FROM mpv_event WHERE instance = $1 ORDER BY seq",
    )
    .bind::<Text, _>(instance)
    .load(conn)
}

/// Stores a play unless one with the same `source_key` exists; true when new. One mpv plays
/// one thing at a time, so a live play and an imported play of the same instance and path
/// whose times overlap (within a second) are one play, stored once: the live one, which has
/// mpv's own file boundaries. An import skips such a play; a live play replaces it.
#[allow(clippy::too_many_arguments)]
pub fn insert_play(
    conn: &mut PgConnection,
    item_id: i64,
    source: &str,
    source_key: &str,
    instance: &str,
    p: &Play,
    end_reason: Option<&str>,
    rules: &Rules,
) -> QueryResult<bool> {
    let at = |t: f64| {
        DateTime::<Utc>::from_timestamp_micros((t * 1e6).round() as i64).unwrap_or_default()
    };
    let (start, end) = (at(p.start_time), at(p.end_time));
    let other = if source == "live" { "import" } else { "live" };
    let same_play = "FROM mpv_play WHERE source = $1 AND instance = $2 AND path = $3 \
         AND start_time <= $5 + interval '1 second' AND end_time >= $4 - interval '1 second'";
    if source == "live" {
        diesel::sql_query(format!("DELETE {same_play}"))
            .bind::<Text, _>(other)
            .bind::<Text, _>(instance)
            .bind::<Text, _>(&p.path)
            .bind::<Timestamptz, _>(start)
            .bind::<Timestamptz, _>(end)
            .execute(conn)?;
    } else {
        #[derive(QueryableByName)]
        struct Found {
            #[diesel(sql_type = Bool)]
            found: bool,
        }
        let f: Found = diesel::sql_query(format!("SELECT EXISTS (SELECT 1 {same_play}) AS found"))
            .bind::<Text, _>(other)
            .bind::<Text, _>(instance)
            .bind::<Text, _>(&p.path)
            .bind::<Timestamptz, _>(start)
            .bind::<Timestamptz, _>(end)
            .get_result(conn)?;
        if f.found {
            return Ok(false);
        }
    }
    let n = diesel::sql_query(
        "INSERT INTO mpv_play (item_id, source, source_key, instance, path, is_stream, start_time, end_time, \
         pause_duration_s, media_duration_s, media_title, metadata, actions, end_reason, listened, scrobbled) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) ON CONFLICT (source_key) DO NOTHING",
    )
    .bind::<BigInt, _>(item_id)
    .bind::<Text, _>(source)
    .bind::<Text, _>(source_key)
    .bind::<Text, _>(instance)
    .bind::<Text, _>(&p.path)
    .bind::<Bool, _>(p.is_stream)
    .bind::<Timestamptz, _>(start)
    .bind::<Timestamptz, _>(end)
    .bind::<Double, _>(p.pause_duration)
    .bind::<Nullable<Double>, _>(p.media_duration)
    .bind::<Nullable<Text>, _>(p.media_title.as_deref())
    .bind::<Jsonb, _>(serde_json::Value::Object(p.metadata.clone()))
    .bind::<Jsonb, _>(serde_json::to_value(&p.actions).unwrap_or_default())
    .bind::<Nullable<Text>, _>(end_reason)
    .bind::<Bool, _>(p.listened(rules))
    .bind::<Bool, _>(p.scrobbled(rules))
    .execute(conn)?;
    Ok(n == 1)
}

/// A stored play as the API lists it.
#[derive(Debug, Clone, QueryableByName, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlayRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub item_id: i64,
    #[diesel(sql_type = Text)]
    pub path: String,
    #[diesel(sql_type = Bool)]
    pub is_stream: bool,
    #[diesel(sql_type = Timestamptz)]
    pub start_time: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub end_time: DateTime<Utc>,
    #[diesel(sql_type = Double)]
    pub pause_duration_s: f64,
    #[diesel(sql_type = Nullable<Double>)]
    pub media_duration_s: Option<f64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub media_title: Option<String>,
    #[diesel(sql_type = Jsonb)]
    pub metadata: serde_json::Value,
    #[diesel(sql_type = Jsonb)]
    pub actions: serde_json::Value,
    #[diesel(sql_type = Nullable<Text>)]
    pub end_reason: Option<String>,
    #[diesel(sql_type = Bool)]
    pub listened: bool,
    #[diesel(sql_type = Bool)]
    pub scrobbled: bool,
    #[diesel(sql_type = Text)]
    pub source: String,
    #[diesel(sql_type = Text)]
    pub instance: String,
}

/// Filters of the plays list.
#[derive(Debug, Clone, Default)]
pub struct PlayFilter {
    pub item: Option<String>,
    pub time_from: Option<DateTime<Utc>>,
    pub time_until: Option<DateTime<Utc>>,
    pub listened: Option<bool>,
    pub skipped: Option<bool>,
    pub instance: Option<String>,
}

const PLAY_WHERE: &str = "WHERE ($1::text IS NULL OR p.path = $1 OR p.item_id::text = $1) \
     AND ($2::timestamptz IS NULL OR p.start_time >= $2) AND ($3::timestamptz IS NULL OR p.start_time < $3) \
     AND ($4::bool IS NULL OR p.listened = $4) AND ($5::bool IS NULL OR p.scrobbled <> $5) \
     AND ($6::text IS NULL OR p.instance = $6)";

/// How many plays match.
pub fn count_plays(conn: &mut PgConnection, f: &PlayFilter) -> QueryResult<i64> {
    let n: Id = diesel::sql_query(format!(
        "SELECT count(*) AS id FROM mpv_play p {PLAY_WHERE}"
    ))
    .bind::<Nullable<Text>, _>(f.item.as_deref())
    .bind::<Nullable<Timestamptz>, _>(f.time_from)
    .bind::<Nullable<Timestamptz>, _>(f.time_until)
    .bind::<Nullable<Bool>, _>(f.listened)
    .bind::<Nullable<Bool>, _>(f.skipped)
    .bind::<Nullable<Text>, _>(f.instance.as_deref())
    .get_result(conn)?;
    Ok(n.id)
}

/// One keyset page of plays by (start_time, id).
pub fn play_page(
    conn: &mut PgConnection,
    f: &PlayFilter,
    key: Option<crate::domain::Key>,
    direction: crate::domain::Direction,
    limit: i64,
) -> QueryResult<Vec<PlayRow>> {
    let super::keyset::Walk { op, order, .. } = super::keyset::walk(direction, false);
    let rows: Vec<PlayRow> = diesel::sql_query(format!(
        "SELECT p.id, p.item_id, p.path, p.is_stream, p.start_time, p.end_time, p.pause_duration_s, p.media_duration_s, \
         p.media_title, p.metadata, p.actions, p.end_reason, p.listened, p.scrobbled, p.source, p.instance \
         FROM mpv_play p {PLAY_WHERE} AND ($7::timestamptz IS NULL OR (p.start_time, p.id) {op} ($7, $8)) \
         ORDER BY p.start_time {order}, p.id {order} LIMIT $9"
    ))
    .bind::<Nullable<Text>, _>(f.item.as_deref())
    .bind::<Nullable<Timestamptz>, _>(f.time_from)
    .bind::<Nullable<Timestamptz>, _>(f.time_until)
    .bind::<Nullable<Bool>, _>(f.listened)
    .bind::<Nullable<Bool>, _>(f.skipped)
    .bind::<Nullable<Text>, _>(f.instance.as_deref())
    .bind::<Nullable<Timestamptz>, _>(key.map(|k| k.time))
    .bind::<BigInt, _>(key.map(|k| k.id).unwrap_or(0))
    .bind::<BigInt, _>(limit)
    .load(conn)?;
    Ok(super::keyset::in_list_order(rows, direction))
}
