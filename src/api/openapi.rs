//! The API's contract: an OpenAPI 3.1 document derived from the handlers' annotations and the
//! types they read and answer (utoipa), served at `/api/v1/openapi.json`, and a small page
//! that renders it (`/api/v1/docs`), kept in the binary so it works on a machine offline.
//!
//! Each API module holds the `#[utoipa::path]` annotations of its own handlers and a `Doc`
//! listing them; this module nests them under `/api/v1` and adds what every operation shares:
//! the token scheme and the error answer.

use std::sync::OnceLock;

use actix_web::{http::header, HttpResponse};
use serde::Serialize;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use super::error::ErrorBody;

/// The whole document: every module's operations, the token scheme, the error answer.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "airlog",
        description = "As-run log and listener statistics for radio stations. Every error \
            answer is the `Error` object; operations with a lock need `Authorization: Token <key>` \
            (or `Bearer <key>`) of the scope they name.",
    ),
    paths(super::health::healthz, super::health::metrics, openapi_json, docs_page),
    components(schemas(ErrorBody, crate::domain::FieldError)),
    nest(
        (path = "/api/v1", api = super::tokens::Doc, tags = ["tokens"]),
        (path = "/api/v1", api = super::stream_events::Doc, tags = ["stream events"]),
        (path = "/api/v1", api = super::player_events::Doc, tags = ["player events"]),
        (path = "/api/v1", api = super::jobs::Doc, tags = ["jobs"]),
        // Tagged `playout` on each operation: its handlers live in submodules, whose names would
        // otherwise become tags of their own.
        (path = "/api/v1", api = super::playout::Doc),
        (path = "/api/v1", api = super::plays::Doc, tags = ["plays"]),
        (path = "/api/v1", api = super::items::Doc, tags = ["items"]),
        (path = "/api/v1", api = super::audience::Doc, tags = ["audience"]),
        (path = "/api/v1", api = super::reports::Doc, tags = ["reports"]),
        (path = "/api/v1", api = super::webhooks::Doc, tags = ["webhooks"]),
        (path = "/api/v1", api = super::media_servers::Doc, tags = ["media servers"]),
    ),
    modifiers(&Shared),
    tags(
        (name = "service", description = "Health, metrics and this document"),
    ),
)]
pub struct ApiDoc;

/// The document as JSON, built once.
pub fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .expect("the OpenAPI document serialises")
    })
}

/// What every operation shares: the token scheme, and the error answer for every 4xx and 5xx.
struct Shared;

/// The name of the security scheme operations that need a token refer to.
pub const TOKEN: &str = "token";

impl Modify for Shared {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            TOKEN,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "`Authorization: Token <key>` or `Bearer <key>`; `airlog token create` \
                         makes one with the scopes `ingest`, `read` and/or `admin`",
                    ))
                    .build(),
            ),
        );
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                            ErrorBody::name(),
                        ))))
                        .build(),
                )
                .build()
        };
        // Handlers of different modules share names (`list`): an id a tag does not qualify
        // would be ambiguous, and OpenAPI wants ids unique.
        let mut seen = std::collections::HashMap::<String, usize>::new();
        for item in doc.paths.paths.values_mut() {
            for op in operations(item) {
                if let Some(id) = &op.operation_id {
                    *seen.entry(id.clone()).or_default() += 1;
                }
            }
        }
        for item in doc.paths.paths.values_mut() {
            for op in operations(item) {
                if let Some(id) = op.operation_id.clone().filter(|id| seen[id] > 1) {
                    let tag = op
                        .tags
                        .as_ref()
                        .and_then(|t| t.first())
                        .cloned()
                        .unwrap_or_default();
                    op.operation_id = Some(format!("{}_{id}", tag.replace(' ', "_")));
                }
                let responses = &mut op.responses.responses;
                responses
                    .entry("4XX".into())
                    .or_insert_with(|| RefOr::T(error("The request was refused; `message` and `details` say why (401 without a valid token, 403 without the scope, 429 with `Retry-After`)")));
                responses.entry("5XX".into()).or_insert_with(|| {
                    RefOr::T(error(
                        "The server could not answer (503: the database is not reachable or busy)",
                    ))
                });
            }
        }
    }
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.options.as_mut(),
        item.head.as_mut(),
        item.patch.as_mut(),
        item.trace.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// `GET /api/v1/openapi.json`: this document (no token needed).
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "service",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json", body = Object)),
)]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(document_json())
}

/// The page that renders the document: plain HTML and script, nothing fetched from elsewhere.
const DOCS_PAGE: &str = include_str!("openapi.html");

/// `GET /api/v1/docs`: a browsable page of the document (no token needed).
#[utoipa::path(
    get,
    path = "/api/v1/docs",
    tag = "service",
    responses((status = 200, description = "A page that renders the OpenAPI document", content_type = "text/html", body = String)),
)]
pub async fn docs_page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
        ))
        .body(DOCS_PAGE)
}

/// How many rows an ingest stored, and how many it had already (re-sent, not stored again).
#[derive(Debug, Serialize, ToSchema)]
pub struct Ingested {
    /// Rows stored by this request.
    pub created: usize,
    /// Rows of this request that were already stored.
    pub duplicates: usize,
}

/// A list that is not paged.
#[derive(Debug, Serialize, ToSchema)]
pub struct Results<T> {
    /// The rows.
    pub results: Vec<T>,
}

/// A time as ingest and filters accept it: RFC 3339, Python `str(datetime)` or nginx
/// `$time_local` text with an offset, or Unix seconds; within 2000-01-01 to 2100-01-01 UTC.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(untagged)]
pub enum TimeIn {
    /// Text with an offset, e.g. `2024-11-05T11:15:32Z` or `05/Nov/2024:11:16:32 +0000`.
    Text(String),
    /// Unix seconds.
    Unix(f64),
}

/// One stream event as a log shipper sends it (camelCase twins of the names work too). Checked
/// field by field by `ingest::stream::check_batch`, which names every problem.
#[derive(Debug, serde::Deserialize, ToSchema)]
pub struct StreamEventIn {
    /// `hls` or `icecast`.
    #[schema(example = "hls")]
    pub origin: String,
    /// The listener's address.
    #[schema(example = "83.150.2.154")]
    pub ip: String,
    /// The HTTP method (default `GET`).
    pub method: Option<String>,
    /// The stream's path.
    #[schema(example = "/320.mp3")]
    pub path: String,
    /// The HTTP status answered.
    #[schema(example = 200)]
    pub status: i64,
    /// Bytes sent to the listener.
    pub bytes_sent: i64,
    /// The listener's user agent.
    pub user_agent: Option<String>,
    /// The Referer header.
    pub referer: Option<String>,
    /// When the connection started.
    pub time_start: TimeIn,
    /// When it ended (not before `time_start`).
    pub time_end: TimeIn,
    /// Seconds connected; derived from the times when absent, must agree with them otherwise.
    pub seconds_connected: Option<i64>,
}

/// One player event from a web player; the server's clock gives its time.
#[derive(Debug, serde::Deserialize, ToSchema)]
pub struct PlayerEventIn {
    /// `playing`, `paused`, `stopped` or `buffering`.
    #[schema(example = "playing")]
    pub state: String,
    /// `live`, `on-demand` or `news`.
    #[schema(example = "live")]
    pub source: String,
    /// The media's key (1 to 256 characters; `obj_key` works too).
    #[serde(rename = "objKey")]
    pub obj_key: String,
    /// The media's length in seconds, if known.
    pub duration: Option<f64>,
    /// The player's own clock (Unix milliseconds or text), kept for reference.
    pub ts: Option<TimeIn>,
}

/// The body of the browser ingest.
#[derive(Debug, serde::Deserialize, ToSchema)]
pub struct PlayerEventsIn {
    /// The events, oldest first.
    pub events: Vec<PlayerEventIn>,
}

/// One player event with its own time and identity (backfills, media servers).
#[derive(Debug, serde::Deserialize, ToSchema)]
pub struct TrustedPlayerEventIn {
    /// `playing`, `paused`, `stopped` or `buffering`.
    pub state: String,
    /// `live`, `on-demand` or `news`.
    pub source: String,
    /// The media's key (1 to 256 characters).
    #[serde(rename = "objKey")]
    pub obj_key: String,
    /// The media's length in seconds, if known.
    pub duration: Option<f64>,
    /// When it happened.
    pub time: TimeIn,
    /// When it ended, if known.
    pub time_end: Option<TimeIn>,
    /// Who listened (`account.user:ID` or `anonymous:DEVICE`).
    pub user_identity: String,
    /// The listener's device.
    pub device_key: String,
}

/// A web player's "still listening".
#[derive(Debug, serde::Deserialize, ToSchema)]
pub struct HeartbeatIn {
    /// `live` (default), `on-demand` or `news`.
    pub source: Option<String>,
    /// What plays.
    #[serde(rename = "objKey")]
    pub obj_key: Option<String>,
}

/// A media length for `PUT /catalog/media/`.
#[derive(Debug, serde::Deserialize, ToSchema)]
pub struct MediaIn {
    /// The media's key, as player events name it (at most 256 bytes, once per request).
    #[serde(rename = "objKey")]
    pub obj_key: String,
    /// Its length in seconds (positive, under 100 000 000).
    pub duration: f64,
    /// Its title.
    pub title: Option<String>,
}

/// How many media lengths were stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct MediaUpdated {
    /// Rows inserted or updated.
    pub updated: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Operations anyone may call; every other one must say it needs a token.
    const OPEN: &[&str] = &[
        "get /healthz",
        "get /metrics",
        "get /api/v1/openapi.json",
        "get /api/v1/docs",
        "put /api/v1/stats/ingest/player-events/",
        "post /api/v1/stats/ingest/player-events/",
        "put /api/v1/stats/heartbeat/",
        "post /api/v1/stats/heartbeat/",
        // The token is in the path (media servers cannot send headers).
        "post /api/v1/ingest/{server}/{token}",
    ];

    #[test]
    fn every_operation_documents_the_error_answer_and_its_token() {
        let doc: serde_json::Value = serde_json::from_str(document_json()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let mut n = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                n += 1;
                let name = format!("{method} {path}");
                for range in ["4XX", "5XX"] {
                    assert_eq!(
                        op["responses"][range]["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/Error",
                        "{name} {range}"
                    );
                }
                let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
                assert_eq!(secured, !OPEN.contains(&name.as_str()), "{name}");
            }
        }
        assert_eq!(n, 56, "operations in the document");
        let mut ids: Vec<&str> = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .map(|op| op["operationId"].as_str().unwrap())
            .collect();
        ids.sort();
        let all = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), all, "operation ids are unique");
    }

    #[test]
    fn every_reference_names_a_schema_of_the_document() {
        let text = document_json();
        let doc: serde_json::Value = serde_json::from_str(text).unwrap();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for part in text.split("\"#/components/schemas/").skip(1) {
            let name = &part[..part.find('"').unwrap()];
            assert!(
                schemas.contains_key(name),
                "{name} is referenced, not defined"
            );
        }
    }
}
