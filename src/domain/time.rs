//! Event times as log shippers send them, parsed into UTC instants.
//!
//! A time without a UTC offset is refused rather than guessed: the system airlog replaces read
//! such times in the server's zone and shifted listening hours by one or two.

use chrono::{DateTime, FixedOffset, NaiveDateTime, SubsecRound, Utc};
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

/// Earliest and latest instants taken as plausible event times (Unix seconds): one range for
/// every form a time comes in (text, numbers, cursors), 2000-01-01 to 2100-01-01 UTC. It keeps
/// milliseconds sent as seconds, and years PostgreSQL cannot store, out with a clear reason.
const PLAUSIBLE: std::ops::RangeInclusive<f64> = 946_684_800.0..=4_102_444_800.0;

/// The accepted range, as people read it.
pub const RANGE_TEXT: &str = "years 2000 to 2100 (UTC)";

/// Whether an instant is in the accepted range.
pub fn in_range(t: DateTime<Utc>) -> bool {
    PLAUSIBLE.contains(&(t.timestamp() as f64))
}

/// Refuses an instant outside the accepted range.
/// `t` if it lies in the accepted range, else why not (naming `written`, what the client sent).
pub fn checked(t: DateTime<Utc>, written: &str) -> Result<DateTime<Utc>, String> {
    if in_range(t) {
        Ok(t)
    } else {
        Err(format!(
            "{written:?} is outside the accepted range, {RANGE_TEXT}"
        ))
    }
}

/// Parses a JSON value (string or number) into a UTC time.
pub fn parse_event_time(value: &Value) -> Result<DateTime<Utc>, String> {
    match value {
        // An integer stays exact; a float is exact to the microsecond (see `unix_seconds`).
        Value::Number(n) => match n.as_i64() {
            Some(secs) => parse_unix_int(secs),
            None => unix_seconds(n.as_f64().unwrap_or(f64::NAN)),
        },
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
        return unix_decimal(s).ok_or_else(|| format!("{s:?} is not a time; {ACCEPTED}"))?;
    }
    // PostgreSQL keeps microseconds: finer digits are rounded here, not cut off on the way.
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return checked(t.with_timezone(&Utc).round_subsecs(6), s);
    }
    for format in WITH_OFFSET {
        if let Ok(t) = DateTime::<FixedOffset>::parse_from_str(s, format) {
            return checked(t.with_timezone(&Utc).round_subsecs(6), s);
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

/// Whole Unix seconds given as a JSON integer.
pub fn parse_unix_int(secs: i64) -> Result<DateTime<Utc>, String> {
    unix_micros(i128::from(secs) * 1_000_000, &secs.to_string())
}

/// Unix seconds given as a JSON float (exact to the microsecond, see `unix_seconds`).
pub fn parse_unix_float(secs: f64) -> Result<DateTime<Utc>, String> {
    unix_seconds(secs)
}

/// Unix seconds written as decimal text, read digit by digit: `1730000100.123` is exactly
/// .123000 (through a float it was .122999, and a 300.000 s gap became 300.000001 s). Digits
/// past the microsecond are rounded. None when the text is not a decimal number.
fn unix_decimal(s: &str) -> Option<Result<DateTime<Utc>, String>> {
    let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() || whole.len() > 12 || fraction.contains('.') {
        return None;
    }
    let mut micros = whole.parse::<i128>().ok()? * 1_000_000;
    let digits = fraction.as_bytes();
    for (i, scale) in [100_000, 10_000, 1_000, 100, 10, 1].into_iter().enumerate() {
        micros += i128::from(digits.get(i).map_or(0, |d| d - b'0')) * scale;
    }
    if digits.get(6).is_some_and(|d| *d >= b'5') {
        micros += 1;
    }
    Some(unix_micros(micros, s))
}

/// Unix seconds from a JSON float. A float has about 16 significant digits, so for times in
/// the accepted years it is within a quarter of a microsecond of the decimal that was written;
/// rounding to the nearest microsecond gives that decimal back exactly.
fn unix_seconds(secs: f64) -> Result<DateTime<Utc>, String> {
    if !secs.is_finite() || !PLAUSIBLE.contains(&secs) {
        return Err(implausible(&secs.to_string()));
    }
    unix_micros((secs * 1e6).round() as i128, &secs.to_string())
}

fn unix_micros(micros: i128, written: &str) -> Result<DateTime<Utc>, String> {
    let secs = micros.div_euclid(1_000_000);
    if !PLAUSIBLE.contains(&(secs as f64)) {
        return Err(implausible(written));
    }
    DateTime::<Utc>::from_timestamp_micros(micros as i64)
        .ok_or_else(|| format!("{written} is not a valid Unix time"))
}

fn implausible(written: &str) -> String {
    format!("{written} is not a plausible Unix time (seconds since 1970, {RANGE_TEXT})")
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
    fn every_form_has_one_accepted_range() {
        for s in [
            "0000-01-01T00:00:00Z",
            "9999-12-31 23:59:59+00:00",
            "-200000-01-01 00:00:00+00:00",
            "1999-12-31T23:59:59Z",
            "2100-01-01T00:00:01Z",
        ] {
            let err = parse_time_str(s).unwrap_err();
            assert!(
                err.contains("2000 to 2100") || err.contains("not a time"),
                "{s}: {err}"
            );
        }
        assert!(parse_time_str("2000-01-01T00:00:00Z").is_ok());
        assert!(parse_time_str("2099-12-31T23:59:59.999999Z").is_ok());
        assert!(parse_event_time(&json!(1e300)).is_err());
    }

    #[test]
    fn unix_seconds_are_exact_to_the_microsecond() {
        let want = utc("2024-10-27T03:35:00.123Z");
        assert_eq!(parse_event_time(&json!(1730000100.123)).unwrap(), want);
        assert_eq!(parse_time_str("1730000100.123").unwrap(), want);
        assert_eq!(parse_time_str("1730000100.1230004").unwrap(), want);
        // A 300.000 s gap stays 300.000 s, whichever form the two times came in.
        let a = parse_event_time(&json!(1730000100.123)).unwrap();
        let b = parse_time_str("1730000400.123").unwrap();
        assert_eq!((b - a).num_microseconds(), Some(300_000_000));
        let us = utc("2024-10-27T03:35:00.999999Z");
        assert_eq!(parse_event_time(&json!(1730000100.999999)).unwrap(), us);
        assert_eq!(parse_time_str("1730000100.999999").unwrap(), us);
        assert_eq!(
            parse_time_str("1730000100.9999996").unwrap(),
            utc("2024-10-27T03:35:01Z")
        );
        assert!(parse_time_str("1730000100.1.2").is_err());
        assert!(parse_time_str(".5").is_err());
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
