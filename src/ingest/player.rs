//! Player events as web players and media servers send them, checked field by field into
//! the domain's `PlayerEvent`.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::domain::player_event::{valid_device_key, PlayerEvent, Source, State};
use crate::domain::time::parse_event_time;
use crate::domain::FieldError;

/// Longest `objKey` accepted.
const MAX_KEY: usize = 256;
/// Most events one trusted request may carry.
pub const MAX_TRUSTED_BATCH: usize = 10_000;

fn get<'a>(obj: &'a Map<String, Value>, names: &[&str]) -> Option<&'a Value> {
    names
        .iter()
        .find_map(|n| obj.get(*n))
        .filter(|v| !v.is_null())
}

/// A named value (`State`, `Source`): `parse` and the list of names come from the type.
fn one_of<T: std::str::FromStr<Err = String>>(
    obj: &Map<String, Value>,
    name: &'static str,
    names: &str,
    problems: &mut Vec<(&'static str, String)>,
) -> Option<T> {
    match get(obj, &[name]) {
        Some(Value::String(s)) => s.parse().map_err(|m| problems.push((name, m))).ok(),
        Some(_) => {
            problems.push((name, format!("must be one of {names}")));
            None
        }
        None => {
            problems.push((name, format!("is required (one of {names})")));
            None
        }
    }
}

/// A browser's `ts`: milliseconds (as `Date.now()` gives) or seconds since 1970, or a time string.
fn client_ts(v: &Value) -> Result<DateTime<Utc>, String> {
    match v {
        // Whole milliseconds stay exact; a float division would lose the last digit.
        Value::Number(n) if n.as_i64().is_some_and(|ms| ms > 100_000_000_000) => {
            let ms = n.as_i64().expect("checked");
            let t = DateTime::<Utc>::from_timestamp_millis(ms)
                .ok_or_else(|| format!("{ms} is not a valid time"))?;
            parse_event_time(&serde_json::json!(t.timestamp())).map(|_| t)
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            let secs = if x > 1e11 { x / 1000.0 } else { x };
            parse_event_time(&serde_json::json!(secs))
        }
        other => parse_event_time(other),
    }
}

fn seconds(v: &Value) -> Result<f64, String> {
    let s = v
        .as_f64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()));
    match s {
        Some(s) if s.is_finite() && s > 0.0 && s < 1e8 => Ok(s),
        _ => Err(format!("must be a positive number of seconds, got {v}")),
    }
}

fn check_event(
    obj: &Map<String, Value>,
    trusted: bool,
) -> Result<PlayerEvent, Vec<(&'static str, String)>> {
    let mut problems = Vec::new();
    let state: Option<State> = one_of(obj, "state", &State::names(), &mut problems);
    let source: Option<Source> = one_of(obj, "source", &Source::names(), &mut problems);
    let obj_key = match get(obj, &["objKey", "obj_key"]) {
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= MAX_KEY => {
            Some(s.trim().to_string())
        }
        Some(Value::String(_)) => {
            problems.push(("objKey", format!("must be 1 to {MAX_KEY} characters")));
            None
        }
        Some(_) => {
            problems.push((
                "objKey",
                "must be a string such as catalog.media:<UID>".into(),
            ));
            None
        }
        None => {
            problems.push(("objKey", "is required".into()));
            None
        }
    };
    let max_duration_s = get(obj, &["duration", "maxDuration", "max_duration"])
        .and_then(|v| seconds(v).map_err(|m| problems.push(("duration", m))).ok());
    let client_ts =
        get(obj, &["ts"]).and_then(|v| client_ts(v).map_err(|m| problems.push(("ts", m))).ok());

    let (mut time, mut time_end, mut user_identity, mut device_key) = (None, None, None, None);
    if trusted {
        time = match get(obj, &["time"]) {
            Some(v) => parse_event_time(v)
                .map_err(|m| problems.push(("time", m)))
                .ok(),
            None => {
                problems.push(("time", "is required".into()));
                None
            }
        };
        time_end = get(obj, &["time_end", "timeEnd"]).and_then(|v| {
            parse_event_time(v)
                .map_err(|m| problems.push(("time_end", m)))
                .ok()
        });
        if let (Some(t), Some(e)) = (time, time_end) {
            if e < t {
                problems.push(("time_end", format!("{e} is before time {t}")));
            }
        }
        user_identity = match get(obj, &["user_identity", "userIdentity"]) {
            Some(Value::String(s)) if s.contains(':') && s.len() <= MAX_KEY => Some(s.clone()),
            _ => {
                problems.push((
                    "user_identity",
                    "is required, as account.user:<UID> or anonymous:<device key>".into(),
                ));
                None
            }
        };
        device_key = match get(obj, &["device_key", "deviceKey"]) {
            Some(Value::String(s)) if valid_device_key(s) => Some(s.clone()),
            _ => {
                problems.push((
                    "device_key",
                    "is required, as base64(ip)-<10 hex characters>".into(),
                ));
                None
            }
        };
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(PlayerEvent {
        time,
        time_end,
        state: state.expect("checked"),
        obj_key: obj_key.expect("checked"),
        source: source.expect("checked"),
        max_duration_s,
        client_ts,
        user_identity,
        device_key,
    })
}

/// Checks a batch; `trusted` batches carry times and identities of their own.
pub fn check_batch(items: &[Value], trusted: bool) -> Result<Vec<PlayerEvent>, Vec<FieldError>> {
    let mut events = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match item {
            Value::Object(obj) => match check_event(obj, trusted) {
                Ok(e) => events.push(e),
                Err(problems) => errors.extend(
                    problems
                        .into_iter()
                        .map(|(f, m)| FieldError::at(index, f, m)),
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

/// The events of a request body: `{"events": [...]}` (what players send) or a bare array.
pub fn events_of(body: &Value) -> Option<&Vec<Value>> {
    match body {
        Value::Array(items) => Some(items),
        Value::Object(obj) => obj.get("events").and_then(Value::as_array),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn browser_events_need_state_source_and_key() {
        let ok = check_batch(
            &[json!({"objKey": "catalog.media:ABC", "source": "on-demand", "state": "playing", "ts": 1730805332123u64, "duration": 180})],
            false,
        )
        .unwrap();
        assert_eq!(ok[0].max_duration_s, Some(180.0));
        assert_eq!(ok[0].client_ts.unwrap().timestamp_millis(), 1730805332123);
        let errors = check_batch(
            &[json!({"objKey": "", "source": "radio", "state": "rewinding"})],
            false,
        )
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["state", "source", "objKey"]);
    }

    #[test]
    fn trusted_events_need_time_and_identity() {
        let key = crate::domain::stream_event::device_key(&"10.0.0.1".parse().unwrap(), "ua");
        let ok = check_batch(
            &[
                json!({"time": "2024-05-01 10:00:00+00:00", "state": "paused", "obj_key": "x", "source": "live",
                     "user_identity": "account.user:1", "device_key": key}),
            ],
            true,
        );
        assert!(ok.is_ok(), "{ok:?}");
        let errors = check_batch(&[json!({"state": "paused", "objKey": "x", "source": "live", "time": "2024-05-01 10:00:00"})], true).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["time", "user_identity", "device_key"]);
    }
}
