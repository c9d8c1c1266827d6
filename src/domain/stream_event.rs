//! Stream events: one listener connection to a stream, as stored and as shipped.

use std::net::IpAddr;

use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use sha1::{Digest, Sha1};

named! {
    /// Where a stream event comes from.
    pub enum Origin {
        Hls = "hls",
        Icecast = "icecast",
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
    // 10 hex characters are the first 5 bytes of the digest.
    let ua = hex::encode(&Sha1::digest(user_agent.as_bytes())[..5]);
    format!("{ip}-{ua}")
}

/// A stream event as `airlog ship` posts it to the ingest endpoint: the strict form of what
/// that endpoint accepts (it also takes camelCase names, text numbers and other time forms).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WireStreamEvent {
    pub origin: Origin,
    pub ip: IpAddr,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub bytes_sent: u64,
    pub user_agent: String,
    pub referer: String,
    #[serde(serialize_with = "micros")]
    pub time_start: DateTime<Utc>,
    #[serde(serialize_with = "micros")]
    pub time_end: DateTime<Utc>,
    pub seconds_connected: u64,
}

/// RFC 3339 to the microsecond (what PostgreSQL keeps), in UTC.
fn micros<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_keys_are_those_of_the_replaced_system() {
        // Expected values computed by Python: b64encode(ip) + "-" + sha1(ua).hexdigest()[:10].
        let ip: IpAddr = "83.150.2.154".parse().unwrap();
        assert_eq!(
            device_key(&ip, "Mozilla/5.0 (X11; Linux x86_64) Firefox/118.0"),
            "ODMuMTUwLjIuMTU0-032c8ce13a"
        );
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(device_key(&ip, ""), "MjAwMTpkYjg6OjE=-da39a3ee5e");
    }
}
