//! The client's address, one function for rate limits, audit and sessions: the
//! socket peer, or `X-Forwarded-For` only as far as `GATEHOUSE_TRUSTED_PROXIES` allows.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

use crate::config::TrustedProxies;

pub fn client_ip(
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
) -> Option<IpAddr> {
    let peer = peer.map(|p| p.ip());
    // Every X-Forwarded-For header, in order, as one list of addresses.
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    match trusted {
        TrustedProxies::Hops(0) => peer,
        // N proxies in front: the Nth entry from the right is what the outermost one saw.
        TrustedProxies::Hops(n) => forwarded
            .len()
            .checked_sub(usize::from(*n))
            .and_then(|i| forwarded.get(i).copied())
            .or(peer),
        TrustedProxies::Networks(nets) => {
            let trusted_ip = |ip: &IpAddr| nets.iter().any(|n| n.contains(ip));
            let peer_ip = peer?;
            if !trusted_ip(&peer_ip) {
                return Some(peer_ip);
            }
            // Walk from the right past our own proxies; the first other address is the client.
            forwarded
                .iter()
                .rev()
                .find(|ip| !trusted_ip(ip))
                .copied()
                .or_else(|| forwarded.first().copied())
                .or(Some(peer_ip))
        }
    }
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
}
