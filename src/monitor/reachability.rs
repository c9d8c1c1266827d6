//! Whether a station's streamer is reachable, as the webhooks' `station_offline` and
//! `station_online` events see it: offline once the monitor has failed to reach it for longer
//! than a threshold (a reconnect within it is no outage), online at the first success after.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// A change worth reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Unreachable since `since`, for longer than the threshold.
    Offline { since: DateTime<Utc> },
    /// Reachable again at `back` after being reported offline since `since`.
    Online {
        since: DateTime<Utc>,
        back: DateTime<Utc>,
    },
}

impl Change {
    /// The webhook event and its body.
    pub fn event(&self) -> (&'static str, serde_json::Value) {
        match *self {
            Change::Offline { since } => ("station_offline", serde_json::json!({ "since": since })),
            Change::Online { since, back } => (
                "station_online",
                serde_json::json!({
                    "since": since,
                    "back": back,
                    "offline_s": (back - since).num_milliseconds() as f64 / 1000.0,
                }),
            ),
        }
    }
}

/// The reachability of one streamer, from the monitor's successes and failures.
#[derive(Debug, Clone)]
pub struct Reachability {
    offline_after: Duration,
    /// The first failure of the current run of failures.
    lost_since: Option<DateTime<Utc>>,
    /// When the outage reported offline (and not yet back online) began.
    reported: Option<DateTime<Utc>>,
}

impl Reachability {
    /// Reports an outage after `offline_after`; `reported` is an outage reported before (by
    /// an earlier run of airlog) and not ended yet.
    pub fn new(offline_after: Duration, reported: Option<DateTime<Utc>>) -> Reachability {
        Reachability {
            offline_after,
            lost_since: reported,
            reported,
        }
    }

    /// What an attempt at `now` that did (or did not) reach the streamer changes. The caller
    /// reports the change, then calls [`Reachability::reported`].
    pub fn observe(&self, now: DateTime<Utc>, reachable: bool) -> Option<Change> {
        match (reachable, self.reported, self.lost_since) {
            (true, Some(since), _) => Some(Change::Online { since, back: now }),
            (false, None, Some(since))
                if (now - since).to_std().unwrap_or_default() >= self.offline_after =>
            {
                Some(Change::Offline { since })
            }
            _ => None,
        }
    }

    /// Records the attempt (after its change, if any, was reported).
    pub fn record(&mut self, now: DateTime<Utc>, reachable: bool, reported: Option<Change>) {
        if reachable {
            self.lost_since = None;
        } else {
            self.lost_since.get_or_insert(now);
        }
        match reported {
            Some(Change::Offline { since }) => self.reported = Some(since),
            Some(Change::Online { .. }) => self.reported = None,
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_longer_than_the_threshold_is_reported_once_and_its_end_once() {
        let t0 = Utc::now();
        let s = |n: i64| t0 + chrono::Duration::seconds(n);
        let mut r = Reachability::new(Duration::from_secs(30), None);
        let mut seen = Vec::new();
        for (n, ok) in [
            (0, true),
            (1, false),
            (20, false),
            (25, true),
            (40, false),
            (70, false),
            (80, false),
            (90, true),
            (91, true),
        ] {
            let change = r.observe(s(n), ok);
            r.record(s(n), ok, change);
            seen.extend(change);
        }
        // A 24 s reconnect is no outage; the one from 40 s is reported at 70 s and ends at 90 s.
        assert_eq!(
            seen,
            [
                Change::Offline { since: s(40) },
                Change::Online {
                    since: s(40),
                    back: s(90)
                }
            ]
        );
    }

    #[test]
    fn an_outage_reported_before_a_restart_still_ends_with_online() {
        let since = Utc::now();
        let r = Reachability::new(Duration::from_secs(30), Some(since));
        let back = since + chrono::Duration::seconds(5);
        assert_eq!(r.observe(back, true), Some(Change::Online { since, back }));
    }
}
