//! Periods in a station's time zone: the intervals a report is split into and the dayparts it
//! may be restricted to. Everything here is wall-clock arithmetic turned into UTC instants, so a
//! DST day is 23 or 25 hours long and a daypart over a skipped hour is shorter, over a repeated
//! one longer, without special cases.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// A half-open span of time `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Span {
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Span {
        Span { start, end }
    }

    /// Length in seconds (0 for an empty or reversed span).
    pub fn seconds(&self) -> f64 {
        ((self.end - self.start).num_milliseconds().max(0)) as f64 / 1000.0
    }

    /// Length in microseconds, exact (PostgreSQL keeps microseconds): sums of pieces equal the
    /// length of the whole, so thresholds compare the same however listening was cut.
    pub fn micros(&self) -> i64 {
        (self.end - self.start)
            .num_microseconds()
            .unwrap_or(i64::MAX)
            .max(0)
    }

    /// The part of `self` inside `other`, if any.
    pub fn clip(&self, other: &Span) -> Option<Span> {
        let start = self.start.max(other.start);
        let end = self.end.min(other.end);
        (start < end).then_some(Span { start, end })
    }

    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }
}

/// How a report splits its period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    QuarterHour,
    Hour,
    Day,
    /// Monday to Monday, local midnight.
    Week,
    Month,
    /// The whole period as one interval.
    Total,
}

impl Interval {
    pub fn as_str(self) -> &'static str {
        match self {
            Interval::QuarterHour => "quarter_hour",
            Interval::Hour => "hour",
            Interval::Day => "day",
            Interval::Week => "week",
            Interval::Month => "month",
            Interval::Total => "total",
        }
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Interval {
    type Err = String;
    fn from_str(s: &str) -> Result<Interval, String> {
        Ok(match s {
            "quarter_hour" => Interval::QuarterHour,
            "hour" => Interval::Hour,
            "day" => Interval::Day,
            "week" => Interval::Week,
            "month" => Interval::Month,
            "total" => Interval::Total,
            other => {
                return Err(format!(
                    "unknown interval {other:?} (expected quarter_hour, hour, day, week, month or total)"
                ))
            }
        })
    }
}

/// The instant a local wall-clock time names: the earlier one when it is repeated (a DST fall
/// back), the first instant after the gap when it was skipped (a DST spring forward).
pub fn local_instant(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    if let Some(t) = tz.from_local_datetime(&local).earliest() {
        return t.with_timezone(&Utc);
    }
    // Skipped: the first wall-clock minute that exists again is the end of the gap.
    let mut probe = local;
    for _ in 0..(24 * 60) {
        probe += Duration::minutes(1);
        if let Some(t) = tz.from_local_datetime(&probe).earliest() {
            return t.with_timezone(&Utc);
        }
    }
    tz.from_utc_datetime(&local).with_timezone(&Utc)
}

/// Local midnight starting `date`.
pub fn local_midnight(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    local_instant(tz, date.and_time(NaiveTime::MIN))
}

/// At least how many intervals `split` gives for `period` (without making them): a request
/// can be refused before the work. Local intervals are never shorter than these (a DST day is
/// 23 hours, Lord Howe shifts by half an hour).
pub fn count_at_most(period: Span, interval: Interval) -> u64 {
    let shortest: i64 = match interval {
        Interval::QuarterHour => 15 * 60,
        Interval::Hour => 30 * 60,
        Interval::Day => 23 * 3600,
        Interval::Week => 7 * 23 * 3600,
        Interval::Month => 28 * 23 * 3600,
        Interval::Total => return 1,
    };
    ((period.end - period.start).num_seconds().max(0) / shortest + 2) as u64
}

/// `[from, until)` cut into `interval`s at local boundaries; the first and last may be partial
/// when `from`/`until` are not on a boundary.
pub fn split(tz: Tz, period: Span, interval: Interval) -> Vec<Span> {
    if period.start >= period.end {
        return Vec::new();
    }
    let mut cuts = vec![period.start];
    match interval {
        Interval::Total => {}
        Interval::QuarterHour | Interval::Hour => {
            // Every zone's offset is a whole number of quarter-hours, so local quarter-hours
            // are the UTC quarter-hour grid; an hour starts where the local minute is 0.
            let step = 15 * 60;
            let first = period.start.timestamp().div_euclid(step) * step + step;
            let mut t = first;
            while t < period.end.timestamp() {
                let at = DateTime::from_timestamp(t, 0).expect("in range");
                let local_minute = tz.from_utc_datetime(&at.naive_utc()).minute_of_hour();
                if interval == Interval::QuarterHour || local_minute == 0 {
                    cuts.push(at);
                }
                t += step;
            }
        }
        Interval::Day | Interval::Week | Interval::Month => {
            let mut date = tz.from_utc_datetime(&period.start.naive_utc()).date_naive();
            loop {
                date = match interval {
                    Interval::Day => date + Duration::days(1),
                    Interval::Week => {
                        date + Duration::days(7 - date.weekday().num_days_from_monday() as i64)
                    }
                    _ => next_month(date),
                };
                let at = local_midnight(tz, date);
                if at >= period.end {
                    break;
                }
                if at > period.start {
                    cuts.push(at);
                }
            }
        }
    }
    cuts.push(period.end);
    cuts.windows(2).map(|w| Span::new(w[0], w[1])).collect()
}

fn next_month(date: NaiveDate) -> NaiveDate {
    let (y, m) = if date.month() == 12 {
        (date.year() + 1, 1)
    } else {
        (date.year(), date.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1).expect("first of a month")
}

trait MinuteOfHour {
    fn minute_of_hour(&self) -> u32;
}

impl<T: chrono::Timelike> MinuteOfHour for T {
    fn minute_of_hour(&self) -> u32 {
        self.minute()
    }
}

/// Local wall-clock windows on some weekdays, e.g. `mon-fri 06:00-10:00, sat 08:00-12:00`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Daypart {
    parts: Vec<DaypartRule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct DaypartRule {
    /// Monday = 0.
    days: [bool; 7],
    start: NaiveTime,
    /// None: midnight at the end of the day (`24:00`).
    end: Option<NaiveTime>,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl FromStr for Daypart {
    type Err = String;
    fn from_str(s: &str) -> Result<Daypart, String> {
        let mut parts = Vec::new();
        for part in s.split(',') {
            let part = part.trim();
            let (days, times) = part.split_once(' ').ok_or_else(|| {
                format!("daypart {part:?}: expected DAYS HH:MM-HH:MM, e.g. \"mon-fri 06:00-10:00\"")
            })?;
            let days = parse_days(days.trim()).map_err(|e| format!("daypart {part:?}: {e}"))?;
            let (start, end) = times
                .trim()
                .split_once('-')
                .ok_or_else(|| format!("daypart {part:?}: expected a time range HH:MM-HH:MM"))?;
            let start = parse_time(start).map_err(|e| format!("daypart {part:?}: {e}"))?;
            let end = if end.trim() == "24:00" {
                None
            } else {
                Some(parse_time(end).map_err(|e| format!("daypart {part:?}: {e}"))?)
            };
            if end.is_some_and(|e| e <= start) {
                return Err(format!(
                    "daypart {part:?}: the end must be after the start (write a window over \
                     midnight as two, e.g. \"fri 22:00-24:00, sat 00:00-02:00\")"
                ));
            }
            parts.push(DaypartRule { days, start, end });
        }
        Ok(Daypart { parts })
    }
}

fn parse_days(s: &str) -> Result<[bool; 7], String> {
    let index = |d: &str| {
        DAYS.iter()
            .position(|x| d.eq_ignore_ascii_case(x))
            .ok_or_else(|| format!("unknown day {d:?} (mon, tue, wed, thu, fri, sat, sun)"))
    };
    let mut days = [false; 7];
    for item in s.split('+') {
        match item.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (index(a)?, index(b)?);
                let mut d = a;
                loop {
                    days[d] = true;
                    if d == b {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => days[index(item)?] = true,
        }
    }
    Ok(days)
}

fn parse_time(s: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(s.trim(), "%H:%M")
        .map_err(|_| format!("{:?} is not a time HH:MM", s.trim()))
}

impl Daypart {
    /// The daypart's windows inside `period`, as UTC spans in time order, overlaps merged.
    pub fn windows(&self, tz: Tz, period: Span) -> Vec<Span> {
        let first =
            tz.from_utc_datetime(&period.start.naive_utc()).date_naive() - Duration::days(1);
        let last = tz.from_utc_datetime(&period.end.naive_utc()).date_naive();
        let mut spans = Vec::new();
        let mut date = first;
        while date <= last {
            let weekday = date.weekday().num_days_from_monday() as usize;
            for rule in &self.parts {
                if !rule.days[weekday] {
                    continue;
                }
                let start = local_instant(tz, date.and_time(rule.start));
                let end = match rule.end {
                    Some(end) => local_instant(tz, date.and_time(end)),
                    None => local_midnight(tz, date + Duration::days(1)),
                };
                if let Some(s) = Span::new(start, end).clip(&period) {
                    spans.push(s);
                }
            }
            date += Duration::days(1);
        }
        merge(spans)
    }
}

/// Sorts and merges overlapping or touching spans.
pub fn merge(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort();
    let mut out: Vec<Span> = Vec::with_capacity(spans.len());
    for s in spans {
        match out.last_mut() {
            Some(last) if s.start <= last.end => last.end = last.end.max(s.end),
            _ => out.push(s),
        }
    }
    out
}

/// The parts of `spans` (sorted, disjoint) inside `within` (sorted, disjoint).
pub fn intersect(spans: &[Span], within: &[Span]) -> Vec<Span> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < spans.len() && j < within.len() {
        if let Some(c) = spans[i].clip(&within[j]) {
            out.push(c);
        }
        if spans[i].end < within[j].end {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    const ZURICH: Tz = chrono_tz::Europe::Zurich;

    #[test]
    fn a_fall_back_day_has_25_hours_and_a_spring_forward_day_23() {
        let day = |d: &str| {
            let date = NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
            Span::new(
                local_midnight(ZURICH, date),
                local_midnight(ZURICH, date + Duration::days(1)),
            )
        };
        assert_eq!(split(ZURICH, day("2024-10-27"), Interval::Hour).len(), 25);
        assert_eq!(split(ZURICH, day("2024-03-31"), Interval::Hour).len(), 23);
        assert_eq!(
            split(ZURICH, day("2024-03-31"), Interval::QuarterHour).len(),
            92
        );
        assert_eq!(split(ZURICH, day("2024-10-27"), Interval::Day).len(), 1);
    }

    #[test]
    fn days_weeks_and_months_start_at_local_midnight() {
        let period = Span::new(utc("2024-10-26T22:00:00Z"), utc("2024-12-01T23:00:00Z"));
        let weeks = split(ZURICH, period, Interval::Week);
        // Sunday 27 Oct (partial), then weeks from Mondays 28 Oct, 4, 11, 18, 25 Nov; the last
        // ends at the period's end, local midnight of Monday 2 Dec.
        assert_eq!(weeks[0].end, utc("2024-10-27T23:00:00Z"));
        assert_eq!(weeks[1].start, utc("2024-10-27T23:00:00Z"));
        assert_eq!(weeks.len(), 6);
        assert_eq!(weeks[5].start, utc("2024-11-24T23:00:00Z"));
        let months = split(ZURICH, period, Interval::Month);
        assert_eq!(months.len(), 3);
        assert_eq!(months[1].start, utc("2024-10-31T23:00:00Z"));
        assert_eq!(months[2].start, utc("2024-11-30T23:00:00Z"));
    }

    #[test]
    fn a_half_hour_offset_zone_has_local_hours() {
        let kolkata: Tz = chrono_tz::Asia::Kolkata;
        let period = Span::new(utc("2024-05-01T18:30:00Z"), utc("2024-05-02T18:30:00Z"));
        let hours = split(kolkata, period, Interval::Hour);
        assert_eq!(hours.len(), 24);
        assert_eq!(hours[1].start, utc("2024-05-01T19:30:00Z"));
    }

    #[test]
    fn dayparts_follow_the_wall_clock_over_dst() {
        let d: Daypart = "sun 01:00-04:00".parse().unwrap();
        // 27 Oct 2024: 02:00-03:00 happens twice, so the window is 4 hours long.
        let w = d.windows(
            ZURICH,
            Span::new(utc("2024-10-26T00:00:00Z"), utc("2024-10-28T00:00:00Z")),
        );
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].seconds(), 4.0 * 3600.0);
        // 31 Mar 2024: 02:00-03:00 is skipped, so it is 2 hours long.
        let w = d.windows(
            ZURICH,
            Span::new(utc("2024-03-30T00:00:00Z"), utc("2024-04-01T00:00:00Z")),
        );
        assert_eq!(w[0].seconds(), 2.0 * 3600.0);
        assert_eq!(w[0].start, utc("2024-03-31T00:00:00Z"));
    }

    #[test]
    fn dayparts_parse_day_ranges_lists_and_midnight() {
        let d: Daypart = "Mon-Fri 06:00-10:00, sat+sun 22:00-24:00".parse().unwrap();
        let w = d.windows(
            ZURICH,
            Span::new(utc("2024-06-02T22:00:00Z"), utc("2024-06-09T22:00:00Z")),
        );
        // Five mornings and the weekend's two evenings.
        assert_eq!(w.len(), 7);
        assert_eq!(w[0].start, utc("2024-06-03T04:00:00Z"));
        assert_eq!(w[6].end, utc("2024-06-09T22:00:00Z"));
        for bad in ["mon 10:00-06:00", "funday 06:00-10:00", "mon", "mon 6-10"] {
            assert!(bad.parse::<Daypart>().is_err(), "{bad}");
        }
        assert!("fri-mon 06:00-07:00".parse::<Daypart>().is_ok());
    }

    #[test]
    fn intersections_of_sorted_spans() {
        let s = |a: i64, b: i64| {
            Span::new(
                DateTime::from_timestamp(a, 0).unwrap(),
                DateTime::from_timestamp(b, 0).unwrap(),
            )
        };
        let got = intersect(&[s(0, 10), s(20, 30)], &[s(5, 25)]);
        assert_eq!(got, vec![s(5, 10), s(20, 25)]);
        assert_eq!(
            merge(vec![s(5, 10), s(0, 5), s(20, 30)]),
            vec![s(0, 10), s(20, 30)]
        );
    }
}
