//! Queries on `diffusion_push`: each sound pushed to Liquidsoap for a diffusion, and what
//! became of it.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text, Timestamptz};

use crate::db::Id;

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
