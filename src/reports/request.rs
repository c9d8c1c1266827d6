//! Asking for a royalty or regulator report (API `GET /api/v1/reports/{kind}`, CLI `airlog
//! report {kind}`): the checks, and the report as the bytes of a file with the rules it used.

use std::fmt;
use std::str::FromStr;

use chrono::{Duration, NaiveDate};
use chrono_tz::Tz;
use diesel::PgConnection;

use super::audience::bound;
use super::{music, programme_log};
use crate::audience::period::{local_midnight, Span};
use crate::config::Settings;
use crate::db;
use crate::domain::FieldError;

/// The reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// SoundExchange census Report of Use (text, `^`-quoted fields separated by `|`)
    Soundexchange,
    /// Generic music report, one line per play (CSV)
    Music,
    /// Programme log for regulators (CSV, or a printable HTML page)
    ProgrammeLog,
    /// Recordings that aired without ISRC or label (CSV or JSON)
    Coverage,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Soundexchange,
        Kind::Music,
        Kind::ProgrammeLog,
        Kind::Coverage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Soundexchange => "soundexchange",
            Kind::Music => "music",
            Kind::ProgrammeLog => "programme-log",
            Kind::Coverage => "coverage",
        }
    }

    /// The formats a kind is made in, the first the default.
    fn formats(self) -> &'static [&'static str] {
        match self {
            Kind::Soundexchange => &["txt"],
            Kind::Music => &["csv"],
            Kind::ProgrammeLog => &["csv", "html"],
            Kind::Coverage => &["csv", "json"],
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Kind, String> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown report {s:?} (expected one of: {})",
                    Kind::ALL.map(Kind::as_str).join(", ")
                )
            })
    }
}

/// A report as asked for (query parameters or flags).
#[derive(Debug, Clone, Default)]
pub struct Asked {
    pub station: Option<String>,
    /// `YYYY-MM`: the local month.
    pub month: Option<String>,
    pub from: Option<String>,
    pub until: Option<String>,
    pub format: Option<String>,
}

/// A checked request.
#[derive(Debug, Clone)]
pub struct Request {
    pub kind: Kind,
    pub station_id: i64,
    pub station: String,
    pub tz: Tz,
    pub period: Span,
    /// The first and last local day of the period (for names and titles).
    pub first: NaiveDate,
    pub last: NaiveDate,
    pub format: &'static str,
}

/// A report as a file.
#[derive(Debug, Clone)]
pub struct Output {
    pub content_type: &'static str,
    pub file_name: String,
    pub body: String,
    /// The rules the report was made with, in words.
    pub rules: String,
}

/// The longest period one report covers.
const MAX_DAYS: i64 = 400;

fn month_span(tz: Tz, s: &str) -> Result<Span, String> {
    let first = NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d")
        .map_err(|_| format!("{s:?} is not a month (YYYY-MM)"))?;
    let next = first
        .checked_add_months(chrono::Months::new(1))
        .ok_or("month out of range")?;
    Ok(Span::new(
        local_midnight(tz, first),
        local_midnight(tz, next),
    ))
}

/// Checks a request against the station it names; every problem is named by its parameter.
pub fn check(
    conn: &mut PgConnection,
    kind: Kind,
    asked: &Asked,
) -> Result<Result<Request, Vec<FieldError>>, diesel::result::Error> {
    let mut problems = Vec::new();
    let station = match &asked.station {
        None => {
            problems.push(FieldError::new("station", "is required"));
            None
        }
        Some(name) => match db::playout::station(conn, name)? {
            None => {
                problems.push(FieldError::new("station", "no such station"));
                None
            }
            Some(row) => Some(row),
        },
    };
    let tz: Tz = station
        .as_ref()
        .and_then(|s| s.time_zone.parse().ok())
        .unwrap_or(chrono_tz::UTC);
    let period = match (&asked.month, &asked.from, &asked.until) {
        (Some(m), None, None) => month_span(tz, m)
            .map_err(|e| problems.push(FieldError::new("month", e)))
            .ok(),
        (None, Some(from), Some(until)) => {
            let from = bound(tz, from).map_err(|e| problems.push(FieldError::new("from", e)));
            let until = bound(tz, until).map_err(|e| problems.push(FieldError::new("until", e)));
            match (from, until) {
                (Ok(f), Ok(u)) if f < u => Some(Span::new(f, u)),
                (Ok(_), Ok(_)) => {
                    problems.push(FieldError::new("until", "must be after from"));
                    None
                }
                _ => None,
            }
        }
        (Some(_), _, _) => {
            problems.push(FieldError::new(
                "month",
                "give either month or from and until",
            ));
            None
        }
        _ => {
            problems.push(FieldError::new(
                "month",
                "is required (YYYY-MM), or from and until (RFC 3339 or YYYY-MM-DD)",
            ));
            None
        }
    };
    if let Some(p) = period {
        if p.end - p.start > Duration::days(MAX_DAYS) {
            problems.push(FieldError::new(
                "until",
                format!("a report covers at most {MAX_DAYS} days"),
            ));
        }
    }
    let format = match &asked.format {
        None => Some(kind.formats()[0]),
        Some(f) => match kind.formats().iter().find(|x| **x == f.as_str()) {
            Some(x) => Some(*x),
            None => {
                problems.push(FieldError::new(
                    "format",
                    format!("{kind} is made as {}", kind.formats().join(" or ")),
                ));
                None
            }
        },
    };
    let (Some(station), Some(period), Some(format)) = (station, period, format) else {
        return Ok(Err(problems));
    };
    if !problems.is_empty() {
        return Ok(Err(problems));
    }
    let local = |t: chrono::DateTime<chrono::Utc>| t.with_timezone(&tz).date_naive();
    Ok(Ok(Request {
        kind,
        station_id: station.id,
        station: station.name,
        tz,
        period,
        first: local(period.start),
        last: local(period.end - Duration::microseconds(1)),
        format,
    }))
}

/// Makes the report. `step` is told what is being done (for a progress display).
pub fn make(
    conn: &mut PgConnection,
    settings: &Settings,
    req: &Request,
    step: &mut dyn FnMut(&str),
) -> anyhow::Result<Output> {
    let a = &settings.audience;
    let performances = format!(
        "a performance is a listener with at least {} s of valid listening of the item (valid: \
         sessions of at least {} s, robots and relays excluded; one listener across sources); an \
         item lasts from its start to the station's next sound, the sound's next track or its \
         known end",
        a.min_performance_s, a.min_session_s
    );
    let period = format!(
        "{} to {} ({}, local days {} to {})",
        req.period.start.with_timezone(&req.tz).to_rfc3339(),
        req.period.end.with_timezone(&req.tz).to_rfc3339(),
        req.tz.name(),
        req.first,
        req.last
    );
    let base = format!("{}_{}_{}", req.station, req.first, req.last);
    match req.kind {
        Kind::ProgrammeLog => {
            step("reading the as-run log");
            let lines = programme_log::lines(conn, req.station_id, req.period)?;
            let rules = format!(
                "every as-run entry of {period}; local times; a sound or track ends at the next \
                 sound, the next track or its known end, as computed by the audience job"
            );
            Ok(match req.format {
                "html" => Output {
                    content_type: "text/html; charset=utf-8",
                    file_name: format!("programme-log_{base}.html"),
                    body: programme_log::to_html(&lines, req.tz, &req.station, &period, &rules),
                    rules,
                },
                _ => Output {
                    content_type: "text/csv; charset=utf-8",
                    file_name: format!("programme-log_{base}.csv"),
                    body: programme_log::to_csv(&lines, req.tz),
                    rules,
                },
            })
        }
        Kind::Music | Kind::Soundexchange | Kind::Coverage => {
            step("reading the items on air and their audience");
            let items = music::items(conn, settings, req.station_id, req.period)?;
            match req.kind {
                Kind::Music => Ok(Output {
                    content_type: "text/csv; charset=utf-8",
                    file_name: format!("music_{base}.csv"),
                    body: music::music_csv(&items, req.tz),
                    rules: format!(
                        "one line per play of a recording in {period}; {performances}; tlh_hours \
                         = listening inside the item"
                    ),
                }),
                Kind::Coverage => {
                    let missing = music::coverage(&items);
                    let rules = format!(
                        "recordings played in {period} lacking an ISRC or a label (or, without \
                         ISRC, an album), the most heard first"
                    );
                    Ok(match req.format {
                        "json" => Output {
                            content_type: "application/json",
                            file_name: format!("coverage_{base}.json"),
                            body: serde_json::to_string_pretty(&serde_json::json!({
                                "station": req.station, "rules": rules, "results": missing,
                            }))?,
                            rules,
                        },
                        _ => {
                            let mut body =
                                String::from("artist,title,plays,performances,missing\r\n");
                            for m in &missing {
                                body.push_str(&format!(
                                    "{},{},{},{},{}\r\n",
                                    music::csv_field(&m.artist),
                                    music::csv_field(&m.title),
                                    m.plays,
                                    m.performances,
                                    m.missing.join(" ")
                                ));
                            }
                            Output {
                                content_type: "text/csv; charset=utf-8",
                                file_name: format!("coverage_{base}.csv"),
                                body,
                                rules,
                            }
                        }
                    })
                }
                _ => {
                    step("computing the aggregate tuning hours");
                    let asked = super::audience::Asked {
                        station: Some(req.station.clone()),
                        from: Some(req.period.start.to_rfc3339()),
                        until: Some(req.period.end.to_rfc3339()),
                        interval: Some("total".into()),
                        daypart: None,
                        by: None,
                    };
                    let q = super::audience::check(conn, settings, &asked)?
                        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
                    let figures = super::audience::compute(conn, settings, q)?;
                    let tlh: f64 = figures.results.iter().map(|r| r.tlh_hours).sum();
                    let r = &settings.reports;
                    let service = if r.service_name.is_empty() {
                        req.station.clone()
                    } else {
                        r.service_name.clone()
                    };
                    let header = music::RouHeader {
                        service: service.clone(),
                        category: r.transmission_category.clone(),
                        channel: req.station.clone(),
                        aggregate_tuning_hours: tlh,
                    };
                    Ok(Output {
                        content_type: "text/plain; charset=us-ascii",
                        file_name: music::rou_file_name(
                            &service,
                            req.first,
                            req.last,
                            &r.transmission_category,
                        ),
                        body: music::soundexchange(&items, &header),
                        rules: format!(
                            "census reporting of {period}: one line per recording (artist, title, \
                             ISRC, album, label); ACTUAL_TOTAL_PERFORMANCES = performances summed \
                             over its plays, {performances}; AGGREGATE_TUNING_HOURS = the \
                             station's total listening hours over the period (the audience \
                             figures' TLH); PLAY_FREQUENCY = plays; text in ASCII (accents \
                             folded)"
                        ),
                    })
                }
            }
        }
    }
}
