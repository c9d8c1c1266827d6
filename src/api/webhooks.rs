//! Webhook endpoints (scope `admin`): `GET|POST /webhooks/`, `GET|PATCH|DELETE /webhooks/{id}`,
//! their deliveries, a redeliver action and a test action. Sending is the worker's
//! (`crate::webhooks`); these only write endpoints and queue deliveries.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::auth::{AdminScope, Caller};
use super::error::ApiError;
use super::openapi::Results;
use super::params::Params;
use crate::api::AppState;
use crate::config::WebhookSettings;
use crate::db::webhooks::{
    self as queries, AttemptRow, DeliveryRow, EndpointRow, EndpointSettings,
};
use crate::db::{self, playout};
use crate::domain::webhook::{DeliveryStatus, Event, Preset};
use crate::domain::FieldError;
use crate::webhooks::body::WebhookBody;
use crate::webhooks::guard::{self, Guard};

/// The operations of this module, nested under `/api/v1` by the API document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        create_webhook,
        list_webhooks,
        get_webhook,
        update_webhook,
        delete_webhook,
        list_deliveries,
        get_delivery,
        redeliver,
        test_webhook
    ),
    components(schemas(WebhookBody))
)]
pub struct Doc;

/// Registers the routes under `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/webhooks/", web::post().to(create_webhook))
        .route("/webhooks/", web::get().to(list_webhooks))
        .route("/webhooks/{id}", web::get().to(get_webhook))
        .route("/webhooks/{id}", web::patch().to(update_webhook))
        .route("/webhooks/{id}", web::delete().to(delete_webhook))
        .route("/webhooks/{id}/deliveries", web::get().to(list_deliveries))
        .route(
            "/webhooks/{id}/deliveries/{delivery}",
            web::get().to(get_delivery),
        )
        .route(
            "/webhooks/{id}/deliveries/{delivery}/redeliver",
            web::post().to(redeliver),
        )
        .route("/webhooks/{id}/test", web::post().to(test_webhook));
}

/// A new endpoint.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct WebhookIn {
    /// Where to send: http(s), resolving to public addresses (see `webhooks.allow_private`).
    #[schema(example = "https://radio.example/hooks/airlog")]
    url: String,
    /// The events to send: `on_air`, `track`, `diffusion_start`, `diffusion_cancel`,
    /// `station_offline`, `station_online`, `listeners`.
    events: Vec<String>,
    /// The only station whose events it gets (by name); absent: every station's.
    station: Option<String>,
    /// `generic` (default), `discord`, `tunein` or `mastodon`.
    preset: Option<String>,
    /// The key of `X-Airlog-Signature` (the Mastodon preset sends it as its access token);
    /// made up when absent. Shown in this answer only.
    secret: Option<String>,
    /// Default true.
    enabled: Option<bool>,
}

/// Changes to an endpoint: the fields given.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct WebhookPatch {
    url: Option<String>,
    events: Option<Vec<String>>,
    /// A station's name, or `""` for every station.
    station: Option<String>,
    preset: Option<String>,
    /// A new secret (never shown again).
    secret: Option<String>,
    enabled: Option<bool>,
}

/// A created endpoint, with its secret: the only time it is shown.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct WebhookCreated {
    #[serde(flatten)]
    endpoint: EndpointRow,
    /// The signing key; keep it, it is not shown again.
    secret: String,
}

/// Longest secret accepted.
const MAX_SECRET: usize = 256;

/// Checks settings at the edge, every problem named by its field; the URL is resolved and
/// refused when it leads to a private network.
async fn checked(
    s: EndpointSettings,
    config: &WebhookSettings,
) -> Result<EndpointSettings, ApiError> {
    let mut errors = Vec::new();
    let preset = Preset::parse(&s.preset);
    if preset.is_none() {
        errors.push(FieldError::new(
            "preset",
            format!("must be one of {}", Preset::names()),
        ));
    }
    if s.events.is_empty() {
        errors.push(FieldError::new("events", "name at least one event"));
    }
    for (i, name) in s.events.iter().enumerate() {
        match Event::parse(name) {
            Some(Event::Ping) | None => errors.push(FieldError::new(
                format!("events[{i}]"),
                "must be one of on_air, track, diffusion_start, diffusion_cancel, station_offline, station_online, listeners",
            )),
            Some(e) if preset.is_some_and(|p| !p.accepts(e)) => errors.push(FieldError::new(
                format!("events[{i}]"),
                format!("the {} preset sends only on_air and track", s.preset),
            )),
            Some(_) => {}
        }
    }
    if s.secret.is_empty() || s.secret.len() > MAX_SECRET {
        errors.push(FieldError::new(
            "secret",
            format!("must be 1 to {MAX_SECRET} bytes"),
        ));
    }
    match guard::parse_url(&s.url) {
        Err(e) => errors.push(FieldError::new("url", e)),
        Ok(url) => {
            if let Err(e) = Guard::new(config).resolve(&url).await {
                errors.push(FieldError::new("url", e));
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation("invalid webhook", errors));
    }
    let mut events = s.events;
    events.sort();
    events.dedup();
    Ok(EndpointSettings { events, ..s })
}

/// The station an endpoint is for, by name: None for every station (no name, or `""`).
async fn station_of(state: &AppState, name: Option<String>) -> Result<Option<i64>, ApiError> {
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    let wanted = name.clone();
    let found = db::run(&state.pool, move |c| playout::station(c, &wanted)).await?;
    match found {
        Some(s) => Ok(Some(s.id)),
        None => Err(ApiError::validation(
            "invalid webhook",
            vec![FieldError::new(
                "station",
                format!("no station named {name:?}"),
            )],
        )),
    }
}

/// 32 random bytes as hex.
fn new_secret() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness for a secret: {e}"))?;
    Ok(hex::encode(bytes))
}

fn no_endpoint(id: i64) -> ApiError {
    ApiError::NotFound(format!("no webhook {id}"))
}

/// Creates an endpoint; the answer shows its secret once.
#[utoipa::path(
    post,
    path = "/webhooks/",
    description = "Creates a webhook endpoint (scope `admin`). Its URL is refused when it resolves to a private, loopback or link-local address unless the configuration allows it. The answer is the only one that shows the secret.",
    security(("token" = [])),
    request_body = WebhookIn,
    responses((status = 201, description = "Created", body = WebhookCreated)),
)]
async fn create_webhook(
    caller: Caller<AdminScope>,
    state: web::Data<AppState>,
    body: web::Json<WebhookIn>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let secret = match body.secret {
        Some(s) => s,
        None => new_secret()?,
    };
    let settings = checked(
        EndpointSettings {
            station_id: station_of(&state, body.station).await?,
            url: body.url,
            events: body.events,
            preset: body
                .preset
                .unwrap_or_else(|| Preset::Generic.as_str().into()),
            secret,
            enabled: body.enabled.unwrap_or(true),
        },
        &state.settings.webhooks,
    )
    .await?;
    let secret = settings.secret.clone();
    let endpoint = db::run(&state.pool, move |c| queries::insert_endpoint(c, &settings)).await?;
    tracing::info!(
        token = caller.token_name.as_str(),
        endpoint = endpoint.id,
        "webhook endpoint created"
    );
    Ok(HttpResponse::Created().json(WebhookCreated { endpoint, secret }))
}

/// Every endpoint, with its state.
#[utoipa::path(
    get,
    path = "/webhooks/",
    description = "Every webhook endpoint with its state (`ok` or `failing`, and the last error); secrets are never shown (scope `admin`).",
    security(("token" = [])),
    responses((status = 200, description = "Endpoints, oldest first", body = Results<EndpointRow>)),
)]
async fn list_webhooks(
    _caller: Caller<AdminScope>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let results = db::run(&state.pool, queries::endpoints).await?;
    Ok(HttpResponse::Ok().json(Results { results }))
}

/// One endpoint.
#[utoipa::path(
    get,
    path = "/webhooks/{id}",
    description = "One webhook endpoint with its state (scope `admin`).",
    security(("token" = [])),
    params(("id" = i64, Path, description = "the endpoint's id")),
    responses((status = 200, description = "The endpoint", body = EndpointRow)),
)]
async fn get_webhook(
    _caller: Caller<AdminScope>,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let endpoint = db::run(&state.pool, move |c| queries::endpoint(c, id))
        .await?
        .ok_or_else(|| no_endpoint(id))?;
    Ok(HttpResponse::Ok().json(endpoint))
}

/// Changes the fields given; a new URL is checked as on creation.
#[utoipa::path(
    patch,
    path = "/webhooks/{id}",
    description = "Changes the given fields of a webhook endpoint (scope `admin`). A new URL, or enabling it again, starts its state afresh.",
    security(("token" = [])),
    params(("id" = i64, Path, description = "the endpoint's id")),
    request_body = WebhookPatch,
    responses((status = 200, description = "The endpoint as changed", body = EndpointRow)),
)]
async fn update_webhook(
    _caller: Caller<AdminScope>,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    body: web::Json<WebhookPatch>,
) -> Result<HttpResponse, ApiError> {
    let (id, patch) = (id.into_inner(), body.into_inner());
    let base = db::run(&state.pool, move |c| queries::endpoint(c, id))
        .await?
        .ok_or_else(|| no_endpoint(id))?;
    let settings = checked(
        EndpointSettings {
            station_id: match patch.station {
                None => base.station_id,
                name => station_of(&state, name).await?,
            },
            url: patch.url.unwrap_or(base.url),
            events: patch.events.unwrap_or(base.events),
            preset: patch.preset.unwrap_or(base.preset),
            secret: patch.secret.unwrap_or(base.secret),
            enabled: patch.enabled.unwrap_or(base.enabled),
        },
        &state.settings.webhooks,
    )
    .await?;
    let endpoint = db::run(&state.pool, move |c| {
        queries::update_endpoint(c, id, &settings)
    })
    .await?
    .ok_or_else(|| no_endpoint(id))?;
    Ok(HttpResponse::Ok().json(endpoint))
}

/// Deletes an endpoint and its deliveries.
#[utoipa::path(
    delete,
    path = "/webhooks/{id}",
    description = "Deletes a webhook endpoint and its deliveries (scope `admin`).",
    security(("token" = [])),
    params(("id" = i64, Path, description = "the endpoint's id")),
    responses((status = 204, description = "Deleted")),
)]
async fn delete_webhook(
    _caller: Caller<AdminScope>,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    if db::run(&state.pool, move |c| queries::delete_endpoint(c, id)).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(no_endpoint(id))
    }
}

/// An endpoint's deliveries, newest first.
#[utoipa::path(
    get,
    path = "/webhooks/{id}/deliveries",
    description = "An endpoint's deliveries, newest first, with how their last attempt went: status, attempts, HTTP status, latency, the start of the answer; a coalesced delivery names the later one sent in its place (scope `admin`).",
    security(("token" = [])),
    params(
        ("id" = i64, Path, description = "the endpoint's id"),
        ("status" = Option<String>, Query, description = "`pending`, `delivered`, `coalesced` or `failed`"),
        ("before" = Option<i64>, Query, description = "only deliveries with a smaller id (the next page: the last id seen)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "default 100"),
    ),
    responses((status = 200, description = "Deliveries, newest first", body = Results<DeliveryRow>)),
)]
async fn list_deliveries(
    _caller: Caller<AdminScope>,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let mut params = Params::parse(req.query_string())?;
    let limit = params.int("limit", 1..=1000).unwrap_or(100);
    let before = params.int("before", 1..=i64::MAX);
    let status = params.get("status", |s| {
        s.parse::<DeliveryStatus>().map(DeliveryStatus::as_str)
    });
    params.finish()?;
    let results = db::run(&state.pool, move |c| -> Result<_, ApiError> {
        queries::endpoint(c, id)?.ok_or_else(|| no_endpoint(id))?;
        Ok(queries::deliveries(c, id, status, before, limit)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(Results { results }))
}

/// A delivery with every attempt.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct DeliveryDetail {
    #[serde(flatten)]
    delivery: DeliveryRow,
    /// Every attempt, oldest first.
    attempt_log: Vec<AttemptRow>,
}

/// One delivery and its attempts.
#[utoipa::path(
    get,
    path = "/webhooks/{id}/deliveries/{delivery}",
    description = "One delivery with every attempt made: when, the HTTP status, the latency, the start of the answer or why it failed (scope `admin`).",
    security(("token" = [])),
    params(
        ("id" = i64, Path, description = "the endpoint's id"),
        ("delivery" = i64, Path, description = "the delivery's id"),
    ),
    responses((status = 200, description = "The delivery", body = DeliveryDetail)),
)]
async fn get_delivery(
    _caller: Caller<AdminScope>,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (id, delivery) = path.into_inner();
    let detail = db::run(&state.pool, move |c| -> Result<_, ApiError> {
        let Some(row) = queries::delivery(c, id, delivery)? else {
            return Ok(None);
        };
        let attempt_log = queries::attempts(c, delivery)?;
        Ok(Some(DeliveryDetail {
            delivery: row,
            attempt_log,
        }))
    })
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("webhook {id} has no delivery {delivery}")))?;
    Ok(HttpResponse::Ok().json(detail))
}

/// Queues a delivery again.
#[utoipa::path(
    post,
    path = "/webhooks/{id}/deliveries/{delivery}/redeliver",
    description = "Queues the event of a delivery again, as a new delivery (a new `X-Airlog-Delivery`) at the end of the endpoint's queue (scope `admin`).",
    security(("token" = [])),
    params(
        ("id" = i64, Path, description = "the endpoint's id"),
        ("delivery" = i64, Path, description = "the delivery's id"),
    ),
    responses((status = 202, description = "Queued", body = DeliveryRow)),
)]
async fn redeliver(
    _caller: Caller<AdminScope>,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (id, delivery) = path.into_inner();
    let queued = db::run(&state.pool, move |c| queries::redeliver(c, id, delivery))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("webhook {id} has no delivery {delivery}")))?;
    Ok(HttpResponse::Accepted().json(queued))
}

/// Queues a sample event (`ping`) for the endpoint, whatever its events.
#[utoipa::path(
    post,
    path = "/webhooks/{id}/test",
    description = "Queues a `ping` event for the endpoint, whatever events it asked for; its delivery shows how the receiver answered (scope `admin`). 409 when the endpoint is disabled.",
    security(("token" = [])),
    params(("id" = i64, Path, description = "the endpoint's id")),
    responses((status = 202, description = "Queued", body = DeliveryRow)),
)]
async fn test_webhook(
    _caller: Caller<AdminScope>,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let sample =
        serde_json::json!({"message": "a test from airlog", "sent_at": chrono::Utc::now()});
    let queued = db::run(&state.pool, move |c| -> Result<_, ApiError> {
        let endpoint = queries::endpoint(c, id)?.ok_or_else(|| no_endpoint(id))?;
        // Nothing is sent to a disabled endpoint: a test would wait for ever.
        if !endpoint.enabled {
            return Err(ApiError::Conflict(format!(
                "webhook {id} is disabled; enable it to test it"
            )));
        }
        Ok(queries::enqueue_for(c, id, Event::Ping.as_str(), &sample)?)
    })
    .await?;
    Ok(HttpResponse::Accepted().json(queued))
}
