//! The repositories' queries, written once for both databases. Access is part of every query
//! (`WHERE` on the allowed name patterns), and sums are aggregated in SQL (the list's 14-day
//! sums kept per repository in `repo_summaries`): a page never fetches rows it then hides or
//! adds up.

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
                .map(|_| format!("r.name_key LIKE ${} ESCAPE '\\'", next()))
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

/// Every repository's sums over the 14 days ending `$1` (from `$2`) and the 14 before (from
/// `$3`), and its last day with traffic, written to `repo_summaries` as of `$1`. One statement
/// for both databases, run by the sync inside its transaction and by `ensure_summaries`.
/// (`WHERE TRUE` keeps SQLite from reading `ON CONFLICT` as a join's `ON`.)
pub const REFRESH_SUMMARIES: &str = "INSERT INTO repo_summaries \
      (repo_id, as_of, views_14d, unique_views_14d, clones_14d, unique_clones_14d, \
       views_prev_14d, clones_prev_14d, last_day) \
    SELECT r.id, $1, \
      COALESCE(SUM(CASE WHEN t.day >= $2 THEN t.views ELSE 0 END), 0), \
      COALESCE(SUM(CASE WHEN t.day >= $2 THEN t.unique_views ELSE 0 END), 0), \
      COALESCE(SUM(CASE WHEN t.day >= $2 THEN t.clones ELSE 0 END), 0), \
      COALESCE(SUM(CASE WHEN t.day >= $2 THEN t.unique_clones ELSE 0 END), 0), \
      COALESCE(SUM(CASE WHEN t.day < $2 THEN t.views ELSE 0 END), 0), \
      COALESCE(SUM(CASE WHEN t.day < $2 THEN t.clones ELSE 0 END), 0), \
      (SELECT MAX(x.day) FROM repo_traffic x WHERE x.repo_id = r.id) \
    FROM repos r LEFT JOIN repo_traffic t \
      ON t.repo_id = r.id AND t.day >= $3 AND t.day <= $1 \
    WHERE TRUE GROUP BY r.id \
    ON CONFLICT (repo_id) DO UPDATE SET as_of = excluded.as_of, \
      views_14d = excluded.views_14d, unique_views_14d = excluded.unique_views_14d, \
      clones_14d = excluded.clones_14d, unique_clones_14d = excluded.unique_clones_14d, \
      views_prev_14d = excluded.views_prev_14d, clones_prev_14d = excluded.clones_prev_14d, \
      last_day = excluded.last_day";

/// The three dates `REFRESH_SUMMARIES` takes for the 28 days ending `today`.
pub fn summary_window(today: NaiveDate) -> [NaiveDate; 3] {
    [
        today,
        today - Duration::days(13),
        today - Duration::days(27),
    ]
}

/// One refresh at a time in this process: at midnight every request of the moment finds
/// the sums a day old, and one of them is enough to bring them up to date.
static REFRESHING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Brings `repo_summaries` to `today` if any repository's sums are of another day (or
/// missing: a repository written by something other than the sync).
pub async fn ensure_summaries(db: &Db, today: NaiveDate) -> Result<(), StoreError> {
    const STALE: &str = "SELECT COUNT(*) FROM repos r \
        LEFT JOIN repo_summaries s ON s.repo_id = r.id \
        WHERE s.as_of IS NULL OR s.as_of <> $1";
    let _one = REFRESHING.lock().await;
    let stale: i64 = on_db!(db, |pool| sqlx::query_scalar(STALE)
        .bind(today)
        .fetch_one(pool)
        .await)?;
    if stale > 0 {
        let [a, b, c] = summary_window(today);
        crate::execute!(db, REFRESH_SUMMARIES, a, b, c)?;
    }
    Ok(())
}

/// The `WHERE` of the list: access, then the search when there is one (bound in that order,
/// the pattern from `search_pattern`).
fn list_filter(likes: Option<&[String]>, q: &str, next: &mut impl FnMut() -> usize) -> String {
    let mut filter = access_clause(likes, next);
    if !q.is_empty() {
        let p = next();
        filter.push_str(&format!(" AND r.search_text LIKE ${p} ESCAPE '\\'"));
    }
    filter
}

fn search_pattern(q: &str) -> String {
    like_pattern(&q.to_ascii_lowercase())
}

/// The repositories `likes` allows that match the query, with their traffic over the 14 days
/// ending `today` and the 14 before (from `repo_summaries`, brought to `today` first when
/// they are of another day).
pub async fn list(
    db: &Db,
    likes: Option<&[String]>,
    query: &ListQuery,
    paging: Paging<'_>,
    today: NaiveDate,
) -> Result<Vec<RepoSummary>, StoreError> {
    let rows = list_summaries(db, likes, query, paging).await?;
    // The sums are all of one day (one statement writes them), so the rows shown tell.
    if rows.iter().all(|r| r.as_of == Some(today)) {
        return Ok(rows);
    }
    ensure_summaries(db, today).await?;
    list_summaries(db, likes, query, paging).await
}

async fn list_summaries(
    db: &Db,
    likes: Option<&[String]>,
    query: &ListQuery,
    paging: Paging<'_>,
) -> Result<Vec<RepoSummary>, StoreError> {
    let mut n = 0;
    let mut next = || {
        n += 1;
        n
    };
    // Placeholders are numbered in the order they first appear (SQLite numbers them so).
    let mut filter = list_filter(likes, &query.q, &mut next);
    let (order, after) = match paging {
        Paging::Page(_) => (
            format!("{}, r.name_key ASC, r.id ASC", query.sort.sql(query.desc)),
            None,
        ),
        Paging::After { after, .. } => ("r.name_key ASC, r.id ASC".to_string(), after),
    };
    if after.is_some() {
        let (name, id) = (next(), next());
        filter.push_str(&format!(
            " AND (r.name_key > ${name} OR (r.name_key = ${name} AND r.id > ${id}))"
        ));
    }
    let (limit, offset) = (next(), next());
    let (limit_value, offset_value) = match paging {
        Paging::Page(page) => (PER_PAGE, (i64::from(page.max(1)) - 1) * PER_PAGE),
        Paging::After { limit, .. } => (limit, 0),
    };
    let sql = format!(
        "SELECT r.id, r.name, r.description, r.visibility, r.archived, r.html_url, r.stars, \
           r.removed_at IS NOT NULL AS removed, r.updated_at AS synced_at, s.as_of, \
           COALESCE(s.views_14d, 0) AS views_14d, \
           COALESCE(s.unique_views_14d, 0) AS unique_views_14d, \
           COALESCE(s.clones_14d, 0) AS clones_14d, \
           COALESCE(s.unique_clones_14d, 0) AS unique_clones_14d, \
           COALESCE(s.views_prev_14d, 0) AS views_prev_14d, \
           COALESCE(s.clones_prev_14d, 0) AS clones_prev_14d, \
           s.last_day \
         FROM repos r LEFT JOIN repo_summaries s ON s.repo_id = r.id \
         WHERE {filter} \
         ORDER BY {order} \
         LIMIT ${limit} OFFSET ${offset}"
    );
    let pattern = search_pattern(&query.q);
    Ok(on_db!(db, |pool| {
        let mut q = sqlx::query_as(&sql);
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
    })?)
}

/// How many repositories `likes` allows (all when `None`) that match `q` (all when empty).
pub async fn count(db: &Db, likes: Option<&[String]>, q: &str) -> Result<i64, StoreError> {
    let mut n = 0;
    let mut next = || {
        n += 1;
        n
    };
    let filter = list_filter(likes, q, &mut next);
    let sql = format!("SELECT COUNT(*) FROM repos r WHERE {filter}");
    let pattern = search_pattern(q);
    Ok(on_db!(db, |pool| {
        let mut query = sqlx::query_scalar(&sql);
        for like in likes.unwrap_or_default() {
            query = query.bind(like);
        }
        if !q.is_empty() {
            query = query.bind(&pattern);
        }
        query.fetch_one(pool).await
    })?)
}

/// Daily views of these repositories from `from` on, for the list's sparklines: per
/// repository one text of `offset:views` pairs (`offset` in days from `from`), so a page of
/// 50 repositories reads 50 rows rather than 1,400.
pub async fn daily_views(
    db: &Db,
    repo_ids: &[i64],
    from: NaiveDate,
) -> Result<Vec<(i64, String)>, StoreError> {
    if repo_ids.is_empty() {
        return Ok(Vec::new());
    }
    // The one part that differs between the databases: days between two dates, and the
    // aggregate that joins text.
    let pairs = match db {
        Db::Postgres(_) => "string_agg((day - $1)::text || ':' || views::text, ',')",
        Db::Sqlite(_) => {
            "group_concat(CAST(julianday(day) - julianday($1) AS INTEGER) || ':' || views, ',')"
        }
    };
    let placeholders: Vec<String> = (2..repo_ids.len() + 2).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT repo_id, {pairs} FROM repo_traffic \
         WHERE day >= $1 AND repo_id IN ({}) GROUP BY repo_id",
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
         FROM repos r WHERE r.name_key = $1 AND {filter}"
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

/// Stars within the range: the first snapshot and each that differs from the one before
/// (a year of unchanged days says no more than its first), found in SQL.
pub async fn stars(
    db: &Db,
    repo_id: i64,
    from: Option<NaiveDate>,
    to: NaiveDate,
) -> Result<Vec<(NaiveDate, i32)>, StoreError> {
    const SQL: &str = "SELECT day, stars FROM ( \
          SELECT day, stars, LAG(stars) OVER (ORDER BY day) AS before FROM repo_stars \
          WHERE repo_id = $1 AND day >= $2 AND day <= $3 \
        ) AS d WHERE before IS NULL OR before <> stars ORDER BY day";
    let from = from.unwrap_or_default();
    Ok(on_db!(db, |pool| sqlx::query_as(SQL)
        .bind(repo_id)
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await)?)
}
