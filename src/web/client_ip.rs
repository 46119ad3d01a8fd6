//! The client's address, one function for rate limits, audit and sessions: the
//! socket peer, or `X-Forwarded-For` only as far as `GATEHOUSE_TRUSTED_PROXIES` allows.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::http::HeaderMap;

use crate::config::TrustedProxies;

pub fn client_ip(
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
) -> Option<IpAddr> {
    let peer = peer.map(|p| p.ip().to_canonical());
    // Every X-Forwarded-For entry, in order, unparsable ones kept as `None`: the trusted
    // entry is found by its position, and dropping an entry (a proxy's "IP:port", garbage)
    // would shift the client's own forged entries into that position. A header that is not
    // text counts as one unreadable entry.
    let forwarded: Vec<Option<IpAddr>> = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| match v.to_str() {
            Ok(v) => v.split(',').map(forwarded_entry).collect(),
            Err(_) => vec![None],
        })
        .collect();
    match trusted {
        TrustedProxies::Hops(0) => peer,
        // N proxies in front: the Nth entry from the right is what the outermost one saw.
        // Fewer entries, or one that cannot be read there: the peer, never an entry further
        // left (the client wrote those).
        TrustedProxies::Hops(n) => forwarded
            .len()
            .checked_sub(usize::from(*n))
            .and_then(|i| forwarded.get(i).copied().flatten())
            .or(peer),
        TrustedProxies::Networks(nets) => {
            let trusted_ip = |ip: &IpAddr| nets.iter().any(|n| n.contains(ip));
            let peer_ip = peer?;
            if !trusted_ip(&peer_ip) {
                return Some(peer_ip);
            }
            // Walk from the right past our own proxies; the first other address is the client.
            for entry in forwarded.iter().rev() {
                match entry {
                    Some(ip) if trusted_ip(ip) => {}
                    Some(ip) => return Some(*ip),
                    // Unreadable where one of our proxies wrote: nothing to its left is known
                    // to come from a proxy.
                    None => return Some(peer_ip),
                }
            }
            forwarded.first().copied().flatten().or(Some(peer_ip))
        }
    }
}

/// One `X-Forwarded-For` entry: an address, or an address with a port as some proxies write
/// it (`1.2.3.4:5`, `[::1]:5`, `[::1]`). IPv4-mapped IPv6 addresses count as the IPv4 one.
fn forwarded_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    let ip = entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            let inner = entry.strip_prefix('[')?.strip_suffix(']')?;
            inner.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
        })?;
    Some(ip.to_canonical())
}

/// The client's address as text ("unknown" when there is none), for logs, audit rows and
/// rate-limit keys; worked out once per request by the tag layer and read as an extractor.
#[derive(Debug, Clone)]
pub struct ClientIp(pub String);

/// The client address of a request (the tag layer works it out once per request).
pub fn of_request(request: &axum::extract::Request, trusted: &TrustedProxies) -> ClientIp {
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    ClientIp(
        client_ip(peer, request.headers(), trusted)
            .map_or_else(|| "unknown".to_string(), |i| i.to_string()),
    )
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ClientIp>()
            .cloned()
            .unwrap_or_else(|| ClientIp("unknown".into())))
    }
}

impl ClientIp {
    /// The address for an audit row: `None` when it is not known.
    pub fn known(&self) -> Option<String> {
        (self.0 != "unknown").then(|| self.0.clone())
    }

    /// What an anonymous client's requests are counted under by the rate limiter. An IPv6
    /// client is counted by its /64: one host is routinely handed a whole /64 and may use
    /// any address in it, so a per-address key would give it 2^64 budgets. (Logs and audit
    /// rows keep the full address.)
    pub fn rate_key(&self) -> String {
        match self.0.parse::<IpAddr>().map(|ip| ip.to_canonical()) {
            Ok(IpAddr::V6(v6)) => {
                let [a, b, c, d, ..] = v6.segments();
                format!("ip6:{}/64", Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
            }
            Ok(IpAddr::V4(v4)) => format!("ip:{v4}"),
            Err(_) => format!("ip:{}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    fn peer(ip: &str) -> Option<SocketAddr> {
        Some(SocketAddr::new(ip.parse().expect("ip"), 4000))
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().expect("ip"))
    }

    #[test]
    fn untrusted_header_changes_nothing() {
        let h = headers(&["6.6.6.6"]);
        assert_eq!(
            client_ip(peer("10.0.0.5"), &h, &TrustedProxies::Hops(0)),
            ip("10.0.0.5")
        );
        let nets = TrustedProxies::Networks(vec!["10.1.0.0/16".parse().expect("net")]);
        assert_eq!(client_ip(peer("192.0.2.9"), &h, &nets), ip("192.0.2.9"));
    }

    #[test]
    fn hop_count_takes_the_entry_the_outer_proxy_wrote() {
        // Client forged "6.6.6.6"; the load balancer appended the real 203.0.113.7.
        let h = headers(&["6.6.6.6, 203.0.113.7"]);
        assert_eq!(
            client_ip(peer("10.0.0.5"), &h, &TrustedProxies::Hops(1)),
            ip("203.0.113.7")
        );
        let two = headers(&["6.6.6.6, 203.0.113.7", "10.0.0.9"]);
        assert_eq!(
            client_ip(peer("10.0.0.5"), &two, &TrustedProxies::Hops(2)),
            ip("203.0.113.7")
        );
        // Fewer entries than hops: the peer, not a forged value.
        assert_eq!(
            client_ip(peer("10.0.0.5"), &headers(&[]), &TrustedProxies::Hops(1)),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn networks_skip_our_own_proxies_from_the_right() {
        let nets = TrustedProxies::Networks(vec!["10.0.0.0/8".parse().expect("net")]);
        let h = headers(&["6.6.6.6, 203.0.113.7, 10.2.3.4"]);
        assert_eq!(client_ip(peer("10.0.0.5"), &h, &nets), ip("203.0.113.7"));
        assert_eq!(
            client_ip(peer("10.0.0.5"), &headers(&["garbage"]), &nets),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn a_port_on_the_trusted_entry_does_not_hand_over_to_the_forged_one() {
        // A proxy that appends "IP:port": the forged entry on its left must not win.
        let one = TrustedProxies::Hops(1);
        let h = headers(&["6.6.6.6, 203.0.113.7:51234"]);
        assert_eq!(client_ip(peer("10.0.0.5"), &h, &one), ip("203.0.113.7"));
        let h = headers(&["6.6.6.6, [2001:db8::7]:51234"]);
        assert_eq!(client_ip(peer("10.0.0.5"), &h, &one), ip("2001:db8::7"));
        let h = headers(&["6.6.6.6, [2001:db8::7]"]);
        assert_eq!(client_ip(peer("10.0.0.5"), &h, &one), ip("2001:db8::7"));
        // A bare IPv6 address is an address, not "address:port".
        let h = headers(&["6.6.6.6, 2001:db8::7"]);
        assert_eq!(client_ip(peer("10.0.0.5"), &h, &one), ip("2001:db8::7"));
        let h = headers(&["6.6.6.6, 203.0.113.7:5", "10.0.0.9:80"]);
        assert_eq!(
            client_ip(peer("10.0.0.5"), &h, &TrustedProxies::Hops(2)),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn an_unparsable_trusted_entry_falls_back_to_the_peer() {
        let one = TrustedProxies::Hops(1);
        for garbage in [
            "6.6.6.6, garbage",
            "6.6.6.6, ",
            "6.6.6.6, unknown",
            "6.6.6.6, 1.2.3.4:x",
        ] {
            assert_eq!(
                client_ip(peer("10.0.0.5"), &headers(&[garbage]), &one),
                ip("10.0.0.5"),
                "{garbage}"
            );
        }
        // Further left than the trusted position, garbage changes nothing.
        let h = headers(&["garbage, 203.0.113.7"]);
        assert_eq!(client_ip(peer("10.0.0.5"), &h, &one), ip("203.0.113.7"));
    }

    #[test]
    fn networks_read_ports_and_stop_at_garbage() {
        let nets = TrustedProxies::Networks(vec!["10.0.0.0/8".parse().expect("net")]);
        let h = headers(&["6.6.6.6, 203.0.113.7:51234, 10.2.3.4:8080"]);
        assert_eq!(client_ip(peer("10.0.0.5"), &h, &nets), ip("203.0.113.7"));
        let h = headers(&["6.6.6.6, [2001:db8::7]:443, 10.2.3.4"]);
        assert_eq!(client_ip(peer("10.0.0.5"), &h, &nets), ip("2001:db8::7"));
        // Garbage where our own proxy wrote the client: nothing to its left is believed.
        let h = headers(&["6.6.6.6, garbage, 10.2.3.4"]);
        assert_eq!(client_ip(peer("10.0.0.5"), &h, &nets), ip("10.0.0.5"));
        // Only our own proxies in the list: the leftmost is the client.
        let h = headers(&["10.9.9.9, 10.2.3.4"]);
        assert_eq!(client_ip(peer("10.0.0.5"), &h, &nets), ip("10.9.9.9"));
    }

    #[test]
    fn ipv4_mapped_addresses_are_ipv4() {
        assert_eq!(
            client_ip(
                peer("::ffff:192.0.2.9"),
                &headers(&[]),
                &TrustedProxies::Hops(0)
            ),
            ip("192.0.2.9")
        );
        let h = headers(&["6.6.6.6, [::ffff:203.0.113.7]:80"]);
        assert_eq!(
            client_ip(peer("10.0.0.5"), &h, &TrustedProxies::Hops(1)),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn anonymous_ipv6_clients_are_counted_by_their_64() {
        let key = |s: &str| ClientIp(s.to_string()).rate_key();
        // One /64 is one client: a host picks any of its 2^64 addresses at will.
        assert_eq!(key("2001:db8:1:2:3:4:5:6"), key("2001:db8:1:2:ffff::1"));
        assert_eq!(key("2001:db8:1:2::1"), "ip6:2001:db8:1:2::/64");
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        // IPv4 keeps the whole address; so does anything that is not an address.
        assert_eq!(key("203.0.113.7"), "ip:203.0.113.7");
        assert_ne!(key("203.0.113.7"), key("203.0.113.8"));
        assert_eq!(key("::ffff:203.0.113.7"), "ip:203.0.113.7");
        assert_eq!(key("unknown"), "ip:unknown");
    }
}
