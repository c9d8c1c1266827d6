//! Plays of media (what mpv played) and the rules that say whether one was listened to.

use serde::Serialize;
use serde_json::{Map, Value};

/// Something done during a play, seconds after it started, at a position (percent).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Action {
    pub since_started: f64,
    pub action: String,
    pub percentage: Option<f64>,
}

/// One play of one file or stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Play {
    pub path: String,
    pub is_stream: bool,
    /// Unix seconds.
    pub start_time: f64,
    pub end_time: f64,
    pub pause_duration: f64,
    pub media_duration: Option<f64>,
    pub media_title: Option<String>,
    pub actions: Vec<Action>,
    pub metadata: Map<String, Value>,
}

/// When a play counts as listened to, and as a scrobble (the thresholds are settings).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    /// Media shorter than this (seconds) need `short_fraction` of it heard ...
    pub short_media_s: f64,
    pub short_fraction: f64,
    /// ... longer media need more than this many seconds heard.
    pub long_min_s: f64,
    /// last.fm: longer than this, and heard for half its length or `scrobble_cap_s`.
    pub scrobble_min_length_s: f64,
    pub scrobble_cap_s: f64,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            short_media_s: 600.0,
            short_fraction: 0.75,
            long_min_s: 60.0,
            scrobble_min_length_s: 30.0,
            scrobble_cap_s: 240.0,
        }
    }
}

impl Play {
    /// Seconds heard: the play's span less its pauses.
    pub fn listen_time(&self) -> f64 {
        (self.end_time - self.start_time) - self.pause_duration
    }

    /// mpv-history-daemon's default filter: no `/dev/` capture devices; media under 10 minutes
    /// needs more than 75 % heard; otherwise more than a minute.
    pub fn listened(&self, rules: &Rules) -> bool {
        if !self.is_stream && self.path.starts_with("/dev/") {
            return false;
        }
        let heard = self.listen_time();
        if let Some(d) = self.media_duration.filter(|d| *d != 0.0) {
            if d < rules.short_media_s {
                return heard / d > rules.short_fraction;
            }
        }
        heard > rules.long_min_s
    }

    /// A scrobble by last.fm's rule; a play that is not one was skipped.
    pub fn scrobbled(&self, rules: &Rules) -> bool {
        match self.media_duration {
            Some(d) if d > rules.scrobble_min_length_s => {
                self.listen_time() >= (d / 2.0).min(rules.scrobble_cap_s)
            }
            _ => false,
        }
    }
}
