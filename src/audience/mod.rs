//! Audience figures by the streaming measurement standards (AQH, Cume, TLH, TSL, AAS, peak,
//! sessions): one listener model over every source, periods in the station's time zone. Pure:
//! the database feeds it sessions, the API and the CLI print what it returns.

pub mod figures;
pub mod items;
pub mod period;
pub mod rollup;

use std::net::IpAddr;

use crate::domain::robots::{Robots, Verdict};

/// The key of a listener: its address (IPv6 cut to its /64, the part a household keeps while
/// its interface identifier rotates) and a hash of its user agent (the first 10 hex characters
/// of its SHA-1, as device keys have). Every source uses it, so the web player and the stream it
/// fetches are one listener.
pub fn listener_key(ip: IpAddr, user_agent: &str) -> String {
    use sha1::{Digest, Sha1};
    let net = match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    };
    let ua = hex::encode(&Sha1::digest(user_agent.as_bytes())[..5]);
    format!("{net}-{ua}")
}

/// The listener key of a device key of the stream-event form (base64 of the address, `-`, 10
/// hex characters of the user agent's SHA-1), as backfilled player events carry; None for any
/// other form (a browser's device key also hashes its languages).
pub fn listener_key_of_device_key(device_key: &str) -> Option<String> {
    use base64::Engine;
    let (ip, ua) = device_key.rsplit_once('-')?;
    if ua.len() != 10 || !ua.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let ip = base64::engine::general_purpose::STANDARD.decode(ip).ok()?;
    let ip: IpAddr = std::str::from_utf8(&ip).ok()?.parse().ok()?;
    let net = listener_key(ip, "");
    let net = net.rsplit_once('-')?.0;
    Some(format!("{net}-{}", ua.to_ascii_lowercase()))
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

/// Which kind of stream a session came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StreamKind {
    Icecast,
    Hls,
    Player,
}

impl StreamKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamKind::Icecast => "icecast",
            StreamKind::Hls => "hls",
            StreamKind::Player => "player",
        }
    }
}

impl std::str::FromStr for StreamKind {
    type Err = String;
    fn from_str(s: &str) -> Result<StreamKind, String> {
        match s {
            "icecast" => Ok(StreamKind::Icecast),
            "hls" => Ok(StreamKind::Hls),
            "player" => Ok(StreamKind::Player),
            other => Err(format!(
                "unknown stream kind {other:?} (expected icecast, hls or player)"
            )),
        }
    }
}

/// What a breakdown groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    Stream,
    Source,
    Station,
}

impl By {
    pub fn as_str(self) -> &'static str {
        match self {
            By::Stream => "stream",
            By::Source => "source",
            By::Station => "station",
        }
    }
}

impl std::str::FromStr for By {
    type Err = String;
    fn from_str(s: &str) -> Result<By, String> {
        match s {
            "stream" => Ok(By::Stream),
            "source" => Ok(By::Source),
            "station" => Ok(By::Station),
            other => Err(format!(
                "unknown breakdown {other:?} (expected stream, source or station)"
            )),
        }
    }
}

/// One stream connection (an Icecast connection or an HLS session) of a station's stream.
#[derive(Debug, Clone)]
pub struct StreamSession {
    pub station: String,
    pub ip: IpAddr,
    pub user_agent: String,
    pub kind: StreamKind,
    /// The station's stream it matched (mount or path prefix).
    pub stream: String,
    pub span: period::Span,
}

/// One `playing` stretch of a web player, on one of a station's player sources.
#[derive(Debug, Clone)]
pub struct PlayerPlay {
    pub station: String,
    pub user_identity: String,
    pub device_key: String,
    /// The browser's listener key; None for events stored before airlog kept it.
    pub listener_key: Option<String>,
    pub source: String,
    pub span: period::Span,
}

/// Valid listening sessions, and the sessions not counted: the rule and the session's start
/// (a period reports the excluded sessions that start in it, as it counts valid ones).
#[derive(Debug, Default)]
pub struct Assembled {
    pub sessions: Vec<figures::Listening>,
    pub excluded: Vec<(Exclusion, chrono::DateTime<chrono::Utc>)>,
}

impl Assembled {
    /// How many sessions starting in `period` each rule excluded.
    pub fn excluded_in(
        &self,
        period: period::Span,
    ) -> std::collections::BTreeMap<&'static str, u64> {
        let mut out = std::collections::BTreeMap::new();
        for (rule, start) in &self.excluded {
            if period.contains(*start) {
                *out.entry(rule.as_str()).or_default() += 1;
            }
        }
        out
    }
}

fn group_of(by: Option<By>, station: &str, kind: StreamKind, stream: &str) -> String {
    match by {
        None => String::new(),
        Some(By::Stream) => format!("{}:{stream}", kind.as_str()),
        Some(By::Source) => kind.as_str().to_string(),
        Some(By::Station) => station.to_string(),
    }
}

/// Turns what the sources recorded into valid listening sessions of one listener model.
/// A player session is a run of `playing` stretches of one (identity, device) with gaps of at
/// most `gap_s`; its listening is the stretches, its length their sum. Signed-in player sessions
/// take over the stream listening of their browser's listener key meanwhile.
pub fn assemble(
    streams: Vec<StreamSession>,
    mut plays: Vec<PlayerPlay>,
    validity: &Validity,
    gap_s: f64,
    by: Option<By>,
) -> Assembled {
    let mut out = Assembled::default();
    let exclude = |e: Exclusion, start, out: &mut Assembled| out.excluded.push((e, start));
    let mut stream_listening = Vec::with_capacity(streams.len());
    for s in streams {
        match validity.exclusion(s.ip, &s.user_agent, s.span.seconds()) {
            Some(e) => exclude(e, s.span.start, &mut out),
            None => stream_listening.push(figures::Listening {
                listener: listener_key(s.ip, &s.user_agent),
                group: group_of(by, &s.station, s.kind, &s.stream),
                span: s.span,
                starts_session: true,
            }),
        }
    }
    plays.sort_by(|a, b| {
        (&a.user_identity, &a.device_key, a.span.start).cmp(&(
            &b.user_identity,
            &b.device_key,
            b.span.start,
        ))
    });
    let mut signed_in = Vec::new();
    let mut i = 0;
    while i < plays.len() {
        let mut j = i + 1;
        let mut end = plays[i].span.end;
        while j < plays.len()
            && plays[j].user_identity == plays[i].user_identity
            && plays[j].device_key == plays[i].device_key
            && (plays[j].span.start - end).num_milliseconds() as f64 / 1000.0 <= gap_s
        {
            end = end.max(plays[j].span.end);
            j += 1;
        }
        let run = &plays[i..j];
        let seconds: f64 = run.iter().map(|p| p.span.seconds()).sum();
        if seconds < validity.min_session_s {
            exclude(Exclusion::TooShort, plays[i].span.start, &mut out);
        } else {
            let first = &run[0];
            let identity = first
                .user_identity
                .starts_with("account.user:")
                .then(|| first.user_identity.clone());
            let key = first
                .listener_key
                .clone()
                .or_else(|| listener_key_of_device_key(&first.device_key))
                .unwrap_or_else(|| first.device_key.clone());
            for (n, p) in run.iter().enumerate() {
                out.sessions.push(figures::Listening {
                    listener: identity.clone().unwrap_or_else(|| key.clone()),
                    group: group_of(by, &p.station, StreamKind::Player, &p.source),
                    span: p.span,
                    starts_session: n == 0,
                });
                if let (Some(identity), Some(key)) = (&identity, &p.listener_key) {
                    signed_in.push(SignedIn {
                        identity: identity.clone(),
                        listener: key.clone(),
                        span: p.span,
                    });
                }
            }
        }
        i = j;
    }
    out.sessions.extend(take_over(stream_listening, &signed_in));
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
        assert_eq!(a, "2001:db8:1:2::/64-312de6d46f");
        assert_ne!(a, listener_key("2001:db8:1:3::1".parse().unwrap(), "VLC"));
        assert_eq!(
            listener_key("192.0.2.1".parse().unwrap(), "VLC"),
            "192.0.2.1-312de6d46f"
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
    fn a_stream_form_device_key_gives_the_listener_key() {
        let ip: IpAddr = "2001:db8:1:2::77".parse().unwrap();
        let dk = crate::domain::stream_event::device_key(&ip, "VLC");
        assert_eq!(
            listener_key_of_device_key(&dk),
            Some(listener_key(ip, "VLC"))
        );
        assert_eq!(listener_key_of_device_key("anonymous"), None);
        assert_eq!(listener_key_of_device_key("bm9wZQ==-0123456789"), None);
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
