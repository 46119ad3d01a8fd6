//! The repositories' types: a row of the list, and what the list was asked for.

use chrono::NaiveDate;
use serde::Deserialize;

/// A repository with its traffic over the last 14 days and the 14 before.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RepoSummary {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub visibility: String,
    pub archived: bool,
    pub html_url: Option<String>,
    pub stars: i32,
    /// Gone from the organization; its history is kept.
    pub removed: bool,
    pub views_14d: i64,
    pub unique_views_14d: i64,
    pub clones_14d: i64,
    pub unique_clones_14d: i64,
    pub views_prev_14d: i64,
    pub clones_prev_14d: i64,
    /// The last day with traffic reported.
    pub last_day: Option<NaiveDate>,
    /// How many rows match in all (the same on every row).
    pub total: i64,
}

impl RepoSummary {
    /// The change of views against the 14 days before, as `+12%`, `−5%`, `new` or `—`.
    pub fn views_change(&self) -> String {
        change(self.views_14d, self.views_prev_14d)
    }

    pub fn clones_change(&self) -> String {
        change(self.clones_14d, self.clones_prev_14d)
    }
}

fn change(now: i64, before: i64) -> String {
    match (now, before) {
        (0, 0) => "—".into(),
        (_, 0) => "new".into(),
        _ => {
            // Rounded half away from zero, in integers: no float formatting surprises.
            let pct = ((now - before) * 200 / before + (now - before).signum()) / 2;
            match pct {
                0 => "±0%".into(),
                p if p > 0 => format!("+{p}%"),
                p => format!("−{}%", -p),
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    #[default]
    Name,
    Views,
    Clones,
    Stars,
    LastDay,
}

impl SortKey {
    pub const ALL: [SortKey; 5] = [
        SortKey::Name,
        SortKey::Views,
        SortKey::Clones,
        SortKey::Stars,
        SortKey::LastDay,
    ];

    pub fn param(self) -> &'static str {
        match self {
            SortKey::Name => "name",
            SortKey::Views => "views",
            SortKey::Clones => "clones",
            SortKey::Stars => "stars",
            SortKey::LastDay => "updated",
        }
    }

    fn parse(raw: &str) -> Option<SortKey> {
        SortKey::ALL.into_iter().find(|k| k.param() == raw)
    }

    /// The `ORDER BY` expression; only ever one of these fixed strings.
    pub fn sql(self, desc: bool) -> &'static str {
        match (self, desc) {
            (SortKey::Name, false) => "lower(r.name) ASC",
            (SortKey::Name, true) => "lower(r.name) DESC",
            (SortKey::Views, false) => "views_14d ASC",
            (SortKey::Views, true) => "views_14d DESC",
            (SortKey::Clones, false) => "clones_14d ASC",
            (SortKey::Clones, true) => "clones_14d DESC",
            (SortKey::Stars, false) => "r.stars ASC",
            (SortKey::Stars, true) => "r.stars DESC",
            // Never-synced repositories last either way.
            (SortKey::LastDay, false) => "(MAX(t.day) IS NULL) ASC, MAX(t.day) ASC",
            (SortKey::LastDay, true) => "(MAX(t.day) IS NULL) ASC, MAX(t.day) DESC",
        }
    }
}

/// The list's query string as sent: `q`, `sort` (`views`, `-views`, …), `page`.
#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    pub q: Option<String>,
    pub sort: Option<String>,
    pub page: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub q: String,
    pub sort: SortKey,
    pub desc: bool,
    pub page: u32,
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery {
            q: String::new(),
            sort: SortKey::Name,
            desc: false,
            page: 1,
        }
    }
}

impl ListParams {
    /// The query, or which parameter is wrong and why.
    pub fn parse(&self) -> Result<ListQuery, String> {
        let q = self.q.as_deref().unwrap_or("").trim().to_string();
        if q.chars().count() > 100 || q.contains('\0') {
            return Err("q must be at most 100 characters".into());
        }
        let (sort, desc) = match self.sort.as_deref().unwrap_or("name") {
            s if s.starts_with('-') => (SortKey::parse(&s[1..]), true),
            s => (SortKey::parse(s), false),
        };
        let sort = sort.ok_or_else(|| {
            "sort must be one of name, views, clones, stars, updated (with - for descending)"
                .to_string()
        })?;
        let page = match self.page.as_deref() {
            None | Some("") => 1,
            Some(p) => p
                .parse::<u32>()
                .ok()
                .filter(|p| (1..=100_000).contains(p))
                .ok_or_else(|| "page must be a number from 1".to_string())?,
        };
        Ok(ListQuery {
            q,
            sort,
            desc,
            page,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_read_as_people_say_them() {
        assert_eq!(change(0, 0), "—");
        assert_eq!(change(5, 0), "new");
        assert_eq!(change(150, 100), "+50%");
        assert_eq!(change(50, 100), "−50%");
        assert_eq!(change(100, 100), "±0%");
        assert_eq!(change(0, 10), "−100%");
        assert_eq!(change(2, 3), "−33%");
        assert_eq!(change(1, 3), "−67%");
    }

    #[test]
    fn parameters_are_checked_and_named() {
        let p = |q: Option<&str>, sort: Option<&str>, page: Option<&str>| ListParams {
            q: q.map(str::to_string),
            sort: sort.map(str::to_string),
            page: page.map(str::to_string),
        };
        assert_eq!(p(None, None, None).parse(), Ok(ListQuery::default()));
        let q = p(Some(" web "), Some("-views"), Some("3"))
            .parse()
            .expect("valid");
        assert_eq!(
            (q.q.as_str(), q.sort, q.desc, q.page),
            ("web", SortKey::Views, true, 3)
        );
        for (bad, name) in [
            (p(None, Some("stars; DROP"), None), "sort"),
            (p(None, None, Some("0")), "page"),
            (p(None, None, Some("x")), "page"),
            (p(Some(&"a".repeat(101)), None, None), "q"),
        ] {
            let err = bad.parse().expect_err("refused");
            assert!(err.starts_with(name), "{err}");
        }
    }
}
