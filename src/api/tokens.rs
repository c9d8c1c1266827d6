//! `GET /api/v1/tokens/`: the API tokens, for administrators (never their secrets).

use actix_web::{web, HttpResponse};

use super::auth::{AdminScope, Caller};
use super::error::ApiError;
use crate::app::AppState;
use crate::db::{self, tokens};

/// The operations of this module, nested under `/api/v1` by the API document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list))]
pub struct Doc;

/// Lists tokens with their scopes and last use.
#[utoipa::path(
    get,
    path = "/tokens/",
    description = "The API tokens with their scopes and last use, never their secrets (scope `admin`).",
    security(("token" = [])),
    responses((status = 200, description = "Every token", body = super::openapi::Results<tokens::TokenRow>)),
)]
pub async fn list(
    _caller: Caller<AdminScope>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let rows = db::run(&state.pool, tokens::list).await?;
    Ok(HttpResponse::Ok().json(super::openapi::Results { results: rows }))
}
