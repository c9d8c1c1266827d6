//! Audience figures (`GET /api/v1/audience/`, `.csv`) and what they are computed over: a
//! station's streams and dayparts (`/api/v1/stations/{name}/streams`, `/dayparts`).

use std::collections::BTreeMap;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::auth::{AdminScope, Caller, ReadScope};
use super::error::ApiError;
use super::params::Params;
use crate::app::AppState;
use crate::audience::figures::{self, Figures, Thresholds};
use crate::audience::period::{self, Daypart, Interval, Span};
use crate::audience::{self as model, By, StreamKind, Validity};
use crate::db;
use crate::db::audience::{DaypartRow, StreamRow};

/// The operations of this module, nested under `/api/v1` by the API document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    figures_json,
    figures_csv,
    get_streams,
    put_streams,
    get_dayparts,
    put_dayparts
))]
pub struct Doc;

/// Registers the routes under `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/audience/", web::get().to(figures_json))
        .route("/audience.csv", web::get().to(figures_csv))
        .route("/stations/{name}/streams", web::get().to(get_streams))
        .route("/stations/{name}/streams", web::put().to(put_streams))
        .route("/stations/{name}/dayparts", web::get().to(get_dayparts))
        .route("/stations/{name}/dayparts", web::put().to(put_dayparts));
}

/// Most intervals one request may ask for (a year by quarter-hour is 35 040).
const MAX_INTERVALS: usize = 40_000;

/// One row of figures.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Row {
    /// Interval start, RFC 3339 with the station's offset.
    pub start: String,
    pub end: String,
    /// The group of a breakdown (`by=`); absent on the de-duplicated total.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub aqh: f64,
    pub cume: u64,
    pub tlh_hours: f64,
    pub tsl_minutes: f64,
    pub aas: f64,
    pub peak: u64,
    pub peak_at: Option<String>,
    pub sessions: u64,
}

/// The rules the figures were computed with.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Rules {
    pub min_session_s: u32,
    pub cume_min_s: u32,
    pub aqh_min_s: u32,
    /// Daypart windows counted (local wall clock), if restricted.
    pub daypart: Option<String>,
    /// Sessions not counted, by the first rule that excluded them.
    pub excluded: BTreeMap<String, u64>,
}

/// The answer of `GET /api/v1/audience/`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Report {
    /// The station, or null for every station.
    pub station: Option<String>,
    pub time_zone: String,
    pub interval: String,
    pub by: Option<String>,
    pub rules: Rules,
    pub results: Vec<Row>,
}

/// A checked request for figures.
struct Query {
    station: Option<(i64, String)>,
    tz: Tz,
    period: Span,
    interval: Interval,
    daypart: Option<(String, Daypart)>,
    by: Option<By>,
}

/// A time bound: an RFC 3339 instant, or `YYYY-MM-DD` meaning local midnight.
fn bound(tz: Tz, s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(date) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return crate::domain::time::checked(period::local_midnight(tz, date), s);
    }
    crate::domain::time::parse_time_str(s)
}

async fn query(state: &AppState, req: &HttpRequest) -> Result<Query, ApiError> {
    let mut params = Params::parse(req.query_string())?;
    let station_name = params.text("station").map(str::to_string);
    let interval = params
        .get("interval", |s| s.parse::<Interval>())
        .unwrap_or(Interval::Day);
    let by = params.get("by", |s| s.parse::<By>());
    let (from, until, daypart) = (
        params.text("from").map(str::to_string),
        params.text("until").map(str::to_string),
        params.text("daypart").map(str::to_string),
    );
    if from.is_none() {
        params.problem("from", "is required (an RFC 3339 instant or YYYY-MM-DD)");
    }
    if until.is_none() {
        params.problem("until", "is required (an RFC 3339 instant or YYYY-MM-DD)");
    }
    // The station (and its zone and dayparts) is needed to read the times.
    let lookup = station_name.clone();
    let found = db::run(&state.pool, move |conn| -> Result<_, ApiError> {
        let Some(name) = lookup else {
            return Ok(None);
        };
        let Some(row) = db::playout::station(conn, &name)? else {
            return Ok(Some(None));
        };
        let dayparts = db::audience::dayparts(conn, row.id)?;
        Ok(Some(Some((row, dayparts))))
    })
    .await?;
    let (station, tz, dayparts) = match found {
        None => (None, state.settings.station.time_zone.0, Vec::new()),
        Some(None) => {
            params.problem("station", "no such station");
            (None, state.settings.station.time_zone.0, Vec::new())
        }
        Some(Some((row, dayparts))) => {
            let tz = row
                .time_zone
                .parse::<Tz>()
                .unwrap_or(state.settings.station.time_zone.0);
            (Some((row.id, row.name)), tz, dayparts)
        }
    };
    let from = from.and_then(|s| params.get("from", |_| bound(tz, &s)));
    let until = until.and_then(|s| params.get("until", |_| bound(tz, &s)));
    let daypart = daypart.and_then(|d| {
        params.get("daypart", |_| {
            // A station's named daypart, or a spec written out.
            let spec = dayparts
                .iter()
                .find(|p| p.name == d)
                .map(|p| p.spec.clone())
                .unwrap_or_else(|| d.clone());
            spec.parse::<Daypart>()
                .map(|parsed| (spec, parsed))
                .map_err(|e| format!("{e} (or the name of one of the station's dayparts)"))
        })
    });
    if let (Some(f), Some(u)) = (from, until) {
        if f >= u {
            params.problem("until", "must be after from");
        }
    }
    params.finish()?;
    let period = Span::new(from.expect("checked"), until.expect("checked"));
    // Counted from the lengths first, so a century of quarter-hours is refused without work.
    let count = match period::count_at_most(period, interval) {
        n if n > 4 * MAX_INTERVALS as u64 => n as usize,
        _ => period::split(tz, period, interval).len(),
    };
    if count > MAX_INTERVALS {
        return Err(ApiError::validation(
            format!("{count} intervals asked for; at most {MAX_INTERVALS} per request"),
            vec![crate::domain::FieldError::new(
                "interval",
                format!("{interval} over this period gives {count} intervals (at most {MAX_INTERVALS}); choose a longer interval or a shorter period"),
            )],
        ));
    }
    Ok(Query {
        station,
        tz,
        period,
        interval,
        daypart,
        by,
    })
}

/// Computes the report a query asks for, from the sessions overlapping its period.
async fn report(state: &AppState, q: Query) -> Result<Report, ApiError> {
    let settings = state.settings.clone();
    let station_id = q.station.as_ref().map(|(id, _)| *id);
    let period_span = q.period;
    let (streams, plays) = db::run(&state.pool, move |conn| -> Result<_, ApiError> {
        Ok((
            db::audience::stream_sessions(conn, station_id, period_span)?,
            db::audience::player_plays(conn, station_id, period_span)?,
        ))
    })
    .await?;
    let a = &settings.audience;
    let validity = Validity {
        robots: crate::ship::robots::Robots::new(&a.bot_allow, &a.bot_deny),
        relay_addresses: a.relay_addresses.clone(),
        min_session_s: a.min_session_s as f64,
    };
    let thresholds = Thresholds {
        aqh_min_s: 300.0,
        cume_min_s: a.cume_min_s as f64,
    };
    let gap_s = settings.jobs.session_gap_s as f64;
    let (tz, interval, by) = (q.tz, q.interval, q.by);
    let daypart = q.daypart.clone();
    // The computation is CPU work on possibly many sessions: off the request thread.
    let (rows, excluded) = tokio::task::spawn_blocking(move || {
        let assembled = model::assemble(streams, plays, &validity, gap_s, by);
        let intervals = period::split(tz, period_span, interval);
        let windows = match &daypart {
            Some((_, d)) => d.windows(tz, period_span),
            None => vec![period_span],
        };
        let (total, groups) = match by {
            Some(_) => {
                figures::compute_by_group(&assembled.sessions, &intervals, &windows, thresholds)
            }
            None => (
                figures::compute(&assembled.sessions, &intervals, &windows, thresholds),
                Vec::new(),
            ),
        };
        let mut rows = Vec::new();
        for (i, f) in total.iter().enumerate() {
            rows.push(row(tz, f, None));
            for (g, figures) in &groups {
                rows.push(row(tz, &figures[i], Some(g.clone())));
            }
        }
        (rows, assembled.excluded)
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("audience computation failed: {e}")))?;
    Ok(Report {
        station: q.station.map(|(_, name)| name),
        time_zone: tz.name().to_string(),
        interval: interval.to_string(),
        by: by.map(|b| match b {
            By::Stream => "stream".to_string(),
            By::Source => "source".to_string(),
            By::Station => "station".to_string(),
        }),
        rules: Rules {
            min_session_s: a.min_session_s,
            cume_min_s: a.cume_min_s,
            aqh_min_s: 300,
            daypart: q.daypart.map(|(spec, _)| spec),
            excluded: excluded
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        },
        results: rows,
    })
}

fn local(tz: Tz, t: DateTime<Utc>) -> String {
    t.with_timezone(&tz)
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Rounds a figure for display; the computation keeps full precision.
fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

fn row(tz: Tz, f: &Figures, group: Option<String>) -> Row {
    Row {
        start: local(tz, f.span.start),
        end: local(tz, f.span.end),
        group,
        aqh: round(f.aqh, 4),
        cume: f.cume,
        tlh_hours: round(f.tlh_hours, 4),
        tsl_minutes: round(f.tsl_minutes, 4),
        aas: round(f.aas, 4),
        peak: f.peak,
        peak_at: f.peak_at.map(|t| local(tz, t)),
        sessions: f.sessions,
    }
}

/// Audience figures of a station (or every station) over a period, per interval.
#[utoipa::path(
    get,
    path = "/audience/",
    description = "Audience figures (AQH, Cume, TLH, TSL, AAS, peak, sessions) per interval, in the station's time zone (scope `read`). See the README for every definition.",
    security(("token" = [])),
    params(
        ("station" = Option<String>, Query, description = "a station's name; every station when absent"),
        ("from" = String, Query, description = "RFC 3339 instant, or YYYY-MM-DD (local midnight)"),
        ("until" = String, Query, description = "RFC 3339 instant, or YYYY-MM-DD (local midnight), exclusive"),
        ("interval" = Option<String>, Query, description = "quarter_hour, hour, day (default), week, month or total"),
        ("daypart" = Option<String>, Query, description = "a station daypart's name, or a spec such as `mon-fri 06:00-10:00`"),
        ("by" = Option<String>, Query, description = "stream, source or station: a row per group after each total row"),
    ),
    responses((status = 200, description = "The figures", body = Report)),
)]
async fn figures_json(
    _caller: Caller<ReadScope>,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let q = query(&state, &req).await?;
    Ok(HttpResponse::Ok().json(report(&state, q).await?))
}

/// The same figures as CSV, one line per row.
#[utoipa::path(
    get,
    path = "/audience.csv",
    description = "The figures of `GET /audience/` as CSV (scope `read`).",
    security(("token" = [])),
    params(
        ("station" = Option<String>, Query, description = "a station's name; every station when absent"),
        ("from" = String, Query, description = "RFC 3339 instant, or YYYY-MM-DD (local midnight)"),
        ("until" = String, Query, description = "RFC 3339 instant, or YYYY-MM-DD (local midnight), exclusive"),
        ("interval" = Option<String>, Query, description = "quarter_hour, hour, day (default), week, month or total"),
        ("daypart" = Option<String>, Query, description = "a station daypart's name, or a spec"),
        ("by" = Option<String>, Query, description = "stream, source or station"),
    ),
    responses((status = 200, description = "CSV with a header line", content_type = "text/csv")),
)]
async fn figures_csv(
    _caller: Caller<ReadScope>,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let q = query(&state, &req).await?;
    let report = report(&state, q).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .body(to_csv(&report)))
}

/// The report as CSV (header line, then one line per row).
pub fn to_csv(report: &Report) -> String {
    let mut out =
        String::from("start,end,group,aqh,cume,tlh_hours,tsl_minutes,aas,peak,peak_at,sessions\n");
    let quote = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    for r in &report.results {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{}\n",
            r.start,
            r.end,
            quote(r.group.as_deref().unwrap_or("")),
            r.aqh,
            r.cume,
            r.tlh_hours,
            r.tsl_minutes,
            r.aas,
            r.peak,
            r.peak_at.as_deref().unwrap_or(""),
            r.sessions
        ));
    }
    out
}

async fn station_id(state: &AppState, name: String) -> Result<i64, ApiError> {
    let row = db::run(&state.pool, move |conn| -> Result<_, ApiError> {
        Ok(db::playout::station(conn, &name)?)
    })
    .await?;
    row.map(|r| r.id)
        .ok_or_else(|| ApiError::NotFound("no such station".into()))
}

/// A station's streams.
#[utoipa::path(
    get,
    path = "/stations/{name}/streams",
    description = "The streams a station's audience is counted on (scope `read`).",
    security(("token" = [])),
    params(("name" = String, Path, description = "the station's name")),
    responses((status = 200, description = "Its streams", body = Vec<StreamBody>)),
)]
async fn get_streams(
    _caller: Caller<ReadScope>,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = station_id(&state, name.into_inner()).await?;
    let rows = db::run(&state.pool, move |conn| -> Result<_, ApiError> {
        Ok(db::audience::streams(conn, id)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(rows))
}

/// One stream as the API reads and writes it.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamBody {
    /// icecast (a mount path), hls (a path prefix) or player (a source: live, on-demand, news).
    pub kind: String,
    pub pattern: String,
}

/// Replaces a station's streams.
#[utoipa::path(
    put,
    path = "/stations/{name}/streams",
    description = "Replaces the streams a station's audience is counted on (scope `admin`). A stream belongs to one station.",
    security(("token" = [])),
    params(("name" = String, Path, description = "the station's name")),
    request_body = Vec<StreamBody>,
    responses((status = 200, description = "Its streams now", body = Vec<StreamBody>)),
)]
async fn put_streams(
    _caller: Caller<AdminScope>,
    state: web::Data<AppState>,
    name: web::Path<String>,
    body: web::Json<Vec<StreamBody>>,
) -> Result<HttpResponse, ApiError> {
    let mut problems = Vec::new();
    let mut rows = Vec::new();
    for (i, s) in body.into_inner().into_iter().enumerate() {
        let kind = match s.kind.parse::<StreamKind>() {
            Ok(k) => k,
            Err(e) => {
                problems.push(crate::domain::FieldError::at(i, "kind", e));
                continue;
            }
        };
        let pattern = s.pattern.trim().to_string();
        let problem = match kind {
            _ if pattern.is_empty() || pattern.len() > 512 => {
                Some("must be 1 to 512 characters".to_string())
            }
            StreamKind::Icecast | StreamKind::Hls if !pattern.starts_with('/') => {
                Some("a mount or path prefix starts with /".into())
            }
            StreamKind::Icecast if pattern.contains('?') => {
                Some("a mount has no query string".into())
            }
            StreamKind::Player if !["live", "on-demand", "news"].contains(&pattern.as_str()) => {
                Some("a player source is live, on-demand or news".into())
            }
            _ => None,
        };
        match problem {
            Some(p) => problems.push(crate::domain::FieldError::at(i, "pattern", p)),
            None => rows.push(StreamRow {
                kind: kind.as_str().to_string(),
                pattern,
            }),
        }
    }
    let mut seen = std::collections::HashSet::new();
    for (i, r) in rows.iter().enumerate() {
        if !seen.insert((r.kind.clone(), r.pattern.clone())) {
            problems.push(crate::domain::FieldError::at(i, "pattern", "listed twice"));
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::validation(
            "invalid streams; nothing was changed",
            problems,
        ));
    }
    let id = station_id(&state, name.into_inner()).await?;
    let stored = db::run(&state.pool, move |conn| -> Result<_, ApiError> {
        match db::audience::set_streams(conn, id, &rows) {
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => {
                return Err(ApiError::Conflict(
                    "a stream in the list belongs to another station".into(),
                ))
            }
            other => other?,
        }
        Ok(db::audience::streams(conn, id)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(stored))
}

/// A station's dayparts.
#[utoipa::path(
    get,
    path = "/stations/{name}/dayparts",
    description = "A station's named dayparts (scope `read`).",
    security(("token" = [])),
    params(("name" = String, Path, description = "the station's name")),
    responses((status = 200, description = "name -> spec", body = BTreeMap<String, String>)),
)]
async fn get_dayparts(
    _caller: Caller<ReadScope>,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = station_id(&state, name.into_inner()).await?;
    let rows = db::run(&state.pool, move |conn| -> Result<_, ApiError> {
        Ok(db::audience::dayparts(conn, id)?)
    })
    .await?;
    let map: BTreeMap<String, String> = rows.into_iter().map(|d| (d.name, d.spec)).collect();
    Ok(HttpResponse::Ok().json(map))
}

/// Replaces a station's dayparts.
#[utoipa::path(
    put,
    path = "/stations/{name}/dayparts",
    description = "Replaces a station's named dayparts, e.g. `{\"morning\": \"mon-fri 06:00-10:00\"}` (scope `admin`).",
    security(("token" = [])),
    params(("name" = String, Path, description = "the station's name")),
    request_body = BTreeMap<String, String>,
    responses((status = 200, description = "Its dayparts now", body = BTreeMap<String, String>)),
)]
async fn put_dayparts(
    _caller: Caller<AdminScope>,
    state: web::Data<AppState>,
    name: web::Path<String>,
    body: web::Json<BTreeMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let mut problems = Vec::new();
    let mut rows = Vec::new();
    let name_ok = |n: &str| {
        let b = n.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-')
    };
    for (n, spec) in body.into_inner() {
        if !name_ok(&n) {
            problems.push(crate::domain::FieldError::new(
                n.clone(),
                "a daypart name is 1-63 of a-z, 0-9, _ and -, starting with a letter or digit",
            ));
            continue;
        }
        if spec.len() > 1000 {
            problems.push(crate::domain::FieldError::new(
                n.clone(),
                "longer than 1000 characters",
            ));
            continue;
        }
        match spec.parse::<Daypart>() {
            Ok(_) => rows.push(DaypartRow { name: n, spec }),
            Err(e) => problems.push(crate::domain::FieldError::new(n.clone(), e)),
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::validation(
            "invalid dayparts; nothing was changed",
            problems,
        ));
    }
    let id = station_id(&state, name.into_inner()).await?;
    let stored = db::run(&state.pool, move |conn| -> Result<_, ApiError> {
        db::audience::set_dayparts(conn, id, &rows)?;
        Ok(db::audience::dayparts(conn, id)?)
    })
    .await?;
    let map: BTreeMap<String, String> = stored.into_iter().map(|d| (d.name, d.spec)).collect();
    Ok(HttpResponse::Ok().json(map))
}
