//! The SSRF guard: which URLs and addresses a request may reach.
//!
//! Two checks, both before any connection:
//!
//! 1. [`Policy::check_url`], for every request and every redirect hop: http(s) only, no
//!    user info, an allowed port, and for an IP-literal host (in any spelling the URL
//!    parser accepts: `2130706433`, `0x7f000001`, `0177.0.0.1`, `127.1`, `[::ffff:7f00:1]`)
//!    an allowed address.
//! 2. [`GuardedResolver`], reqwest's DNS resolver for every host name: it resolves the
//!    name, refuses the host when *any* address is not allowed, and hands exactly the
//!    checked addresses to the connector. The address checked is therefore the address
//!    connected to; a DNS answer that changes between a check and the connection
//!    (rebinding) cannot get past, because there is no separate check.
//!
//! "Not allowed" is [`forbidden_reason`]: loopback, private, link-local, carrier-grade
//! NAT, unspecified, multicast, broadcast, reserved and documentation ranges, IPv6 ULA,
//! link-local and site-local, and the IPv4 embeddings (mapped, compatible, 6to4, NAT64,
//! Teredo) of any of them. An API's `allow_private` lifts this for its own base origin
//! (scheme, host and port) only: requests to it go through a second client whose resolver
//! does not filter, and every other URL, redirect targets included, through the filtering
//! one.

use std::{
    collections::BTreeSet,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Origin, Url};

/// A request refused by the SSRF guard, with the reason in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Refused(pub(crate) String);

/// Why `ip` may not be reached, or `None` when it is a public unicast address.
pub(crate) fn forbidden_reason(ip: IpAddr) -> Option<String> {
    match ip {
        IpAddr::V4(ip) => forbidden_v4(ip).map(str::to_owned),
        IpAddr::V6(ip) => forbidden_v6(ip),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let reason = match (a, b, c) {
        (0, ..) => "unspecified (\"this network\", 0.0.0.0/8)",
        (10, ..) => "private (10.0.0.0/8)",
        (100, 64..=127, _) => "carrier-grade NAT (100.64.0.0/10)",
        (127, ..) => "loopback (127.0.0.0/8)",
        (169, 254, _) => "link-local (169.254.0.0/16, cloud metadata)",
        (172, 16..=31, _) => "private (172.16.0.0/12)",
        (192, 0, 0) => "IETF protocol assignments (192.0.0.0/24)",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation (RFC 5737)",
        (192, 88, 99) => "6to4 relay anycast (192.88.99.0/24)",
        (192, 168, _) => "private (192.168.0.0/16)",
        (198, 18..=19, _) => "benchmarking (198.18.0.0/15)",
        (224..=239, ..) => "multicast (224.0.0.0/4)",
        (255, 255, 255) if ip == Ipv4Addr::BROADCAST => "broadcast (255.255.255.255)",
        (240..=255, ..) => "reserved (240.0.0.0/4)",
        _ => return None,
    };
    Some(reason)
}

/// An IPv6 address embedding `v4` in the form `form`: refused when `v4` is.
fn embedded(form: &str, v4: Ipv4Addr) -> Option<String> {
    forbidden_v4(v4).map(|reason| format!("{form} of {v4}, which is {reason}"))
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<String> {
    let segments = ip.segments();
    let v4 = |high: u16, low: u16| Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
    if ip.is_unspecified() {
        return Some("unspecified (::)".into());
    }
    if ip.is_loopback() {
        return Some("loopback (::1)".into());
    }
    if let Some(mapped) = ip.to_ipv4_mapped() {
        return embedded("an IPv4-mapped form (::ffff:0:0/96)", mapped);
    }
    let reason = match segments {
        [0, 0, 0, 0, 0, 0, _, _] => "IPv4-compatible (::/96, deprecated)",
        [0x64, 0xff9b, 0, 0, 0, 0, high, low] => return embedded("a NAT64 form (64:ff9b::/96)", v4(high, low)),
        [0x64, 0xff9b, 1, ..] => "local-use NAT64 (64:ff9b:1::/48)",
        [0x2002, high, low, ..] => return embedded("a 6to4 form (2002::/16)", v4(high, low)),
        [0x2001, 0, ..] => "Teredo (2001::/32)",
        [0x2001, 0xdb8, ..] => "documentation (2001:db8::/32)",
        [0x3fff, second, ..] if second < 0x1000 => "documentation (3fff::/20)",
        [0x0100, 0, 0, 0, ..] => "discard-only (100::/64)",
        [first, ..] if first & 0xfe00 == 0xfc00 => "unique local (fc00::/7)",
        [first, ..] if first & 0xffc0 == 0xfe80 => "link-local (fe80::/10)",
        [first, ..] if first & 0xffc0 == 0xfec0 => "site-local (fec0::/10, deprecated)",
        [first, ..] if first & 0xff00 == 0xff00 => "multicast (ff00::/8)",
        _ => return None,
    };
    Some(reason.into())
}

/// Where requests may go: the ports, and the origin (if any) allowed to be non-public.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    /// Allowed ports (always 80 and 443, plus the base URL's).
    ports: BTreeSet<u16>,
    /// The origins (scheme, host, port) exempt from the address check: an API's base URL
    /// when it sets `allow_private` (tests add a second one).
    exempt: Vec<Origin>,
}

impl Policy {
    /// Ports 80 and 443 plus `extra_port`; `exempt` may reach non-public addresses.
    pub(crate) fn new(extra_port: Option<u16>, exempt: Option<Origin>) -> Self {
        let mut ports: BTreeSet<u16> = [80, 443].into();
        ports.extend(extra_port);
        Self { ports, exempt: exempt.into_iter().collect() }
    }

    /// Also allows `port` and exempts `origin` (tests: a second local server).
    #[cfg(test)]
    pub(crate) fn also_exempt(mut self, port: u16, origin: Origin) -> Self {
        self.ports.insert(port);
        self.exempt.push(origin);
        self
    }

    /// Whether some origin is exempt.
    pub(crate) fn has_exemption(&self) -> bool {
        !self.exempt.is_empty()
    }

    /// Whether `url` is the exempt origin (and so goes through the exempt client).
    pub(crate) fn is_exempt(&self, url: &Url) -> bool {
        self.exempt.contains(&url.origin())
    }

    /// Checks one URL before a request (or a redirect hop) is sent: scheme, user info,
    /// port, and an IP-literal host. Host names are checked by the resolver.
    ///
    /// # Errors
    /// [`Refused`] with the reason.
    pub(crate) fn check_url(&self, url: &Url) -> Result<(), Refused> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refused(format!("scheme '{}' is not allowed (only http and https)", url.scheme())));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refused("URLs with user info are not allowed".into()));
        }
        let host = url.host().ok_or_else(|| Refused("the URL has no host".into()))?;
        let port = url.port_or_known_default().unwrap_or(0);
        if !self.ports.contains(&port) {
            let allowed: Vec<String> = self.ports.iter().map(u16::to_string).collect();
            return Err(Refused(format!("port {port} is not allowed (allowed: {})", allowed.join(", "))));
        }
        let ip = match host {
            Host::Ipv4(ip) => IpAddr::V4(ip),
            Host::Ipv6(ip) => IpAddr::V6(ip),
            // The URL parser turns every IPv4 spelling into `Host::Ipv4`; this is a belt.
            Host::Domain(domain) => match domain.parse::<IpAddr>() {
                Ok(ip) => ip,
                Err(_) => return Ok(()),
            },
        };
        if self.is_exempt(url) {
            return Ok(());
        }
        match forbidden_reason(ip) {
            Some(reason) => Err(Refused(format!("address {ip} is {reason}"))),
            None => Ok(()),
        }
    }
}

/// reqwest's DNS resolver: resolves with the system resolver, then (unless `exempt`)
/// refuses the host when any address is not allowed, and returns exactly the checked
/// addresses, so that the connector connects to nothing else.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GuardedResolver {
    /// Skip the address check: the resolver of the client used only for the exempt
    /// origin.
    pub(crate) exempt: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_ascii_lowercase();
        let exempt = self.exempt;
        Box::pin(async move {
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addresses.is_empty() {
                return Err(Box::new(Refused(format!("host '{host}' has no address"))) as _);
            }
            if !exempt {
                check_addresses(&host, &addresses)?;
            }
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

fn check_addresses(host: &str, addresses: &[SocketAddr]) -> Result<(), Refused> {
    for address in addresses {
        if let Some(reason) = forbidden_reason(address.ip()) {
            return Err(Refused(format!("host '{host}' resolves to {}, which is {reason}", address.ip())));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn check(address: &str) -> Option<String> {
        forbidden_reason(address.parse().unwrap_or_else(|error| panic!("{address}: {error}")))
    }

    #[test]
    fn refused_addresses() {
        for address in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.255.255.255",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:7f00:1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "::8.8.8.8",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "2001::1",
            "2001:db8::1",
            "3fff::1",
            "100::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
        ] {
            assert!(check(address).is_some(), "{address} must be refused");
        }
    }

    #[test]
    fn public_addresses() {
        for address in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "169.253.0.1",
            "192.0.1.1",
            "198.20.0.1",
            "223.255.255.255",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2a00:1450::1",
        ] {
            assert_eq!(check(address), None, "{address} is public");
        }
    }

    fn url_check(policy: &Policy, url: &str) -> Result<(), String> {
        let url = Url::parse(url).map_err(|error| format!("parse: {error}"))?;
        policy.check_url(&url).map_err(|refused| refused.0)
    }

    #[test]
    fn ip_literals_in_every_spelling_are_refused() {
        let policy = Policy::new(None, None);
        for url in [
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://0x7f.1/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::1]/",
            "http://0.0.0.0/",
            "http://0/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::ffff:a9fe:a9fe]/",
            "https://10.1.2.3/",
            "http://127.0.0.1./",
        ] {
            let error = url_check(&policy, url).expect_err(url);
            assert!(error.starts_with("address "), "{url}: {error}");
        }
    }

    #[test]
    fn scheme_user_info_and_port_are_checked() {
        let policy = Policy::new(Some(8443), None);
        assert_eq!(
            url_check(&policy, "ftp://example.com/").unwrap_err(),
            "scheme 'ftp' is not allowed (only http and https)"
        );
        assert_eq!(
            url_check(&policy, "http://user:pw@example.com/").unwrap_err(),
            "URLs with user info are not allowed"
        );
        assert_eq!(
            url_check(&policy, "http://example.com:22/").unwrap_err(),
            "port 22 is not allowed (allowed: 80, 443, 8443)"
        );
        assert_eq!(url_check(&policy, "https://example.com:8443/x"), Ok(()));
        assert_eq!(url_check(&policy, "http://example.com/"), Ok(()));
        assert_eq!(url_check(&policy, "http://8.8.8.8/"), Ok(()));
    }

    #[test]
    fn only_the_exempt_origin_may_be_private() {
        let base = Url::parse("http://127.0.0.1:8080/api").unwrap();
        let policy = Policy::new(Some(8080), Some(base.origin()));
        assert_eq!(url_check(&policy, "http://127.0.0.1:8080/"), Ok(()));
        assert_eq!(url_check(&policy, "http://0x7f000001:8080/x"), Ok(()), "the same origin, spelled differently");
        assert!(url_check(&policy, "http://127.0.0.1/").is_err(), "another port is another origin");
        assert!(url_check(&policy, "https://127.0.0.1:8080/").is_err(), "another scheme is another origin");
        assert!(url_check(&policy, "http://127.0.0.2:8080/").is_err());
        assert!(url_check(&policy, "http://[::1]:8080/").is_err());
        assert!(url_check(&policy, "http://169.254.169.254/").is_err());
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_refused_addresses() {
        let name: Name = "localhost".parse().unwrap();
        let error = GuardedResolver { exempt: false }.resolve(name).await.err().unwrap().to_string();
        assert!(error.starts_with("host 'localhost' resolves to "), "{error}");
        let name: Name = "localhost".parse().unwrap();
        let addresses: Vec<SocketAddr> = GuardedResolver { exempt: true }.resolve(name).await.unwrap().collect();
        assert!(addresses.iter().all(|address| address.ip().is_loopback()) && !addresses.is_empty(), "{addresses:?}");
    }
}
