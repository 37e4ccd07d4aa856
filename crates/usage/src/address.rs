//! Client addresses as the request log keeps them: enough to tell networks apart,
//! not enough to name a visitor.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `address` truncated to its network: an IPv4 address to its /24
/// (`203.0.113.0/24`), an IPv6 address to its /48 (`2001:db8:1::/48`; an IPv4-mapped
/// one as IPv4). Anything that is not an address is not kept (`None`).
pub fn truncated(address: &str) -> Option<String> {
    let ip: IpAddr = address.trim().parse().ok()?;
    Some(match ip {
        IpAddr::V4(v4) => v4_network(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4_network(v4),
            None => {
                let s = v6.segments();
                format!("{}/48", Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0))
            }
        },
    })
}

fn v4_network(v4: Ipv4Addr) -> String {
    let [a, b, c, _] = v4.octets();
    format!("{}/24", Ipv4Addr::new(a, b, c, 0))
}

#[cfg(test)]
mod tests {
    use super::truncated;

    #[test]
    fn addresses_keep_their_network_only() {
        assert_eq!(truncated("203.0.113.77").as_deref(), Some("203.0.113.0/24"));
        assert_eq!(
            truncated("2001:db8:1:2:3:4:5:6").as_deref(),
            Some("2001:db8:1::/48")
        );
        assert_eq!(
            truncated("::ffff:198.51.100.9").as_deref(),
            Some("198.51.100.0/24")
        );
        assert_eq!(truncated("not an address"), None);
        assert_eq!(truncated(""), None);
    }
}
