//! The schedule: `GET|POST /diffusions/`, `GET|PUT /diffusions/{id}`.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use diesel::prelude::*;
use serde::Deserialize;
use serde_json::Value;

use super::invalid;
use crate::api::auth::{AdminScope, Caller, ReadScope};
use crate::api::error::ApiError;
use crate::api::params::Params;
use crate::app::AppState;
use crate::db::playout::{self};
use crate::db::{self};
use crate::domain::playout::DiffusionType;
use crate::domain::time::parse_event_time;
use crate::domain::FieldError;

/// A diffusion to schedule.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct DiffusionIn {
    station: String,
    #[schema(value_type = crate::api::openapi::TimeIn)]
    start: Value,
    #[schema(value_type = crate::api::openapi::TimeIn)]
    end: Value,
    #[serde(default)]
    title: String,
    #[serde(default = "on_air")]
    r#type: String,
    /// Paths of catalogued sounds, in play order.
    sounds: Vec<String>,
}

/// The catalogue ids of sounds given by path, naming each path that is not catalogued.
fn sound_ids(c: &mut PgConnection, paths: &[String]) -> Result<Vec<i64>, ApiError> {
    let mut ids = Vec::new();
    let mut errors = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        match playout::sound_by_path(c, path)? {
            Some(s) => ids.push(s.id),
            None => errors.push(FieldError::new(
                format!("sounds[{i}]"),
                format!("{path:?} is not in the catalogue"),
            )),
        }
    }
    if errors.is_empty() {
        Ok(ids)
    } else {
        Err(invalid(errors))
    }
}

fn on_air() -> String {
    DiffusionType::OnAir.as_str().into()
}

/// A diffusion's `type`, or a problem with it.
fn diffusion_type(name: &str, errors: &mut Vec<FieldError>) -> Option<DiffusionType> {
    let parsed = DiffusionType::parse(name);
    if parsed.is_none() {
        errors.push(FieldError::new(
            "type",
            "must be on_air, unconfirmed or cancel",
        ));
    }
    parsed
}

/// `POST /api/v1/diffusions/`: schedules a diffusion of catalogued sounds.
#[utoipa::path(
    post,
    tag = "playout",
    path = "/diffusions/",
    description = "Schedules a diffusion of catalogued sounds (scope `admin`).",
    security(("token" = [])),
    request_body = DiffusionIn,
    responses((status = 201, description = "Scheduled", body = playout::DiffusionRow)),
)]
pub(super) async fn post_diffusion(
    _c: Caller<AdminScope>,
    state: web::Data<AppState>,
    body: web::Json<DiffusionIn>,
) -> Result<HttpResponse, ApiError> {
    let d = body.into_inner();
    let mut errors = Vec::new();
    let start = parse_event_time(&d.start)
        .map_err(|m| errors.push(FieldError::new("start", m)))
        .ok();
    let end = parse_event_time(&d.end)
        .map_err(|m| errors.push(FieldError::new("end", m)))
        .ok();
    if let (Some(s), Some(e)) = (start, end) {
        if e <= s {
            errors.push(FieldError::new("end", "must be after start"));
        }
    }
    let kind = diffusion_type(&d.r#type, &mut errors);
    if !errors.is_empty() {
        return Err(invalid(errors));
    }
    let (start, end, kind) = (
        start.expect("checked"),
        end.expect("checked"),
        kind.expect("checked"),
    );
    let row = db::run(&state.pool, move |c| -> Result<_, ApiError> {
        let station = playout::station(c, &d.station)?.ok_or_else(|| {
            invalid(vec![FieldError::new(
                "station",
                format!("no station named {:?}", d.station),
            )])
        })?;
        let ids = sound_ids(c, &d.sounds)?;
        Ok(playout::insert_diffusion(
            c, station.id, start, end, &d.title, kind, &ids,
        )?)
    })
    .await?;
    Ok(HttpResponse::Created().json(row))
}

#[utoipa::path(
    get,
    tag = "playout",
    path = "/diffusions/{id}",
    description = "One diffusion (scope `read`).",
    security(("token" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, description = "The diffusion", body = playout::DiffusionRow)),
)]
pub(super) async fn get_diffusion(
    _c: Caller<ReadScope>,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let row = db::run(&state.pool, move |c| playout::diffusion(c, id).optional()).await?;
    row.map(|r| HttpResponse::Ok().json(r))
        .ok_or_else(|| ApiError::NotFound(format!("no diffusion {id}")))
}

/// A diffusion change: every field optional.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct DiffusionChange {
    #[schema(value_type = Option<crate::api::openapi::TimeIn>)]
    start: Option<Value>,
    #[schema(value_type = Option<crate::api::openapi::TimeIn>)]
    end: Option<Value>,
    title: Option<String>,
    r#type: Option<String>,
    sounds: Option<Vec<String>>,
}

/// `PUT /api/v1/diffusions/{id}`: changes the given fields. A diffusion the monitor already
/// started or cancelled keeps that decision (the as-run log does not change).
#[utoipa::path(
    put,
    tag = "playout",
    path = "/diffusions/{id}",
    description = "Changes the given fields of a diffusion; one the monitor already started or cancelled keeps that decision (scope `admin`).",
    security(("token" = [])),
    params(("id" = i64, Path)),
    request_body = DiffusionChange,
    responses((status = 200, description = "Saved", body = playout::DiffusionRow)),
)]
pub(super) async fn put_diffusion(
    _c: Caller<AdminScope>,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    body: web::Json<DiffusionChange>,
) -> Result<HttpResponse, ApiError> {
    let (id, change) = (id.into_inner(), body.into_inner());
    let mut errors = Vec::new();
    let start = change.start.as_ref().and_then(|v| {
        parse_event_time(v)
            .map_err(|m| errors.push(FieldError::new("start", m)))
            .ok()
    });
    let end = change.end.as_ref().and_then(|v| {
        parse_event_time(v)
            .map_err(|m| errors.push(FieldError::new("end", m)))
            .ok()
    });
    let kind = change
        .r#type
        .as_deref()
        .map(|t| diffusion_type(t, &mut errors));
    if !errors.is_empty() {
        return Err(invalid(errors));
    }
    let row = db::run(&state.pool, move |c| -> Result<_, ApiError> {
        let current = playout::diffusion(c, id)
            .optional()?
            .ok_or_else(|| ApiError::NotFound(format!("no diffusion {id}")))?;
        let (start, end) = (start.unwrap_or(current.start), end.unwrap_or(current.end));
        if end <= start {
            return Err(invalid(vec![FieldError::new("end", "must be after start")]));
        }
        let ids = change
            .sounds
            .as_deref()
            .map(|paths| sound_ids(c, paths))
            .transpose()?;
        let title = change.title.unwrap_or(current.title);
        let kind = kind.flatten().unwrap_or(current.r#type);
        Ok(playout::update_diffusion(
            c,
            id,
            start,
            end,
            &title,
            kind,
            ids.as_deref(),
        )?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(row))
}

#[utoipa::path(
    get,
    tag = "playout",
    path = "/diffusions/",
    description = "A station's diffusions between two times (scope `read`).",
    security(("token" = [])),
    params(
        ("station" = String, Query, description = "the station's name"),
        ("from" = Option<String>, Query, description = "default: a day ago"),
        ("until" = Option<String>, Query, description = "default: 8 days after `from`"),
    ),
    responses((status = 200, description = "The diffusions", body = crate::api::openapi::Results<playout::DiffusionRow>)),
)]
pub(super) async fn list_diffusions(
    _c: Caller<ReadScope>,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let mut params = Params::parse(req.query_string())?;
    let station = params.text("station").map(str::to_string);
    let from = params
        .time("from")
        .unwrap_or_else(|| Utc::now() - chrono::Duration::days(1));
    let until = params
        .time("until")
        .unwrap_or_else(|| from + chrono::Duration::days(8));
    if station.is_none() {
        params.problem("station", "is required");
    }
    params.finish()?;
    let station = station.expect("checked");
    let rows = db::run(&state.pool, move |c| -> Result<_, ApiError> {
        let s = playout::station(c, &station)?
            .ok_or_else(|| ApiError::NotFound(format!("no station named {station:?}")))?;
        Ok(playout::diffusions(c, s.id, from, until)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(crate::api::openapi::Results { results: rows }))
}
