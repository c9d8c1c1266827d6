//! Queries for audience figures: a station's streams and dayparts, and the listening its
//! streams and players recorded over a period.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bytea, Nullable, SmallInt, Text, Timestamptz};

use crate::audience::period::Span;
use crate::audience::rollup::{bytes, Block, Excluded, Kind};
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

/// Where a station's rollups stand (see the `audience_rollup_state` table).
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct RollupState {
    #[diesel(sql_type = BigInt)]
    pub station_id: i64,
    #[diesel(sql_type = Text)]
    pub rules: String,
    #[diesel(sql_type = BigInt)]
    pub stream_seen: i64,
    #[diesel(sql_type = BigInt)]
    pub stream_seen_prev: i64,
    #[diesel(sql_type = BigInt)]
    pub stream_seen_count: i64,
    #[diesel(sql_type = BigInt)]
    pub dirty_seen: i64,
    #[diesel(sql_type = BigInt)]
    pub dirty_seen_prev: i64,
    #[diesel(sql_type = Timestamptz)]
    pub as_of: DateTime<Utc>,
    /// The highest as-run log id whose item audience is in.
    #[diesel(sql_type = BigInt)]
    pub log_seen: i64,
}

pub fn rollup_state(conn: &mut PgConnection, station_id: i64) -> QueryResult<Option<RollupState>> {
    diesel::sql_query("SELECT * FROM audience_rollup_state WHERE station_id = $1")
        .bind::<BigInt, _>(station_id)
        .get_result(conn)
        .optional()
}

pub fn save_rollup_state(conn: &mut PgConnection, s: &RollupState) -> QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO audience_rollup_state AS s (station_id, rules, stream_seen, stream_seen_prev, \
         stream_seen_count, dirty_seen, dirty_seen_prev, as_of, log_seen) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (station_id) DO UPDATE SET rules = excluded.rules, \
         stream_seen = excluded.stream_seen, stream_seen_prev = excluded.stream_seen_prev, \
         stream_seen_count = excluded.stream_seen_count, dirty_seen = excluded.dirty_seen, \
         dirty_seen_prev = excluded.dirty_seen_prev, as_of = excluded.as_of, \
         log_seen = excluded.log_seen",
    )
    .bind::<BigInt, _>(s.station_id)
    .bind::<Text, _>(&s.rules)
    .bind::<BigInt, _>(s.stream_seen)
    .bind::<BigInt, _>(s.stream_seen_prev)
    .bind::<BigInt, _>(s.stream_seen_count)
    .bind::<BigInt, _>(s.dirty_seen)
    .bind::<BigInt, _>(s.dirty_seen_prev)
    .bind::<Timestamptz, _>(s.as_of)
    .bind::<BigInt, _>(s.log_seen)
    .execute(conn)
    .map(|_| ())
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = Nullable<BigInt>)]
    n: Option<i64>,
}

/// How many stream events with an id in `(after, upto]` are visible.
pub fn stream_events_between(conn: &mut PgConnection, after: i64, upto: i64) -> QueryResult<i64> {
    let row: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM stats_stream_event WHERE id > $1 AND id <= $2",
    )
    .bind::<BigInt, _>(after)
    .bind::<BigInt, _>(upto)
    .get_result(conn)?;
    Ok(row.n.unwrap_or(0))
}

/// The highest stream event id and audience_dirty id committed so far.
pub fn high_water(conn: &mut PgConnection) -> QueryResult<(i64, i64)> {
    let one = |conn: &mut PgConnection, sql: &str| -> QueryResult<i64> {
        Ok(diesel::sql_query(sql)
            .get_result::<Count>(conn)?
            .n
            .unwrap_or(0))
    };
    Ok((
        one(conn, "SELECT max(id) AS n FROM stats_stream_event")?,
        one(conn, "SELECT max(id) AS n FROM audience_dirty")?,
    ))
}

#[derive(QueryableByName)]
struct DayRow {
    #[diesel(sql_type = diesel::sql_types::Date)]
    day: chrono::NaiveDate,
}

/// Local days (in `tz`) that stream events with an id above `after` overlap.
pub fn stream_event_days(
    conn: &mut PgConnection,
    after: i64,
    tz: &str,
) -> QueryResult<std::collections::BTreeSet<chrono::NaiveDate>> {
    #[derive(QueryableByName)]
    struct Days {
        #[diesel(sql_type = diesel::sql_types::Date)]
        first_day: chrono::NaiveDate,
        #[diesel(sql_type = diesel::sql_types::Date)]
        last_day: chrono::NaiveDate,
    }
    let rows: Vec<Days> = diesel::sql_query(include_str!("../../sql/audience_stream_days.sql"))
        .bind::<BigInt, _>(after)
        .bind::<Text, _>(tz)
        .load(conn)?;
    let mut out = std::collections::BTreeSet::new();
    for r in rows {
        out.extend(r.first_day.iter_days().take_while(|d| *d <= r.last_day));
    }
    Ok(out)
}

#[derive(QueryableByName)]
struct RangeRow {
    #[diesel(sql_type = Timestamptz)]
    lo: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    hi: DateTime<Utc>,
}

/// Time ranges of player events changed since the audience_dirty id `after`.
pub fn player_changes(conn: &mut PgConnection, after: i64) -> QueryResult<Vec<Span>> {
    let rows: Vec<RangeRow> =
        diesel::sql_query("SELECT lo, hi FROM audience_dirty WHERE id > $1 ORDER BY id")
            .bind::<BigInt, _>(after)
            .load(conn)?;
    Ok(rows.into_iter().map(|r| Span::new(r.lo, r.hi)).collect())
}

/// Forgets player changes every station's rollups have taken in.
pub fn trim_player_changes(conn: &mut PgConnection) -> QueryResult<usize> {
    diesel::sql_query(
        "DELETE FROM audience_dirty WHERE id <= \
         (SELECT coalesce(min(dirty_seen_prev), 0) FROM audience_rollup_state)",
    )
    .execute(conn)
}

/// Numbers listener keys in the dictionary (adding the new ones).
pub fn listener_ids(
    conn: &mut PgConnection,
    keys: &[String],
) -> QueryResult<std::collections::HashMap<String, u32>> {
    #[derive(QueryableByName)]
    struct IdRow {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        id: i32,
        #[diesel(sql_type = Text)]
        key: String,
    }
    let mut sorted = keys.to_vec();
    sorted.sort();
    sorted.dedup();
    let mut out = std::collections::HashMap::with_capacity(sorted.len());
    for chunk in sorted.chunks(10_000) {
        // Only the keys not there yet: an INSERT that meets a conflict still takes a number
        // from the sequence, and numbers must stay dense (listener sets are bitsets over
        // them). Sorted, so two jobs adding the same keys lock them in the same order.
        diesel::sql_query(
            "INSERT INTO audience_listener (key) SELECT k FROM unnest($1::text[]) AS k \
             WHERE NOT EXISTS (SELECT 1 FROM audience_listener l WHERE l.key = k) \
             ORDER BY k ON CONFLICT (key) DO NOTHING",
        )
        .bind::<diesel::sql_types::Array<Text>, _>(chunk)
        .execute(conn)?;
        let rows: Vec<IdRow> =
            diesel::sql_query("SELECT id, key FROM audience_listener WHERE key = ANY($1)")
                .bind::<diesel::sql_types::Array<Text>, _>(chunk)
                .load(conn)?;
        out.extend(rows.into_iter().map(|r| (r.key, r.id as u32)));
    }
    Ok(out)
}

/// A stored block and its group.
#[derive(QueryableByName)]
struct BlockRow {
    #[diesel(sql_type = SmallInt)]
    kind: i16,
    #[diesel(sql_type = Timestamptz)]
    start_at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    grp: String,
    #[diesel(sql_type = Timestamptz)]
    end_at: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    listening_us: i64,
    #[diesel(sql_type = BigInt)]
    aqh_persons: i64,
    #[diesel(sql_type = BigInt)]
    sessions: i64,
    #[diesel(sql_type = BigInt)]
    peak: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    peak_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = BigInt)]
    cume: i64,
    #[diesel(sql_type = Bytea)]
    qualified: Vec<u8>,
    #[diesel(sql_type = Bytea)]
    partial: Vec<u8>,
    #[diesel(sql_type = BigInt)]
    excluded_robot: i64,
    #[diesel(sql_type = BigInt)]
    excluded_relay: i64,
    #[diesel(sql_type = BigInt)]
    excluded_too_short: i64,
}

/// A block as stored: its size, group and figures.
#[derive(Debug, Clone)]
pub struct StoredBlock {
    pub kind: Kind,
    pub group: String,
    pub block: Block,
}

fn kind_of(code: i16) -> Option<Kind> {
    match code {
        0 => Some(Kind::QuarterHour),
        1 => Some(Kind::Day),
        2 => Some(Kind::Month),
        3 => Some(Kind::Week),
        _ => None,
    }
}

fn corrupt(what: &str) -> diesel::result::Error {
    diesel::result::Error::DeserializationError(format!("audience_block: {what}").into())
}

/// Blocks of a station of one kind starting at `starts`, for the groups named or (with
/// `prefix`) every group starting with it; with their listener sets when `sets`.
pub fn blocks(
    conn: &mut PgConnection,
    station_id: i64,
    kind: Kind,
    starts: &[DateTime<Utc>],
    groups: &[&str],
    prefix: Option<&str>,
    sets: bool,
) -> QueryResult<Vec<StoredBlock>> {
    let (Some(first), Some(last)) = (starts.iter().min(), starts.iter().max()) else {
        return Ok(Vec::new());
    };
    let rows: Vec<BlockRow> = diesel::sql_query(include_str!("../../sql/audience_blocks.sql"))
        .bind::<BigInt, _>(station_id)
        .bind::<SmallInt, _>(kind.code())
        .bind::<Array<Timestamptz>, _>(starts)
        .bind::<Array<Text>, _>(groups)
        .bind::<Nullable<Text>, _>(prefix)
        .bind::<Timestamptz, _>(first)
        .bind::<Timestamptz, _>(last)
        .bind::<diesel::sql_types::Bool, _>(sets)
        .load(conn)?;
    rows.into_iter()
        .map(|r| {
            Ok(StoredBlock {
                kind: kind_of(r.kind).ok_or_else(|| corrupt("unknown kind"))?,
                group: r.grp,
                block: Block {
                    span: Span::new(r.start_at, r.end_at),
                    listening_us: r.listening_us,
                    aqh_persons: r.aqh_persons,
                    sessions: r.sessions,
                    peak: r.peak,
                    peak_at: r.peak_at,
                    cume: r.cume,
                    qualified: bytes::read_ids(&r.qualified)
                        .ok_or_else(|| corrupt("unreadable listener set"))?,
                    partial: bytes::read_partial(&r.partial)
                        .ok_or_else(|| corrupt("unreadable listener set"))?,
                    excluded: Excluded {
                        robot: r.excluded_robot,
                        relay: r.excluded_relay,
                        too_short: r.excluded_too_short,
                    },
                },
            })
        })
        .collect()
}

/// The day blocks of a station inside `span`, every group.
pub fn day_blocks_in(
    conn: &mut PgConnection,
    station_id: i64,
    span: Span,
) -> QueryResult<Vec<StoredBlock>> {
    #[derive(QueryableByName)]
    struct Start {
        #[diesel(sql_type = Timestamptz)]
        start_at: DateTime<Utc>,
    }
    let starts: Vec<Start> = diesel::sql_query(
        "SELECT DISTINCT start_at FROM audience_block \
         WHERE station_id = $1 AND kind = 1 AND start_at >= $2 AND start_at < $3",
    )
    .bind::<BigInt, _>(station_id)
    .bind::<Timestamptz, _>(span.start)
    .bind::<Timestamptz, _>(span.end)
    .load(conn)?;
    let starts: Vec<DateTime<Utc>> = starts.into_iter().map(|s| s.start_at).collect();
    blocks(conn, station_id, Kind::Day, &starts, &[], Some(""), true)
}

/// The blocks of a station of one kind starting at `start`, every group.
pub fn blocks_at(
    conn: &mut PgConnection,
    station_id: i64,
    kind: Kind,
    start: DateTime<Utc>,
) -> QueryResult<Vec<StoredBlock>> {
    blocks(conn, station_id, kind, &[start], &[], Some(""), true)
}

/// Whether a station has a stored block of this kind starting at `start`.
pub fn has_blocks(
    conn: &mut PgConnection,
    station_id: i64,
    kind: Kind,
    start: DateTime<Utc>,
) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct Exists {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        found: bool,
    }
    let row: Exists = diesel::sql_query(
        "SELECT EXISTS (SELECT 1 FROM audience_block \
         WHERE station_id = $1 AND kind = $2 AND start_at = $3) AS found",
    )
    .bind::<BigInt, _>(station_id)
    .bind::<SmallInt, _>(kind.code())
    .bind::<Timestamptz, _>(start)
    .get_result(conn)?;
    Ok(row.found)
}

/// Replaces a station's blocks of the kinds given inside `span` by `new` (the empty ones are
/// not stored).
pub fn replace_blocks(
    conn: &mut PgConnection,
    station_id: i64,
    kinds: &[Kind],
    span: Span,
    new: &[StoredBlock],
) -> QueryResult<()> {
    let codes: Vec<i16> = kinds.iter().map(|k| k.code()).collect();
    diesel::sql_query(
        "DELETE FROM audience_block WHERE station_id = $1 AND kind = ANY($2) \
         AND start_at >= $3 AND start_at < $4",
    )
    .bind::<BigInt, _>(station_id)
    .bind::<Array<SmallInt>, _>(&codes)
    .bind::<Timestamptz, _>(span.start)
    .bind::<Timestamptz, _>(span.end)
    .execute(conn)?;
    let new: Vec<&StoredBlock> = new.iter().filter(|b| !b.block.is_empty()).collect();
    for chunk in new.chunks(2_000) {
        let col = |f: &dyn Fn(&Block) -> i64| chunk.iter().map(|b| f(&b.block)).collect::<Vec<_>>();
        diesel::sql_query(include_str!("../../sql/audience_block_insert.sql"))
            .bind::<BigInt, _>(station_id)
            .bind::<Array<SmallInt>, _>(chunk.iter().map(|b| b.kind.code()).collect::<Vec<_>>())
            .bind::<Array<Timestamptz>, _>(
                chunk.iter().map(|b| b.block.span.start).collect::<Vec<_>>(),
            )
            .bind::<Array<Text>, _>(chunk.iter().map(|b| b.group.as_str()).collect::<Vec<_>>())
            .bind::<Array<Timestamptz>, _>(
                chunk.iter().map(|b| b.block.span.end).collect::<Vec<_>>(),
            )
            .bind::<Array<BigInt>, _>(col(&|b| b.listening_us))
            .bind::<Array<BigInt>, _>(col(&|b| b.aqh_persons))
            .bind::<Array<BigInt>, _>(col(&|b| b.sessions))
            .bind::<Array<BigInt>, _>(col(&|b| b.peak))
            .bind::<Array<Nullable<Timestamptz>>, _>(
                chunk.iter().map(|b| b.block.peak_at).collect::<Vec<_>>(),
            )
            .bind::<Array<Bytea>, _>(
                chunk
                    .iter()
                    .map(|b| bytes::ids(&b.block.qualified))
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Bytea>, _>(
                chunk
                    .iter()
                    .map(|b| bytes::partial(&b.block.partial))
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<BigInt>, _>(col(&|b| b.excluded.robot))
            .bind::<Array<BigInt>, _>(col(&|b| b.excluded.relay))
            .bind::<Array<BigInt>, _>(col(&|b| b.excluded.too_short))
            .bind::<Array<BigInt>, _>(col(&|b| b.cume))
            .execute(conn)?;
    }
    Ok(())
}

/// Forgets the blocks of a station from `from` on (before a rebuild of those days).
pub fn clear_blocks(
    conn: &mut PgConnection,
    station_id: i64,
    from: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::sql_query("DELETE FROM audience_block WHERE station_id = $1 AND end_at > $2")
        .bind::<BigInt, _>(station_id)
        .bind::<Timestamptz, _>(from)
        .execute(conn)
}

/// Local days (in `tz`) around `playing` player events, widened by `context`.
pub fn player_event_days(
    conn: &mut PgConnection,
    tz: &str,
    context: chrono::Duration,
) -> QueryResult<Vec<chrono::NaiveDate>> {
    let rows: Vec<DayRow> = diesel::sql_query(include_str!("../../sql/audience_player_days.sql"))
        .bind::<Text, _>(tz)
        .bind::<diesel::sql_types::Interval, _>(diesel::data_types::PgInterval::from_microseconds(
            context.num_microseconds().unwrap_or(0),
        ))
        .load(conn)?;
    Ok(rows.into_iter().map(|r| r.day).collect())
}

/// Whether listening overlapping `period` arrived after the rollups in `state` were made.
pub fn pending_since(
    conn: &mut PgConnection,
    state: &RollupState,
    period: Span,
    context: chrono::Duration,
) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct Pending {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        pending: bool,
    }
    let row: Pending = diesel::sql_query(include_str!("../../sql/audience_pending.sql"))
        .bind::<BigInt, _>(state.stream_seen)
        .bind::<BigInt, _>(state.dirty_seen)
        .bind::<Timestamptz, _>(period.start)
        .bind::<Timestamptz, _>(period.end)
        .bind::<diesel::sql_types::Interval, _>(diesel::data_types::PgInterval::from_microseconds(
            context.num_microseconds().unwrap_or(0),
        ))
        .get_result(conn)?;
    Ok(row.pending)
}

/// Removes the stream events that ended before `cutoff` and before every station's rollups
/// were last brought up to date (never one the rollups have not taken in); returns how many.
pub fn remove_stream_events_before(
    conn: &mut PgConnection,
    cutoff: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::sql_query(
        "DELETE FROM stats_stream_event WHERE time_end < $1 AND time_end < \
         coalesce((SELECT min(as_of) - interval '1 day' FROM audience_rollup_state), '-infinity')",
    )
    .bind::<Timestamptz, _>(cutoff)
    .execute(conn)
}
