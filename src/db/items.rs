//! Queries on media items as people rate them (`item_rating`) and their history (plays and
//! ratings together). Items themselves are found or created by `db::mpv::item_for`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Jsonb, Nullable, SmallInt, Text, Timestamptz};
use serde::Serialize;

use crate::db::Id;

/// What plays now, as a rating of "the current item" needs it.
#[derive(Debug, QueryableByName)]
pub struct Playing {
    #[diesel(sql_type = Text)]
    pub path: String,
    /// The mpv instance that plays it; empty for a station's output.
    #[diesel(sql_type = Text)]
    pub instance: String,
    /// Seconds since it started.
    #[diesel(sql_type = Double)]
    pub position_s: f64,
}

/// The latest sound the station's as-run log has on air.
pub fn playing_on_station(conn: &mut PgConnection, station: &str) -> QueryResult<Option<Playing>> {
    diesel::sql_query(
        "SELECT l.path, '' AS instance, extract(epoch FROM now() - l.date)::float8 AS position_s \
         FROM onair_log l JOIN station s ON s.id = l.station_id WHERE s.name = $1 AND l.type = 'on_air' \
         AND l.track_id IS NULL AND l.path IS NOT NULL ORDER BY l.date DESC LIMIT 1",
    )
    .bind::<Text, _>(station)
    .get_result(conn)
    .optional()
}

/// The latest path an mpv instance (or any, without `instance`) reported.
pub fn playing_on_mpv(
    conn: &mut PgConnection,
    instance: Option<&str>,
) -> QueryResult<Option<Playing>> {
    diesel::sql_query(
        "SELECT data #>> '{}' AS path, instance, extract(epoch FROM now() - time)::float8 AS position_s \
         FROM mpv_event WHERE event = 'path' AND ($1::text IS NULL OR instance = $1) ORDER BY time DESC, id DESC LIMIT 1",
    )
    .bind::<Nullable<Text>, _>(instance)
    .get_result(conn)
    .optional()
}

/// A rating or tag to store.
pub struct NewRating<'a> {
    pub item_id: i64,
    pub rating: Option<i16>,
    pub tag: Option<&'a str>,
    pub position_s: Option<f64>,
    pub instance: &'a str,
    pub token_id: i64,
}

/// Stores a rating and returns its id; None when the item does not exist.
pub fn insert_rating(conn: &mut PgConnection, r: &NewRating<'_>) -> QueryResult<Option<i64>> {
    let inserted = diesel::sql_query(
        "INSERT INTO item_rating (item_id, rating, tag, position_s, instance, token_id) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind::<BigInt, _>(r.item_id)
    .bind::<Nullable<SmallInt>, _>(r.rating)
    .bind::<Nullable<Text>, _>(r.tag)
    .bind::<Nullable<Double>, _>(r.position_s)
    .bind::<Text, _>(r.instance)
    .bind::<BigInt, _>(r.token_id)
    .get_result::<Id>(conn);
    match inserted {
        Ok(i) => Ok(Some(i.id)),
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::ForeignKeyViolation,
            _,
        )) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes the latest rating made with a token; how many were removed (0 or 1).
pub fn delete_last_rating(conn: &mut PgConnection, token_id: i64) -> QueryResult<usize> {
    diesel::sql_query(
        "DELETE FROM item_rating WHERE id = (SELECT id FROM item_rating WHERE token_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1)",
    )
    .bind::<BigInt, _>(token_id)
    .execute(conn)
}

/// A catalogued item.
#[derive(Debug, QueryableByName, Serialize, utoipa::ToSchema)]
#[schema(as = Item)]
pub struct ItemRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub path: String,
    #[diesel(sql_type = Text)]
    pub title: String,
}

/// One item.
pub fn item(conn: &mut PgConnection, id: i64) -> QueryResult<Option<ItemRow>> {
    diesel::sql_query("SELECT id, path, title FROM media_item WHERE id = $1")
        .bind::<BigInt, _>(id)
        .get_result(conn)
        .optional()
}

/// One entry of an item's history.
#[derive(Debug, QueryableByName, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Entry)]
pub struct HistoryEntry {
    /// `play`, `rate` or `tag`.
    #[diesel(sql_type = Text)]
    pub r#type: String,
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Timestamptz)]
    pub at: DateTime<Utc>,
    /// What happened: a play's end and listening, or the rating and tag.
    #[diesel(sql_type = Jsonb)]
    pub detail: serde_json::Value,
}

/// An item's plays, ratings and tags (`kind`: play, rate, tag or all), newest first.
pub fn history(
    conn: &mut PgConnection,
    item_id: i64,
    kind: &str,
    limit: i64,
) -> QueryResult<Vec<HistoryEntry>> {
    diesel::sql_query(
        "SELECT * FROM ( \
           SELECT 'play' AS type, id, start_time AS at, jsonb_build_object('path', path, 'endTime', end_time, \
             'pauseDurationS', pause_duration_s, 'listened', listened, 'scrobbled', scrobbled, 'endReason', end_reason) AS detail \
           FROM mpv_play WHERE item_id = $1 AND $2 IN ('play', 'all') \
           UNION ALL \
           SELECT CASE WHEN rating IS NOT NULL THEN 'rate' ELSE 'tag' END, id, created_at, \
             jsonb_build_object('rating', rating, 'tag', tag, 'positionS', position_s) \
           FROM item_rating WHERE item_id = $1 AND ($2 = 'all' OR ($2 = 'rate' AND rating IS NOT NULL) OR ($2 = 'tag' AND tag IS NOT NULL)) \
         ) h ORDER BY at DESC, id DESC LIMIT $3",
    )
    .bind::<BigInt, _>(item_id)
    .bind::<Text, _>(kind)
    .bind::<BigInt, _>(limit)
    .load(conn)
}
