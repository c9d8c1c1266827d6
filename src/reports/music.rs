//! Music reports built on the as-run log and the audience of each item: the SoundExchange
//! census Report of Use, a generic music report (the shape PPL, PRS, GEMA, SOCAN and SUISA
//! returns are made from), and the coverage of what the reports need (ISRC, label).
//!
//! Every report is a pure function of the rows it is given, so the same range gives the same
//! bytes; nothing in it depends on when it was made.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use diesel::PgConnection;
use serde::Serialize;

pub use super::csv_field;
use crate::audience::items::ItemAudience;
use crate::audience::period::Span;
use crate::config::Settings;
use crate::db;
use crate::jobs::audience::{self as audience_job, Rules};

/// An item as music reports see it: the recording and who heard it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MusicItem {
    pub log_id: i64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub is_track: bool,
    pub artist: String,
    pub title: String,
    pub album: String,
    pub label: String,
    pub isrc: String,
    pub composer: String,
    /// The recording's length when known, else the time it was on air.
    pub duration_s: f64,
    pub performances: i64,
    pub listeners_at_start: i64,
    pub tlh_hours: f64,
}

/// The items of a station on air in `period` with their audience: the stored one, or computed
/// now for items the audience job has not reached (so a report is never short of listeners).
pub fn items(
    conn: &mut PgConnection,
    settings: &Settings,
    station_id: i64,
    period: Span,
) -> anyhow::Result<Vec<MusicItem>> {
    let rows = db::item_audience::report_items(conn, station_id, period)?;
    let missing: std::collections::HashSet<i64> = rows
        .iter()
        .filter(|r| r.audience.is_none())
        .map(|r| r.log_id)
        .collect();
    let mut computed: BTreeMap<i64, ItemAudience> = BTreeMap::new();
    if !missing.is_empty() {
        let rules = Rules::of(settings);
        let spans = db::item_audience::item_spans(
            conn,
            station_id,
            period,
            Utc::now(),
            audience_job::OPEN_ITEM_CAP,
        )?;
        let wanted: Vec<_> = spans
            .into_iter()
            .filter(|i| missing.contains(&i.log_id))
            .collect();
        if let Some(end) = wanted.iter().map(|i| i.span.end).max() {
            let reach = Span::new(period.start, end.max(period.start));
            let heard = audience_job::listening(conn, station_id, reach, &rules, None)?;
            for a in
                crate::audience::items::audience(&heard.sessions, &wanted, rules.min_performance_us)
            {
                computed.insert(a.log_id, a);
            }
        }
    }
    Ok(rows
        .into_iter()
        .map(|r| {
            let a = r.audience.or_else(|| computed.get(&r.log_id).copied());
            let end = a.map(|a| a.span.end).unwrap_or(r.start);
            MusicItem {
                log_id: r.log_id,
                start: r.start,
                end,
                is_track: r.is_track,
                artist: r.artist,
                title: r.title,
                album: r.album,
                label: r.label,
                isrc: r.isrc,
                composer: r.composer,
                duration_s: r
                    .duration_s
                    .unwrap_or_else(|| (end - r.start).num_milliseconds() as f64 / 1000.0),
                performances: a.map(|a| a.performances).unwrap_or(0),
                listeners_at_start: a.map(|a| a.listeners_at_start).unwrap_or(0),
                tlh_hours: a.map(|a| a.tlh_hours()).unwrap_or(0.0),
            }
        })
        .collect())
}

/// Columns of the generic music report, in order.
pub const MUSIC_COLUMNS: [&str; 12] = [
    "date",
    "time",
    "duration_s",
    "featured_artist",
    "title",
    "album",
    "label",
    "isrc",
    "composer",
    "plays",
    "performances",
    "tlh_hours",
];

/// The generic music report: one line per play in local date and time, RFC 4180 (CRLF).
pub fn music_csv(items: &[MusicItem], tz: Tz) -> String {
    let mut out = MUSIC_COLUMNS.join(",");
    out.push_str("\r\n");
    for i in items {
        let local = i.start.with_timezone(&tz);
        let fields = [
            local.format("%Y-%m-%d").to_string(),
            local.format("%H:%M:%S").to_string(),
            format!("{:.0}", i.duration_s),
            csv_field(&i.artist),
            csv_field(&i.title),
            csv_field(&i.album),
            csv_field(&i.label),
            csv_field(&i.isrc),
            csv_field(&i.composer),
            "1".to_string(),
            i.performances.to_string(),
            format!("{:.4}", i.tlh_hours),
        ];
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    out
}

/// SoundExchange's census Report of Use columns, in the published order.
pub const ROU_COLUMNS: [&str; 11] = [
    "NAME_OF_SERVICE",
    "TRANSMISSION_CATEGORY",
    "FEATURED_ARTIST",
    "SOUND_RECORDING_TITLE",
    "ISRC",
    "ALBUM_TITLE",
    "MARKETING_LABEL",
    "ACTUAL_TOTAL_PERFORMANCES",
    "AGGREGATE_TUNING_HOURS",
    "CHANNEL_OR_PROGRAM_NAME",
    "PLAY_FREQUENCY",
];

/// Text for an ASCII report field: Latin letters lose their accents (é -> e, ß -> ss), what has
/// no ASCII form becomes `?`, and the delimiters `^` and `|` are dropped.
pub fn ascii(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '^' | '|' => {}
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            c if c.is_whitespace() || c.is_control() => out.push(' '),
            c => out.push_str(fold(c)),
        }
    }
    out.trim().to_string()
}

fn fold(c: char) -> &'static str {
    const TABLE: [(&str, &str); 14] = [
        ("àáâãäåāă", "a"),
        ("ÀÁÂÃÄÅĀĂ", "A"),
        ("çćč", "c"),
        ("ÇĆČ", "C"),
        ("èéêëēė", "e"),
        ("ÈÉÊËĒĖ", "E"),
        ("ìíîïī", "i"),
        ("ÌÍÎÏĪ", "I"),
        ("ñń", "n"),
        ("ÑŃ", "N"),
        ("òóôõöøō", "o"),
        ("ÒÓÔÕÖØŌ", "O"),
        ("ùúûüū", "u"),
        ("ÙÚÛÜŪ", "U"),
    ];
    match c {
        'ß' => "ss",
        'ý' | 'ÿ' => "y",
        'Ý' => "Y",
        'š' => "s",
        'Š' => "S",
        'ž' => "z",
        'Ž' => "Z",
        'æ' => "ae",
        'Æ' => "AE",
        'œ' => "oe",
        'Œ' => "OE",
        '’' | '‘' => "'",
        '“' | '”' => "\"",
        '–' | '—' => "-",
        _ => TABLE
            .iter()
            .find(|(from, _)| from.contains(c))
            .map(|(_, to)| *to)
            .unwrap_or("?"),
    }
}

/// What a Report of Use is made with, from the settings and the station.
#[derive(Debug, Clone)]
pub struct RouHeader {
    pub service: String,
    pub category: String,
    pub channel: String,
    /// The station's total listening hours over the period (its TLH).
    pub aggregate_tuning_hours: f64,
}

/// The census Report of Use: one line per recording (featured artist, title, ISRC, album,
/// label) with its performances summed over its plays and its number of plays; text fields
/// in carets, fields separated by `|`, a header line, CRLF line ends, ASCII.
pub fn soundexchange(items: &[MusicItem], h: &RouHeader) -> String {
    let caret = |s: &str| format!("^{}^", ascii(s));
    // (artist, title, ISRC, album, label) -> (performances, plays)
    let mut recordings: BTreeMap<[String; 5], (i64, i64)> = BTreeMap::new();
    for i in items {
        let key = [
            ascii(&i.artist),
            ascii(&i.title),
            i.isrc.clone(),
            ascii(&i.album),
            ascii(&i.label),
        ];
        let e = recordings.entry(key).or_default();
        e.0 += i.performances;
        e.1 += 1;
    }
    let mut out = ROU_COLUMNS
        .iter()
        .map(|c| caret(c))
        .collect::<Vec<_>>()
        .join("|");
    out.push_str("\r\n");
    for ([artist, title, isrc, album, label], (performances, plays)) in recordings {
        let line = [
            caret(&h.service),
            caret(&h.category),
            caret(&artist),
            caret(&title),
            caret(&isrc),
            caret(&album),
            caret(&label),
            performances.to_string(),
            format!("{:.2}", h.aggregate_tuning_hours),
            caret(&h.channel),
            plays.to_string(),
        ];
        out.push_str(&line.join("|"));
        out.push_str("\r\n");
    }
    out
}

/// The file name SoundExchange's delivery specification gives: the service name, the first and
/// last day of the period (YYYYMMDD) and the transmission category.
pub fn rou_file_name(
    service: &str,
    first: chrono::NaiveDate,
    last: chrono::NaiveDate,
    category: &str,
) -> String {
    let name: String = ascii(service)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    format!(
        "{name}{}_{}_{category}.txt",
        first.format("%Y%m%d"),
        last.format("%Y%m%d")
    )
}

/// A recording that aired without what the reports need.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Missing {
    pub artist: String,
    pub title: String,
    pub plays: i64,
    pub performances: i64,
    /// What it lacks: `isrc`, `label`, `album`, `artist`.
    pub missing: Vec<String>,
}

/// The recordings that aired in the period without an ISRC or a label (SoundExchange accepts
/// album + label where the ISRC is missing), the most heard first.
pub fn coverage(items: &[MusicItem]) -> Vec<Missing> {
    let mut by: BTreeMap<(String, String), Missing> = BTreeMap::new();
    for i in items {
        let mut missing = Vec::new();
        if i.isrc.is_empty() {
            missing.push("isrc".to_string());
        }
        if i.label.is_empty() {
            missing.push("label".to_string());
        }
        if i.isrc.is_empty() && i.album.is_empty() {
            missing.push("album".to_string());
        }
        if i.artist.is_empty() {
            missing.push("artist".to_string());
        }
        if missing.is_empty() {
            continue;
        }
        let e = by
            .entry((i.artist.clone(), i.title.clone()))
            .or_insert_with(|| Missing {
                artist: i.artist.clone(),
                title: i.title.clone(),
                plays: 0,
                performances: 0,
                missing,
            });
        e.plays += 1;
        e.performances += i.performances;
    }
    let mut out: Vec<Missing> = by.into_values().collect();
    out.sort_by(|a, b| {
        (b.performances, b.plays, &a.artist, &a.title).cmp(&(
            a.performances,
            a.plays,
            &b.artist,
            &b.title,
        ))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_folds_accents_and_drops_delimiters() {
        assert_eq!(ascii("Björk | Jóga ^"), "Bjork  Joga");
        assert_eq!(ascii("Straße – “Live”"), "Strasse - \"Live\"");
        assert_eq!(ascii("東京"), "??");
    }

    #[test]
    fn the_file_name_follows_the_delivery_spec() {
        let d = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(
            rou_file_name("KFAKE Radio", d("2007-01-15"), d("2007-01-21"), "H"),
            "KFAKERadio20070115_20070121_H.txt"
        );
    }
}
