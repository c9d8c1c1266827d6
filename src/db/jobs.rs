//! Queries of the cleanup jobs: the `job_run` audit trail and each job's SQL (in `sql/`).

use chrono::{DateTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Nullable, Text, Timestamptz};
use serde::Serialize;

use crate::db::Id;

/// Records the start of a run (with the window it covers, if any) and returns its id.
pub fn start_run(
    conn: &mut PgConnection,
    name: &str,
    trigger: &str,
    window: Option<(DateTime<Utc>, DateTime<Utc>)>,
) -> QueryResult<i64> {
    diesel::sql_query(
        "INSERT INTO job_run (name, trigger, window_start, window_end) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind::<Text, _>(name)
    .bind::<Text, _>(trigger)
    .bind::<Nullable<Timestamptz>, _>(window.map(|w| w.0))
    .bind::<Nullable<Timestamptz>, _>(window.map(|w| w.1))
    .get_result::<Id>(conn)
    .map(|i| i.id)
}

/// Records the end of a run: the rows it changed, or why it did not.
pub fn finish_run(
    conn: &mut PgConnection,
    run_id: i64,
    rows: Option<i64>,
    error: Option<&str>,
) -> QueryResult<()> {
    diesel::sql_query(
        "UPDATE job_run SET finished_at = now(), rows_changed = $2, error = $3 WHERE id = $1",
    )
    .bind::<BigInt, _>(run_id)
    .bind::<Nullable<BigInt>, _>(rows)
    .bind::<Nullable<Text>, _>(error)
    .execute(conn)
    .map(drop)
}

/// Bounds every statement of the current transaction to `seconds`.
pub fn set_statement_timeout(conn: &mut PgConnection, seconds: u64) -> QueryResult<()> {
    // A number from the settings: SET takes no bind parameters.
    conn.batch_execute(&format!("SET LOCAL statement_timeout = '{seconds}s'"))
}

/// Open events end where the listener's next event begins (events starting before `end`).
pub fn close_by_next_event(
    conn: &mut PgConnection,
    end: DateTime<Utc>,
    cap_s: f64,
) -> QueryResult<usize> {
    diesel::sql_query(include_str!("../../sql/job_close_by_next_event.sql"))
        .bind::<Timestamptz, _>(end)
        .bind::<Double, _>(cap_s)
        .execute(conn)
}

/// Open events with no successor end at their max duration (or the cap), once past `now`.
pub fn close_by_max_duration(
    conn: &mut PgConnection,
    end: DateTime<Utc>,
    now: DateTime<Utc>,
    cap_s: f64,
) -> QueryResult<usize> {
    diesel::sql_query(include_str!("../../sql/job_close_by_max_duration.sql"))
        .bind::<Timestamptz, _>(end)
        .bind::<Timestamptz, _>(now)
        .bind::<Double, _>(cap_s)
        .execute(conn)
}

/// Pulls back ends past the next event, the max duration or the cap, in `[from, end)`.
pub fn fix_durations(
    conn: &mut PgConnection,
    from: DateTime<Utc>,
    end: DateTime<Utc>,
    cap_s: f64,
) -> QueryResult<usize> {
    diesel::sql_query(include_str!("../../sql/job_fix_durations.sql"))
        .bind::<Timestamptz, _>(from)
        .bind::<Timestamptz, _>(end)
        .bind::<Double, _>(cap_s)
        .execute(conn)
}

/// One recorded run, as `GET /api/v1/jobs/` lists it.
#[derive(Debug, Clone, QueryableByName, Serialize, utoipa::ToSchema)]
pub struct JobRun {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub trigger: String,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub window_start: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub window_end: Option<DateTime<Utc>>,
    #[diesel(sql_type = Timestamptz)]
    pub started_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub finished_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub rows_changed: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub error: Option<String>,
}

/// The newest runs, optionally of one job.
pub fn recent_runs(
    conn: &mut PgConnection,
    name: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<JobRun>> {
    diesel::sql_query(
        "SELECT id, name, trigger, window_start, window_end, started_at, finished_at, rows_changed, error \
         FROM job_run WHERE ($1::text IS NULL OR name = $1) ORDER BY started_at DESC, id DESC LIMIT $2",
    )
    .bind::<Nullable<Text>, _>(name)
    .bind::<BigInt, _>(limit)
    .load(conn)
}
