//! Player events: the browser endpoints (no token; CORS; per-device rate limit), the trusted
//! ingest for backfills and media servers, and the read lists of events and sessions.

use std::net::IpAddr;
use std::time::Instant;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde_json::Value;

use super::auth::{AdminScope, Caller, IngestScope, ReadScope};
use super::error::ApiError;
use super::pagination::{self, PageRequest};
use super::params::Params;
use crate::app::AppState;
use crate::db::player_events::{
    self as queries, List, MediaLength, NewPlayerEvent, PlayerEventRow, SessionRow,
};
use crate::db::{self};
use crate::domain::player_event::{PlayerEvent, Source};
use crate::domain::stream_event::device_key;
use crate::domain::FieldError;
use crate::domain::Key;
use crate::ingest::player::{check_batch, events_of, MAX_TRUSTED_BATCH};

/// Devices seen within this many seconds count as listening now.
const LISTENING_WINDOW_S: f64 = 120.0;
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 20_000;
/// Longest media key accepted (the player events' own limit).
const MAX_OBJ_KEY: usize = 256;

/// The operations of this module, nested under `/api/v1` by the API document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    ingest_browser,
    ingest_browser_post,
    heartbeat,
    heartbeat_post,
    ingest_trusted,
    listeners_now,
    list_events,
    list_sessions,
    put_media
))]
pub struct Doc;

/// The browser ingest's POST twin, for the document only (the same handler serves both).
#[utoipa::path(
    post,
    path = "/stats/ingest/player-events/",
    description = "The same as PUT.",
    request_body = super::openapi::PlayerEventsIn,
    responses((status = 201, description = "Stored", body = super::openapi::Ingested)),
)]
#[allow(dead_code)]
fn ingest_browser_post() {}

/// The heartbeat's POST twin, for the document only (the same handler serves both).
#[utoipa::path(
    post,
    path = "/stats/heartbeat/",
    description = "The same as PUT.",
    request_body(content = Option<super::openapi::HeartbeatIn>),
    responses((status = 204, description = "Seen")),
)]
#[allow(dead_code)]
fn heartbeat_post() {}

/// Registers the routes under `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig, settings: &crate::config::PlayerSettings) {
    cfg.service(
        web::resource("/stats/ingest/player-events/")
            .wrap(cors(settings))
            .route(web::put().to(ingest_browser))
            .route(web::post().to(ingest_browser)),
    )
    .service(
        web::resource("/stats/heartbeat/")
            .wrap(cors(settings))
            .route(web::put().to(heartbeat))
            .route(web::post().to(heartbeat)),
    )
    .route(
        "/stats/ingest/player-events/trusted/",
        web::post().to(ingest_trusted),
    )
    .route("/stats/listeners/now", web::get().to(listeners_now))
    .route("/stats/player-events/", web::get().to(list_events))
    .route("/stats/sessions/", web::get().to(list_sessions))
    .route("/catalog/media/", web::put().to(put_media));
}

/// CORS for the configured player origins; requests from other origins are refused.
fn cors(settings: &crate::config::PlayerSettings) -> actix_cors::Cors {
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["PUT", "POST", "OPTIONS"])
        .allowed_headers([actix_web::http::header::CONTENT_TYPE])
        .max_age(3600);
    for origin in &settings.allowed_origins {
        cors = if origin == "*" {
            cors.allow_any_origin()
        } else {
            cors.allowed_origin(origin)
        };
    }
    cors
}

/// Who is calling: the address (the first `X-Forwarded-For` entry only from a trusted proxy),
/// the device key from address, user agent and Accept-Language, and the user identity.
struct Listener {
    /// The client's address, for the rate limit.
    ip: IpAddr,
    device_key: String,
    user_identity: String,
    /// Address + user agent alone: the key the browser's stream connections have too.
    listener_key: String,
}

fn listener(req: &HttpRequest, settings: &crate::config::PlayerSettings) -> Listener {
    let peer = req
        .peer_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let trusted = settings.trusted_proxies.contains(&peer);
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .trim()
    };
    let ip = if trusted {
        client_address(header("X-Forwarded-For"), &settings.trusted_proxies).unwrap_or(peer)
    } else {
        peer
    };
    let (ua, lang) = (header("User-Agent"), header("Accept-Language"));
    // Without Accept-Language the key equals the stream events' key for the same client.
    let fingerprint = if lang.is_empty() {
        ua.to_string()
    } else {
        format!("{ua}|{lang}")
    };
    let device_key = device_key(&ip, &fingerprint);
    let signed_in = (trusted && !settings.identity_header.is_empty())
        .then(|| header(&settings.identity_header))
        .filter(|id| !id.is_empty() && id.len() <= 128);
    let user_identity = match signed_in {
        Some(id) => format!("account.user:{id}"),
        None => format!("anonymous:{device_key}"),
    };
    Listener {
        ip,
        listener_key: crate::audience::listener_key(ip, ua),
        device_key,
        user_identity,
    }
}

/// The client behind trusted proxies: proxies append the address they received from, so the
/// right-most entry that is not one of ours is the client; entries left of it were written by
/// the client itself and prove nothing. All ours: the left-most.
pub fn client_address(forwarded_for: &str, trusted: &[IpAddr]) -> Option<IpAddr> {
    let hops: Vec<IpAddr> = forwarded_for
        .split(',')
        .filter_map(|h| h.trim().parse().ok())
        .collect();
    hops.iter()
        .rev()
        .find(|h| !trusted.contains(h))
        .or_else(|| hops.first())
        .copied()
}

/// Refuses requests whose `Origin` is not a configured player origin. CORS only stops a
/// browser from reading the answer, and a simple POST needs no preflight, so the server checks
/// too. Requests without `Origin` (servers, curl) are not browsers' and pass.
fn check_origin(
    req: &HttpRequest,
    settings: &crate::config::PlayerSettings,
) -> Result<(), ApiError> {
    let Some(origin) = req.headers().get(actix_web::http::header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("");
    if settings
        .allowed_origins
        .iter()
        .any(|o| o == "*" || o == origin)
    {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "origin {origin:?} may not send player events; add it to player.allowed_origins"
        )))
    }
}

fn rate_limit(state: &AppState, key: IpAddr) -> Result<(), ApiError> {
    state
        .rate_limiter
        .check(key, Instant::now())
        .map_err(|retry| {
            ApiError::TooManyRequests(
                format!("too many requests from this device; retry in {retry} s"),
                retry,
            )
        })
}

fn rejected(details: Vec<FieldError>, state: &AppState, n: usize) -> ApiError {
    state
        .metrics
        .ingest_events
        .with_label_values(&["player", "rejected"])
        .inc_by(n as u64);
    let total = details.len();
    ApiError::validation(
        format!("{total} problems in the events; nothing was stored"),
        details.into_iter().take(200).collect(),
    )
}

/// `PUT|POST /api/v1/stats/ingest/player-events/` from web players: `{"events": [...]}`.
#[utoipa::path(
    put,
    path = "/stats/ingest/player-events/",
    description = "Play, pause and stop from web players (no token; CORS for `player.allowed_origins`; rate limited per address).",
    request_body = super::openapi::PlayerEventsIn,
    responses((status = 201, description = "Stored", body = super::openapi::Ingested)),
)]
async fn ingest_browser(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    check_origin(&req, &state.settings.player)?;
    let who = listener(&req, &state.settings.player);
    rate_limit(&state, who.ip)?;
    let items = events_of(&body)
        .ok_or_else(|| ApiError::BadRequest("the body must be {\"events\": [...]}".into()))?;
    let max = state.settings.player.max_events_per_request;
    if items.len() > max {
        return Err(ApiError::PayloadTooLarge(format!(
            "{} events in one request; at most {max} are accepted",
            items.len()
        )));
    }
    let events = check_batch(items, false).map_err(|d| rejected(d, &state, items.len()))?;
    // The server's clock orders events; events of one request keep their order a microsecond apart.
    let now = Utc::now();
    let last = events
        .last()
        .map(|e| (e.source, e.obj_key.clone(), e.state.is_listening()));
    let total = events.len();
    let created = db::run(&state.pool, move |conn| -> Result<usize, ApiError> {
        let rows: Vec<NewPlayerEvent> = events
            .iter()
            .enumerate()
            .map(|(i, event)| NewPlayerEvent {
                event,
                time: now + chrono::Duration::microseconds(i as i64),
                user_identity: &who.user_identity,
                device_key: &who.device_key,
                listener_key: Some(&who.listener_key),
            })
            .collect();
        let created = queries::insert(conn, &rows)?;
        if let Some((source, obj_key, listening)) = &last {
            queries::heartbeat(
                conn,
                &who.device_key,
                &who.user_identity,
                *source,
                Some(obj_key),
                *listening,
            )?;
        }
        Ok(created)
    })
    .await?;
    count(&state, total, created);
    Ok(HttpResponse::Created()
        .json(serde_json::json!({"created": created, "duplicates": total - created})))
}

fn count(state: &AppState, total: usize, created: usize) {
    let c = &state.metrics.ingest_events;
    c.with_label_values(&["player", "created"])
        .inc_by(created as u64);
    c.with_label_values(&["player", "duplicate"])
        .inc_by((total - created) as u64);
}

/// `POST /api/v1/stats/ingest/player-events/trusted/` (scope `ingest`): events with their own
/// `time`, `user_identity` and `device_key`, for backfills and media servers. Idempotent.
#[utoipa::path(
    post,
    path = "/stats/ingest/player-events/trusted/",
    description = "Player events with their own times and identities, for backfills and media servers (scope `ingest`). Idempotent.",
    security(("token" = [])),
    request_body(content = Vec<super::openapi::TrustedPlayerEventIn>, description = "At most 10 000 events (a bare array, or `{\"events\": [...]}`)"),
    responses((status = 201, description = "Stored", body = super::openapi::Ingested)),
)]
async fn ingest_trusted(
    caller: Caller<IngestScope>,
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let items = events_of(&body).ok_or_else(|| {
        ApiError::BadRequest("the body must be a JSON array of player events".into())
    })?;
    if items.len() > MAX_TRUSTED_BATCH {
        return Err(ApiError::PayloadTooLarge(format!(
            "the batch has {} events; at most {MAX_TRUSTED_BATCH} are accepted per request",
            items.len()
        )));
    }
    let events: Vec<PlayerEvent> =
        check_batch(items, true).map_err(|d| rejected(d, &state, items.len()))?;
    let total = events.len();
    let created = db::run(&state.pool, move |conn| {
        let rows: Vec<NewPlayerEvent> = events
            .iter()
            .map(|event| NewPlayerEvent {
                event,
                time: event.time.expect("trusted events have a time"),
                user_identity: event.user_identity.as_deref().expect("checked"),
                device_key: event.device_key.as_deref().expect("checked"),
                listener_key: None,
            })
            .collect();
        queries::insert(conn, &rows)
    })
    .await?;
    count(&state, total, created);
    tracing::info!(
        token = caller.token_name.as_str(),
        rows = total,
        created,
        "player events ingested"
    );
    Ok(HttpResponse::Created()
        .json(serde_json::json!({"created": created, "duplicates": total - created})))
}

/// `PUT /api/v1/stats/heartbeat/` from web players: `{"source", "objKey"}`, both optional.
#[utoipa::path(
    put,
    path = "/stats/heartbeat/",
    description = "\"Still listening\" from web players (no token; CORS; rate limited per address). The body is optional.",
    request_body(content = Option<super::openapi::HeartbeatIn>),
    responses((status = 204, description = "Seen")),
)]
async fn heartbeat(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    check_origin(&req, &state.settings.player)?;
    let who = listener(&req, &state.settings.player);
    rate_limit(&state, who.ip)?;
    // The body is optional, but one that is sent must be JSON (a broken one is not a heartbeat).
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("the request body is not valid JSON: {e}")))?
    };
    let source = match body.get("source").and_then(Value::as_str) {
        None => Source::Live,
        Some(s) => s.parse::<Source>().map_err(|m| {
            ApiError::validation("invalid heartbeat", vec![FieldError::new("source", m)])
        })?,
    };
    let obj_key = body
        .get("objKey")
        .and_then(Value::as_str)
        .map(|s| s.chars().take(256).collect::<String>());
    db::run(&state.pool, move |conn| {
        queries::heartbeat(
            conn,
            &who.device_key,
            &who.user_identity,
            source,
            obj_key.as_deref(),
            true,
        )
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /api/v1/stats/listeners/now` (scope `read`): devices seen in the last 120 s, by source.
#[utoipa::path(
    get,
    path = "/stats/listeners/now",
    description = "Devices seen in the last 120 s, by source (scope `read`).",
    security(("token" = [])),
    responses((status = 200, description = "Listening now", body = ListenersNow)),
)]
async fn listeners_now(
    _caller: Caller<ReadScope>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let counts = db::run(&state.pool, |conn| {
        queries::listeners_now(conn, LISTENING_WINDOW_S)
    })
    .await?;
    let total: i64 = counts.iter().map(|c| c.devices).sum();
    let by_source = counts.into_iter().map(|c| (c.source, c.devices)).collect();
    Ok(HttpResponse::Ok().json(ListenersNow {
        at: Utc::now(),
        window_seconds: LISTENING_WINDOW_S,
        total,
        by_source,
    }))
}

/// Who listens now.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct ListenersNow {
    /// When this was counted.
    at: chrono::DateTime<Utc>,
    /// Devices seen within this many seconds count.
    window_seconds: f64,
    /// Devices listening, all sources.
    total: i64,
    /// Devices listening, by source (`live`, `on-demand`, `news`).
    by_source: std::collections::BTreeMap<String, i64>,
}

fn parse_filter(params: &mut Params) -> queries::Filter {
    queries::Filter {
        time_from: params.time("time_from"),
        time_until: params.time("time_until"),
        source: params.get("source", str::parse::<Source>),
        user_identity: params.text("user_identity").map(str::to_string),
        min_duration: params.get("min_duration", |s| {
            s.parse::<f64>()
                .ok()
                .filter(|d| d.is_finite() && *d >= 0.0)
                .ok_or_else(|| format!("{s:?} is not a number of seconds"))
        }),
    }
}

async fn list<T>(
    req: HttpRequest,
    state: web::Data<AppState>,
    which: List,
    key_of: fn(&T) -> Key,
) -> Result<HttpResponse, ApiError>
where
    T: diesel::QueryableByName<diesel::pg::Pg> + serde::Serialize + Send + 'static,
{
    let mut params = Params::parse(req.query_string())?;
    let filter = parse_filter(&mut params);
    let page = PageRequest::parse(&mut params, DEFAULT_LIMIT, MAX_LIMIT);
    params.finish()?;
    let request = page.clone();
    let fetched = db::run(&state.pool, move |conn| {
        pagination::fetch(
            conn,
            &request,
            |c| queries::count(c, which, &filter),
            |c, key, dir, n| queries::keyset_page(c, which, &filter, key, dir, n),
            Some(&|c, skip, n| queries::offset_page(c, which, &filter, skip, n)),
        )
    })
    .await?;
    Ok(HttpResponse::Ok().json(pagination::build(&req, &page, fetched, key_of)))
}

/// `GET /api/v1/stats/player-events/` (scope `read`).
#[utoipa::path(
    get,
    path = "/stats/player-events/",
    description = "Player events by time then id, keyset paged (scope `read`).",
    security(("token" = [])),
    params(
        ("time_from" = Option<String>, Query, description = "time >= this (any accepted time form)"),
        ("time_until" = Option<String>, Query, description = "time < this"),
        ("source" = Option<String>, Query, description = "`live`, `on-demand` or `news`"),
        ("user_identity" = Option<String>, Query),
        ("min_duration" = Option<f64>, Query, minimum = 0, description = "seconds"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 20000, description = "rows per page (default 100)"),
        ("cursor" = Option<String>, Query, description = "a cursor from `next` or `previous`"),
        ("offset" = Option<i64>, Query, minimum = 0, description = "rows to skip (old clients; prefer `cursor`)"),
    ),
    responses((status = 200, description = "A page", body = super::pagination::Page<PlayerEventRow>)),
)]
async fn list_events(
    _caller: Caller<ReadScope>,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    list::<PlayerEventRow>(req, state, List::Events, |r| Key {
        time: r.time,
        id: r.id,
    })
    .await
}

/// `GET /api/v1/stats/sessions/` (scope `read`).
#[utoipa::path(
    get,
    path = "/stats/sessions/",
    description = "Listening sessions by start then id, keyset paged (scope `read`).",
    security(("token" = [])),
    params(
        ("time_from" = Option<String>, Query, description = "time >= this (any accepted time form)"),
        ("time_until" = Option<String>, Query, description = "time < this"),
        ("source" = Option<String>, Query, description = "`live`, `on-demand` or `news`"),
        ("user_identity" = Option<String>, Query),
        ("min_duration" = Option<f64>, Query, minimum = 0, description = "seconds"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 20000, description = "rows per page (default 100)"),
        ("cursor" = Option<String>, Query, description = "a cursor from `next` or `previous`"),
        ("offset" = Option<i64>, Query, minimum = 0, description = "rows to skip (old clients; prefer `cursor`)"),
    ),
    responses((status = 200, description = "A page", body = super::pagination::Page<SessionRow>)),
)]
async fn list_sessions(
    _caller: Caller<ReadScope>,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    list::<SessionRow>(req, state, List::Sessions, |r| Key {
        time: r.time_start,
        id: r.id,
    })
    .await
}

/// `PUT /api/v1/catalog/media/` (scope `admin`): `[{"objKey", "duration", "title"?}]`, the media
/// durations that become player events' max_duration.
#[utoipa::path(
    put,
    path = "/catalog/media/",
    description = "Media lengths that become player events' max_duration (scope `admin`).",
    security(("token" = [])),
    request_body = Vec<super::openapi::MediaIn>,
    responses((status = 200, description = "Stored", body = super::openapi::MediaUpdated)),
)]
async fn put_media(
    _caller: Caller<AdminScope>,
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let Value::Array(items) = body.into_inner() else {
        return Err(ApiError::BadRequest(
            "the body must be a JSON array of {objKey, duration, title}".into(),
        ));
    };
    let mut rows = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let key = item
            .get("objKey")
            .or_else(|| item.get("obj_key"))
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty());
        // Up to ~3 years; beyond that it is not a media length but a unit mistake (and
        // PostgreSQL's interval would overflow long before 1e300).
        let duration = item
            .get("duration")
            .and_then(Value::as_f64)
            .filter(|d| d.is_finite() && *d > 0.0 && *d < 1e8);
        let title = item
            .get("title")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        match (key, duration) {
            (Some(k), _) if k.len() > MAX_OBJ_KEY => errors.push(FieldError::at(
                i,
                "objKey",
                format!(
                    "is {} bytes long; at most {MAX_OBJ_KEY} are accepted",
                    k.len()
                ),
            )),
            (Some(k), _) if seen.contains_key(k) => errors.push(FieldError::at(
                i,
                "objKey",
                format!("{k:?} is given twice in this request (also at {})", seen[k]),
            )),
            (Some(k), Some(d)) => {
                seen.insert(k.to_string(), i);
                rows.push(MediaLength {
                    obj_key: k.to_string(),
                    duration_s: d,
                    title,
                });
            }
            (None, _) => errors.push(FieldError::at(i, "objKey", "is required")),
            (_, None) => errors.push(FieldError::at(
                i,
                "duration",
                "must be a positive number of seconds, under 100 000 000",
            )),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation("invalid media", errors));
    }
    let n = db::run(&state.pool, move |conn| queries::upsert_media(conn, &rows)).await?;
    Ok(HttpResponse::Ok().json(super::openapi::MediaUpdated { updated: n }))
}
