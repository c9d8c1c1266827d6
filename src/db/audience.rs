//! Queries for audience figures: a station's streams and dayparts, and the listening its
//! streams and players recorded over a period.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz};

use crate::audience::period::Span;
use crate::audience::{PlayerPlay, StreamKind, StreamSession};

/// One stream of a station: a kind and its mount, prefix or player source.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName, serde::Serialize, serde::Deserialize)]
pub struct StreamRow {
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Text)]
    pub pattern: String,
}

/// A named daypart of a station.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct DaypartRow {
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub spec: String,
}

/// The streams of a station, by kind and pattern.
pub fn streams(conn: &mut PgConnection, station_id: i64) -> QueryResult<Vec<StreamRow>> {
    diesel::sql_query(
        "SELECT kind, pattern FROM station_stream WHERE station_id = $1 ORDER BY kind, pattern",
    )
    .bind::<BigInt, _>(station_id)
    .load(conn)
}

/// Replaces the streams of a station. A stream another station has is refused by the unique
/// index (a unique violation).
pub fn set_streams(
    conn: &mut PgConnection,
    station_id: i64,
    streams: &[StreamRow],
) -> QueryResult<()> {
    let pairs = streams
        .iter()
        .map(|s| (s.kind.as_str(), s.pattern.as_str()));
    replace_pairs(conn, Pairs::Streams, station_id, pairs)
}

/// The two tables of (text, text) rows per station.
enum Pairs {
    Streams,
    Dayparts,
}

/// Replaces a station's rows of one of those tables in one transaction. The statements are
/// constants: only the values are bound.
fn replace_pairs<'a>(
    conn: &mut PgConnection,
    table: Pairs,
    station_id: i64,
    pairs: impl Iterator<Item = (&'a str, &'a str)>,
) -> QueryResult<()> {
    let (delete, insert) = match table {
        Pairs::Streams => (
            "DELETE FROM station_stream WHERE station_id = $1",
            "INSERT INTO station_stream (station_id, kind, pattern) VALUES ($1, $2, $3)",
        ),
        Pairs::Dayparts => (
            "DELETE FROM station_daypart WHERE station_id = $1",
            "INSERT INTO station_daypart (station_id, name, spec) VALUES ($1, $2, $3)",
        ),
    };
    conn.transaction(|conn| {
        diesel::sql_query(delete)
            .bind::<BigInt, _>(station_id)
            .execute(conn)?;
        for (a, b) in pairs {
            diesel::sql_query(insert)
                .bind::<BigInt, _>(station_id)
                .bind::<Text, _>(a)
                .bind::<Text, _>(b)
                .execute(conn)?;
        }
        Ok(())
    })
}

/// The dayparts of a station, by name.
pub fn dayparts(conn: &mut PgConnection, station_id: i64) -> QueryResult<Vec<DaypartRow>> {
    diesel::sql_query("SELECT name, spec FROM station_daypart WHERE station_id = $1 ORDER BY name")
        .bind::<BigInt, _>(station_id)
        .load(conn)
}

/// Replaces the dayparts of a station.
pub fn set_dayparts(
    conn: &mut PgConnection,
    station_id: i64,
    dayparts: &[DaypartRow],
) -> QueryResult<()> {
    let pairs = dayparts.iter().map(|d| (d.name.as_str(), d.spec.as_str()));
    replace_pairs(conn, Pairs::Dayparts, station_id, pairs)
}

#[derive(QueryableByName)]
struct StreamSessionRow {
    #[diesel(sql_type = Text)]
    ip: String,
    #[diesel(sql_type = Text)]
    user_agent: String,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    stream: String,
    #[diesel(sql_type = Text)]
    station: String,
    #[diesel(sql_type = Timestamptz)]
    time_start: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    time_end: DateTime<Utc>,
}

/// The stream sessions of a station's streams (every station's when `station_id` is None)
/// that overlap `period`.
pub fn stream_sessions(
    conn: &mut PgConnection,
    station_id: Option<i64>,
    period: Span,
) -> QueryResult<Vec<StreamSession>> {
    let rows: Vec<StreamSessionRow> =
        diesel::sql_query(include_str!("../../sql/audience_stream_sessions.sql"))
            .bind::<Nullable<BigInt>, _>(station_id)
            .bind::<Timestamptz, _>(period.start)
            .bind::<Timestamptz, _>(period.end)
            .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            Some(StreamSession {
                station: r.station,
                // The column is an inet: it always parses.
                ip: r.ip.parse().ok()?,
                user_agent: r.user_agent,
                kind: r.kind.parse::<StreamKind>().ok()?,
                stream: r.stream,
                span: Span::new(r.time_start, r.time_end),
            })
        })
        .collect())
}

#[derive(QueryableByName)]
struct PlayRow {
    #[diesel(sql_type = Text)]
    station: String,
    #[diesel(sql_type = Text)]
    user_identity: String,
    #[diesel(sql_type = Text)]
    device_key: String,
    #[diesel(sql_type = Nullable<Text>)]
    listener_key: Option<String>,
    #[diesel(sql_type = Text)]
    source: String,
    #[diesel(sql_type = Timestamptz)]
    time_start: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    time_end: DateTime<Utc>,
}

/// The closed `playing` stretches on a station's player sources (every station's when
/// `station_id` is None) that overlap `period`.
pub fn player_plays(
    conn: &mut PgConnection,
    station_id: Option<i64>,
    period: Span,
) -> QueryResult<Vec<PlayerPlay>> {
    let rows: Vec<PlayRow> = diesel::sql_query(include_str!("../../sql/audience_player_plays.sql"))
        .bind::<Nullable<BigInt>, _>(station_id)
        .bind::<Timestamptz, _>(period.start)
        .bind::<Timestamptz, _>(period.end)
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| PlayerPlay {
            station: r.station,
            user_identity: r.user_identity,
            device_key: r.device_key,
            listener_key: r.listener_key,
            source: r.source,
            span: Span::new(r.time_start, r.time_end),
        })
        .collect())
}
