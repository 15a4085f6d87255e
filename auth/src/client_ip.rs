//! The address a request really comes from, for login throttling: the TCP peer, unless the
//! peer is a proxy the deployment trusts (the portal, a load balancer), in which case the
//! right-most `X-Forwarded-For` entry that is not a trusted proxy. Entries left of that are
//! the client's own words and never believed, so a browser cannot pick its throttle bucket.

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::HeaderMap;
use ipnet::IpNet;

pub const FORWARDED_FOR: &str = "x-forwarded-for";

/// The proxies whose `X-Forwarded-For` is believed (`BRAIN_TRUSTED_PROXIES`).
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Arc<[IpNet]>);

impl TrustedProxies {
    /// Comma-separated CIDR ranges or addresses.
    pub fn new(list: &str) -> Result<Self, String> {
        crate::egress::parse_ranges(list).map(Self)
    }

    fn trusts(&self, addr: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&addr))
    }

    /// The client's address of a request from `peer` with `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = headers
            .get_all(FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            // An entry that is not an address ends what can be believed.
            let Ok(addr) = hop.parse::<IpAddr>() else {
                break;
            };
            client = addr;
            if !self.trusts(addr) {
                break;
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(FORWARDED_FOR, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn only_hops_added_by_trusted_proxies_are_believed() {
        let proxies = TrustedProxies::new("127.0.0.0/8, 10.0.0.5").unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // An untrusted peer's header is ignored.
        assert_eq!(
            proxies.client(ip("198.51.100.7"), &headers(&["203.0.113.1"])),
            ip("198.51.100.7")
        );
        // Behind the portal: the browser's address.
        assert_eq!(
            proxies.client(ip("127.0.0.1"), &headers(&["203.0.113.1"])),
            ip("203.0.113.1")
        );
        // Behind a load balancer and the portal; what the browser claimed is left of its
        // own address and ignored.
        assert_eq!(
            proxies.client(
                ip("127.0.0.1"),
                &headers(&["6.6.6.6, 203.0.113.1", "10.0.0.5"])
            ),
            ip("203.0.113.1")
        );
        // No header, or garbage: the peer (or the last trusted hop).
        assert_eq!(
            proxies.client(ip("127.0.0.1"), &HeaderMap::new()),
            ip("127.0.0.1")
        );
        assert_eq!(
            proxies.client(ip("127.0.0.1"), &headers(&["not-an-ip"])),
            ip("127.0.0.1")
        );
        assert!(TrustedProxies::new("10.0.0.0/33").is_err());
    }
}
