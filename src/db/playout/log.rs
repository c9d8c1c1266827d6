//! Queries on the as-run log (`onair_log`): what went on air, as observed or decided.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Double, Jsonb, Nullable, Text, Timestamptz};
use serde::Serialize;

use crate::db::keyset::{self, Walk};
use crate::db::Id;
use crate::domain::playout::LogType;
use crate::domain::{Direction, Key};

/// An entry of the as-run log.
#[derive(Debug, Clone, QueryableByName, Serialize, utoipa::ToSchema)]
pub struct LogRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub station: String,
    #[diesel(sql_type = Text)]
    #[schema(value_type = String)]
    pub r#type: LogType,
    #[diesel(sql_type = Timestamptz)]
    pub date: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    pub source: String,
    #[diesel(sql_type = Text)]
    pub comment: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub path: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub sound_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub track_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub diffusion_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub parent_id: Option<i64>,
    #[diesel(sql_type = Jsonb)]
    pub tags: serde_json::Value,
    #[diesel(sql_type = Nullable<Text>)]
    pub date_from: Option<String>,
    /// For a sound resumed after an interruption: the entry of the play it resumes.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub resume_of: Option<i64>,
    /// Seconds into the sound at `date` (0 unless resumed).
    #[diesel(sql_type = Double)]
    pub position_s: f64,
}

/// The columns of a `LogRow`, from `onair_log l JOIN station st`.
const LOG_SELECT: &str =
    "SELECT l.id, st.name AS station, l.type, l.date, l.source, l.comment, l.path, \
     l.sound_id, l.track_id, l.diffusion_id, l.parent_id, l.tags, l.date_from, l.resume_of, l.position_s \
     FROM onair_log l JOIN station st ON st.id = l.station_id";

/// A log entry to write.
#[derive(Debug, Clone, Default)]
pub struct NewLog<'a> {
    pub station_id: i64,
    pub r#type: LogType,
    pub date: DateTime<Utc>,
    pub source: &'a str,
    pub comment: &'a str,
    pub path: Option<&'a str>,
    pub sound_id: Option<i64>,
    pub track_id: Option<i64>,
    pub diffusion_id: Option<i64>,
    pub parent_id: Option<i64>,
    pub tags: serde_json::Value,
    pub date_from: Option<&'a str>,
    pub request_key: Option<&'a str>,
    pub resume_of: Option<i64>,
    pub position_s: f64,
    pub push_id: Option<i64>,
}

/// Writes a log entry unless the same one exists (see the unique indexes); returns the new
/// entry's id, or None when it was already there. The webhook deliveries of the entry are
/// written by the same statement (the outbox, see the SQL).
pub fn insert_log(conn: &mut PgConnection, l: &NewLog<'_>) -> QueryResult<Option<i64>> {
    Ok(
        diesel::sql_query(include_str!("../../../sql/onair_log_insert.sql"))
            .bind::<BigInt, _>(l.station_id)
            .bind::<Text, _>(l.r#type)
            .bind::<Timestamptz, _>(l.date)
            .bind::<Text, _>(l.source)
            .bind::<Text, _>(l.comment)
            .bind::<Nullable<Text>, _>(l.path)
            .bind::<Nullable<BigInt>, _>(l.sound_id)
            .bind::<Nullable<BigInt>, _>(l.track_id)
            .bind::<Nullable<BigInt>, _>(l.diffusion_id)
            .bind::<Nullable<BigInt>, _>(l.parent_id)
            .bind::<Jsonb, _>(&l.tags)
            .bind::<Nullable<Text>, _>(l.date_from)
            .bind::<Nullable<Text>, _>(l.request_key)
            .bind::<Nullable<BigInt>, _>(l.resume_of)
            .bind::<Double, _>(l.position_s)
            .bind::<Nullable<BigInt>, _>(l.push_id)
            .get_result::<Id>(conn)
            .optional()?
            .map(|i| i.id),
    )
}

/// The ON_AIR entry of a sound play, by its natural key.
pub fn sound_log(
    conn: &mut PgConnection,
    station_id: i64,
    source: &str,
    path: &str,
    date: DateTime<Utc>,
) -> QueryResult<Option<LogRow>> {
    diesel::sql_query(format!(
        "{LOG_SELECT} WHERE l.station_id = $1 AND l.type = 'on_air' AND l.track_id IS NULL \
         AND l.source = $2 AND l.path = $3 AND l.date = $4"
    ))
    .bind::<BigInt, _>(station_id)
    .bind::<Text, _>(source)
    .bind::<Text, _>(path)
    .bind::<Timestamptz, _>(date)
    .get_result(conn)
    .optional()
}

/// The entry starting the play of a Liquidsoap request, by its request key.
pub fn play_by_request(
    conn: &mut PgConnection,
    station_id: i64,
    request_key: &str,
) -> QueryResult<Option<LogRow>> {
    diesel::sql_query(format!(
        "{LOG_SELECT} WHERE l.station_id = $1 AND l.request_key = $2 AND l.type = 'on_air' \
         AND l.track_id IS NULL AND l.resume_of IS NULL"
    ))
    .bind::<BigInt, _>(station_id)
    .bind::<Text, _>(request_key)
    .get_result(conn)
    .optional()
}

/// How far into its sound a play had got at `at`: the position of its last stretch (start or
/// resume) before `at`, plus the time until the next sound went on air (or `at`).
pub fn play_position_at(
    conn: &mut PgConnection,
    play_id: i64,
    at: DateTime<Utc>,
) -> QueryResult<f64> {
    #[derive(QueryableByName)]
    struct P {
        #[diesel(sql_type = Double)]
        position_s: f64,
    }
    Ok(diesel::sql_query(
        "WITH seg AS (SELECT station_id, date, position_s FROM onair_log \
                      WHERE (id = $1 OR resume_of = $1) AND date < $2 ORDER BY date DESC LIMIT 1), \
              stop AS (SELECT min(o.date) AS date FROM onair_log o, seg \
                       WHERE o.station_id = seg.station_id AND o.type = 'on_air' AND o.track_id IS NULL \
                       AND o.date > seg.date AND o.date <= $2 AND o.id <> $1 AND o.resume_of IS DISTINCT FROM $1) \
         SELECT (seg.position_s + extract(epoch FROM coalesce(stop.date, $2) - seg.date))::float8 AS position_s \
         FROM seg, stop",
    )
    .bind::<BigInt, _>(play_id)
    .bind::<Timestamptz, _>(at)
    .get_result::<P>(conn)
    .optional()?
    .map_or(0.0, |p| p.position_s))
}

/// Whether a resume of `play_id` is already logged near `date` (the same resume seen again).
pub fn resume_logged(
    conn: &mut PgConnection,
    play_id: i64,
    date: DateTime<Utc>,
) -> QueryResult<Option<i64>> {
    Ok(diesel::sql_query(
        "SELECT id FROM onair_log WHERE resume_of = $1 AND date BETWEEN $2 - interval '3 seconds' AND $2 + interval '3 seconds' LIMIT 1",
    )
    .bind::<BigInt, _>(play_id)
    .bind::<Timestamptz, _>(date)
    .get_result::<Id>(conn)
    .optional()?
    .map(|i| i.id))
}

/// One log entry by id.
pub fn log_entry(conn: &mut PgConnection, id: i64) -> QueryResult<LogRow> {
    diesel::sql_query(format!("{LOG_SELECT} WHERE l.id = $1"))
        .bind::<BigInt, _>(id)
        .get_result(conn)
}

/// Which entries of the as-run log a list shows; every field narrows it.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub station: Option<String>,
    /// date >= this.
    pub from: Option<DateTime<Utc>>,
    /// date < this.
    pub until: Option<DateTime<Utc>>,
    pub r#type: Option<LogType>,
    pub source: Option<String>,
    /// Only tracks of sounds (true), or only entries that are not tracks (false).
    pub tracks: Option<bool>,
}

const LOG_WHERE: &str =
    "WHERE ($1::text IS NULL OR st.name = $1) AND ($2::timestamptz IS NULL OR l.date >= $2) \
     AND ($3::timestamptz IS NULL OR l.date < $3) AND ($4::text IS NULL OR l.type = $4) \
     AND ($5::text IS NULL OR l.source = $5) AND ($6::bool IS NULL OR (l.track_id IS NOT NULL) = $6)";

/// How many entries match.
pub fn count_log(conn: &mut PgConnection, f: &LogFilter) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let n: N = diesel::sql_query(format!(
        "SELECT count(*) AS n FROM onair_log l JOIN station st ON st.id = l.station_id {LOG_WHERE}"
    ))
    .bind::<Nullable<Text>, _>(f.station.as_deref())
    .bind::<Nullable<Timestamptz>, _>(f.from)
    .bind::<Nullable<Timestamptz>, _>(f.until)
    .bind::<Nullable<Text>, _>(f.r#type)
    .bind::<Nullable<Text>, _>(f.source.as_deref())
    .bind::<Nullable<Bool>, _>(f.tracks)
    .get_result(conn)?;
    Ok(n.n)
}

/// One keyset page of the log, newest first (so "after" a key is older than it).
pub fn log_page(
    conn: &mut PgConnection,
    f: &LogFilter,
    key: Option<Key>,
    direction: Direction,
    limit: i64,
) -> QueryResult<Vec<LogRow>> {
    let Walk { op, order, .. } = keyset::walk(direction, true);
    let rows = diesel::sql_query(format!(
        "{LOG_SELECT} {LOG_WHERE} AND ($7::timestamptz IS NULL OR (l.date, l.id) {op} ($7, $8)) \
         ORDER BY l.date {order}, l.id {order} LIMIT $9"
    ))
    .bind::<Nullable<Text>, _>(f.station.as_deref())
    .bind::<Nullable<Timestamptz>, _>(f.from)
    .bind::<Nullable<Timestamptz>, _>(f.until)
    .bind::<Nullable<Text>, _>(f.r#type)
    .bind::<Nullable<Text>, _>(f.source.as_deref())
    .bind::<Nullable<Bool>, _>(f.tracks)
    .bind::<Nullable<Timestamptz>, _>(key.map(|k| k.time))
    .bind::<BigInt, _>(key.map(|k| k.id).unwrap_or(0))
    .bind::<BigInt, _>(limit)
    .load(conn)?;
    Ok(keyset::in_list_order(rows, direction))
}

/// What a station's output plays at `at`: its latest sound entry, a start or a resume.
pub fn latest_sound(
    conn: &mut PgConnection,
    station_id: i64,
    at: DateTime<Utc>,
) -> QueryResult<Option<LogRow>> {
    diesel::sql_query(format!(
        "{LOG_SELECT} WHERE l.station_id = $1 AND l.type = 'on_air' AND l.track_id IS NULL AND l.date <= $2 \
         ORDER BY l.date DESC, l.id DESC LIMIT 1"
    ))
    .bind::<BigInt, _>(station_id)
    .bind::<Timestamptz, _>(at)
    .get_result(conn)
    .optional()
}

/// The latest track logged under the play `play_id` by `at`.
pub fn latest_track(
    conn: &mut PgConnection,
    play_id: i64,
    at: DateTime<Utc>,
) -> QueryResult<Option<LogRow>> {
    diesel::sql_query(format!(
        "{LOG_SELECT} WHERE l.parent_id = $1 AND l.date <= $2 ORDER BY l.date DESC LIMIT 1"
    ))
    .bind::<BigInt, _>(play_id)
    .bind::<Timestamptz, _>(at)
    .get_result(conn)
    .optional()
}
