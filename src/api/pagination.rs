//! The one pagination helper: `{"count", "next", "previous", "results"}` pages with opaque
//! keyset cursors, and `offset` for old clients.
//!
//! A cursor names the (time, id) of the row a page continues from, the direction, and the
//! `count` computed on the walk's first page, so page 500 costs what page 1 costs: one index
//! range scan, no OFFSET, no COUNT(*).

use actix_web::HttpRequest;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::params::Params;
use crate::domain::{Direction, Key};

/// A page of results in the shape the replaced API's clients read.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// Rows matching the filters (as of the walk's first page).
    pub count: i64,
    /// The next page's absolute URL, or null on the last page.
    #[schema(required)]
    pub next: Option<String>,
    /// The previous page's absolute URL, or null on the first page.
    #[schema(required)]
    pub previous: Option<String>,
    /// The rows of this page.
    pub results: Vec<T>,
}

impl PageRequest {
    /// Refuses `offset` for lists that page by cursor only.
    pub fn cursor_only(&self, what: &str) -> Result<(), super::error::ApiError> {
        match self.start {
            Start::Offset(_) => Err(super::error::ApiError::BadRequest(format!(
                "{what} pages by cursor only; follow `next`"
            ))),
            _ => Ok(()),
        }
    }
}

/// Where a requested page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// The first page of a walk: counts, then reads from the beginning.
    First,
    /// A page continuing from a cursor.
    Cursor {
        key: Key,
        direction: Direction,
        count: i64,
    },
    /// An offset page (old clients); counts on every page.
    Offset(i64),
}

/// What a list request asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: i64,
    pub start: Start,
}

impl PageRequest {
    /// Reads `limit`, `cursor` and `offset`.
    pub fn parse(params: &mut Params, default_limit: i64, max_limit: i64) -> PageRequest {
        let limit = params.int("limit", 1..=max_limit).unwrap_or(default_limit);
        let cursor = params.get("cursor", |s| {
            decode_cursor(s).ok_or_else(|| {
                "is not a cursor this server issued; follow `next` or `previous` as given".into()
            })
        });
        let offset = params.int("offset", 0..=i64::MAX);
        let start = match (cursor, offset) {
            (Some((key, direction, count)), _) => Start::Cursor {
                key,
                direction,
                count,
            },
            (None, Some(offset)) => Start::Offset(offset),
            (None, None) => Start::First,
        };
        PageRequest { limit, start }
    }
}

fn encode_cursor(key: Key, direction: Direction, count: i64) -> String {
    let dir = match direction {
        Direction::After => 'a',
        Direction::Before => 'b',
    };
    let raw = format!("{dir}{}.{}.{count}", key.time.timestamp_micros(), key.id);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_cursor(s: &str) -> Option<(Key, Direction, i64)> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim())
        .ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let direction = match raw.chars().next()? {
        'a' => Direction::After,
        'b' => Direction::Before,
        _ => return None,
    };
    let mut parts = raw[1..].split('.');
    let micros: i64 = parts.next()?.parse().ok()?;
    let id: i64 = parts.next()?.parse().ok()?;
    let count: i64 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || count < 0 {
        return None;
    }
    // A forged cursor must not carry a time PostgreSQL refuses.
    let time = DateTime::<Utc>::from_timestamp_micros(micros)
        .filter(|t| crate::domain::time::in_range(*t))?;
    Some((Key { time, id }, direction, count))
}

/// The absolute URL of this request with `cursor`/`offset` replaced.
fn link(req: &HttpRequest, set: (&str, String)) -> String {
    let mut pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    pairs.retain(|(k, _)| k != "cursor" && k != "offset");
    pairs.push((set.0.to_string(), set.1));
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    format!("{}{}?{}", base_url(req), req.path(), query)
}

/// Where this server is reached: `server.public_url` when set; else, behind a trusted proxy,
/// what the proxy says (`Forwarded` / `X-Forwarded-Host/Proto`); else the request's own Host
/// and the connection's scheme. Forwarded headers from anyone else are ignored: they are
/// client-written, and links built from them could point anywhere (`javascript://...`).
pub fn base_url(req: &HttpRequest) -> String {
    let settings = req
        .app_data::<actix_web::web::Data<crate::app::AppState>>()
        .map(|s| s.settings.clone());
    if let Some(url) = settings
        .as_ref()
        .map(|s| s.server.public_url.trim_end_matches('/'))
        .filter(|u| !u.is_empty())
    {
        return url.to_string();
    }
    let trusted = settings.is_some_and(|s| {
        req.peer_addr()
            .is_some_and(|p| s.player.trusted_proxies.contains(&p.ip()))
    });
    let host_ok = |h: &str| {
        !h.is_empty()
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
    };
    if trusted {
        let info = req.connection_info();
        let scheme = match info.scheme() {
            "https" => "https",
            _ => "http",
        };
        if host_ok(info.host()) {
            return format!("{scheme}://{}", info.host());
        }
    }
    let scheme = if req.app_config().secure() {
        "https"
    } else {
        "http"
    };
    let host = req
        .headers()
        .get(actix_web::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| host_ok(h))
        .unwrap_or_else(|| req.app_config().host());
    format!("{scheme}://{host}")
}

/// Rows read for a page: `limit + 1` were asked for, so one more than `limit` means more exist.
pub struct Fetched<T> {
    pub rows: Vec<T>,
    pub count: i64,
}

/// Reads `limit` rows from an offset: `(conn, offset, limit)`.
pub type OffsetPage<'a, T, E> =
    dyn Fn(&mut diesel::PgConnection, i64, i64) -> Result<Vec<T>, E> + 'a;

/// Reads the rows of the page `request` asks for: the count on a walk's first page (and on
/// offset pages), carried by the cursor afterwards; keyset pages read one spare row so `build`
/// knows whether more follow. `offset` is None for lists that page by cursor only.
pub fn fetch<T, E>(
    conn: &mut diesel::PgConnection,
    request: &PageRequest,
    count: impl FnOnce(&mut diesel::PgConnection) -> Result<i64, E>,
    keyset: impl FnOnce(&mut diesel::PgConnection, Option<Key>, Direction, i64) -> Result<Vec<T>, E>,
    offset: Option<&OffsetPage<'_, T, E>>,
) -> Result<Fetched<T>, E> {
    let spare = request.limit + 1;
    match (&request.start, offset) {
        (
            Start::Cursor {
                key,
                direction,
                count,
            },
            _,
        ) => Ok(Fetched {
            count: *count,
            rows: keyset(conn, Some(*key), *direction, spare)?,
        }),
        (Start::Offset(skip), Some(page)) => Ok(Fetched {
            count: count(conn)?,
            rows: page(conn, *skip, request.limit)?,
        }),
        _ => {
            let rows = keyset(conn, None, Direction::After, spare)?;
            Ok(Fetched {
                count: count(conn)?,
                rows,
            })
        }
    }
}

/// Builds the page and its links from what was fetched for `page` (with one row to spare).
pub fn build<T: Serialize>(
    req: &HttpRequest,
    page: &PageRequest,
    fetched: Fetched<T>,
    key_of: impl Fn(&T) -> Key,
) -> Page<T> {
    let Fetched { mut rows, count } = fetched;
    let limit = page.limit as usize;
    let more = rows.len() > limit;
    let (next, previous) = match &page.start {
        Start::Offset(offset) => {
            rows.truncate(limit);
            // Any offset up to i64::MAX is a valid request (an empty page): no overflow here.
            let following = offset.saturating_add(page.limit);
            let next = (following < count).then(|| link(req, ("offset", following.to_string())));
            let previous = (*offset > 0).then(|| {
                link(
                    req,
                    (
                        "offset",
                        offset.saturating_sub(page.limit).max(0).to_string(),
                    ),
                )
            });
            (next, previous)
        }
        Start::First
        | Start::Cursor {
            direction: Direction::After,
            ..
        } => {
            rows.truncate(limit);
            let next = more
                .then(|| {
                    rows.last().map(|r| {
                        link(
                            req,
                            ("cursor", encode_cursor(key_of(r), Direction::After, count)),
                        )
                    })
                })
                .flatten();
            let previous = match page.start {
                Start::Cursor { .. } => rows.first().map(|r| {
                    link(
                        req,
                        ("cursor", encode_cursor(key_of(r), Direction::Before, count)),
                    )
                }),
                _ => None,
            };
            (next, previous)
        }
        Start::Cursor {
            direction: Direction::Before,
            ..
        } => {
            if more {
                // Rows came back oldest first; the spare one is the oldest.
                rows.remove(0);
            }
            let previous = more
                .then(|| {
                    rows.first().map(|r| {
                        link(
                            req,
                            ("cursor", encode_cursor(key_of(r), Direction::Before, count)),
                        )
                    })
                })
                .flatten();
            let next = rows.last().map(|r| {
                link(
                    req,
                    ("cursor", encode_cursor(key_of(r), Direction::After, count)),
                )
            });
            (next, previous)
        }
    };
    Page {
        count,
        next,
        previous,
        results: rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_tampering() {
        let key = Key {
            time: DateTime::from_timestamp_micros(1_730_805_332_123_456).unwrap(),
            id: 42,
        };
        let c = encode_cursor(key, Direction::Before, 1000);
        assert_eq!(decode_cursor(&c), Some((key, Direction::Before, 1000)));
        assert_eq!(decode_cursor("bm9wZQ"), None);
        assert_eq!(decode_cursor("!!"), None);
    }
}
