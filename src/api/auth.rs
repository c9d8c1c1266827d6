//! The extractor that guards endpoints: `Caller<S>` is an API token with scope `S`.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use actix_web::{web, FromRequest, HttpRequest};

use super::error::ApiError;
use crate::api::AppState;
use crate::auth::{Scope, TOKEN_BYTES};
use crate::db::{self, tokens};

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
    well_formed(key)
}

/// The key, if it has the shape of an API token.
fn well_formed(key: &str) -> Result<String, ApiError> {
    let key = key.trim();
    if key.len() != TOKEN_BYTES * 2 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::Unauthorized("the API token is not valid".into()));
    }
    Ok(key.to_ascii_lowercase())
}

/// The caller of a key presented another way than the Authorization header (in the path, for
/// media servers that cannot set headers), checked as the header's key is.
pub async fn caller_from_key<S: RequiredScope + 'static>(
    req: &HttpRequest,
    key: &str,
) -> Result<Caller<S>, ApiError> {
    verify(
        req.app_data::<web::Data<AppState>>().cloned(),
        well_formed(key),
    )
    .await
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
        Box::pin(verify(
            req.app_data::<web::Data<AppState>>().cloned(),
            presented_token(req),
        ))
    }
}

/// The caller a presented key belongs to, if the key is valid and has the scope `S`.
async fn verify<S: RequiredScope>(
    state: Option<web::Data<AppState>>,
    presented: Result<String, ApiError>,
) -> Result<Caller<S>, ApiError> {
    let key = presented?;
    let state = state.ok_or_else(|| anyhow::anyhow!("application state is not registered"))?;
    let row = db::run(&state.pool, move |conn| tokens::verify(conn, &key))
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
