//! Parsers for the value grammars the configuration accepts: durations, booleans, lists,
//! rate limits, trusted proxies and percentages. Each returns a message that the loader
//! prefixes with the variable's name.

use std::collections::BTreeMap;
use std::time::Duration;

use ipnet::IpNet;

pub fn duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    // humantime wants a unit; "0" meaning "off" is the one unit-less value operators write.
    if raw == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(raw)
        .map_err(|e| format!("'{raw}' is not a duration like 30s, 15m, 1h or 365d ({e})"))
}

pub fn boolean(raw: &str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => Err(format!("'{other}' is not a boolean (true or false)")),
    }
}

/// A comma list; blanks around items and empty items are dropped.
pub fn list(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// `20%` or a fraction such as `0.2`.
pub fn fraction(raw: &str) -> Result<f64, String> {
    let raw = raw.trim();
    let value = if let Some(pct) = raw.strip_suffix('%') {
        pct.trim()
            .parse::<f64>()
            .map(|p| p / 100.0)
            .map_err(|_| format!("'{raw}' is not a percentage like 20%"))?
    } else {
        raw.parse::<f64>()
            .map_err(|_| format!("'{raw}' is not a percentage like 20% or a fraction like 0.2"))?
    };
    if !(0.0..=1.0).contains(&value) || value.is_nan() {
        return Err(format!("'{raw}' must lie between 0% and 100%"));
    }
    Ok(value)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub count: u32,
    pub per: Duration,
}

impl std::fmt::Display for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = match self.per.as_secs() {
            1 => "second",
            60 => "minute",
            3600 => "hour",
            _ => "day",
        };
        write!(f, "{}/{}", self.count, unit)
    }
}

/// `N/second|minute|hour|day`; `N per minute` too, as Flask-Limiter writes it, so limits
/// copied from an older Flask deployment still parse.
pub fn rate_limit(raw: &str) -> Result<RateLimit, String> {
    let raw = raw.trim();
    let (count, unit) = raw
        .split_once('/')
        .or_else(|| raw.split_once(" per "))
        .ok_or_else(|| format!("'{raw}' is not a rate like 5/minute"))?;
    let count: u32 = count
        .trim()
        .parse()
        .map_err(|_| format!("'{raw}': '{}' is not a whole number", count.trim()))?;
    if count == 0 {
        return Err(format!("'{raw}': a limit of 0 would refuse every request"));
    }
    let per = match unit.trim().trim_end_matches('s') {
        "second" | "sec" => Duration::from_secs(1),
        "minute" | "min" => Duration::from_secs(60),
        "hour" => Duration::from_secs(3600),
        "day" => Duration::from_secs(86_400),
        other => {
            return Err(format!(
                "'{raw}': unit '{other}' is not one of second, minute, hour, day"
            ));
        }
    };
    Ok(RateLimit { count, per })
}

/// The rate-limit rules a route can name in the route table, and their defaults (the
/// README's table; `GATEHOUSE_RATE_LIMITS` overrides them).
pub const RATE_LIMIT_DEFAULTS: &[(&str, &str)] = &[
    ("auth.login", "20/minute"),
    ("auth.callback", "10/minute"),
    ("auth.backchannel", "120/minute"),
    ("auth.backchannel.issuer", "600/minute"),
    ("profile", "60/minute"),
    ("lookup", "60/minute"),
    ("gh.search", "120/minute"),
    ("gh.search_json", "600/minute"),
    ("api", "600/minute"),
    ("default", "300/minute"),
];

/// Defaults overlaid with `rule=N/unit,…`; an unknown rule name is an error, not a silent no-op.
pub fn rate_limits(raw: Option<&str>) -> Result<BTreeMap<String, RateLimit>, String> {
    let mut rules = BTreeMap::new();
    for (name, value) in RATE_LIMIT_DEFAULTS {
        rules.insert((*name).to_string(), rate_limit(value)?);
    }
    for item in list(raw.unwrap_or_default()) {
        let (name, value) = item
            .split_once('=')
            .ok_or_else(|| format!("'{item}' is not rule=N/unit, e.g. auth.login=5/minute"))?;
        let name = name.trim();
        let slot = rules.get_mut(name).ok_or_else(|| {
            let known: Vec<&str> = RATE_LIMIT_DEFAULTS.iter().map(|(n, _)| *n).collect();
            format!("unknown rule '{name}' (known rules: {})", known.join(", "))
        })?;
        *slot = rate_limit(value)?;
    }
    Ok(rules)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustedProxies {
    /// Believe this many entries counted from the right of `X-Forwarded-For`.
    Hops(u8),
    /// Believe `X-Forwarded-For` only from peers in these networks.
    Networks(Vec<IpNet>),
}

pub fn trusted_proxies(raw: &str) -> Result<TrustedProxies, String> {
    let raw = raw.trim();
    if let Ok(hops) = raw.parse::<u8>() {
        return Ok(TrustedProxies::Hops(hops));
    }
    let mut nets = Vec::new();
    for item in list(raw) {
        let net = item
            .parse::<IpNet>()
            .or_else(|_| item.parse::<std::net::IpAddr>().map(IpNet::from))
            .map_err(|_| {
                format!("'{item}' is neither a hop count (0-255) nor a CIDR like 10.0.0.0/8")
            })?;
        nets.push(net);
    }
    if nets.is_empty() {
        return Err("expected a hop count or a comma list of CIDRs".into());
    }
    Ok(TrustedProxies::Networks(nets))
}

/// Whether a URL's host is this machine: `localhost`, or a loopback address (127.0.0.0/8, ::1).
pub fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(duration("365d"), Ok(Duration::from_secs(365 * 86_400)));
        assert_eq!(duration("0"), Ok(Duration::ZERO));
        assert!(duration("soon").is_err());
        assert!(duration("10").is_err());
        assert!(duration("").is_err());
    }

    #[test]
    fn booleans() {
        assert_eq!(boolean("TRUE"), Ok(true));
        assert_eq!(boolean("off"), Ok(false));
        assert!(boolean("maybe").is_err());
    }

    #[test]
    fn fractions() {
        assert_eq!(fraction("20%"), Ok(0.2));
        assert_eq!(fraction("0.5"), Ok(0.5));
        assert!(fraction("120%").is_err());
        assert!(fraction("-1").is_err());
        assert!(fraction("lots").is_err());
    }

    #[test]
    fn rate_limit_grammar() {
        let five = rate_limit("5/minute").expect("5/minute");
        assert_eq!(five.count, 5);
        assert_eq!(five.per, Duration::from_secs(60));
        assert_eq!(
            rate_limit("100 per hour").map(|r| r.to_string()),
            Ok("100/hour".into())
        );
        assert_eq!(
            rate_limit("2/seconds").map(|r| r.per),
            Ok(Duration::from_secs(1))
        );
        assert!(rate_limit("5/fortnight").is_err());
        assert!(rate_limit("many/minute").is_err());
        assert!(rate_limit("0/minute").is_err());
        assert!(rate_limit("5").is_err());
    }

    #[test]
    fn rate_limit_overrides() {
        let rules = rate_limits(Some("auth.login=50/minute, api=10/second")).expect("overrides");
        assert_eq!(rules["auth.login"].count, 50);
        assert_eq!(rules["api"].per, Duration::from_secs(1));
        assert_eq!(rules["gh.search"].to_string(), "120/minute");
        let err = rate_limits(Some("auth.logn=5/minute")).expect_err("typo must fail");
        assert!(err.contains("unknown rule 'auth.logn'"), "{err}");
        assert!(rate_limits(Some("auth.login")).is_err());
    }

    #[test]
    fn proxies() {
        assert_eq!(trusted_proxies("0"), Ok(TrustedProxies::Hops(0)));
        assert_eq!(trusted_proxies("2"), Ok(TrustedProxies::Hops(2)));
        let nets = trusted_proxies("10.0.0.0/8, 192.168.1.1, ::1/128").expect("cidrs");
        assert!(matches!(nets, TrustedProxies::Networks(ref n) if n.len() == 3));
        assert!(trusted_proxies("10.0.0.0/33").is_err());
        assert!(trusted_proxies("proxy.local").is_err());
        assert!(trusted_proxies(",").is_err());
    }
}
