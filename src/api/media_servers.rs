//! Media servers in: `POST /api/v1/ingest/{server}` (token in the Authorization header) and
//! `POST /api/v1/ingest/{server}/{token}` (token in the path, for servers that cannot set
//! headers: Plex, Emby). Each notification becomes one trusted player event
//! (`ingest::media_servers`), stored as the trusted ingest stores them.

use std::borrow::Cow;
use std::collections::HashSet;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Mutex, OnceLock};

use actix_web::web::{Bytes, BytesMut};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use futures_core::Stream;
use serde::Serialize;

use super::auth::{self, Caller, IngestScope};
use super::error::ApiError;
use crate::api::AppState;
use crate::db::player_events::{self as queries, NewPlayerEvent};
use crate::db::{self};
use crate::domain::FieldError;
use crate::ingest::media_servers::{parse, Server};
use crate::ingest::player::check_batch;

/// Most bytes of the JSON part of a notification (Plex adds a thumbnail part, which is skipped).
const MAX_JSON: usize = 1024 * 1024;

/// The operations of this module, nested under `/api/v1` by the API document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(ingest_with_header, ingest_with_path_token))]
pub struct Doc;

/// Registers the routes under `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/ingest/{server}", web::post().to(ingest_with_header))
        .route(
            "/ingest/{server}/{token}",
            web::post().to(ingest_with_path_token),
        );
}

/// What a notification did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct MediaIngested {
    /// Player events stored.
    created: usize,
    /// Player events already stored (the server sent the notification again).
    duplicates: usize,
    /// Notifications that are not about playing (a library update, a scrobble): nothing stored.
    ignored: usize,
}

/// The form Plex (and Emby, when set to send forms) posts: the notification as JSON text.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(super) struct MediaForm {
    /// Plex's notification (JSON text).
    payload: Option<String>,
    /// Emby's notification (JSON text).
    data: Option<String>,
}

/// The path as logs may show it: a token in an ingest path is replaced by `<token>`.
pub fn loggable_path(path: &str) -> Cow<'_, str> {
    let Some(rest) = path.strip_prefix("/api/v1/ingest/") else {
        return Cow::Borrowed(path);
    };
    match rest.split_once('/') {
        Some((server, token)) if !token.is_empty() => {
            Cow::Owned(format!("/api/v1/ingest/{server}/<token>"))
        }
        _ => Cow::Borrowed(path),
    }
}

/// A notification from a media server, token in the Authorization header.
#[utoipa::path(
    post,
    path = "/ingest/{server}",
    description = "A playback notification from Jellyfin (its webhook plugin), Plex or Emby, stored as a trusted player event (scope `ingest`). Notifications that are not about playing are answered with `ignored`; a repeated one stores nothing twice.",
    security(("token" = [])),
    params(("server" = String, Path, description = "`jellyfin`, `plex` or `emby`")),
    request_body(content(
        (Object = "application/json"),
        (MediaForm = "multipart/form-data"),
    )),
    responses((status = 200, description = "Read", body = MediaIngested)),
)]
async fn ingest_with_header(
    caller: Caller<IngestScope>,
    req: HttpRequest,
    state: web::Data<AppState>,
    server: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    ingest(&state, &req, &server, payload, &caller.token_name).await
}

/// A notification from a media server, token in the path.
#[utoipa::path(
    post,
    path = "/ingest/{server}/{token}",
    description = "The same, with the API token (scope `ingest`) in the path, for servers that cannot send headers (Plex, Emby). The token is never logged.",
    params(
        ("server" = String, Path, description = "`jellyfin`, `plex` or `emby`"),
        ("token" = String, Path, description = "an API token with scope `ingest`"),
    ),
    request_body(content(
        (Object = "application/json"),
        (MediaForm = "multipart/form-data"),
    )),
    responses((status = 200, description = "Read", body = MediaIngested)),
)]
async fn ingest_with_path_token(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (server, token) = path.into_inner();
    let caller = auth::caller_from_key::<IngestScope>(&req, &token).await?;
    ingest(&state, &req, &server, payload, &caller.token_name).await
}

async fn ingest(
    state: &AppState,
    req: &HttpRequest,
    server: &str,
    payload: web::Payload,
    token: &str,
) -> Result<HttpResponse, ApiError> {
    let server = Server::parse(server).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no media server {server:?}: jellyfin, plex or emby"
        ))
    })?;
    let body = match notification_json(req, payload, server).await {
        Ok(b) => b,
        Err(problem) => return Err(refused(server, problem)),
    };
    let notification = parse(server, &body, Utc::now()).map_err(|p| refused(server, p))?;
    let peer = req
        .peer_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let Some(event) = notification.player_event(server, peer) else {
        return Ok(HttpResponse::Ok().json(MediaIngested {
            created: 0,
            duplicates: 0,
            ignored: 1,
        }));
    };
    // What the server sent, checked as any trusted event (times within range, key lengths).
    let events = check_batch(&[event], true).map_err(|details| {
        let first = details
            .into_iter()
            .next()
            .expect("a refusal names a problem");
        refused(
            server,
            FieldError::new(server.field_of(&first.field), first.message),
        )
    })?;
    let created = db::run(&state.pool, move |conn| {
        let event = &events[0];
        let (identity, device) = (
            event.user_identity.as_deref().expect("checked"),
            event.device_key.as_deref().expect("checked"),
        );
        let created = queries::insert(
            conn,
            &[NewPlayerEvent {
                event,
                time: event.time.expect("trusted events have a time"),
                user_identity: identity,
                device_key: device,
                listener_key: None,
            }],
        )?;
        queries::heartbeat(
            conn,
            device,
            identity,
            event.source,
            Some(&event.obj_key),
            event.state.is_listening(),
        )?;
        Ok::<_, ApiError>(created)
    })
    .await?;
    tracing::info!(
        server = server.as_str(),
        token,
        event = notification.event.as_str(),
        created,
        "media server notification read"
    );
    Ok(HttpResponse::Ok().json(MediaIngested {
        created,
        duplicates: 1 - created,
        ignored: 0,
    }))
}

/// A 400 naming the field at fault; logged the first time each server has the problem (a
/// misconfigured server repeats it with every play), never with the body.
fn refused(server: Server, problem: FieldError) -> ApiError {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let text = format!("{} {}", problem.field, problem.message);
    let key = format!("{}: {text}", server.as_str());
    let first = {
        let mut seen = SEEN
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        seen.len() < 1000 && seen.insert(key)
    };
    if first {
        tracing::warn!(
            server = server.as_str(),
            problem = text.as_str(),
            "media server notification refused (logged once per problem)"
        );
    }
    ApiError::validation(
        format!(
            "not a {} notification airlog reads: {text}",
            server.as_str()
        ),
        vec![problem],
    )
}

/// The notification's JSON: the whole body, or the form field the server puts it in.
async fn notification_json(
    req: &HttpRequest,
    payload: web::Payload,
    server: Server,
) -> Result<serde_json::Value, FieldError> {
    let bytes = if super::boundary::is_form(req.headers()) {
        let part = form_field(req, payload, server.form_field()).await?;
        // The boundary check leaves forms to their readers: PostgreSQL takes no NUL in text.
        if let Some(field) = super::boundary::nul_in_body(&part) {
            return Err(FieldError::new(field, "contains a NUL character (U+0000)"));
        }
        part
    } else {
        read_all(payload).await?
    };
    serde_json::from_slice(&bytes).map_err(|e| FieldError::new("body", format!("is not JSON: {e}")))
}

async fn next<S: Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    std::future::poll_fn(|cx| Pin::new(&mut *s).poll_next(cx)).await
}

async fn read_all(mut payload: web::Payload) -> Result<Bytes, FieldError> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = next(&mut payload).await {
        let chunk =
            chunk.map_err(|e| FieldError::new("body", format!("could not be read: {e}")))?;
        if buf.len() + chunk.len() > MAX_JSON {
            return Err(FieldError::new(
                "body",
                format!("is larger than {MAX_JSON} bytes"),
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

async fn form_field(
    req: &HttpRequest,
    payload: web::Payload,
    name: &str,
) -> Result<Bytes, FieldError> {
    let unreadable = |e: actix_multipart::MultipartError| {
        FieldError::new("body", format!("is not a readable form: {e}"))
    };
    let mut form = actix_multipart::Multipart::new(req.headers(), payload);
    while let Some(field) = next(&mut form).await {
        let mut field = field.map_err(unreadable)?;
        let wanted = field.name() == Some(name);
        let mut buf = BytesMut::new();
        // Other parts (Plex's thumbnail) are read past, not kept.
        while let Some(chunk) = next(&mut field).await {
            let chunk = chunk.map_err(unreadable)?;
            if wanted {
                if buf.len() + chunk.len() > MAX_JSON {
                    return Err(FieldError::new(
                        name,
                        format!("is larger than {MAX_JSON} bytes"),
                    ));
                }
                buf.extend_from_slice(&chunk);
            }
        }
        if wanted {
            return Ok(buf.freeze());
        }
    }
    Err(FieldError::new(name, "is missing from the form"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_in_ingest_paths_are_not_logged() {
        assert_eq!(
            loggable_path("/api/v1/ingest/plex/9986ab9b46ee7f5501f554a80b5725337c2c56a6"),
            "/api/v1/ingest/plex/<token>"
        );
        assert_eq!(loggable_path("/api/v1/ingest/plex"), "/api/v1/ingest/plex");
        assert_eq!(loggable_path("/api/v1/onair/"), "/api/v1/onair/");
    }
}
