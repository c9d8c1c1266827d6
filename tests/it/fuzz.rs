//! Property tests: the parsers at the edges never panic, whatever they are given.

use airlog::ship::parse::{parse_line, Format};
use proptest::prelude::*;

fn formats() -> impl Strategy<Value = Format> {
    prop_oneof![
        Just(Format::NginxHls),
        Just(Format::NginxCombined),
        Just(Format::Icecast)
    ]
}

/// Lines that look like log lines, with pieces replaced by arbitrary text.
fn log_like() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            Just("83.150.2.154".to_string()),
            Just("::1".to_string()),
            ".{0,20}"
        ],
        prop_oneof![Just("05/Nov/2024:11:16:32 +0000".to_string()), ".{0,30}"],
        prop_oneof![
            Just("GET /hls/live/seg-1.ts HTTP/1.1".to_string()),
            ".{0,40}"
        ],
        prop_oneof![Just("200".to_string()), "[0-9]{0,6}", ".{0,4}"],
        prop_oneof![Just("1234".to_string()), "-?[0-9]{0,25}"],
        ".{0,60}",
        prop_oneof![Just("60".to_string()), ".{0,8}"],
    )
        .prop_map(|(ip, t, req, status, bytes, ua, secs)| {
            format!(r#"{ip} - - [{t}] "{req}" {status} {bytes} "-" "{ua}" {secs}"#)
        })
}

fn json_like() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just("\"1730805392.123\"".to_string()), "-?[0-9]{0,20}(\\.[0-9]{0,5})?", Just("null".to_string())],
        prop_oneof![Just("\"10.0.0.1\"".to_string()), "\".{0,10}\""],
        prop_oneof![Just("200".to_string()), "-?[0-9]{0,8}", Just("\"x\"".to_string())],
        prop_oneof![Just("100".to_string()), "-?[0-9]{0,25}", Just("1e400".to_string())],
    )
        .prop_map(|(msec, ip, status, bytes)| {
            format!(r#"{{"msec":{msec},"ip":{ip},"method":"GET","uri":"/a.ts","status":{status},"bytes":{bytes},"ua":"u"}}"#)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn log_parsers_never_panic_on_arbitrary_text(format in formats(), line in ".{0,300}") {
        let _ = parse_line(format, &line);
    }

    #[test]
    fn log_parsers_never_panic_on_near_misses(format in formats(), line in log_like()) {
        let _ = parse_line(format, &line);
    }

    #[test]
    fn json_lines_never_panic(line in json_like()) {
        let _ = parse_line(Format::NginxHls, &line);
    }

    #[test]
    fn event_times_never_panic(text in ".{0,40}", n in proptest::num::f64::ANY) {
        let _ = airlog::domain::time::parse_time_str(&text);
        let _ = airlog::domain::time::parse_event_time(&serde_json::json!(n));
    }

    #[test]
    fn liquidsoap_replies_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        use airlog::monitor::liquidsoap::protocol::*;
        if let Some((_, text)) = take_reply(&bytes) {
            let m = parse_metadata(&text);
            let _ = on_air(m, chrono_tz::UTC, chrono::Utc::now());
            let _ = parse_metadata_blocks(&text);
            let _ = parse_uptime(&text);
        }
    }
}
