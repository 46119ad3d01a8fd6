//! The directory's types: identities, laptops, lists, and what is known about one person.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::Serialize;

/// One row of `github_identities`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Identity {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub github_username: String,
    pub last_pull_date: DateTime<Utc>,
    pub departed_at: Option<DateTime<Utc>>,
}

/// The JSON row of the Flask service this replaced, kept exactly (`{last_pull_date, name,
/// email, github_username}`): existing scripts parse it. A person who left carries
/// `departed_at` too; such rows come only when `include_departed=1` is asked for, which
/// those scripts never send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct IdentityJson {
    /// When the GitHub sync last saw this identity (RFC 3339, UTC).
    #[schema(example = "2026-11-24T08:00:00Z")]
    pub last_pull_date: String,
    pub name: String,
    pub email: String,
    pub github_username: String,
    /// When the sync found the person gone (RFC 3339, UTC); only on people who left.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "2026-11-30T08:00:00Z")]
    pub departed_at: Option<String>,
}

impl From<&Identity> for IdentityJson {
    fn from(i: &Identity) -> Self {
        IdentityJson {
            last_pull_date: rfc3339(&i.last_pull_date),
            name: i.name.clone(),
            email: i.email.clone(),
            github_username: i.github_username.clone(),
            departed_at: i.departed_at.as_ref().map(rfc3339),
        }
    }
}

/// RFC 3339 in UTC with a `Z`, seconds precision: what those scripts parse.
pub fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Laptop {
    pub serial: String,
    pub model: String,
    pub assigned_at: Option<NaiveDate>,
}

/// A list a person is on or owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ListMembership {
    pub list_email: String,
    pub name: String,
    pub hidden: bool,
    pub role: String,
}

/// What the directory knows about one work email.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersonFacts {
    pub github: Vec<Identity>,
    pub laptops: Vec<Laptop>,
    pub member_of: Vec<ListMembership>,
    pub owner_of: Vec<ListMembership>,
}

impl PersonFacts {
    pub fn is_empty(&self) -> bool {
        self.github.is_empty()
            && self.laptops.is_empty()
            && self.member_of.is_empty()
            && self.owner_of.is_empty()
    }

    /// What a coworker may see: GitHub usernames and non-hidden lists, never laptops.
    pub fn for_coworker(mut self) -> PersonFacts {
        self.laptops.clear();
        self.member_of.retain(|l| !l.hidden);
        self.owner_of.retain(|l| !l.hidden);
        self
    }
}

/// Work emails are compared trimmed and in ASCII lower case everywhere. Unicode lower-casing
/// would fold look-alikes into real addresses (the Kelvin sign U+212A becomes `k`).
pub fn normalize_email(email: &str) -> String {
    email.trim().to_ascii_lowercase()
}

/// Whether a normalised email can name anyone: not empty, no longer than an address can be,
/// and no NUL (which PostgreSQL's text type refuses, so no stored email has one).
pub fn could_be_email(email: &str) -> bool {
    !email.is_empty() && email.len() <= 254 && !email.contains('\0')
}
