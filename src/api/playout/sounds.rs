//! The catalogue: `GET|POST /sounds/`, sounds with their tracks.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::invalid;
use crate::api::auth::{AdminScope, Caller, ReadScope};
use crate::api::error::ApiError;
use crate::api::params::Params;
use crate::api::AppState;
use crate::db::playout::{self, NewSound, NewTrack};
use crate::db::{self};
use crate::domain::FieldError;

/// A track of a sound, at seconds from its start.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TrackIn {
    timestamp: f64,
    #[serde(default)]
    artist: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    album: String,
    /// The marketing label.
    #[serde(default)]
    label: String,
    /// ISRC, e.g. `USRC17607839` (hyphens and an `ISRC` prefix are accepted).
    #[serde(default)]
    isrc: String,
    #[serde(default)]
    composer: String,
    /// Seconds, when known.
    duration: Option<f64>,
}

/// A sound of the catalogue with its tracks.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SoundIn {
    path: String,
    duration: Option<f64>,
    #[serde(default)]
    title: String,
    #[serde(default)]
    artist: String,
    #[serde(default)]
    album: String,
    /// The marketing label.
    #[serde(default)]
    label: String,
    /// ISRC, e.g. `USRC17607839` (hyphens and an `ISRC` prefix are accepted).
    #[serde(default)]
    isrc: String,
    #[serde(default)]
    composer: String,
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
    tag = "playout",
    path = "/sounds/",
    description = "The catalogue's sounds with their tracks (scope `read`).",
    security(("token" = [])),
    params(
        ("program" = Option<String>, Query),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 10000, description = "default 1000"),
    ),
    responses((status = 200, description = "The sounds", body = crate::api::openapi::Results<playout::SoundRow>)),
)]
pub(super) async fn list_sounds(
    _c: Caller<ReadScope>,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let mut params = Params::parse(req.query_string())?;
    let program = params.text("program").map(str::to_string);
    let limit = params.int("limit", 1..=10_000).unwrap_or(1000);
    params.finish()?;
    let rows = db::run(&state.pool, move |c| {
        playout::sounds(c, program.as_deref(), limit)
    })
    .await?;
    Ok(HttpResponse::Ok().json(crate::api::openapi::Results { results: rows }))
}

/// Longest sound path accepted: what the index that keeps paths unique holds (2704 bytes).
const MAX_PATH: usize = 2000;
/// Longest sound accepted: a week, far beyond any show.
const MAX_SOUND_S: f64 = 7.0 * 86_400.0;

/// `POST /api/v1/sounds/`: creates or updates the sound at `path`, replacing its tracks.
#[utoipa::path(
    post,
    tag = "playout",
    path = "/sounds/",
    description = "Creates or updates the sound at `path` and its tracks, with what royalty reports need (album, label, ISRC, composer; scope `admin`). A track keeps its id while its timestamp stays.",
    security(("token" = [])),
    request_body = SoundIn,
    responses((status = 200, description = "Saved", body = playout::SoundRow)),
)]
pub(super) async fn put_sound(
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
    let isrc = crate::domain::recording::isrc(&s.isrc)
        .map_err(|e| errors.push(FieldError::new("isrc", e)))
        .unwrap_or_default();
    let mut track_isrcs = Vec::new();
    for (i, t) in s.tracks.iter().enumerate() {
        track_isrcs.push(
            crate::domain::recording::isrc(&t.isrc)
                .map_err(|e| errors.push(FieldError::new(format!("tracks[{i}].isrc"), e)))
                .unwrap_or_default(),
        );
        if t.duration
            .is_some_and(|d| !d.is_finite() || !(0.0..MAX_SOUND_S).contains(&d))
        {
            errors.push(FieldError::new(
                format!("tracks[{i}].duration"),
                format!("must be a number of seconds, 0 to {MAX_SOUND_S}"),
            ));
        }
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
        album: s.album,
        label: s.label,
        isrc,
        composer: s.composer,
        r#type: s.r#type,
        program: s.program,
        tracks: s
            .tracks
            .into_iter()
            .zip(track_isrcs)
            .map(|(t, isrc)| NewTrack {
                timestamp_s: t.timestamp,
                artist: t.artist,
                title: t.title,
                album: t.album,
                label: t.label,
                isrc,
                composer: t.composer,
                duration_s: t.duration,
            })
            .collect(),
    };
    let row = db::run(&state.pool, move |c| playout::upsert_sound(c, &new)).await?;
    Ok(HttpResponse::Ok().json(row))
}
