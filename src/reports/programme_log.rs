//! The programme log regulators ask for (CRTC and Ofcom style): every entry of the as-run log
//! over broadcast days, in the station's local time, with its start, end, title and type, and
//! what the station started or cancelled. As CSV and as a printable HTML page.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::music::csv_field;

/// One line of the programme log.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Line {
    pub log_id: i64,
    pub start: DateTime<Utc>,
    /// When the item ended (sounds and tracks whose audience was computed), else none.
    pub end: Option<DateTime<Utc>>,
    /// `sound`, `track`, `start` (a diffusion started), `cancel`, `stop`, `other`.
    pub kind: String,
    pub title: String,
    pub artist: String,
    pub source: String,
    pub diffusion_id: Option<i64>,
}

pub const COLUMNS: [&str; 8] = [
    "date",
    "start",
    "end",
    "type",
    "title",
    "artist",
    "source",
    "diffusion",
];

fn fields(l: &Line, tz: Tz) -> [String; 8] {
    let start = l.start.with_timezone(&tz);
    [
        start.format("%Y-%m-%d").to_string(),
        start.format("%H:%M:%S").to_string(),
        l.end
            .map(|e| e.with_timezone(&tz).format("%H:%M:%S").to_string())
            .unwrap_or_default(),
        l.kind.clone(),
        l.title.clone(),
        l.artist.clone(),
        l.source.clone(),
        l.diffusion_id.map(|d| d.to_string()).unwrap_or_default(),
    ]
}

/// The log as RFC 4180 CSV (CRLF), local times.
pub fn to_csv(lines: &[Line], tz: Tz) -> String {
    let mut out = COLUMNS.join(",");
    out.push_str("\r\n");
    for l in lines {
        let f = fields(l, tz);
        out.push_str(&f.iter().map(|s| csv_field(s)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The log as a printable page: a title block (station, period, zone, rules) and one table.
pub fn to_html(lines: &[Line], tz: Tz, station: &str, period: &str, rules: &str) -> String {
    let mut rows = String::new();
    for l in lines {
        let f = fields(l, tz);
        rows.push_str(&format!(
            "<tr class=\"{}\" data-entry-id=\"{}\">",
            escape(&l.kind),
            l.log_id
        ));
        for v in &f {
            rows.push_str(&format!("<td>{}</td>", escape(v)));
        }
        rows.push_str("</tr>\n");
    }
    let head: String = COLUMNS
        .iter()
        .map(|c| format!("<th scope=\"col\">{c}</th>"))
        .collect();
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Programme log: {station} {period}</title>\
         <style>body{{font:10pt system-ui,sans-serif;margin:1.5em}}\
         table{{border-collapse:collapse;width:100%}}th,td{{border:1px solid #999;padding:2px 4px;text-align:left;vertical-align:top}}\
         thead{{display:table-header-group}}tr{{page-break-inside:avoid}}tr.start,tr.cancel{{font-weight:bold}}\
         tr.track td:nth-child(5){{padding-left:1.2em}}@page{{size:A4 landscape;margin:12mm}}</style></head>\n\
         <body><h1>Programme log</h1><p>Station <b>{station}</b>, {period} ({zone}); {n} entries.</p>\
         <p><small>{rules}</small></p>\n<table><thead><tr>{head}</tr></thead><tbody>\n{rows}</tbody></table></body></html>\n",
        station = escape(station),
        period = escape(period),
        zone = escape(tz.name()),
        n = lines.len(),
        rules = escape(rules),
    )
}

/// The programme log of a station over `period`.
pub fn lines(
    conn: &mut diesel::PgConnection,
    station_id: i64,
    period: crate::audience::period::Span,
) -> diesel::QueryResult<Vec<Line>> {
    Ok(
        crate::db::item_audience::log_lines(conn, station_id, period)?
            .into_iter()
            .map(|r| Line {
                log_id: r.id,
                start: r.date,
                end: r.end_at,
                kind: match (r.r#type.as_str(), r.is_track) {
                    ("on_air", true) => "track".to_string(),
                    ("on_air", false) => "sound".to_string(),
                    (other, _) => other.to_string(),
                },
                title: r.title,
                artist: r.artist,
                source: r.source,
                diffusion_id: r.diffusion_id,
            })
            .collect(),
    )
}
