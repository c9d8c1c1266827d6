//! Liveness and metrics, open to monitoring without a token.

use std::time::Duration;

use crate::db;
use actix_web::{web, HttpResponse};

use super::error::ApiError;
use crate::app::AppState;

/// How long `/healthz` waits for the database before it says it is down.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// What the health check found.
enum Found {
    Ok,
    /// Every pooled connection is busy, but the database answers a connection of its own.
    PoolBusy {
        size: u32,
    },
    Down(anyhow::Error),
}

/// What `/healthz` answers when all is well.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok` in a 200.
    #[schema(value_type = String, example = "ok")]
    pub status: &'static str,
    /// Always `ok` in a 200: a query went through the pool.
    #[schema(value_type = String, example = "ok")]
    pub database: &'static str,
}

/// `GET /healthz`: 200 after a database round trip through the pool; 503 when the database
/// does not answer, or (said as such) when it answers but every pooled connection is busy.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "service",
    responses(
        (status = 200, description = "The database answered through the pool", body = Health),
        (status = 503, description = "The database does not answer, or every pooled connection is busy (the message says which)", body = super::error::ErrorBody),
    ),
)]
pub async fn healthz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    probe(&state).await?;
    Ok(HttpResponse::Ok().json(Health {
        status: "ok",
        database: "ok",
    }))
}

/// The health check itself: Ok, or the 503 that says what is wrong.
pub async fn probe(state: &AppState) -> Result<(), ApiError> {
    let pool = state.pool.clone();
    let url = state.database_url.clone();
    // Not `db::run`: the probe needs its own checkout timeout, and when the pool is full a
    // connection of its own, to tell a busy pool from a dead database.
    let found = tokio::task::spawn_blocking(move || {
        let through_pool = pool
            .get_timeout(HEALTH_TIMEOUT)
            .map_err(anyhow::Error::from)
            .and_then(|mut conn| Ok(db::locks::ping(&mut conn)?));
        let Err(e) = through_pool else {
            return Found::Ok;
        };
        let st = pool.state();
        if st.idle_connections == 0 && st.connections >= pool.max_size() {
            // The pool is full: ask the database directly whether it is alive.
            use diesel::Connection;
            let alive = diesel::PgConnection::establish(&url)
                .map_err(anyhow::Error::from)
                .and_then(|mut c| Ok(db::locks::ping(&mut c)?));
            if alive.is_ok() {
                return Found::PoolBusy {
                    size: pool.max_size(),
                };
            }
        }
        Found::Down(e)
    })
    .await
    .map_err(anyhow::Error::from)?;
    match found {
        Found::Ok => Ok(()),
        Found::PoolBusy { size } => {
            tracing::warn!(
                pool_size = size,
                "health check: every pooled connection is busy"
            );
            Err(ApiError::Unavailable(format!(
                "all {size} database connections are busy (the database itself answers); \
                 requests wait for a free one"
            )))
        }
        Found::Down(e) => {
            tracing::warn!(error = %e, "health check: database not reachable");
            Err(ApiError::Unavailable(
                "the database is not reachable".into(),
            ))
        }
    }
}

/// `GET /metrics`: Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "service",
    responses((status = 200, description = "Prometheus text format: requests and latency by route and status, pool usage, ingest counters", content_type = "text/plain", body = String)),
)]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render(&state.pool))
}
