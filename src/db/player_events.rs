//! Queries on player events, heartbeats, media lengths and the lists of events and sessions.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::BoxedSqlQuery;
use diesel::sql_types::{Array, BigInt, Double, Nullable, Text, Timestamptz};
use serde::Serialize;

use super::keyset;
use crate::domain::player_event::{PlayerEvent, Source};
use crate::domain::{Direction, Key};

/// An event to store, with its final time and identity.
pub struct NewPlayerEvent<'a> {
    pub event: &'a PlayerEvent,
    pub time: DateTime<Utc>,
    pub user_identity: &'a str,
    pub device_key: &'a str,
    /// The browser's listener key (see `audience::listener_key`); None for backfills.
    pub listener_key: Option<&'a str>,
}

/// Stores events, skipping those already stored; returns how many were new.
pub fn insert(conn: &mut PgConnection, rows: &[NewPlayerEvent<'_>]) -> QueryResult<usize> {
    if rows.is_empty() {
        return Ok(0);
    }
    diesel::sql_query(include_str!("../../sql/player_event_insert.sql"))
        .bind::<Array<Timestamptz>, _>(rows.iter().map(|r| r.time).collect::<Vec<_>>())
        .bind::<Array<Nullable<Timestamptz>>, _>(
            rows.iter().map(|r| r.event.time_end).collect::<Vec<_>>(),
        )
        .bind::<Array<Text>, _>(rows.iter().map(|r| r.event.state).collect::<Vec<_>>())
        .bind::<Array<Nullable<Double>>, _>(
            rows.iter()
                .map(|r| r.event.max_duration_s)
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Text>, _>(
            rows.iter()
                .map(|r| r.event.obj_key.as_str())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Text>, _>(rows.iter().map(|r| r.event.source).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(rows.iter().map(|r| r.user_identity).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(rows.iter().map(|r| r.device_key).collect::<Vec<_>>())
        .bind::<Array<Nullable<Timestamptz>>, _>(
            rows.iter().map(|r| r.event.client_ts).collect::<Vec<_>>(),
        )
        .bind::<Array<Nullable<Text>>, _>(rows.iter().map(|r| r.listener_key).collect::<Vec<_>>())
        .execute(conn)
}

/// A media's length, which becomes the max duration of player events on it.
pub struct MediaLength {
    pub obj_key: String,
    pub duration_s: f64,
    pub title: String,
}

/// Creates or updates media lengths (`catalog_media`); returns how many rows were written.
pub fn upsert_media(conn: &mut PgConnection, media: &[MediaLength]) -> QueryResult<usize> {
    diesel::sql_query(
        "INSERT INTO catalog_media (obj_key, duration, title) \
         SELECT k, make_interval(secs => d), t FROM unnest($1::text[], $2::float8[], $3::text[]) AS m(k, d, t) \
         ON CONFLICT (obj_key) DO UPDATE SET duration = excluded.duration, title = excluded.title, updated_at = now()",
    )
    .bind::<Array<Text>, _>(media.iter().map(|m| m.obj_key.as_str()).collect::<Vec<_>>())
    .bind::<Array<Double>, _>(media.iter().map(|m| m.duration_s).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(media.iter().map(|m| m.title.as_str()).collect::<Vec<_>>())
    .execute(conn)
}

/// Records that a device is listening (or, with `listening = false`, that it stopped).
pub fn heartbeat(
    conn: &mut PgConnection,
    device_key: &str,
    user_identity: &str,
    source: Source,
    obj_key: Option<&str>,
    listening: bool,
) -> QueryResult<usize> {
    if !listening {
        return diesel::sql_query("DELETE FROM stats_heartbeat WHERE device_key = $1")
            .bind::<Text, _>(device_key)
            .execute(conn);
    }
    diesel::sql_query(
        "INSERT INTO stats_heartbeat (device_key, user_identity, source, obj_key, seen_at) \
         VALUES ($1, $2, $3, $4, now()) \
         ON CONFLICT (device_key) DO UPDATE SET user_identity = excluded.user_identity, \
         source = excluded.source, obj_key = coalesce(excluded.obj_key, stats_heartbeat.obj_key), \
         seen_at = excluded.seen_at",
    )
    .bind::<Text, _>(device_key)
    .bind::<Text, _>(user_identity)
    .bind::<Text, _>(source)
    .bind::<Nullable<Text>, _>(obj_key)
    .execute(conn)
}

/// Devices seen within `seconds`, by source.
#[derive(Debug, QueryableByName, Serialize)]
pub struct SourceCount {
    #[diesel(sql_type = Text)]
    pub source: String,
    #[diesel(sql_type = BigInt)]
    pub devices: i64,
}

/// How many devices were seen in the last `seconds`, per source.
pub fn listeners_now(conn: &mut PgConnection, seconds: f64) -> QueryResult<Vec<SourceCount>> {
    diesel::sql_query(
        "SELECT source, count(*) AS devices FROM stats_heartbeat \
         WHERE seen_at > now() - make_interval(secs => $1) GROUP BY source ORDER BY source",
    )
    .bind::<Double, _>(seconds)
    .load(conn)
}

/// A stored player event as the list shows it.
#[derive(Debug, Clone, QueryableByName, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlayerEventRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Timestamptz)]
    pub time: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub time_end: Option<DateTime<Utc>>,
    #[diesel(sql_type = Text)]
    pub state: String,
    #[diesel(sql_type = Nullable<Double>)]
    pub max_duration_s: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    pub calculated_duration_s: Option<f64>,
    #[diesel(sql_type = Text)]
    pub obj_key: String,
    #[diesel(sql_type = Text)]
    pub source: String,
    #[diesel(sql_type = Text)]
    pub user_identity: String,
    #[diesel(sql_type = Text)]
    pub device_key: String,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub client_ts: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    pub closed_by: Option<String>,
}

/// A listening session as the list shows it.
#[derive(Debug, Clone, QueryableByName, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Timestamptz)]
    pub time_start: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub time_end: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Double>)]
    pub duration_s: Option<f64>,
    #[diesel(sql_type = Double)]
    pub duration_playing_s: f64,
    #[diesel(sql_type = Double)]
    pub duration_playing_live_s: f64,
    #[diesel(sql_type = Double)]
    pub duration_playing_ondemand_s: f64,
    #[diesel(sql_type = Double)]
    pub duration_playing_news_s: f64,
    #[diesel(sql_type = Text)]
    pub user_identity: String,
    #[diesel(sql_type = Text)]
    pub device_key: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub remote_addr: Option<String>,
}

/// Filters shared by the player-event and session lists.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub time_from: Option<DateTime<Utc>>,
    pub time_until: Option<DateTime<Utc>>,
    pub source: Option<Source>,
    pub user_identity: Option<String>,
    pub min_duration: Option<f64>,
}

/// Which list.
#[derive(Debug, Clone, Copy)]
pub enum List {
    Events,
    Sessions,
}

impl List {
    fn table(self) -> &'static str {
        match self {
            List::Events => "stats_player_event",
            List::Sessions => "stats_player_session",
        }
    }

    fn select(self) -> &'static str {
        match self {
            List::Events => {
                "SELECT id, time, time_end, state, extract(epoch FROM max_duration)::float8 AS max_duration_s, \
                 calculated_duration_s::float8 AS calculated_duration_s, obj_key, source, user_identity, \
                 device_key, client_ts, closed_by FROM stats_player_event WHERE true"
            }
            List::Sessions => {
                "SELECT id, time_start, time_end, duration_s::float8 AS duration_s, \
                 duration_playing_s::float8 AS duration_playing_s, \
                 duration_playing_live_s::float8 AS duration_playing_live_s, \
                 duration_playing_ondemand_s::float8 AS duration_playing_ondemand_s, \
                 duration_playing_news_s::float8 AS duration_playing_news_s, \
                 user_identity, device_key, remote_addr FROM stats_player_session WHERE true"
            }
        }
    }

    /// The time column pages are ordered by.
    fn time(self) -> &'static str {
        match self {
            List::Events => "time",
            List::Sessions => "time_start",
        }
    }
}

/// A list query with numbered bind parameters appended as filters are added.
struct Builder<'a> {
    query: BoxedSqlQuery<'a, Pg, diesel::query_builder::SqlQuery>,
    next: usize,
}

impl<'a> Builder<'a> {
    fn new(sql: &str) -> Self {
        Builder {
            query: diesel::sql_query(sql).into_boxed(),
            next: 1,
        }
    }

    fn param(&mut self) -> String {
        let p = format!("${}", self.next);
        self.next += 1;
        p
    }

    fn filter_time(mut self, condition: &str, value: DateTime<Utc>) -> Self {
        let p = self.param();
        self.query = self
            .query
            .sql(format!(" AND {condition} {p}"))
            .bind::<Timestamptz, _>(value);
        self
    }

    fn filter_text(mut self, condition: &str, value: String) -> Self {
        let p = self.param();
        self.query = self
            .query
            .sql(format!(" AND {condition} {p}"))
            .bind::<Text, _>(value);
        self
    }

    fn filter_f64(mut self, condition: &str, value: f64) -> Self {
        let p = self.param();
        self.query = self
            .query
            .sql(format!(" AND {condition} {p}"))
            .bind::<Double, _>(value);
        self
    }
}

fn filtered(list: List, f: &Filter, head: &str) -> Builder<'static> {
    let time = list.time();
    let mut b = Builder::new(head);
    if let Some(t) = f.time_from {
        b = b.filter_time(&format!("{time} >="), t);
    }
    if let Some(t) = f.time_until {
        b = b.filter_time(&format!("{time} <"), t);
    }
    if let Some(u) = &f.user_identity {
        b = b.filter_text("user_identity =", u.clone());
    }
    match list {
        List::Events => {
            if let Some(s) = f.source {
                b = b.filter_text("source =", s.as_str().to_string());
            }
            if let Some(d) = f.min_duration {
                b = b.filter_f64("calculated_duration_s >=", d);
            }
        }
        List::Sessions => {
            // A session "of" a source is one with playing time from it.
            if let Some(s) = f.source {
                let column = match s {
                    Source::Live => "duration_playing_live_s",
                    Source::News => "duration_playing_news_s",
                    Source::OnDemand => "duration_playing_ondemand_s",
                };
                b = b.filter_f64(&format!("{column} >"), 0.0);
            }
            if let Some(d) = f.min_duration {
                b = b.filter_f64("duration_playing_s >=", d);
            }
        }
    }
    b
}

/// How many rows match.
pub fn count(conn: &mut PgConnection, list: List, f: &Filter) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let head = format!("SELECT count(*) AS n FROM {} WHERE true", list.table());
    let n: N = filtered(list, f, &head).query.get_result(conn)?;
    Ok(n.n)
}

/// One keyset page (see the stream-event list), `limit` rows.
pub fn keyset_page<T>(
    conn: &mut PgConnection,
    list: List,
    f: &Filter,
    key: Option<Key>,
    direction: Direction,
    limit: i64,
) -> QueryResult<Vec<T>>
where
    T: QueryableByName<Pg> + 'static,
{
    let time = list.time();
    let walk = keyset::walk(direction, false);
    let mut b = filtered(list, f, list.select());
    if let Some(k) = key {
        let (p1, p2) = (b.param(), b.param());
        b.query = b
            .query
            .sql(format!(" AND ({time}, id) {} ({p1}, {p2})", walk.op))
            .bind::<Timestamptz, _>(k.time)
            .bind::<BigInt, _>(k.id);
    }
    let (order, p) = (walk.order, b.param());
    let q = b
        .query
        .sql(format!(" ORDER BY {time} {order}, id {order} LIMIT {p}"))
        .bind::<BigInt, _>(limit);
    Ok(keyset::in_list_order(q.load(conn)?, direction))
}

/// `limit` rows from `offset` on, for old clients.
pub fn offset_page<T>(
    conn: &mut PgConnection,
    list: List,
    f: &Filter,
    offset: i64,
    limit: i64,
) -> QueryResult<Vec<T>>
where
    T: QueryableByName<Pg> + 'static,
{
    let time = list.time();
    let mut b = filtered(list, f, list.select());
    let (p1, p2) = (b.param(), b.param());
    b.query
        .sql(format!(" ORDER BY {time}, id OFFSET {p1} LIMIT {p2}"))
        .bind::<BigInt, _>(offset)
        .bind::<BigInt, _>(limit)
        .load(conn)
}
