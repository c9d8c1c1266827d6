//! A per-address token bucket for the browser endpoints, in memory (one airlog process serves
//! a station; a restart forgets the buckets, which only errs on the side of letting players in).
//! Keyed by the client's address (IPv6 by its /64, what one subscriber gets), not by device:
//! a client can invent user agents, not addresses. Each check is O(1): idle buckets are swept
//! at most once a minute, not on every request.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Allows `per_minute` requests per address, with bursts up to a tenth of that (at least 5).
pub struct RateLimiter {
    per_minute: f64,
    burst: f64,
    state: Mutex<Buckets>,
}

struct Buckets {
    by_address: HashMap<IpAddr, (f64, Instant)>,
    swept: Option<Instant>,
}

/// Buckets idle this long are dropped by the sweep (they would be full again anyway).
const IDLE: Duration = Duration::from_secs(300);
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The key of an address: IPv4 as is, IPv6 cut to its /64.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::from([s[0], s[1], s[2], s[3], 0, 0, 0, 0])
            }
        },
    }
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> RateLimiter {
        let per_minute = f64::from(per_minute.max(1));
        RateLimiter {
            per_minute,
            burst: (per_minute / 10.0).max(5.0),
            state: Mutex::new(Buckets {
                by_address: HashMap::new(),
                swept: None,
            }),
        }
    }

    /// Takes one token for the address `ip`; `Err(seconds)` says when the next one is due.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state
            .swept
            .is_none_or(|t| now.saturating_duration_since(t) >= SWEEP_EVERY)
        {
            state
                .by_address
                .retain(|_, (_, seen)| now.saturating_duration_since(*seen) < IDLE);
            state.swept = Some(now);
        }
        let rate = self.per_minute / 60.0;
        let (tokens, seen) = state
            .by_address
            .entry(address_key(ip))
            .or_insert((self.burst, now));
        *tokens =
            (*tokens + now.saturating_duration_since(*seen).as_secs_f64() * rate).min(self.burst);
        *seen = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / rate).ceil() as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn bursts_then_refills_per_address() {
        let limiter = RateLimiter::new(60);
        let t0 = Instant::now();
        for _ in 0..6 {
            assert!(limiter.check(ip("192.0.2.1"), t0).is_ok());
        }
        assert_eq!(limiter.check(ip("192.0.2.1"), t0), Err(1));
        assert!(
            limiter.check(ip("192.0.2.2"), t0).is_ok(),
            "addresses are independent"
        );
        assert!(limiter
            .check(ip("192.0.2.1"), t0 + Duration::from_secs(1))
            .is_ok());
    }

    #[test]
    fn an_ipv6_subscriber_is_one_address_whatever_its_interface_ids() {
        let limiter = RateLimiter::new(60);
        let t0 = Instant::now();
        for i in 0..6 {
            let addr = ip(&format!("2001:db8:1:2::{i:x}"));
            assert!(limiter.check(addr, t0).is_ok());
        }
        assert!(limiter.check(ip("2001:db8:1:2:ffff::1"), t0).is_err());
        assert!(limiter.check(ip("2001:db8:1:3::1"), t0).is_ok());
        assert_eq!(address_key(ip("::ffff:192.0.2.9")), ip("192.0.2.9"));
    }
}
