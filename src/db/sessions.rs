//! Queries on listening sessions (`stats_player_session`), recomputed from player events by
//! the SQL in `sql/sessions_*.sql`.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Int4;

#[derive(QueryableByName)]
struct Params {
    #[diesel(sql_type = Int4)]
    gap_s: i32,
    #[diesel(sql_type = Int4)]
    min_s: i32,
}

/// The gap and minimum (seconds) the stored sessions were made with, if any were.
pub fn params(conn: &mut PgConnection) -> QueryResult<Option<(u32, u32)>> {
    Ok(
        diesel::sql_query("SELECT gap_s, min_s FROM stats_player_session_params")
            .get_result::<Params>(conn)
            .optional()?
            .map(|p| (p.gap_s as u32, p.min_s as u32)),
    )
}

/// Drops every session and marks every listener for recomputation with a new gap and minimum.
pub fn reset(conn: &mut PgConnection, gap_s: u32, min_s: u32) -> QueryResult<()> {
    conn.batch_execute("DELETE FROM stats_player_session")?;
    diesel::sql_query(include_str!("../../sql/sessions_mark_all.sql")).execute(conn)?;
    diesel::sql_query(
        "INSERT INTO stats_player_session_params (gap_s, min_s) VALUES ($1, $2) \
         ON CONFLICT (singleton) DO UPDATE SET gap_s = excluded.gap_s, min_s = excluded.min_s, updated_at = now()",
    )
    .bind::<Int4, _>(gap_s as i32)
    .bind::<Int4, _>(min_s as i32)
    .execute(conn)?;
    Ok(())
}

/// Recomputes the sessions of the listeners marked dirty; returns the sessions written. Runs
/// inside the caller's transaction (its work table is emptied on commit).
pub fn recompute_dirty(conn: &mut PgConnection, gap_s: u32, min_s: u32) -> QueryResult<usize> {
    conn.batch_execute(
        "CREATE TEMP TABLE IF NOT EXISTS session_work \
         (user_identity text NOT NULL, device_key text NOT NULL, cut timestamptz) ON COMMIT DELETE ROWS; \
         TRUNCATE session_work",
    )?;
    diesel::sql_query(include_str!("../../sql/sessions_take_dirty.sql")).execute(conn)?;
    conn.batch_execute("ANALYZE session_work")?;
    diesel::sql_query(include_str!("../../sql/sessions_delete.sql")).execute(conn)?;
    diesel::sql_query(include_str!("../../sql/sessions_insert.sql"))
        .bind::<Int4, _>(gap_s as i32)
        .bind::<Int4, _>(min_s as i32)
        .execute(conn)
}
