//! Audience figures by the streaming measurement standards (AQH, Cume, TLH, TSL, AAS, peak,
//! sessions): one listener model over every source, periods in the station's time zone. Pure:
//! the database feeds it sessions, the API and the CLI print what it returns.

pub mod figures;
pub mod period;

use std::net::IpAddr;

use crate::ship::robots::{Robots, Verdict};

/// The key of a listener: its address (IPv6 cut to its /64, the part a household keeps while
/// its interface identifier rotates) and its user agent. Every source uses it, so the web
/// player and the stream it fetches are one listener.
pub fn listener_key(ip: IpAddr, user_agent: &str) -> String {
    let ip = match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    };
    format!("{ip} {user_agent}")
}

/// Why a session is not counted; a session is counted against the first rule that excludes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exclusion {
    Robot,
    Relay,
    TooShort,
}

impl Exclusion {
    pub fn as_str(self) -> &'static str {
        match self {
            Exclusion::Robot => "robot",
            Exclusion::Relay => "relay",
            Exclusion::TooShort => "too_short",
        }
    }
}

/// What makes a session valid listening.
pub struct Validity {
    pub robots: Robots,
    /// Addresses of relays (other streaming servers pulling the stream).
    pub relay_addresses: Vec<IpAddr>,
    /// Sessions shorter than this are not counted at all.
    pub min_session_s: f64,
}

/// User agents Icecast and its kin send when they relay a stream rather than listen to it.
const RELAY_AGENTS: [&str; 4] = ["icecast", "shoutcast", "liquidsoap", "relay"];

impl Validity {
    /// The rule that excludes a session, robots first, then relays, then length.
    pub fn exclusion(&self, ip: IpAddr, user_agent: &str, seconds: f64) -> Option<Exclusion> {
        if self.robots.verdict(user_agent) != Verdict::Listener {
            return Some(Exclusion::Robot);
        }
        let ua = user_agent.to_ascii_lowercase();
        if self.relay_addresses.contains(&ip) || RELAY_AGENTS.iter().any(|r| ua.contains(r)) {
            return Some(Exclusion::Relay);
        }
        if seconds < self.min_session_s {
            return Some(Exclusion::TooShort);
        }
        None
    }
}

/// A signed-in listener's player session: who (the identity) and on which listener key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub identity: String,
    pub listener: String,
    pub span: period::Span,
}

/// Gives signed-in identities the listening of their address + user agent while their player
/// session lasts: the part of a session of that listener key inside a signed-in span becomes the
/// identity's (a web player and the HLS stream it fetches are one listener, whoever signed in).
/// A session is cut where a signed-in span starts or ends; only its first piece starts a session.
pub fn take_over(
    sessions: Vec<figures::Listening>,
    signed_in: &[SignedIn],
) -> Vec<figures::Listening> {
    use std::collections::HashMap;
    let mut by_listener: HashMap<&str, Vec<&SignedIn>> = HashMap::new();
    for s in signed_in {
        by_listener.entry(&s.listener).or_default().push(s);
    }
    for spans in by_listener.values_mut() {
        spans.sort_by_key(|s| (s.span.start, s.span.end));
    }
    let mut out = Vec::with_capacity(sessions.len());
    for session in sessions {
        let Some(ids) = by_listener.get(session.listener.as_str()) else {
            out.push(session);
            continue;
        };
        // Walk the session from its start; at each instant the earliest signed-in span covering
        // it (if any) names the listener.
        let mut t = session.span.start;
        let mut first = session.starts_session;
        while t < session.span.end {
            let covering = ids.iter().find(|s| s.span.contains(t));
            let (who, until) = match covering {
                Some(s) => (s.identity.clone(), s.span.end.min(session.span.end)),
                None => {
                    let next = ids
                        .iter()
                        .map(|s| s.span.start)
                        .filter(|start| *start > t)
                        .min()
                        .unwrap_or(session.span.end);
                    (session.listener.clone(), next.min(session.span.end))
                }
            };
            out.push(figures::Listening {
                listener: who,
                group: session.group.clone(),
                span: period::Span::new(t, until),
                starts_session: first,
            });
            first = false;
            t = until;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_listeners_are_keyed_by_their_64() {
        let a = listener_key("2001:db8:1:2:aaaa::1".parse().unwrap(), "VLC");
        let b = listener_key("2001:db8:1:2:bbbb:cccc::9".parse().unwrap(), "VLC");
        assert_eq!(a, b);
        assert_eq!(a, "2001:db8:1:2::/64 VLC");
        assert_ne!(a, listener_key("2001:db8:1:3::1".parse().unwrap(), "VLC"));
        assert_eq!(
            listener_key("192.0.2.1".parse().unwrap(), "VLC"),
            "192.0.2.1 VLC"
        );
    }

    #[test]
    fn a_signed_in_identity_takes_over_its_stream_while_its_player_session_lasts() {
        use chrono::TimeZone;
        let at = |m: u32| chrono::Utc.with_ymd_and_hms(2024, 6, 3, 10, m, 0).unwrap();
        let key = "192.0.2.1 VLC".to_string();
        let hls = figures::Listening {
            listener: key.clone(),
            group: "hls".into(),
            span: period::Span::new(at(0), at(50)),
            starts_session: true,
        };
        let player = SignedIn {
            identity: "account.user:7".into(),
            listener: key.clone(),
            span: period::Span::new(at(10), at(30)),
        };
        let pieces = take_over(vec![hls], &[player]);
        let got: Vec<(String, u32, u32, bool)> = pieces
            .iter()
            .map(|p| {
                (
                    p.listener.clone(),
                    (p.span.start - at(0)).num_minutes() as u32,
                    (p.span.end - at(0)).num_minutes() as u32,
                    p.starts_session,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (key.clone(), 0, 10, true),
                ("account.user:7".into(), 10, 30, false),
                (key, 30, 50, false),
            ]
        );
    }

    #[test]
    fn exclusions_apply_in_order_robot_relay_short() {
        let v = Validity {
            robots: Robots::new(&[], &[]),
            relay_addresses: vec!["192.0.2.9".parse().unwrap()],
            min_session_s: 60.0,
        };
        let ip = "192.0.2.1".parse().unwrap();
        let relay = "192.0.2.9".parse().unwrap();
        assert_eq!(
            v.exclusion(ip, "Googlebot/2.1", 10.0),
            Some(Exclusion::Robot)
        );
        assert_eq!(v.exclusion(relay, "VLC/3.0", 10.0), Some(Exclusion::Relay));
        assert_eq!(
            v.exclusion(ip, "Icecast 2.4.4", 600.0),
            Some(Exclusion::Relay)
        );
        assert_eq!(v.exclusion(ip, "VLC/3.0", 59.0), Some(Exclusion::TooShort));
        assert_eq!(v.exclusion(ip, "VLC/3.0", 60.0), None);
    }
}
