//! Ratings and item history: `POST /api/v1/ratings/`, `DELETE /api/v1/ratings/last` (scope
//! `ingest`), `GET /api/v1/items/{id}/history` (scope `read`).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::auth::{Caller, IngestScope, ReadScope};
use super::error::ApiError;
use super::params::Params;
use crate::api::AppState;
use crate::db::items::{self as queries, HistoryEntry, ItemRow, NewRating};
use crate::db::{self};
use crate::domain::FieldError;

/// The operations of this module, nested under `/api/v1` by the API document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(rate, undo_last, history))]
pub struct Doc;

/// Registers the routes under `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/ratings/", web::post().to(rate))
        .route("/ratings/last", web::delete().to(undo_last))
        .route("/items/{id}/history", web::get().to(history));
}

/// A rating or a tag (or both) of an item, or of what plays now.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RatingIn {
    /// 1 to 5.
    rating: Option<i16>,
    /// A tag, at most 100 characters.
    tag: Option<String>,
    /// The item; without it, what is on air now on `instance` (or `station`).
    item: Option<i64>,
    /// The mpv instance whose current item is rated.
    instance: Option<String>,
    /// The station whose on-air sound is rated.
    station: Option<String>,
}

/// A stored rating.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct RatingOut {
    id: i64,
    item: i64,
    #[schema(required)]
    rating: Option<i16>,
    #[schema(required)]
    tag: Option<String>,
    /// Seconds into the item when it was rated as what plays now; null when `item` was given.
    #[schema(required)]
    position_s: Option<f64>,
}

/// `POST /api/v1/ratings/`: `{rating 1-5, tag?}` for `item`, or for what plays now.
#[utoipa::path(
    post,
    path = "/ratings/",
    description = "Rates or tags an item, or what plays now (scope `ingest`).",
    security(("token" = [])),
    request_body = RatingIn,
    responses((status = 201, description = "Stored", body = RatingOut)),
)]
async fn rate(
    caller: Caller<IngestScope>,
    state: web::Data<AppState>,
    body: web::Json<RatingIn>,
) -> Result<HttpResponse, ApiError> {
    let r = body.into_inner();
    let mut errors = Vec::new();
    if r.rating.is_some_and(|v| !(1..=5).contains(&v)) {
        errors.push(FieldError::new("rating", "must be 1 to 5"));
    }
    let tag = r
        .tag
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    if tag.as_ref().is_some_and(|t| t.len() > 100) {
        errors.push(FieldError::new("tag", "must be at most 100 characters"));
    }
    if r.rating.is_none() && tag.is_none() {
        errors.push(FieldError::new("rating", "a rating or a tag is required"));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation("invalid rating", errors));
    }
    let token = caller.token_id;
    let row = db::run(&state.pool, move |c| -> Result<RatingOut, ApiError> {
        let (item, position, instance) = match r.item {
            Some(id) => (id, None, String::new()),
            None => {
                // What plays now: the latest path an mpv instance reported (or the station's
                // latest on-air sound), and how far into it.
                let now = match &r.station {
                    Some(station) => queries::playing_on_station(c, station)?,
                    None => queries::playing_on_mpv(c, r.instance.as_deref())?,
                };
                let now = now.ok_or_else(|| {
                    ApiError::NotFound("nothing is playing to rate; give `item`".into())
                })?;
                let is_stream = now.path.contains("://");
                let hash = if is_stream {
                    None
                } else {
                    crate::monitor::mpv::history::content_hash(std::path::Path::new(&now.path))
                };
                let id = crate::db::mpv::item_for(c, &now.path, is_stream, "", hash.as_deref())?;
                (id, Some(now.position_s), now.instance)
            }
        };
        let id = queries::insert_rating(
            c,
            &NewRating {
                item_id: item,
                rating: r.rating,
                tag: tag.as_deref(),
                position_s: position,
                instance: &instance,
                token_id: token,
            },
        )?
        .ok_or_else(|| ApiError::NotFound(format!("no item {item}")))?;
        Ok(RatingOut {
            id,
            item,
            rating: r.rating,
            tag,
            position_s: position,
        })
    })
    .await?;
    Ok(HttpResponse::Created().json(row))
}

/// `DELETE /api/v1/ratings/last`: removes the caller's latest rating or tag.
#[utoipa::path(
    delete,
    path = "/ratings/last",
    description = "Removes the caller's latest rating or tag (scope `ingest`).",
    security(("token" = [])),
    responses((status = 204, description = "Removed")),
)]
async fn undo_last(
    caller: Caller<IngestScope>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let token = caller.token_id;
    let n = db::run(&state.pool, move |c| queries::delete_last_rating(c, token)).await?;
    if n == 0 {
        return Err(ApiError::NotFound(
            "this token has no rating to undo".into(),
        ));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// An item and its history, newest first.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct History {
    item: ItemRow,
    results: Vec<HistoryEntry>,
}

/// `GET /api/v1/items/{id}/history?type=play|rate|tag|all&limit=N`: newest first.
#[utoipa::path(
    get,
    path = "/items/{id}/history",
    description = "Plays, ratings and tags of one item, newest first (scope `read`).",
    security(("token" = [])),
    params(
        ("id" = i64, Path, description = "the item's id"),
        ("type" = Option<String>, Query, description = "`play`, `rate`, `tag` or `all` (default)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "default 100"),
    ),
    responses((status = 200, description = "The item and its history", body = History)),
)]
async fn history(
    _c: Caller<ReadScope>,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let mut params = Params::parse(req.query_string())?;
    let kind = params
        .get("type", |s| match s {
            "play" | "rate" | "tag" | "all" => Ok(s.to_string()),
            _ => Err(format!("{s:?} is not one of play, rate, tag, all")),
        })
        .unwrap_or_else(|| "all".into());
    let limit = params.int("limit", 1..=1000).unwrap_or(100);
    params.finish()?;
    let id = id.into_inner();
    let body = db::run(&state.pool, move |c| -> Result<History, ApiError> {
        let item =
            queries::item(c, id)?.ok_or_else(|| ApiError::NotFound(format!("no item {id}")))?;
        let entries = queries::history(c, id, &kind, limit)?;
        Ok(History {
            item,
            results: entries,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}
