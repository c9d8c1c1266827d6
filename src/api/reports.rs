//! Royalty and regulator reports (`GET /api/v1/reports/{kind}`), and the audience of items on
//! air (`GET /api/v1/onair/{id}/audience`).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use super::auth::{Caller, ReadScope};
use super::error::ApiError;
use super::params::Params;
use super::AppState;
use crate::db;
use crate::reports::request::{self, Asked, Kind};

/// The operations of this module, nested under `/api/v1` by the API document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(report, item_audience))]
pub struct Doc;

/// Registers the routes under `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/reports/{kind}", web::get().to(report))
        .route("/onair/{id}/audience", web::get().to(item_audience));
}

/// The query parameters of a report (documentation only: `report` reads them and names every
/// problem).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct ReportParams {
    /// The station's name.
    station: String,
    /// A local month, `YYYY-MM` (or give `from` and `until`).
    month: Option<String>,
    /// An RFC 3339 instant, or YYYY-MM-DD (local midnight).
    from: Option<String>,
    /// An RFC 3339 instant, or YYYY-MM-DD (local midnight); exclusive.
    until: Option<String>,
    /// `programme-log`: csv (default) or html; `coverage`: csv (default) or json.
    format: Option<String>,
}

/// A report as a file, with the rules it used in `X-Airlog-Report-Rules`.
#[utoipa::path(
    get,
    path = "/reports/{kind}",
    description = "A royalty or regulator report over a period, as a file (scope `read`): `soundexchange` (census Report of Use), `music` (one line per play), `programme-log` (every as-run entry; csv or html), `coverage` (recordings aired without ISRC or label; csv or json). The same period gives the same bytes; the rules used are in the `X-Airlog-Report-Rules` header. See the README.",
    security(("token" = [])),
    params(("kind" = String, Path, description = "soundexchange, music, programme-log or coverage"), ReportParams),
    responses(
        (status = 200, description = "The report file", content(
            (String = "text/plain"),
            (String = "text/csv"),
            (String = "text/html"),
            (String = "application/json"),
        )),
        (status = 404, description = "No such report"),
    ),
)]
async fn report(
    _caller: Caller<ReadScope>,
    state: web::Data<AppState>,
    kind: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let kind: Kind = kind.parse().map_err(ApiError::NotFound)?;
    let params = Params::parse(req.query_string())?;
    let text = |n: &str| params.text(n).map(str::to_string);
    let asked = Asked {
        station: text("station"),
        month: text("month"),
        from: text("from"),
        until: text("until"),
        format: text("format"),
    };
    params.finish()?;
    let settings = state.settings.clone();
    let out = db::run(&state.pool, move |conn| -> Result<_, ApiError> {
        let req = request::check(conn, kind, &asked)?.map_err(ApiError::invalid_params)?;
        request::make(conn, &settings, &req, &mut |_| {}).map_err(ApiError::Internal)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type(out.content_type)
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{}\"", out.file_name),
        ))
        .insert_header(("X-Airlog-Report-Rules", header_text(&out.rules)))
        .body(out.body))
}

/// A header value: ASCII, one line.
fn header_text(s: &str) -> String {
    crate::reports::music::ascii(s).replace(['\r', '\n'], " ")
}

/// The audience of one item on air.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ItemAudienceOut {
    pub log_id: i64,
    pub start: String,
    pub end: String,
    pub listeners_at_start: i64,
    /// Distinct listeners who heard at least `audience.min_performance_s` of it.
    pub performances: i64,
    /// TLH / the item's length in hours.
    pub average_audience: f64,
    pub tlh_hours: f64,
    /// `stored` (kept by the audience job) or `computed` (now, from the sessions: the job had
    /// not reached it, or listening arrived since).
    pub computed_from: String,
}

impl ItemAudienceOut {
    pub fn of(a: &crate::audience::items::ItemAudience, from: &str) -> ItemAudienceOut {
        ItemAudienceOut {
            log_id: a.log_id,
            start: a.span.start.to_rfc3339(),
            end: a.span.end.to_rfc3339(),
            listeners_at_start: a.listeners_at_start,
            performances: a.performances,
            average_audience: (a.average_audience() * 1e4).round() / 1e4,
            tlh_hours: (a.tlh_hours() * 1e4).round() / 1e4,
            computed_from: from.to_string(),
        }
    }
}

/// The audience of an as-run entry (an ON_AIR sound or a TRACK).
#[utoipa::path(
    get,
    tag = "playout",
    path = "/onair/{id}/audience",
    description = "The audience of an as-run entry: listeners at its start, performances (distinct listeners who heard it), average audience and TLH (scope `read`).",
    security(("token" = [])),
    params(("id" = i64, Path, description = "the as-run log entry")),
    responses(
        (status = 200, description = "Its audience", body = ItemAudienceOut),
        (status = 404, description = "No such entry, or not a sound or track"),
    ),
)]
async fn item_audience(
    _caller: Caller<ReadScope>,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let settings = state.settings.clone();
    let out = db::run(&state.pool, move |conn| -> Result<_, ApiError> {
        crate::jobs::audience::one_item(conn, &settings, id).map_err(ApiError::Internal)
    })
    .await?;
    match out {
        Some((a, from)) => Ok(HttpResponse::Ok().json(ItemAudienceOut::of(&a, from))),
        None => Err(ApiError::NotFound(format!(
            "no sound or track on air with id {id}"
        ))),
    }
}
