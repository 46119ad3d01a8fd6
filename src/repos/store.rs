//! The repositories' queries, written once for both databases. Access is part of every query
//! (`WHERE` on the allowed name patterns), and the 14-day sums are aggregated in SQL: a page
//! never fetches rows it then hides or adds up.

use chrono::{Duration, NaiveDate};

use super::model::{Granularity, ListQuery, Point, Popular, RepoDetail, RepoSummary};
use crate::on_db;
use crate::store::{Db, StoreError, like_pattern};

/// Rows on one page of the list.
pub const PER_PAGE: i64 = 50;

/// The `WHERE` part of access: `None` allows every repository; an empty list allows none.
fn access_clause(likes: Option<&[String]>, next: &mut impl FnMut() -> usize) -> String {
    match likes {
        None => "TRUE".into(),
        Some([]) => "FALSE".into(),
        Some(likes) => {
            let parts: Vec<String> = likes
                .iter()
                .map(|_| format!("lower(r.name) LIKE ${} ESCAPE '\\'", next()))
                .collect();
            format!("({})", parts.join(" OR "))
        }
    }
}

/// Which rows of the list: a numbered page in the query's order (the pages), or the rows by
/// name after a key (the API's cursor, stable while repositories come and go).
#[derive(Debug, Clone, Copy)]
pub enum Paging<'a> {
    Page(u32),
    /// Up to `limit` rows after this (lower-case name, id), by name.
    After {
        after: Option<(&'a str, i64)>,
        limit: i64,
    },
}

/// The repositories `likes` allows, with their last 28 days of traffic summed in two 14-day
/// windows ending `today`; and how many match in all.
pub async fn list(
    db: &Db,
    likes: Option<&[String]>,
    query: &ListQuery,
    paging: Paging<'_>,
    today: NaiveDate,
) -> Result<(Vec<RepoSummary>, i64), StoreError> {
    let current_from = today - Duration::days(13);
    let previous_from = today - Duration::days(27);
    let mut n = 0;
    let mut next = || {
        n += 1;
        n
    };
    // Placeholders are numbered in the order they first appear (SQLite numbers them so).
    let (cur, prev) = (next(), next());
    let mut filter = access_clause(likes, &mut next);
    let search = (!query.q.is_empty()).then(|| {
        let p = next();
        format!(" AND (lower(r.name) LIKE ${p} ESCAPE '\\' OR lower(r.description) LIKE ${p} ESCAPE '\\')")
    });
    filter.push_str(search.as_deref().unwrap_or(""));
    let (order, after) = match paging {
        Paging::Page(_) => (
            format!(
                "{}, lower(r.name) ASC, r.id ASC",
                query.sort.sql(query.desc)
            ),
            None,
        ),
        Paging::After { after, .. } => ("lower(r.name) ASC, r.id ASC".to_string(), after),
    };
    if after.is_some() {
        let (name, id) = (next(), next());
        filter.push_str(&format!(
            " AND (lower(r.name) > ${name} OR (lower(r.name) = ${name} AND r.id > ${id}))"
        ));
    }
    let (limit, offset) = (next(), next());
    let (limit_value, offset_value) = match paging {
        Paging::Page(page) => (PER_PAGE, (i64::from(page.max(1)) - 1) * PER_PAGE),
        Paging::After { limit, .. } => (limit, 0),
    };
    let sum = |col: &str, from: usize| {
        format!("COALESCE(SUM(CASE WHEN t.day >= ${from} THEN t.{col} ELSE 0 END), 0)")
    };
    let sql = format!(
        "SELECT r.id, r.name, r.description, r.visibility, r.archived, r.html_url, r.stars, \
           r.removed_at IS NOT NULL AS removed, r.updated_at AS synced_at, \
           {v} AS views_14d, {uv} AS unique_views_14d, {c} AS clones_14d, \
           {uc} AS unique_clones_14d, \
           COALESCE(SUM(t.views), 0) - {v} AS views_prev_14d, \
           COALESCE(SUM(t.clones), 0) - {c} AS clones_prev_14d, \
           MAX(t.day) AS last_day, \
           COUNT(*) OVER () AS total \
         FROM repos r LEFT JOIN repo_traffic t ON t.repo_id = r.id AND t.day >= ${prev} \
         WHERE {filter} \
         GROUP BY r.id, r.name, r.description, r.visibility, r.archived, r.html_url, r.stars, \
           r.removed_at, r.updated_at \
         ORDER BY {order} \
         LIMIT ${limit} OFFSET ${offset}",
        v = sum("views", cur),
        uv = sum("unique_views", cur),
        c = sum("clones", cur),
        uc = sum("unique_clones", cur),
    );
    let pattern = like_pattern(&query.q.to_ascii_lowercase());
    let rows: Vec<RepoSummary> = on_db!(db, |pool| {
        let mut q = sqlx::query_as(&sql).bind(current_from).bind(previous_from);
        for like in likes.unwrap_or_default() {
            q = q.bind(like);
        }
        if !query.q.is_empty() {
            q = q.bind(&pattern);
        }
        if let Some((name, id)) = after {
            q = q.bind(name).bind(id);
        }
        q.bind(limit_value).bind(offset_value).fetch_all(pool).await
    })?;
    let total = rows.first().map_or(0, |r| r.total);
    Ok((rows, total))
}

/// How many repositories `likes` allows (all when `None`).
pub async fn count(db: &Db, likes: Option<&[String]>) -> Result<i64, StoreError> {
    let mut n = 0;
    let mut next = || {
        n += 1;
        n
    };
    let filter = access_clause(likes, &mut next);
    let sql = format!("SELECT COUNT(*) FROM repos r WHERE {filter}");
    Ok(on_db!(db, |pool| {
        let mut q = sqlx::query_scalar(&sql);
        for like in likes.unwrap_or_default() {
            q = q.bind(like);
        }
        q.fetch_one(pool).await
    })?)
}

/// Daily views of these repositories from `from` on, for the list's sparklines.
pub async fn daily_views(
    db: &Db,
    repo_ids: &[i64],
    from: NaiveDate,
) -> Result<Vec<(i64, NaiveDate, i32)>, StoreError> {
    if repo_ids.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (2..repo_ids.len() + 2).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT repo_id, day, views FROM repo_traffic \
         WHERE day >= $1 AND repo_id IN ({}) ORDER BY repo_id, day",
        placeholders.join(", ")
    );
    Ok(on_db!(db, |pool| {
        let mut q = sqlx::query_as(&sql).bind(from);
        for id in repo_ids {
            q = q.bind(id);
        }
        q.fetch_all(pool).await
    })?)
}

/// When the sync last finished well.
pub async fn last_sync(db: &Db) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError> {
    const SQL: &str = "SELECT MAX(finished_at) FROM sync_runs WHERE outcome = 'success'";
    Ok(on_db!(db, |pool| sqlx::query_scalar(SQL)
        .fetch_one(pool)
        .await)?)
}

/// One repository by name (GitHub's names compare case-insensitively), if `likes` allows it:
/// a repository the user may not see is not found, exactly like one that does not exist.
pub async fn find(
    db: &Db,
    likes: Option<&[String]>,
    name: &str,
) -> Result<Option<RepoDetail>, StoreError> {
    let mut n = 1;
    let mut next = || {
        n += 1;
        n
    };
    let filter = access_clause(likes, &mut next);
    let sql = format!(
        "SELECT r.id, r.name, r.description, r.visibility, r.archived, r.html_url, r.stars, \
           r.forks, r.removed_at IS NOT NULL AS removed \
         FROM repos r WHERE lower(r.name) = $1 AND {filter}"
    );
    let name = name.to_ascii_lowercase();
    Ok(on_db!(db, |pool| {
        let mut q = sqlx::query_as(&sql).bind(&name);
        for like in likes.unwrap_or_default() {
            q = q.bind(like);
        }
        q.fetch_optional(pool).await
    })?)
}

/// Traffic of one repository per period from `from` (all when `None`) to `to`, inclusive,
/// summed in SQL. Weeks start on Monday.
pub async fn series(
    db: &Db,
    repo_id: i64,
    from: Option<NaiveDate>,
    to: NaiveDate,
    granularity: Granularity,
) -> Result<Vec<Point>, StoreError> {
    // The one part that differs between the databases: truncating a date to its period.
    let period = match (db, granularity) {
        (_, Granularity::Day) => "day",
        (Db::Postgres(_), Granularity::Week) => "date_trunc('week', day)::date",
        (Db::Postgres(_), Granularity::Month) => "date_trunc('month', day)::date",
        (Db::Sqlite(_), Granularity::Week) => {
            "date(day, '-' || ((CAST(strftime('%w', day) AS INTEGER) + 6) % 7) || ' days')"
        }
        (Db::Sqlite(_), Granularity::Month) => "date(day, 'start of month')",
    };
    let sql = format!(
        "SELECT {period} AS period, SUM(views) AS views, SUM(unique_views) AS unique_views, \
           SUM(clones) AS clones, SUM(unique_clones) AS unique_clones \
         FROM repo_traffic WHERE repo_id = $1 AND day >= $2 AND day <= $3 \
         GROUP BY 1 ORDER BY 1"
    );
    // 1970-01-01: before any traffic GitHub can have reported.
    let from = from.unwrap_or_default();
    Ok(on_db!(db, |pool| sqlx::query_as(&sql)
        .bind(repo_id)
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await)?)
}

/// GitHub's top referrers and popular paths of the repository's last sync day.
pub async fn popular(db: &Db, repo_id: i64) -> Result<(Vec<Popular>, Vec<Popular>), StoreError> {
    const REFERRERS: &str = "SELECT referrer AS label, '' AS title, count, uniques \
        FROM repo_referrers WHERE repo_id = $1 \
          AND day = (SELECT MAX(day) FROM repo_referrers WHERE repo_id = $1) \
        ORDER BY count DESC, referrer LIMIT 10";
    const PATHS: &str = "SELECT path AS label, title, count, uniques \
        FROM repo_paths WHERE repo_id = $1 \
          AND day = (SELECT MAX(day) FROM repo_paths WHERE repo_id = $1) \
        ORDER BY count DESC, path LIMIT 10";
    let referrers = on_db!(db, |pool| sqlx::query_as(REFERRERS)
        .bind(repo_id)
        .fetch_all(pool)
        .await)?;
    let paths = on_db!(db, |pool| sqlx::query_as(PATHS)
        .bind(repo_id)
        .fetch_all(pool)
        .await)?;
    Ok((referrers, paths))
}

/// Stars as they were on each sync day, within the range.
pub async fn stars(
    db: &Db,
    repo_id: i64,
    from: Option<NaiveDate>,
    to: NaiveDate,
) -> Result<Vec<(NaiveDate, i32)>, StoreError> {
    const SQL: &str = "SELECT day, stars FROM repo_stars \
        WHERE repo_id = $1 AND day >= $2 AND day <= $3 ORDER BY day";
    let from = from.unwrap_or_default();
    Ok(on_db!(db, |pool| sqlx::query_as(SQL)
        .bind(repo_id)
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await)?)
}
