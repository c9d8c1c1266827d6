//! The Liquidsoap server protocol, without I/O: where a reply ends, `key="value"` metadata,
//! `--- N ---` blocks, rid lists, numbers and errors. Unit-tested on recorded replies.

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// If `buf` holds a whole reply (lines up to a line `END`), returns its length in bytes
/// including the END line, and the reply text without it. Text is decoded only here, on whole
/// replies, so a character split across two reads is never mangled.
pub fn take_reply(buf: &[u8]) -> Option<(usize, String)> {
    let mut start = 0;
    while start <= buf.len() {
        let rest = &buf[start..];
        let nl = rest.iter().position(|b| *b == b'\n')?;
        let line = &rest[..nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line == b"END" {
            let body = &buf[..start];
            let text = String::from_utf8_lossy(body);
            let text = text.strip_suffix('\n').unwrap_or(&text);
            let text = text.strip_suffix('\r').unwrap_or(text);
            return Some((start + nl + 1, text.replace("\r\n", "\n")));
        }
        start += nl + 1;
    }
    None
}

/// What a command answered when it did not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerError {
    UnknownCommand,
    NoSuchRequest,
    Other(String),
}

/// Recognises the server's error replies.
pub fn error_of(reply: &str) -> Option<ServerError> {
    let first = reply.lines().next().unwrap_or("").trim();
    if first.starts_with("ERROR: unknown command") {
        Some(ServerError::UnknownCommand)
    } else if first == "No such request." {
        Some(ServerError::NoSuchRequest)
    } else {
        first
            .strip_prefix("ERROR:")
            .map(|msg| ServerError::Other(msg.trim().to_string()))
    }
}

/// Request ids from `request.on_air`, `request.alive`, `<queue>.queue` (space separated).
pub fn parse_rids(reply: &str) -> Vec<u64> {
    reply
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect()
}

/// A float reply such as `<output>.remaining`.
pub fn parse_float(reply: &str) -> Option<f64> {
    reply.trim().parse::<f64>().ok().filter(|f| f.is_finite())
}

/// `uptime` (`0d 00h 01m 05s`) in seconds.
pub fn parse_uptime(reply: &str) -> Option<u64> {
    let mut total = 0u64;
    let mut any = false;
    for part in reply.split_whitespace() {
        let (n, unit) = part.split_at(part.find(|c: char| !c.is_ascii_digit())?);
        let n: u64 = n.parse().ok()?;
        total += n * match unit {
            "d" => 86_400,
            "h" => 3_600,
            "m" => 60,
            "s" => 1,
            _ => return None,
        };
        any = true;
    }
    any.then_some(total)
}

/// Metadata as Liquidsoap lists it: ordered pairs, empty values kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata(pub Vec<(String, String)>);

impl Metadata {
    /// The value of `key` (the last one if repeated), if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key` unless absent or empty.
    pub fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }
}

/// Parses `key="value"` lines; `\"` and `\\` inside values are unescaped; lines that are not
/// pairs are skipped.
pub fn parse_metadata(reply: &str) -> Metadata {
    let mut pairs = Vec::new();
    for line in reply.lines() {
        let Some((key, rest)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty() || key.starts_with("---") {
            continue;
        }
        let rest = rest.trim_end();
        let value = match rest.strip_prefix('"') {
            Some(quoted) => unescape(quoted.strip_suffix('"').unwrap_or(quoted)),
            None => rest.to_string(),
        };
        pairs.push((key.to_string(), value));
    }
    Metadata(pairs)
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `<output>.metadata`: blocks introduced by `--- N ---` (1 is the newest), newest first.
pub fn parse_metadata_blocks(reply: &str) -> Vec<(u32, Metadata)> {
    let mut blocks: Vec<(u32, String)> = Vec::new();
    for line in reply.lines() {
        let trimmed = line.trim();
        if let Some(n) = trimmed
            .strip_prefix("---")
            .and_then(|r| r.strip_suffix("---"))
        {
            if let Ok(n) = n.trim().parse() {
                blocks.push((n, String::new()));
                continue;
            }
        }
        if let Some((_, text)) = blocks.last_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    let mut parsed: Vec<(u32, Metadata)> = blocks
        .into_iter()
        .map(|(n, t)| (n, parse_metadata(&t)))
        .collect();
    parsed.sort_by_key(|(n, _)| *n);
    parsed
}

/// What is on air, read from a request's metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct OnAir {
    pub rid: Option<u64>,
    /// The file or URI playing.
    pub uri: String,
    /// The id of the source that produced the request.
    pub source: String,
    /// When it went on air.
    pub air_time: DateTime<Utc>,
    /// How `air_time` was found: `on_air_timestamp`, `on_air` (local time) or `poll`.
    pub air_time_from: &'static str,
    pub title: Option<String>,
    pub artist: Option<String>,
    /// When this emission reached the output, as the shipped script reports it
    /// (`airlog_on_air_ms`, Liquidsoap's `time()` in milliseconds); absent with other scripts.
    pub reported_at: Option<DateTime<Utc>>,
    /// The push that queued this request (the `airlog_push` annotation airlog adds).
    pub push_id: Option<i64>,
    pub metadata: Metadata,
}

impl OnAir {
    /// Names the Liquidsoap request (`rid@on-air time`): rids restart from 1 with Liquidsoap,
    /// the on-air time of a request never changes, so together they name one play.
    pub fn request_key(&self) -> Option<String> {
        let rid = self.rid?;
        (self.air_time_from != "poll")
            .then(|| format!("{rid}@{}", self.air_time.timestamp_millis()))
    }
}

/// Reads the on-air facts from request metadata. The air time is `on_air_timestamp` when
/// present, else `on_air` read in the station's zone (an ambiguous local time takes the
/// instant nearest before the poll, never one an hour off), else the poll time.
pub fn on_air(metadata: Metadata, tz: Tz, polled_at: DateTime<Utc>) -> Option<OnAir> {
    let uri = metadata
        .non_empty("filename")
        .or_else(|| metadata.non_empty("initial_uri"))?
        .to_string();
    let rid = metadata.get("rid").and_then(|r| r.trim().parse().ok());
    let source = metadata.get("source").unwrap_or("").to_string();
    let from_timestamp = metadata
        .non_empty("on_air_timestamp")
        .and_then(|t| t.trim().parse::<f64>().ok())
        .filter(|t| t.is_finite() && *t > 0.0)
        .and_then(|t| DateTime::<Utc>::from_timestamp_micros((t * 1e6).round() as i64));
    let (air_time, air_time_from) = match from_timestamp {
        Some(t) => (t, "on_air_timestamp"),
        None => match metadata
            .non_empty("on_air")
            .and_then(|s| local_air_time(s, tz, polled_at))
        {
            Some(t) => (t, "on_air"),
            None => (polled_at, "poll"),
        },
    };
    Some(OnAir {
        rid,
        uri,
        source,
        air_time,
        air_time_from,
        title: metadata.non_empty("title").map(str::to_string),
        artist: metadata.non_empty("artist").map(str::to_string),
        reported_at: metadata
            .non_empty("airlog_on_air_ms")
            .and_then(|t| t.trim().parse::<i64>().ok())
            .and_then(DateTime::<Utc>::from_timestamp_millis),
        push_id: metadata
            .non_empty("airlog_push")
            .and_then(|p| p.trim().parse().ok()),
        metadata,
    })
}

fn local_air_time(s: &str, tz: Tz, polled_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(s.trim(), "%Y/%m/%d %H:%M:%S").ok()?;
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(a, b) => {
            let (a, b) = (a.with_timezone(&Utc), b.with_timezone(&Utc));
            // Something on air started before it was polled: the latest candidate not after
            // the poll is the one; if both are after (clock skew), the earlier.
            [b, a]
                .into_iter()
                .find(|t| *t <= polled_at)
                .or(Some(a.min(b)))
        }
        LocalResult::None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const METADATA: &str = "rid=\"39\"\r\non_air=\"2026/11/22 02:28:18\"\r\non_air_timestamp=\"1795314498.00\"\r\n\
status=\"playing\"\r\ninitial_uri=\"/srv/a.ogg\"\r\nfilename=\"/srv/a.ogg\"\r\nsource=\"airlog_queue\"\r\n\
temporary=\"false\"\r\ntitle=\"Say \\\"hi\\\"\"\r\nartist=\"\"\r\ncomment=\"x=y\"\r\nEND\r\n";

    #[test]
    fn replies_end_at_the_end_line_whatever_the_line_endings() {
        assert_eq!(
            take_reply(b"39\r\nEND\r\nrest"),
            Some((9, "39".to_string()))
        );
        assert_eq!(take_reply(b"END\n"), Some((4, String::new())));
        assert_eq!(take_reply(b"a\nb\nEND\n"), Some((8, "a\nb".to_string())));
        assert_eq!(take_reply(b"39\r\nEN"), None);
        assert_eq!(take_reply(b"BACKEND\n"), None);
        // A multi-byte character split across reads is decoded only once the reply is whole.
        let text = "titre=\"Caf\u{e9}\"\nEND\n".as_bytes();
        assert_eq!(take_reply(&text[..10]), None);
        assert_eq!(take_reply(text).unwrap().1, "titre=\"Caf\u{e9}\"");
    }

    #[test]
    fn metadata_keeps_empty_values_and_unescapes_quotes() {
        let (_, text) = take_reply(METADATA.as_bytes()).unwrap();
        let m = parse_metadata(&text);
        assert_eq!(m.get("title"), Some("Say \"hi\""));
        assert_eq!(m.get("artist"), Some(""));
        assert_eq!(m.non_empty("artist"), None);
        assert_eq!(m.get("comment"), Some("x=y"));
        assert_eq!(m.get("source"), Some("airlog_queue"));
    }

    #[test]
    fn on_air_prefers_the_timestamp_then_local_time_then_the_poll() {
        let (_, text) = take_reply(METADATA.as_bytes()).unwrap();
        let polled = DateTime::from_timestamp(1_795_314_500, 0).unwrap();
        let a = on_air(parse_metadata(&text), chrono_tz::UTC, polled).unwrap();
        assert_eq!(a.air_time.timestamp(), 1_795_314_498);
        assert_eq!(a.air_time_from, "on_air_timestamp");
        assert_eq!(a.uri, "/srv/a.ogg");
        assert_eq!(a.rid, Some(39));

        let local = parse_metadata("on_air=\"2024/10/27 02:30:00\"\nfilename=\"/a\"");
        // 02:30 happens twice in Zurich that night; polled at 01:00Z (the second 02:00 CET) the
        // first 02:30 (00:30Z) is the latest one before the poll.
        let polled = DateTime::parse_from_rfc3339("2024-10-27T01:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let a = on_air(local.clone(), chrono_tz::Europe::Zurich, polled).unwrap();
        assert_eq!(a.air_time.to_rfc3339(), "2024-10-27T00:30:00+00:00");
        let polled = DateTime::parse_from_rfc3339("2024-10-27T01:40:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let a = on_air(local, chrono_tz::Europe::Zurich, polled).unwrap();
        assert_eq!(a.air_time.to_rfc3339(), "2024-10-27T01:30:00+00:00");
        assert_eq!(a.air_time_from, "on_air");

        let none = parse_metadata("filename=\"/a\"\non_air=\"\"");
        assert_eq!(
            on_air(none, chrono_tz::UTC, polled).unwrap().air_time_from,
            "poll"
        );
        assert!(on_air(parse_metadata("rid=\"1\""), chrono_tz::UTC, polled).is_none());
    }

    #[test]
    fn metadata_blocks_and_lists() {
        let reply = "--- 2 ---\ntitle=\"old\"\n--- 1 ---\ntitle=\"new\"\nfilename=\"/b\"";
        let blocks = parse_metadata_blocks(reply);
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].0, 1);
        assert_eq!(blocks[0].1.get("title"), Some("new"));
        assert_eq!(parse_rids("3 4 12"), vec![3, 4, 12]);
        assert_eq!(parse_rids(""), Vec::<u64>::new());
        assert_eq!(parse_float("12.5"), Some(12.5));
        assert_eq!(parse_uptime("0d 00h 01m 05s"), Some(65));
        assert_eq!(parse_uptime("2d 01h 00m 00s"), Some(2 * 86_400 + 3_600));
        assert_eq!(parse_uptime("soon"), None);
        assert_eq!(
            error_of("ERROR: unknown command, type \"help\" to get a list of commands."),
            Some(ServerError::UnknownCommand)
        );
        assert_eq!(
            error_of("No such request."),
            Some(ServerError::NoSuchRequest)
        );
        assert_eq!(error_of("39"), None);
    }
}
