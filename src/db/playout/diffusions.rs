//! Queries on the schedule: `diffusion` and the sounds it plays (`diffusion_sound`).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamptz};
use serde::Serialize;

use super::log::{insert_log, NewLog};
use crate::db::Id;
use crate::domain::playout::{DiffusionType, LogType};

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

/// The started diffusion at `at` that plays the sound at `path`, if any.
pub fn diffusion_playing(
    conn: &mut PgConnection,
    station_id: i64,
    path: &str,
    at: DateTime<Utc>,
) -> QueryResult<Option<i64>> {
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
