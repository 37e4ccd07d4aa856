//! Which destinations webhooks may reach. An owner's URL must not turn the gateway into
//! a way into the network it runs in: only `https://` URLs whose host is a public
//! address, checked when the endpoint is added and again at every connection — the DNS
//! answers are filtered by [`GuardedResolver`] before reqwest connects, so a name that
//! resolves to 10.0.0.1 or 169.254.169.254 (cloud metadata) is refused with no packet
//! sent there. `CIQ_WEBHOOK_ALLOW_PRIVATE_NETWORKS=true` lifts both rules (local
//! development, tests).

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// Whether `ip` is an ordinary public unicast address: not loopback, private,
/// link-local (cloud metadata lives there), shared (CGNAT), documentation,
/// benchmarking, multicast, reserved or unspecified; IPv4 inside IPv6 is judged as IPv4
/// where the mapping is exact (`::ffff:a.b.c.d`), and every other form that carries an
/// IPv4 address (`::a.b.c.d`, `::ffff:0:a.b.c.d`, NAT64, 6to4, Teredo) is refused.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (s[..6] == [0; 6]) // ::/96, IPv4-compatible (::127.0.0.1)
                || (s[..4] == [0; 4] && s[4] == 0xffff && s[5] == 0) // ::ffff:0:0/96, translated
                || (s[0] == 0x2001 && s[1] == 0) // Teredo 2001::/32: an IPv4 address inside
                || (s[0] == 0x0100 && s[1..4] == [0; 3]) // discard-only 100::/64
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s[0] & 0xffc0) == 0xfec0 // site-local fec0::/10
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64: an IPv4 address in disguise
                || (s[0] == 0x2002) // 6to4: likewise
                || v6 == Ipv6Addr::from(1u128)) // ::1 spelled otherwise
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240) // reserved
}

/// Why a URL or an address is refused, in words for the owner.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// Checks an endpoint URL: absolute, `https://` (or `http://` where private networks
/// are allowed), a host and nothing of a user or password, at most [`MAX_URL_LEN`]
/// characters; a host that is an IP address must be public (unless allowed). Returns it
/// normalised (the fragment, never sent, dropped).
pub fn check_url(text: &str, allow_private: bool) -> Result<url::Url, Refused> {
    let text = text.trim();
    if text.len() > MAX_URL_LEN {
        return Err(Refused(format!("must be at most {MAX_URL_LEN} characters")));
    }
    let mut url = url::Url::parse(text)
        .map_err(|_| Refused("must be an absolute URL like https://example.com/hooks".into()))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Err(Refused("must start with https://".into())),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Refused(
            "must not carry a user name or password; the signature authenticates us".into(),
        ));
    }
    let Some(host) = url.host() else {
        return Err(Refused("must name a host".into()));
    };
    let literal = match host {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(name) if name.eq_ignore_ascii_case("localhost") => {
            Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        }
        url::Host::Domain(_) => None,
    };
    if let Some(ip) = literal
        && !allow_private
        && !is_public(ip)
    {
        return Err(Refused(format!(
            "points at {ip}, which is not a public address"
        )));
    }
    url.set_fragment(None);
    Ok(url)
}

/// How names are looked up (the system's resolver; tests give their own answers).
pub trait Lookup: Send + Sync {
    /// The addresses `host` resolves to.
    fn lookup(
        &self,
        host: String,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>>;
}

/// The system's resolver (`getaddrinfo`, through tokio).
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(
        &self,
        host: String,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>> {
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .map(|addr| addr.ip())
                .collect())
        })
    }
}

/// reqwest's resolver for webhooks: the lookup's answers, without those that are not
/// public (unless allowed); a name left with none is refused before any connection.
pub struct GuardedResolver {
    /// Where names are looked up.
    pub lookup: Arc<dyn Lookup>,
    /// Whether non-public addresses may be used.
    pub allow_private: bool,
}

impl GuardedResolver {
    /// The addresses of `host` that may be connected to.
    pub async fn allowed(&self, host: &str) -> Result<Vec<IpAddr>, Refused> {
        let found = self
            .lookup
            .lookup(host.to_owned())
            .await
            .map_err(|err| Refused(format!("{host} could not be resolved: {err}")))?;
        let allowed: Vec<IpAddr> = found
            .into_iter()
            .filter(|ip| self.allow_private || is_public(*ip))
            .collect();
        if allowed.is_empty() {
            // Which addresses, the owner is not told: a delivery log must not map the
            // gateway's network (`vm` is 127.0.0.1) for whoever names a host.
            return Err(Refused(format!(
                "{host} does not resolve to a public address"
            )));
        }
        Ok(allowed)
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = GuardedResolver {
            lookup: self.lookup.clone(),
            allow_private: self.allow_private,
        };
        Box::pin(async move {
            let allowed = guard.allowed(name.as_str()).await?;
            let addrs: reqwest::dns::Addrs =
                Box::new(allowed.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_pass() {
        for private in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "2001:db8::1",
            "64:ff9b::a00:1",
            "ff02::1",
            // Every other spelling of an IPv4 address inside IPv6.
            "::127.0.0.1",
            "::7f00:1",
            "::ffff:0:7f00:1",
            "::ffff:0:a00:1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2002:7f00:1::",
            "100::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private} passed");
        }
        for public in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public} refused");
        }
    }

    #[test]
    fn urls_are_https_with_a_public_host() {
        let ok = check_url("https://hooks.example.com/in#frag", false).unwrap();
        assert_eq!(ok.as_str(), "https://hooks.example.com/in");
        for (bad, why) in [
            ("http://hooks.example.com/", "https://"),
            ("ftp://hooks.example.com/", "https://"),
            ("hooks.example.com", "absolute URL"),
            ("https://user:pw@hooks.example.com/", "user name"),
            ("https://10.0.0.1/hook", "not a public address"),
            ("https://[::1]/hook", "not a public address"),
            ("https://localhost:8443/", "not a public address"),
            (
                "https://169.254.169.254/latest/meta-data",
                "not a public address",
            ),
        ] {
            let refused = check_url(bad, false).unwrap_err().0;
            assert!(refused.contains(why), "{bad}: {refused}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(check_url(&long, false).is_err());
        // The switch for development and tests.
        assert!(check_url("http://127.0.0.1:9000/hook", true).is_ok());
    }

    struct Answers(Vec<IpAddr>);

    impl Lookup for Answers {
        fn lookup(
            &self,
            _host: String,
        ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>> {
            let answers = self.0.clone();
            Box::pin(async move { Ok(answers) })
        }
    }

    #[tokio::test]
    async fn names_that_resolve_to_private_addresses_are_refused_before_connecting() {
        let guard = |ips: &[&str], allow_private| GuardedResolver {
            lookup: Arc::new(Answers(ips.iter().map(|ip| ip.parse().unwrap()).collect())),
            allow_private,
        };
        for ips in [
            &["10.0.0.1"][..],
            &["169.254.169.254"],
            &["127.0.0.1", "::1"],
            &[],
        ] {
            let refused = guard(ips, false)
                .allowed("hooks.example.com")
                .await
                .unwrap_err();
            assert!(
                refused
                    .0
                    .contains("hooks.example.com does not resolve to a public address"),
                "{refused}"
            );
            for ip in ips {
                assert!(!refused.0.contains(ip), "{refused} names {ip}");
            }
        }
        // A mixed answer keeps only the public address.
        let allowed = guard(&["10.0.0.1", "93.184.216.34"], false)
            .allowed("hooks.example.com")
            .await
            .unwrap();
        assert_eq!(allowed, ["93.184.216.34".parse::<IpAddr>().unwrap()]);
        assert_eq!(
            guard(&["10.0.0.1"], true).allowed("h").await.unwrap().len(),
            1
        );
    }
}
