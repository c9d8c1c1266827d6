//! The as-run log: `GET /onair/` (keyset paged) and `GET /onair/now`.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;

use crate::api::auth::{Caller, ReadScope};
use crate::api::error::ApiError;
use crate::api::pagination::{self, PageRequest};
use crate::api::params::Params;
use crate::api::AppState;
use crate::db::playout::{self, LogFilter, LogRow};
use crate::db::{self};
use crate::domain::playout::LogType;
use crate::domain::Key;

/// An entry of the as-run log, with its audience when asked for (`audience=true`).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct LogEntry {
    #[serde(flatten)]
    pub row: LogRow,
    /// Its audience (sounds and tracks), once the audience job computed it; null before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<Option<crate::api::reports::ItemAudienceOut>>,
}

/// The as-run log filters as asked: `day` is a broadcast day in the station's time.
struct LogQuery {
    station: Option<String>,
    day: Option<NaiveDate>,
    r#type: Option<LogType>,
    source: Option<String>,
}

/// The log filter of a query: its broadcast day as UTC bounds, in the station's time zone
/// (or the default).
fn log_filter(
    c: &mut PgConnection,
    q: &LogQuery,
    settings: &crate::config::Settings,
) -> QueryResult<LogFilter> {
    let (from, until) = match q.day {
        None => (None, None),
        Some(day) => {
            let tz = match &q.station {
                Some(name) => playout::station(c, name)?
                    .and_then(|s| s.time_zone.parse().ok())
                    .unwrap_or(settings.station.time_zone.0),
                None => settings.station.time_zone.0,
            };
            let (a, b) = crate::broadcast::day_bounds(day, settings.station.day_start_hour.0, tz);
            (Some(a), Some(b))
        }
    };
    Ok(LogFilter {
        station: q.station.clone(),
        from,
        until,
        r#type: q.r#type,
        source: q.source.clone(),
        tracks: None,
    })
}

/// `GET /api/v1/onair/`: the as-run log, newest first, keyset paged; filters `station`, `day`
/// (broadcast day in station time), `type` (on_air = observed plays; start and cancel =
/// scheduled diffusions), `source`.
#[utoipa::path(
    get,
    tag = "playout",
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
        ("audience" = Option<bool>, Query, description = "`true`: each sound and track with its audience (null until the audience job computed it)"),
    ),
    responses((status = 200, description = "A page", body = crate::api::pagination::Page<LogEntry>)),
)]
pub(super) async fn list_onair(
    _c: Caller<ReadScope>,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let mut params = Params::parse(req.query_string())?;
    let query = LogQuery {
        station: params.text("station").map(str::to_string),
        day: params.get("day", |s| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|_| format!("{s:?} is not a date (YYYY-MM-DD)"))
        }),
        r#type: params.get("type", str::parse::<LogType>),
        source: params.text("source").map(str::to_string),
    };
    let with_audience = params
        .get("audience", |s| match s {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err("must be true or false".to_string()),
        })
        .unwrap_or(false);
    let page = PageRequest::parse(&mut params, 100, 5000);
    params.finish()?;
    page.cursor_only("the as-run log")?;
    let request = page.clone();
    let settings = state.settings.clone();
    let fetched = db::run(&state.pool, move |c| -> Result<_, ApiError> {
        let filter = log_filter(c, &query, &settings)?;
        let fetched = pagination::fetch(
            c,
            &request,
            |c| playout::count_log(c, &filter),
            |c, key, dir, n| playout::log_page(c, &filter, key, dir, n),
            None,
        )?;
        let audiences: std::collections::HashMap<i64, _> = if with_audience {
            let ids: Vec<i64> = fetched.rows.iter().map(|r| r.id).collect();
            db::item_audience::stored(c, &ids)?
                .into_iter()
                .map(|a| (a.log_id, a))
                .collect()
        } else {
            Default::default()
        };
        Ok(pagination::Fetched {
            count: fetched.count,
            rows: fetched
                .rows
                .into_iter()
                .map(|row| LogEntry {
                    audience: (with_audience && row.r#type == LogType::OnAir).then(|| {
                        audiences
                            .get(&row.id)
                            .map(|a| crate::api::reports::ItemAudienceOut::of(a, "stored"))
                    }),
                    row,
                })
                .collect(),
        })
    })
    .await?;
    Ok(
        HttpResponse::Ok().json(pagination::build(&req, &page, fetched, |e: &LogEntry| {
            Key {
                time: e.row.date,
                id: e.row.id,
            }
        })),
    )
}

/// `GET /api/v1/onair/now?station=NAME`: the sound and track on air (observed), and the
/// diffusions (scheduled): the one running and the next.
#[utoipa::path(
    get,
    tag = "playout",
    path = "/onair/now",
    description = "The sound and track on air (observed) and the current and next diffusion (scheduled) (scope `read`).",
    security(("token" = [])),
    params(("station" = String, Query, description = "the station's name")),
    responses((status = 200, description = "On air now", body = OnAirNow)),
)]
pub(super) async fn onair_now(
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
        let s = playout::station(c, &name)?
            .ok_or_else(|| ApiError::NotFound(format!("no station named {name:?}")))?;
        Ok(on_air_now(c, s, now)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

/// What is on air on station `s` at `now`: the sound and track observed, and the diffusions
/// scheduled (the API's `/onair/now` and the console's now panel).
pub(crate) fn on_air_now(
    c: &mut PgConnection,
    s: playout::StationRow,
    now: DateTime<Utc>,
) -> QueryResult<OnAirNow> {
    let sound = playout::latest_sound(c, s.id, now)?;
    // Tracks hang on the play's first entry, whether this is it or a resume of it.
    let track = match &sound {
        Some(p) => playout::latest_track(c, p.resume_of.unwrap_or(p.id), now)?,
        None => None,
    };
    let duration = match sound.as_ref().and_then(|p| p.sound_id) {
        Some(id) => playout::sound_duration(c, id)?,
        None => None,
    };
    // A resumed sound has `position_s` behind it already.
    let remaining = match (&sound, duration) {
        (Some(p), Some(d)) => {
            Some((d - p.position_s - (now - p.date).num_milliseconds() as f64 / 1000.0).max(0.0))
        }
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
            position_seconds: sound
                .as_ref()
                .map(|p| p.position_s + (now - p.date).num_milliseconds() as f64 / 1000.0),
            remaining_seconds: remaining,
            sound,
            track,
        },
        scheduled: Scheduled {
            current: running,
            next,
        },
    })
}

/// What is on air on a station now.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct OnAirNow {
    pub station: String,
    pub at: DateTime<Utc>,
    pub observed: Observed,
    pub scheduled: Scheduled,
}

/// What the output plays, as the monitor observed it.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Observed {
    /// The latest sound entry of the as-run log (a start or a resume), if any.
    #[schema(required)]
    pub sound: Option<LogRow>,
    /// The latest track of that sound, if any.
    #[schema(required)]
    pub track: Option<LogRow>,
    #[schema(required)]
    pub started_at: Option<DateTime<Utc>>,
    /// Seconds into the sound now.
    #[schema(required)]
    pub position_seconds: Option<f64>,
    /// Seconds left, when the sound's length is known.
    #[schema(required)]
    pub remaining_seconds: Option<f64>,
}

/// The diffusions: the one whose sound plays, and the next one scheduled.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct Scheduled {
    #[schema(required)]
    pub current: Option<playout::DiffusionRow>,
    #[schema(required)]
    pub next: Option<playout::DiffusionRow>,
}
