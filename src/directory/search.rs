//! The directory query: parameters, sort keys and keyset cursors, parsed once for the page,
//! `/gh/search.json` and the API.
//!
//! Keyset pagination ("rows after (key, id)") rather than OFFSET: a page costs the same at row
//! 99,950 as at row 0, and rows added meanwhile do not shift pages.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Identity;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    Name,
    Email,
    GithubUsername,
    LastPullDate,
}

impl SortKey {
    pub const ALL: [SortKey; 4] = [
        SortKey::Name,
        SortKey::Email,
        SortKey::GithubUsername,
        SortKey::LastPullDate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Name => "name",
            SortKey::Email => "email",
            SortKey::GithubUsername => "github_username",
            SortKey::LastPullDate => "last_pull_date",
        }
    }

    fn parse(s: &str) -> Option<SortKey> {
        SortKey::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The row's value under this key, as the cursor carries it.
    fn value_of(self, row: &Identity) -> CursorValue {
        match self {
            SortKey::Name => CursorValue::Text(row.name.to_lowercase()),
            SortKey::Email => CursorValue::Text(row.email.clone()),
            SortKey::GithubUsername => CursorValue::Text(row.github_username.to_lowercase()),
            SortKey::LastPullDate => CursorValue::Time(row.last_pull_date),
        }
    }
}

/// Where the previous page ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The sort the cursor belongs to: a cursor is refused under another sort.
    pub sort: SortKey,
    pub desc: bool,
    pub value: CursorValue,
    pub id: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CursorValue {
    Time(DateTime<Utc>),
    Text(String),
}

impl Cursor {
    /// Opaque to clients: base64url of a small JSON object.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    pub fn decode(s: &str) -> Option<Cursor> {
        let bytes = URL_SAFE_NO_PAD.decode(s.as_bytes()).ok()?;
        let cursor: Cursor = serde_json::from_slice(&bytes).ok()?;
        // A text cursor under the date sort (or the reverse) would compare nonsense.
        let consistent = matches!(
            (&cursor.value, cursor.sort),
            (CursorValue::Time(_), SortKey::LastPullDate)
        ) || matches!(
            (&cursor.value, cursor.sort),
            (
                CursorValue::Text(_),
                SortKey::Name | SortKey::Email | SortKey::GithubUsername
            )
        );
        consistent.then_some(cursor)
    }
}

/// A parsed, validated directory query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// Lower-cased; empty matches everyone.
    pub q: String,
    pub sort: SortKey,
    pub desc: bool,
    pub limit: u32,
    pub after: Option<Cursor>,
    pub include_departed: bool,
}

impl Default for SearchQuery {
    fn default() -> Self {
        SearchQuery {
            q: String::new(),
            sort: SortKey::Name,
            desc: false,
            limit: DEFAULT_LIMIT,
            after: None,
            include_departed: false,
        }
    }
}

/// The query string as clients send it (page, JSON route and API alike).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SearchParams {
    pub q: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
    pub sort: Option<String>,
    pub include_departed: Option<String>,
}

impl SearchParams {
    /// From name/value pairs, as a query string would give them (tests, benchmarks).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> SearchParams {
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_string())
        };
        SearchParams {
            q: get("q"),
            limit: get("limit"),
            cursor: get("cursor"),
            sort: get("sort"),
            include_departed: get("include_departed"),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.q.is_none()
            && self.limit.is_none()
            && self.cursor.is_none()
            && self.sort.is_none()
            && self.include_departed.is_none()
    }

    /// Validates every parameter; the error names the parameter and says what is allowed.
    pub fn parse(&self) -> Result<SearchQuery, String> {
        let q = self.q.as_deref().unwrap_or("").trim();
        if q.chars().count() > 200 {
            return Err("q: at most 200 characters".into());
        }
        // PostgreSQL's text type cannot hold a NUL, so no row can contain one.
        if q.contains('\0') {
            return Err("q: no NUL character".into());
        }
        let mut query = SearchQuery {
            q: q.to_lowercase(),
            ..SearchQuery::default()
        };
        if let Some(limit) = self.limit.as_deref().filter(|s| !s.is_empty()) {
            query.limit = limit
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| format!("limit: a whole number from 1 to {MAX_LIMIT}"))?;
        }
        if let Some(sort) = self.sort.as_deref().filter(|s| !s.is_empty()) {
            let (desc, key) = match sort.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, sort),
            };
            query.sort = SortKey::parse(key).ok_or_else(|| {
                "sort: one of name, email, github_username, last_pull_date, \
                 optionally with a leading - for descending"
                    .to_string()
            })?;
            query.desc = desc;
        }
        if let Some(raw) = self.include_departed.as_deref() {
            query.include_departed = match raw {
                "1" | "true" | "yes" => true,
                "0" | "false" | "no" | "" => false,
                _ => return Err("include_departed: 1 or 0".into()),
            };
        }
        if let Some(raw) = self.cursor.as_deref().filter(|s| !s.is_empty()) {
            let cursor = Cursor::decode(raw)
                .filter(|c| c.sort == query.sort && c.desc == query.desc)
                .ok_or_else(|| {
                    "cursor: not one this server handed out for this sort".to_string()
                })?;
            query.after = Some(cursor);
        }
        Ok(query)
    }
}

/// A page of rows and, when there are more, the cursor to the next page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub rows: Vec<Identity>,
    pub next: Option<Cursor>,
}

impl Page {
    /// From `limit + 1` fetched rows: the extra row only says that a next page exists.
    pub fn from_rows(query: &SearchQuery, mut rows: Vec<Identity>) -> Page {
        let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = match rows.last() {
            Some(last) if more => Some(Cursor {
                sort: query.sort,
                desc: query.desc,
                value: query.sort.value_of(last),
                id: last.id,
            }),
            _ => None,
        };
        Page { rows, next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> SearchParams {
        SearchParams::from_pairs(pairs)
    }

    fn row(id: i64, name: &str) -> Identity {
        Identity {
            id,
            name: name.into(),
            email: format!("{id}@example.com"),
            github_username: format!("U{id}"),
            last_pull_date: DateTime::from_timestamp(1_700_000_000 + id, 0).unwrap_or_default(),
            departed_at: None,
        }
    }

    #[test]
    fn defaults_and_every_parameter() {
        assert!(params(&[]).is_empty());
        assert_eq!(params(&[]).parse(), Ok(SearchQuery::default()));
        let q = params(&[
            ("q", "  Ada "),
            ("limit", "200"),
            ("sort", "-last_pull_date"),
            ("include_departed", "1"),
        ])
        .parse()
        .expect("valid");
        assert_eq!(
            (q.q.as_str(), q.limit, q.sort, q.desc, q.include_departed),
            ("ada", 200, SortKey::LastPullDate, true, true)
        );
    }

    #[test]
    fn bad_parameters_are_named() {
        for (pairs, named) in [
            (vec![("limit", "0")], "limit"),
            (vec![("limit", "201")], "limit"),
            (vec![("limit", "ten")], "limit"),
            (vec![("sort", "password")], "sort"),
            (vec![("sort", "--name")], "sort"),
            (vec![("include_departed", "maybe")], "include_departed"),
            (vec![("cursor", "not-base64!")], "cursor"),
            (vec![("cursor", "e30")], "cursor"),
        ] {
            let err = params(&pairs).parse().expect_err("refused");
            assert!(err.starts_with(named), "{pairs:?}: {err}");
        }
        let long = "x".repeat(201);
        assert!(params(&[("q", &long)]).parse().is_err());
    }

    #[test]
    fn cursors_round_trip_and_belong_to_their_sort() {
        let query = SearchQuery {
            limit: 2,
            ..SearchQuery::default()
        };
        let page = Page::from_rows(&query, vec![row(1, "Ada"), row(2, "Bo"), row(3, "Cy")]);
        assert_eq!(page.rows.len(), 2);
        let next = page.next.expect("a next page");
        assert_eq!(next.value, CursorValue::Text("bo".into()));
        assert_eq!(next.id, 2);
        let encoded = next.encode();
        let parsed = params(&[("cursor", &encoded)]).parse().expect("valid");
        assert_eq!(parsed.after, Some(next));
        // The same cursor under another sort or direction is refused.
        assert!(
            params(&[("cursor", &encoded), ("sort", "email")])
                .parse()
                .is_err()
        );
        assert!(
            params(&[("cursor", &encoded), ("sort", "-name")])
                .parse()
                .is_err()
        );
        // The last page has no next.
        let last = Page::from_rows(&query, vec![row(1, "Ada"), row(2, "Bo")]);
        assert!(last.next.is_none());
        // A date cursor carries a time.
        let by_date = SearchQuery {
            sort: SortKey::LastPullDate,
            limit: 1,
            ..SearchQuery::default()
        };
        let next = Page::from_rows(&by_date, vec![row(5, "E"), row(6, "F")])
            .next
            .expect("next");
        assert!(matches!(next.value, CursorValue::Time(_)));
        assert_eq!(Cursor::decode(&next.encode()), Some(next));
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        use crate::store::like_pattern;
        assert_eq!(like_pattern("a_b%c\\"), "%a\\_b\\%c\\\\%");
    }
}
