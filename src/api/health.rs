//! Liveness and metrics, open to monitoring without a token.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use diesel::RunQueryDsl;

use crate::app::AppState;
use crate::error::ApiError;

/// How long `/healthz` waits for the database before it says it is down.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /healthz`: 200 after a database round trip, 503 when the database does not answer.
pub async fn healthz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let pool = state.pool.clone();
    let result = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut conn = pool.get_timeout(HEALTH_TIMEOUT)?;
        diesel::sql_query("SELECT 1").execute(&mut conn)?;
        Ok(())
    })
    .await
    .map_err(anyhow::Error::from)?;
    match result {
        Ok(()) => {
            Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ok", "database": "ok"})))
        }
        Err(e) => {
            tracing::warn!(error = %e, "health check: database not reachable");
            Err(ApiError::Unavailable(
                "the database is not reachable".into(),
            ))
        }
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render(&state.pool))
}
