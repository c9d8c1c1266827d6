//! The audience figures, computed directly from valid listening sessions by their definitions.
//! This is the reference: whatever faster way airlog answers with must give these numbers.
//!
//! Definitions (Triton Webcast Metrics, the IAB/ABC streaming guidelines and the issue that
//! brought them in; the README cites each):
//! - listening of a listener = the union of its valid sessions over every source and stream
//!   (two mounts or the player and the stream at once are one listening, never the sum);
//! - AQH persons: for each clock quarter-hour entirely inside the interval and the daypart, the
//!   listeners with at least 5 minutes of listening inside it; the interval's AQH is their mean;
//! - Cume: distinct listeners with at least `cume_min_s` of listening in the interval;
//! - TLH: hours of listening inside the interval (every valid session, clipped);
//! - TSL = TLH / Cume in minutes; AAS = TLH / hours of the interval (inside the daypart);
//! - Peak: most listeners at one instant, and the first instant it was reached;
//! - Sessions: valid sessions starting in the interval.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::period::{intersect, merge, Span};

/// A valid listening session of one listener (already past the exclusion rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listening {
    /// The listener key (see [`super::listener_key`]) or the signed-in identity.
    pub listener: String,
    /// What a breakdown groups by (stream, source or station).
    pub group: String,
    pub span: Span,
    /// Whether `span.start` is the start of a session (false for the later pieces of a session
    /// that a signed-in identity took over in part).
    pub starts_session: bool,
}

/// Thresholds of the definitions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Listening a listener needs inside a quarter-hour to count in it (300 s).
    pub aqh_min_s: f64,
    /// Listening a listener needs inside an interval to count in its Cume.
    pub cume_min_s: f64,
}

impl Thresholds {
    pub fn aqh_min_us(&self) -> i64 {
        (self.aqh_min_s * 1e6).round() as i64
    }

    pub fn cume_min_us(&self) -> i64 {
        (self.cume_min_s * 1e6).round() as i64
    }
}

/// Hours in a number of microseconds.
pub fn hours(us: i64) -> f64 {
    us as f64 / 3.6e9
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            aqh_min_s: 300.0,
            cume_min_s: 60.0,
        }
    }
}

/// The figures of one interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    pub span: Span,
    pub aqh: f64,
    pub cume: u64,
    pub tlh_hours: f64,
    pub tsl_minutes: f64,
    pub aas: f64,
    pub peak: u64,
    pub peak_at: Option<DateTime<Utc>>,
    pub sessions: u64,
}

/// What the figures of an interval are derived from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sums {
    /// Listening inside the interval (and daypart), in microseconds.
    pub tlh_us: i64,
    /// Length of the interval inside the daypart, in microseconds.
    pub inside_us: i64,
    pub aqh: f64,
    pub cume: u64,
    pub peak: u64,
    pub peak_at: Option<DateTime<Utc>>,
    pub sessions: u64,
}

impl Figures {
    /// The figures of `span` from its sums: TSL and AAS follow from TLH, Cume and hours.
    pub fn new(span: Span, s: Sums) -> Figures {
        let tlh_hours = hours(s.tlh_us);
        let inside = hours(s.inside_us);
        Figures {
            span,
            aqh: s.aqh,
            cume: s.cume,
            tlh_hours,
            tsl_minutes: if s.cume > 0 {
                tlh_hours * 60.0 / s.cume as f64
            } else {
                0.0
            },
            aas: if inside > 0.0 {
                tlh_hours / inside
            } else {
                0.0
            },
            peak: s.peak,
            peak_at: s.peak_at,
            sessions: s.sessions,
        }
    }
}

pub const QUARTER_HOUR_S: i64 = 15 * 60;

/// Figures of each interval over `sessions`, counting only what lies inside `windows` (the
/// daypart's windows, or the whole period; sorted and disjoint).
pub fn compute(
    sessions: &[Listening],
    intervals: &[Span],
    windows: &[Span],
    thresholds: Thresholds,
) -> Vec<Figures> {
    // Each listener's listening: the union of its sessions, within the windows.
    let mut by_listener: HashMap<&str, Vec<Span>> = HashMap::new();
    for s in sessions {
        by_listener.entry(&s.listener).or_default().push(s.span);
    }
    let listening: Vec<Vec<Span>> = by_listener
        .into_values()
        .map(|spans| intersect(&merge(spans), windows))
        .filter(|spans| !spans.is_empty())
        .collect();
    let mut starts: Vec<DateTime<Utc>> = sessions
        .iter()
        .filter(|s| s.starts_session)
        .map(|s| s.span.start)
        .filter(|t| windows.iter().any(|w| w.contains(*t)))
        .collect();
    starts.sort();

    intervals
        .iter()
        .map(|interval| {
            let inside = intersect(&[*interval], windows);
            // Sums in whole microseconds: exact, so a threshold is met or not whatever the
            // order or cut of the pieces (the rollups add pieces and must agree).
            let inside_us: i64 = inside.iter().map(Span::micros).sum();
            let mut tlh_us = 0i64;
            let mut cume = 0;
            let mut clipped: Vec<Vec<Span>> = Vec::new();
            for spans in &listening {
                let mine = intersect(spans, &inside);
                let us: i64 = mine.iter().map(Span::micros).sum();
                tlh_us += us;
                if us > 0 && us >= thresholds.cume_min_us() {
                    cume += 1;
                }
                if !mine.is_empty() {
                    clipped.push(mine);
                }
            }
            let quarters = quarter_hours(&inside);
            let aqh = if quarters.is_empty() {
                0.0
            } else {
                let whole: HashSet<i64> = quarters.iter().map(|q| q.start.timestamp()).collect();
                let persons: u64 = clipped
                    .iter()
                    .map(|spans| persons_in(spans, &whole, thresholds.aqh_min_us()))
                    .sum();
                persons as f64 / quarters.len() as f64
            };
            let (peak, peak_at) = peak(clipped.iter().flatten());
            Figures::new(
                *interval,
                Sums {
                    tlh_us,
                    inside_us,
                    aqh,
                    cume,
                    peak,
                    peak_at,
                    sessions: starts.iter().filter(|t| interval.contains(**t)).count() as u64,
                },
            )
        })
        .collect()
}

/// The clock quarter-hours lying entirely inside `spans` (sorted, disjoint). Local quarter-hours
/// are the UTC quarter-hour grid in every zone in use (offsets are whole quarter-hours).
fn quarter_hours(spans: &[Span]) -> Vec<Span> {
    let mut out = Vec::new();
    for s in spans {
        let mut t =
            (s.start.timestamp() + QUARTER_HOUR_S - 1).div_euclid(QUARTER_HOUR_S) * QUARTER_HOUR_S;
        while t + QUARTER_HOUR_S <= s.end.timestamp() {
            let start = DateTime::from_timestamp(t, 0).expect("in range");
            let end = DateTime::from_timestamp(t + QUARTER_HOUR_S, 0).expect("in range");
            if start >= s.start {
                out.push(Span::new(start, end));
            }
            t += QUARTER_HOUR_S;
        }
    }
    out
}

/// In how many of the quarter-hours `whole` (their starts) one listener's listening (sorted,
/// disjoint spans) reaches `min_us`: the spans are cut on the quarter-hour grid and summed per
/// quarter-hour, so the work follows the listening, not the number of quarter-hours.
fn persons_in(spans: &[Span], whole: &HashSet<i64>, min_us: i64) -> u64 {
    let mut counted = 0;
    let mut current: Option<(i64, i64)> = None;
    let mut close = |q: Option<(i64, i64)>| {
        if let Some((start, us)) = q {
            if us >= min_us && whole.contains(&start) {
                counted += 1;
            }
        }
    };
    for s in spans {
        let mut t = s.start;
        while t < s.end {
            let q = t.timestamp().div_euclid(QUARTER_HOUR_S) * QUARTER_HOUR_S;
            let q_end = DateTime::from_timestamp(q + QUARTER_HOUR_S, 0).expect("in range");
            let end = s.end.min(q_end);
            let us = Span::new(t, end).micros();
            current = match current {
                Some((start, sum)) if start == q => Some((start, sum + us)),
                other => {
                    close(other);
                    Some((q, us))
                }
            };
            t = end;
        }
    }
    close(current);
    counted
}

/// Most listeners at one instant and the first instant it was reached. Spans are half-open, so
/// one ending when another starts are never counted together.
/// Each listener's spans must be disjoint (merged), so a listener counts once at an instant.
pub fn peak<'a>(spans: impl Iterator<Item = &'a Span>) -> (u64, Option<DateTime<Utc>>) {
    let mut edges: Vec<(DateTime<Utc>, i64)> = Vec::new();
    for s in spans {
        edges.push((s.start, 1));
        edges.push((s.end, -1));
    }
    // At one instant, ends (-1) come before starts (+1).
    edges.sort();
    let (mut now, mut best, mut at) = (0i64, 0i64, None);
    for (t, d) in edges {
        now += d;
        if now > best {
            best = now;
            at = Some(t);
        }
    }
    (best as u64, at)
}

/// Figures of the whole audience and of each group: the total row de-duplicates listeners
/// across groups, each group's row counts only that group's sessions.
pub fn compute_by_group(
    sessions: &[Listening],
    intervals: &[Span],
    windows: &[Span],
    thresholds: Thresholds,
) -> (Vec<Figures>, Vec<(String, Vec<Figures>)>) {
    let total = compute(sessions, intervals, windows, thresholds);
    // A group has rows when it has listening in the period (whatever the daypart).
    let period = match (intervals.first(), intervals.last()) {
        (Some(first), Some(last)) => Span::new(first.start, last.end),
        _ => return (total, Vec::new()),
    };
    let mut groups: Vec<String> = sessions
        .iter()
        .filter(|s| s.span.clip(&period).is_some())
        .map(|s| s.group.clone())
        .collect();
    groups.sort();
    groups.dedup();
    let per_group = groups
        .into_iter()
        .map(|g| {
            let mine: Vec<Listening> = sessions.iter().filter(|s| s.group == g).cloned().collect();
            let figures = compute(&mine, intervals, windows, thresholds);
            (g, figures)
        })
        .collect();
    (total, per_group)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audience::period::{split, Daypart, Interval};
    use chrono::TimeZone;

    const ZURICH: chrono_tz::Tz = chrono_tz::Europe::Zurich;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        // 2024-06-03 (a Monday) in UTC.
        Utc.with_ymd_and_hms(2024, 6, 3, h, m, s).unwrap()
    }

    fn l(who: &str, group: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Listening {
        Listening {
            listener: who.into(),
            group: group.into(),
            span: Span::new(from, to),
            starts_session: true,
        }
    }

    #[test]
    fn aqh_counts_five_minutes_not_four_fifty_nine() {
        let sessions = [
            l("a", "hls", at(10, 0, 0), at(10, 4, 59)),
            l("b", "hls", at(10, 0, 0), at(10, 5, 0)),
        ];
        let hour = [Span::new(at(10, 0, 0), at(11, 0, 0))];
        let quarters = split(ZURICH, hour[0], Interval::QuarterHour);
        let f = compute(&sessions, &quarters, &hour, Thresholds::default());
        assert_eq!(f[0].aqh, 1.0);
        assert_eq!(f[0].cume, 2);
        assert_eq!(f[1].aqh, 0.0);
        assert_eq!(f[1].cume, 0);
        assert_eq!(f[1].peak_at, None);
        // Over the hour: one person in one of four quarter-hours.
        let h = compute(&sessions, &hour, &hour, Thresholds::default());
        assert_eq!(h[0].aqh, 0.25);
        assert_eq!(h[0].tlh_hours, (299.0 + 300.0) / 3600.0);
        assert_eq!(h[0].sessions, 2);
        assert_eq!(h[0].peak, 2);
        assert_eq!(h[0].peak_at, Some(at(10, 0, 0)));
    }

    #[test]
    fn one_leaving_as_another_arrives_is_a_peak_of_one() {
        let sessions = [
            l("a", "s", at(10, 0, 0), at(10, 5, 0)),
            l("b", "s", at(10, 5, 0), at(10, 9, 0)),
        ];
        let hour = [Span::new(at(10, 0, 0), at(11, 0, 0))];
        let f = compute(&sessions, &hour, &hour, Thresholds::default());
        assert_eq!((f[0].peak, f[0].peak_at), (1, Some(at(10, 0, 0))));
    }

    #[test]
    fn one_listener_on_two_sources_at_once_is_one_listening() {
        // The web player and the HLS stream it fetches, overlapping by 10 minutes.
        let sessions = [
            l("x", "player", at(10, 0, 0), at(10, 30, 0)),
            l("x", "hls", at(10, 20, 0), at(10, 40, 0)),
        ];
        let hour = [Span::new(at(10, 0, 0), at(11, 0, 0))];
        let (total, groups) = compute_by_group(&sessions, &hour, &hour, Thresholds::default());
        assert_eq!(total[0].tlh_hours, 40.0 / 60.0);
        assert_eq!(total[0].cume, 1);
        assert_eq!(total[0].peak, 1);
        assert_eq!(total[0].tsl_minutes, 40.0);
        // Quarter-hours 10:00, 10:15, 10:30 (10 min): three of four.
        assert_eq!(total[0].aqh, 0.5 + 0.25);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].0, "hls");
        assert_eq!(groups[0].1[0].tlh_hours, 20.0 / 60.0);
        assert_eq!(groups[1].1[0].cume, 1);
        // Cume per group sums to 2, the de-duplicated total is 1.
    }

    #[test]
    fn cume_needs_its_minimum_inside_the_interval_and_tlh_counts_everything() {
        let sessions = [l("a", "s", at(10, 59, 30), at(11, 0, 40))];
        let hours = [
            Span::new(at(10, 0, 0), at(11, 0, 0)),
            Span::new(at(11, 0, 0), at(12, 0, 0)),
        ];
        let f = compute(&sessions, &hours, &hours, Thresholds::default());
        assert_eq!((f[0].cume, f[1].cume), (0, 0));
        assert_eq!(f[0].tlh_hours, 30.0 / 3600.0);
        assert_eq!(f[1].tlh_hours, 40.0 / 3600.0);
        assert_eq!((f[0].sessions, f[1].sessions), (1, 0));
        let whole = [Span::new(at(10, 0, 0), at(12, 0, 0))];
        assert_eq!(
            compute(&sessions, &whole, &whole, Thresholds::default())[0].cume,
            1
        );
    }

    #[test]
    fn a_daypart_counts_only_its_windows_and_whole_quarter_hours() {
        let d: Daypart = "mon 12:07-13:00".parse().unwrap(); // 10:07-11:00 UTC in June
        let day = Span::new(at(0, 0, 0), at(23, 0, 0));
        let windows = d.windows(ZURICH, day);
        let sessions = [l("a", "s", at(9, 0, 0), at(12, 0, 0))];
        let f = compute(&sessions, &[day], &windows, Thresholds::default());
        // 53 minutes inside; quarter-hours 10:15, 10:30, 10:45 (10:00 is cut by 10:07).
        assert_eq!(f[0].tlh_hours, 53.0 / 60.0);
        assert_eq!(f[0].aqh, 1.0);
        assert_eq!(f[0].aas, 1.0);
        // The session started before the daypart.
        assert_eq!(f[0].sessions, 0);
    }

    #[test]
    fn a_dst_day_divides_by_its_own_hours() {
        let date = chrono::NaiveDate::from_ymd_opt(2024, 10, 27).unwrap();
        let day = Span::new(
            crate::audience::period::local_midnight(ZURICH, date),
            crate::audience::period::local_midnight(ZURICH, date.succ_opt().unwrap()),
        );
        let sessions = [l("a", "s", day.start, day.end)];
        let f = compute(&sessions, &[day], &[day], Thresholds::default());
        assert_eq!(f[0].tlh_hours, 25.0);
        assert_eq!(f[0].aas, 1.0);
        assert_eq!(f[0].aqh, 1.0);
        assert_eq!(f[0].tsl_minutes, 25.0 * 60.0);
    }

    mod property {
        use super::*;
        use proptest::prelude::*;
        use std::collections::{BTreeMap, BTreeSet};

        /// Seconds from 10:00 UTC; two hours of random sessions of up to four listeners on two
        /// groups, and random windows.
        fn t(s: i64) -> DateTime<Utc> {
            at(10, 0, 0) + chrono::Duration::seconds(s)
        }

        /// The same figures, second by second: an independent way to the same definitions.
        fn brute(sessions: &[Listening], interval: Span, windows: &[Span]) -> Figures {
            let th = Thresholds::default();
            let counted = |sec: DateTime<Utc>| {
                interval.contains(sec) && windows.iter().any(|w| w.contains(sec))
            };
            let mut per_second: BTreeMap<DateTime<Utc>, BTreeSet<&str>> = BTreeMap::new();
            let mut sec = interval.start;
            while sec < interval.end {
                if counted(sec) {
                    let who: BTreeSet<&str> = sessions
                        .iter()
                        .filter(|s| s.span.contains(sec))
                        .map(|s| s.listener.as_str())
                        .collect();
                    per_second.insert(sec, who);
                }
                sec += chrono::Duration::seconds(1);
            }
            let mut seconds_of: BTreeMap<&str, f64> = BTreeMap::new();
            for who in per_second.values() {
                for w in who {
                    *seconds_of.entry(w).or_default() += 1.0;
                }
            }
            let tlh_s: f64 = seconds_of.values().sum();
            let cume = seconds_of.values().filter(|s| **s >= th.cume_min_s).count() as u64;
            // Whole quarter-hours (on the 15-minute grid) all of whose seconds are counted.
            let mut quarters = Vec::new();
            let mut q = interval.start.timestamp().div_euclid(900) * 900;
            while q < interval.end.timestamp() {
                let secs: Vec<DateTime<Utc>> = (q..q + 900)
                    .map(|x| DateTime::from_timestamp(x, 0).unwrap())
                    .collect();
                if secs.iter().all(|s| per_second.contains_key(s)) {
                    quarters.push(secs);
                }
                q += 900;
            }
            let aqh = if quarters.is_empty() {
                0.0
            } else {
                let persons: usize = quarters
                    .iter()
                    .map(|secs| {
                        let mut n: BTreeMap<&str, f64> = BTreeMap::new();
                        for s in secs {
                            for w in &per_second[s] {
                                *n.entry(w).or_default() += 1.0;
                            }
                        }
                        n.values().filter(|x| **x >= th.aqh_min_s).count()
                    })
                    .sum();
                persons as f64 / quarters.len() as f64
            };
            let (mut peak, mut peak_at) = (0u64, None);
            for (sec, who) in &per_second {
                if who.len() as u64 > peak {
                    peak = who.len() as u64;
                    peak_at = Some(*sec);
                }
            }
            let hours = per_second.len() as f64 / 3600.0;
            let tlh_hours = tlh_s / 3600.0;
            Figures {
                span: interval,
                aqh,
                cume,
                tlh_hours,
                tsl_minutes: if cume > 0 {
                    tlh_hours * 60.0 / cume as f64
                } else {
                    0.0
                },
                aas: if hours > 0.0 { tlh_hours / hours } else { 0.0 },
                peak,
                peak_at,
                sessions: sessions
                    .iter()
                    .filter(|s| s.starts_session && counted(s.span.start))
                    .count() as u64,
            }
        }

        fn close(a: f64, b: f64) -> bool {
            (a - b).abs() < 1e-9
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]
            #[test]
            fn figures_equal_a_second_by_second_count(
                // Whole minutes or half-minutes, so ties (one ends as another starts) and
                // exact thresholds (5 minutes in a quarter-hour) are common.
                raw in proptest::collection::vec((0u8..4, 0u8..2, 0i64..240, 1i64..80), 0..12),
                cuts in proptest::collection::vec(0i64..7200, 0..4),
                windows in proptest::collection::vec((0i64..7200, 1i64..3600), 1..3),
            ) {
                let sessions: Vec<Listening> = raw
                    .iter()
                    .map(|(who, g, start, len)| Listening {
                        listener: format!("l{who}"),
                        group: format!("g{g}"),
                        span: Span::new(t(*start * 30), t(((*start + *len) * 30).min(7200))),
                        starts_session: true,
                    })
                    .collect();
                let mut points: Vec<i64> = cuts.clone();
                points.extend([0, 7200]);
                points.sort();
                points.dedup();
                let intervals: Vec<Span> =
                    points.windows(2).map(|w| Span::new(t(w[0]), t(w[1]))).collect();
                let windows = merge(
                    windows.iter().map(|(s, l)| Span::new(t(*s), t((*s + *l).min(7200)))).collect(),
                );
                let got = compute(&sessions, &intervals, &windows, Thresholds::default());
                for (g, interval) in got.iter().zip(&intervals) {
                    let want = brute(&sessions, *interval, &windows);
                    prop_assert!(close(g.tlh_hours, want.tlh_hours), "tlh {g:?} {want:?}");
                    prop_assert_eq!(g.cume, want.cume);
                    prop_assert!(close(g.aqh, want.aqh), "aqh {g:?} {want:?}");
                    prop_assert!(close(g.aas, want.aas), "aas {g:?} {want:?}");
                    prop_assert!(close(g.tsl_minutes, want.tsl_minutes));
                    prop_assert_eq!(g.peak, want.peak);
                    prop_assert_eq!(g.peak_at, want.peak_at);
                    prop_assert_eq!(g.sessions, want.sessions);
                }
            }
        }
    }
}
