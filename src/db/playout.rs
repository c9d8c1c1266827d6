//! Queries on stations, the catalogue (sounds, tracks), the schedule (diffusions) and the
//! as-run log.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Double, Integer, Jsonb, Nullable, Text, Timestamptz};
use serde::Serialize;

use crate::domain::playout::{DiffusionType, LogType, Streamer};

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

/// A sound with its tracks.
#[derive(Debug, Clone, QueryableByName, Serialize, utoipa::ToSchema)]
pub struct SoundRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub path: String,
    #[diesel(sql_type = Nullable<Double>)]
    pub duration_s: Option<f64>,
    #[diesel(sql_type = Text)]
    pub title: String,
    #[diesel(sql_type = Text)]
    pub artist: String,
    #[diesel(sql_type = Text)]
    pub r#type: String,
    #[diesel(sql_type = Text)]
    pub program: String,
    #[diesel(sql_type = Jsonb)]
    pub tracks: serde_json::Value,
}

const SOUND_SELECT: &str = "SELECT s.id, s.path, s.duration_s, s.title, s.artist, s.type, s.program, \
     coalesce((SELECT jsonb_agg(jsonb_build_object('id', t.id, 'timestamp', t.timestamp_s, 'artist', t.artist, \
     'title', t.title) ORDER BY t.timestamp_s) FROM track t WHERE t.sound_id = s.id), '[]') AS tracks FROM sound s";

/// A sound to store, with its tracks (seconds from the start, artist, title).
#[derive(Debug, Clone)]
pub struct NewSound {
    pub path: String,
    pub duration_s: Option<f64>,
    pub title: String,
    pub artist: String,
    pub r#type: String,
    pub program: String,
    pub tracks: Vec<(f64, String, String)>,
}

/// Creates or updates the sound at `path` and replaces its tracks.
pub fn upsert_sound(conn: &mut PgConnection, s: &NewSound) -> QueryResult<SoundRow> {
    conn.transaction(|conn| {
        #[derive(QueryableByName)]
        struct Id {
            #[diesel(sql_type = BigInt)]
            id: i64,
        }
        let id = diesel::sql_query(
            "INSERT INTO sound (path, duration_s, title, artist, type, program) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (path) DO UPDATE SET duration_s = excluded.duration_s, title = excluded.title, \
             artist = excluded.artist, type = excluded.type, program = excluded.program, updated_at = now() \
             RETURNING id",
        )
        .bind::<Text, _>(&s.path)
        .bind::<Nullable<Double>, _>(s.duration_s)
        .bind::<Text, _>(&s.title)
        .bind::<Text, _>(&s.artist)
        .bind::<Text, _>(&s.r#type)
        .bind::<Text, _>(&s.program)
        .get_result::<Id>(conn)?
        .id;
        diesel::sql_query("DELETE FROM track WHERE sound_id = $1").bind::<BigInt, _>(id).execute(conn)?;
        diesel::sql_query(
            "INSERT INTO track (sound_id, timestamp_s, artist, title) \
             SELECT $1, t, a, n FROM unnest($2::float8[], $3::text[], $4::text[]) AS x(t, a, n)",
        )
        .bind::<BigInt, _>(id)
        .bind::<Array<Double>, _>(s.tracks.iter().map(|t| t.0).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(s.tracks.iter().map(|t| t.1.clone()).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(s.tracks.iter().map(|t| t.2.clone()).collect::<Vec<_>>())
        .execute(conn)?;
        diesel::sql_query(format!("{SOUND_SELECT} WHERE s.id = $1")).bind::<BigInt, _>(id).get_result(conn)
    })
}

/// Sounds, optionally of one programme, by path.
pub fn sounds(
    conn: &mut PgConnection,
    program: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<SoundRow>> {
    diesel::sql_query(format!(
        "{SOUND_SELECT} WHERE ($1::text IS NULL OR s.program = $1) ORDER BY s.path LIMIT $2"
    ))
    .bind::<Nullable<Text>, _>(program)
    .bind::<BigInt, _>(limit)
    .load(conn)
}

/// The sound stored for a file path, if any.
pub fn sound_by_path(conn: &mut PgConnection, path: &str) -> QueryResult<Option<SoundRow>> {
    diesel::sql_query(format!("{SOUND_SELECT} WHERE s.path = $1"))
        .bind::<Text, _>(path)
        .get_result(conn)
        .optional()
}

/// A diffusion with the paths of its sounds, in order.
#[derive(Debug, Clone, QueryableByName, Serialize, utoipa::ToSchema)]
pub struct DiffusionRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub station: String,
    #[diesel(sql_type = Timestamptz)]
    pub start: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub end: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    pub title: String,
    #[diesel(sql_type = Text)]
    #[schema(value_type = String)]
    pub r#type: DiffusionType,
    #[diesel(sql_type = Array<Text>)]
    pub sounds: Vec<String>,
    /// `start` or `cancel` once the monitor decided, else null.
    #[diesel(sql_type = Nullable<Text>)]
    pub decision: Option<String>,
}

const DIFFUSION_SELECT: &str = "SELECT d.id, st.name AS station, d.start, d.\"end\", d.title, d.type, \
     coalesce((SELECT array_agg(so.path ORDER BY ds.position) FROM diffusion_sound ds JOIN sound so ON so.id = ds.sound_id \
     WHERE ds.diffusion_id = d.id), '{}') AS sounds, \
     (SELECT l.type FROM onair_log l WHERE l.diffusion_id = d.id AND l.type IN ('start', 'cancel')) AS decision \
     FROM diffusion d JOIN station st ON st.id = d.station_id";

/// Creates a diffusion playing `sound_ids` in order.
pub fn insert_diffusion(
    conn: &mut PgConnection,
    station_id: i64,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    title: &str,
    r#type: DiffusionType,
    sound_ids: &[i64],
) -> QueryResult<DiffusionRow> {
    conn.transaction(|conn| {
        #[derive(QueryableByName)]
        struct Id {
            #[diesel(sql_type = BigInt)]
            id: i64,
        }
        let id = diesel::sql_query(
            "INSERT INTO diffusion (station_id, start, \"end\", title, type) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind::<BigInt, _>(station_id)
        .bind::<Timestamptz, _>(start)
        .bind::<Timestamptz, _>(end)
        .bind::<Text, _>(title)
        .bind::<Text, _>(r#type)
        .get_result::<Id>(conn)?
        .id;
        diesel::sql_query(
            "INSERT INTO diffusion_sound (diffusion_id, position, sound_id) \
             SELECT $1, ord, sid FROM unnest($2::bigint[]) WITH ORDINALITY AS x(sid, ord)",
        )
        .bind::<BigInt, _>(id)
        .bind::<Array<BigInt>, _>(sound_ids.to_vec())
        .execute(conn)?;
        diffusion(conn, id)
    })
}

/// Changes a diffusion's times, title, type and (when given) its sounds.
#[allow(clippy::too_many_arguments)]
pub fn update_diffusion(
    conn: &mut PgConnection,
    id: i64,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    title: &str,
    r#type: DiffusionType,
    sound_ids: Option<&[i64]>,
) -> QueryResult<DiffusionRow> {
    conn.transaction(|conn| {
        diesel::sql_query(
            "UPDATE diffusion SET start = $2, \"end\" = $3, title = $4, type = $5, updated_at = now() WHERE id = $1",
        )
        .bind::<BigInt, _>(id)
        .bind::<Timestamptz, _>(start)
        .bind::<Timestamptz, _>(end)
        .bind::<Text, _>(title)
        .bind::<Text, _>(r#type)
        .execute(conn)?;
        if let Some(ids) = sound_ids {
            diesel::sql_query("DELETE FROM diffusion_sound WHERE diffusion_id = $1").bind::<BigInt, _>(id).execute(conn)?;
            diesel::sql_query(
                "INSERT INTO diffusion_sound (diffusion_id, position, sound_id) \
                 SELECT $1, ord, sid FROM unnest($2::bigint[]) WITH ORDINALITY AS x(sid, ord)",
            )
            .bind::<BigInt, _>(id)
            .bind::<Array<BigInt>, _>(ids.to_vec())
            .execute(conn)?;
        }
        diffusion(conn, id)
    })
}

/// One diffusion.
pub fn diffusion(conn: &mut PgConnection, id: i64) -> QueryResult<DiffusionRow> {
    diesel::sql_query(format!("{DIFFUSION_SELECT} WHERE d.id = $1"))
        .bind::<BigInt, _>(id)
        .get_result(conn)
}

/// Diffusions of a station overlapping `[from, until)`, by start.
pub fn diffusions(
    conn: &mut PgConnection,
    station_id: i64,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> QueryResult<Vec<DiffusionRow>> {
    diesel::sql_query(format!(
        "{DIFFUSION_SELECT} WHERE d.station_id = $1 AND d.\"end\" > $2 AND d.start < $3 ORDER BY d.start, d.id"
    ))
    .bind::<BigInt, _>(station_id)
    .bind::<Timestamptz, _>(from)
    .bind::<Timestamptz, _>(until)
    .load(conn)
}

/// The earliest scheduled (on_air) diffusion running at `now` that has sounds and was neither
/// started nor cancelled.
pub fn pending_diffusion(
    conn: &mut PgConnection,
    station_id: i64,
    now: DateTime<Utc>,
) -> QueryResult<Option<DiffusionRow>> {
    diesel::sql_query(format!(
        "{DIFFUSION_SELECT} WHERE d.station_id = $1 AND d.type = 'on_air' AND d.start <= $2 AND d.\"end\" >= $2 \
         AND EXISTS (SELECT 1 FROM diffusion_sound ds WHERE ds.diffusion_id = d.id) \
         AND NOT EXISTS (SELECT 1 FROM onair_log l WHERE l.diffusion_id = d.id AND l.type IN ('start', 'cancel')) \
         ORDER BY d.start, d.id LIMIT 1"
    ))
    .bind::<BigInt, _>(station_id)
    .bind::<Timestamptz, _>(now)
    .get_result(conn)
    .optional()
}

/// Started diffusions still running at `now`.
pub fn running_diffusions(
    conn: &mut PgConnection,
    station_id: i64,
    now: DateTime<Utc>,
) -> QueryResult<Vec<DiffusionRow>> {
    diesel::sql_query(format!(
        "{DIFFUSION_SELECT} WHERE d.station_id = $1 AND d.\"end\" > $2 \
         AND EXISTS (SELECT 1 FROM onair_log l WHERE l.diffusion_id = d.id AND l.type = 'start') ORDER BY d.start"
    ))
    .bind::<BigInt, _>(station_id)
    .bind::<Timestamptz, _>(now)
    .load(conn)
}

/// The next diffusion starting after `now`.
pub fn next_diffusion(
    conn: &mut PgConnection,
    station_id: i64,
    now: DateTime<Utc>,
) -> QueryResult<Option<DiffusionRow>> {
    diesel::sql_query(format!(
        "{DIFFUSION_SELECT} WHERE d.station_id = $1 AND d.start > $2 AND d.type <> 'cancel' ORDER BY d.start LIMIT 1"
    ))
    .bind::<BigInt, _>(station_id)
    .bind::<Timestamptz, _>(now)
    .get_result(conn)
    .optional()
}

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
pub const LOG_SELECT: &str =
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
/// entry's id, or None when it was already there.
pub fn insert_log(conn: &mut PgConnection, l: &NewLog<'_>) -> QueryResult<Option<i64>> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    Ok(diesel::sql_query(
        "INSERT INTO onair_log (station_id, type, date, source, comment, path, sound_id, track_id, diffusion_id, \
         parent_id, tags, date_from, request_key, resume_of, position_s, push_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
         ON CONFLICT DO NOTHING RETURNING id",
    )
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
    .map(|i| i.id))
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

/// A track to log: its id and the seconds into the sound.
#[derive(Debug, Clone, QueryableByName)]
pub struct DueTrack {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Double)]
    pub timestamp_s: f64,
    #[diesel(sql_type = Text)]
    pub artist: String,
    #[diesel(sql_type = Text)]
    pub title: String,
}

/// Tracks of `sound_id` not yet logged under the sound log `parent_id`.
pub fn unlogged_tracks(
    conn: &mut PgConnection,
    sound_id: i64,
    parent_id: i64,
) -> QueryResult<Vec<DueTrack>> {
    diesel::sql_query(
        "SELECT t.id, t.timestamp_s, t.artist, t.title FROM track t WHERE t.sound_id = $1 \
         AND NOT EXISTS (SELECT 1 FROM onair_log l WHERE l.parent_id = $2 AND l.track_id = t.id) ORDER BY t.timestamp_s",
    )
    .bind::<BigInt, _>(sound_id)
    .bind::<BigInt, _>(parent_id)
    .load(conn)
}

/// The started diffusion at `at` that plays the sound at `path`, if any.
pub fn diffusion_playing(
    conn: &mut PgConnection,
    station_id: i64,
    path: &str,
    at: DateTime<Utc>,
) -> QueryResult<Option<i64>> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    Ok(diesel::sql_query(
        "SELECT d.id FROM diffusion d JOIN diffusion_sound ds ON ds.diffusion_id = d.id JOIN sound s ON s.id = ds.sound_id \
         JOIN onair_log l ON l.diffusion_id = d.id AND l.type = 'start' \
         WHERE d.station_id = $1 AND s.path = $2 AND l.date <= $3 + interval '5 seconds' AND d.\"end\" >= $3 - interval '1 hour' \
         ORDER BY l.date DESC LIMIT 1",
    )
    .bind::<BigInt, _>(station_id)
    .bind::<Text, _>(path)
    .bind::<Timestamptz, _>(at)
    .get_result::<Id>(conn)
    .optional()?
    .map(|i| i.id))
}

/// A push as stored (its id is the `airlog_push` annotation).
#[derive(Debug, Clone, QueryableByName)]
pub struct PushRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Integer)]
    pub position: i32,
    #[diesel(sql_type = Integer)]
    pub attempt: i32,
    #[diesel(sql_type = Text)]
    pub state: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub rid: Option<i64>,
    #[diesel(sql_type = Timestamptz)]
    pub pushed_at: DateTime<Utc>,
}

/// Every push of a diffusion, oldest first.
pub fn pushes(conn: &mut PgConnection, diffusion_id: i64) -> QueryResult<Vec<PushRow>> {
    diesel::sql_query(
        "SELECT id, position, attempt, state, rid, pushed_at FROM diffusion_push WHERE diffusion_id = $1 ORDER BY id",
    )
    .bind::<BigInt, _>(diffusion_id)
    .load(conn)
}

/// Writes a push before it is sent (state `sending`) and returns its id.
pub fn new_push(
    conn: &mut PgConnection,
    diffusion_id: i64,
    position: i32,
    path: &str,
    at: DateTime<Utc>,
) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    Ok(diesel::sql_query(
        "INSERT INTO diffusion_push (diffusion_id, attempt, position, path, state, pushed_at) \
         SELECT $1, coalesce(max(attempt), 0) + 1, $2, $3, 'sending', $4 FROM diffusion_push \
         WHERE diffusion_id = $1 AND position = $2 RETURNING id",
    )
    .bind::<BigInt, _>(diffusion_id)
    .bind::<Integer, _>(position)
    .bind::<Text, _>(path)
    .bind::<Timestamptz, _>(at)
    .get_result::<Id>(conn)?
    .id)
}

/// Records what became of a push.
pub fn set_push(
    conn: &mut PgConnection,
    push_id: i64,
    state: &str,
    rid: Option<i64>,
) -> QueryResult<usize> {
    diesel::sql_query("UPDATE diffusion_push SET state = $2, rid = coalesce($3, rid) WHERE id = $1")
        .bind::<BigInt, _>(push_id)
        .bind::<Text, _>(state)
        .bind::<Nullable<BigInt>, _>(rid)
        .execute(conn)
}

/// The push with this id: (diffusion id, position, sent at).
pub fn push_by_id(
    conn: &mut PgConnection,
    push_id: i64,
) -> QueryResult<Option<(i64, i32, DateTime<Utc>)>> {
    #[derive(QueryableByName)]
    struct P {
        #[diesel(sql_type = BigInt)]
        diffusion_id: i64,
        #[diesel(sql_type = Integer)]
        position: i32,
        #[diesel(sql_type = Timestamptz)]
        pushed_at: DateTime<Utc>,
    }
    Ok(diesel::sql_query(
        "SELECT diffusion_id, position, pushed_at FROM diffusion_push WHERE id = $1",
    )
    .bind::<BigInt, _>(push_id)
    .get_result::<P>(conn)
    .optional()?
    .map(|p| (p.diffusion_id, p.position, p.pushed_at)))
}

/// Push ids of a diffusion already heard (logged on air), with the rid Liquidsoap gave them.
pub fn played_pushes(conn: &mut PgConnection, diffusion_id: i64) -> QueryResult<Vec<(i64, i32)>> {
    #[derive(QueryableByName)]
    struct P {
        #[diesel(sql_type = BigInt)]
        id: i64,
        #[diesel(sql_type = Integer)]
        position: i32,
    }
    Ok(diesel::sql_query(
        "SELECT p.id, p.position FROM diffusion_push p WHERE p.diffusion_id = $1 \
         AND EXISTS (SELECT 1 FROM onair_log l WHERE l.push_id = p.id AND l.type = 'on_air' AND l.track_id IS NULL)",
    )
    .bind::<BigInt, _>(diffusion_id)
    .load::<P>(conn)?
    .into_iter()
    .map(|p| (p.id, p.position))
    .collect())
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
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    Ok(diesel::sql_query(
        "SELECT id FROM onair_log WHERE resume_of = $1 AND date BETWEEN $2 - interval '3 seconds' AND $2 + interval '3 seconds' LIMIT 1",
    )
    .bind::<BigInt, _>(play_id)
    .bind::<Timestamptz, _>(date)
    .get_result::<Id>(conn)
    .optional()?
    .map(|i| i.id))
}

/// Marks a diffusion cancelled and logs it, unless it was started (or cancelled) already.
/// Returns true when this call cancelled it.
pub fn cancel_diffusion(
    conn: &mut PgConnection,
    station_id: i64,
    d: &DiffusionRow,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    conn.transaction(|conn| {
        let logged = insert_log(
            conn,
            &NewLog {
                station_id,
                r#type: LogType::Cancel,
                date: now,
                comment: &d.title,
                diffusion_id: Some(d.id),
                tags: serde_json::json!({}),
                ..NewLog::default()
            },
        )?;
        if logged.is_some() {
            diesel::sql_query(
                "UPDATE diffusion SET type = 'cancel', updated_at = now() WHERE id = $1",
            )
            .bind::<BigInt, _>(d.id)
            .execute(conn)?;
        }
        Ok(logged.is_some())
    })
}

/// Programmes and their archive sounds, for the playlist files.
pub fn programme_playlists(conn: &mut PgConnection) -> QueryResult<Vec<(String, Vec<String>)>> {
    #[derive(QueryableByName)]
    struct P {
        #[diesel(sql_type = Text)]
        program: String,
        #[diesel(sql_type = Array<Text>)]
        paths: Vec<String>,
    }
    Ok(diesel::sql_query(
        "SELECT program, array_agg(path ORDER BY path) AS paths FROM sound \
         WHERE program <> '' AND type = 'archive' GROUP BY program ORDER BY program",
    )
    .load::<P>(conn)?
    .into_iter()
    .map(|p| (p.program, p.paths))
    .collect())
}

/// One log entry by id.
pub fn log_entry(conn: &mut PgConnection, id: i64) -> QueryResult<LogRow> {
    diesel::sql_query(format!("{LOG_SELECT} WHERE l.id = $1"))
        .bind::<BigInt, _>(id)
        .get_result(conn)
}
