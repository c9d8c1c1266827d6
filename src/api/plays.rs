//! `GET /api/v1/plays/` (scope `read`): what mpv played, keyset paged like the stream events.

use actix_web::{web, HttpRequest, HttpResponse};

use super::auth::{Caller, ReadScope};
use super::error::ApiError;
use super::pagination::{self, PageRequest};
use super::params::Params;
use crate::app::AppState;
use crate::db::mpv::{self as queries, PlayFilter, PlayRow};
use crate::db::{self};
use crate::domain::Key;

/// The operations of this module, nested under `/api/v1` by the API document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list))]
pub struct Doc;

/// Registers the routes under `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/plays/", web::get().to(list));
}

fn flag(s: &str) -> Result<bool, String> {
    match s {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(format!("{s:?} is not true or false")),
    }
}

/// Filters: `item` (path or id), `time_from`, `time_until` (on the start), `listened`,
/// `skipped`, `instance`; paging: `limit`, `cursor`, `offset`.
#[utoipa::path(
    get,
    path = "/plays/",
    description = "What mpv played, by start then id, keyset paged (scope `read`).",
    security(("token" = [])),
    params(
        ("item" = Option<String>, Query, description = "a path or an item id"),
        ("time_from" = Option<String>, Query, description = "start >= this"),
        ("time_until" = Option<String>, Query, description = "start < this"),
        ("listened" = Option<bool>, Query),
        ("skipped" = Option<bool>, Query),
        ("instance" = Option<String>, Query),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 5000, description = "rows per page (default 100)"),
        ("cursor" = Option<String>, Query, description = "a cursor from `next` or `previous`"),
    ),
    responses((status = 200, description = "A page", body = super::pagination::Page<PlayRow>)),
)]
async fn list(
    _c: Caller<ReadScope>,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let mut params = Params::parse(req.query_string())?;
    let filter = PlayFilter {
        item: params.text("item").map(str::to_string),
        time_from: params.time("time_from"),
        time_until: params.time("time_until"),
        listened: params.get("listened", flag),
        skipped: params.get("skipped", flag),
        instance: params.text("instance").map(str::to_string),
    };
    let page = PageRequest::parse(&mut params, 100, 5000);
    params.finish()?;
    page.cursor_only("the plays list")?;
    let request = page.clone();
    let fetched = db::run(&state.pool, move |c| {
        pagination::fetch(
            c,
            &request,
            |c| queries::count_plays(c, &filter),
            |c, key, dir, n| queries::play_page(c, &filter, key, dir, n),
            None,
        )
    })
    .await?;
    Ok(
        HttpResponse::Ok().json(pagination::build(&req, &page, fetched, |r: &PlayRow| Key {
            time: r.start_time,
            id: r.id,
        })),
    )
}
