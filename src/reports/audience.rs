//! The audience report: checks what is asked (station, period, interval, daypart, breakdown),
//! loads the listening of the period and computes the figures. The API and `airlog report
//! audience` both answer with it.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use diesel::PgConnection;
use serde::Serialize;

use crate::audience::figures::{self, Figures};
use crate::audience::period::{self, Daypart, Interval, Span};
use crate::audience::rollup::{self, Block, Kind};
use crate::audience::{self as model, By};
use crate::config::Settings;
use crate::db;
use crate::domain::FieldError;
use crate::jobs::audience::{self as audience_job, PLAY_CONTEXT};

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
    /// Sessions starting in the period not counted, by the first rule that excluded them.
    pub excluded: BTreeMap<String, u64>,
    /// `rollups` (kept by the `audience` job) or `sessions` (computed now from the listening);
    /// both give the same figures.
    pub computed_from: String,
    /// With rollups: the instant they are current to (their job's last run).
    pub rollups_as_of: Option<String>,
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

/// What a report is asked for, as written (query parameters or command-line flags).
#[derive(Debug, Clone, Default)]
pub struct Asked {
    pub station: Option<String>,
    pub from: Option<String>,
    pub until: Option<String>,
    pub interval: Option<String>,
    pub daypart: Option<String>,
    pub by: Option<String>,
}

/// A checked request for figures.
#[derive(Debug, Clone)]
pub struct Query {
    pub station: Option<(i64, String)>,
    pub tz: Tz,
    pub period: Span,
    pub interval: Interval,
    /// The spec as written and parsed.
    pub daypart: Option<(String, Daypart)>,
    pub by: Option<By>,
}

/// A time bound: an RFC 3339 instant, or `YYYY-MM-DD` meaning local midnight.
pub fn bound(tz: Tz, s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(date) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return crate::domain::time::checked(period::local_midnight(tz, date), s);
    }
    crate::domain::time::parse_time_str(s)
}

/// Checks a request against the station it names (its zone and dayparts); every problem is
/// named by its parameter.
pub fn check(
    conn: &mut PgConnection,
    settings: &Settings,
    asked: &Asked,
) -> Result<Result<Query, Vec<FieldError>>, diesel::result::Error> {
    let mut problems = Vec::new();
    let mut parse = |name: &str, value: &Option<String>, f: &dyn Fn(&str) -> Result<(), String>| {
        if let Some(v) = value {
            if let Err(e) = f(v) {
                problems.push(FieldError::new(name, e));
            }
        }
    };
    parse("interval", &asked.interval, &|s| {
        s.parse::<Interval>().map(|_| ())
    });
    parse("by", &asked.by, &|s| s.parse::<By>().map(|_| ()));
    let interval = asked
        .interval
        .as_deref()
        .and_then(|s| s.parse().ok())
        .unwrap_or(Interval::Day);
    let by = asked.by.as_deref().and_then(|s| s.parse().ok());
    let default_tz = settings.station.time_zone.0;
    let (station, tz, dayparts) = match &asked.station {
        None => (None, default_tz, Vec::new()),
        Some(name) => match db::playout::station(conn, name)? {
            None => {
                problems.push(FieldError::new("station", "no such station"));
                (None, default_tz, Vec::new())
            }
            Some(row) => {
                let tz = row.time_zone.parse::<Tz>().unwrap_or(default_tz);
                let dayparts = db::audience::dayparts(conn, row.id)?;
                (Some((row.id, row.name)), tz, dayparts)
            }
        },
    };
    let mut time = |name: &str, value: &Option<String>| match value {
        None => {
            problems.push(FieldError::new(
                name,
                "is required (an RFC 3339 instant or YYYY-MM-DD)",
            ));
            None
        }
        Some(s) => match bound(tz, s) {
            Ok(t) => Some(t),
            Err(e) => {
                problems.push(FieldError::new(name, e));
                None
            }
        },
    };
    let from = time("from", &asked.from);
    let until = time("until", &asked.until);
    let daypart = match &asked.daypart {
        None => None,
        Some(d) => {
            // A station's named daypart, or a spec written out.
            let spec = dayparts
                .iter()
                .find(|p| &p.name == d)
                .map(|p| p.spec.clone())
                .unwrap_or_else(|| d.clone());
            match spec.parse::<Daypart>() {
                Ok(parsed) => Some((spec, parsed)),
                Err(e) => {
                    problems.push(FieldError::new(
                        "daypart",
                        format!("{e} (or the name of one of the station's dayparts)"),
                    ));
                    None
                }
            }
        }
    };
    let (Some(from), Some(until)) = (from, until) else {
        return Ok(Err(problems));
    };
    if from >= until {
        problems.push(FieldError::new("until", "must be after from"));
    }
    let period = Span::new(from, until);
    // Before the retention horizon only the rollups hold the listening.
    if let Some(cutoff) = crate::jobs::audience::retention_cutoff(settings, chrono::Utc::now()) {
        let windows = match &daypart {
            Some((_, d)) => d.windows(tz, period),
            None => vec![period],
        };
        let on_grid = windows
            .iter()
            .all(|w| rollup::on_grid(w.start) && rollup::on_grid(w.end));
        if period.start < cutoff && (station.is_none() || !on_grid) {
            problems.push(FieldError::new(
                "from",
                format!(
                    "stream events before {cutoff} are no longer kept \
                     (audience.stream_events_retention_days): ask for one station, with a period \
                     and daypart on the quarter-hour grid, answered from the rollups"
                ),
            ));
        }
    }
    // Counted from the lengths first, so a century of quarter-hours is refused without work.
    let count = match period::count_at_most(period, interval) {
        n if n > 4 * MAX_INTERVALS as u64 => n as usize,
        _ => period::split(tz, period, interval).len(),
    };
    if count > MAX_INTERVALS {
        problems.push(FieldError::new(
            "interval",
            format!("{interval} over this period gives {count} intervals (at most {MAX_INTERVALS}); choose a longer interval or a shorter period"),
        ));
    }
    if !problems.is_empty() {
        return Ok(Err(problems));
    }
    Ok(Ok(Query {
        station,
        tz,
        period,
        interval,
        daypart,
        by,
    }))
}

/// Computes the report: from the rollups when they are current for the period and the period
/// lies on the quarter-hour grid, else from the sessions by the definitions (the same figures,
/// slower over long periods).
pub fn compute(
    conn: &mut PgConnection,
    settings: &Settings,
    q: Query,
) -> Result<Report, diesel::result::Error> {
    if let Some(report) = from_rollups(conn, settings, &q)? {
        return Ok(report);
    }
    compute_from_sessions(conn, settings, q)
}

/// Computes the report from the listening itself, by the definitions (what the rollups must
/// equal; the benchmark compares them).
pub fn compute_from_sessions(
    conn: &mut PgConnection,
    settings: &Settings,
    q: Query,
) -> Result<Report, diesel::result::Error> {
    let station_id = q.station.as_ref().map(|(id, _)| *id);
    let streams = db::audience::stream_sessions(conn, station_id, q.period)?;
    let context = Span::new(q.period.start - PLAY_CONTEXT, q.period.end + PLAY_CONTEXT);
    let plays = db::audience::player_plays(conn, station_id, context)?;
    let rules = audience_job::Rules::of(settings);
    let (tz, interval, by) = (q.tz, q.interval, q.by);
    let assembled = model::assemble(streams, plays, &rules.validity, rules.gap_s, by);
    let intervals = period::split(tz, q.period, interval);
    let windows = windows(&q);
    let th = rules.thresholds;
    let (total, groups) = match by {
        Some(_) => figures::compute_by_group(&assembled.sessions, &intervals, &windows, th),
        None => (
            figures::compute(&assembled.sessions, &intervals, &windows, th),
            Vec::new(),
        ),
    };
    let excluded = assembled.excluded_in(q.period);
    Ok(assemble_report(settings, q, total, groups, excluded, None))
}

fn windows(q: &Query) -> Vec<Span> {
    match &q.daypart {
        Some((_, d)) => d.windows(q.tz, q.period),
        None => vec![q.period],
    }
}

/// The report from the rollups, or None when they cannot answer it exactly: every station at
/// once (listeners are de-duplicated across stations), rules changed since they were made, a
/// period reaching past their last run or with listening that arrived since, or a period or
/// daypart off the quarter-hour grid.
fn from_rollups(
    conn: &mut PgConnection,
    settings: &Settings,
    q: &Query,
) -> Result<Option<Report>, diesel::result::Error> {
    let Some((station_id, name)) = &q.station else {
        return Ok(None);
    };
    let Some(state) = db::audience::rollup_state(conn, *station_id)? else {
        return Ok(None);
    };
    let streams = db::audience::streams(conn, *station_id)?;
    if state.rules != audience_job::fingerprint(settings, q.tz, &streams)
        || q.period.end > state.as_of
        || db::audience::pending_since(conn, &state, q.period, PLAY_CONTEXT)?
    {
        return Ok(None);
    }
    let intervals = period::split(q.tz, q.period, q.interval);
    let windows = windows(q);
    let insides: Vec<Vec<Span>> = intervals
        .iter()
        .map(|i| period::intersect(&[*i], &windows))
        .collect();
    let plans: Option<Vec<_>> = insides.iter().map(|i| rollup::decompose(q.tz, i)).collect();
    let (Some(plans), Some(whole)) = (plans, rollup::decompose(q.tz, &[q.period])) else {
        return Ok(None);
    };
    let prefix = match q.by {
        Some(By::Stream) => Some("stream:"),
        Some(By::Source) => Some("source:"),
        Some(By::Station) | None => None,
    };
    // Blocks that are a whole interval are read for their figures; those an interval unites
    // with others, with their listener sets too. Each block is read once.
    let mut sets_of: HashMap<(Kind, DateTime<Utc>), bool> = HashMap::new();
    for plan in &plans {
        for (kind, span) in plan {
            *sets_of.entry((*kind, span.start)).or_default() |= plan.len() > 1;
        }
    }
    for (kind, span) in &whole {
        sets_of.entry((*kind, span.start)).or_default();
    }
    let mut starts: HashMap<(Kind, bool), Vec<DateTime<Utc>>> = HashMap::new();
    for ((kind, start), sets) in sets_of {
        starts.entry((kind, sets)).or_default().push(start);
    }
    let mut stored: HashMap<(Kind, DateTime<Utc>, String), Block> = HashMap::new();
    for ((kind, sets), mut list) in starts {
        list.sort();
        for b in db::audience::blocks(conn, *station_id, kind, &list, &[""], prefix, sets)? {
            stored.insert((b.kind, b.block.span.start, b.group), b.block);
        }
    }
    let th = audience_job::Rules::of(settings).thresholds;
    let figures_of = |group: &str| -> Vec<Figures> {
        intervals
            .iter()
            .zip(&insides)
            .zip(&plans)
            .map(|((interval, inside), plan)| {
                let parts: Vec<&Block> = plan
                    .iter()
                    .filter_map(|(k, s)| stored.get(&(*k, s.start, group.to_string())))
                    .collect();
                rollup::evaluate(*interval, inside, &parts, th)
            })
            .collect()
    };
    // A group has rows when it has listening in the period, as computed from the sessions.
    let in_period = |group: &str| {
        whole.iter().any(|(k, s)| {
            stored
                .get(&(*k, s.start, group.to_string()))
                .is_some_and(|b| b.listening_us > 0)
        })
    };
    let total = figures_of("");
    let groups = match (q.by, prefix) {
        (Some(By::Station), _) if in_period("") => vec![(name.clone(), total.clone())],
        (_, Some(prefix)) => {
            let mut names: Vec<&String> = stored
                .keys()
                .map(|(_, _, g)| g)
                .filter(|g| g.starts_with(prefix) && in_period(g))
                .collect();
            names.sort();
            names.dedup();
            names
                .into_iter()
                .map(|g| (g[prefix.len()..].to_string(), figures_of(g)))
                .collect()
        }
        _ => Vec::new(),
    };
    let mut excluded = BTreeMap::new();
    for (kind, span) in &whole {
        if let Some(b) = stored.get(&(*kind, span.start, String::new())) {
            for (rule, n) in [
                ("robot", b.excluded.robot),
                ("relay", b.excluded.relay),
                ("too_short", b.excluded.too_short),
            ] {
                if n > 0 {
                    *excluded.entry(rule).or_default() += n as u64;
                }
            }
        }
    }
    Ok(Some(assemble_report(
        settings,
        q.clone(),
        total,
        groups,
        excluded,
        Some(state.as_of),
    )))
}

fn assemble_report(
    settings: &Settings,
    q: Query,
    total: Vec<Figures>,
    groups: Vec<(String, Vec<Figures>)>,
    excluded: BTreeMap<&'static str, u64>,
    rollups_as_of: Option<DateTime<Utc>>,
) -> Report {
    let tz = q.tz;
    let a = &settings.audience;
    let mut rows = Vec::new();
    for (i, f) in total.iter().enumerate() {
        rows.push(row(tz, f, None));
        for (g, figures) in &groups {
            rows.push(row(tz, &figures[i], Some(g.clone())));
        }
    }
    Report {
        station: q.station.map(|(_, name)| name),
        time_zone: tz.name().to_string(),
        interval: q.interval.to_string(),
        by: q.by.map(|b| b.as_str().to_string()),
        rules: Rules {
            min_session_s: a.min_session_s,
            cume_min_s: a.cume_min_s,
            aqh_min_s: 300,
            daypart: q.daypart.map(|(spec, _)| spec),
            excluded: excluded
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            computed_from: if rollups_as_of.is_some() {
                "rollups"
            } else {
                "sessions"
            }
            .to_string(),
            rollups_as_of: rollups_as_of.map(|t| local(tz, t)),
        },
        results: rows,
    }
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

/// The report as CSV (header line, then one line per row).
pub fn to_csv(report: &Report) -> String {
    let mut out =
        String::from("start,end,group,aqh,cume,tlh_hours,tsl_minutes,aas,peak,peak_at,sessions\n");
    for r in &report.results {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{}\n",
            r.start,
            r.end,
            super::csv_field(r.group.as_deref().unwrap_or("")),
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

/// The report as a table for a terminal.
pub fn to_table(report: &Report) -> String {
    let mut out = format!(
        "{} ({}), by {}{}\n",
        report.station.as_deref().unwrap_or("every station"),
        report.time_zone,
        report.interval,
        report
            .rules
            .daypart
            .as_deref()
            .map(|d| format!(", daypart {d}"))
            .unwrap_or_default()
    );
    out.push_str(&format!(
        "{:<25} {:<14} {:>9} {:>7} {:>10} {:>9} {:>8} {:>6} {:>9}\n",
        "start", "group", "AQH", "Cume", "TLH (h)", "TSL (min)", "AAS", "peak", "sessions"
    ));
    for r in &report.results {
        out.push_str(&format!(
            "{:<25} {:<14} {:>9.2} {:>7} {:>10.2} {:>9.1} {:>8.2} {:>6} {:>9}\n",
            r.start,
            r.group.as_deref().unwrap_or("total"),
            r.aqh,
            r.cume,
            r.tlh_hours,
            r.tsl_minutes,
            r.aas,
            r.peak,
            r.sessions
        ));
    }
    if !report.rules.excluded.is_empty() {
        let ex: Vec<String> = report
            .rules
            .excluded
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        out.push_str(&format!("sessions not counted: {}\n", ex.join(", ")));
    }
    out
}
