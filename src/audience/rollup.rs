//! Rollups: the figures of a long period from blocks kept per quarter-hour, local day and local
//! month, so a year is read as twelve months instead of ten million sessions.
//!
//! Every figure but Cume adds up over disjoint blocks: listening time, AQH persons (per
//! quarter-hour, summed; the mean divides by the quarter-hours asked for), sessions started,
//! exclusions, and the peak (the largest of the blocks', first reached in the earliest). Cume is
//! never added: each block keeps its listener sets over a dense listener dictionary, exactly:
//! `qualified`, the listeners with at least the Cume minimum inside the block, and `partial`,
//! the others present with their listening. A listener is in the Cume of a union of blocks when
//! it qualified in one of them, or its partial listening adds up to the minimum; so a union is
//! exact, and a day or month block is itself the union of its quarter-hours or days.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Duration, Months, Utc};
use chrono_tz::Tz;

use super::figures::{self, Figures, Sums, Thresholds, QUARTER_HOUR_S};
use super::period::{local_midnight, merge, Span};

/// A listener's number in the dictionary of listeners (listener keys and signed-in identities).
pub type ListenerId = u32;

/// A set of listener ids: an ascending list where few of the dictionary are in it, a bitset
/// over the dictionary where many are (a month of a station's listeners).
#[derive(Debug, Clone)]
pub enum Ids {
    List(Vec<ListenerId>),
    Bits(Vec<u64>),
}

impl Default for Ids {
    fn default() -> Ids {
        Ids::List(Vec::new())
    }
}

impl PartialEq for Ids {
    fn eq(&self, other: &Ids) -> bool {
        self.to_vec() == other.to_vec()
    }
}

impl Ids {
    pub fn len(&self) -> usize {
        match self {
            Ids::List(v) => v.len(),
            Ids::Bits(w) => w.iter().map(|x| x.count_ones() as usize).sum(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The largest id in the set.
    pub fn max(&self) -> Option<ListenerId> {
        match self {
            Ids::List(v) => v.last().copied(),
            Ids::Bits(w) => w
                .iter()
                .rposition(|x| *x != 0)
                .map(|i| (i * 64) as u32 + 63 - w[i].leading_zeros()),
        }
    }

    /// Adds the set to a bitset (long enough for its largest id).
    fn or_into(&self, bits: &mut [u64]) {
        match self {
            Ids::List(v) => {
                for id in v {
                    bits[*id as usize / 64] |= 1 << (id % 64);
                }
            }
            Ids::Bits(w) => {
                for (b, x) in bits.iter_mut().zip(w) {
                    *b |= x;
                }
            }
        }
    }

    /// The ids in ascending order.
    pub fn to_vec(&self) -> Vec<ListenerId> {
        match self {
            Ids::List(v) => v.clone(),
            Ids::Bits(w) => {
                let mut out = Vec::new();
                for (i, word) in w.iter().enumerate() {
                    let mut word = *word;
                    while word != 0 {
                        out.push((i * 64) as u32 + word.trailing_zeros());
                        word &= word - 1;
                    }
                }
                out
            }
        }
    }

    /// The set from a bitset: kept as bits when dense (more than one id per two words).
    fn from_bits(bits: Vec<u64>) -> Ids {
        let n: usize = bits.iter().map(|x| x.count_ones() as usize).sum();
        if n > 2 * bits.len() {
            Ids::Bits(bits)
        } else {
            Ids::Bits(bits).to_list()
        }
    }

    fn to_list(&self) -> Ids {
        Ids::List(self.to_vec())
    }
}

/// The sizes of blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    QuarterHour = 0,
    Day = 1,
    Month = 2,
    /// Monday to Monday, local midnight.
    Week = 3,
}

impl Kind {
    pub fn code(self) -> i16 {
        self as i16
    }
}

/// Sessions not counted, by rule, that started in a block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Excluded {
    pub robot: i64,
    pub relay: i64,
    pub too_short: i64,
}

impl Excluded {
    fn add(&mut self, o: &Excluded) {
        self.robot += o.robot;
        self.relay += o.relay;
        self.too_short += o.too_short;
    }

    pub fn is_empty(&self) -> bool {
        *self == Excluded::default()
    }
}

/// One block of one group (or of the whole station).
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub span: Span,
    pub listening_us: i64,
    /// Sum over the block's quarter-hours of the persons counted in their AQH.
    pub aqh_persons: i64,
    pub sessions: i64,
    pub peak: i64,
    pub peak_at: Option<DateTime<Utc>>,
    /// How many listeners reach the Cume minimum inside the block (its own Cume).
    pub cume: i64,
    /// Those listeners (empty when the block was read for its figures alone).
    pub qualified: Ids,
    /// The other listeners present, with their listening in microseconds, ascending by id.
    pub partial: Vec<(ListenerId, i64)>,
    pub excluded: Excluded,
}

impl Block {
    pub fn empty(span: Span) -> Block {
        Block {
            span,
            listening_us: 0,
            aqh_persons: 0,
            sessions: 0,
            peak: 0,
            peak_at: None,
            cume: 0,
            qualified: Ids::default(),
            partial: Vec::new(),
            excluded: Excluded::default(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.listening_us == 0 && self.sessions == 0 && self.excluded.is_empty()
    }
}

/// A piece of valid listening of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Piece {
    pub listener: ListenerId,
    pub span: Span,
    pub starts_session: bool,
}

fn quarter_index(origin: DateTime<Utc>, t: DateTime<Utc>) -> usize {
    ((t - origin).num_seconds().div_euclid(QUARTER_HOUR_S)) as usize
}

/// The quarter-hour blocks of `day` (a span on the quarter-hour grid): one per quarter-hour,
/// from the valid listening of one group (or all) and the exclusions starting in it.
pub fn quarter_blocks(
    pieces: &[Piece],
    excluded: &[(super::Exclusion, DateTime<Utc>)],
    day: Span,
    th: Thresholds,
) -> Vec<Block> {
    let n = quarter_index(day.start, day.end);
    let q = |i: usize| {
        let start = day.start + Duration::seconds(QUARTER_HOUR_S * i as i64);
        Span::new(start, start + Duration::seconds(QUARTER_HOUR_S))
    };
    let mut blocks: Vec<Block> = (0..n).map(|i| Block::empty(q(i))).collect();
    // Each listener's listening is the union of its pieces, cut on the quarter-hour grid.
    let mut by_listener: HashMap<ListenerId, Vec<Span>> = HashMap::new();
    for p in pieces {
        by_listener.entry(p.listener).or_default().push(p.span);
        if p.starts_session && day.contains(p.span.start) {
            blocks[quarter_index(day.start, p.span.start)].sessions += 1;
        }
    }
    for (rule, start) in excluded {
        if day.contains(*start) {
            let e = &mut blocks[quarter_index(day.start, *start)].excluded;
            match rule {
                super::Exclusion::Robot => e.robot += 1,
                super::Exclusion::Relay => e.relay += 1,
                super::Exclusion::TooShort => e.too_short += 1,
            }
        }
    }
    let mut cut: Vec<Vec<(ListenerId, Span)>> = vec![Vec::new(); n];
    for (id, spans) in by_listener {
        for s in merge(spans) {
            let Some(s) = s.clip(&day) else { continue };
            let mut t = s.start;
            while t < s.end {
                let i = quarter_index(day.start, t);
                let end = s.end.min(q(i).end);
                cut[i].push((id, Span::new(t, end)));
                t = end;
            }
        }
    }
    let (aqh_min, cume_min) = (th.aqh_min_us(), th.cume_min_us());
    for (block, mut listening) in blocks.iter_mut().zip(cut) {
        if listening.is_empty() {
            continue;
        }
        listening.sort_by_key(|(id, s)| (*id, s.start));
        let (peak, peak_at) = figures::peak(listening.iter().map(|(_, s)| s));
        block.peak = peak as i64;
        block.peak_at = peak_at;
        let mut qualified = Vec::new();
        for mine in listening.chunk_by(|a, b| a.0 == b.0) {
            let us: i64 = mine.iter().map(|(_, s)| s.micros()).sum();
            if us == 0 {
                continue;
            }
            block.listening_us += us;
            if us >= aqh_min {
                block.aqh_persons += 1;
            }
            if us >= cume_min {
                qualified.push(mine[0].0);
            } else {
                block.partial.push((mine[0].0, us));
            }
        }
        block.cume = qualified.len() as i64;
        block.qualified = Ids::List(qualified);
    }
    blocks
}

/// The listeners of a union of blocks: those qualified in any, and those whose partial
/// listening adds up to the minimum (qualified) or not (partial).
fn union_sets<'a>(
    parts: impl Iterator<Item = &'a Block> + Clone,
    cume_min_us: i64,
) -> (Ids, Vec<(ListenerId, i64)>) {
    let max = parts
        .clone()
        .flat_map(|b| {
            b.qualified
                .max()
                .into_iter()
                .chain(b.partial.last().map(|p| p.0))
        })
        .max();
    let Some(max) = max else {
        return (Ids::default(), Vec::new());
    };
    // A bitset over the dictionary: a union of twelve months of 300 000 listeners is a few
    // thousand word operations.
    let mut bits = vec![0u64; max as usize / 64 + 1];
    for b in parts.clone() {
        b.qualified.or_into(&mut bits);
    }
    let mut partial: HashMap<ListenerId, i64> = HashMap::new();
    for b in parts {
        for (id, us) in &b.partial {
            if bits[*id as usize / 64] & (1 << (id % 64)) == 0 {
                *partial.entry(*id).or_default() += us;
            }
        }
    }
    let mut rest = Vec::new();
    for (id, us) in partial {
        if us >= cume_min_us {
            bits[id as usize / 64] |= 1 << (id % 64);
        } else {
            rest.push((id, us));
        }
    }
    rest.sort_unstable();
    (Ids::from_bits(bits), rest)
}

/// The block of `span` made of `parts` (disjoint blocks covering it, e.g. the quarter-hours of
/// a day or the days of a month).
pub fn combine(span: Span, parts: &[Block], th: Thresholds) -> Block {
    let mut out = Block::empty(span);
    for p in parts {
        out.listening_us += p.listening_us;
        out.aqh_persons += p.aqh_persons;
        out.sessions += p.sessions;
        out.excluded.add(&p.excluded);
        if p.peak > out.peak || (p.peak == out.peak && p.peak > 0 && p.peak_at < out.peak_at) {
            out.peak = p.peak;
            out.peak_at = p.peak_at;
        }
    }
    let (qualified, partial) = union_sets(parts.iter(), th.cume_min_us());
    out.cume = qualified.len() as i64;
    out.qualified = qualified;
    out.partial = partial;
    out
}

/// The figures of an interval whose counted time (`inside`, on the quarter-hour grid) is made
/// of `parts`; blocks missing from `parts` had no listening. With more than one part, the parts
/// must carry their listener sets.
pub fn evaluate(interval: Span, inside: &[Span], parts: &[&Block], th: Thresholds) -> Figures {
    let inside_us: i64 = inside.iter().map(Span::micros).sum();
    let quarters = inside_us / (QUARTER_HOUR_S * 1_000_000);
    let mut peak = (0i64, None);
    let (mut tlh_us, mut aqh, mut sessions) = (0i64, 0i64, 0i64);
    for p in parts {
        tlh_us += p.listening_us;
        aqh += p.aqh_persons;
        sessions += p.sessions;
        if p.peak > peak.0 || (p.peak == peak.0 && p.peak > 0 && p.peak_at < peak.1) {
            peak = (p.peak, p.peak_at);
        }
    }
    // One block: its own Cume. Several: the union of their sets (read with them).
    let cume = if parts.len() == 1 {
        parts[0].cume as usize
    } else {
        union_sets(parts.iter().copied(), th.cume_min_us()).0.len()
    };
    Figures::new(
        interval,
        Sums {
            tlh_us,
            inside_us,
            aqh: if quarters > 0 {
                aqh as f64 / quarters as f64
            } else {
                0.0
            },
            cume: cume as u64,
            peak: peak.0 as u64,
            peak_at: peak.1,
            sessions: sessions as u64,
        },
    )
}

/// Whether an instant is on the quarter-hour grid.
pub fn on_grid(t: DateTime<Utc>) -> bool {
    t.timestamp_subsec_nanos() == 0 && t.timestamp().rem_euclid(QUARTER_HOUR_S) == 0
}

/// The local month starting at the local midnight of `date`'s first day.
fn month_after(tz: Tz, date: chrono::NaiveDate) -> DateTime<Utc> {
    let first = date.with_day(1).expect("day 1 exists");
    local_midnight(tz, first + Months::new(1))
}

/// The fewest blocks covering `spans` (sorted, disjoint, on the quarter-hour grid): whole local
/// months, then whole weeks (from Monday), then whole local days, then quarter-hours. None when a span is off the grid (such a
/// period is computed from the sessions).
pub fn decompose(tz: Tz, spans: &[Span]) -> Option<Vec<(Kind, Span)>> {
    let mut out = Vec::new();
    for s in spans {
        if !on_grid(s.start) || !on_grid(s.end) {
            return None;
        }
        let mut t = s.start;
        while t < s.end {
            let date = t.with_timezone(&tz).date_naive();
            let day_end = local_midnight(tz, date + Duration::days(1));
            if t == local_midnight(tz, date) {
                if date.day() == 1 {
                    let month_end = month_after(tz, date);
                    if month_end <= s.end {
                        out.push((Kind::Month, Span::new(t, month_end)));
                        t = month_end;
                        continue;
                    }
                }
                if date.weekday() == chrono::Weekday::Mon {
                    let week_end = local_midnight(tz, date + Duration::days(7));
                    if week_end <= s.end {
                        out.push((Kind::Week, Span::new(t, week_end)));
                        t = week_end;
                        continue;
                    }
                }
                if day_end <= s.end {
                    out.push((Kind::Day, Span::new(t, day_end)));
                    t = day_end;
                    continue;
                }
            }
            let end = t + Duration::seconds(QUARTER_HOUR_S);
            out.push((Kind::QuarterHour, Span::new(t, end)));
            t = end;
        }
    }
    Some(out)
}

/// The local day containing `t`, and the local month.
pub fn day_of(tz: Tz, date: chrono::NaiveDate) -> Span {
    Span::new(
        local_midnight(tz, date),
        local_midnight(tz, date + Duration::days(1)),
    )
}

/// The local week (from Monday) containing `date`.
pub fn week_of(tz: Tz, date: chrono::NaiveDate) -> Span {
    let monday = date - Duration::days(date.weekday().num_days_from_monday() as i64);
    Span::new(
        local_midnight(tz, monday),
        local_midnight(tz, monday + Duration::days(7)),
    )
}

pub fn month_of(tz: Tz, date: chrono::NaiveDate) -> Span {
    let first = date.with_day(1).expect("day 1 exists");
    Span::new(local_midnight(tz, first), month_after(tz, first))
}

/// Listener sets as bytes: ascending ids as LEB128 deltas or a bitset, partial listening as
/// (delta, microseconds) pairs.
pub mod bytes {
    use super::{Ids, ListenerId};

    fn put(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn get(data: &[u8], at: &mut usize) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *data.get(*at)?;
            *at += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }

    /// A set of ids: empty, or a tag byte then ascending LEB128 deltas (tag 0) or a bitset from
    /// id 0 (tag 1), whichever is smaller (a month of most of the listeners is a bitset).
    pub fn ids(set: &Ids) -> Vec<u8> {
        let ids = match set {
            Ids::Bits(w) => {
                let mut out = Vec::with_capacity(w.len() * 8 + 1);
                out.push(1);
                for word in w {
                    out.extend_from_slice(&word.to_le_bytes());
                }
                // No trailing empty bytes: the same set is always the same bytes.
                while out.len() > 1 && out.last() == Some(&0) {
                    out.pop();
                }
                if out.len() > 1 && set.len() * 2 < out.len() {
                    return ids(&Ids::List(set.to_vec()));
                }
                return if out.len() == 1 { Vec::new() } else { out };
            }
            Ids::List(v) => v,
        };
        let Some(max) = ids.last() else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(ids.len() * 2 + 1);
        out.push(0);
        let mut last = 0u64;
        for id in ids {
            put(&mut out, u64::from(*id) - last);
            last = u64::from(*id);
        }
        let bitset_len = *max as usize / 8 + 2;
        if bitset_len < out.len() {
            out.clear();
            out.resize(bitset_len, 0);
            out[0] = 1;
            for id in ids {
                out[1 + *id as usize / 8] |= 1 << (id % 8);
            }
        }
        out
    }

    pub fn partial(pairs: &[(ListenerId, i64)]) -> Vec<u8> {
        let mut out = Vec::with_capacity(pairs.len() * 5);
        let mut last = 0u64;
        for (id, us) in pairs {
            put(&mut out, u64::from(*id) - last);
            put(&mut out, (*us).max(0) as u64);
            last = u64::from(*id);
        }
        out
    }

    /// None when the bytes are not a set this module wrote.
    pub fn read_ids(data: &[u8]) -> Option<Ids> {
        let Some((tag, data)) = data.split_first() else {
            return Some(Ids::default());
        };
        match tag {
            0 => {
                let (mut at, mut last, mut out) = (0, 0u64, Vec::new());
                while at < data.len() {
                    last += get(data, &mut at)?;
                    out.push(ListenerId::try_from(last).ok()?);
                }
                Some(Ids::List(out))
            }
            1 => Some(Ids::Bits(
                data.chunks(8)
                    .map(|c| {
                        let mut w = [0u8; 8];
                        w[..c.len()].copy_from_slice(c);
                        u64::from_le_bytes(w)
                    })
                    .collect(),
            )),
            _ => None,
        }
    }

    pub fn read_partial(data: &[u8]) -> Option<Vec<(ListenerId, i64)>> {
        let (mut at, mut last, mut out) = (0, 0u64, Vec::new());
        while at < data.len() {
            last += get(data, &mut at)?;
            let us = i64::try_from(get(data, &mut at)?).ok()?;
            out.push((ListenerId::try_from(last).ok()?, us));
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audience::figures::{compute, Listening};
    use crate::audience::period::{split, Daypart, Interval};
    use chrono::{NaiveDate, TimeZone};
    use proptest::prelude::*;

    const ZURICH: Tz = chrono_tz::Europe::Zurich;

    fn blocks_of(
        pieces: &[Piece],
        days: &[NaiveDate],
        th: Thresholds,
    ) -> HashMap<(Kind, DateTime<Utc>), Block> {
        let mut out = HashMap::new();
        let mut months: HashMap<NaiveDate, Vec<Block>> = HashMap::new();
        let mut weeks: HashMap<DateTime<Utc>, Vec<Block>> = HashMap::new();
        for date in days {
            let day = day_of(ZURICH, *date);
            let quarters = quarter_blocks(pieces, &[], day, th);
            let d = combine(day, &quarters, th);
            months
                .entry(date.with_day(1).unwrap())
                .or_default()
                .push(d.clone());
            weeks
                .entry(week_of(ZURICH, *date).start)
                .or_default()
                .push(d.clone());
            out.insert((Kind::Day, day.start), d);
            for q in quarters {
                out.insert((Kind::QuarterHour, q.span.start), q);
            }
        }
        for (first, days) in months {
            let m = month_of(ZURICH, first);
            out.insert((Kind::Month, m.start), combine(m, &days, th));
        }
        for (start, days) in weeks {
            let w = week_of(ZURICH, start.with_timezone(&ZURICH).date_naive());
            out.insert((Kind::Week, w.start), combine(w, &days, th));
        }
        out
    }

    #[test]
    fn sets_survive_their_bytes() {
        let ids = Ids::List(vec![0, 1, 127, 128, 300_000, u32::MAX]);
        assert_eq!(bytes::read_ids(&bytes::ids(&ids)), Some(ids));
        // Dense: a bitset, about a bit a listener, however it was held.
        let dense: Vec<u32> = (0..10_000).filter(|i| i % 7 != 0).collect();
        let data = bytes::ids(&Ids::List(dense.clone()));
        assert_eq!(data[0], 1);
        assert!(data.len() < 1_300, "{}", data.len());
        assert_eq!(bytes::read_ids(&data).unwrap().to_vec(), dense);
        let as_bits = bytes::read_ids(&data).unwrap();
        assert!(matches!(as_bits, Ids::Bits(_)));
        assert_eq!(bytes::ids(&as_bits), data);
        assert_eq!(as_bits.max(), Some(9_999));
        assert_eq!(bytes::read_ids(&[]), Some(Ids::default()));
        assert_eq!(bytes::read_ids(&[2, 0]), None);
        let pairs = vec![(3, 59_999_999), (90, 1), (91, 0)];
        assert_eq!(bytes::read_partial(&bytes::partial(&pairs)), Some(pairs));
        assert_eq!(bytes::read_ids(&[0, 0x80]), None);
    }

    #[test]
    fn a_month_is_months_days_and_quarter_hours() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        // From 23:45 on 30 September (local) to 00:15 on 2 November, across the DST end.
        let s = Span::new(
            at("2024-09-30T23:45:00+02:00"),
            at("2024-11-02T00:15:00+01:00"),
        );
        let parts = decompose(ZURICH, &[s]).unwrap();
        let kinds: Vec<Kind> = parts.iter().map(|p| p.0).collect();
        assert_eq!(
            kinds,
            vec![Kind::QuarterHour, Kind::Month, Kind::Day, Kind::QuarterHour]
        );
        assert_eq!(parts[1].1.seconds(), (31.0 * 24.0 + 1.0) * 3600.0);
        assert!(decompose(ZURICH, &[Span::new(at("2024-10-01T00:07:00+02:00"), s.end)]).is_none());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// The figures from blocks equal the direct computation, for random listening over
        /// ten days around the DST end and random intervals and dayparts on the grid.
        #[test]
        fn rollups_equal_the_direct_computation(
            raw in proptest::collection::vec((0u32..6, 0i64..(10 * 24 * 60), 1i64..600), 0..40),
            interval in 0usize..5,
            daypart in proptest::option::of((0u32..24, 1u32..8, 0u32..4)),
            cume_min_s in prop_oneof![Just(60.0), Just(600.0), Just(1200.0)],
        ) {
            let start = ZURICH.with_ymd_and_hms(2024, 10, 26, 0, 0, 0).unwrap().with_timezone(&Utc);
            // Half-minute steps: thresholds are met exactly and pieces touch.
            let sessions: Vec<Listening> = raw
                .iter()
                .map(|(who, from, len)| Listening {
                    listener: format!("l{who}"),
                    group: String::new(),
                    span: Span::new(
                        start + Duration::seconds(from * 60 - 30),
                        start + Duration::seconds(from * 60 + len * 30),
                    ),
                    starts_session: true,
                })
                .collect();
            let pieces: Vec<Piece> = sessions
                .iter()
                .map(|s| Piece {
                    listener: s.listener[1..].parse().unwrap(),
                    span: s.span,
                    starts_session: s.starts_session,
                })
                .collect();
            let th = Thresholds { aqh_min_s: 300.0, cume_min_s };
            let first = NaiveDate::from_ymd_opt(2024, 10, 25).unwrap();
            let days: Vec<NaiveDate> = (0..13).map(|d| first + Duration::days(d)).collect();
            let blocks = blocks_of(&pieces, &days, th);
            // Saturday 26 October to Tuesday 5 November: the DST end, a whole week.
            let period = Span::new(start, start + Duration::days(10));
            let interval = [Interval::QuarterHour, Interval::Hour, Interval::Day, Interval::Week, Interval::Total][interval];
            let windows = match daypart {
                Some((h, len, days)) => {
                    let spec = format!(
                        "{} {:02}:00-{:02}:{}",
                        ["mon-sun", "sat", "sun", "sat-sun"][days as usize],
                        h,
                        (h + len).min(23),
                        if h + len >= 24 { "45" } else { "00" }
                    );
                    spec.parse::<Daypart>().unwrap().windows(ZURICH, period)
                }
                None => vec![period],
            };
            let intervals = split(ZURICH, period, interval);
            let want = compute(&sessions, &intervals, &windows, th);
            for (interval, want) in intervals.iter().zip(want) {
                let inside = crate::audience::period::intersect(&[*interval], &windows);
                let parts: Vec<&Block> = decompose(ZURICH, &inside)
                    .unwrap()
                    .iter()
                    .filter_map(|(k, s)| blocks.get(&(*k, s.start)))
                    .collect();
                let got = evaluate(*interval, &inside, &parts, th);
                prop_assert_eq!(got, want);
            }
        }
    }
}
