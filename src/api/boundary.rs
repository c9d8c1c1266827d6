//! The one boundary check every request passes before any handler: what PostgreSQL would refuse
//! (U+0000 in text, in the path, a query parameter or anywhere in a JSON body) is answered with
//! a 400 naming where it was, and a body must arrive within `server.body_timeout_s` (a client
//! that sends half a body and stalls would otherwise hold a connection for good).
//! Field-specific limits (lengths, ranges, duplicates) stay with each resource's parsing.

use std::pin::Pin;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web::{Bytes, BytesMut};
use actix_web::HttpMessage;
use actix_web::{http::Method, web};
use futures_core::Stream;
use serde_json::Value;

use super::error::ApiError;
use crate::api::AppState;
use crate::domain::FieldError;

/// Refuses NUL in the path and the query, reads the body with a deadline and a size cap, and
/// refuses NUL inside it; hands the body on unchanged otherwise.
pub async fn check(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    // Refusals are answered here as responses (not errors), so the metrics and the request
    // log around this check see them like any other answer.
    if let Err(e) = check_path_and_query(&req) {
        return Ok(req.error_response(e).map_into_right_body());
    }
    if matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH) {
        let (limit, timeout) = match req.app_data::<web::Data<AppState>>() {
            Some(state) => (
                state.settings.server.max_body_bytes,
                Duration::from_secs(state.settings.server.body_timeout_s.max(1)),
            ),
            None => (usize::MAX, Duration::from_secs(30)),
        };
        let expected = req
            .headers()
            .get(actix_web::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
        let payload = req.take_payload();
        let body = match read_body(payload, expected, limit, timeout).await {
            Ok(body) => body,
            Err(e) => return Ok(req.error_response(e).map_into_right_body()),
        };
        // A media server's form may have binary parts (Plex sends a JPEG thumbnail with its
        // JSON): that handler checks the part it keeps (`nul_in_body`). Every other endpoint
        // reads bodies as JSON whatever their Content-Type, so they are checked here.
        let form = req.path().starts_with("/api/v1/ingest/") && is_form(req.headers());
        if let Some(field) = nul_in_body(&body).filter(|_| !form) {
            return Ok(req.error_response(nul_error(field)).map_into_right_body());
        }
        req.set_payload(Payload::from(body));
    }
    // Only text is kept: the request itself must not be shared while the router works on it.
    let what = format!(
        "{} {}",
        req.method(),
        super::media_servers::loggable_path(req.path())
    );
    match next.call(req).await {
        // The console's error pages are HTML on purpose (they are for people).
        Ok(res)
            if res.status().as_u16() < 400 || is_json(res.headers()) || is_html(res.headers()) =>
        {
            Ok(res.map_into_left_body())
        }
        Ok(res) => {
            let (http_req, res) = res.into_parts();
            let json = in_error_shape(&what, res.status(), res.headers());
            Ok(ServiceResponse::new(http_req, json).map_into_right_body())
        }
        Err(e) => {
            let response = e.error_response();
            if is_json(response.headers()) || is_html(response.headers()) {
                return Err(e);
            }
            Err(Shaped {
                what,
                status: response.status(),
                headers: response.headers().clone(),
            }
            .into())
        }
    }
}

/// An error a middleware returned (a refused CORS preflight), answered in the API's shape.
#[derive(Debug)]
struct Shaped {
    what: String,
    status: actix_web::http::StatusCode,
    headers: actix_web::http::header::HeaderMap,
}

impl std::fmt::Display for Shaped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} refused with {}", self.what, self.status)
    }
}

impl actix_web::ResponseError for Shaped {
    fn status_code(&self) -> actix_web::http::StatusCode {
        self.status
    }

    fn error_response(&self) -> actix_web::HttpResponse {
        in_error_shape(&self.what, self.status, &self.headers)
    }
}

fn is_html(headers: &actix_web::http::header::HeaderMap) -> bool {
    headers
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"))
}

/// Whether a request's body is a `multipart/form-data` form.
pub(crate) fn is_form(headers: &actix_web::http::header::HeaderMap) -> bool {
    headers
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        })
}

fn is_json(headers: &actix_web::http::header::HeaderMap) -> bool {
    headers
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Answers that actix-web or a middleware produced on its own (404 and 405 of the router, a
/// refused CORS preflight, a path segment that is not a number) get the API's error shape too;
/// the headers that matter to clients (Allow, Retry-After, WWW-Authenticate) are kept.
fn in_error_shape(
    what: &str,
    status: actix_web::http::StatusCode,
    headers: &actix_web::http::header::HeaderMap,
) -> actix_web::HttpResponse {
    let err = shaped_error(what, status);
    use actix_web::ResponseError;
    let mut response = err.error_response();
    *response.status_mut() = status;
    for name in [
        actix_web::http::header::ALLOW,
        actix_web::http::header::RETRY_AFTER,
        actix_web::http::header::WWW_AUTHENTICATE,
        actix_web::http::header::VARY,
    ] {
        if let Some(v) = headers.get(&name) {
            response.headers_mut().insert(name, v.clone());
        }
    }
    response
}

fn shaped_error(what: &str, status: actix_web::http::StatusCode) -> ApiError {
    use actix_web::http::StatusCode as S;
    match status {
        S::NOT_FOUND => ApiError::NotFound(format!("no such endpoint or resource: {what}")),
        S::METHOD_NOT_ALLOWED => {
            ApiError::MethodNotAllowed(format!("{what}: the method is not allowed here"))
        }
        S::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(format!("{what}: the body is too large")),
        S::FORBIDDEN => ApiError::Forbidden(format!("{what} was refused (CORS or permissions)")),
        S::UNAUTHORIZED => ApiError::Unauthorized(format!("{what} needs a token")),
        S::TOO_MANY_REQUESTS => ApiError::TooManyRequests(format!("{what}: too many requests"), 1),
        S::REQUEST_TIMEOUT => {
            ApiError::RequestTimeout(format!("{what}: the request took too long"))
        }
        S::SERVICE_UNAVAILABLE => ApiError::Unavailable(format!("{what}: try again shortly")),
        s if s.is_client_error() => ApiError::BadRequest(format!(
            "{what} was refused ({})",
            s.canonical_reason().unwrap_or("bad request")
        )),
        _ => ApiError::Internal(anyhow::anyhow!(
            "{what} failed with {status} outside the API's handlers"
        )),
    }
}

pub(crate) fn nul_error(field: String) -> ApiError {
    let message = format!("{field} contains a NUL character (U+0000), which cannot be stored");
    let problem = "contains a NUL character (U+0000); remove it";
    // An item of a batch (`[3].user_agent`) is named the way batch validation names it: by its
    // index and its field, so shippers drop that item only.
    let detail = field
        .strip_prefix('[')
        .and_then(|rest| rest.split_once(']'))
        .and_then(|(i, rest)| Some((i.parse::<usize>().ok()?, rest.trim_start_matches('.'))))
        .map(|(i, rest)| FieldError::at(i, rest, problem))
        .unwrap_or_else(|| FieldError::new(field.clone(), problem));
    ApiError::validation(message, vec![detail])
}

fn check_path_and_query(req: &ServiceRequest) -> Result<(), ApiError> {
    let path = req.uri().path();
    if path.contains("%00") || path.contains('\0') {
        return Err(nul_error("path".into()));
    }
    let query = req.query_string();
    if query.contains("%00") || query.contains('\0') {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
        let name = pairs
            .into_iter()
            .find(|(k, v)| k.contains('\0') || v.contains('\0'))
            .map(|(k, _)| k.replace('\0', "\\u0000"))
            .unwrap_or_else(|| "query".into());
        return Err(nul_error(name));
    }
    Ok(())
}

async fn read_body(
    mut payload: Payload,
    expected: Option<usize>,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    let read = async {
        // The announced length (never beyond the cap) is reserved at once, so a large body is
        // not copied again each time the buffer would have grown.
        let mut buf = BytesMut::with_capacity(expected.unwrap_or(0).min(limit));
        while let Some(chunk) =
            std::future::poll_fn(|cx| Pin::new(&mut payload).poll_next(cx)).await
        {
            let chunk = chunk.map_err(|e| {
                ApiError::BadRequest(format!("the request body could not be read: {e}"))
            })?;
            if buf.len() + chunk.len() > limit {
                return Err(ApiError::PayloadTooLarge(format!(
                    "the request body is larger than the {limit} bytes accepted"
                )));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(result) => result,
        Err(_) => Err(ApiError::RequestTimeout(format!(
            "the request body did not arrive within {} s",
            timeout.as_secs()
        ))),
    }
}

/// Where a JSON body holds a NUL character (as `events[2].objKey`), if anywhere. The raw bytes
/// are searched first, so bodies without one (nearly all) are not parsed here.
pub(crate) fn nul_in_body(body: &[u8]) -> Option<String> {
    // One vectorised pass over the bytes: a raw NUL, or a backslash starting `\u0000` (any
    // case). Ingest bodies are hundreds of kilobytes, so this scan is a visible part of their cost.
    let maybe = memchr::memchr2_iter(0, b'\\', body).any(|i| {
        body[i] == 0
            || body
                .get(i + 1..i + 6)
                .is_some_and(|w| w.eq_ignore_ascii_case(b"u0000"))
    });
    if !maybe {
        return None;
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => nul_path(&v, String::new()),
        // Not JSON: the handler's parser names the problem; a raw NUL is named here.
        Err(_) => body.contains(&0).then(|| "body".to_string()),
    }
}

fn nul_path(v: &Value, at: String) -> Option<String> {
    match v {
        Value::String(s) if s.contains('\0') => {
            Some(if at.is_empty() { "body".into() } else { at })
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, x)| nul_path(x, format!("{at}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, x)| {
            let name = k.replace('\0', "\\u0000");
            let here = if at.is_empty() {
                name
            } else {
                format!("{at}.{name}")
            };
            if k.contains('\0') {
                Some(here)
            } else {
                nul_path(x, here)
            }
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nul_is_found_and_named_where_it_is() {
        assert_eq!(nul_in_body(br#"[{"a": "x"}]"#), None);
        assert_eq!(
            nul_in_body(br#"[{"a": "x"}, {"user_agent": "Fire\u0000fox"}]"#).as_deref(),
            Some("[1].user_agent")
        );
        assert_eq!(
            nul_in_body(br#"{"events": [{"objKey": "m\u0000"}]}"#).as_deref(),
            Some("events[0].objKey")
        );
        assert_eq!(
            nul_in_body(br#"{"k\u0000": 1}"#).as_deref(),
            Some("k\\u0000")
        );
        // An escaped backslash before u0000 is text, not a NUL.
        assert_eq!(nul_in_body(br#"{"a": "\\u0000"}"#), None);
        assert_eq!(nul_in_body(b"\0garbage").as_deref(), Some("body"));
    }
}
