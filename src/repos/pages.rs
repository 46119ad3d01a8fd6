//! `/repos`: the organization's repositories the user may see, with their last 14 days of
//! traffic. Server-rendered, so it works without JavaScript; sparklines are SVG drawn here.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{Duration, NaiveDate, Utc};

use std::sync::Arc;

use super::cache::ListKey;
use super::model::{ListParams, ListQuery, RepoSummary, SortKey};
use super::{RepoAccess, access_with, store};
use crate::auth::extract::CurrentUser;
use crate::state::AppState;
use crate::store::{Db, User};
use crate::web::error::AppError;
use crate::web::extract::Query;
use crate::web::pages::Layout;

pub struct Column {
    label: &'static str,
    href: String,
    /// `aria-sort`: ascending, descending or none.
    state: &'static str,
    arrow: &'static str,
}

pub struct Row {
    repo: RepoSummary,
    /// SVG polyline points of the last 28 days' views; empty without traffic.
    sparkline: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "repos.html")]
pub struct ReposPage {
    layout: Layout,
    user: User,
    csrf: String,
    q: String,
    columns: Vec<Column>,
    list: Arc<Listing>,
    /// Why the list is empty when it is, in words the user can act on.
    empty: Option<String>,
    problem: Option<String>,
    prev_href: Option<String>,
    next_href: Option<String>,
    page: u32,
    pages: i64,
    today: NaiveDate,
}

fn href(query: &ListQuery, sort: SortKey, desc: bool, page: u32) -> String {
    let mut url = url::form_urlencoded::Serializer::new(String::new());
    if !query.q.is_empty() {
        url.append_pair("q", &query.q);
    }
    url.append_pair(
        "sort",
        &format!("{}{}", if desc { "-" } else { "" }, sort.param()),
    );
    if page > 1 {
        url.append_pair("page", &page.to_string());
    }
    format!("/repos?{}", url.finish())
}

/// The list's rows as HTML: rendered once per kept page rather than at every request (most
/// of a page's bytes, and most of its rendering time).
#[derive(Template)]
#[template(path = "repos_rows.html")]
struct RowsHtml<'a> {
    rows: &'a [Row],
}

/// What a page of the list shows, whoever asks with the same access: the rows, how many match,
/// why none does, and when the sync last ran.
pub struct Listing {
    rows_html: String,
    total: i64,
    /// How many repositories there are at all, asked only when none matches (to say why).
    count_all: Option<i64>,
    last_sync: Option<String>,
}

/// The page of the list `query` asks for, within `likes`, with its 14-day sums as of `today`.
async fn load_listing(
    db: &Db,
    likes: Option<&[String]>,
    query: &ListQuery,
    today: NaiveDate,
) -> Result<Listing, AppError> {
    let repos = store::list(db, likes, query, store::Paging::Page(query.page), today).await?;
    // A first page that is not full is everything: no need to count.
    let shown = i64::try_from(repos.len()).unwrap_or(i64::MAX);
    let total = if query.page == 1 && shown < store::PER_PAGE {
        shown
    } else {
        store::count(db, likes, &query.q).await?
    };
    let since = today - Duration::days(27);
    let ids: Vec<i64> = repos.iter().map(|r| r.id).collect();
    let daily: std::collections::HashMap<i64, String> = store::daily_views(db, &ids, since)
        .await?
        .into_iter()
        .collect();
    let rows: Vec<Row> = repos
        .into_iter()
        .map(|repo| Row {
            sparkline: daily
                .get(&repo.id)
                .map(|d| sparkline(d))
                .unwrap_or_default(),
            repo,
        })
        .collect();
    // The last sync is shown beside a list; why a list is empty needs the count of all.
    let (count_all, last) = if total == 0 {
        (Some(store::count(db, None, "").await?), None)
    } else {
        (None, store::last_sync(db).await?)
    };
    let rows_html = RowsHtml { rows: &rows }
        .render()
        .map_err(|e| AppError::Internal(e.into()))?;
    Ok(Listing {
        rows_html,
        total,
        count_all,
        last_sync: last.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()),
    })
}

pub async fn list_repos(
    State(state): State<AppState>,
    current: CurrentUser,
    Query(params): Query<ListParams>,
) -> Result<(StatusCode, ReposPage), AppError> {
    let (query, problem) = match params.parse() {
        Ok(q) => (q, None),
        Err(e) => (ListQuery::default(), Some(e)),
    };
    let versions = state.versions().await?;
    let access = access_with(&state, versions, &current.user).await?;
    let org = super::org(&state);
    let likes = access.like_patterns(org);
    let today = Utc::now().date_naive();
    let key = ListKey::new(versions.repos, today, likes.clone(), &query);
    let db = state.store.db();
    let list = state
        .caches
        .repos
        .lists
        .get_or_insert_async(&key, async {
            load_listing(&db, likes.as_deref(), &query, today)
                .await
                .map(Arc::new)
        })
        .await?;
    let empty = list.count_all.map(|count| {
        let github = state.config.github.is_some();
        empty_reason(count, github, &access, org, &query.q)
    });
    let total = list.total;
    let columns = [
        ("Repository", SortKey::Name),
        ("Views, 14 days", SortKey::Views),
        ("Clones, 14 days", SortKey::Clones),
        ("Stars", SortKey::Stars),
        ("Last traffic", SortKey::LastDay),
    ]
    .into_iter()
    .map(|(label, key)| {
        let current = query.sort == key;
        // Numbers and dates are most useful largest/newest first.
        let first_desc = key != SortKey::Name;
        Column {
            label,
            href: href(
                &query,
                key,
                if current { !query.desc } else { first_desc },
                1,
            ),
            state: match (current, query.desc) {
                (false, _) => "none",
                (true, false) => "ascending",
                (true, true) => "descending",
            },
            arrow: match (current, query.desc) {
                (false, _) => "",
                (true, false) => " ▲",
                (true, true) => " ▼",
            },
        }
    })
    .collect();
    let pages = ((total + store::PER_PAGE - 1) / store::PER_PAGE).max(1);
    let status = super::page_status(problem.as_ref());
    Ok((
        status,
        ReposPage {
            layout: Layout::new("Repositories · Gatehouse"),
            csrf: current.session.csrf.clone(),
            user: current.user,
            q: query.q.clone(),
            columns,
            list,
            empty,
            problem,
            prev_href: (query.page > 1)
                .then(|| href(&query, query.sort, query.desc, query.page - 1)),
            next_href: (i64::from(query.page) < pages)
                .then(|| href(&query, query.sort, query.desc, query.page + 1)),
            page: query.page,
            pages,
            today,
        },
    ))
}

/// Why the list is empty, in words the user can act on.
fn empty_reason(count: i64, github: bool, access: &RepoAccess, org: &str, q: &str) -> String {
    if count == 0 && !github {
        "No repositories yet: the GitHub sync is not configured (GATEHOUSE_GITHUB_ORG and \
         GATEHOUSE_GITHUB_TOKEN). Ask an administrator to set it up."
            .to_string()
    } else if count == 0 {
        "No repositories yet: the GitHub sync has not brought any in. An administrator can \
         run it from Admin → Sync."
            .to_string()
    } else if access.sees_nothing(org) {
        "None of your roles grants access to a repository. Ask an administrator for a role \
         (Admin → Groups and roles), or to map one of your groups to a role."
            .to_string()
    } else if q.is_empty() {
        "None of the repositories your roles grant exists here (yet).".to_string()
    } else {
        format!("No repository you may see matches “{q}”.")
    }
}

/// Points of a 100×20 polyline over 28 days, from `offset:views` pairs (`offset` the day,
/// 0 to 27; days without a report at 0).
fn sparkline(pairs: &str) -> String {
    let mut values = [0i64; 28];
    for (offset, views) in pairs.split(',').filter_map(|p| p.split_once(':')) {
        if let (Ok(i), Ok(v)) = (offset.parse::<usize>(), views.parse::<i64>())
            && i < values.len()
        {
            values[i] = v;
        }
    }
    let max = values.iter().copied().max().unwrap_or(0).max(1);
    super::svg::polyline(values.iter().enumerate().map(|(i, v)| {
        (
            i as f64 * 100.0 / 27.0,
            19.0 - (*v as f64) * 18.0 / max as f64,
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sparkline_spans_28_days_scaled_to_the_busiest() {
        let line = sparkline("0:5,27:10");
        let points: Vec<&str> = line.split(' ').collect();
        assert_eq!(points.len(), 28);
        assert_eq!(points[0], "0.0,10.0");
        assert_eq!(points[1], "3.7,19.0", "a day without a report is 0");
        assert_eq!(points[27], "100.0,1.0", "the busiest day at the top");
        // Anything malformed or out of range is left out, never a panic.
        assert_eq!(sparkline("x:1,40:9,3:y,:").split(' ').count(), 28);
    }
}
