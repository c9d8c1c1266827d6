//! No server-side request forgery through a webhook URL: a URL must be http(s) with a host,
//! and every address its host resolves to must be public unless the configuration allows it.
//! Checked when an endpoint is written and again before each request, whose connection is
//! then pinned to the addresses checked (a name that resolves elsewhere the second time, DNS
//! rebinding, gains nothing).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnetwork::IpNetwork;
use reqwest::Url;

use crate::config::WebhookSettings;

/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 2000;
/// How long a name may take to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Parses a webhook URL: absolute http(s), with a host, at most [`MAX_URL_LEN`] bytes.
pub fn parse_url(text: &str) -> Result<Url, String> {
    if text.len() > MAX_URL_LEN {
        return Err(format!("longer than {MAX_URL_LEN} bytes"));
    }
    let url = Url::parse(text).map_err(|e| format!("not an absolute URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be http or https".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    Ok(url)
}

/// Why an address may not be called, if it may not: private, loopback, link-local,
/// unique-local, unspecified, shared (CGNAT), broadcast, multicast or documentation space.
pub fn restricted(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                Some("loopback")
            } else if v4.is_private() {
                Some("private")
            } else if v4.is_link_local() {
                Some("link-local")
            } else if v4.is_unspecified() || a == 0 {
                Some("unspecified")
            } else if a == 100 && (64..128).contains(&b) {
                Some("shared (carrier-grade NAT)")
            } else if v4.is_broadcast() || v4.is_multicast() {
                Some("broadcast or multicast")
            } else if v4.is_documentation() {
                Some("documentation")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return restricted(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if first & 0xfe00 == 0xfc00 {
                Some("unique-local")
            } else if first & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if v6.is_multicast() {
                Some("multicast")
            } else {
                None
            }
        }
    }
}

/// What the configuration lets through.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    allow_private: bool,
    allow_networks: Vec<IpNetwork>,
}

impl Guard {
    /// The guard `webhooks.allow_private` and `webhooks.allow_networks` describe.
    pub fn new(settings: &WebhookSettings) -> Guard {
        Guard {
            allow_private: settings.allow_private,
            allow_networks: settings.allow_networks.clone(),
        }
    }

    /// Whether `ip` may be called, or why not.
    pub fn check(&self, ip: IpAddr) -> Result<(), String> {
        match restricted(ip) {
            None => Ok(()),
            Some(_) if self.allow_private => Ok(()),
            Some(_) if self.allow_networks.iter().any(|n| n.contains(ip)) => Ok(()),
            Some(kind) => Err(format!(
                "resolves to {ip}, a {kind} address (allow it with webhooks.allow_private or webhooks.allow_networks)"
            )),
        }
    }

    /// Resolves the URL's host; every address must pass [`Guard::check`]. The addresses to
    /// connect to.
    pub async fn resolve(&self, url: &Url) -> Result<Vec<SocketAddr>, String> {
        let host = url.host_str().ok_or("has no host")?;
        let port = url.port_or_known_default().ok_or("has no port")?;
        // An address literal in brackets ([::1]) is an IPv6 address.
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = match literal.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port)))
                .await
                .map_err(|_| format!("resolving {host} took longer than 5 s"))?
                .map_err(|e| format!("cannot resolve {host}: {e}"))?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(format!("{host} resolves to no address"));
        }
        for a in &addrs {
            self.check(a.ip())?;
        }
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_link_local_and_unique_local_addresses_are_restricted() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(restricted(ip.parse().unwrap()).is_some(), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::1111", "8.8.8.8"] {
            assert_eq!(restricted(ip.parse().unwrap()), None, "{ip}");
        }
    }

    #[test]
    fn the_configuration_lets_private_networks_through() {
        let strict = Guard::default();
        assert!(strict.check("10.0.0.7".parse().unwrap()).is_err());
        let listed = Guard {
            allow_private: false,
            allow_networks: vec!["10.0.0.7/32".parse().unwrap()],
        };
        assert!(listed.check("10.0.0.7".parse().unwrap()).is_ok());
        assert!(listed.check("10.0.0.8".parse().unwrap()).is_err());
        let open = Guard {
            allow_private: true,
            ..Guard::default()
        };
        assert!(open.check("127.0.0.1".parse().unwrap()).is_ok());
    }

    #[tokio::test]
    async fn urls_are_checked_at_their_resolved_addresses() {
        let strict = Guard::default();
        for url in [
            "http://127.0.0.1:9/",
            "http://[::1]/",
            "http://localhost:8080/x",
        ] {
            let e = strict.resolve(&parse_url(url).unwrap()).await.unwrap_err();
            assert!(e.contains("loopback"), "{url}: {e}");
        }
        assert!(parse_url("ftp://example.org/").is_err());
        assert!(parse_url("/relative").is_err());
        assert!(parse_url("http://").is_err());
    }
}
