//! Player events: what a web player or media server says a listener's player did.

use chrono::{DateTime, Utc};

named! {
    /// What the player was doing from the event on.
    pub enum State {
        Playing = "playing",
        Paused = "paused",
        Stopped = "stopped",
        Buffering = "buffering",
    }
}

impl State {
    /// Whether a listener in this state counts as listening (buffering is about to play).
    pub fn is_listening(self) -> bool {
        matches!(self, State::Playing | State::Buffering)
    }
}

named! {
    /// What kind of programme was heard.
    pub enum Source {
        Live = "live",
        OnDemand = "on-demand",
        News = "news",
    }
}

/// One checked player event. Browser events get their `time` from the server's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct PlayerEvent {
    pub time: Option<DateTime<Utc>>,
    pub time_end: Option<DateTime<Utc>>,
    pub state: State,
    pub obj_key: String,
    pub source: Source,
    /// Seconds, from the event; otherwise the catalogue's duration is used.
    pub max_duration_s: Option<f64>,
    pub client_ts: Option<DateTime<Utc>>,
    /// Only trusted events carry an identity; browser events get theirs from the request.
    pub user_identity: Option<String>,
    pub device_key: Option<String>,
}

/// A device key as airlog makes them (see `stream_event::device_key`); the session query
/// decodes its first part, so a malformed one would break it.
pub fn valid_device_key(key: &str) -> bool {
    use base64::Engine;
    let Some((ip, hash)) = key.split_once('-') else {
        return false;
    };
    hash.len() == 10
        && hash.bytes().all(|b| b.is_ascii_hexdigit())
        && base64::engine::general_purpose::STANDARD
            .decode(ip)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .is_some_and(|s| s.parse::<std::net::IpAddr>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_keys_made_by_airlog_are_valid_and_others_are_not() {
        let key = crate::domain::stream_event::device_key(&"10.0.0.1".parse().unwrap(), "ua");
        assert!(valid_device_key(&key));
        assert!(!valid_device_key("bm9wZQ==-0123456789"), "not an address");
    }

    #[test]
    fn names_are_those_stored() {
        assert_eq!(Source::OnDemand.as_str(), "on-demand");
        assert_eq!("buffering".parse::<State>(), Ok(State::Buffering));
        assert!("rewinding".parse::<State>().is_err());
    }
}
