//! The audience of each item that went on air (a sound, a track inside it): who heard it, from
//! the same valid listening as the audience figures.
//!
//! - `performances`: distinct listeners who heard at least `min_overlap` of the item (one
//!   performance per listener per transmission, as SoundExchange counts them);
//! - `listeners_at_start`: listeners listening at the item's first instant;
//! - `listening`: the listening inside the item (its TLH), from which its average audience is
//!   TLH / the item's length.

use std::collections::HashMap;

use super::figures::Listening;
use super::period::{merge, Span};

/// An item of the as-run log and when it was on air.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item {
    pub log_id: i64,
    pub span: Span,
}

/// The audience of one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemAudience {
    pub log_id: i64,
    pub span: Span,
    pub listeners_at_start: i64,
    pub performances: i64,
    pub listening_us: i64,
}

impl ItemAudience {
    /// Average listeners over the item (its TLH over its length).
    pub fn average_audience(&self) -> f64 {
        let len = self.span.micros();
        if len > 0 {
            self.listening_us as f64 / len as f64
        } else {
            0.0
        }
    }

    pub fn tlh_hours(&self) -> f64 {
        super::figures::hours(self.listening_us)
    }
}

/// The audience of every item from the valid listening around them. Items may overlap (a
/// sound and the tracks inside it); each is counted on its own.
pub fn audience(listening: &[Listening], items: &[Item], min_overlap_us: i64) -> Vec<ItemAudience> {
    let mut out: Vec<ItemAudience> = items
        .iter()
        .map(|i| ItemAudience {
            log_id: i.log_id,
            span: i.span,
            listeners_at_start: 0,
            performances: 0,
            listening_us: 0,
        })
        .collect();
    // Items by start; the longest item bounds how far back one may begin and still overlap.
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|i| (items[*i].span.start, items[*i].log_id));
    let longest = items
        .iter()
        .map(|i| i.span.end - i.span.start)
        .max()
        .unwrap_or_default();
    let mut by_listener: HashMap<&str, Vec<Span>> = HashMap::new();
    for l in listening {
        by_listener.entry(&l.listener).or_default().push(l.span);
    }
    let mut heard: HashMap<usize, i64> = HashMap::new();
    for spans in by_listener.into_values() {
        heard.clear();
        for s in merge(spans) {
            // The first item that may overlap `s` starts after s.start - longest.
            let from = order.partition_point(|i| items[*i].span.start <= s.start - longest);
            for &i in &order[from..] {
                let item = items[i].span;
                if item.start >= s.end {
                    break;
                }
                if let Some(c) = s.clip(&item) {
                    *heard.entry(i).or_default() += c.micros();
                }
                if s.contains(item.start) {
                    out[i].listeners_at_start += 1;
                }
            }
        }
        for (&i, &us) in &heard {
            out[i].listening_us += us;
            if us > 0 && us >= min_overlap_us {
                out[i].performances += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, TimeZone, Utc};
    use proptest::prelude::*;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 6, 3, 10, 0, 0).unwrap() + chrono::Duration::seconds(s)
    }

    fn l(who: &str, from: i64, to: i64) -> Listening {
        Listening {
            listener: who.into(),
            group: String::new(),
            span: Span::new(t(from), t(to)),
            starts_session: true,
        }
    }

    #[test]
    fn a_listener_heard_an_item_once_however_many_sessions() {
        let items = [
            Item {
                log_id: 1,
                span: Span::new(t(0), t(300)),
            },
            // A track inside the sound.
            Item {
                log_id: 2,
                span: Span::new(t(100), t(200)),
            },
        ];
        let listening = [
            // a: two sessions (two mounts) over the sound: one performance, 300 s.
            l("a", 0, 200),
            l("a", 150, 300),
            // b: half a second of the track, then gone: under the minimum.
            l("b", 199, 200),
            // c: arrives as the sound starts... at 0: listening at its start.
            l("c", -10, 50),
        ];
        let got = audience(&listening, &items, 1_000_000);
        assert_eq!(got[0].performances, 3);
        assert_eq!(got[0].listeners_at_start, 2);
        assert_eq!(got[0].listening_us, (300 + 1 + 50) * 1_000_000);
        assert_eq!(got[1].performances, 2, "a, and b with exactly 1 s");
        assert_eq!(got[1].listeners_at_start, 1);
        assert_eq!(got[1].listening_us, (100 + 1) * 1_000_000);
        assert!((got[1].average_audience() - 1.01).abs() < 1e-12);
    }

    proptest! {
        /// Against a brute-force count per item and listener.
        #[test]
        fn equals_a_brute_force_count(
            raw in proptest::collection::vec((0u8..5, 0i64..600, 1i64..300), 0..20),
            cuts in proptest::collection::vec((0i64..600, 1i64..200), 1..8),
            min in 0i64..3,
        ) {
            let listening: Vec<Listening> = raw
                .iter()
                .map(|(w, s, len)| l(&format!("l{w}"), *s, s + len))
                .collect();
            let items: Vec<Item> = cuts
                .iter()
                .enumerate()
                .map(|(n, (s, len))| Item { log_id: n as i64, span: Span::new(t(*s), t(s + len)) })
                .collect();
            let got = audience(&listening, &items, min * 1_000_000);
            for (item, a) in items.iter().zip(&got) {
                let (mut perf, mut at_start, mut total) = (0, 0, 0);
                for w in 0..5 {
                    let mine: Vec<&Listening> =
                        listening.iter().filter(|x| x.listener == format!("l{w}")).collect();
                    // Second by second (all times are whole seconds).
                    let secs = (item.span.start.timestamp()..item.span.end.timestamp())
                        .filter(|sec| mine.iter().any(|x| x.span.contains(DateTime::from_timestamp(*sec, 0).unwrap())))
                        .count() as i64;
                    total += secs;
                    if secs > 0 && secs >= min {
                        perf += 1;
                    }
                    if mine.iter().any(|x| x.span.contains(item.span.start)) {
                        at_start += 1;
                    }
                }
                prop_assert_eq!(a.performances, perf);
                prop_assert_eq!(a.listeners_at_start, at_start);
                prop_assert_eq!(a.listening_us, total * 1_000_000);
            }
        }
    }
}
