//! Queries on `api_token`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::api_token;

/// A token as listed to operators (never its secret).
#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize, utoipa::ToSchema)]
#[diesel(table_name = api_token)]
pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub prefix: String,
    #[serde(skip)]
    pub hash: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A token to store.
#[derive(Debug, Insertable)]
#[diesel(table_name = api_token)]
pub struct NewToken<'a> {
    pub name: &'a str,
    pub prefix: &'a str,
    pub hash: &'a str,
    pub scopes: Vec<String>,
}

/// Stores a token; fails with a unique violation when an active token has that name.
pub fn insert(conn: &mut PgConnection, token: &NewToken<'_>) -> QueryResult<TokenRow> {
    diesel::insert_into(api_token::table)
        .values(token)
        .returning(TokenRow::as_returning())
        .get_result(conn)
}

/// All tokens, active first, then by name.
pub fn list(conn: &mut PgConnection) -> QueryResult<Vec<TokenRow>> {
    api_token::table
        .select(TokenRow::as_select())
        .order((
            api_token::revoked_at.is_not_null(),
            api_token::name,
            api_token::id,
        ))
        .load(conn)
}

/// Revokes the active token called `name`; returns how many were revoked (0 or 1).
pub fn revoke(conn: &mut PgConnection, name: &str) -> QueryResult<usize> {
    diesel::update(api_token::table)
        .filter(api_token::name.eq(name))
        .filter(api_token::revoked_at.is_null())
        .set(api_token::revoked_at.eq(diesel::dsl::now))
        .execute(conn)
}

/// Active tokens whose clear prefix is `prefix` (almost always zero or one).
pub fn active_by_prefix(conn: &mut PgConnection, prefix: &str) -> QueryResult<Vec<TokenRow>> {
    api_token::table
        .filter(api_token::prefix.eq(prefix))
        .filter(api_token::revoked_at.is_null())
        .select(TokenRow::as_select())
        .load(conn)
}

/// Records use, at most once a minute per token so reads do not turn into writes.
pub fn touch(conn: &mut PgConnection, id: i64) -> QueryResult<usize> {
    diesel::sql_query(
        "UPDATE api_token SET last_used_at = now() \
         WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
    )
    .bind::<diesel::sql_types::Int8, _>(id)
    .execute(conn)
}

/// The active token whose secret is `key` (well-formed lowercase hex), compared in constant
/// time; records its use. The API's extractor and the console's sign-in both check tokens here.
pub fn verify(conn: &mut PgConnection, key: &str) -> QueryResult<Option<TokenRow>> {
    use subtle::ConstantTimeEq;
    let hash = crate::auth::hash_token(key);
    let prefix = &key[..crate::auth::PREFIX_LEN.min(key.len())];
    let found = active_by_prefix(conn, prefix)?
        .into_iter()
        .find(|row| bool::from(row.hash.as_bytes().ct_eq(hash.as_bytes())));
    if let Some(row) = &found {
        touch(conn, row.id)?;
    }
    Ok(found)
}
