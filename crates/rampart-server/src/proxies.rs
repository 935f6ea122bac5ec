//! The client's address behind trusted proxies (`server.trusted_proxies`): a request
//! whose TCP peer is a trusted proxy (a load balancer, an ingress) is attributed to the
//! address that proxy says it came from, the rightmost `X-Forwarded-For` entry that is not
//! itself a trusted proxy (RFC 7239 §5.2's reasoning for `Forwarded`, applied to the de
//! facto header every proxy writes). Entries further left were written by the client or
//! by proxies nobody vouches for, and are never believed. Without trusted proxies, and
//! for any other peer, the peer's address stands: a client cannot choose its own address
//! by sending the header.
//!
//! The address found is what failed-login throttling counts, what audit records and logs
//! name, and what `system_whoami` shows.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrustedProxies {
    networks: Vec<IpNet>,
}

impl TrustedProxies {
    /// From `server.trusted_proxies`: addresses (`10.0.0.5`) or ranges (`10.0.0.0/8`).
    ///
    /// # Errors
    /// The first entry that is neither, named.
    pub(crate) fn parse(entries: &[String]) -> Result<Self, String> {
        let networks = entries
            .iter()
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("server.trusted_proxies: '{entry}' is neither an address nor a CIDR range"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { networks })
    }

    fn trusts(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.networks.iter().any(|network| network.contains(&address))
    }

    /// The client's address for a request from `peer` with these `X-Forwarded-For`
    /// header values (in order). Port 0 when it comes from the header (it names none).
    pub(crate) fn client<'a>(&self, peer: SocketAddr, forwarded_for: impl Iterator<Item = &'a str>) -> SocketAddr {
        if self.networks.is_empty() || !self.trusts(peer.ip()) {
            return peer;
        }
        let hops: Vec<&str> = forwarded_for.flat_map(|value| value.split(',')).map(str::trim).collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(address) = parse_hop(hop) else {
                // Garbage a trusted proxy passed on: nothing to its left can be trusted.
                break;
            };
            client = SocketAddr::new(address, 0);
            if !self.trusts(address) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, possibly `[v6]` or with a port.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(address) = hop.parse::<IpAddr>() {
        return Some(address);
    }
    hop.parse::<SocketAddr>().ok().map(|socket| socket.ip())
}

#[cfg(test)]
mod tests;
