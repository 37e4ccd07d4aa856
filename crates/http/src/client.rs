//! The address a request came from, for per-address limits and the key history.

use poem::Request;

/// The TCP peer, or — when the proxy in front is trusted — the last
/// `X-Forwarded-For` entry, the one that proxy added itself (earlier entries come
/// from the client and could be anything).
pub fn client_address(req: &Request, trust_forwarded_for: bool) -> String {
    client_address_of(
        req.remote_addr(),
        req.headers().get("x-forwarded-for"),
        trust_forwarded_for,
    )
}

/// [`client_address`] from the parts of a request kept after it was handed on: its
/// peer and its `X-Forwarded-For`.
pub fn client_address_of(
    remote: &poem::web::RemoteAddr,
    forwarded_for: Option<&poem::http::HeaderValue>,
    trust_forwarded_for: bool,
) -> String {
    let forwarded = forwarded_for
        .filter(|_| trust_forwarded_for)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    match forwarded {
        Some(addr) => addr.to_owned(),
        None => remote
            .as_socket_addr()
            .map_or_else(|| remote.to_string(), |a| a.ip().to_string()),
    }
}

/// The group an address is throttled as: an IPv4 address alone, an IPv6 address by
/// its /64 (one subscriber's network: handing out a fresh address per attempt buys
/// nothing). Anything that is not an IP address is its own group.
pub fn throttle_group(address: &str) -> String {
    match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        _ => address.to_owned(),
    }
}

/// Whether the client reached us over TLS: directly, or through a trusted proxy that
/// says so in `X-Forwarded-Proto: https`.
pub fn over_tls(req: &Request, trust_forwarded_for: bool) -> bool {
    req.uri().scheme_str() == Some("https")
        || (trust_forwarded_for
            && req
                .headers()
                .get("x-forwarded-proto")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https")))
}

#[cfg(test)]
mod tests {
    use super::{client_address, throttle_group};

    #[test]
    fn ipv6_addresses_are_throttled_by_their_64() {
        assert_eq!(
            throttle_group("2001:db8:1:2:aaaa::1"),
            throttle_group("2001:db8:1:2:ffff:ffff:ffff:ffff")
        );
        assert_eq!(throttle_group("2001:db8:1:2::7"), "2001:db8:1:2::/64");
        assert_ne!(
            throttle_group("2001:db8:1:2::1"),
            throttle_group("2001:db8:1:3::1")
        );
        assert_eq!(throttle_group("203.0.113.7"), "203.0.113.7");
        assert_eq!(throttle_group("::ffff:203.0.113.7"), "203.0.113.7");
    }

    #[test]
    fn the_trusted_proxys_own_entry_is_the_client_address() {
        let req = poem::Request::builder()
            .header("x-forwarded-for", "6.6.6.6, 203.0.113.7")
            .finish();
        assert_eq!(client_address(&req, true), "203.0.113.7");
        // Untrusted, the header is ignored.
        assert_ne!(client_address(&req, false), "203.0.113.7");
        assert_ne!(client_address(&req, false), "6.6.6.6");
    }
}
