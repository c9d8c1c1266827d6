//! Broadcast days: a day starts at a configured hour in the station's time zone, so on DST
//! change days it lasts 23 or 25 hours.

use chrono::{DateTime, LocalResult, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

/// The first instant at or after `date` `hour`:00 local time. A local time skipped by a DST
/// change moves to the first hour that exists; an ambiguous one takes its earlier instant.
pub fn local_hour(date: NaiveDate, hour: u32, tz: Tz) -> DateTime<Utc> {
    let mut naive = date.and_hms_opt(hour, 0, 0).expect("hour is 0-23");
    loop {
        match tz.from_local_datetime(&naive) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(early, _) => return early.with_timezone(&Utc),
            LocalResult::None => naive += chrono::Duration::minutes(15),
        }
    }
}

/// The UTC bounds `[start, end)` of the broadcast day `date`.
pub fn day_bounds(date: NaiveDate, hour: u32, tz: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
    let next = date.succ_opt().expect("date in range");
    (local_hour(date, hour, tz), local_hour(next, hour, tz))
}

/// The broadcast day an instant belongs to.
pub fn day_of(t: DateTime<Utc>, hour: u32, tz: Tz) -> NaiveDate {
    let local = t.with_timezone(&tz).date_naive();
    if t < local_hour(local, hour, tz) {
        local.pred_opt().expect("date in range")
    } else {
        local
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Zurich;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn ordinary_days_last_24_hours_from_the_local_start_hour() {
        let (start, end) = day_bounds(d("2024-05-01"), 4, Zurich);
        assert_eq!(start.to_rfc3339(), "2024-05-01T02:00:00+00:00");
        assert_eq!((end - start).num_hours(), 24);
    }

    #[test]
    fn dst_days_last_23_and_25_hours() {
        // The clocks change at 02:00 on the 31st and the 27th, inside the broadcast days that
        // began at 04:00 the day before.
        let (start, end) = day_bounds(d("2024-03-30"), 4, Zurich);
        assert_eq!(start.to_rfc3339(), "2024-03-30T03:00:00+00:00");
        assert_eq!(end.to_rfc3339(), "2024-03-31T02:00:00+00:00");
        assert_eq!((end - start).num_hours(), 23);
        let (start, end) = day_bounds(d("2024-10-26"), 4, Zurich);
        assert_eq!(start.to_rfc3339(), "2024-10-26T02:00:00+00:00");
        assert_eq!(end.to_rfc3339(), "2024-10-27T03:00:00+00:00");
        assert_eq!((end - start).num_hours(), 25);
    }

    #[test]
    fn skipped_and_repeated_start_hours_are_resolved() {
        // 02:00 does not exist on 2024-03-31 in Zurich: the day starts at 03:00 local.
        assert_eq!(
            local_hour(d("2024-03-31"), 2, Zurich).to_rfc3339(),
            "2024-03-31T01:00:00+00:00"
        );
        // 02:00 happens twice on 2024-10-27: the first one counts.
        assert_eq!(
            local_hour(d("2024-10-27"), 2, Zurich).to_rfc3339(),
            "2024-10-27T00:00:00+00:00"
        );
    }

    #[test]
    fn instants_belong_to_the_day_that_started_before_them() {
        let t = DateTime::parse_from_rfc3339("2024-05-02T01:59:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(day_of(t, 4, Zurich), d("2024-05-01"));
        let t = DateTime::parse_from_rfc3339("2024-05-02T02:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(day_of(t, 4, Zurich), d("2024-05-02"));
    }
}
