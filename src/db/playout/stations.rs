//! Queries on `station`: the stations airlog logs, and how each is monitored.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text};
use serde::Serialize;

use crate::domain::playout::Streamer;

/// A station as stored.
#[derive(Debug, Clone, QueryableByName, Serialize, PartialEq, utoipa::ToSchema)]
pub struct StationRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub time_zone: String,
    #[diesel(sql_type = Text)]
    #[schema(value_type = String)]
    pub streamer: Streamer,
    #[diesel(sql_type = Text)]
    pub endpoint: String,
    #[diesel(sql_type = Text)]
    pub queue_id: String,
    #[diesel(sql_type = Text)]
    pub output_id: String,
    #[diesel(sql_type = Text)]
    pub playlist_dir: String,
    #[diesel(sql_type = Integer)]
    pub poll_ms: i32,
    #[diesel(sql_type = Integer)]
    pub cancel_timeout_s: i32,
}

const STATION_COLUMNS: &str =
    "id, name, time_zone, streamer, endpoint, queue_id, output_id, playlist_dir, poll_ms, cancel_timeout_s";

/// Every station, by name.
pub fn stations(conn: &mut PgConnection) -> QueryResult<Vec<StationRow>> {
    diesel::sql_query(format!(
        "SELECT {STATION_COLUMNS} FROM station ORDER BY name"
    ))
    .load(conn)
}

/// One station by name.
pub fn station(conn: &mut PgConnection, name: &str) -> QueryResult<Option<StationRow>> {
    diesel::sql_query(format!(
        "SELECT {STATION_COLUMNS} FROM station WHERE name = $1"
    ))
    .bind::<Text, _>(name)
    .get_result(conn)
    .optional()
}

/// Creates a station, or updates every field of the one with that name.
pub fn upsert_station(conn: &mut PgConnection, s: &StationRow) -> QueryResult<StationRow> {
    diesel::sql_query(format!(
        "INSERT INTO station (name, time_zone, streamer, endpoint, queue_id, output_id, playlist_dir, poll_ms, cancel_timeout_s) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (name) DO UPDATE SET time_zone = excluded.time_zone, streamer = excluded.streamer, \
         endpoint = excluded.endpoint, queue_id = excluded.queue_id, output_id = excluded.output_id, \
         playlist_dir = excluded.playlist_dir, poll_ms = excluded.poll_ms, \
         cancel_timeout_s = excluded.cancel_timeout_s, updated_at = now() \
         RETURNING {STATION_COLUMNS}"
    ))
    .bind::<Text, _>(&s.name)
    .bind::<Text, _>(&s.time_zone)
    .bind::<Text, _>(&s.streamer)
    .bind::<Text, _>(&s.endpoint)
    .bind::<Text, _>(&s.queue_id)
    .bind::<Text, _>(&s.output_id)
    .bind::<Text, _>(&s.playlist_dir)
    .bind::<Integer, _>(s.poll_ms)
    .bind::<Integer, _>(s.cancel_timeout_s)
    .get_result(conn)
}
