//! API tokens: generation, hashing, scopes, and the extractor that guards endpoints.
//!
//! A token is 40 random hex characters, shown once at creation. The database keeps its first
//! 8 characters (to find the row) and the SHA-256 of the whole token, compared in constant time.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::str::FromStr;

use actix_web::{web, FromRequest, HttpRequest};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::app::AppState;
use crate::db::{self, tokens};
use crate::error::ApiError;

const TOKEN_BYTES: usize = 20;
const PREFIX_LEN: usize = 8;

/// What a token may do. `admin` may do everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Scope {
    /// Send stream and player events.
    Ingest,
    /// Read statistics, logs and exports.
    Read,
    /// Manage the catalogue, schedules and jobs (implies the other scopes).
    Admin,
}

impl Scope {
    /// The name stored in the database and shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Scope, String> {
        match s {
            "ingest" => Ok(Scope::Ingest),
            "read" => Ok(Scope::Read),
            "admin" => Ok(Scope::Admin),
            other => Err(format!(
                "unknown scope {other:?} (expected ingest, read or admin)"
            )),
        }
    }
}

/// A freshly generated token: the secret to show once, and what to store.
pub struct GeneratedToken {
    pub secret: String,
    pub prefix: String,
    pub hash: String,
}

/// Makes a new random token.
pub fn generate_token() -> anyhow::Result<GeneratedToken> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness available: {e}"))?;
    let secret = hex::encode(bytes);
    Ok(GeneratedToken {
        prefix: secret[..PREFIX_LEN].to_string(),
        hash: hash_token(&secret),
        secret,
    })
}

/// The stored form of a token.
pub fn hash_token(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Reads `Authorization: Token <key>` or `Bearer <key>` and returns the key if well-formed.
fn presented_token(req: &HttpRequest) -> Result<String, ApiError> {
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::Unauthorized(
                "this endpoint needs an API token: send `Authorization: Token <key>`".into(),
            )
        })?;
    let header = header.to_str().map_err(|_| {
        ApiError::Unauthorized("the Authorization header is not readable text".into())
    })?;
    let (scheme, key) = header.trim().split_once(' ').unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("token") && !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::Unauthorized(
            "the Authorization header must be `Token <key>` or `Bearer <key>`".into(),
        ));
    }
    let key = key.trim();
    if key.len() != TOKEN_BYTES * 2 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::Unauthorized("the API token is not valid".into()));
    }
    Ok(key.to_ascii_lowercase())
}

/// Marks the scope an endpoint requires.
pub trait RequiredScope {
    const SCOPE: Scope;
}

/// Endpoints that take events.
pub struct IngestScope;
/// Endpoints that read data.
pub struct ReadScope;
/// Endpoints that manage airlog.
pub struct AdminScope;

impl RequiredScope for IngestScope {
    const SCOPE: Scope = Scope::Ingest;
}
impl RequiredScope for ReadScope {
    const SCOPE: Scope = Scope::Read;
}
impl RequiredScope for AdminScope {
    const SCOPE: Scope = Scope::Admin;
}

/// The authenticated caller of an endpoint that requires scope `S`: 401 without a valid
/// token, 403 when the token lacks the scope.
#[derive(Debug)]
pub struct Caller<S> {
    pub token_id: i64,
    pub token_name: String,
    _scope: PhantomData<S>,
}

impl<S: RequiredScope + 'static> FromRequest for Caller<S> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let presented = presented_token(req);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let key = presented?;
            let state =
                state.ok_or_else(|| anyhow::anyhow!("application state is not registered"))?;
            let hash = hash_token(&key);
            let prefix = key[..PREFIX_LEN].to_string();
            let row = db::run(&state.pool, move |conn| -> Result<_, ApiError> {
                let candidates = tokens::active_by_prefix(conn, &prefix)?;
                let found = candidates
                    .into_iter()
                    .find(|row| bool::from(row.hash.as_bytes().ct_eq(hash.as_bytes())));
                if let Some(row) = &found {
                    tokens::touch(conn, row.id)?;
                }
                Ok(found)
            })
            .await?
            .ok_or_else(|| ApiError::Unauthorized("the API token is not valid".into()))?;
            let allowed = row
                .scopes
                .iter()
                .any(|s| s == S::SCOPE.as_str() || s == Scope::Admin.as_str());
            if !allowed {
                return Err(ApiError::Forbidden(format!(
                    "token {:?} lacks the {} scope this endpoint needs",
                    row.name,
                    S::SCOPE
                )));
            }
            Ok(Caller {
                token_id: row.id,
                token_name: row.name,
                _scope: PhantomData,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_hex_and_hash_to_what_is_stored() {
        let t = generate_token().unwrap();
        assert_eq!(t.secret.len(), 40);
        assert!(t.secret.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(t.prefix, &t.secret[..8]);
        assert_eq!(t.hash, hash_token(&t.secret));
        assert_ne!(generate_token().unwrap().secret, t.secret);
    }

    #[test]
    fn authorization_header_accepts_token_and_bearer_only() {
        let key = "9986ab9b46ee7f5501f554a80b5725337c2c56a6";
        for header in [
            format!("Token {key}"),
            format!("Bearer {key}"),
            format!("token  {key} "),
        ] {
            let req = actix_web::test::TestRequest::default()
                .insert_header(("Authorization", header.as_str()))
                .to_http_request();
            assert_eq!(presented_token(&req).unwrap(), key, "{header}");
        }
        for header in [
            format!("Basic {key}"),
            "Token short".to_string(),
            "Token".to_string(),
        ] {
            let req = actix_web::test::TestRequest::default()
                .insert_header(("Authorization", header.as_str()))
                .to_http_request();
            assert!(presented_token(&req).is_err(), "{header}");
        }
    }
}
