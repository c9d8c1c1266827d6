//! `GET /api/v1/jobs/` (the job audit trail) and `POST /api/v1/jobs/{name}/run` (scope `admin`).

use actix_web::{web, HttpRequest, HttpResponse};

use super::auth::{AdminScope, Caller};
use super::error::ApiError;
use super::params::Params;
use crate::api::AppState;
use crate::db;
use crate::jobs::{self, Named, Trigger, Window};

/// The operations of this module, nested under `/api/v1` by the API document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, run))]
pub struct Doc;

/// Registers the routes under `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/jobs/", web::get().to(list))
        .route("/jobs/{name}/run", web::post().to(run));
}

/// The newest runs (`limit`, default 100; `name` narrows to one job).
#[utoipa::path(
    get,
    path = "/jobs/",
    description = "The newest job runs, the audit trail (scope `admin`).",
    security(("token" = [])),
    params(
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "default 100"),
        ("name" = Option<String>, Query, description = "only this job's runs"),
    ),
    responses((status = 200, description = "Runs, newest first", body = super::openapi::Results<jobs::JobRun>)),
)]
async fn list(
    _caller: Caller<AdminScope>,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let mut params = Params::parse(req.query_string())?;
    let limit = params.int("limit", 1..=1000).unwrap_or(100);
    let name = params.get("name", |s| match s.parse::<Named>()? {
        Named::One(job) => Ok(job.name().to_string()),
        Named::Audience => Ok(jobs::audience::NAME.to_string()),
        Named::All => Err("`all` is not one job's name".to_string()),
    });
    params.finish()?;
    let runs = db::run(&state.pool, move |conn| {
        jobs::recent_runs(conn, name.as_deref(), limit)
    })
    .await?;
    Ok(HttpResponse::Ok().json(super::openapi::Results { results: runs }))
}

/// Runs one job now over the look-back window (`all` runs every job in order).
#[utoipa::path(
    post,
    path = "/jobs/{name}/run",
    description = "Runs one job (or `all`, every job in order) now over the look-back window (scope `admin`); `audience` brings the audience rollups up to date.",
    security(("token" = [])),
    params(("name" = String, Path, description = "a job's name, or `all`")),
    responses((status = 200, description = "What each run did", body = super::openapi::Results<jobs::Outcome>)),
)]
async fn run(
    _caller: Caller<AdminScope>,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let named: Named = name.parse().map_err(ApiError::NotFound)?;
    let settings = state.settings.clone();
    let outcomes = db::run(
        &state.pool,
        move |conn| -> Result<Vec<jobs::Outcome>, ApiError> {
            let now = chrono::Utc::now();
            let window = Window::lookback(now, &settings.jobs);
            jobs::run_named(conn, named, window, now, &settings, Trigger::Api)
                .map_err(ApiError::Internal)
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(super::openapi::Results { results: outcomes }))
}
