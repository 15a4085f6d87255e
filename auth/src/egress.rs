//! The egress policy: where Brain may send a request whose address a tenant or an API client
//! chose (a connector's site URL, a task's callback URL, an identity provider's issuer).
//!
//! Only public addresses are reachable: loopback, private, link-local (cloud metadata),
//! shared (CGNAT), unique-local, multicast, unspecified, documentation and reserved ranges
//! are refused, also when they hide inside an IPv6 address (IPv4-mapped, NAT64, 6to4). The
//! check runs twice: on the URL (scheme, and a host written as an IP address, which no
//! resolver sees) and in the HTTP client's resolver on every address it would connect to —
//! so a name that resolves to a public address when checked and to `127.0.0.1` when
//! connected (DNS rebinding) still cannot reach loopback. Clients built here follow no
//! redirects (a redirect to an IP address would skip the resolver) and use no proxy.
//!
//! A deployment may allow ranges (`BRAIN_EGRESS_ALLOW`, a CIDR list: tests and local
//! development with fakes on loopback) and plain `http://` (`BRAIN_EGRESS_ALLOW_HTTP`);
//! neither is allowed by default.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why a request was not sent. The message names the address and the rule, never a body.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    #[error("`{0}` is not an http(s) URL with a host")]
    BadUrl(String),
    #[error("`{0}` must use https://")]
    HttpsRequired(String),
    #[error("{host} is {kind} address ({addr}); Brain only connects to public addresses")]
    Refused {
        host: String,
        addr: IpAddr,
        kind: &'static str,
    },
    #[error("{0} could not be resolved")]
    Unresolved(String),
}

/// Comma-separated CIDR ranges or single addresses (deployment settings).
pub fn parse_ranges(list: &str) -> Result<Arc<[IpNet]>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("`{s}` is not an IP range (CIDR) or address"))
        })
        .collect()
}

/// The rules; cheap to clone. `Default` is the production policy: public HTTPS only.
#[derive(Clone, Default)]
pub struct EgressPolicy {
    allow: Arc<[IpNet]>,
    allow_http: bool,
}

impl fmt::Debug for EgressPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EgressPolicy")
            .field(
                "allow",
                &self
                    .allow
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>(),
            )
            .field("allow_http", &self.allow_http)
            .finish()
    }
}

impl EgressPolicy {
    /// A policy allowing the comma-separated CIDR ranges (`127.0.0.0/8,::1/128`; a bare
    /// address is one host) and, when `allow_http`, plain `http://` URLs.
    pub fn new(allow: &str, allow_http: bool) -> Result<Self, String> {
        Ok(Self {
            allow: parse_ranges(allow)?,
            allow_http,
        })
    }

    /// Loopback allowed, plain HTTP allowed: for tests whose fakes listen on 127.0.0.1.
    pub fn loopback() -> Self {
        Self::new("127.0.0.0/8,::1/128", true).unwrap_or_default()
    }

    pub fn allows_http(&self) -> bool {
        self.allow_http
    }

    /// Whether Brain may connect to `addr` (reached through `host`).
    pub fn check_ip(&self, host: &str, addr: IpAddr) -> Result<(), EgressError> {
        let Some(kind) = non_public(addr) else {
            return Ok(());
        };
        if self.allow.iter().any(|net| net.contains(&addr)) {
            return Ok(());
        }
        Err(EgressError::Refused {
            host: host.to_owned(),
            addr,
            kind,
        })
    }

    /// Checks what can be checked without resolving: the scheme, and a host written as an IP
    /// address. Hostnames are checked by the resolver of [`EgressPolicy::client`] when the
    /// request connects.
    pub fn check_url(&self, url: &Url) -> Result<(), EgressError> {
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => return Err(EgressError::HttpsRequired(redacted(url))),
            _ => return Err(EgressError::BadUrl(redacted(url))),
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| EgressError::BadUrl(redacted(url)))?;
        match literal_ip(host) {
            Some(ip) => self.check_ip(host, ip),
            None => Ok(()),
        }
    }

    /// [`EgressPolicy::check_url`] for a URL given as text.
    pub fn check_str(&self, raw: &str) -> Result<Url, EgressError> {
        let url = Url::parse(raw).map_err(|_| EgressError::BadUrl(raw.to_owned()))?;
        self.check_url(&url)?;
        Ok(url)
    }

    /// Resolves `url`'s host and checks every address, as connecting would: for checks at
    /// configuration time (a clear error before anything is stored).
    pub async fn check_resolved(&self, url: &Url) -> Result<(), EgressError> {
        self.check_url(url)?;
        match url.host_str() {
            Some(host) if literal_ip(host).is_none() => resolve(self, host).await.map(drop),
            _ => Ok(()),
        }
    }

    /// A client builder whose every connection obeys the policy: the guarded resolver, no
    /// redirects, no proxy. Callers add timeouts and headers; requests must still pass
    /// [`EgressPolicy::check_url`] (IP-literal hosts skip resolvers).
    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        crate::install_crypto_provider();
        reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver(self.clone())))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
    }
}

/// The policy's refusal inside a `reqwest` error (raised by the guarded resolver), if that
/// is why the request failed.
pub fn refusal(error: &(dyn std::error::Error + 'static)) -> Option<EgressError> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(refused) = e.downcast_ref::<EgressError>() {
            return Some(refused.clone());
        }
        current = e.source();
    }
    None
}

/// The address a URL host (already normalised by the URL parser: `0x7f.1` is `127.0.0.1`)
/// spells, if it is one; IPv6 hosts come in brackets.
fn literal_ip(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse().ok()
}

/// The URL without credentials, query or fragment, for messages.
fn redacted(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

struct GuardedResolver(EgressPolicy);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = resolve(&policy, &host).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The host's addresses that the policy allows; an error when there are none.
async fn resolve(policy: &EgressPolicy, host: &str) -> Result<Vec<SocketAddr>, EgressError> {
    let found: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|_| EgressError::Unresolved(host.to_owned()))?
        .collect();
    let mut refused = None;
    let allowed: Vec<SocketAddr> = found
        .into_iter()
        .filter(|a| match policy.check_ip(host, a.ip()) {
            Ok(()) => true,
            Err(e) => {
                refused.get_or_insert(e);
                false
            }
        })
        .collect();
    if allowed.is_empty() {
        return Err(refused.unwrap_or_else(|| EgressError::Unresolved(host.to_owned())));
    }
    Ok(allowed)
}

/// What kind of non-public address `ip` is ("a loopback", "a private", …), or `None` for a
/// public one.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, ..) => "an unspecified (0.0.0.0/8)",
        (127, ..) => "a loopback",
        (10, ..) | (172, 16..=31, _) | (192, 168, _) => "a private",
        (169, 254, _) => "a link-local (cloud metadata)",
        (100, 64..=127, _) => "a shared (carrier-grade NAT)",
        (192, 0, 0) => "an IETF protocol (192.0.0.0/24)",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "a documentation",
        (198, 18..=19, _) => "a benchmarking (198.18.0.0/15)",
        (224..=239, ..) => "a multicast",
        (240..=255, ..) => "a reserved (240.0.0.0/4)",
        _ => return None,
    })
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        return Some("an unspecified (::)");
    }
    if ip.is_loopback() {
        return Some("a loopback");
    }
    // IPv4 inside IPv6: mapped (::ffff:a.b.c.d), NAT64 (64:ff9b::a.b.c.d), 6to4
    // (2002:AABB:CCDD::) — judged by the IPv4 address they lead to.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return non_public_v4(v4);
    }
    let s = ip.segments();
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return non_public_v4(embedded_v4(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return non_public_v4(embedded_v4(s[1], s[2]));
    }
    Some(match s[0] {
        // IPv4-compatible (::a.b.c.d, deprecated) and the rest of ::/8.
        0 => "a reserved (::/8)",
        0x0100 if s[1..4] == [0, 0, 0] => "a discard-only (100::/64)",
        0x2001 if s[1] == 0 => "a Teredo (2001::/32)",
        0x2001 if s[1] == 0x0db8 => "a documentation",
        x if x & 0xfe00 == 0xfc00 => "a unique-local (private)",
        x if x & 0xffc0 == 0xfe80 => "a link-local",
        x if x & 0xffc0 == 0xfec0 => "a site-local (private)",
        x if x & 0xff00 == 0xff00 => "a multicast",
        _ => return None,
    })
}

fn embedded_v4(high: u16, low: u16) -> Ipv4Addr {
    let [a, b] = high.to_be_bytes();
    let [c, d] = low.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(policy: &EgressPolicy, url: &str) -> bool {
        matches!(
            policy.check_str(url),
            Err(EgressError::Refused { .. } | EgressError::HttpsRequired(_))
        )
    }

    #[test]
    fn every_non_public_range_is_refused_and_public_addresses_pass() {
        let policy = EgressPolicy::default();
        for url in [
            "https://127.0.0.1/",
            "https://127.1.2.3:8200/v1/secret",
            "https://10.0.0.1/",
            "https://172.16.5.4/",
            "https://192.168.1.1/",
            "https://169.254.169.254/latest/meta-data/",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://224.0.0.1/",
            "https://255.255.255.255/",
            "https://[::1]/",
            "https://[::]/",
            "https://[fd00:ec2::254]/",
            "https://[fe80::1]/",
            "https://[ff02::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:169.254.169.254]/",
            "https://[64:ff9b::a00:1]/",
            "https://[2002:7f00:1::]/",
            // Shorthand forms URL parsers normalise to 127.0.0.1.
            "https://2130706433/",
            "https://0x7f.1/",
            "https://127.1/",
        ] {
            assert!(refused(&policy, url), "{url} was allowed");
        }
        for url in [
            "https://93.184.215.14/",
            "https://[2606:4700::6810:84e5]/",
            "https://example.com/",
            "https://172.32.0.1/",
            "https://100.128.0.1/",
        ] {
            assert_eq!(policy.check_str(url).map(drop), Ok(()), "{url} was refused");
        }
    }

    #[test]
    fn https_is_required_unless_the_deployment_allows_http() {
        let strict = EgressPolicy::default();
        assert!(matches!(
            strict.check_str("http://example.com/"),
            Err(EgressError::HttpsRequired(_))
        ));
        assert!(matches!(
            strict.check_str("ftp://example.com/"),
            Err(EgressError::BadUrl(_))
        ));
        let dev = EgressPolicy::new("", true).unwrap();
        assert_eq!(dev.check_str("http://example.com/").map(drop), Ok(()));
    }

    #[test]
    fn the_allow_list_opens_exactly_its_ranges() {
        let policy = EgressPolicy::new(" 127.0.0.0/8 , ::1 ", false).unwrap();
        assert_eq!(policy.check_str("https://127.0.0.1:9/").map(drop), Ok(()));
        assert_eq!(policy.check_str("https://[::1]:9/").map(drop), Ok(()));
        assert!(refused(&policy, "https://10.0.0.1/"));
        assert!(refused(&policy, "https://169.254.169.254/"));
        assert!(EgressPolicy::new("10.0.0.0/33", false).is_err());
        assert!(EgressPolicy::new("localhost", false).is_err());
    }

    #[test]
    fn messages_name_the_address_but_not_credentials_or_query() {
        let policy = EgressPolicy::default();
        let err = policy
            .check_str("http://user:pw@example.com/x?token=s3cret")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("s3cret") && !err.contains("pw@"), "{err}");
        let err = policy
            .check_str("https://169.254.169.254/")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("169.254.169.254") && err.contains("link-local"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_when_resolved() {
        let policy = EgressPolicy::default();
        let url = Url::parse("https://localhost:9/").unwrap();
        assert_eq!(policy.check_url(&url), Ok(()), "names pass the URL check");
        let err = policy.check_resolved(&url).await.unwrap_err();
        assert!(
            matches!(
                err,
                EgressError::Refused {
                    kind: "a loopback",
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
