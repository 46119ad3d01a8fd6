//! Which repositories a user may see: admins all of them, anyone else those matched by the
//! patterns of their roles (assigned, or mapped from their IdP groups), nothing otherwise.
//! Worked out once per request and turned into SQL (`WHERE` on the allowed names), so a page
//! never fetches rows it then hides; `allows` is the same rule for one name.
//!
//! Written here rather than taken from a glob crate because the rule is small and ours: `*`
//! is the only wildcard, matching is ASCII case-insensitive (GitHub's repository names are),
//! and a pattern must translate exactly into a SQL `LIKE`.

use std::fmt;

/// A pattern on a repository name, optionally qualified by its owner: `web-*`, `acme/api`,
/// `*`, `acme/*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoPattern {
    owner: Option<String>,
    /// Lower case, `*` as the wildcard.
    name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("a repository pattern is empty")]
    Empty,
    #[error("'{0}' is longer than 100 characters")]
    TooLong(String),
    #[error(
        "'{0}' may hold only letters, digits, '.', '-', '_', '*' and one '/' between owner and name"
    )]
    Characters(String),
}

impl RepoPattern {
    pub fn parse(raw: &str) -> Result<RepoPattern, PatternError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(PatternError::Empty);
        }
        if raw.len() > 100 {
            return Err(PatternError::TooLong(raw.to_string()));
        }
        let valid = |part: &str, wildcard: bool| {
            !part.is_empty()
                && part.bytes().all(|b| {
                    b.is_ascii_alphanumeric()
                        || matches!(b, b'.' | b'-' | b'_')
                        || (wildcard && b == b'*')
                })
        };
        let (owner, name) = match raw.split_once('/') {
            Some((owner, name)) if valid(owner, false) && valid(name, true) => {
                (Some(owner.to_ascii_lowercase()), name)
            }
            None if valid(raw, true) => (None, raw),
            _ => return Err(PatternError::Characters(raw.to_string())),
        };
        Ok(RepoPattern {
            owner,
            name: name.to_ascii_lowercase(),
        })
    }

    /// Whether the pattern can match anything of `org`'s (an owner-qualified pattern names
    /// one organization).
    fn applies_to(&self, org: &str) -> bool {
        self.owner
            .as_deref()
            .is_none_or(|o| o.eq_ignore_ascii_case(org))
    }

    pub fn matches(&self, org: &str, name: &str) -> bool {
        self.applies_to(org) && glob(self.name.as_bytes(), name.to_ascii_lowercase().as_bytes())
    }

    /// The name part as a `LIKE` pattern over the lower-cased name, `\` escaping.
    pub fn to_like(&self) -> String {
        let mut like = String::with_capacity(self.name.len());
        for c in self.name.chars() {
            match c {
                '*' => like.push('%'),
                // `_` is a wildcard in LIKE; names may hold it literally.
                '_' | '%' | '\\' => {
                    like.push('\\');
                    like.push(c);
                }
                c => like.push(c),
            }
        }
        like
    }
}

impl fmt::Display for RepoPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.owner {
            Some(owner) => write!(f, "{owner}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// `*` matches any run of bytes (none included); everything else matches itself.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    // Iterative with one backtrack point: linear for the patterns people write, never
    // exponential whatever they write.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// What a user may see of the organization's repositories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoAccess {
    All,
    /// Those matching any of these; none when empty.
    Matching(Vec<RepoPattern>),
}

impl RepoAccess {
    /// From the patterns of the user's roles. A stored pattern that no longer parses grants
    /// nothing (and is logged), rather than failing the page.
    pub fn from_patterns<'a>(patterns: impl IntoIterator<Item = &'a str>) -> RepoAccess {
        let mut parsed: Vec<RepoPattern> = Vec::new();
        for raw in patterns {
            match RepoPattern::parse(raw) {
                Ok(p) if !parsed.contains(&p) => parsed.push(p),
                Ok(_) => {}
                Err(e) => tracing::warn!(pattern = raw, error = %e, "role pattern ignored"),
            }
        }
        RepoAccess::Matching(parsed)
    }

    pub fn allows(&self, org: &str, name: &str) -> bool {
        match self {
            RepoAccess::All => true,
            RepoAccess::Matching(patterns) => patterns.iter().any(|p| p.matches(org, name)),
        }
    }

    pub fn sees_nothing(&self, org: &str) -> bool {
        match self {
            RepoAccess::All => false,
            RepoAccess::Matching(patterns) => !patterns.iter().any(|p| p.applies_to(org)),
        }
    }

    /// The `LIKE` patterns (over the lower-case name, `name_key`, escape `\`) a repository of `org` must match
    /// one of; `None` when every repository is allowed. An empty list allows nothing.
    pub fn like_patterns(&self, org: &str) -> Option<Vec<String>> {
        match self {
            RepoAccess::All => None,
            RepoAccess::Matching(patterns) => Some(
                patterns
                    .iter()
                    .filter(|p| p.applies_to(org))
                    .map(RepoPattern::to_like)
                    .collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> RepoPattern {
        RepoPattern::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn patterns_match_names_and_owner_qualified_names() {
        assert!(p("web-*").matches("acme", "web-shop"));
        assert!(p("web-*").matches("acme", "web-"));
        assert!(p("web-*").matches("acme", "WEB-Shop"), "case-insensitive");
        assert!(!p("web-*").matches("acme", "webshop"));
        assert!(!p("web-*").matches("acme", "my-web-shop"));
        assert!(p("*").matches("acme", "anything.at_all"));
        assert!(p("acme/api").matches("acme", "api"));
        assert!(p("ACME/api").matches("Acme", "API"));
        assert!(!p("acme/api").matches("other", "api"), "another owner's");
        assert!(!p("acme/api").matches("acme", "api-gateway"));
        assert!(p("acme/*").matches("acme", "x"));
        assert!(p("*-api-*").matches("acme", "billing-api-v2"));
        assert!(!p("*-api-*").matches("acme", "billing-api"));
        assert!(p("a*b*c").matches("acme", "aXbYc"));
        assert!(!p("a*b*c").matches("acme", "aXbYcd"));
        assert!(p("exact.name").matches("acme", "exact.name"));
        assert!(
            !p("exact.name").matches("acme", "exactxname"),
            "'.' is no wildcard"
        );
        // Many stars over a long name stay fast.
        let long = "a".repeat(5000);
        assert!(!p("*a*a*a*a*a*a*a*a*a*b").matches("acme", &long));
    }

    #[test]
    fn bad_patterns_are_refused_with_a_reason() {
        for bad in [
            "", "  ", "a b", "web-%", "a/b/c", "/api", "acme/", "*/api", "naïve", "x;drop",
        ] {
            assert!(RepoPattern::parse(bad).is_err(), "{bad:?}");
        }
        let long = "a".repeat(101);
        assert_eq!(
            RepoPattern::parse(&long),
            Err(PatternError::TooLong(long.clone()))
        );
    }

    #[test]
    fn like_patterns_escape_what_like_treats_specially() {
        assert_eq!(p("web-*").to_like(), "web-%");
        assert_eq!(p("my_repo").to_like(), "my\\_repo");
        assert_eq!(p("*").to_like(), "%");
        assert_eq!(p("Acme/API").to_like(), "api");
    }

    #[test]
    fn access_from_roles() {
        let access = RepoAccess::from_patterns(["web-*", "other/x", "bad pattern", "web-*"]);
        assert_eq!(access, RepoAccess::Matching(vec![p("web-*"), p("other/x")]));
        assert!(access.allows("acme", "web-a"));
        assert!(!access.allows("acme", "x"));
        assert_eq!(
            access.like_patterns("acme"),
            Some(vec!["web-%".to_string()])
        );
        assert!(!access.sees_nothing("acme"));

        let none = RepoAccess::from_patterns(["other/*"]);
        assert!(none.sees_nothing("acme"));
        assert_eq!(none.like_patterns("acme"), Some(vec![]));
        assert!(!none.allows("acme", "web-a"));

        assert!(RepoAccess::All.allows("acme", "anything"));
        assert_eq!(RepoAccess::All.like_patterns("acme"), None);
    }
}
