//! The one guard for URLs that come from data: image URLs a scraped page shows, the
//! pages it links to, push endpoints users registered. Configured endpoints (a
//! provider's base URL from the environment) do not come through here.
//!
//! A URL passes when its origin (scheme, host, port) is exactly one the operator
//! configured (a site's base URL; the tests' stand-ins on loopback are allowed this way
//! and no other), or when it is `https`, carries no user name or password, names a host
//! the caller accepts (an address literal never passes a list of hosts, and a configured
//! origin's host passes only at that origin), and that host is not, and does not resolve
//! to, an address inside
//! anything: loopback, RFC 1918, link-local (169.254/16 holds the ECS credentials and
//! metadata endpoints), CGNAT, unique-local, IPv4-mapped and the like. Clients built by
//! [`Guard::client`] resolve names through the same check and re-check every redirect
//! hop, so a public name that answers with a private address, or a redirect into the
//! VPC, is refused at the hop that tries it.
//!
//! What remains: a name could resolve to a public address when checked and to a
//! private one a moment later inside Chromium, which resolves on its own (the browser's
//! requests are checked by URL, see scraping's `browser`); reqwest's requests cannot,
//! since they connect to the addresses checked here.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why a URL is refused. Messages name the host, never the whole URL (a query string
/// can carry a token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("not a URL")]
    Unparsable,
    #[error("scheme `{0}` is not https")]
    Scheme(String),
    #[error("the URL carries a user name or password")]
    Userinfo,
    #[error("host `{0}` is not one this may reach")]
    Host(String),
    #[error("host `{host}` is or resolves to a non-public address ({address})")]
    Private { host: String, address: IpAddr },
    #[error("host `{0}` does not resolve")]
    Unresolved(String),
}

/// The hosts a caller accepts besides exact origins.
#[derive(Debug, Clone)]
pub enum Hosts {
    /// Any public host.
    Any,
    /// These hosts and their subdomains (`notify.windows.com` accepts
    /// `wns2-par02p.notify.windows.com`).
    Within(Vec<String>),
}

/// The rules for one kind of URL.
#[derive(Debug, Clone)]
pub struct Guard {
    /// Exact origins allowed whatever they are (scheme://host:port), from configuration.
    origins: Vec<Origin>,
    hosts: Hosts,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl Origin {
    fn of(url: &Url) -> Option<Origin> {
        Some(Origin {
            scheme: url.scheme().to_string(),
            host: url.host_str()?.to_ascii_lowercase(),
            port: url.port_or_known_default(),
        })
    }
}

impl Guard {
    /// A guard accepting `hosts`, plus each of `origins` exactly (base URLs from the
    /// environment; anything unparsable among them is ignored, since the setting that
    /// holds it fails on its own).
    pub fn new<'a>(hosts: Hosts, origins: impl IntoIterator<Item = &'a str>) -> Guard {
        Guard {
            origins: origins
                .into_iter()
                .filter_map(|o| Url::parse(o).ok())
                .filter_map(|u| Origin::of(&u))
                .collect(),
            hosts,
        }
    }

    /// Whether `url`'s origin is one configured exactly.
    pub fn is_configured_origin(&self, url: &Url) -> bool {
        Origin::of(url).is_some_and(|o| self.origins.contains(&o))
    }

    /// Checks what can be checked without the network: scheme, userinfo, host, and the
    /// address when the host is an IP literal.
    pub fn check_url(&self, url: &Url) -> Result<(), Refused> {
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refused::Userinfo);
        }
        if self.is_configured_origin(url) {
            return Ok(());
        }
        if url.scheme() != "https" {
            return Err(Refused::Scheme(url.scheme().chars().take(16).collect()));
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_ascii_lowercase(),
            Some(url::Host::Ipv4(a)) => return self.check_literal(IpAddr::V4(a)),
            Some(url::Host::Ipv6(a)) => return self.check_literal(IpAddr::V6(a)),
            None => return Err(Refused::Unparsable),
        };
        // A configured origin's host is trusted at that origin only (the resolver does
        // not check its addresses): another port or scheme on it is refused.
        if self.origins.iter().any(|o| o.host == host) {
            return Err(Refused::Host(shorten(&host)));
        }
        match &self.hosts {
            Hosts::Any => Ok(()),
            Hosts::Within(allowed) => {
                let inside = allowed
                    .iter()
                    .any(|a| host == *a || host.ends_with(&format!(".{a}")));
                if inside {
                    Ok(())
                } else {
                    Err(Refused::Host(shorten(&host)))
                }
            }
        }
    }

    /// An address literal as a host: refused under a list of hosts (it would skip the
    /// list), otherwise admitted only if public.
    fn check_literal(&self, address: IpAddr) -> Result<(), Refused> {
        match self.hosts {
            Hosts::Within(_) => Err(Refused::Host(address.to_string())),
            Hosts::Any => public(&address.to_string(), address),
        }
    }

    /// [`Guard::check_url`] on a string.
    pub fn check(&self, url: &str) -> Result<Url, Refused> {
        let parsed = Url::parse(url).map_err(|_| Refused::Unparsable)?;
        self.check_url(&parsed)?;
        Ok(parsed)
    }

    /// Checks `url` and, for a host name outside the configured origins, that every
    /// address it resolves to is public.
    pub async fn check_resolved(&self, url: &str) -> Result<Url, Refused> {
        let parsed = self.check(url)?;
        if self.is_configured_origin(&parsed) {
            return Ok(parsed);
        }
        if let Some(url::Host::Domain(host)) = parsed.host() {
            resolve_public(host).await?;
        }
        Ok(parsed)
    }

    /// A client for URLs this guard admits: names resolved through the public-address
    /// check (except the configured origins' hosts), at most `max_redirects` redirects,
    /// each checked before it is followed. Timeouts and the size of what is read stay
    /// the caller's.
    pub fn client(
        &self,
        builder: reqwest::ClientBuilder,
        max_redirects: usize,
    ) -> reqwest::Result<reqwest::Client> {
        let guard = self.clone();
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > max_redirects {
                attempt.error(format!("more than {max_redirects} redirects"))
            } else if let Err(refused) = guard.check_url(attempt.url()) {
                attempt.error(format!("redirect refused: {refused}"))
            } else {
                attempt.follow()
            }
        });
        let trusted: Vec<String> = self.origins.iter().map(|o| o.host.clone()).collect();
        builder
            .redirect(policy)
            .dns_resolver(Arc::new(PublicOnly { trusted }))
            .build()
    }
}

/// Resolves names and keeps only public addresses; a name with none left fails. The
/// hosts of configured origins resolve unchecked.
struct PublicOnly {
    trusted: Vec<String>,
}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_ascii_lowercase();
        let trusted = self.trusted.contains(&host);
        Box::pin(async move {
            let addresses: Vec<SocketAddr> = if trusted {
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect()
            } else {
                resolve_public(&host).await?
            };
            let addrs: Addrs = Box::new(addresses.into_iter());
            Ok(addrs)
        })
    }
}

async fn resolve_public(host: &str) -> Result<Vec<SocketAddr>, Refused> {
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|_| Refused::Unresolved(shorten(host)))?
        .collect();
    if addresses.is_empty() {
        return Err(Refused::Unresolved(shorten(host)));
    }
    // One private answer refuses the name: a client may pick any of them.
    for a in &addresses {
        public(host, a.ip())?;
    }
    Ok(addresses)
}

fn public(host: &str, address: IpAddr) -> Result<(), Refused> {
    if is_public(address) {
        Ok(())
    } else {
        Err(Refused::Private {
            host: shorten(host),
            address,
        })
    }
}

/// Hosts in messages are cut: a hostile page chooses them.
fn shorten(host: &str) -> String {
    host.chars().take(100).collect()
}

/// Whether `address` is on the public internet (not any of the special-purpose ranges
/// of RFC 6890 and its successors that a request from inside the VPC could reach).
pub(crate) fn is_public(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(a) => is_public_v4(a),
        IpAddr::V6(a) => is_public_v6(a),
    }
}

fn is_public_v4(a: Ipv4Addr) -> bool {
    let [b0, b1, b2, _] = a.octets();
    !(a.is_unspecified()
        || a.is_loopback()
        || a.is_private()
        || a.is_link_local()
        || a.is_broadcast()
        || a.is_documentation()
        || a.is_multicast()
        || b0 == 0
        // 100.64.0.0/10, carrier-grade NAT.
        || (b0 == 100 && (64..128).contains(&b1))
        // 192.0.0.0/24, IETF protocol assignments.
        || (b0 == 192 && b1 == 0 && b2 == 0)
        // 198.18.0.0/15, benchmarking.
        || (b0 == 198 && (b1 == 18 || b1 == 19))
        // 240.0.0.0/4, reserved.
        || b0 >= 240)
}

fn is_public_v6(a: Ipv6Addr) -> bool {
    if let Some(v4) = a.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = a.segments();
    !(a.is_unspecified()
        || a.is_loopback()
        || a.is_multicast()
        // fc00::/7, unique local.
        || (s[0] & 0xfe00) == 0xfc00
        // fe80::/10, link-local.
        || (s[0] & 0xffc0) == 0xfe80
        // ::/96, IPv4-compatible (deprecated), and 64:ff9b::/96, NAT64 to anything.
        || (s[0..6] == [0, 0, 0, 0, 0, 0])
        || (s[0] == 0x64 && s[1] == 0xff9b)
        // 2001:db8::/32, documentation.
        || (s[0] == 0x2001 && s[1] == 0xdb8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_purpose_addresses_are_not_public() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.170.2",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2001:db8::1",
        ] {
            assert!(!is_public(a.parse().unwrap()), "{a} counted as public");
        }
        for a in ["8.8.8.8", "151.101.1.1", "2a04:4e42::1", "::ffff:8.8.8.8"] {
            assert!(is_public(a.parse().unwrap()), "{a} counted as private");
        }
    }

    #[test]
    fn urls_are_checked_on_their_parsed_origin() {
        let guard = Guard::new(
            Hosts::Within(vec!["entraste.com".into()]),
            ["http://127.0.0.1:4000"],
        );
        assert!(guard.check("http://127.0.0.1:4000/evento/1").is_ok());
        assert!(guard.check("https://www.entraste.com/evento/1").is_ok());
        for (url, refused) in [
            ("http://127.0.0.1:4001/", "scheme `http` is not https"),
            (
                "http://127.0.0.1:4000@127.0.0.1:4001/",
                "the URL carries a user name or password",
            ),
            (
                "https://entraste.com@127.0.0.1:4001/",
                "the URL carries a user name or password",
            ),
            (
                "https://entraste.com.evil.test/",
                "host `entraste.com.evil.test` is not one this may reach",
            ),
            (
                "https://169.254.169.254/latest/meta-data/",
                "host `169.254.169.254` is not one this may reach",
            ),
            ("javascript:alert(1)", "scheme `javascript` is not https"),
            (
                "https://151.101.1.1/",
                "host `151.101.1.1` is not one this may reach",
            ),
            (
                "https://[2a04:4e42::1]/",
                "host `2a04:4e42::1` is not one this may reach",
            ),
        ] {
            assert_eq!(guard.check(url).unwrap_err().to_string(), refused, "{url}");
        }
        // Without a host list, an address literal passes only if public.
        let any = Guard::new(Hosts::Any, []);
        assert!(any.check("https://151.101.1.1/").is_ok());
        for (url, refused) in [
            (
                "https://169.254.169.254/latest/meta-data/",
                "host `169.254.169.254` is or resolves to a non-public address (169.254.169.254)",
            ),
            (
                "https://[::ffff:7f00:1]/",
                "host `::ffff:127.0.0.1` is or resolves to a non-public address (::ffff:127.0.0.1)",
            ),
        ] {
            assert_eq!(any.check(url).unwrap_err().to_string(), refused, "{url}");
        }
    }

    #[test]
    fn a_configured_origins_host_is_trusted_at_that_origin_only() {
        let guard = Guard::new(Hosts::Any, ["https://stand-in.test:8443"]);
        assert!(guard.check("https://stand-in.test:8443/push").is_ok());
        for url in [
            "https://stand-in.test/",
            "https://stand-in.test:9000/",
            "https://STAND-IN.test:22/",
        ] {
            assert_eq!(
                guard.check(url).unwrap_err(),
                Refused::Host("stand-in.test".into()),
                "{url}"
            );
        }
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused() {
        let guard = Guard::new(Hosts::Any, []);
        let refused = guard
            .check_resolved("https://localhost/x")
            .await
            .unwrap_err();
        assert!(matches!(refused, Refused::Private { .. }), "{refused}");
    }
}
