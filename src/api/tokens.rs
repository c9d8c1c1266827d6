//! `GET /api/v1/tokens/`: the API tokens, for administrators (never their secrets).

use actix_web::{web, HttpResponse};

use crate::app::AppState;
use crate::auth::{AdminScope, Caller};
use crate::db::{self, tokens};
use crate::error::ApiError;

/// Lists tokens with their scopes and last use.
pub async fn list(
    _caller: Caller<AdminScope>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let rows = db::run(&state.pool, |conn| {
        tokens::list(conn).map_err(ApiError::from)
    })
    .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "results": rows })))
}
