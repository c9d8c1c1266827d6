//! The console's HTML, written with maud: checked at compile time, every value escaped. Pages
//! get plain data from the handlers and only format it. Elements tests and scripts rely on
//! carry stable hooks (`data-testid`, `data-entry-id`).

use actix_web::http::StatusCode;
use chrono::{DateTime, LocalResult, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use maud::{html, Markup, DOCTYPE};

use super::session::Viewer;
use crate::db::console::{Health, MonitorState};
use crate::db::player_events::SourceCount;
use std::collections::HashMap;

use crate::audience::items::ItemAudience;
use crate::db::playout::{DiffusionRow, LogRow};
use crate::db::tokens::TokenRow;
use crate::db::webhooks::EndpointRow;

/// The console's pages, as the navigation names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Now,
    Log,
    Schedule,
    Audience,
    Health,
}

impl Tab {
    const ALL: [Tab; 5] = [
        Tab::Now,
        Tab::Log,
        Tab::Schedule,
        Tab::Audience,
        Tab::Health,
    ];

    fn label(self) -> &'static str {
        match self {
            Tab::Now => "Now",
            Tab::Log => "As-run log",
            Tab::Schedule => "Schedule",
            Tab::Audience => "Audience",
            Tab::Health => "Health",
        }
    }

    /// The page's path under a station (`""` for the now page).
    pub fn slug(self) -> &'static str {
        match self {
            Tab::Now => "",
            Tab::Log => "log",
            Tab::Schedule => "schedule",
            Tab::Audience => "audience",
            Tab::Health => "health",
        }
    }
}

/// What every page's frame shows: who is signed in, the stations, where we are.
pub struct Frame<'a> {
    pub viewer: &'a Viewer,
    pub stations: &'a [String],
    pub station: &'a str,
    pub tab: Tab,
}

/// A station page's path.
pub fn station_path(station: &str, tab: Tab) -> String {
    format!("/console/stations/{}/{}", urlencode(station), tab.slug())
}

fn urlencode(s: &str) -> String {
    // Station names are checked when stored, but a path segment is still encoded as one.
    let encoded = serde_urlencoded::to_string([("", s)]).unwrap_or_default();
    encoded[1..].replace('+', "%20")
}

fn head(title: &str) -> Markup {
    html! {
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        meta name="color-scheme" content="light dark";
        title { (title) " · airlog" }
        link rel="stylesheet" href=(super::assets::CSS_PATH.as_str());
        script src=(super::assets::JS_PATH.as_str()) defer {}
    }
}

/// The frame of every signed-in page: the station switcher, the tabs, the sign-out button.
pub fn layout(frame: &Frame<'_>, title: &str, live: Option<i64>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(&format!("{title} · {}", frame.station))) }
            body data-station=(frame.station) data-live-after=[live] {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/console/" { "airlog" }
                    form.switcher method="get" action="/console/go" {
                        label for="station" { "Station" }
                        select #station name="station" data-testid="station-switcher" {
                            @for s in frame.stations {
                                option value=(s) selected[s == frame.station] { (s) }
                            }
                        }
                        input type="hidden" name="tab" value=(frame.tab.slug());
                        button.js-hide type="submit" { "Go" }
                    }
                    nav aria-label="Pages" {
                        @for tab in Tab::ALL {
                            a href=(station_path(frame.station, tab))
                                aria-current=[(tab == frame.tab).then_some("page")] { (tab.label()) }
                        }
                    }
                    form.signout method="post" action="/console/signout" {
                        input type="hidden" name="csrf" value=(frame.viewer.csrf);
                        span.who title="signed in as" {
                            (frame.viewer.identity)
                            @if frame.viewer.admin { " (admin)" }
                        }
                        button type="submit" { "Sign out" }
                    }
                }
                main #main tabindex="-1" { (body) }
            }
        }
    }
}

/// The sign-in page: paste a token once.
pub fn signin_page(next: &str, form_token: &str, problem: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head("Sign in")) }
            body.signin {
                main #main {
                    h1 { "airlog console" }
                    form method="post" action="/console/signin" data-testid="signin" {
                        @if let Some(p) = problem {
                            p.problem role="alert" data-testid="signin-problem" { (p) }
                        }
                        label for="token" { "API token" }
                        input #token type="password" name="token" autocomplete="off" required
                            autofocus spellcheck="false" placeholder="40 hex characters";
                        input type="hidden" name="next" value=(next);
                        input type="hidden" name="form" value=(form_token);
                        button type="submit" { "Sign in" }
                        p.hint {
                            "Create one with " code { "airlog token create --name NAME --scope read" }
                            " (or " code { "--scope admin" } " to change the schedule). "
                            "The browser then keeps a session; the token is not stored in it."
                        }
                    }
                }
            }
        }
    }
}

/// A page for an error (its status and what to do).
pub fn error_page(status: StatusCode, message: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(status.canonical_reason().unwrap_or("Error"))) }
            body.signin {
                main #main data-testid="error" {
                    h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
                    p { (message) }
                    p { a href="/console/" { "Back to the console" } }
                }
            }
        }
    }
}

/// `HH:MM:SS` in the station's time; where that wall-clock time happens twice (the hour a DST
/// change repeats), the UTC offset is added so the two are told apart.
pub fn clock(t: DateTime<Utc>, tz: Tz) -> String {
    let local = t.with_timezone(&tz);
    let time = local.format("%H:%M:%S").to_string();
    match tz.from_local_datetime(&local.naive_local()) {
        LocalResult::Ambiguous(..) => format!("{time} ({})", local.format("%:z")),
        _ => time,
    }
}

fn time_el(t: DateTime<Utc>, tz: Tz) -> Markup {
    html! { time datetime=(t.to_rfc3339()) { (clock(t, tz)) } }
}

fn tag<'a>(row: &'a LogRow, key: &str) -> Option<&'a str> {
    row.tags
        .get(key)
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
}

/// What kind of entry a row is: a track inside a sound, or its log type.
pub fn kind_of(row: &LogRow) -> &'static str {
    if row.track_id.is_some() {
        "track"
    } else {
        row.r#type.as_str()
    }
}

fn kind_label(kind: &str) -> &'static str {
    match kind {
        "on_air" => "ON AIR",
        "track" => "TRACK",
        "start" => "START",
        "cancel" => "CANCEL",
        "stop" => "STOP",
        _ => "OTHER",
    }
}

/// The title shown for an entry: its title tag, else its comment.
pub fn title_of(row: &LogRow) -> String {
    tag(row, "title")
        .map(str::to_string)
        .unwrap_or_else(|| row.comment.clone())
}

/// The artist shown for an entry, if known.
pub fn artist_of(row: &LogRow) -> Option<&str> {
    tag(row, "artist")
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// One row of the as-run log (the log page, the now page and live events all use it), with
/// the item's audience when known: listeners at its start and performances (distinct
/// listeners who heard it).
pub fn log_row(row: &LogRow, tz: Tz, audience: Option<&ItemAudience>) -> Markup {
    let kind = kind_of(row);
    html! {
        tr data-entry-id=(row.id) data-kind=(kind) {
            td.time { (time_el(row.date, tz)) }
            td { span class={"badge " (kind)} { (kind_label(kind)) } }
            td.title {
                (title_of(row))
                @if let Some(a) = artist_of(row) { span.artist { " — " (a) } }
            }
            td.path title=[row.path.as_deref()] {
                @if let Some(p) = &row.path { (file_name(p)) }
            }
            td.source { (row.source) }
            @match audience {
                Some(a) => {
                    td.num data-testid="at-start" title="listeners at its start" { (a.listeners_at_start) }
                    td.num data-testid="performances" title="distinct listeners who heard it" { (a.performances) }
                }
                None => { td.num.muted { "–" } td.num.muted { "–" } }
            }
        }
    }
}

fn log_table(
    rows: &[LogRow],
    audience: &HashMap<i64, ItemAudience>,
    tz: Tz,
    kind: &str,
    live: bool,
) -> Markup {
    html! {
        div.table-wrap {
            table #log data-testid="log" data-kind=(kind) data-live=(if live { "1" } else { "0" }) {
                thead { tr {
                    th scope="col" { "Time" } th scope="col" { "Type" } th scope="col" { "Title" }
                    th scope="col" { "Sound" } th scope="col" { "Source" }
                    th scope="col" title="listeners at its start" { "Listeners" }
                    th scope="col" title="distinct listeners who heard it" { "Performances" }
                } }
                tbody {
                    @for row in rows { (log_row(row, tz, audience.get(&row.id))) }
                }
            }
        }
        @if rows.is_empty() { p.empty data-testid="log-empty" { "Nothing logged here." } }
    }
}

/// What the now panel shows.
pub struct NowView {
    pub now: crate::api::playout::onair::OnAirNow,
    pub tz: Tz,
    pub listeners: Vec<SourceCount>,
    pub monitor: MonitorState,
    pub streamer: String,
}

fn duration_text(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as i64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s % 3600 / 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

fn diffusion_line(d: &DiffusionRow, tz: Tz) -> Markup {
    html! {
        span.when { (time_el(d.start, tz)) "–" (time_el(d.end, tz)) }
        " " strong { (d.title) }
    }
}

/// The now panel: on air, diffusions, listeners, monitor. Reloaded by the page on each live
/// entry; the progress bar counts down in the browser between reloads.
pub fn now_panel(v: &NowView) -> Markup {
    let o = &v.now.observed;
    let track = o.track.as_ref();
    let shown = track.or(o.sound.as_ref());
    let ends_at = o
        .remaining_seconds
        .map(|r| (v.now.at.timestamp_millis() as f64 + r * 1000.0) as i64);
    let length = match (o.position_seconds, o.remaining_seconds) {
        (Some(p), Some(r)) => Some(p + r),
        _ => None,
    };
    html! {
        section.now data-testid="now" aria-live="polite" {
            div.onair {
                h2 { "On air" }
                @match shown {
                    None => p.empty { "Nothing logged yet." },
                    Some(row) => {
                        p.big data-testid="now-title" { (title_of(row)) }
                        @if let Some(a) = artist_of(row) { p.artist data-testid="now-artist" { (a) } }
                        @if let Some(sound) = &o.sound {
                            p.muted {
                                @if let Some(p) = &sound.path { span title=(p) { (file_name(p)) } }
                                @if track.is_some() { " · track of " (title_of(sound)) }
                                " · since " (time_el(sound.date, v.tz))
                            }
                        }
                        @if let (Some(len), Some(pos), Some(end)) = (length, o.position_seconds, ends_at) {
                            div.progress {
                                progress max=(format!("{len:.0}")) value=(format!("{:.0}", pos.min(len)))
                                    data-ends-at=(end) data-length=(format!("{len:.0}")) aria-label="progress" {}
                                span.remaining data-testid="now-remaining" data-ends-at=(end) {
                                    "−" (duration_text(o.remaining_seconds.unwrap_or(0.0)))
                                }
                                span.muted { " of " (duration_text(len)) }
                            }
                        } @else if let Some(pos) = o.position_seconds {
                            p.muted { "playing for " (duration_text(pos)) " (length unknown)" }
                        }
                    }
                }
            }
            div.cards {
                div.card {
                    h3 { "Diffusion now" }
                    @match &v.now.scheduled.current {
                        Some(d) => p { (diffusion_line(d, v.tz)) },
                        None => p.muted { "none running" },
                    }
                    h3 { "Next" }
                    @match &v.now.scheduled.next {
                        Some(d) => p data-testid="now-next" { (diffusion_line(d, v.tz)) },
                        None => p.muted { "nothing scheduled" },
                    }
                }
                div.card data-testid="listeners" {
                    h3 { "Listeners now" }
                    @if v.listeners.is_empty() { p.muted { "none heard from in the last 2 minutes" } }
                    ul.plain {
                        @for s in &v.listeners { li { strong { (s.devices) } " " (s.source) } }
                    }
                }
                div.card data-testid="monitor" {
                    h3 { "Monitor" }
                    @if v.streamer == "none" {
                        p { span.dot.idle {} "no streamer to watch (entries come from mpv or the API)" }
                    } @else if let (true, Some(since)) = (v.monitor.monitored, v.monitor.unreachable_since) {
                        p data-testid="unreachable" { span.dot.bad {} (v.streamer) " unreachable since " (time_el(since, v.tz)) }
                    } @else if v.monitor.monitored {
                        p { span.dot.ok {} "watching " (v.streamer) }
                    } @else {
                        p { span.dot.bad {} "not monitored: no airlog holds this station (starting, standing by elsewhere, or stopped)" }
                    }
                    p.muted {
                        "last entry "
                        @match v.monitor.last_entry {
                            Some(t) => (time_el(t, v.tz)),
                            None => "never",
                        }
                    }
                }
            }
        }
    }
}

/// The now page: the panel and the latest entries.
pub fn now_page(frame: &Frame<'_>, v: &NowView, recent: &[LogRow], last_id: i64) -> Markup {
    layout(
        frame,
        "Now",
        Some(last_id),
        html! {
            (now_panel(v))
            h2 { "Today's latest entries " span.live data-testid="live" { "" } }
            (log_table(recent, &HashMap::new(), v.tz, "all", true))
            p { a href=(station_path(frame.station, Tab::Log)) { "The whole day →" } }
        },
    )
}

/// The log page's filters, as links and forms need them.
pub struct LogView<'a> {
    pub day: NaiveDate,
    pub today: NaiveDate,
    pub tz: Tz,
    pub kind: &'a str,
    pub rows: Vec<LogRow>,
    /// The stored audience of the rows that have one.
    pub audience: HashMap<i64, ItemAudience>,
    /// Cursors to older and newer entries of the day, when there are any.
    pub older: Option<String>,
    pub newer: Option<String>,
    pub total: i64,
    pub bounds: (DateTime<Utc>, DateTime<Utc>),
    pub last_id: i64,
}

const KINDS: [(&str, &str); 5] = [
    ("all", "All"),
    ("on_air", "On air"),
    ("track", "Tracks"),
    ("start", "Starts"),
    ("cancel", "Cancels"),
];

fn log_link(station: &str, day: NaiveDate, kind: &str, cursor: Option<&str>) -> String {
    let mut q = vec![("day", day.to_string())];
    if kind != "all" {
        q.push(("type", kind.to_string()));
    }
    if let Some(c) = cursor {
        q.push(("cursor", c.to_string()));
    }
    format!(
        "{}?{}",
        station_path(station, Tab::Log),
        serde_urlencoded::to_string(q).unwrap_or_default()
    )
}

fn day_hours(bounds: (DateTime<Utc>, DateTime<Utc>)) -> i64 {
    (bounds.1 - bounds.0).num_minutes().div_euclid(60)
}

/// The as-run log of one broadcast day.
pub fn log_page(frame: &Frame<'_>, v: &LogView<'_>) -> Markup {
    let station = frame.station;
    let live = v.day == v.today && v.newer.is_none();
    let hours = day_hours(v.bounds);
    let file_query =
        serde_urlencoded::to_string([("day", v.day.to_string()), ("type", v.kind.to_string())])
            .unwrap_or_default();
    html! {
        h1 { "As-run log " span.muted data-testid="log-day" { (v.day.format("%a %-d %b %Y")) } }
        p.muted {
            "Broadcast day from " (v.bounds.0.with_timezone(&v.tz).format("%H:%M")) " to "
            (v.bounds.1.with_timezone(&v.tz).format("%H:%M"))
            " " (v.tz.name())
            @if hours != 24 { " · " strong data-testid="day-hours" { (hours) " hours (clock change)" } }
            " · " (v.total) " entries"
        }
        div.toolbar {
            a.button data-testid="prev-day" rel="prev" href=(log_link(station, v.day.pred_opt().unwrap_or(v.day), v.kind, None)) { "← Previous day" }
            form method="get" action=(station_path(station, Tab::Log)) {
                label.sr for="day" { "Day" }
                input #day type="date" name="day" value=(v.day.to_string()) data-testid="day-picker";
                label.sr for="type" { "Type" }
                select #type name="type" data-testid="type-filter" {
                    @for (k, label) in KINDS { option value=(k) selected[k == v.kind] { (label) } }
                }
                button type="submit" { "Show" }
            }
            a.button data-testid="next-day" rel="next" href=(log_link(station, v.day.succ_opt().unwrap_or(v.day), v.kind, None)) { "Next day →" }
            @if v.day != v.today {
                a.button href=(log_link(station, v.today, v.kind, None)) { "Today" }
            }
            span.spacer {}
            a.button data-testid="csv" href=(format!("{}/log.csv?{file_query}", station_path(station, Tab::Now).trim_end_matches('/'))) download { "CSV" }
            a.button data-testid="print" href=(format!("{}/log/print?{file_query}", station_path(station, Tab::Now).trim_end_matches('/'))) { "Print view" }
        }
        @if live { p.muted { span.live data-testid="live" { "" } " new entries appear at the top as they are logged" } }
        @if let Some(c) = &v.newer {
            p { a data-testid="newer" href=(log_link(station, v.day, v.kind, Some(c))) { "↑ Newer entries" } }
        }
        (log_table(&v.rows, &v.audience, v.tz, v.kind, live))
        @if let Some(c) = &v.older {
            p { a.button data-testid="older" href=(log_link(station, v.day, v.kind, Some(c))) { "Older entries ↓" } }
        }
    }
}

/// The whole day on paper, for regulators: no navigation, every entry, oldest first.
pub fn print_page(station: &str, v: &LogView<'_>, printed: DateTime<Utc>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(&format!("As-run log {station} {}", v.day))) }
            body.print {
                header {
                    h1 { "As-run log — " (station) }
                    p {
                        "Broadcast day " strong { (v.day.to_string()) } ", "
                        (v.bounds.0.with_timezone(&v.tz).to_rfc3339()) " to "
                        (v.bounds.1.with_timezone(&v.tz).to_rfc3339()) " (" (v.tz.name()) "), "
                        (v.total) " entries. Printed " (printed.with_timezone(&v.tz).format("%Y-%m-%d %H:%M %Z")) "."
                    }
                }
                (log_table(&v.rows, &v.audience, v.tz, v.kind, false))
            }
        }
    }
}

/// The schedule page's data.
pub struct ScheduleView {
    pub day: NaiveDate,
    pub tz: Tz,
    pub diffusions: Vec<DiffusionRow>,
    pub now: DateTime<Utc>,
}

/// What became of a diffusion: started, cancelled, or still to come.
pub fn fate(d: &DiffusionRow, now: DateTime<Utc>) -> &'static str {
    match d.decision.as_deref() {
        Some("start") => "started",
        Some("cancel") => "cancelled",
        _ if d.r#type.as_str() == "cancel" => "cancelled",
        _ if d.r#type.as_str() == "unconfirmed" => "unconfirmed",
        _ if d.end <= now => "missed",
        _ => "pending",
    }
}

fn sched_link(station: &str, day: NaiveDate) -> String {
    format!("{}?day={day}", station_path(station, Tab::Schedule))
}

/// The diffusions of a broadcast day, with the admin's forms.
pub fn schedule_page(frame: &Frame<'_>, v: &ScheduleView) -> Markup {
    let station = frame.station;
    let admin = frame.viewer.admin;
    html! {
        h1 { "Schedule " span.muted { (v.day.format("%a %-d %b %Y")) } }
        div.toolbar {
            a.button href=(sched_link(station, v.day.pred_opt().unwrap_or(v.day))) { "← Previous day" }
            form method="get" action=(station_path(station, Tab::Schedule)) {
                label.sr for="day" { "Day" }
                input #day type="date" name="day" value=(v.day.to_string());
                button type="submit" { "Show" }
            }
            a.button href=(sched_link(station, v.day.succ_opt().unwrap_or(v.day))) { "Next day →" }
        }
        div.table-wrap {
            table data-testid="schedule" {
                thead { tr {
                    th scope="col" { "Time" } th scope="col" { "Title" } th scope="col" { "Sounds" }
                    th scope="col" { "Fate" }
                    @if admin { th scope="col" { span.sr { "Actions" } } }
                } }
                tbody {
                    @for d in &v.diffusions {
                        @let fate = fate(d, v.now);
                        tr data-diffusion-id=(d.id) data-fate=(fate) {
                            td.time { (time_el(d.start, v.tz)) "–" (time_el(d.end, v.tz)) }
                            td { (d.title) }
                            td {
                                @for s in &d.sounds { span.chip title=(s) { (file_name(s)) } " " }
                            }
                            td { span class={"badge " (fate)} { (fate) } }
                            @if admin {
                                td {
                                    @if fate == "pending" || fate == "unconfirmed" {
                                        form method="post" action=(format!("{}/diffusions/{}/cancel", station_path(station, Tab::Now).trim_end_matches('/'), d.id)) {
                                            input type="hidden" name="csrf" value=(frame.viewer.csrf);
                                            button.danger type="submit" data-testid="cancel" { "Cancel" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if v.diffusions.is_empty() { p.empty { "Nothing scheduled this day." } }
        @if admin {
            details.add open[v.diffusions.is_empty()] {
                summary { "Add a diffusion" }
                form.grid method="post" action=(format!("{}/diffusions", station_path(station, Tab::Now).trim_end_matches('/'))) data-testid="add-diffusion" {
                    input type="hidden" name="csrf" value=(frame.viewer.csrf);
                    label { "Title" input type="text" name="title" required; }
                    label { "Starts (" (v.tz.name()) ")" input type="datetime-local" name="start" step="1" required; }
                    label { "Ends" input type="datetime-local" name="end" step="1" required; }
                    label { "Type" select name="type" {
                        option value="on_air" { "on air" } option value="unconfirmed" { "unconfirmed" }
                    } }
                    label.wide { "Sounds (catalogue paths, one a line, in play order)"
                        textarea name="sounds" rows="3" required {} }
                    button type="submit" { "Add" }
                }
            }
        }
    }
}

/// One bar chart: a value per label, drawn as inline SVG (no script needed to read it).
pub struct Chart<'a> {
    pub title: &'a str,
    pub unit: &'a str,
    pub labels: Vec<String>,
    pub values: Vec<f64>,
}

fn nice_max(x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|m| *m >= x)
        .unwrap_or(10.0 * p)
}

/// Draws a chart; the table under it carries the same figures.
pub fn bar_chart(c: &Chart<'_>) -> Markup {
    let (w, h, left, bottom, top) = (720.0, 220.0, 44.0, 28.0, 12.0);
    let n = c.values.len().max(1) as f64;
    let max = nice_max(c.values.iter().cloned().fold(0.0, f64::max));
    let slot = (w - left - 4.0) / n;
    let bar = (slot * 0.8).max(1.0);
    let y = |v: f64| top + (h - top - bottom) * (1.0 - v / max);
    let every = (c.labels.len() / 8).max(1);
    let summary = format!(
        "{}: {} values, highest {:.1} {}",
        c.title,
        c.values.len(),
        c.values.iter().cloned().fold(0.0, f64::max),
        c.unit
    );
    html! {
        figure.chart {
            figcaption { (c.title) }
            svg viewBox=(format!("0 0 {w} {h}")) role="img" aria-label=(summary) {
                @for frac in [0.0, 0.5, 1.0] {
                    line.grid x1=(left) x2=(w) y1=(y(max * frac)) y2=(y(max * frac)) {}
                    text.axis x=(left - 6.0) y=(y(max * frac) + 4.0) text-anchor="end" { (format!("{}", max * frac)) }
                }
                @for (i, v) in c.values.iter().enumerate() {
                    rect.bar x=(left + i as f64 * slot + (slot - bar) / 2.0) y=(y(*v)) width=(bar) height=((y(0.0) - y(*v)).max(0.0)) {
                        title { (c.labels.get(i).map(String::as_str).unwrap_or("")) ": " (format!("{v:.1}")) " " (c.unit) }
                    }
                    @if i % every == 0 {
                        text.axis x=(left + i as f64 * slot + slot / 2.0) y=(h - 8.0) text-anchor="middle" {
                            (c.labels.get(i).map(String::as_str).unwrap_or(""))
                        }
                    }
                }
            }
        }
    }
}

/// The audience page's data: hour by hour over the last day, and the range by daypart.
pub struct AudienceView<'a> {
    pub last_day: &'a crate::reports::audience::Report,
    pub ranges: Vec<(String, crate::reports::audience::Row)>,
    pub from: NaiveDate,
    pub until: NaiveDate,
}

fn hour_label(rfc3339: &str) -> String {
    // "2024-11-05T14:00:00+01:00" -> "14:00"
    rfc3339.get(11..16).unwrap_or(rfc3339).to_string()
}

/// Audience: charts first, the figures in tables under them.
pub fn audience_page(frame: &Frame<'_>, v: &AudienceView<'_>) -> Markup {
    let rows = &v.last_day.results;
    let labels: Vec<String> = rows.iter().map(|r| hour_label(&r.start)).collect();
    html! {
        h1 { "Audience" }
        section data-testid="audience-24h" {
            h2 { "Last 24 hours" span.muted { " · " (v.last_day.time_zone) } }
            (bar_chart(&Chart {
                title: "Average quarter-hour listeners (AQH), by hour",
                unit: "listeners",
                labels: labels.clone(),
                values: rows.iter().map(|r| r.aqh).collect(),
            }))
            details {
                summary { "Figures by hour" }
                div.table-wrap { table {
                    thead { tr { th { "Hour" } th.num { "AQH" } th.num { "Cume" } th.num { "Peak" } th.num { "TLH (h)" } } }
                    tbody { @for (r, l) in rows.iter().zip(&labels) {
                        tr { td { (l) } td.num { (format!("{:.1}", r.aqh)) } td.num { (r.cume) } td.num { (r.peak) } td.num { (format!("{:.1}", r.tlh_hours)) } }
                    } }
                } }
            }
        }
        section data-testid="audience-range" {
            h2 { "By daypart" }
            form.toolbar method="get" action=(station_path(frame.station, Tab::Audience)) {
                label { "From " input type="date" name="from" value=(v.from.to_string()); }
                label { "until " input type="date" name="until" value=(v.until.to_string()); }
                button type="submit" { "Show" }
            }
            (bar_chart(&Chart {
                title: "Cume (different listeners) by daypart",
                unit: "listeners",
                labels: v.ranges.iter().map(|(n, _)| n.clone()).collect(),
                values: v.ranges.iter().map(|(_, r)| r.cume as f64).collect(),
            }))
            div.table-wrap { table {
                thead { tr { th { "Daypart" } th.num { "AQH" } th.num { "Cume" } th.num { "TLH (h)" } th.num { "TSL (min)" } th.num { "Peak" } } }
                tbody { @for (name, r) in &v.ranges {
                    tr { td { (name) } td.num { (format!("{:.2}", r.aqh)) } td.num { (r.cume) } td.num { (format!("{:.1}", r.tlh_hours)) } td.num { (format!("{:.1}", r.tsl_minutes)) } td.num { (r.peak) } }
                } }
            } }
            p.muted { "From " (v.from.to_string()) " to " (v.until.to_string()) " (local midnights). Definitions: see the README, section Audience figures." }
        }
    }
}

/// `scheme://host` of a URL, nothing of its path or query.
fn host_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    // Credentials in the authority (`user:pass@host`) stay out too.
    let host = host.rsplit('@').next().unwrap_or(host);
    format!("{scheme}://{host}")
}

/// Every station's monitor, as the health page lists them.
pub struct StationHealth {
    pub name: String,
    pub streamer: String,
    pub monitor: MonitorState,
}

fn when(t: Option<DateTime<Utc>>, tz: Tz) -> Markup {
    match t {
        Some(t) => {
            html! { time datetime=(t.to_rfc3339()) { (t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S")) } }
        }
        None => html! { span.muted { "never" } },
    }
}

/// Health: jobs, shippers, mpv, monitors, tokens (admin).
pub fn health_page(
    frame: &Frame<'_>,
    tz: Tz,
    h: &Health,
    stations: &[StationHealth],
    tokens: Option<&[TokenRow]>,
    webhooks: Option<&[EndpointRow]>,
) -> Markup {
    html! {
        h1 { "Health" }
        section { h2 { "Monitors" }
            div.table-wrap { table data-testid="monitors" {
                thead { tr { th { "Station" } th { "Streamer" } th { "State" } th { "Last entry" } } }
                tbody { @for s in stations { tr {
                    td { (s.name) } td { (s.streamer) }
                    td { @if let (true, Some(since)) = (s.monitor.monitored, s.monitor.unreachable_since) { span.dot.bad {} "streamer unreachable since " (when(Some(since), tz)) } @else if s.monitor.monitored { span.dot.ok {} "monitored" } @else if s.streamer == "none" { span.dot.idle {} "nothing to watch" } @else { span.dot.bad {} "not monitored" } }
                    td { (when(s.monitor.last_entry, tz)) }
                } } }
            } }
        }
        section { h2 { "Jobs" }
            @if h.jobs.is_empty() { p.empty { "No job has run yet." } }
            @if !h.jobs.is_empty() { div.table-wrap { table data-testid="jobs" {
                thead { tr { th { "Job" } th { "Last run" } th { "Last success" } th.num { "Failures (24 h)" } th { "Last error" } } }
                tbody { @for j in &h.jobs { tr {
                    td { (j.name) } td { (when(j.last_run, tz)) } td { (when(j.last_success, tz)) }
                    td.num { @if j.failures_24h > 0 { span.badge.cancel { (j.failures_24h) } } @else { "0" } }
                    td.small { (j.last_error.as_deref().unwrap_or("")) }
                } } }
            } } }
        }
        section { h2 { "Log shippers" }
            @if h.shippers.is_empty() { p.empty { "No stream events received yet." } }
            @if !h.shippers.is_empty() { div.table-wrap { table data-testid="shippers" {
                thead { tr { th { "Origin" } th { "Newest event" } th.num { "Events (last hour)" } } }
                tbody { @for s in &h.shippers { tr { td { (s.origin) } td { (when(s.last_event, tz)) } td.num { (s.last_hour) } } } }
            } } }
        }
        section { h2 { "mpv instances" }
            @if h.mpv.is_empty() { p.empty { "No mpv instance captured yet." } }
            @if !h.mpv.is_empty() { div.table-wrap { table data-testid="mpv" {
                thead { tr { th { "Instance" } th { "Last event" } th.num { "Plays" } } }
                tbody { @for m in &h.mpv { tr { td { (m.instance) } td { (when(m.last_event, tz)) } td.num { (m.plays) } } } }
            } } }
        }
        @if let Some(tokens) = tokens {
            section { h2 { "API tokens" }
                div.table-wrap { table data-testid="tokens" {
                    thead { tr { th { "Name" } th { "Prefix" } th { "Scopes" } th { "Last used" } th { "State" } } }
                    tbody { @for t in tokens { tr {
                        td { (t.name) } td { code { (t.prefix) "…" } } td { (t.scopes.join(", ")) }
                        td { (when(t.last_used_at, tz)) }
                        td { @if t.revoked_at.is_some() { span.badge.cancel { "revoked" } } @else { span.badge.start { "active" } } }
                    } } }
                } }
                p.muted { "Create and revoke tokens with " code { "airlog token" } "." }
            }
        }
        @if let Some(endpoints) = webhooks.filter(|e| !e.is_empty()) {
            section { h2 { "Webhooks" }
                div.table-wrap { table data-testid="webhooks" {
                    thead { tr { th { "Receiver" } th { "Preset" } th { "Events" } th { "State" } th { "Last error" } } }
                    tbody { @for e in endpoints { tr {
                        // The host only: receivers such as Discord carry their secret in the path.
                        td { (host_of(&e.url)) @if !e.enabled { " " span.muted { "(disabled)" } } }
                        td { (e.preset) } td.small { (e.events.join(", ")) }
                        td { @if e.state == "ok" { span.badge.start { "ok" } } @else { span.badge.cancel { (e.state) " (" (e.consecutive_failures) ")" } } }
                        td.small { (e.last_error.as_deref().unwrap_or("")) }
                    } } }
                } }
            }
        }
        @if !frame.viewer.admin { p.muted { "Tokens and webhooks are listed to admins only." } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Zurich;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn clock_times_carry_their_offset_only_in_the_hour_a_clock_change_repeats() {
        assert_eq!(
            clock(t("2024-10-27T00:30:00Z"), Zurich),
            "02:30:00 (+02:00)"
        );
        assert_eq!(
            clock(t("2024-10-27T01:30:00Z"), Zurich),
            "02:30:00 (+01:00)"
        );
        assert_eq!(clock(t("2024-10-27T02:30:00Z"), Zurich), "03:30:00");
        assert_eq!(clock(t("2024-03-31T01:30:00Z"), Zurich), "03:30:00");
    }

    #[test]
    fn receivers_show_their_host_and_nothing_of_path_query_or_credentials() {
        assert_eq!(
            host_of("https://discord.com/api/webhooks/1/SECRET?wait=true"),
            "https://discord.com"
        );
        assert_eq!(
            host_of("http://user:pw@10.0.0.7:8080/x"),
            "http://10.0.0.7:8080"
        );
    }

    #[test]
    fn chart_scales_end_on_a_round_number_at_or_above_the_highest_value() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(10.5), 20.0);
        assert_eq!(nice_max(200.0), 200.0);
        assert_eq!(nice_max(3.2), 5.0);
    }

    #[test]
    fn durations_read_as_a_clock() {
        assert_eq!(duration_text(59.6), "1:00");
        assert_eq!(duration_text(3599.0), "59:59");
        assert_eq!(duration_text(7200.0), "2:00:00");
        assert_eq!(duration_text(-3.0), "0:00");
    }
}
