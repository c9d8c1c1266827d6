//! The HTTP API: one `configure` registers every route.

mod audience;
pub mod auth;
pub mod boundary;
pub mod error;
pub mod export;
pub mod health;
mod items;
mod jobs;
pub mod media_servers;
pub mod metrics;
pub mod openapi;
pub mod pagination;
pub mod params;
mod player_events;
pub(crate) mod playout;
mod plays;
pub mod ratelimit;
mod reports;
mod state;
mod stream_events;
mod tokens;
mod webhooks;

pub use state::AppState;

use actix_web::{error::JsonPayloadError, web, HttpRequest};

use error::ApiError;

/// Registers every route of the API.
pub fn configure(cfg: &mut web::ServiceConfig, settings: &crate::config::Settings) {
    let max_body_bytes = settings.server.max_body_bytes;
    cfg.app_data(json_config(max_body_bytes))
        .app_data(web::PayloadConfig::new(max_body_bytes))
        .app_data(web::QueryConfig::default().error_handler(|err, _| {
            ApiError::BadRequest(format!("invalid query string: {err}")).into()
        }))
        // A path segment that is not what the route needs (an id that is not a number) names
        // no existing resource.
        .app_data(web::PathConfig::default().error_handler(|err, req| {
            ApiError::NotFound(format!("no such resource: {}: {err}", req.path())).into()
        }))
        .route("/healthz", web::get().to(health::healthz))
        .route("/metrics", web::get().to(health::metrics))
        .service(
            web::scope("/api/v1")
                .route("/openapi.json", web::get().to(openapi::openapi_json))
                .route("/docs", web::get().to(openapi::docs_page))
                .route("/tokens/", web::get().to(tokens::list))
                .configure(stream_events::configure)
                .configure(audience::configure)
                .configure(reports::configure)
                .configure(|c| player_events::configure(c, &settings.player))
                .configure(jobs::configure)
                .configure(playout::configure)
                .configure(plays::configure)
                .configure(items::configure)
                .configure(webhooks::configure)
                .configure(media_servers::configure),
        )
        .default_service(web::to(not_found));
}

/// JSON bodies: size cap and errors in the API's error shape.
fn json_config(limit: usize) -> web::JsonConfig {
    // Log shippers are not always careful with Content-Type; the body is parsed as JSON anyway.
    web::JsonConfig::default()
        .limit(limit)
        .content_type_required(false)
        .error_handler(move |err, _req| json_error(err, limit).into())
}

/// Explains why a JSON body was refused, naming the line and column serde stopped at.
pub fn json_error(err: JsonPayloadError, limit: usize) -> ApiError {
    match err {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            ApiError::PayloadTooLarge(format!(
                "the request body is larger than the {limit} bytes accepted"
            ))
        }
        JsonPayloadError::ContentType => ApiError::BadRequest(
            "the request body must be JSON (Content-Type: application/json)".into(),
        ),
        JsonPayloadError::Deserialize(e) => {
            ApiError::BadRequest(format!("the request body is not valid: {e}"))
        }
        other => ApiError::BadRequest(format!("the request body could not be read: {other}")),
    }
}

async fn not_found(req: HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "no such endpoint: {} {}",
        req.method(),
        req.path()
    )))
}
