//! Who is a robot, for the shipper and the audience figures alike: the IAB/ABC approach of a
//! list of known robots and spiders, with an allow list (listening apps the generic list
//! mistakes for robots) and a deny list, both extendable by the station. Each rule's drops are counted apart.
//!
//! The known-robot list (the `isbot` crate's) also names HTTP libraries such as okhttp, which
//! is what Android players (ExoPlayer) are built on: without the allow list, most Android
//! listeners would be dropped as robots.

/// Listening apps and media frameworks that are listeners even where a robot list matches
/// them (case-insensitive substrings of the user agent).
pub const LISTENING_APPS: &[&str] = &[
    "okhttp",
    "exoplayer",
    "applecoremedia",
    "vlc",
    "lavf",
    "stagefright",
    "dalvik",
    "nsplayer",
    "winamp",
    "itunes",
    "foobar2000",
    "mpv",
    "mplayer",
    "gstreamer",
    "audacious",
    "radiodroid",
];

/// What the rules say about one user agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A listener (no rule matched, or the allow list did).
    Listener,
    /// Matched the station's deny list.
    Denied,
    /// Matched the list of known robots and spiders.
    KnownRobot,
}

/// The robot rules of one shipper.
pub struct Robots {
    known: isbot::Bots,
    allow: Vec<String>,
    deny: Vec<String>,
}

impl Robots {
    /// The known list, the built-in listening apps plus `allow`, and `deny` (patterns are
    /// case-insensitive substrings). The deny list wins over the allow list.
    pub fn new(allow: &[String], deny: &[String]) -> Robots {
        let lower = |v: &[String]| -> Vec<String> {
            v.iter()
                .map(|p| p.trim().to_ascii_lowercase())
                .filter(|p| !p.is_empty())
                .collect()
        };
        let mut all_allowed: Vec<String> = LISTENING_APPS.iter().map(|s| s.to_string()).collect();
        all_allowed.extend(lower(allow));
        Robots {
            known: isbot::Bots::default(),
            allow: all_allowed,
            deny: lower(deny),
        }
    }

    /// Classifies a user agent; an empty one is a listener (many players send none).
    pub fn verdict(&self, user_agent: &str) -> Verdict {
        if user_agent.is_empty() {
            return Verdict::Listener;
        }
        let ua = user_agent.to_ascii_lowercase();
        if self.deny.iter().any(|p| ua.contains(p.as_str())) {
            return Verdict::Denied;
        }
        if self.allow.iter().any(|p| ua.contains(p.as_str())) {
            return Verdict::Listener;
        }
        if self.known.is_bot(&ua) {
            return Verdict::KnownRobot;
        }
        Verdict::Listener
    }
}

impl Default for Robots {
    fn default() -> Robots {
        Robots::new(&[], &[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_apps_are_listeners_and_robots_are_not() {
        let r = Robots::default();
        for ua in [
            "okhttp/4.12.0",
            "ExoPlayerLib/2.19.1",
            "Mozilla/5.0 (Linux; Android 14) ExoPlayer okhttp/4.9.3",
            "AppleCoreMedia/1.0.0.21E236 (iPhone; U; CPU OS 17_4 like Mac OS X; en_us)",
            "VLC/3.0.20 LibVLC/3.0.20",
            "Lavf/60.16.100",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            "",
        ] {
            assert_eq!(r.verdict(ua), Verdict::Listener, "{ua}");
        }
        for ua in [
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
            "python-requests/2.31.0",
            "curl/8.5.0",
        ] {
            assert_eq!(r.verdict(ua), Verdict::KnownRobot, "{ua}");
        }
    }

    #[test]
    fn the_station_can_allow_and_deny() {
        let r = Robots::new(&["curl/".into()], &["okhttp/3".into(), "  ".into()]);
        assert_eq!(r.verdict("curl/8.5.0"), Verdict::Listener);
        assert_eq!(r.verdict("okhttp/3.14.9"), Verdict::Denied, "deny wins");
        assert_eq!(r.verdict("okhttp/4.12.0"), Verdict::Listener);
        assert_eq!(
            r.verdict("Firefox"),
            Verdict::Listener,
            "blank patterns ignored"
        );
    }
}
