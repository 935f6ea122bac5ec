#![allow(clippy::unwrap_used)]

use super::*;

fn check(trusted: &[&str], peer: &str, headers: &[&str], expected: &str) {
    let proxies = TrustedProxies::parse(&trusted.iter().map(|t| (*t).to_owned()).collect::<Vec<_>>()).unwrap();
    let peer: SocketAddr = peer.parse().unwrap();
    let client = proxies.client(peer, headers.iter().copied());
    assert_eq!(client.to_string(), expected, "trusted {trusted:?}, peer {peer}, X-Forwarded-For {headers:?}");
}

#[test]
fn the_header_is_believed_only_from_a_trusted_proxy() {
    // (trusted proxies, TCP peer, X-Forwarded-For values, the client's address)
    let lb = &["10.0.0.0/8"][..];
    check(&[], "198.51.100.7:4000", &["203.0.113.9"], "198.51.100.7:4000");
    check(lb, "198.51.100.7:4000", &["203.0.113.9"], "198.51.100.7:4000");
    check(lb, "10.0.0.2:4000", &[], "10.0.0.2:4000");
    check(lb, "10.0.0.2:4000", &["203.0.113.9"], "203.0.113.9:0");
    // The client wrote a first entry itself: the proxy appended the real one.
    check(lb, "10.0.0.2:4000", &["127.0.0.1, 203.0.113.9"], "203.0.113.9:0");
    check(lb, "10.0.0.2:4000", &["6.6.6.6", "203.0.113.9"], "203.0.113.9:0");
    // Two trusted proxies in a row.
    check(lb, "10.0.0.2:4000", &["203.0.113.9, 10.1.2.3"], "203.0.113.9:0");
    // Garbage appended by a trusted proxy: stop there, at the last good hop.
    check(lb, "10.0.0.2:4000", &["203.0.113.9, unknown"], "10.0.0.2:4000");
    check(lb, "10.0.0.2:4000", &["203.0.113.9, not-an-address, 10.1.2.3"], "10.1.2.3:0");
    // Every hop trusted: the leftmost is the best there is.
    check(lb, "10.0.0.2:4000", &["10.9.9.9, 10.1.2.3"], "10.9.9.9:0");
    // Ports and IPv6.
    check(lb, "10.0.0.2:4000", &["203.0.113.9:51000"], "203.0.113.9:0");
    check(lb, "10.0.0.2:4000", &["[2001:db8::1]:443"], "[2001:db8::1]:0");
    check(&["::1", "127.0.0.1"], "[::1]:4000", &["2001:db8::2"], "[2001:db8::2]:0");
    // An IPv4 proxy seen as IPv4-mapped IPv6.
    check(lb, "[::ffff:10.0.0.2]:4000", &["203.0.113.9"], "203.0.113.9:0");
}

#[test]
fn entries_that_are_not_addresses_are_refused_by_name() {
    assert!(TrustedProxies::parse(&["10.0.0.0/8".into(), "192.0.2.1".into(), "::1".into()]).is_ok());
    let error = TrustedProxies::parse(&["10.0.0.0/8".into(), "proxy.local".into()]).unwrap_err();
    assert!(error.contains("'proxy.local'"), "{error}");
}
