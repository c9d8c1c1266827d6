//! Stream events (one listener connection) as shippers post them, checked field by field.

use std::net::IpAddr;

use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sha1::{Digest, Sha1};

use super::time::parse_event_time;
use crate::error::FieldError;

/// Most events one request may carry.
pub const MAX_BATCH: usize = 10_000;
/// Longest text accepted in `path`, `user_agent` and `referer`.
const MAX_TEXT: usize = 8192;

/// Where a stream event comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Hls,
    Icecast,
}

impl Origin {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Hls => "hls",
            Origin::Icecast => "icecast",
        }
    }

    /// Parses a stored or posted name.
    pub fn parse(s: &str) -> Option<Origin> {
        match s {
            "hls" => Some(Origin::Hls),
            "icecast" => Some(Origin::Icecast),
            _ => None,
        }
    }
}

/// A checked stream event, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamEvent {
    pub origin: Origin,
    pub ip: IpAddr,
    pub method: String,
    pub path: String,
    pub status: i32,
    pub bytes_sent: i64,
    pub referer: String,
    pub user_agent: String,
    pub seconds_connected: i32,
    pub time_start: DateTime<Utc>,
    pub time_end: DateTime<Utc>,
    pub device_key: String,
}

/// base64(ip) + "-" + the first 10 hex characters of sha1(user agent), as the system airlog
/// replaces computes it (its session SQL decodes the first part back to the address).
pub fn device_key(ip: &IpAddr, user_agent: &str) -> String {
    let ip = base64::engine::general_purpose::STANDARD.encode(ip.to_string());
    let ua = hex::encode(Sha1::digest(user_agent.as_bytes()));
    format!("{ip}-{}", &ua[..10])
}

/// How far `seconds_connected` may stray from `time_end - time_start`: shippers round, and
/// nginx logs whole seconds.
fn tolerance(duration: f64) -> f64 {
    (duration * 0.01).max(2.0)
}

/// Checks every item of a batch. All problems of all items are returned together, so a shipper
/// can fix its batch in one round.
pub fn check_batch(items: &[Value]) -> Result<Vec<StreamEvent>, Vec<FieldError>> {
    let mut events = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match item {
            Value::Object(obj) => match check_event(obj) {
                Ok(event) => events.push(event),
                Err(problems) => errors.extend(
                    problems
                        .into_iter()
                        .map(|(field, message)| FieldError::at(index, field, message)),
                ),
            },
            _ => errors.push(FieldError::at(index, "", "must be a JSON object")),
        }
    }
    if errors.is_empty() {
        Ok(events)
    } else {
        Err(errors)
    }
}

/// Finds a field by its snake_case name or its camelCase twin.
fn field<'a>(obj: &'a Map<String, Value>, snake: &str) -> Option<&'a Value> {
    if let Some(v) = obj.get(snake) {
        return Some(v);
    }
    if !snake.contains('_') {
        return None;
    }
    let mut camel = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            camel.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            camel.push(c);
        }
    }
    obj.get(&camel)
}

type Problems = Vec<(&'static str, String)>;

fn text(
    obj: &Map<String, Value>,
    name: &'static str,
    required: bool,
    problems: &mut Problems,
) -> Option<String> {
    match field(obj, name) {
        None | Some(Value::Null) if required => {
            problems.push((name, "is required".into()));
            None
        }
        None | Some(Value::Null) => Some(String::new()),
        Some(Value::String(s)) if s.len() > MAX_TEXT => {
            problems.push((
                name,
                format!("is {} bytes long; at most {MAX_TEXT} are accepted", s.len()),
            ));
            None
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            problems.push((name, "must be a string".into()));
            None
        }
    }
}

fn integer(obj: &Map<String, Value>, name: &'static str, problems: &mut Problems) -> Option<i64> {
    let value = match field(obj, name) {
        None | Some(Value::Null) => {
            problems.push((name, "is required".into()));
            return None;
        }
        Some(v) => v,
    };
    let parsed = match value {
        Value::Number(n) => n.as_i64(),
        // Shippers built on log lines sometimes keep numbers as text.
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    if parsed.is_none() {
        problems.push((name, format!("must be a whole number, got {value}")));
    }
    parsed
}

fn check_event(obj: &Map<String, Value>) -> Result<StreamEvent, Problems> {
    let mut problems: Problems = Vec::new();

    let origin = match field(obj, "origin") {
        Some(Value::String(s)) => Origin::parse(s).or_else(|| {
            problems.push((
                "origin",
                format!("{s:?} is not an origin (expected \"hls\" or \"icecast\")"),
            ));
            None
        }),
        None | Some(Value::Null) => {
            problems.push(("origin", "is required (\"hls\" or \"icecast\")".into()));
            None
        }
        Some(_) => {
            problems.push(("origin", "must be \"hls\" or \"icecast\"".into()));
            None
        }
    };
    let ip = text(obj, "ip", true, &mut problems).and_then(|s| {
        s.trim().parse::<IpAddr>().ok().or_else(|| {
            problems.push(("ip", format!("{s:?} is not an IP address")));
            None
        })
    });
    let method = match text(obj, "method", false, &mut problems) {
        Some(m) if m.is_empty() => Some("GET".to_string()),
        Some(m) if m.len() <= 16 && m.bytes().all(|b| b.is_ascii_uppercase()) => Some(m),
        Some(m) => {
            problems.push(("method", format!("{m:?} is not an HTTP method")));
            None
        }
        None => None,
    };
    let path = text(obj, "path", true, &mut problems).and_then(|p| {
        if p.starts_with('/') {
            Some(p)
        } else {
            problems.push(("path", format!("{p:?} must start with /")));
            None
        }
    });
    let status = integer(obj, "status", &mut problems).and_then(|s| {
        if (100..=599).contains(&s) {
            Some(s as i32)
        } else {
            problems.push(("status", format!("{s} is not an HTTP status (100 to 599)")));
            None
        }
    });
    let bytes_sent = integer(obj, "bytes_sent", &mut problems).and_then(|b| {
        if b >= 0 {
            Some(b)
        } else {
            problems.push(("bytes_sent", format!("{b} is negative")));
            None
        }
    });
    let referer = text(obj, "referer", false, &mut problems);
    let user_agent = text(obj, "user_agent", false, &mut problems);
    let mut time = |name: &'static str| match field(obj, name) {
        None => {
            problems.push((name, "is required".into()));
            None
        }
        Some(v) => parse_event_time(v)
            .map_err(|m| problems.push((name, m)))
            .ok(),
    };
    let time_start = time("time_start");
    let time_end = time("time_end");

    let mut seconds_connected = None;
    if let (Some(start), Some(end)) = (time_start, time_end) {
        if end < start {
            problems.push(("time_end", format!("{end} is before time_start {start}")));
        } else {
            let duration = (end - start).num_milliseconds() as f64 / 1000.0;
            seconds_connected = match field(obj, "seconds_connected") {
                None | Some(Value::Null) => Some(duration.round()),
                Some(v) => match v
                    .as_f64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                {
                    Some(s) if s < 0.0 || !s.is_finite() => {
                        problems.push(("seconds_connected", format!("{s} is negative")));
                        None
                    }
                    Some(s) if (s - duration).abs() > tolerance(duration) => {
                        problems.push((
                            "seconds_connected",
                            format!("{s} does not match time_end - time_start = {duration} s"),
                        ));
                        None
                    }
                    Some(s) => Some(s.round()),
                    None => {
                        problems.push(("seconds_connected", format!("must be a number, got {v}")));
                        None
                    }
                },
            };
            if let Some(s) = seconds_connected {
                if s > f64::from(i32::MAX) {
                    problems.push(("seconds_connected", format!("{s} is too large")));
                }
            }
        }
    }

    if !problems.is_empty() {
        return Err(problems);
    }
    // Every field is Some here: each None pushed a problem above.
    let (ip, user_agent) = (ip.unwrap(), user_agent.unwrap());
    Ok(StreamEvent {
        device_key: device_key(&ip, &user_agent),
        origin: origin.unwrap(),
        ip,
        method: method.unwrap(),
        path: path.unwrap(),
        status: status.unwrap(),
        bytes_sent: bytes_sent.unwrap(),
        referer: referer.unwrap(),
        user_agent,
        seconds_connected: seconds_connected.unwrap() as i32,
        time_start: time_start.unwrap(),
        time_end: time_end.unwrap(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reference_event() -> Value {
        json!({
            "origin": "hls",
            "ip": "83.150.2.154",
            "method": "GET",
            "path": "/320.mp3",
            "status": 200,
            "bytes_sent": 12345,
            "user_agent": "Linux UPnP/1.0 Sonos/57.21-51190 (ZPS12) Nullsoft Winamp3 version 3.0 (compatible)",
            "referer": "",
            "time_start": "2024-11-05 11:15:32+00:00",
            "time_end": "2024-11-05 11:16:32+00:00",
            "seconds_connected": 60,
        })
    }

    #[test]
    fn the_reference_client_event_is_accepted() {
        let events = check_batch(&[reference_event()]).unwrap();
        let e = &events[0];
        assert_eq!(e.origin, Origin::Hls);
        assert_eq!(e.seconds_connected, 60);
        assert_eq!(e.bytes_sent, 12345);
        assert!(
            e.device_key.starts_with("ODMuMTUwLjIuMTU0-"),
            "{}",
            e.device_key
        );
        assert_eq!(e.device_key.len(), "ODMuMTUwLjIuMTU0-".len() + 10);
    }

    #[test]
    fn camel_case_keys_are_accepted_and_seconds_are_derived() {
        let events = check_batch(&[json!({
            "origin": "icecast", "ip": "2001:db8::1", "path": "/live", "status": 200,
            "bytesSent": "99", "userAgent": "VLC", "timeStart": 1730805332, "timeEnd": 1730805392.4,
        })])
        .unwrap();
        assert_eq!(events[0].seconds_connected, 60);
        assert_eq!(events[0].bytes_sent, 99);
        assert_eq!(events[0].method, "GET");
        assert_eq!(events[0].user_agent, "VLC");
    }

    #[test]
    fn each_invalid_field_is_named_with_its_index() {
        let mut bad = reference_event();
        let obj = bad.as_object_mut().unwrap();
        obj.insert("origin".into(), json!("rtmp"));
        obj.insert("ip".into(), json!("not-an-ip"));
        obj.insert("status".into(), json!(700));
        obj.insert("bytes_sent".into(), json!(-1));
        obj.insert("path".into(), json!("320.mp3"));
        obj.insert("method".into(), json!("get it"));
        let errors = check_batch(&[reference_event(), bad, json!(3)]).unwrap_err();
        let fields: Vec<(Option<usize>, &str)> =
            errors.iter().map(|e| (e.index, e.field.as_str())).collect();
        assert_eq!(
            fields,
            vec![
                (Some(1), "origin"),
                (Some(1), "ip"),
                (Some(1), "method"),
                (Some(1), "path"),
                (Some(1), "status"),
                (Some(1), "bytes_sent"),
                (Some(2), ""),
            ]
        );
    }

    #[test]
    fn time_rules_are_enforced() {
        let mut e = reference_event();
        e["time_end"] = json!("2024-11-05 11:14:32+00:00");
        let errors = check_batch(&[e]).unwrap_err();
        assert_eq!(errors[0].field, "time_end");

        let mut e = reference_event();
        e["seconds_connected"] = json!(600);
        let errors = check_batch(&[e]).unwrap_err();
        assert_eq!(errors[0].field, "seconds_connected");
        assert!(errors[0].message.contains("does not match"));

        let mut e = reference_event();
        e["seconds_connected"] = json!(61.5);
        assert!(check_batch(&[e]).is_ok(), "within tolerance");

        let mut e = reference_event();
        e["time_start"] = json!("2024-11-05 11:15:32");
        let errors = check_batch(&[e]).unwrap_err();
        assert_eq!(errors[0].field, "time_start");
        assert!(errors[0].message.contains("no UTC offset"));
    }
}
