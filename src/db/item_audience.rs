//! Queries for the audience of as-run items: when each item was on air, and its stored
//! audience (kept by the audience job, never removed by clean-ups of raw events).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Interval, Text, Timestamptz};

use crate::audience::items::{Item, ItemAudience};
use crate::audience::period::Span;

fn interval(d: chrono::Duration) -> diesel::data_types::PgInterval {
    diesel::data_types::PgInterval::from_microseconds(d.num_microseconds().unwrap_or(0))
}

#[derive(QueryableByName)]
struct SpanRow {
    #[diesel(sql_type = BigInt)]
    log_id: i64,
    #[diesel(sql_type = Timestamptz)]
    start_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    end_at: DateTime<Utc>,
}

/// The items of a station that went on air in `period`, with their ends (an item still on air
/// ends at `now`, at most `open_cap` after its start).
pub fn item_spans(
    conn: &mut PgConnection,
    station_id: i64,
    period: Span,
    now: DateTime<Utc>,
    open_cap: chrono::Duration,
) -> QueryResult<Vec<Item>> {
    let rows: Vec<SpanRow> = diesel::sql_query(include_str!("../../sql/item_spans.sql"))
        .bind::<BigInt, _>(station_id)
        .bind::<Timestamptz, _>(period.start)
        .bind::<Timestamptz, _>(period.end)
        .bind::<Timestamptz, _>(now)
        .bind::<Interval, _>(interval(open_cap))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| Item {
            log_id: r.log_id,
            span: Span::new(r.start_at, r.end_at),
        })
        .collect())
}

/// Replaces the stored audience of a station's items that went on air in `period`.
pub fn replace(
    conn: &mut PgConnection,
    station_id: i64,
    period: Span,
    items: &[ItemAudience],
    rules: &str,
) -> QueryResult<()> {
    diesel::sql_query(
        "DELETE FROM item_audience WHERE station_id = $1 AND start_at >= $2 AND start_at < $3",
    )
    .bind::<BigInt, _>(station_id)
    .bind::<Timestamptz, _>(period.start)
    .bind::<Timestamptz, _>(period.end)
    .execute(conn)?;
    for chunk in items.chunks(5_000) {
        diesel::sql_query(include_str!("../../sql/item_audience_insert.sql"))
            .bind::<BigInt, _>(station_id)
            .bind::<Array<BigInt>, _>(chunk.iter().map(|i| i.log_id).collect::<Vec<_>>())
            .bind::<Array<Timestamptz>, _>(chunk.iter().map(|i| i.span.start).collect::<Vec<_>>())
            .bind::<Array<Timestamptz>, _>(chunk.iter().map(|i| i.span.end).collect::<Vec<_>>())
            .bind::<Array<Integer>, _>(
                chunk
                    .iter()
                    .map(|i| i.listeners_at_start as i32)
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Integer>, _>(
                chunk
                    .iter()
                    .map(|i| i.performances as i32)
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<BigInt>, _>(chunk.iter().map(|i| i.listening_us).collect::<Vec<_>>())
            .bind::<Text, _>(rules)
            .execute(conn)?;
    }
    Ok(())
}

#[derive(QueryableByName)]
struct AudienceRow {
    #[diesel(sql_type = BigInt)]
    log_id: i64,
    #[diesel(sql_type = Timestamptz)]
    start_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    end_at: DateTime<Utc>,
    #[diesel(sql_type = Integer)]
    listeners_at_start: i32,
    #[diesel(sql_type = Integer)]
    performances: i32,
    #[diesel(sql_type = BigInt)]
    listening_us: i64,
}

impl From<AudienceRow> for ItemAudience {
    fn from(r: AudienceRow) -> ItemAudience {
        ItemAudience {
            log_id: r.log_id,
            span: Span::new(r.start_at, r.end_at),
            listeners_at_start: r.listeners_at_start as i64,
            performances: r.performances as i64,
            listening_us: r.listening_us,
        }
    }
}

/// The stored audience of these log entries (those that have one).
pub fn stored(conn: &mut PgConnection, log_ids: &[i64]) -> QueryResult<Vec<ItemAudience>> {
    let rows: Vec<AudienceRow> = diesel::sql_query(
        "SELECT log_id, start_at, end_at, listeners_at_start, performances, listening_us \
         FROM item_audience WHERE log_id = ANY($1)",
    )
    .bind::<Array<BigInt>, _>(log_ids)
    .load(conn)?;
    Ok(rows.into_iter().map(ItemAudience::from).collect())
}

/// Local days (in `tz`) of a station's as-run entries with an id above `after`, and the
/// highest id seen.
pub fn log_days(
    conn: &mut PgConnection,
    station_id: i64,
    after: i64,
    tz: &str,
) -> QueryResult<(Vec<chrono::NaiveDate>, i64)> {
    #[derive(QueryableByName)]
    struct DayRow {
        #[diesel(sql_type = diesel::sql_types::Date)]
        day: chrono::NaiveDate,
        #[diesel(sql_type = BigInt)]
        max_id: i64,
    }
    let rows: Vec<DayRow> = diesel::sql_query(
        "SELECT (date AT TIME ZONE $3)::date AS day, max(id) AS max_id FROM onair_log \
         WHERE station_id = $1 AND id > $2 GROUP BY 1 ORDER BY 1",
    )
    .bind::<BigInt, _>(station_id)
    .bind::<BigInt, _>(after)
    .bind::<Text, _>(tz)
    .load(conn)?;
    let max = rows.iter().map(|r| r.max_id).max().unwrap_or(after);
    Ok((rows.into_iter().map(|r| r.day).collect(), max))
}

/// An item as music reports read it (see sql/report_items.sql).
#[derive(Debug, Clone)]
pub struct ReportItemRow {
    pub log_id: i64,
    pub start: DateTime<Utc>,
    pub is_track: bool,
    pub artist: String,
    pub title: String,
    pub album: String,
    pub label: String,
    pub isrc: String,
    pub composer: String,
    pub duration_s: Option<f64>,
    /// The stored audience, if the audience job has computed it.
    pub audience: Option<ItemAudience>,
}

/// The recordings of a station on air in `period`, in air order, with their stored audience.
pub fn report_items(
    conn: &mut PgConnection,
    station_id: i64,
    period: Span,
) -> QueryResult<Vec<ReportItemRow>> {
    use diesel::sql_types::{Bool, Double, Nullable};
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        id: i64,
        #[diesel(sql_type = Timestamptz)]
        date: DateTime<Utc>,
        #[diesel(sql_type = Bool)]
        is_track: bool,
        #[diesel(sql_type = Text)]
        artist: String,
        #[diesel(sql_type = Text)]
        title: String,
        #[diesel(sql_type = Text)]
        album: String,
        #[diesel(sql_type = Text)]
        label: String,
        #[diesel(sql_type = Text)]
        isrc: String,
        #[diesel(sql_type = Text)]
        composer: String,
        #[diesel(sql_type = Nullable<Double>)]
        duration_s: Option<f64>,
        #[diesel(sql_type = Nullable<Timestamptz>)]
        end_at: Option<DateTime<Utc>>,
        #[diesel(sql_type = Nullable<Integer>)]
        performances: Option<i32>,
        #[diesel(sql_type = Nullable<BigInt>)]
        listening_us: Option<i64>,
        #[diesel(sql_type = Nullable<Integer>)]
        listeners_at_start: Option<i32>,
    }
    let rows: Vec<Row> = diesel::sql_query(include_str!("../../sql/report_items.sql"))
        .bind::<BigInt, _>(station_id)
        .bind::<Timestamptz, _>(period.start)
        .bind::<Timestamptz, _>(period.end)
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let audience = match (
                r.end_at,
                r.performances,
                r.listening_us,
                r.listeners_at_start,
            ) {
                (Some(end), Some(p), Some(us), Some(at)) => Some(ItemAudience {
                    log_id: r.id,
                    span: Span::new(r.date, end),
                    listeners_at_start: at as i64,
                    performances: p as i64,
                    listening_us: us,
                }),
                _ => None,
            };
            ReportItemRow {
                log_id: r.id,
                start: r.date,
                is_track: r.is_track,
                artist: r.artist,
                title: r.title,
                album: r.album,
                label: r.label,
                isrc: r.isrc,
                composer: r.composer,
                duration_s: r.duration_s,
                audience,
            }
        })
        .collect())
}

/// An entry of the as-run log as a programme log reads it (see sql/report_programme_log.sql).
#[derive(Debug, Clone, QueryableByName)]
pub struct LogLineRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub r#type: String,
    #[diesel(sql_type = Timestamptz)]
    pub date: DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub is_track: bool,
    #[diesel(sql_type = Text)]
    pub source: String,
    #[diesel(sql_type = Text)]
    pub title: String,
    #[diesel(sql_type = Text)]
    pub artist: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
    pub diffusion_id: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<Timestamptz>)]
    pub end_at: Option<DateTime<Utc>>,
}

/// Every entry of a station's as-run log in `period`, in air order.
pub fn log_lines(
    conn: &mut PgConnection,
    station_id: i64,
    period: Span,
) -> QueryResult<Vec<LogLineRow>> {
    diesel::sql_query(include_str!("../../sql/report_programme_log.sql"))
        .bind::<BigInt, _>(station_id)
        .bind::<Timestamptz, _>(period.start)
        .bind::<Timestamptz, _>(period.end)
        .load(conn)
}

/// The station and time of an as-run entry that is a sound or track on air.
pub fn on_air_entry(
    conn: &mut PgConnection,
    log_id: i64,
) -> QueryResult<Option<(i64, DateTime<Utc>)>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        station_id: i64,
        #[diesel(sql_type = Timestamptz)]
        date: DateTime<Utc>,
    }
    let row: Option<Row> = diesel::sql_query(
        "SELECT station_id, date FROM onair_log WHERE id = $1 AND type = 'on_air'",
    )
    .bind::<BigInt, _>(log_id)
    .get_result(conn)
    .optional()?;
    Ok(row.map(|r| (r.station_id, r.date)))
}
