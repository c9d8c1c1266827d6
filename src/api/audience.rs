//! Audience figures (`GET /api/v1/audience/`, `.csv`) and what they are computed over: a
//! station's streams and dayparts (`/api/v1/stations/{name}/streams`, `/dayparts`).

use std::collections::BTreeMap;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::auth::{AdminScope, Caller, ReadScope};
use super::error::ApiError;
use super::params::Params;
use super::AppState;
use crate::audience::period::Daypart;
use crate::audience::StreamKind;
use crate::db;
use crate::db::audience::{DaypartRow, StreamRow};
use crate::reports::audience::{self as report, Asked, Query, Report};

/// The operations of this module, nested under `/api/v1` by the API document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    figures_json,
    figures_csv,
    get_streams,
    put_streams,
    get_dayparts,
    put_dayparts
))]
pub struct Doc;

/// Registers the routes under `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/audience/", web::get().to(figures_json))
        .route("/audience.csv", web::get().to(figures_csv))
        .route("/stations/{name}/streams", web::get().to(get_streams))
        .route("/stations/{name}/streams", web::put().to(put_streams))
        .route("/stations/{name}/dayparts", web::get().to(get_dayparts))
        .route("/stations/{name}/dayparts", web::put().to(put_dayparts));
}

/// Reads the request's parameters and checks them against the station.
async fn query(state: &AppState, req: &HttpRequest) -> Result<Query, ApiError> {
    let params = Params::parse(req.query_string())?;
    let text = |n: &str| params.text(n).map(str::to_string);
    let asked = Asked {
        station: text("station"),
        from: text("from"),
        until: text("until"),
        interval: text("interval"),
        daypart: text("daypart"),
        by: text("by"),
    };
    params.finish()?;
    let settings = state.settings.clone();
    let checked = db::run(&state.pool, move |conn| -> Result<_, ApiError> {
        Ok(report::check(conn, &settings, &asked)?)
    })
    .await?;
    checked.map_err(ApiError::invalid_params)
}

/// Computes the report on the blocking pool (it loads and walks every session of the period).
async fn compute(state: &AppState, q: Query) -> Result<Report, ApiError> {
    let settings = state.settings.clone();
    db::run(&state.pool, move |conn| -> Result<_, ApiError> {
        Ok(report::compute(conn, &settings, q)?)
    })
    .await
}

/// The query parameters of both forms of the report (documentation only: they are read by
/// `query`, which names every problem).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct AudienceParams {
    /// A station's name; every station when absent.
    station: Option<String>,
    /// An RFC 3339 instant, or YYYY-MM-DD (local midnight).
    from: String,
    /// An RFC 3339 instant, or YYYY-MM-DD (local midnight); exclusive.
    until: String,
    /// quarter_hour, hour, day (default), week, month or total.
    interval: Option<String>,
    /// A station daypart's name, or a spec such as `mon-fri 06:00-10:00`.
    daypart: Option<String>,
    /// stream, source or station: a row per group after each total row.
    by: Option<String>,
}

/// Audience figures of a station (or every station) over a period, per interval.
#[utoipa::path(
    get,
    path = "/audience/",
    description = "Audience figures (AQH, Cume, TLH, TSL, AAS, peak, sessions) per interval, in the station's time zone (scope `read`). See the README for every definition.",
    security(("token" = [])),
    params(AudienceParams),
    responses((status = 200, description = "The figures", body = Report)),
)]
async fn figures_json(
    _caller: Caller<ReadScope>,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let q = query(&state, &req).await?;
    Ok(HttpResponse::Ok().json(compute(&state, q).await?))
}

/// The same figures as CSV, one line per row.
#[utoipa::path(
    get,
    path = "/audience.csv",
    description = "The figures of `GET /audience/` as CSV (scope `read`).",
    security(("token" = [])),
    params(AudienceParams),
    responses((status = 200, description = "CSV with a header line", content_type = "text/csv")),
)]
async fn figures_csv(
    _caller: Caller<ReadScope>,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let q = query(&state, &req).await?;
    let report = compute(&state, q).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .body(report::to_csv(&report)))
}

/// Runs `work` on the station named `name` (404 when there is none), in one visit to the pool.
async fn on_station<T: Send + 'static>(
    state: &AppState,
    name: String,
    work: impl FnOnce(&mut diesel::PgConnection, i64) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    db::run(&state.pool, move |conn| -> Result<T, ApiError> {
        let Some(station) = db::playout::station(conn, &name)? else {
            return Err(ApiError::NotFound("no such station".into()));
        };
        work(conn, station.id)
    })
    .await
}

/// Dayparts as the API shows them: name -> spec.
fn daypart_map(rows: Vec<DaypartRow>) -> BTreeMap<String, String> {
    rows.into_iter().map(|d| (d.name, d.spec)).collect()
}

/// A station's streams.
#[utoipa::path(
    get,
    path = "/stations/{name}/streams",
    description = "The streams a station's audience is counted on (scope `read`).",
    security(("token" = [])),
    params(("name" = String, Path, description = "the station's name")),
    responses((status = 200, description = "Its streams", body = Vec<StreamBody>)),
)]
async fn get_streams(
    _caller: Caller<ReadScope>,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let rows = on_station(&state, name.into_inner(), |conn, id| {
        Ok(db::audience::streams(conn, id)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(rows))
}

/// One stream as the API reads and writes it.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamBody {
    /// icecast (a mount path), hls (a path prefix) or player (a source: live, on-demand, news).
    pub kind: String,
    pub pattern: String,
}

/// Replaces a station's streams.
#[utoipa::path(
    put,
    path = "/stations/{name}/streams",
    description = "Replaces the streams a station's audience is counted on (scope `admin`). A stream belongs to one station.",
    security(("token" = [])),
    params(("name" = String, Path, description = "the station's name")),
    request_body = Vec<StreamBody>,
    responses((status = 200, description = "Its streams now", body = Vec<StreamBody>)),
)]
async fn put_streams(
    _caller: Caller<AdminScope>,
    state: web::Data<AppState>,
    name: web::Path<String>,
    body: web::Json<Vec<StreamBody>>,
) -> Result<HttpResponse, ApiError> {
    let mut problems = Vec::new();
    let mut rows = Vec::new();
    for (i, s) in body.into_inner().into_iter().enumerate() {
        let kind = match s.kind.parse::<StreamKind>() {
            Ok(k) => k,
            Err(e) => {
                problems.push(crate::domain::FieldError::at(i, "kind", e));
                continue;
            }
        };
        let pattern = s.pattern.trim().to_string();
        let problem = match kind {
            _ if pattern.is_empty() || pattern.len() > 512 => {
                Some("must be 1 to 512 characters".to_string())
            }
            StreamKind::Icecast | StreamKind::Hls if !pattern.starts_with('/') => {
                Some("a mount or path prefix starts with /".into())
            }
            StreamKind::Icecast if pattern.contains('?') => {
                Some("a mount has no query string".into())
            }
            StreamKind::Player if !["live", "on-demand", "news"].contains(&pattern.as_str()) => {
                Some("a player source is live, on-demand or news".into())
            }
            _ => None,
        };
        match problem {
            Some(p) => problems.push(crate::domain::FieldError::at(i, "pattern", p)),
            None => rows.push(StreamRow {
                kind: kind.as_str().to_string(),
                pattern,
            }),
        }
    }
    let mut seen = std::collections::HashSet::new();
    for (i, r) in rows.iter().enumerate() {
        if !seen.insert((r.kind.clone(), r.pattern.clone())) {
            problems.push(crate::domain::FieldError::at(i, "pattern", "listed twice"));
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::validation(
            "invalid streams; nothing was changed",
            problems,
        ));
    }
    let stored = on_station(&state, name.into_inner(), move |conn, id| {
        match db::audience::set_streams(conn, id, &rows) {
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => {
                return Err(ApiError::Conflict(
                    "a stream in the list belongs to another station".into(),
                ))
            }
            other => other?,
        }
        Ok(db::audience::streams(conn, id)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(stored))
}

/// A station's dayparts.
#[utoipa::path(
    get,
    path = "/stations/{name}/dayparts",
    description = "A station's named dayparts (scope `read`).",
    security(("token" = [])),
    params(("name" = String, Path, description = "the station's name")),
    responses((status = 200, description = "name -> spec", body = BTreeMap<String, String>)),
)]
async fn get_dayparts(
    _caller: Caller<ReadScope>,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let rows = on_station(&state, name.into_inner(), |conn, id| {
        Ok(db::audience::dayparts(conn, id)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(daypart_map(rows)))
}

/// Replaces a station's dayparts.
#[utoipa::path(
    put,
    path = "/stations/{name}/dayparts",
    description = "Replaces a station's named dayparts, e.g. `{\"morning\": \"mon-fri 06:00-10:00\"}` (scope `admin`).",
    security(("token" = [])),
    params(("name" = String, Path, description = "the station's name")),
    request_body = BTreeMap<String, String>,
    responses((status = 200, description = "Its dayparts now", body = BTreeMap<String, String>)),
)]
async fn put_dayparts(
    _caller: Caller<AdminScope>,
    state: web::Data<AppState>,
    name: web::Path<String>,
    body: web::Json<BTreeMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let mut problems = Vec::new();
    let mut rows = Vec::new();
    let name_ok = |n: &str| {
        let b = n.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-')
    };
    for (n, spec) in body.into_inner() {
        if !name_ok(&n) {
            problems.push(crate::domain::FieldError::new(
                n.clone(),
                "a daypart name is 1-63 of a-z, 0-9, _ and -, starting with a letter or digit",
            ));
            continue;
        }
        if spec.len() > 1000 {
            problems.push(crate::domain::FieldError::new(
                n.clone(),
                "longer than 1000 characters",
            ));
            continue;
        }
        match spec.parse::<Daypart>() {
            Ok(_) => rows.push(DaypartRow { name: n, spec }),
            Err(e) => problems.push(crate::domain::FieldError::new(n.clone(), e)),
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::validation(
            "invalid dayparts; nothing was changed",
            problems,
        ));
    }
    let stored = on_station(&state, name.into_inner(), move |conn, id| {
        db::audience::set_dayparts(conn, id, &rows)?;
        Ok(db::audience::dayparts(conn, id)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(daypart_map(stored)))
}
