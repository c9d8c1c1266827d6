//! The console's handlers: each parses its query or form into checked values, reads through
//! `db::run` with the functions the API uses, and hands plain data to `views`.

use actix_web::http::header;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;
use diesel::PgConnection;
use maud::Markup;
use serde::Deserialize;

use super::error::ConsoleError;
use super::session::{self, Credential, Viewer};
use super::views::{self, Frame, Tab};
use crate::api::AppState;
use crate::broadcast;
use crate::db::playout::{self, LogFilter, LogRow, StationRow};
use crate::db::{self, console, player_events, tokens};
use crate::domain::playout::{DiffusionType, LogType};
use crate::domain::{Direction, Key};
use crate::reports::audience as report;
use crate::reports::csv_field;

/// Entries on one page of the log.
const PAGE_ROWS: i64 = 200;
/// Entries the now page shows under the panel.
const RECENT_ROWS: i64 = 15;
/// Most entries one day's CSV or print view holds; a day of a busy station has a few thousand.
const DAY_ROWS: i64 = 50_000;
/// Devices heard from within this many seconds count as listening now (as `/listeners/now`).
const LISTENING_NOW_S: f64 = 120.0;

/// A station by name, or the console's 404.
pub(super) fn station_row(c: &mut PgConnection, name: &str) -> Result<StationRow, ConsoleError> {
    playout::station(c, name)?
        .ok_or_else(|| ConsoleError::NotFound(format!("There is no station named {name:?}.")))
}

/// A station's time zone (stored as checked text), else the configured default.
pub(super) fn station_tz(s: &StationRow, default: Tz) -> Tz {
    s.time_zone.parse().unwrap_or(default)
}

/// The configured default zone and the hour broadcast days start at.
fn day_settings(state: &AppState) -> (Tz, u32) {
    (
        state.settings.station.time_zone.0,
        state.settings.station.day_start_hour.0,
    )
}

/// A rendered page, never cached (it shows the log as of now, and a session's form token).
fn page(markup: Markup) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("text/html; charset=utf-8")
        .body(markup.into_string())
}

fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

fn bad(message: impl Into<String>) -> ConsoleError {
    ConsoleError::BadRequest(message.into())
}

/// Parses a query string or form body; text with NUL is refused here, as the API's boundary
/// check only reads JSON bodies.
fn parse<T: for<'de> Deserialize<'de>>(raw: &[u8]) -> Result<T, ConsoleError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(raw).map_err(|e| bad(format!("Unreadable form: {e}")))?;
    if pairs
        .iter()
        .any(|(k, v)| k.contains('\0') || v.contains('\0'))
    {
        return Err(bad("The form contains a NUL character."));
    }
    serde_urlencoded::from_bytes(raw).map_err(|e| bad(format!("Unreadable form: {e}")))
}

fn parse_day(s: Option<&str>, today: NaiveDate) -> Result<NaiveDate, ConsoleError> {
    match s.filter(|s| !s.is_empty()) {
        None => Ok(today),
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .filter(|d| (2000..2100).contains(&chrono::Datelike::year(d)))
            .ok_or_else(|| bad(format!("{s:?} is not a day (YYYY-MM-DD, 2000 to 2099)."))),
    }
}

/// The station pages share these: the station list for the switcher, the station and its zone.
struct Station {
    names: Vec<String>,
    row: StationRow,
    tz: Tz,
}

fn load_station(c: &mut PgConnection, name: &str, default: Tz) -> Result<Station, ConsoleError> {
    let row = station_row(c, name)?;
    let names = playout::stations(c)?.into_iter().map(|s| s.name).collect();
    Ok(Station {
        tz: station_tz(&row, default),
        names,
        row,
    })
}

fn frame<'a>(viewer: &'a Viewer, s: &'a Station, tab: Tab) -> Frame<'a> {
    Frame {
        viewer,
        stations: &s.names,
        station: &s.row.name,
        tab,
    }
}

/// `GET /console/`: the first station's now page.
pub async fn home(
    _viewer: Viewer,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    let stations = db::run(&state.pool, playout::stations).await?;
    match stations.first() {
        Some(s) => Ok(see_other(&views::station_path(&s.name, Tab::Now))),
        None => Err(ConsoleError::NotFound(
            "No station is set up yet: add one with POST /api/v1/stations/ (see the README)."
                .into(),
        )),
    }
}

#[derive(Deserialize)]
struct GoQuery {
    station: String,
    #[serde(default)]
    tab: String,
}

/// `GET /console/go?station=&tab=`: the station switcher's target.
pub async fn go(_viewer: Viewer, req: HttpRequest) -> Result<HttpResponse, ConsoleError> {
    let q: GoQuery = parse(req.query_string().as_bytes())?;
    let tab = [Tab::Log, Tab::Schedule, Tab::Audience, Tab::Health]
        .into_iter()
        .find(|t| t.slug() == q.tab)
        .unwrap_or(Tab::Now);
    Ok(see_other(&views::station_path(&q.station, tab)))
}

#[derive(Deserialize)]
struct SignInQuery {
    next: Option<String>,
}

/// `GET /console/signin`: the form (or, behind a trusted proxy that names the user, a session
/// at once).
pub async fn signin_form(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ConsoleError> {
    let q: SignInQuery = parse(req.query_string().as_bytes())?;
    let next = session::safe_next(q.next.as_deref());
    let secure = session::is_secure(&state, &req);
    if let Some(user) = session::proxy_user(&state, &req) {
        let cookie = session::sign_in(&state, Credential::Proxy(user), secure).await?;
        return Ok(HttpResponse::SeeOther()
            .insert_header((header::LOCATION, next))
            .cookie(cookie)
            .finish());
    }
    let form_token = session::random_hex()?;
    let cookie = session::session_cookie(
        session::SIGNIN_COOKIE,
        form_token.clone(),
        actix_web::cookie::time::Duration::minutes(30),
        secure,
    );
    let mut res = page(views::signin_page(&next, &form_token, None));
    res.add_cookie(&cookie).map_err(|e| anyhow::anyhow!(e))?;
    Ok(res)
}

#[derive(Deserialize)]
struct SignInForm {
    #[serde(default)]
    token: String,
    next: Option<String>,
    #[serde(default)]
    form: String,
}

/// `POST /console/signin`: checks the pasted token and starts a session.
pub async fn signin(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let f: SignInForm = parse(&body)?;
    let next = session::safe_next(f.next.as_deref());
    // The form must come from a sign-in page this browser loaded (no signing a victim into an
    // attacker's session from another site).
    let paired = req
        .cookie(session::SIGNIN_COOKIE)
        .is_some_and(|c| !f.form.is_empty() && c.value() == f.form);
    if !paired {
        return Err(ConsoleError::Forbidden(
            "The sign-in form expired; load the sign-in page again.".into(),
        ));
    }
    let secure = session::is_secure(&state, &req);
    match session::sign_in(&state, Credential::Token(f.token), secure).await {
        Ok(cookie) => Ok(HttpResponse::SeeOther()
            .insert_header((header::LOCATION, next))
            .cookie(cookie)
            .finish()),
        Err(ConsoleError::Forbidden(problem)) => {
            let mut res = page(views::signin_page(&next, &f.form, Some(&problem)));
            *res.status_mut() = actix_web::http::StatusCode::FORBIDDEN;
            Ok(res)
        }
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: Option<String>,
}

/// `POST /console/signout`.
pub async fn signout(
    viewer: Viewer,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let f: CsrfForm = parse(&body)?;
    viewer.check_csrf(f.csrf.as_deref())?;
    let cookie = session::sign_out(&state, &req).await?;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/console/signin"))
        .cookie(cookie)
        .finish())
}

/// What the now panel needs.
fn now_view(c: &mut PgConnection, s: &Station) -> Result<views::NowView, ConsoleError> {
    let now = Utc::now();
    let on_air = crate::api::playout::onair::on_air_now(c, s.row.clone(), now)?;
    let monitor = console::monitor_state(c, s.row.id, crate::monitor::station_lock_key(s.row.id))?;
    Ok(views::NowView {
        now: on_air,
        tz: s.tz,
        listeners: player_events::listeners_now(c, LISTENING_NOW_S)?,
        monitor,
        streamer: s.row.streamer.as_str().to_string(),
    })
}

/// `GET /console/stations/{name}/`: on air now, and the latest entries (live).
pub async fn now_page(
    viewer: Viewer,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let (default, hour) = day_settings(&state);
    let (s, view, recent, last_id) = db::run(&state.pool, move |c| -> Result<_, ConsoleError> {
        let s = load_station(c, &name, default)?;
        // Read first, so an entry written while the page is built is sent live, not lost.
        let last_id = console::last_log_id(c)?;
        let view = now_view(c, &s)?;
        // Today's latest: times without a date must not mix in yesterday's.
        let today = broadcast::day_of(view.now.at, hour, s.tz);
        let filter = LogFilter {
            station: Some(s.row.name.clone()),
            from: Some(broadcast::day_bounds(today, hour, s.tz).0),
            ..LogFilter::default()
        };
        let recent = playout::log_page(c, &filter, None, Direction::After, RECENT_ROWS)?;
        Ok((s, view, recent, last_id))
    })
    .await?;
    Ok(page(views::now_page(
        &frame(&viewer, &s, Tab::Now),
        &view,
        &recent,
        last_id,
    )))
}

/// `GET /console/stations/{name}/now`: the now panel alone, for the page to swap in.
pub async fn now_fragment(
    _viewer: Viewer,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let default = state.settings.station.time_zone.0;
    let view = db::run(&state.pool, move |c| -> Result<_, ConsoleError> {
        let s = load_station(c, &name, default)?;
        now_view(c, &s)
    })
    .await?;
    Ok(page(views::now_panel(&view)))
}

/// Which entries the log shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    All,
    OnAir,
    Track,
    Start,
    Cancel,
}

impl Kind {
    fn parse(s: Option<&str>) -> Result<Kind, ConsoleError> {
        Ok(match s.unwrap_or("all") {
            "" | "all" => Kind::All,
            "on_air" => Kind::OnAir,
            "track" => Kind::Track,
            "start" => Kind::Start,
            "cancel" => Kind::Cancel,
            other => {
                return Err(bad(format!(
                    "Unknown type {other:?} (all, on_air, track, start or cancel)."
                )))
            }
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Kind::All => "all",
            Kind::OnAir => "on_air",
            Kind::Track => "track",
            Kind::Start => "start",
            Kind::Cancel => "cancel",
        }
    }

    /// ON AIR means the sounds; their tracks are the TRACK filter.
    fn narrow(self, f: &mut LogFilter) {
        let (t, tracks) = match self {
            Kind::All => (None, None),
            Kind::OnAir => (Some(LogType::OnAir), Some(false)),
            Kind::Track => (Some(LogType::OnAir), Some(true)),
            Kind::Start => (Some(LogType::Start), None),
            Kind::Cancel => (Some(LogType::Cancel), None),
        };
        f.r#type = t;
        f.tracks = tracks;
    }
}

/// A position in the day's list: entries older than a key (`o`), or newer (`n`).
#[derive(Debug, Clone, Copy)]
struct Cursor {
    key: Key,
    direction: Direction,
}

impl Cursor {
    fn encode(key: Key, direction: Direction) -> String {
        let d = if direction == Direction::After {
            'o'
        } else {
            'n'
        };
        format!("{d}{}.{}", key.time.timestamp_micros(), key.id)
    }

    fn parse(s: &str) -> Result<Cursor, ConsoleError> {
        let invalid = || bad("That page link is not valid; start from the day's first page.");
        let direction = match s.chars().next() {
            Some('o') => Direction::After,
            Some('n') => Direction::Before,
            _ => return Err(invalid()),
        };
        let (micros, id) = s[1..].split_once('.').ok_or_else(invalid)?;
        let time = micros
            .parse()
            .ok()
            .and_then(DateTime::from_timestamp_micros)
            .ok_or_else(invalid)?;
        let id = id.parse().map_err(|_| invalid())?;
        Ok(Cursor {
            key: Key { time, id },
            direction,
        })
    }
}

#[derive(Deserialize, Default)]
struct LogQuery {
    day: Option<String>,
    r#type: Option<String>,
    cursor: Option<String>,
}

/// A log query, checked.
struct LogAsk {
    day: Option<NaiveDate>,
    kind: Kind,
    cursor: Option<Cursor>,
}

fn log_ask(req: &HttpRequest) -> Result<LogAsk, ConsoleError> {
    let q: LogQuery = parse(req.query_string().as_bytes())?;
    Ok(LogAsk {
        day: match q.day.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(d) => Some(parse_day(Some(d), NaiveDate::MIN)?),
        },
        kind: Kind::parse(q.r#type.as_deref())?,
        cursor: q.cursor.as_deref().map(Cursor::parse).transpose()?,
    })
}

fn key_of(r: &LogRow) -> Key {
    Key {
        time: r.date,
        id: r.id,
    }
}

/// The day's filter and bounds.
fn day_filter(
    s: &Station,
    day: NaiveDate,
    hour: u32,
    kind: Kind,
) -> (LogFilter, (DateTime<Utc>, DateTime<Utc>)) {
    let bounds = broadcast::day_bounds(day, hour, s.tz);
    let mut f = LogFilter {
        station: Some(s.row.name.clone()),
        from: Some(bounds.0),
        until: Some(bounds.1),
        ..LogFilter::default()
    };
    kind.narrow(&mut f);
    (f, bounds)
}

/// Reads one page of the day (`PAGE_ROWS`, newest first) and the cursors around it.
fn log_view(
    c: &mut PgConnection,
    s: &Station,
    ask: &LogAsk,
    hour: u32,
    whole_day: bool,
) -> Result<views::LogView<'static>, ConsoleError> {
    let now = Utc::now();
    let today = broadcast::day_of(now, hour, s.tz);
    let day = ask.day.unwrap_or(today);
    let (filter, bounds) = day_filter(s, day, hour, ask.kind);
    let last_id = console::last_log_id(c)?;
    let total = playout::count_log(c, &filter)?;
    let (rows, older, newer) = if whole_day {
        let mut rows = playout::log_page(c, &filter, None, Direction::After, DAY_ROWS)?;
        rows.reverse();
        (rows, None, None)
    } else {
        let (key, direction) = match ask.cursor {
            Some(cur) => (Some(cur.key), cur.direction),
            None => (None, Direction::After),
        };
        let mut rows = playout::log_page(c, &filter, key, direction, PAGE_ROWS + 1)?;
        let more = rows.len() as i64 > PAGE_ROWS;
        // The extra row tells whether the list goes on past this page, on the side read.
        if more && direction == Direction::Before {
            rows.remove(0);
        } else if more {
            rows.pop();
        }
        let older_exists = if direction == Direction::After {
            more
        } else {
            true
        };
        let newer_exists = if direction == Direction::After {
            key.is_some()
        } else {
            more
        };
        let older = (older_exists && !rows.is_empty())
            .then(|| Cursor::encode(key_of(rows.last().expect("not empty")), Direction::After));
        let newer = match (newer_exists, rows.first(), key) {
            (false, _, _) => None,
            (true, Some(first), _) => Some(Cursor::encode(key_of(first), Direction::Before)),
            // An empty page past the end: everything newer than where it started.
            (true, None, Some(k)) => Some(Cursor::encode(
                Key {
                    time: k.time,
                    id: k.id,
                },
                Direction::Before,
            )),
            (true, None, None) => None,
        };
        (rows, older, newer)
    };
    // Each sound and track with its audience, once the audience job computed it.
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let audience = crate::db::item_audience::stored(c, &ids)?
        .into_iter()
        .map(|a| (a.log_id, a))
        .collect();
    Ok(views::LogView {
        day,
        today,
        tz: s.tz,
        kind: ask.kind.as_str(),
        rows,
        audience,
        older,
        newer,
        total,
        bounds,
        last_id,
    })
}

/// The station and the log view a query asks for: one page, or the whole day (no cursor).
async fn read_log(
    state: &AppState,
    name: String,
    req: &HttpRequest,
    whole_day: bool,
) -> Result<(Station, views::LogView<'static>), ConsoleError> {
    let mut ask = log_ask(req)?;
    if whole_day {
        ask.cursor = None;
    }
    let (default, hour) = day_settings(state);
    db::run(&state.pool, move |c| -> Result<_, ConsoleError> {
        let s = load_station(c, &name, default)?;
        let view = log_view(c, &s, &ask, hour, whole_day)?;
        Ok((s, view))
    })
    .await
}

/// `GET /console/stations/{name}/log?day=&type=&cursor=`: one broadcast day, keyset paged.
pub async fn log_page(
    viewer: Viewer,
    state: web::Data<AppState>,
    name: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ConsoleError> {
    let (s, view) = read_log(&state, name.into_inner(), &req, false).await?;
    let live = (view.day == view.today && view.newer.is_none()).then_some(view.last_id);
    Ok(page(views::layout(
        &frame(&viewer, &s, Tab::Log),
        "As-run log",
        live,
        views::log_page(&frame(&viewer, &s, Tab::Log), &view),
    )))
}

/// `GET /console/stations/{name}/log/print?day=&type=`: the whole day, for paper.
pub async fn print_page(
    _viewer: Viewer,
    state: web::Data<AppState>,
    name: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ConsoleError> {
    let (s, view) = read_log(&state, name.into_inner(), &req, true).await?;
    Ok(page(views::print_page(&s.row.name, &view, Utc::now())))
}

/// `GET /console/stations/{name}/log.csv?day=&type=`: the day as CSV, oldest first, times in
/// the station's zone with their offset.
pub async fn log_csv(
    _viewer: Viewer,
    state: web::Data<AppState>,
    name: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ConsoleError> {
    let (s, view) = read_log(&state, name.into_inner(), &req, true).await?;
    let mut out = String::from(
        "id,time,type,title,artist,path,source,sound_id,track_id,diffusion_id,comment\n",
    );
    for r in &view.rows {
        let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
        let line = [
            r.id.to_string(),
            r.date
                .with_timezone(&s.tz)
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            views::kind_of(r).to_string(),
            csv_field(&views::title_of(r)),
            csv_field(views::artist_of(r).unwrap_or("")),
            csv_field(r.path.as_deref().unwrap_or("")),
            csv_field(&r.source),
            opt(r.sound_id),
            opt(r.track_id),
            opt(r.diffusion_id),
            csv_field(&r.comment),
        ];
        out.push_str(&line.join(","));
        out.push('\n');
    }
    let file = format!("{}-asrun-{}.csv", s.row.name, view.day).replace(['"', '/', '\\'], "_");
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{file}\""),
        ))
        .content_type("text/csv; charset=utf-8")
        .body(out))
}

#[derive(Deserialize)]
struct DayQuery {
    day: Option<String>,
}

/// `GET /console/stations/{name}/schedule?day=`: the day's diffusions and their fate.
pub async fn schedule_page(
    viewer: Viewer,
    state: web::Data<AppState>,
    name: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ConsoleError> {
    let q: DayQuery = parse(req.query_string().as_bytes())?;
    let (default, hour) = day_settings(&state);
    let (s, view) = db::run(&state.pool, move |c| -> Result<_, ConsoleError> {
        let s = load_station(c, &name, default)?;
        let now = Utc::now();
        let day = parse_day(q.day.as_deref(), broadcast::day_of(now, hour, s.tz))?;
        let (from, until) = broadcast::day_bounds(day, hour, s.tz);
        let diffusions = playout::diffusions(c, s.row.id, from, until)?;
        let view = views::ScheduleView {
            day,
            tz: s.tz,
            diffusions,
            now,
        };
        Ok((s, view))
    })
    .await?;
    let f = frame(&viewer, &s, Tab::Schedule);
    Ok(page(views::layout(
        &f,
        "Schedule",
        None,
        views::schedule_page(&f, &view),
    )))
}

#[derive(Deserialize)]
struct AddForm {
    csrf: Option<String>,
    #[serde(default)]
    title: String,
    #[serde(default)]
    start: String,
    #[serde(default)]
    end: String,
    #[serde(default)]
    r#type: String,
    #[serde(default)]
    sounds: String,
}

/// A `datetime-local` value in the station's zone.
fn local_time(s: &str, tz: Tz, field: &str) -> Result<DateTime<Utc>, ConsoleError> {
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M"))
        .map_err(|_| bad(format!("{field}: {s:?} is not a date and time.")))?;
    let t = crate::audience::period::local_instant(tz, naive);
    crate::domain::time::checked(t, s).map_err(|e| bad(format!("{field}: {e}")))
}

/// `POST /console/stations/{name}/diffusions` (admin): schedules a diffusion.
pub async fn add_diffusion(
    viewer: Viewer,
    state: web::Data<AppState>,
    name: web::Path<String>,
    body: Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let f: AddForm = parse(&body)?;
    viewer.check_csrf(f.csrf.as_deref())?;
    viewer.must_be_admin()?;
    let kind = DiffusionType::parse(if f.r#type.is_empty() {
        "on_air"
    } else {
        &f.r#type
    })
    .filter(|k| *k != DiffusionType::Cancel)
    .ok_or_else(|| bad("Type must be on air or unconfirmed."))?;
    let paths: Vec<String> = f
        .sounds
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    if paths.is_empty() {
        return Err(bad("Name at least one sound."));
    }
    let (default, hour) = day_settings(&state);
    let identity = viewer.identity.clone();
    let to = db::run(&state.pool, move |c| -> Result<String, ConsoleError> {
        let s = load_station(c, &name, default)?;
        let start = local_time(&f.start, s.tz, "Starts")?;
        let end = local_time(&f.end, s.tz, "Ends")?;
        if end <= start {
            return Err(bad("The end must be after the start."));
        }
        let mut ids = Vec::new();
        for p in &paths {
            let sound = playout::sound_by_path(c, p)?
                .ok_or_else(|| bad(format!("{p:?} is not in the catalogue.")))?;
            ids.push(sound.id);
        }
        let d = playout::insert_diffusion(c, s.row.id, start, end, f.title.trim(), kind, &ids)?;
        tracing::info!(
            station = s.row.name.as_str(),
            diffusion = d.id,
            by = identity.as_str(),
            "diffusion added from the console"
        );
        let day = broadcast::day_of(start, hour, s.tz);
        Ok(format!(
            "{}?day={day}",
            views::station_path(&s.row.name, Tab::Schedule)
        ))
    })
    .await?;
    Ok(see_other(&to))
}

/// `POST /console/stations/{name}/diffusions/{id}/cancel` (admin): cancels a diffusion that
/// has not started, logging the cancellation like the monitor does.
pub async fn cancel_diffusion(
    viewer: Viewer,
    state: web::Data<AppState>,
    path: web::Path<(String, i64)>,
    body: Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let f: CsrfForm = parse(&body)?;
    viewer.check_csrf(f.csrf.as_deref())?;
    viewer.must_be_admin()?;
    let (name, id) = path.into_inner();
    let (default, hour) = day_settings(&state);
    let identity = viewer.identity.clone();
    let to = db::run(&state.pool, move |c| -> Result<String, ConsoleError> {
        let s = load_station(c, &name, default)?;
        let d = diesel::OptionalExtension::optional(playout::diffusion(c, id))?
            .filter(|d| d.station == s.row.name)
            .ok_or_else(|| ConsoleError::NotFound(format!("No diffusion {id} on this station.")))?;
        if !playout::cancel_diffusion(c, s.row.id, &d, Utc::now())? {
            return Err(bad(
                "This diffusion was already started or cancelled; the as-run log keeps that.",
            ));
        }
        tracing::info!(
            station = s.row.name.as_str(),
            diffusion = id,
            by = identity.as_str(),
            "diffusion cancelled from the console"
        );
        let day = broadcast::day_of(d.start, hour, s.tz);
        Ok(format!(
            "{}?day={day}",
            views::station_path(&s.row.name, Tab::Schedule)
        ))
    })
    .await?;
    Ok(see_other(&to))
}

#[derive(Deserialize)]
struct RangeQuery {
    from: Option<String>,
    until: Option<String>,
}

fn report_of(
    c: &mut PgConnection,
    settings: &crate::config::Settings,
    asked: report::Asked,
) -> Result<report::Report, ConsoleError> {
    let q = report::check(c, settings, &asked)?.map_err(|problems| {
        let text: Vec<String> = problems
            .iter()
            .map(|p| format!("{}: {}", p.field, p.message))
            .collect();
        bad(text.join("; "))
    })?;
    Ok(report::compute(c, settings, q)?)
}

/// `GET /console/stations/{name}/audience?from=&until=`: the last day by hour, and a range by
/// daypart, from the audience report the API serves.
pub async fn audience_page(
    viewer: Viewer,
    state: web::Data<AppState>,
    name: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ConsoleError> {
    let q: RangeQuery = parse(req.query_string().as_bytes())?;
    let settings = state.settings.clone();
    let default = settings.station.time_zone.0;
    let (s, last_day, ranges, from, until) =
        db::run(&state.pool, move |c| -> Result<_, ConsoleError> {
            let s = load_station(c, &name, default)?;
            let now = Utc::now();
            let today = now.with_timezone(&s.tz).date_naive();
            let until = parse_day(q.until.as_deref(), today + Duration::days(1))?;
            let from = parse_day(q.from.as_deref(), until - Duration::days(7))?;
            // Whole hours, so the chart's bars line up with the clock.
            let end = now
                .with_timezone(&s.tz)
                .date_naive()
                .and_hms_opt(chrono::Timelike::hour(&now.with_timezone(&s.tz)), 0, 0)
                .map(|t| crate::audience::period::local_instant(s.tz, t) + Duration::hours(1))
                .unwrap_or(now);
            let station = Some(s.row.name.clone());
            let last_day = report_of(
                c,
                &settings,
                report::Asked {
                    station: station.clone(),
                    from: Some((end - Duration::hours(24)).to_rfc3339()),
                    until: Some(end.to_rfc3339()),
                    interval: Some("hour".into()),
                    ..Default::default()
                },
            )?;
            let mut parts = vec![("All hours".to_string(), None)];
            for p in db::audience::dayparts(c, s.row.id)? {
                parts.push((p.name.clone(), Some(p.name)));
            }
            let mut ranges = Vec::new();
            for (label, daypart) in parts {
                let r = report_of(
                    c,
                    &settings,
                    report::Asked {
                        station: station.clone(),
                        from: Some(from.to_string()),
                        until: Some(until.to_string()),
                        interval: Some("total".into()),
                        daypart,
                        ..Default::default()
                    },
                )?;
                if let Some(row) = r.results.into_iter().next() {
                    ranges.push((label, row));
                }
            }
            Ok((s, last_day, ranges, from, until))
        })
        .await?;
    let f = frame(&viewer, &s, Tab::Audience);
    let view = views::AudienceView {
        last_day: &last_day,
        ranges,
        from,
        until,
    };
    Ok(page(views::layout(
        &f,
        "Audience",
        None,
        views::audience_page(&f, &view),
    )))
}

/// `GET /console/stations/{name}/health`: jobs, shippers, mpv, monitors; tokens for admins.
pub async fn health_page(
    viewer: Viewer,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let default = state.settings.station.time_zone.0;
    let admin = viewer.admin;
    let (s, health, stations, tokens, webhooks) =
        db::run(&state.pool, move |c| -> Result<_, ConsoleError> {
            let s = load_station(c, &name, default)?;
            let health = console::health(c)?;
            let mut stations = Vec::new();
            for row in playout::stations(c)? {
                let monitor =
                    console::monitor_state(c, row.id, crate::monitor::station_lock_key(row.id))?;
                stations.push(views::StationHealth {
                    name: row.name,
                    streamer: row.streamer.as_str().to_string(),
                    monitor,
                });
            }
            let (tokens, webhooks) = if admin {
                (Some(tokens::list(c)?), Some(db::webhooks::endpoints(c)?))
            } else {
                (None, None)
            };
            Ok((s, health, stations, tokens, webhooks))
        })
        .await?;
    let f = frame(&viewer, &s, Tab::Health);
    Ok(page(views::layout(
        &f,
        "Health",
        None,
        views::health_page(
            &f,
            s.tz,
            &health,
            &stations,
            tokens.as_deref(),
            webhooks.as_deref(),
        ),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_what_they_did_not_write() {
        let key = Key {
            time: DateTime::from_timestamp_micros(1_730_000_000_123_456).unwrap(),
            id: 42,
        };
        for direction in [Direction::After, Direction::Before] {
            let c = Cursor::parse(&Cursor::encode(key, direction)).unwrap();
            assert_eq!((c.key, c.direction), (key, direction));
        }
        for bad in ["", "x1.2", "o1", "o1.x", "n.5", "o99999999999999999999.1"] {
            assert!(Cursor::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn days_are_checked_at_the_edge() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
        assert_eq!(parse_day(None, today).unwrap(), today);
        assert_eq!(parse_day(Some(""), today).unwrap(), today);
        assert_eq!(
            parse_day(Some("2024-10-26"), today).unwrap(),
            NaiveDate::from_ymd_opt(2024, 10, 26).unwrap()
        );
        for bad in ["26.10.2024", "2024-02-30", "1999-12-31", "2100-01-01"] {
            assert!(parse_day(Some(bad), today).is_err(), "{bad}");
        }
    }

    #[test]
    fn forms_with_a_nul_character_are_refused() {
        #[derive(Deserialize)]
        struct F {
            #[allow(dead_code)]
            title: String,
        }
        assert!(parse::<F>(b"title=a%00b").is_err());
        assert!(parse::<F>(b"title=ab").is_ok());
    }
}
