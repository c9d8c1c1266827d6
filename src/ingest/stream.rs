//! Stream events (one listener connection) as shippers post them, checked field by field
//! into the domain's `StreamEvent`.

use std::borrow::Cow;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::domain::stream_event::{device_key, Origin, StreamEvent};
use crate::domain::time::{parse_time_str, parse_unix_float, parse_unix_int, ACCEPTED};
use crate::domain::FieldError;

/// Most events one request may carry.
pub const MAX_BATCH: usize = 10_000;
/// Longest text accepted in `path`, `user_agent` and `referer`.
const MAX_TEXT: usize = 8192;

/// How far `seconds_connected` may stray from `time_end - time_start`: shippers round, and
/// nginx logs whole seconds.
fn tolerance(duration: f64) -> f64 {
    (duration * 0.01).max(2.0)
}

/// Why a batch was refused.
#[derive(Debug)]
pub enum BatchError {
    /// The body is not a JSON array of objects at all.
    Body(String),
    /// Items with problems: every problem of every item, so a shipper can fix its batch in one
    /// round.
    Items(Vec<FieldError>),
    /// More items than one request may carry.
    TooMany(usize),
}

/// Parses and checks a request body (a JSON array of events) straight from its bytes: fields
/// are read into borrowed scalars, not a `serde_json::Value` tree, because this is the hottest
/// path of airlog (a log shipper posts thousands of events a second).
pub fn parse_batch(body: &[u8]) -> Result<Vec<StreamEvent>, BatchError> {
    let items: Vec<Item<'_>> = serde_json::from_slice(body).map_err(|e| {
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        if e.is_data() && first != Some(&b'[') {
            BatchError::Body("the body must be a JSON array of stream events".into())
        } else {
            BatchError::Body(format!("the request body is not valid: {e}"))
        }
    })?;
    if items.len() > MAX_BATCH {
        return Err(BatchError::TooMany(items.len()));
    }
    let mut events = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        match item {
            Item::Event(raw) => match check_event(*raw) {
                Ok(event) => events.push(event),
                Err(problems) => errors.extend(
                    problems
                        .into_iter()
                        .map(|(field, message)| FieldError::at(index, field, message)),
                ),
            },
            Item::NotObject => errors.push(FieldError::at(index, "", "must be a JSON object")),
        }
    }
    if errors.is_empty() {
        Ok(events)
    } else {
        Err(BatchError::Items(errors))
    }
}

/// One scalar of an event as it came, borrowed from the body where it has no escapes.
#[derive(Debug)]
enum Raw<'a> {
    Str(Cow<'a, str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// An object or an array, where a scalar was expected.
    Nested,
}

impl std::fmt::Display for Raw<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Raw::Str(s) => write!(f, "{s:?}"),
            Raw::Int(n) => write!(f, "{n}"),
            Raw::Float(x) => write!(f, "{x}"),
            Raw::Bool(b) => write!(f, "{b}"),
            Raw::Nested => f.write_str("an object or array"),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Raw<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Raw<'a>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Raw<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Raw<'de>, E> {
                Ok(Raw::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Raw<'de>, E> {
                Ok(Raw::Str(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Raw<'de>, E> {
                Ok(Raw::Str(Cow::Owned(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Raw<'de>, E> {
                Ok(Raw::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Raw<'de>, E> {
                Ok(i64::try_from(v).map_or(Raw::Float(v as f64), Raw::Int))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Raw<'de>, E> {
                Ok(Raw::Float(v))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Raw<'de>, E> {
                Ok(Raw::Bool(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Raw::Nested)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Raw::Nested)
            }
        }
        d.deserialize_any(V)
    }
}

/// An event's fields by their snake_case names or camelCase twins; others are ignored, and
/// `null` counts as absent.
#[derive(Debug, Deserialize)]
struct RawEvent<'a> {
    #[serde(borrow)]
    origin: Option<Raw<'a>>,
    #[serde(borrow)]
    ip: Option<Raw<'a>>,
    #[serde(borrow)]
    method: Option<Raw<'a>>,
    #[serde(borrow)]
    path: Option<Raw<'a>>,
    #[serde(borrow)]
    status: Option<Raw<'a>>,
    #[serde(borrow, alias = "bytesSent")]
    bytes_sent: Option<Raw<'a>>,
    #[serde(borrow)]
    referer: Option<Raw<'a>>,
    #[serde(borrow, alias = "userAgent")]
    user_agent: Option<Raw<'a>>,
    #[serde(borrow, alias = "secondsConnected")]
    seconds_connected: Option<Raw<'a>>,
    #[serde(borrow, alias = "timeStart")]
    time_start: Option<Raw<'a>>,
    #[serde(borrow, alias = "timeEnd")]
    time_end: Option<Raw<'a>>,
}

/// An item of the batch: an event, or something that is not an object.
enum Item<'a> {
    Event(Box<RawEvent<'a>>),
    NotObject,
}

impl<'de: 'a, 'a> Deserialize<'de> for Item<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Item<'a>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Item<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a stream event object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Item<'de>, A::Error> {
                let raw = RawEvent::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(Item::Event(Box::new(raw)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Item<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Item::NotObject)
            }
            fn visit_borrowed_str<E>(self, _: &'de str) -> Result<Item<'de>, E> {
                Ok(Item::NotObject)
            }
            fn visit_str<E>(self, _: &str) -> Result<Item<'de>, E> {
                Ok(Item::NotObject)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Item<'de>, E> {
                Ok(Item::NotObject)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Item<'de>, E> {
                Ok(Item::NotObject)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Item<'de>, E> {
                Ok(Item::NotObject)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Item<'de>, E> {
                Ok(Item::NotObject)
            }
            fn visit_unit<E>(self) -> Result<Item<'de>, E> {
                Ok(Item::NotObject)
            }
        }
        d.deserialize_any(V)
    }
}

type Problems = Vec<(&'static str, String)>;

fn text<'a>(
    value: Option<Raw<'a>>,
    name: &'static str,
    required: bool,
    problems: &mut Problems,
) -> Option<Cow<'a, str>> {
    match value {
        None if required => {
            problems.push((name, "is required".into()));
            None
        }
        None => Some(Cow::Borrowed("")),
        Some(Raw::Str(s)) if s.len() > MAX_TEXT => {
            problems.push((
                name,
                format!("is {} bytes long; at most {MAX_TEXT} are accepted", s.len()),
            ));
            None
        }
        Some(Raw::Str(s)) => Some(s),
        Some(_) => {
            problems.push((name, "must be a string".into()));
            None
        }
    }
}

fn integer(value: Option<Raw<'_>>, name: &'static str, problems: &mut Problems) -> Option<i64> {
    let value = match value {
        None => {
            problems.push((name, "is required".into()));
            return None;
        }
        Some(v) => v,
    };
    let parsed = match &value {
        Raw::Int(n) => Some(*n),
        // Shippers built on log lines sometimes keep numbers as text.
        Raw::Str(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    if parsed.is_none() {
        problems.push((name, format!("must be a whole number, got {value}")));
    }
    parsed
}

fn time(
    value: Option<Raw<'_>>,
    name: &'static str,
    problems: &mut Problems,
) -> Option<DateTime<Utc>> {
    let parsed = match value {
        None => Err("is required".to_string()),
        Some(Raw::Str(s)) => parse_time_str(&s),
        Some(Raw::Int(n)) => parse_unix_int(n),
        Some(Raw::Float(x)) => parse_unix_float(x),
        Some(_) => Err(format!("must be a string or a number; {ACCEPTED}")),
    };
    parsed.map_err(|m| problems.push((name, m))).ok()
}

fn check_event(raw: RawEvent<'_>) -> Result<StreamEvent, Problems> {
    let mut problems: Problems = Vec::new();

    let origin = match raw.origin {
        Some(Raw::Str(s)) => Origin::parse(&s).or_else(|| {
            problems.push((
                "origin",
                format!("{s:?} is not an origin (expected \"hls\" or \"icecast\")"),
            ));
            None
        }),
        None => {
            problems.push(("origin", "is required (\"hls\" or \"icecast\")".into()));
            None
        }
        Some(_) => {
            problems.push(("origin", "must be \"hls\" or \"icecast\"".into()));
            None
        }
    };
    let ip = text(raw.ip, "ip", true, &mut problems).and_then(|s| {
        s.trim().parse::<IpAddr>().ok().or_else(|| {
            problems.push(("ip", format!("{s:?} is not an IP address")));
            None
        })
    });
    let method = match text(raw.method, "method", false, &mut problems) {
        Some(m) if m.is_empty() => Some("GET".to_string()),
        Some(m) if m.len() <= 16 && m.bytes().all(|b| b.is_ascii_uppercase()) => {
            Some(m.into_owned())
        }
        Some(m) => {
            problems.push(("method", format!("{m:?} is not an HTTP method")));
            None
        }
        None => None,
    };
    let path = text(raw.path, "path", true, &mut problems).and_then(|p| {
        if p.starts_with('/') {
            Some(p.into_owned())
        } else {
            problems.push(("path", format!("{p:?} must start with /")));
            None
        }
    });
    let status = integer(raw.status, "status", &mut problems).and_then(|s| {
        if (100..=599).contains(&s) {
            Some(s as i32)
        } else {
            problems.push(("status", format!("{s} is not an HTTP status (100 to 599)")));
            None
        }
    });
    let bytes_sent = integer(raw.bytes_sent, "bytes_sent", &mut problems).and_then(|b| {
        if b >= 0 {
            Some(b)
        } else {
            problems.push(("bytes_sent", format!("{b} is negative")));
            None
        }
    });
    let referer = text(raw.referer, "referer", false, &mut problems);
    let user_agent = text(raw.user_agent, "user_agent", false, &mut problems);
    let time_start = time(raw.time_start, "time_start", &mut problems);
    let time_end = time(raw.time_end, "time_end", &mut problems);

    let mut seconds_connected = None;
    if let (Some(start), Some(end)) = (time_start, time_end) {
        if end < start {
            problems.push(("time_end", format!("{end} is before time_start {start}")));
        } else {
            let duration = (end - start).num_milliseconds() as f64 / 1000.0;
            seconds_connected = match raw.seconds_connected {
                None => Some(duration.round()),
                Some(v) => match match &v {
                    Raw::Int(n) => Some(*n as f64),
                    Raw::Float(x) => Some(*x),
                    Raw::Str(s) => s.trim().parse().ok(),
                    _ => None,
                } {
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
        referer: referer.unwrap().into_owned(),
        user_agent: user_agent.into_owned(),
        seconds_connected: seconds_connected.unwrap() as i32,
        time_start: time_start.unwrap(),
        time_end: time_end.unwrap(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn check_batch(items: &[Value]) -> Result<Vec<StreamEvent>, Vec<FieldError>> {
        match parse_batch(&serde_json::to_vec(items).unwrap()) {
            Ok(events) => Ok(events),
            Err(BatchError::Items(errors)) => Err(errors),
            Err(other) => panic!("{other:?}"),
        }
    }

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

    #[test]
    fn bodies_that_are_not_arrays_of_objects_are_named() {
        assert!(matches!(parse_batch(b"{}"), Err(BatchError::Body(m)) if m.contains("JSON array")));
        assert!(
            matches!(parse_batch(b"[1, "), Err(BatchError::Body(m)) if m.contains("not valid"))
        );
        let errors = check_batch(&[json!({"origin": {"x": [1]}, "ip": ["a"]})]).unwrap_err();
        assert_eq!(errors[0].field, "origin");
        assert_eq!(errors[1].field, "ip");
        assert!(errors[1].message.contains("string"));
        // Escaped text is read as well as borrowed text.
        let mut e = reference_event();
        e["user_agent"] = json!("Say \"hi\" \u{e9}");
        assert_eq!(
            check_batch(&[e]).unwrap()[0].user_agent,
            "Say \"hi\" \u{e9}"
        );
    }

    #[test]
    fn the_shippers_wire_events_parse_to_what_they_say() {
        use crate::domain::stream_event::WireStreamEvent;
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let sent = [
            WireStreamEvent {
                origin: Origin::Hls,
                ip: "2001:db8::7".parse().unwrap(),
                method: "GET".into(),
                path: "/hls/live/index.m3u8".into(),
                status: 200,
                bytes_sent: 123_456,
                user_agent: "AppleCoreMedia/1.0 \"quoted\" \u{e9}".into(),
                referer: "https://radio.example/".into(),
                time_start: t("2024-11-05T11:15:32.123456Z"),
                time_end: t("2024-11-05T11:25:32.623456Z"),
                seconds_connected: 601,
            },
            WireStreamEvent {
                origin: Origin::Icecast,
                ip: "83.150.2.154".parse().unwrap(),
                method: "SOURCE".into(),
                path: "/128.mp3".into(),
                status: 404,
                bytes_sent: 0,
                user_agent: String::new(),
                referer: String::new(),
                time_start: t("2024-11-05T11:15:32Z"),
                time_end: t("2024-11-05T11:15:32Z"),
                seconds_connected: 0,
            },
        ];
        let body = serde_json::to_vec(&sent).unwrap();
        let got = parse_batch(&body).unwrap();
        let want: Vec<StreamEvent> = sent
            .iter()
            .map(|w| StreamEvent {
                origin: w.origin,
                ip: w.ip,
                method: w.method.clone(),
                path: w.path.clone(),
                status: i32::from(w.status),
                bytes_sent: w.bytes_sent as i64,
                referer: w.referer.clone(),
                user_agent: w.user_agent.clone(),
                seconds_connected: w.seconds_connected as i32,
                time_start: w.time_start,
                time_end: w.time_end,
                device_key: device_key(&w.ip, &w.user_agent),
            })
            .collect();
        assert_eq!(got, want);
    }
}
