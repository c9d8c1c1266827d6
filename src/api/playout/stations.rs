//! Stations: `GET|POST /stations/`, `GET|PUT /stations/{name}`.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::invalid;
use crate::api::auth::{AdminScope, Caller, ReadScope};
use crate::api::error::ApiError;
use crate::app::AppState;
use crate::db::playout::{self, StationRow};
use crate::db::{self};
use crate::domain::playout::Streamer;
use crate::domain::FieldError;

/// A station as posted: every field but `name` optional.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct StationIn {
    name: Option<String>,
    time_zone: Option<String>,
    streamer: Option<String>,
    endpoint: Option<String>,
    queue_id: Option<String>,
    output_id: Option<String>,
    playlist_dir: Option<String>,
    poll_ms: Option<i32>,
    cancel_timeout_s: Option<i32>,
}

fn merge_station(base: StationRow, s: StationIn) -> Result<StationRow, ApiError> {
    let mut errors = Vec::new();
    let streamer = match s.streamer {
        None => Some(base.streamer),
        Some(name) => {
            let parsed = Streamer::parse(&name);
            if parsed.is_none() {
                errors.push(FieldError::new("streamer", "must be liquidsoap or none"));
            }
            parsed
        }
    };
    let row = StationRow {
        id: base.id,
        name: s.name.unwrap_or(base.name),
        time_zone: s.time_zone.unwrap_or(base.time_zone),
        streamer: streamer.unwrap_or(base.streamer),
        endpoint: s.endpoint.unwrap_or(base.endpoint),
        queue_id: s.queue_id.unwrap_or(base.queue_id),
        output_id: s.output_id.unwrap_or(base.output_id),
        playlist_dir: s.playlist_dir.unwrap_or(base.playlist_dir),
        poll_ms: s.poll_ms.unwrap_or(base.poll_ms),
        cancel_timeout_s: s.cancel_timeout_s.unwrap_or(base.cancel_timeout_s),
    };
    let name_ok = !row.name.is_empty()
        && row.name.len() <= 63
        && row
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !name_ok {
        errors.push(FieldError::new(
            "name",
            "must be 1 to 63 lowercase letters, digits, - or _",
        ));
    }
    if row.time_zone.parse::<chrono_tz::Tz>().is_err() {
        errors.push(FieldError::new(
            "time_zone",
            format!("{:?} is not an IANA time zone", row.time_zone),
        ));
    }
    if streamer == Some(Streamer::Liquidsoap) {
        if let Err(e) = row
            .endpoint
            .parse::<crate::monitor::liquidsoap::client::Endpoint>()
        {
            errors.push(FieldError::new("endpoint", e));
        }
    }
    if !(100..=60_000).contains(&row.poll_ms) {
        errors.push(FieldError::new("poll_ms", "must be 100 to 60000"));
    }
    if row.cancel_timeout_s < 1 {
        errors.push(FieldError::new("cancel_timeout_s", "must be at least 1"));
    }
    if errors.is_empty() {
        Ok(row)
    } else {
        Err(invalid(errors))
    }
}

fn default_station() -> StationRow {
    StationRow {
        id: 0,
        name: String::new(),
        time_zone: "UTC".into(),
        streamer: Streamer::Liquidsoap,
        endpoint: String::new(),
        queue_id: "airlog_queue".into(),
        output_id: "airlog_out".into(),
        playlist_dir: String::new(),
        poll_ms: 1000,
        cancel_timeout_s: 1200,
    }
}

#[utoipa::path(
    get,
    tag = "playout",
    path = "/stations/",
    description = "Every station (scope `read`).",
    security(("token" = [])),
    responses((status = 200, description = "The stations", body = crate::api::openapi::Results<StationRow>)),
)]
pub(super) async fn list_stations(
    _c: Caller<ReadScope>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let rows = db::run(&state.pool, playout::stations).await?;
    Ok(HttpResponse::Ok().json(crate::api::openapi::Results { results: rows }))
}

#[utoipa::path(
    get,
    tag = "playout",
    path = "/stations/{name}",
    description = "One station (scope `read`).",
    security(("token" = [])),
    params(("name" = String, Path)),
    responses((status = 200, description = "The station", body = StationRow)),
)]
pub(super) async fn get_station(
    _c: Caller<ReadScope>,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    let row = db::run(&state.pool, move |c| playout::station(c, &name)).await?;
    row.map(|r| HttpResponse::Ok().json(r))
        .ok_or_else(|| ApiError::NotFound("no such station".into()))
}

/// `POST /api/v1/stations/`: creates a station (201), or updates the one with that name (200).
#[utoipa::path(
    post,
    tag = "playout",
    path = "/stations/",
    description = "Creates a station, or updates the one with that name (scope `admin`).",
    security(("token" = [])),
    request_body = StationIn,
    responses(
        (status = 201, description = "Created", body = StationRow),
        (status = 200, description = "Updated", body = StationRow),
    ),
)]
pub(super) async fn put_station(
    _c: Caller<AdminScope>,
    state: web::Data<AppState>,
    body: web::Json<StationIn>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let name = body.name.clone().unwrap_or_default();
    let (row, created) = save_station(state, name, body).await?;
    Ok(if created {
        HttpResponse::Created().json(row)
    } else {
        HttpResponse::Ok().json(row)
    })
}

/// `PUT /api/v1/stations/{name}`: updates the given fields of a station (creating it if new).
#[utoipa::path(
    put,
    tag = "playout",
    path = "/stations/{name}",
    description = "Updates the given fields of a station, creating it if new (scope `admin`).",
    security(("token" = [])),
    params(("name" = String, Path)),
    request_body = StationIn,
    responses((status = 200, description = "Saved", body = StationRow)),
)]
pub(super) async fn put_station_named(
    _c: Caller<AdminScope>,
    state: web::Data<AppState>,
    name: web::Path<String>,
    body: web::Json<StationIn>,
) -> Result<HttpResponse, ApiError> {
    let mut body = body.into_inner();
    body.name = Some(name.clone());
    let (row, _) = save_station(state, name.into_inner(), body).await?;
    Ok(HttpResponse::Ok().json(row))
}

/// Saves a station; true when it was new.
async fn save_station(
    state: web::Data<AppState>,
    name: String,
    body: StationIn,
) -> Result<(StationRow, bool), ApiError> {
    db::run(
        &state.pool,
        move |c| -> Result<(StationRow, bool), ApiError> {
            let existing = playout::station(c, &name)?;
            let created = existing.is_none();
            let merged = merge_station(existing.unwrap_or_else(default_station), body)?;
            Ok((playout::upsert_station(c, &merged)?, created))
        },
    )
    .await
}
