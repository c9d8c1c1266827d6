//! Stream events: ingest for log shippers, paged list and exports for analysts.

use std::io::Write;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{Days, NaiveDate, TimeZone, Utc};

use super::auth::{Caller, IngestScope, ReadScope};
use super::error::ApiError;
use super::export;
use super::pagination::{self, PageRequest};
use super::params::Params;
use crate::app::AppState;
use crate::db::stream_events::{self as queries, Filter, StreamEventRow};
use crate::db::{self};
use crate::domain::stream_event::Origin;
use crate::domain::FieldError;
use crate::domain::{Direction, Key};
use crate::ingest::stream::{parse_batch, BatchError, MAX_BATCH};

/// Largest `limit` of a list page.
pub const MAX_LIMIT: i64 = 20_000;
const DEFAULT_LIMIT: i64 = 100;
/// Rows read per round trip by the exports.
const EXPORT_CHUNK: i64 = 5_000;
/// At most this many per-field problems are listed in a 400.
const MAX_DETAILS: usize = 200;

/// The operations of this module, nested under `/api/v1` by the API document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(ingest, list, export_csv, export_ndjson, export_icecast))]
pub struct Doc;

/// Registers the routes under `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/stats/ingest/stream-events/", web::post().to(ingest))
        .route("/stats/stream-events/", web::get().to(list))
        .route("/stats/stream-events/export.csv", web::get().to(export_csv))
        .route(
            "/stats/stream-events/export.ndjson",
            web::get().to(export_ndjson),
        )
        .route(
            r"/stats/stream-events/export/icecast/{day:\d{4}-\d{2}-\d{2}}.log",
            web::get().to(export_icecast),
        );
}

/// `POST /api/v1/stats/ingest/stream-events/`: a bare JSON array of events. All or nothing:
/// one invalid item rejects the batch, listing every problem. Re-posted events are counted as
/// duplicates, not stored again.
#[utoipa::path(
    post,
    path = "/stats/ingest/stream-events/",
    description = "A batch of stream events from a log shipper (scope `ingest`), all or nothing; re-sent events are counted as duplicates.",
    security(("token" = [])),
    request_body(content = Vec<super::openapi::StreamEventIn>, description = "At most 10 000 events"),
    responses((status = 201, description = "Stored", body = super::openapi::Ingested)),
)]
async fn ingest(
    caller: Caller<IngestScope>,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let counter = &state.metrics.ingest_events;
    let events = match parse_batch(&body) {
        Ok(events) => events,
        Err(BatchError::Body(message)) => return Err(ApiError::BadRequest(message)),
        Err(BatchError::TooMany(n)) => {
            return Err(ApiError::PayloadTooLarge(format!(
                "the batch has {n} events; at most {MAX_BATCH} are accepted per request"
            )))
        }
        Err(BatchError::Items(mut details)) => {
            let items = details
                .iter()
                .filter_map(|d| d.index)
                .collect::<std::collections::BTreeSet<_>>()
                .len();
            counter
                .with_label_values(&["stream", "rejected"])
                .inc_by(items as u64);
            let total = details.len();
            details.truncate(MAX_DETAILS);
            let shown = if total > MAX_DETAILS {
                format!(" (first {MAX_DETAILS} listed)")
            } else {
                String::new()
            };
            return Err(ApiError::validation(
                format!("{total} problems in the batch{shown}; nothing was stored"),
                details,
            ));
        }
    };
    let total = events.len();
    // Never closed, so acquiring only waits.
    let _writer = state
        .ingest_writers
        .acquire()
        .await
        .map_err(|_| ApiError::Unavailable("the server is shutting down".into()))?;
    let created = db::run(&state.pool, move |conn| {
        queries::insert_batch(conn, &events)
    })
    .await?;
    let duplicates = total - created;
    counter
        .with_label_values(&["stream", "created"])
        .inc_by(created as u64);
    counter
        .with_label_values(&["stream", "duplicate"])
        .inc_by(duplicates as u64);
    tracing::info!(
        token = caller.token_name.as_str(),
        rows = total,
        created,
        duplicates,
        "stream events ingested"
    );
    Ok(HttpResponse::Created()
        .json(serde_json::json!({ "created": created, "duplicates": duplicates })))
}

/// Reads the list filters shared by the list and the exports.
fn parse_filter(params: &mut Params) -> Filter {
    Filter {
        time_from: params.time("time_from"),
        time_until: params.time("time_until"),
        origin: params.get("origin", |s| {
            Origin::parse(s).ok_or_else(|| format!("{s:?} is not an origin (hls or icecast)"))
        }),
        path: params.text("path").map(str::to_string),
        status: params.int("status", 100..=599).map(|s| s as i32),
        min_seconds: params
            .int("min_seconds", 0..=i64::from(i32::MAX))
            .map(|s| s as i32),
        min_bytes: params.int("min_bytes", 0..=i64::MAX),
    }
}

fn key_of(row: &StreamEventRow) -> Key {
    Key {
        time: row.time_start,
        id: row.id,
    }
}

/// `GET /api/v1/stats/stream-events/`: events by time_start then id, keyset paged.
#[utoipa::path(
    get,
    path = "/stats/stream-events/",
    description = "Stream events by time_start then id, keyset paged (scope `read`).",
    security(("token" = [])),
    params(
        ("time_from" = Option<String>, Query, description = "time_start >= this (any accepted time form)"),
        ("time_until" = Option<String>, Query, description = "time_start < this"),
        ("origin" = Option<String>, Query, description = "`hls` or `icecast`"),
        ("path" = Option<String>, Query, description = "the stream's path"),
        ("status" = Option<i64>, Query, minimum = 100, maximum = 599),
        ("min_seconds" = Option<i64>, Query, minimum = 0, maximum = 2147483647),
        ("min_bytes" = Option<i64>, Query, minimum = 0),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 20000, description = "rows per page (default 100)"),
        ("cursor" = Option<String>, Query, description = "a cursor from `next` or `previous`"),
        ("offset" = Option<i64>, Query, minimum = 0, description = "rows to skip (old clients; prefer `cursor`)"),
    ),
    responses((status = 200, description = "A page", body = super::pagination::Page<StreamEventRow>)),
)]
async fn list(
    _caller: Caller<ReadScope>,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let mut params = Params::parse(req.query_string())?;
    let filter = parse_filter(&mut params);
    let page = PageRequest::parse(&mut params, DEFAULT_LIMIT, MAX_LIMIT);
    params.finish()?;
    let request = page.clone();
    let fetched = db::run(&state.pool, move |conn| {
        pagination::fetch(
            conn,
            &request,
            |c| queries::count(c, &filter),
            |c, key, dir, n| queries::keyset_page(c, &filter, key, dir, n),
            Some(&|c, skip, n| queries::offset_page(c, &filter, skip, n)),
        )
    })
    .await?;
    Ok(HttpResponse::Ok().json(pagination::build(&req, &page, fetched, key_of)))
}

/// Streams rows chunk by chunk: `fetch` reads the chunk after a key, `key_of` gives a row's
/// key in that order, `write` formats a row. Stops early when the client has gone.
fn walk(
    conn: &mut diesel::PgConnection,
    sink: &export::Sink,
    header: &[u8],
    fetch: impl Fn(&mut diesel::PgConnection, Option<Key>) -> diesel::QueryResult<Vec<StreamEventRow>>,
    key_of: impl Fn(&StreamEventRow) -> Key,
    write: impl Fn(&mut Vec<u8>, &StreamEventRow),
) -> diesel::QueryResult<()> {
    if !header.is_empty() && !sink.send(header.to_vec()) {
        return Ok(());
    }
    let mut key = None;
    loop {
        let rows = fetch(conn, key)?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        key = Some(key_of(last));
        let mut out = Vec::with_capacity(rows.len() * 256);
        for row in &rows {
            write(&mut out, row);
        }
        if !sink.send(out) || rows.len() < EXPORT_CHUNK as usize {
            return Ok(());
        }
    }
}

/// The list's order: (time_start, id), filtered.
fn by_start(
    filter: Filter,
) -> impl Fn(&mut diesel::PgConnection, Option<Key>) -> diesel::QueryResult<Vec<StreamEventRow>> {
    move |conn, key| queries::keyset_page(conn, &filter, key, Direction::After, EXPORT_CHUNK)
}

fn export_filter(req: &HttpRequest) -> Result<Filter, ApiError> {
    let mut params = Params::parse(req.query_string())?;
    let filter = parse_filter(&mut params);
    params.finish()?;
    Ok(filter)
}

const CSV_HEADER: &[u8] = b"id,uuid,origin,ip,method,path,status,bytes_sent,referer,user_agent,seconds_connected,time_start,time_end,device_key\n";

/// Quotes a CSV field when it needs it (RFC 4180).
fn csv_field(out: &mut Vec<u8>, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push(b'"');
        out.extend_from_slice(s.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(s.as_bytes());
    }
}

fn csv_row(out: &mut Vec<u8>, r: &StreamEventRow) {
    let _ = write!(out, "{},{},{},{},", r.id, r.uuid, r.origin, r.ip.ip());
    csv_field(out, &r.method);
    out.push(b',');
    csv_field(out, &r.path);
    let _ = write!(out, ",{},{},", r.status, r.bytes_sent);
    csv_field(out, &r.referer);
    out.push(b',');
    csv_field(out, &r.user_agent);
    let _ = writeln!(
        out,
        ",{},{},{},{}",
        r.seconds_connected,
        r.time_start
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        r.time_end
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        r.device_key
    );
}

/// `GET .../export.csv`: every matching event as CSV with a header line.
#[utoipa::path(
    get,
    path = "/stats/stream-events/export.csv",
    description = "Every matching stream event as CSV with a header line, streamed (scope `read`).",
    security(("token" = [])),
    params(
        ("time_from" = Option<String>, Query, description = "time_start >= this (any accepted time form)"),
        ("time_until" = Option<String>, Query, description = "time_start < this"),
        ("origin" = Option<String>, Query, description = "`hls` or `icecast`"),
        ("path" = Option<String>, Query, description = "the stream's path"),
        ("status" = Option<i64>, Query, minimum = 100, maximum = 599),
        ("min_seconds" = Option<i64>, Query, minimum = 0, maximum = 2147483647),
        ("min_bytes" = Option<i64>, Query, minimum = 0),
    ),
    responses((status = 200, description = "CSV", content_type = "text/csv", body = String)),
)]
async fn export_csv(
    _caller: Caller<ReadScope>,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let filter = export_filter(&req)?;
    let body = export::stream(&state.pool, &state.exports, move |conn, sink| {
        walk(conn, sink, CSV_HEADER, by_start(filter), key_of, csv_row)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            "attachment; filename=\"stream-events.csv\"",
        ))
        .streaming(body))
}

/// `GET .../export.ndjson`: every matching event as one JSON object per line (list fields).
#[utoipa::path(
    get,
    path = "/stats/stream-events/export.ndjson",
    description = "Every matching stream event, one JSON object per line (the list's fields), streamed (scope `read`).",
    security(("token" = [])),
    params(
        ("time_from" = Option<String>, Query, description = "time_start >= this (any accepted time form)"),
        ("time_until" = Option<String>, Query, description = "time_start < this"),
        ("origin" = Option<String>, Query, description = "`hls` or `icecast`"),
        ("path" = Option<String>, Query, description = "the stream's path"),
        ("status" = Option<i64>, Query, minimum = 100, maximum = 599),
        ("min_seconds" = Option<i64>, Query, minimum = 0, maximum = 2147483647),
        ("min_bytes" = Option<i64>, Query, minimum = 0),
    ),
    responses((status = 200, description = "NDJSON", content_type = "application/x-ndjson", body = String)),
)]
async fn export_ndjson(
    _caller: Caller<ReadScope>,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let filter = export_filter(&req)?;
    let body = export::stream(&state.pool, &state.exports, move |conn, sink| {
        walk(conn, sink, b"", by_start(filter), key_of, |out, row| {
            serde_json::to_writer(&mut *out, row).expect("rows serialise");
            out.push(b'\n');
        })
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .streaming(body))
}

/// Escapes a quoted access-log field the way Apache and Icecast do.
fn log_quoted(s: &str) -> String {
    if s.is_empty() {
        return "-".into();
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// One Icecast access-log line: Combined Log Format plus seconds connected, stamped with the
/// time the connection ended (when Icecast writes the line).
pub fn icecast_line(out: &mut Vec<u8>, r: &StreamEventRow) {
    let _ = writeln!(
        out,
        "{} - - [{}] \"{} {} HTTP/1.1\" {} {} \"{}\" \"{}\" {}",
        r.ip.ip(),
        r.time_end.format("%d/%b/%Y:%H:%M:%S %z"),
        r.method,
        log_quoted(&r.path),
        r.status,
        r.bytes_sent,
        log_quoted(&r.referer),
        log_quoted(&r.user_agent),
        r.seconds_connected
    );
}

/// `GET .../export/icecast/YYYY-MM-DD.log`: the events that ended on that UTC day, as an
/// Icecast access log (what licensing bodies ask for). `origin` narrows it.
#[utoipa::path(
    get,
    path = "/stats/stream-events/export/icecast/{day}.log",
    description = "The events that ended on one UTC day as an Icecast access log (scope `read`).",
    security(("token" = [])),
    params(
        ("day" = String, Path, description = "The UTC day, YYYY-MM-DD", pattern = r"^\d{4}-\d{2}-\d{2}$"),
        ("origin" = Option<String>, Query, description = "`hls` or `icecast`"),
    ),
    responses((status = 200, description = "Combined Log Format plus seconds connected", content_type = "text/plain", body = String)),
)]
async fn export_icecast(
    _caller: Caller<ReadScope>,
    state: web::Data<AppState>,
    req: HttpRequest,
    day: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let mut params = Params::parse(req.query_string())?;
    let origin = params.get("origin", |s| {
        Origin::parse(s).ok_or_else(|| format!("{s:?} is not an origin (hls or icecast)"))
    });
    params.finish()?;
    let date = NaiveDate::parse_from_str(&day, "%Y-%m-%d")
        .map_err(|_| ApiError::BadRequest(format!("{day:?} is not a date (YYYY-MM-DD)")))?;
    let from = Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).expect("midnight exists"));
    if !crate::domain::time::in_range(from) {
        return Err(ApiError::validation(
            format!("{day} is outside the accepted range"),
            vec![FieldError::new(
                "day",
                format!("must be within {}", crate::domain::time::RANGE_TEXT),
            )],
        ));
    }
    let until = from.checked_add_days(Days::new(1)).expect("date in range");
    let body = export::stream(&state.pool, &state.exports, move |conn, sink| {
        walk(
            conn,
            sink,
            b"",
            |conn, key| queries::ended_between(conn, from, until, origin, key, EXPORT_CHUNK),
            |row| Key {
                time: row.time_end,
                id: row.id,
            },
            icecast_line,
        )
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"access-{date}.log\""),
        ))
        .streaming(body))
}
