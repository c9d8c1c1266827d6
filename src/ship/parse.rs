//! Access-log lines (nginx JSON for HLS, nginx combined, Icecast) parsed into hits, and the
//! audience rules that skip what is not listening.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::domain::robots::{Robots, Verdict};

/// The log formats `airlog ship` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// nginx with the `airlog_hls` JSON log_format of deploy/nginx/hls.conf; HLS requests are
    /// grouped into listening sessions.
    NginxHls,
    /// nginx's default `combined` format; requests are grouped into sessions like HLS.
    NginxCombined,
    /// Icecast's access.log: one line per finished connection, seconds connected at the end.
    Icecast,
}

/// One request from an access log.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub time: DateTime<Utc>,
    pub ip: IpAddr,
    pub method: String,
    /// The path without its query string.
    pub path: String,
    pub status: u16,
    pub bytes: u64,
    pub user_agent: String,
    pub referer: String,
    pub range: Option<String>,
    /// Icecast: seconds the listener was connected.
    pub seconds: Option<u64>,
}

/// Parses one line in `format`; `Err` says why it is not a request line.
pub fn parse_line(format: Format, line: &str) -> Result<Hit, String> {
    let line = line.trim_end_matches(['\n', '\r']);
    if line.trim().is_empty() {
        return Err("empty line".into());
    }
    match format {
        Format::NginxHls => parse_json(line),
        Format::NginxCombined => parse_combined(line, false),
        Format::Icecast => parse_combined(line, true),
    }
}

#[derive(Deserialize)]
struct JsonLine {
    msec: Option<serde_json::Value>,
    time: Option<String>,
    ip: String,
    method: String,
    uri: String,
    status: serde_json::Value,
    bytes: serde_json::Value,
    #[serde(default)]
    ua: String,
    #[serde(default)]
    referer: String,
    #[serde(default)]
    range: String,
}

fn number(v: &serde_json::Value) -> Option<f64> {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

fn parse_json(line: &str) -> Result<Hit, String> {
    let j: JsonLine =
        serde_json::from_str(line).map_err(|e| format!("not an airlog_hls JSON line: {e}"))?;
    let time = match (j.msec.as_ref().and_then(number), j.time.as_deref()) {
        (Some(ms), _) if ms.is_finite() && ms > 0.0 && ms < 1e11 => {
            DateTime::<Utc>::from_timestamp_micros((ms * 1e6).round() as i64)
                .ok_or_else(|| format!("msec {ms} is out of range"))?
        }
        (_, Some(t)) => crate::domain::time::parse_time_str(t)?,
        _ => return Err("no time (msec or time)".into()),
    };
    Ok(Hit {
        time,
        ip: j
            .ip
            .trim()
            .parse()
            .map_err(|_| format!("{:?} is not an IP address", j.ip))?,
        method: j.method,
        path: strip_query(&j.uri),
        status: number(&j.status)
            .filter(|s| (100.0..600.0).contains(s))
            .ok_or("bad status")? as u16,
        bytes: number(&j.bytes).filter(|b| *b >= 0.0).ok_or("bad bytes")? as u64,
        user_agent: j.ua,
        referer: if j.referer == "-" {
            String::new()
        } else {
            j.referer
        },
        range: (!j.range.is_empty() && j.range != "-").then_some(j.range),
        seconds: None,
    })
}

fn strip_query(uri: &str) -> String {
    uri.split(['?', '#']).next().unwrap_or("").to_string()
}

/// A small cursor over a combined-format line.
struct Cursor<'a> {
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    fn word(&mut self) -> Option<&'a str> {
        let s = self.rest.trim_start();
        let end = s.find(' ').unwrap_or(s.len());
        let (w, r) = s.split_at(end);
        self.rest = r;
        (!w.is_empty()).then_some(w)
    }

    fn bracketed(&mut self) -> Option<&'a str> {
        let s = self.rest.trim_start().strip_prefix('[')?;
        let end = s.find(']')?;
        self.rest = &s[end + 1..];
        Some(&s[..end])
    }

    /// A double-quoted field with `\"`, `\\` and `\xHH` escapes. nginx writes every byte
    /// of a UTF-8 character as its own `\xHH`, so escapes are decoded to bytes first and the
    /// bytes to text after (invalid sequences become U+FFFD).
    fn quoted(&mut self) -> Option<String> {
        let s = self.rest.trim_start().strip_prefix('"')?;
        let mut out: Vec<u8> = Vec::new();
        let mut chars = s.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'x')) => {
                        let hex: String = chars.by_ref().take(2).map(|(_, c)| c).collect();
                        out.push(u8::from_str_radix(&hex, 16).unwrap_or(b'?'));
                    }
                    Some((_, e)) => out.extend_from_slice(e.encode_utf8(&mut [0; 4]).as_bytes()),
                    None => return None,
                },
                '"' => {
                    self.rest = &s[i + 1..];
                    return Some(String::from_utf8_lossy(&out).into_owned());
                }
                c => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            }
        }
        None
    }
}

fn parse_combined(line: &str, icecast: bool) -> Result<Hit, String> {
    let mut c = Cursor { rest: line };
    let ip = c.word().ok_or("no address")?;
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| format!("{ip:?} is not an IP address"))?;
    c.word().ok_or("no ident")?;
    c.word().ok_or("no user")?;
    let time = c.bracketed().ok_or("no [time]")?;
    let time = DateTime::parse_from_str(time, "%d/%b/%Y:%H:%M:%S %z")
        .map_err(|_| format!("{time:?} is not a log time"))?
        .with_timezone(&Utc);
    let request = c.quoted().ok_or("no \"request\"")?;
    let mut parts = request.split(' ');
    let method = parts
        .next()
        .filter(|m| !m.is_empty())
        .ok_or("empty request")?
        .to_string();
    let path = strip_query(parts.next().ok_or("no path in the request")?);
    let status: u16 = c
        .word()
        .and_then(|s| s.parse().ok())
        .filter(|s| (100..600).contains(s))
        .ok_or("bad status")?;
    let bytes = match c.word().ok_or("no bytes")? {
        "-" => 0,
        b => b
            .parse()
            .map_err(|_| format!("{b:?} is not a byte count"))?,
    };
    let referer = c.quoted().unwrap_or_default();
    let user_agent = c.quoted().unwrap_or_default();
    let seconds = if icecast {
        let s = c
            .word()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or("no seconds connected at the end (Icecast format)")?;
        // The start is computed from it: it must leave a representable time.
        chrono::Duration::try_seconds(s as i64)
            .filter(|_| s <= i64::MAX as u64)
            .and_then(|d| time.checked_sub_signed(d))
            .ok_or_else(|| format!("{s} seconds connected is out of range"))?;
        Some(s)
    } else {
        None
    };
    Ok(Hit {
        time,
        ip,
        method,
        path,
        status,
        bytes,
        user_agent: if user_agent == "-" {
            String::new()
        } else {
            user_agent
        },
        referer: if referer == "-" {
            String::new()
        } else {
            referer
        },
        range: None,
        seconds,
    })
}

/// Why a hit is not counted as listening (IAB-style rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Skip {
    Head,
    NotModified,
    RangeProbe,
    /// On the list of known robots and spiders.
    Bot,
    /// On the station's deny list.
    BotDenied,
    Error,
}

impl Skip {
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::Head => "head",
            Skip::NotModified => "not_modified",
            Skip::RangeProbe => "range_probe",
            Skip::Bot => "bot",
            Skip::BotDenied => "bot_denied",
            Skip::Error => "error",
        }
    }
}

/// The rules: HEAD requests, 304s, 2-byte range probes, failed requests and robots (see
/// `robots`) are not listening.
pub fn skip_reason(hit: &Hit, robots: &Robots) -> Option<Skip> {
    if hit.method.eq_ignore_ascii_case("HEAD") {
        return Some(Skip::Head);
    }
    if hit.status == 304 {
        return Some(Skip::NotModified);
    }
    let probe_range = hit
        .range
        .as_deref()
        .is_some_and(|r| matches!(r.trim(), "bytes=0-1" | "bytes=0-0"));
    if probe_range || (hit.status == 206 && hit.bytes <= 2) {
        return Some(Skip::RangeProbe);
    }
    if hit.status >= 400 {
        return Some(Skip::Error);
    }
    match robots.verdict(&hit.user_agent) {
        Verdict::Listener => None,
        Verdict::KnownRobot => Some(Skip::Bot),
        Verdict::Denied => Some(Skip::BotDenied),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_json_lines_parse() {
        let line = r#"{"time":"2024-11-05T11:16:32+00:00","msec":"1730805392.123","ip":"83.150.2.154","method":"GET","uri":"/hls/live/seg-1.ts?token=x","status":200,"bytes":123456,"ua":"VLC/3.0","referer":"","range":"","request_time":0.004}"#;
        let hit = parse_line(Format::NginxHls, line).unwrap();
        assert_eq!(hit.path, "/hls/live/seg-1.ts");
        assert_eq!(hit.time.timestamp_millis(), 1_730_805_392_123);
        assert_eq!(hit.bytes, 123456);
        assert_eq!(hit.range, None);
    }

    #[test]
    fn combined_and_icecast_lines_parse() {
        let line = r#"83.150.2.154 - - [05/Nov/2024:11:16:32 +0100] "GET /live.mp3?x=1 HTTP/1.1" 200 12345 "-" "Mozilla/5.0 (X11; \"q\")""#;
        let hit = parse_line(Format::NginxCombined, line).unwrap();
        assert_eq!(hit.time.to_rfc3339(), "2024-11-05T10:16:32+00:00");
        assert_eq!(hit.path, "/live.mp3");
        assert_eq!(hit.user_agent, "Mozilla/5.0 (X11; \"q\")");
        assert_eq!(hit.referer, "");
        let ice = format!("{line} 3600");
        assert_eq!(
            parse_line(Format::Icecast, &ice).unwrap().seconds,
            Some(3600)
        );
        assert!(parse_line(Format::Icecast, line)
            .unwrap_err()
            .contains("seconds connected"));
        assert!(parse_line(Format::NginxCombined, "garbage").is_err());
    }

    #[test]
    fn audience_rules_skip_what_is_not_listening() {
        let bots = Robots::default();
        let base = parse_line(Format::NginxCombined, r#"1.2.3.4 - - [05/Nov/2024:11:16:32 +0000] "GET /live.mp3 HTTP/1.1" 200 99999 "-" "VLC/3.0.18 LibVLC/3.0.18""#).unwrap();
        assert_eq!(skip_reason(&base, &bots), None);
        assert_eq!(
            skip_reason(
                &Hit {
                    method: "HEAD".into(),
                    ..base.clone()
                },
                &bots
            ),
            Some(Skip::Head)
        );
        assert_eq!(
            skip_reason(
                &Hit {
                    status: 304,
                    ..base.clone()
                },
                &bots
            ),
            Some(Skip::NotModified)
        );
        assert_eq!(
            skip_reason(
                &Hit {
                    status: 206,
                    bytes: 2,
                    ..base.clone()
                },
                &bots
            ),
            Some(Skip::RangeProbe)
        );
        assert_eq!(
            skip_reason(
                &Hit {
                    range: Some("bytes=0-1".into()),
                    ..base.clone()
                },
                &bots
            ),
            Some(Skip::RangeProbe)
        );
        assert_eq!(
            skip_reason(
                &Hit {
                    status: 404,
                    ..base.clone()
                },
                &bots
            ),
            Some(Skip::Error)
        );
        let bot = Hit {
            user_agent: "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
                .into(),
            ..base
        };
        assert_eq!(skip_reason(&bot, &bots), Some(Skip::Bot));
    }
}
