//! Event times as log shippers send them, parsed into UTC instants.
//!
//! A time without a UTC offset is refused rather than guessed: the system airlog replaces read
//! such times in the server's zone and shifted listening hours by one or two.

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use serde_json::Value;

/// Formats with an offset, tried in order after RFC 3339.
const WITH_OFFSET: &[&str] = &[
    // Python str(datetime): "2024-11-05 11:15:32+00:00", "2024-11-05 11:15:32.123456+00:00"
    "%Y-%m-%d %H:%M:%S%.f%:z",
    "%Y-%m-%dT%H:%M:%S%.f%:z",
    "%Y-%m-%d %H:%M:%S%.f%z",
    "%Y-%m-%dT%H:%M:%S%.f%z",
    // nginx $time_local and Apache/Icecast logs: "05/Nov/2024:11:16:32 +0000"
    "%d/%b/%Y:%H:%M:%S %z",
];

/// The same shapes without an offset: recognised only to say what is missing.
const WITHOUT_OFFSET: &[&str] = &[
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%d/%b/%Y:%H:%M:%S",
];

/// What a caller is told the accepted forms are.
pub const ACCEPTED: &str = "expected RFC 3339 (2024-11-05T11:15:32Z), Python str(datetime) \
     (2024-11-05 11:15:32+00:00), nginx $time_local (05/Nov/2024:11:16:32 +0000) or Unix seconds";

/// Earliest and latest instants taken as plausible event times (Unix seconds).
const PLAUSIBLE: std::ops::RangeInclusive<f64> = 946_684_800.0..=4_102_444_800.0; // 2000..2100

/// Parses a JSON value (string or number) into a UTC time.
pub fn parse_event_time(value: &Value) -> Result<DateTime<Utc>, String> {
    match value {
        Value::Number(n) => unix_seconds(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => parse_time_str(s),
        Value::Null => Err("is required".into()),
        _ => Err(format!("must be a string or a number; {ACCEPTED}")),
    }
}

/// Parses one of the accepted text forms.
pub fn parse_time_str(s: &str) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("is empty".into());
    }
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let secs: f64 = s
            .parse()
            .map_err(|_| format!("{s:?} is not a time; {ACCEPTED}"))?;
        return unix_seconds(secs);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in WITH_OFFSET {
        if let Ok(t) = DateTime::<FixedOffset>::parse_from_str(s, format) {
            return Ok(t.with_timezone(&Utc));
        }
    }
    if WITHOUT_OFFSET
        .iter()
        .any(|f| NaiveDateTime::parse_from_str(s, f).is_ok())
    {
        return Err(format!(
            "{s:?} has no UTC offset; add one (e.g. +00:00 or Z), airlog does not guess time zones"
        ));
    }
    Err(format!("{s:?} is not a time; {ACCEPTED}"))
}

fn unix_seconds(secs: f64) -> Result<DateTime<Utc>, String> {
    if !secs.is_finite() || !PLAUSIBLE.contains(&secs) {
        return Err(format!(
            "{secs} is not a plausible Unix time (seconds since 1970, years 2000 to 2100)"
        ));
    }
    let whole = secs.floor();
    let nanos = ((secs - whole) * 1e9).round().min(999_999_999.0) as u32;
    Utc.timestamp_opt(whole as i64, nanos)
        .single()
        .ok_or_else(|| format!("{secs} is not a valid Unix time"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn every_accepted_form_parses_to_the_same_instant() {
        let want = utc("2024-11-05T11:15:32Z");
        for v in [
            json!("2024-11-05T11:15:32Z"),
            json!("2024-11-05T12:15:32+01:00"),
            json!("2024-11-05 11:15:32+00:00"),
            json!("2024-11-05 12:15:32+0100"),
            json!("05/Nov/2024:11:15:32 +0000"),
            json!("05/Nov/2024:06:15:32 -0500"),
            json!(1730805332),
            json!("1730805332"),
        ] {
            assert_eq!(parse_event_time(&v).unwrap(), want, "{v}");
        }
    }

    #[test]
    fn fractional_seconds_are_kept() {
        let want = utc("2024-11-05T11:15:32.250Z");
        assert_eq!(
            parse_event_time(&json!("2024-11-05 11:15:32.250000+00:00")).unwrap(),
            want
        );
        assert_eq!(parse_event_time(&json!(1730805332.25)).unwrap(), want);
    }

    #[test]
    fn naive_times_are_refused_with_a_reason() {
        for s in [
            "2024-11-05 11:15:32",
            "2024-11-05T11:15:32.5",
            "05/Nov/2024:11:16:32",
        ] {
            let err = parse_time_str(s).unwrap_err();
            assert!(err.contains("no UTC offset"), "{s}: {err}");
        }
    }

    #[test]
    fn garbage_is_refused() {
        assert!(parse_time_str("yesterday")
            .unwrap_err()
            .contains("not a time"));
        assert!(parse_event_time(&json!(true)).is_err());
        assert!(parse_event_time(&json!(12))
            .unwrap_err()
            .contains("plausible"));
        assert!(parse_event_time(&Value::Null)
            .unwrap_err()
            .contains("required"));
    }
}
