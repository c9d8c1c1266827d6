//! Stations, the catalogue (sounds with tracks), the schedule (diffusions) and the as-run log
//! for operators. Writing needs `admin`, reading `read`.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz};
use serde::Deserialize;
use serde_json::Value;

use super::auth::{AdminScope, Caller, ReadScope};
use super::error::ApiError;
use super::pagination::{self, PageRequest};
use super::params::Params;
use crate::app::AppState;
use crate::db::playout::{self, LogRow, NewSound, StationRow, LOG_SELECT};
use crate::db::{self};
use crate::domain::playout::{DiffusionType, Streamer};
use crate::domain::time::parse_event_time;
use crate::domain::FieldError;
use crate::domain::{Direction, Key};

/// The operations of this module, nested under `/api/v1` by the API document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list_stations,
    put_station,
    get_station,
    put_station_named,
    list_sounds,
    put_sound,
    list_diffusions,
    post_diffusion,
    get_diffusion,
    put_diffusion,
    list_onair,
    onair_now
))]
pub struct Doc;

/// Registers the routes under `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/stations/", web::get().to(list_stations))
        .route("/stations/", web::post().to(put_station))
        .route("/stations/{name}", web::get().to(get_station))
        .route("/stations/{name}", web::put().to(put_station_named))
        .route("/sounds/", web::get().to(list_sounds))
        .route("/sounds/", web::post().to(put_sound))
        .route("/diffusions/", web::get().to(list_diffusions))
        .route("/diffusions/", web::post().to(post_diffusion))
        .route("/diffusions/{id}", web::get().to(get_diffusion))
        .route("/diffusions/{id}", web::put().to(put_diffusion))
        .route("/onair/", web::get().to(list_onair))
        .route("/onair/now", web::get().to(onair_now));
}

fn invalid(details: Vec<FieldError>) -> ApiError {
    let names: Vec<String> = details.iter().map(|d| d.field.clone()).collect();
    ApiError::validation(format!("invalid fields: {}", names.join(", ")), details)
}

/// A station as posted: every field but `name` optional.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct StationIn {
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
    path = "/stations/",
    description = "Every station (scope `read`).",
    security(("token" = [])),
    responses((status = 200, description = "The stations", body = super::openapi::Results<StationRow>)),
)]
async fn list_stations(
    _c: Caller<ReadScope>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let rows = db::run(&state.pool, |c| {
        playout::stations(c).map_err(ApiError::from)
    })
    .await?;
    Ok(HttpResponse::Ok().json(super::openapi::Results { results: rows }))
}

#[utoipa::path(
    get,
    path = "/stations/{name}",
    description = "One station (scope `read`).",
    security(("token" = [])),
    params(("name" = String, Path)),
    responses((status = 200, description = "The station", body = StationRow)),
)]
async fn get_station(
    _c: Caller<ReadScope>,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    let row = db::run(&state.pool, move |c| {
        playout::station(c, &name).map_err(ApiError::from)
    })
    .await?;
    row.map(|r| HttpResponse::Ok().json(r))
        .ok_or_else(|| ApiError::NotFound("no such station".into()))
}

/// `POST /api/v1/stations/`: creates a station (201), or updates the one with that name (200).
#[utoipa::path(
    post,
    path = "/stations/",
    description = "Creates a station, or updates the one with that name (scope `admin`).",
    security(("token" = [])),
    request_body = StationIn,
    responses(
        (status = 201, description = "Created", body = StationRow),
        (status = 200, description = "Updated", body = StationRow),
    ),
)]
async fn put_station(
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
    path = "/stations/{name}",
    description = "Updates the given fields of a station, creating it if new (scope `admin`).",
    security(("token" = [])),
    params(("name" = String, Path)),
    request_body = StationIn,
    responses((status = 200, description = "Saved", body = StationRow)),
)]
async fn put_station_named(
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

/// A track of a sound, at seconds from its start.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TrackIn {
    timestamp: f64,
    #[serde(default)]
    artist: String,
    #[serde(default)]
    title: String,
}

/// A sound of the catalogue with its tracks.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SoundIn {
    path: String,
    duration: Option<f64>,
    #[serde(default)]
    title: String,
    #[serde(default)]
    artist: String,
    #[serde(default = "other")]
    r#type: String,
    #[serde(default)]
    program: String,
    #[serde(default)]
    tracks: Vec<TrackIn>,
}

fn other() -> String {
    "other".into()
}

#[utoipa::path(
    get,
    path = "/sounds/",
    description = "The catalogue's sounds with their tracks (scope `read`).",
    security(("token" = [])),
    params(
        ("program" = Option<String>, Query),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 10000, description = "default 1000"),
    ),
    responses((status = 200, description = "The sounds", body = super::openapi::Results<playout::SoundRow>)),
)]
async fn list_sounds(
    _c: Caller<ReadScope>,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let mut params = Params::parse(req.query_string())?;
    let program = params.text("program").map(str::to_string);
    let limit = params.int("limit", 1..=10_000).unwrap_or(1000);
    params.finish()?;
    let rows = db::run(&state.pool, move |c| {
        playout::sounds(c, program.as_deref(), limit).map_err(ApiError::from)
    })
    .await?;
    Ok(HttpResponse::Ok().json(super::openapi::Results { results: rows }))
}

/// Longest sound path accepted: what the index that keeps paths unique holds (2704 bytes).
const MAX_PATH: usize = 2000;
/// Longest sound accepted: a week, far beyond any show.
const MAX_SOUND_S: f64 = 7.0 * 86_400.0;

/// `POST /api/v1/sounds/`: creates or updates the sound at `path`, replacing its tracks.
#[utoipa::path(
    post,
    path = "/sounds/",
    description = "Creates or updates the sound at `path`, replacing its tracks (scope `admin`).",
    security(("token" = [])),
    request_body = SoundIn,
    responses((status = 200, description = "Saved", body = playout::SoundRow)),
)]
async fn put_sound(
    _c: Caller<AdminScope>,
    state: web::Data<AppState>,
    body: web::Json<SoundIn>,
) -> Result<HttpResponse, ApiError> {
    let s = body.into_inner();
    let mut errors = Vec::new();
    if s.path.trim().is_empty() {
        errors.push(FieldError::new("path", "is required"));
    }
    // A file path (PATH_MAX); longer would not fit the index that keeps paths unique.
    if s.path.len() > MAX_PATH {
        errors.push(FieldError::new(
            "path",
            format!(
                "is {} bytes long; at most {MAX_PATH} are accepted",
                s.path.len()
            ),
        ));
    }
    if !matches!(s.r#type.as_str(), "archive" | "excerpt" | "other") {
        errors.push(FieldError::new("type", "must be archive, excerpt or other"));
    }
    if s.duration
        .is_some_and(|d| !d.is_finite() || !(0.0..MAX_SOUND_S).contains(&d))
    {
        errors.push(FieldError::new(
            "duration",
            format!("must be a number of seconds, 0 to {MAX_SOUND_S}"),
        ));
    }
    let mut at = std::collections::HashMap::new();
    for (i, t) in s.tracks.iter().enumerate() {
        if !t.timestamp.is_finite()
            || !(0.0..MAX_SOUND_S).contains(&t.timestamp)
            || s.duration.is_some_and(|d| t.timestamp > d)
        {
            errors.push(FieldError::new(
                format!("tracks[{i}].timestamp"),
                "must be seconds within the sound",
            ));
        } else if let Some(first) = at.insert(t.timestamp.to_bits(), i) {
            errors.push(FieldError::new(
                format!("tracks[{i}].timestamp"),
                format!("{} s is also the start of tracks[{first}]", t.timestamp),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(invalid(errors));
    }
    let new = NewSound {
        path: s.path.trim().to_string(),
        duration_s: s.duration,
        title: s.title,
        artist: s.artist,
        r#type: s.r#type,
        program: s.program,
        tracks: s
            .tracks
            .into_iter()
            .map(|t| (t.timestamp, t.artist, t.title))
            .collect(),
    };
    let row = db::run(&state.pool, move |c| {
        playout::upsert_sound(c, &new).map_err(ApiError::from)
    })
    .await?;
    Ok(HttpResponse::Ok().json(row))
}

/// A diffusion to schedule.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct DiffusionIn {
    station: String,
    #[schema(value_type = super::openapi::TimeIn)]
    start: Value,
    #[schema(value_type = super::openapi::TimeIn)]
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
    path = "/diffusions/",
    description = "Schedules a diffusion of catalogued sounds (scope `admin`).",
    security(("token" = [])),
    request_body = DiffusionIn,
    responses((status = 201, description = "Scheduled", body = playout::DiffusionRow)),
)]
async fn post_diffusion(
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
    path = "/diffusions/{id}",
    description = "One diffusion (scope `read`).",
    security(("token" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, description = "The diffusion", body = playout::DiffusionRow)),
)]
async fn get_diffusion(
    _c: Caller<ReadScope>,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let row = db::run(&state.pool, move |c| {
        playout::diffusion(c, id).optional().map_err(ApiError::from)
    })
    .await?;
    row.map(|r| HttpResponse::Ok().json(r))
        .ok_or_else(|| ApiError::NotFound(format!("no diffusion {id}")))
}

/// A diffusion change: every field optional.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct DiffusionChange {
    #[schema(value_type = Option<super::openapi::TimeIn>)]
    start: Option<Value>,
    #[schema(value_type = Option<super::openapi::TimeIn>)]
    end: Option<Value>,
    title: Option<String>,
    r#type: Option<String>,
    sounds: Option<Vec<String>>,
}

/// `PUT /api/v1/diffusions/{id}`: changes the given fields. A diffusion the monitor already
/// started or cancelled keeps that decision (the as-run log does not change).
#[utoipa::path(
    put,
    path = "/diffusions/{id}",
    description = "Changes the given fields of a diffusion; one the monitor already started or cancelled keeps that decision (scope `admin`).",
    security(("token" = [])),
    params(("id" = i64, Path)),
    request_body = DiffusionChange,
    responses((status = 200, description = "Saved", body = playout::DiffusionRow)),
)]
async fn put_diffusion(
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
    path = "/diffusions/",
    description = "A station's diffusions between two times (scope `read`).",
    security(("token" = [])),
    params(
        ("station" = String, Query, description = "the station's name"),
        ("from" = Option<String>, Query, description = "default: a day ago"),
        ("until" = Option<String>, Query, description = "default: 8 days after `from`"),
    ),
    responses((status = 200, description = "The diffusions", body = super::openapi::Results<playout::DiffusionRow>)),
)]
async fn list_diffusions(
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
    Ok(HttpResponse::Ok().json(super::openapi::Results { results: rows }))
}

/// Filters of the as-run log.
struct LogFilter {
    station: Option<String>,
    day: Option<NaiveDate>,
    r#type: Option<String>,
    source: Option<String>,
}

/// An optional `[from, until)` in UTC.
type TimeRange = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// The UTC bounds of the filter's broadcast day, in the station's time zone (or the default).
fn day_range(
    c: &mut PgConnection,
    f: &LogFilter,
    settings: &crate::config::Settings,
) -> Result<TimeRange, ApiError> {
    let Some(day) = f.day else {
        return Ok((None, None));
    };
    let tz = match &f.station {
        Some(name) => playout::station(c, name)?
            .and_then(|s| s.time_zone.parse().ok())
            .unwrap_or(settings.station.time_zone.0),
        None => settings.station.time_zone.0,
    };
    let (a, b) = crate::broadcast::day_bounds(day, settings.station.day_start_hour.0, tz);
    Ok((Some(a), Some(b)))
}

const LOG_WHERE: &str =
    "WHERE ($1::text IS NULL OR st.name = $1) AND ($2::timestamptz IS NULL OR l.date >= $2) \
     AND ($3::timestamptz IS NULL OR l.date < $3) AND ($4::text IS NULL OR l.type = $4) \
     AND ($5::text IS NULL OR l.source = $5)";

fn log_count(
    c: &mut PgConnection,
    f: &LogFilter,
    settings: &crate::config::Settings,
) -> Result<i64, ApiError> {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let (from, until) = day_range(c, f, settings)?;
    let n: N = diesel::sql_query(format!(
        "SELECT count(*) AS n FROM onair_log l JOIN station st ON st.id = l.station_id {LOG_WHERE}"
    ))
    .bind::<Nullable<Text>, _>(f.station.as_deref())
    .bind::<Nullable<Timestamptz>, _>(from)
    .bind::<Nullable<Timestamptz>, _>(until)
    .bind::<Nullable<Text>, _>(f.r#type.as_deref())
    .bind::<Nullable<Text>, _>(f.source.as_deref())
    .get_result(c)?;
    Ok(n.n)
}

fn log_page(
    c: &mut PgConnection,
    f: &LogFilter,
    key: Option<Key>,
    direction: Direction,
    limit: i64,
    settings: &crate::config::Settings,
) -> Result<Vec<LogRow>, ApiError> {
    let (from, until) = day_range(c, f, settings)?;
    // Newest first: "after" a key is older than it.
    let (op, order) = match direction {
        Direction::After => ("<", "DESC"),
        Direction::Before => (">", "ASC"),
    };
    let mut rows: Vec<LogRow> = diesel::sql_query(format!(
        "{LOG_SELECT} {LOG_WHERE} AND ($6::timestamptz IS NULL OR (l.date, l.id) {op} ($6, $7)) \
         ORDER BY l.date {order}, l.id {order} LIMIT $8"
    ))
    .bind::<Nullable<Text>, _>(f.station.as_deref())
    .bind::<Nullable<Timestamptz>, _>(from)
    .bind::<Nullable<Timestamptz>, _>(until)
    .bind::<Nullable<Text>, _>(f.r#type.as_deref())
    .bind::<Nullable<Text>, _>(f.source.as_deref())
    .bind::<Nullable<Timestamptz>, _>(key.map(|k| k.time))
    .bind::<BigInt, _>(key.map(|k| k.id).unwrap_or(0))
    .bind::<BigInt, _>(limit)
    .load(c)?;
    if direction == Direction::Before {
        rows.reverse();
    }
    Ok(rows)
}

/// `GET /api/v1/onair/`: the as-run log, newest first, keyset paged; filters `station`, `day`
/// (broadcast day in station time), `type` (on_air = observed plays; start and cancel =
/// scheduled diffusions), `source`.
#[utoipa::path(
    get,
    path = "/onair/",
    description = "The as-run log, newest first, keyset paged (scope `read`).",
    security(("token" = [])),
    params(
        ("station" = Option<String>, Query),
        ("day" = Option<String>, Query, description = "broadcast day in the station's time, YYYY-MM-DD"),
        ("type" = Option<String>, Query, description = "`on_air`, `start`, `cancel`, `stop` or `other`"),
        ("source" = Option<String>, Query),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 5000, description = "rows per page (default 100)"),
        ("cursor" = Option<String>, Query, description = "a cursor from `next` or `previous`"),
    ),
    responses((status = 200, description = "A page", body = super::pagination::Page<LogRow>)),
)]
async fn list_onair(
    _c: Caller<ReadScope>,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let mut params = Params::parse(req.query_string())?;
    let filter = LogFilter {
        station: params.text("station").map(str::to_string),
        day: params.get("day", |s| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|_| format!("{s:?} is not a date (YYYY-MM-DD)"))
        }),
        r#type: params.get("type", |s| match s {
            "on_air" | "start" | "cancel" | "stop" | "other" => Ok(s.to_string()),
            _ => Err(format!(
                "{s:?} is not one of on_air, start, cancel, stop, other"
            )),
        }),
        source: params.text("source").map(str::to_string),
    };
    let page = PageRequest::parse(&mut params, 100, 5000);
    params.finish()?;
    page.cursor_only("the as-run log")?;
    let request = page.clone();
    let settings = state.settings.clone();
    let fetched = db::run(&state.pool, move |c| {
        pagination::fetch(
            c,
            &request,
            |c| log_count(c, &filter, &settings),
            |c, key, dir, n| log_page(c, &filter, key, dir, n, &settings),
            None,
        )
    })
    .await?;
    Ok(
        HttpResponse::Ok().json(pagination::build(&req, &page, fetched, |r: &LogRow| Key {
            time: r.date,
            id: r.id,
        })),
    )
}

/// `GET /api/v1/onair/now?station=NAME`: the sound and track on air (observed), and the
/// diffusions (scheduled): the one running and the next.
#[utoipa::path(
    get,
    path = "/onair/now",
    description = "The sound and track on air (observed) and the current and next diffusion (scheduled) (scope `read`).",
    security(("token" = [])),
    params(("station" = String, Query, description = "the station's name")),
    responses((status = 200, description = "On air now", body = OnAirNow)),
)]
async fn onair_now(
    _c: Caller<ReadScope>,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let mut params = Params::parse(req.query_string())?;
    let station = params.text("station").map(str::to_string);
    if station.is_none() {
        params.problem("station", "is required");
    }
    params.finish()?;
    let name = station.expect("checked");
    let now = Utc::now();
    let body = db::run(&state.pool, move |c| -> Result<OnAirNow, ApiError> {
        let s = playout::station(c, &name)?.ok_or_else(|| ApiError::NotFound(format!("no station named {name:?}")))?;
        // What the output plays: its latest sound entry, a start or a resume.
        let sound: Option<LogRow> = diesel::sql_query(format!(
            "{LOG_SELECT} WHERE l.station_id = $1 AND l.type = 'on_air' AND l.track_id IS NULL AND l.date <= $2 \
             ORDER BY l.date DESC, l.id DESC LIMIT 1"
        ))
        .bind::<BigInt, _>(s.id)
        .bind::<Timestamptz, _>(now)
        .get_result(c)
        .optional()?;
        // Tracks hang on the play's first entry, whether this is it or a resume of it.
        let track: Option<LogRow> = match &sound {
            Some(p) => diesel::sql_query(format!(
                "{LOG_SELECT} WHERE l.parent_id = $1 AND l.date <= $2 ORDER BY l.date DESC LIMIT 1"
            ))
            .bind::<BigInt, _>(p.resume_of.unwrap_or(p.id))
            .bind::<Timestamptz, _>(now)
            .get_result(c)
            .optional()?,
            None => None,
        };
        let duration = match sound.as_ref().and_then(|p| p.sound_id) {
            Some(id) => {
                #[derive(QueryableByName)]
                struct D {
                    #[diesel(sql_type = Nullable<diesel::sql_types::Double>)]
                    duration_s: Option<f64>,
                }
                diesel::sql_query("SELECT duration_s FROM sound WHERE id = $1").bind::<BigInt, _>(id).get_result::<D>(c)?.duration_s
            }
            None => None,
        };
        // A resumed sound has `position_s` behind it already.
        let remaining = match (&sound, duration) {
            (Some(p), Some(d)) => Some((d - p.position_s - (now - p.date).num_milliseconds() as f64 / 1000.0).max(0.0)),
            _ => None,
        };
        // The current diffusion is the one whose sound plays, not one merely still scheduled.
        let running = match sound.as_ref().and_then(|p| p.diffusion_id) {
            Some(id) => Some(playout::diffusion(c, id)?),
            None => None,
        };
        let next = playout::next_diffusion(c, s.id, now)?;
        Ok(OnAirNow {
            station: s.name,
            at: now,
            observed: Observed {
                started_at: sound.as_ref().map(|p| p.date),
                position_seconds: sound.as_ref().map(|p| p.position_s + (now - p.date).num_milliseconds() as f64 / 1000.0),
                remaining_seconds: remaining,
                sound,
                track,
            },
            scheduled: Scheduled { current: running, next },
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

/// What is on air on a station now.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct OnAirNow {
    station: String,
    at: DateTime<Utc>,
    observed: Observed,
    scheduled: Scheduled,
}

/// What the output plays, as the monitor observed it.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct Observed {
    /// The latest sound entry of the as-run log (a start or a resume), if any.
    #[schema(required)]
    sound: Option<LogRow>,
    /// The latest track of that sound, if any.
    #[schema(required)]
    track: Option<LogRow>,
    #[schema(required)]
    started_at: Option<DateTime<Utc>>,
    /// Seconds into the sound now.
    #[schema(required)]
    position_seconds: Option<f64>,
    /// Seconds left, when the sound's length is known.
    #[schema(required)]
    remaining_seconds: Option<f64>,
}

/// The diffusions: the one whose sound plays, and the next one scheduled.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Scheduled {
    #[schema(required)]
    current: Option<playout::DiffusionRow>,
    #[schema(required)]
    next: Option<playout::DiffusionRow>,
}
