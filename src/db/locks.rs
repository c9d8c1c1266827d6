//! PostgreSQL advisory locks (one holder of a station's monitor, of a job's run) and the
//! liveness probe of a held connection.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

/// Takes the session lock `key` if free; true when this connection now holds it (until
/// [`unlock`] or the end of the session).
pub fn try_lock(conn: &mut PgConnection, key: i64) -> QueryResult<bool> {
    diesel::sql_query("SELECT pg_try_advisory_lock($1) AS locked")
        .bind::<BigInt, _>(key)
        .get_result::<Locked>(conn)
        .map(|l| l.locked)
}

/// Takes the transaction lock `key` if free (released at the end of the transaction).
pub fn try_xact_lock(conn: &mut PgConnection, key: i64) -> QueryResult<bool> {
    diesel::sql_query("SELECT pg_try_advisory_xact_lock($1) AS locked")
        .bind::<BigInt, _>(key)
        .get_result::<Locked>(conn)
        .map(|l| l.locked)
}

/// Releases the session lock `key`.
pub fn unlock(conn: &mut PgConnection, key: i64) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_advisory_unlock($1)")
        .bind::<BigInt, _>(key)
        .execute(conn)
        .map(drop)
}

/// Whether the database answers on this connection.
pub fn ping(conn: &mut PgConnection) -> QueryResult<()> {
    diesel::sql_query("SELECT 1").execute(conn).map(drop)
}
