//! The repositories' types: a row of the list, and what the list was asked for.
//!
//! Over 400 lines with its unit tests (about 90 lines at the end).

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
    /// When the sync last saw it.
    pub synced_at: chrono::DateTime<chrono::Utc>,
    /// The day the sums end on (`None`: not summed yet).
    pub as_of: Option<NaiveDate>,
    pub views_14d: i64,
    pub unique_views_14d: i64,
    pub clones_14d: i64,
    pub unique_clones_14d: i64,
    pub views_prev_14d: i64,
    pub clones_prev_14d: i64,
    /// The last day with traffic reported, however long ago.
    pub last_day: Option<NaiveDate>,
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
            (SortKey::Name, false) => "r.name_key ASC",
            (SortKey::Name, true) => "r.name_key DESC",
            (SortKey::Views, false) => "COALESCE(s.views_14d, 0) ASC",
            (SortKey::Views, true) => "COALESCE(s.views_14d, 0) DESC",
            (SortKey::Clones, false) => "COALESCE(s.clones_14d, 0) ASC",
            (SortKey::Clones, true) => "COALESCE(s.clones_14d, 0) DESC",
            (SortKey::Stars, false) => "r.stars ASC",
            (SortKey::Stars, true) => "r.stars DESC",
            // Never-synced repositories last either way.
            (SortKey::LastDay, false) => "(s.last_day IS NULL) ASC, s.last_day ASC",
            (SortKey::LastDay, true) => "(s.last_day IS NULL) ASC, s.last_day DESC",
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

/// One repository as its page shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RepoDetail {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub visibility: String,
    pub archived: bool,
    pub html_url: Option<String>,
    pub stars: i32,
    pub forks: i32,
    pub removed: bool,
}

/// Traffic summed over one period (a day, a week from Monday, or a month).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Point {
    pub period: NaiveDate,
    pub views: i64,
    pub unique_views: i64,
    pub clones: i64,
    pub unique_clones: i64,
}

/// A referrer or a popular path as GitHub listed it on the last sync day.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Popular {
    pub label: String,
    pub title: String,
    pub count: i32,
    pub uniques: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Granularity {
    #[default]
    Day,
    Week,
    Month,
}

impl Granularity {
    pub const ALL: [Granularity; 3] = [Granularity::Day, Granularity::Week, Granularity::Month];

    pub fn param(self) -> &'static str {
        match self {
            Granularity::Day => "day",
            Granularity::Week => "week",
            Granularity::Month => "month",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Range {
    Days14,
    #[default]
    Days90,
    Year,
    All,
}

impl Range {
    pub const ALL: [Range; 4] = [Range::Days14, Range::Days90, Range::Year, Range::All];

    pub fn param(self) -> &'static str {
        match self {
            Range::Days14 => "14d",
            Range::Days90 => "90d",
            Range::Year => "1y",
            Range::All => "all",
        }
    }

    /// The first day of the range ending `today` (inclusive); `None` for all of it.
    pub fn start(self, today: NaiveDate) -> Option<NaiveDate> {
        let days = match self {
            Range::Days14 => 14,
            Range::Days90 => 90,
            Range::Year => 365,
            Range::All => return None,
        };
        Some(today - chrono::Duration::days(days - 1))
    }
}

/// The series parameters as sent: `range`, `from`, `to`, `granularity`.
#[derive(Debug, Default, Deserialize)]
pub struct SeriesParams {
    pub range: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub granularity: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesQuery {
    pub range: Option<Range>,
    /// First day, inclusive; `None` from the first day known.
    pub from: Option<NaiveDate>,
    /// Last day, inclusive.
    pub to: NaiveDate,
    pub granularity: Granularity,
}

impl SeriesParams {
    /// The query for a series ending at most `today`, or which parameter is wrong and why.
    pub fn parse(&self, today: NaiveDate) -> Result<SeriesQuery, String> {
        // An empty parameter is an absent one (a form sends its empty fields).
        fn given(v: &Option<String>) -> Option<&str> {
            v.as_deref().filter(|v| !v.is_empty())
        }
        let (range, from, to) = (given(&self.range), given(&self.from), given(&self.to));
        let g = given(&self.granularity).unwrap_or("day");
        let granularity = Granularity::ALL
            .into_iter()
            .find(|x| x.param() == g)
            .ok_or_else(|| "granularity must be day, week or month".to_string())?;
        let date = |name: &str, v: &str| {
            NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .map_err(|_| format!("{name} must be a date like 2026-01-31 (UTC)"))
        };
        if from.is_some() || to.is_some() {
            if range.is_some() {
                return Err("range cannot be combined with from/to".into());
            }
            let from = from.map(|v| date("from", v)).transpose()?;
            let to = match to {
                Some(v) => date("to", v)?,
                None => today,
            };
            if from.is_some_and(|f| f > to) {
                return Err("from must not be after to".into());
            }
            return Ok(SeriesQuery {
                range: None,
                from,
                to,
                granularity,
            });
        }
        let range = match range {
            None => Range::default(),
            Some(r) => Range::ALL
                .into_iter()
                .find(|x| x.param() == r)
                .ok_or_else(|| "range must be 14d, 90d, 1y or all".to_string())?,
        };
        Ok(SeriesQuery {
            range: Some(range),
            from: range.start(today),
            to: today,
            granularity,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_parameters_are_checked_and_named() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 2).expect("date");
        let p = |range: Option<&str>, from: Option<&str>, to: Option<&str>, g: Option<&str>| {
            SeriesParams {
                range: range.map(str::to_string),
                from: from.map(str::to_string),
                to: to.map(str::to_string),
                granularity: g.map(str::to_string),
            }
            .parse(today)
        };
        let q = p(None, None, None, None).expect("defaults");
        assert_eq!(
            (q.range, q.granularity),
            (Some(Range::Days90), Granularity::Day)
        );
        assert_eq!(q.from, NaiveDate::from_ymd_opt(2026, 9, 4));
        assert_eq!(
            p(Some("14d"), None, None, None).expect("14d").from,
            NaiveDate::from_ymd_opt(2026, 11, 19)
        );
        assert_eq!(
            p(Some("all"), None, None, Some("month")).expect("all").from,
            None
        );
        let q = p(None, Some("2026-01-01"), Some("2026-01-31"), Some("week")).expect("from/to");
        assert_eq!(
            (q.from, q.to),
            (
                NaiveDate::from_ymd_opt(2026, 1, 1),
                NaiveDate::from_ymd_opt(2026, 1, 31).expect("d")
            )
        );
        for (bad, name) in [
            (p(Some("2w"), None, None, None), "range"),
            (p(None, None, None, Some("hour")), "granularity"),
            (p(None, Some("2026-13-01"), None, None), "from"),
            (p(None, None, Some("yesterday"), None), "to"),
            (
                p(None, Some("2026-02-01"), Some("2026-01-01"), None),
                "from",
            ),
            (p(Some("14d"), Some("2026-01-01"), None, None), "range"),
        ] {
            let err = bad.expect_err("refused");
            assert!(err.starts_with(name), "{err}");
        }
    }

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
