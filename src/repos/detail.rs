//! `/repos/{name}` and `/repos/{name}/traffic.csv`: one repository's views and clones over a
//! range, per day, week or month. Charts are SVG drawn here (no script, no inline style, so
//! the CSP stays strict and the page works without JavaScript); every plotted value is also
//! in a table, and each point carries its value as a tooltip.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{NaiveDate, Utc};

use super::model::{Granularity, Point, Popular, Range, RepoDetail, SeriesParams, SeriesQuery};
use super::svg::{Tenths, polyline};
use std::sync::Arc;

use super::cache::DetailKey;
use super::{RepoAccess, access_in_org, access_with, store};
use crate::auth::extract::CurrentUser;
use crate::state::AppState;
use crate::store::{Db, User};
use crate::web::error::AppError;
use crate::web::extract::{Path, Query};
use crate::web::pages::Layout;

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 24.0;

pub struct Dot {
    pub x: Tenths,
    pub y: Tenths,
    pub title: String,
}

pub struct Line {
    pub label: &'static str,
    /// A class of the stylesheet: `total` or `unique`.
    pub class: &'static str,
    pub points: String,
    pub dots: Vec<Dot>,
}

pub struct Chart {
    pub title: &'static str,
    pub lines: Vec<Line>,
    pub y_max: i64,
    pub first: String,
    pub last: String,
    pub count: usize,
}

pub struct Choice {
    pub label: &'static str,
    pub href: String,
    pub current: bool,
}

/// What the page shows of one repository over one range, whoever asks with the same access;
/// the charts and tables as HTML, rendered once rather than at every request.
pub struct Shown {
    repo: RepoDetail,
    totals: (i64, i64, i64, i64),
    body_html: String,
}

#[derive(Template)]
#[template(path = "repo_data.html")]
struct DataHtml<'a> {
    points: &'a [Point],
    charts: &'a [Chart],
    referrers: &'a [Popular],
    paths: &'a [Popular],
    stars: &'a [(NaiveDate, i32)],
}

#[derive(Template, WebTemplate)]
#[template(path = "repo.html")]
pub struct RepoPage {
    layout: Layout,
    user: User,
    csrf: String,
    shown: Arc<Shown>,
    ranges: Vec<Choice>,
    granularities: Vec<Choice>,
    csv_href: String,
    from: String,
    to: NaiveDate,
    problem: Option<String>,
}

/// A name GitHub could have given a repository; anything else is simply not found (and never
/// reaches the database, where a NUL would be an error rather than a miss).
fn plausible(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// The series the parameters ask for, of a repository `access` allows (CSV and API): a bad
/// parameter is a 400 naming it, a repository not allowed the same 404 as an unknown one.
pub async fn visible_series(
    state: &AppState,
    access: &RepoAccess,
    name: &str,
    params: &SeriesParams,
) -> Result<(RepoDetail, SeriesQuery, Vec<Point>), AppError> {
    let query = params
        .parse(Utc::now().date_naive())
        .map_err(AppError::BadRequest)?;
    let repo = find_visible(state, access, name).await?;
    let points = store::series(
        &state.store.db(),
        repo.id,
        query.from,
        query.to,
        query.granularity,
    )
    .await?;
    Ok((repo, query, points))
}

/// The repository if it exists and `access` allows it; otherwise the same 404 either way.
pub async fn find_visible(
    state: &AppState,
    access: &RepoAccess,
    name: &str,
) -> Result<RepoDetail, AppError> {
    if !plausible(name) {
        return Err(AppError::not_found());
    }
    let likes = access.like_patterns(super::org(state));
    store::find(&state.store.db(), likes.as_deref(), name)
        .await?
        .ok_or_else(AppError::not_found)
}

fn query_href(
    base: &str,
    range: Option<Range>,
    q: &SeriesQuery,
    granularity: Granularity,
) -> String {
    let mut url = url::form_urlencoded::Serializer::new(String::new());
    match range {
        Some(r) => {
            url.append_pair("range", r.param());
        }
        None => {
            if let Some(f) = q.from {
                url.append_pair("from", &f.to_string());
            }
            url.append_pair("to", &q.to.to_string());
        }
    }
    url.append_pair("granularity", granularity.param());
    format!("{base}?{}", url.finish())
}

/// The repository `likes` allows, with its traffic, popular pages and stars over the query's
/// range; `None` when there is no such repository or `likes` does not allow it.
async fn load_shown(
    db: &Db,
    likes: Option<&[String]>,
    name: &str,
    query: &SeriesQuery,
) -> Result<Option<Shown>, AppError> {
    let Some(repo) = store::find(db, likes, name).await? else {
        return Ok(None);
    };
    let points = store::series(db, repo.id, query.from, query.to, query.granularity).await?;
    let (referrers, paths) = store::popular(db, repo.id).await?;
    let stars = store::stars(db, repo.id, query.from, query.to).await?;
    let totals = points.iter().fold((0, 0, 0, 0), |t, p| {
        (
            t.0 + p.views,
            t.1 + p.unique_views,
            t.2 + p.clones,
            t.3 + p.unique_clones,
        )
    });
    let charts = vec![
        chart("Views", &points, |p| p.views, |p| p.unique_views),
        chart("Clones", &points, |p| p.clones, |p| p.unique_clones),
    ];
    let body_html = DataHtml {
        points: &points,
        charts: &charts,
        referrers: &referrers,
        paths: &paths,
        stars: &stars,
    }
    .render()
    .map_err(|e| AppError::Internal(e.into()))?;
    Ok(Some(Shown {
        repo,
        totals,
        body_html,
    }))
}

pub async fn show_repo(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(name): Path<String>,
    Query(params): Query<SeriesParams>,
) -> Result<(StatusCode, RepoPage), AppError> {
    if !plausible(&name) {
        return Err(AppError::not_found());
    }
    let today = Utc::now().date_naive();
    let (query, problem) = match params.parse(today) {
        Ok(q) => (q, None),
        Err(e) => (
            SeriesParams::default()
                .parse(today)
                .map_err(AppError::BadRequest)?,
            Some(e),
        ),
    };
    let versions = state.versions().await?;
    let access = access_with(&state, versions, &current.user).await?;
    let likes = access.like_patterns(super::org(&state));
    let key = DetailKey {
        version: versions.repos,
        likes: likes.clone(),
        name: name.to_ascii_lowercase(),
        from: query.from,
        to: query.to,
        granularity: query.granularity,
    };
    let db = state.store.db();
    let shown = state
        .caches
        .repos
        .details
        .get_or_insert_async(&key, async {
            load_shown(&db, likes.as_deref(), &name, &query)
                .await
                .map(|shown| shown.map(Arc::new))
        })
        .await?
        .ok_or_else(AppError::not_found)?;
    let repo = &shown.repo;
    let base = format!("/repos/{}", repo.name);
    let ranges = Range::ALL
        .into_iter()
        .map(|r| Choice {
            label: match r {
                Range::Days14 => "14 days",
                Range::Days90 => "90 days",
                Range::Year => "1 year",
                Range::All => "All",
            },
            href: query_href(&base, Some(r), &query, query.granularity),
            current: query.range == Some(r),
        })
        .collect();
    let granularities = Granularity::ALL
        .into_iter()
        .map(|g| Choice {
            label: match g {
                Granularity::Day => "Daily",
                Granularity::Week => "Weekly",
                Granularity::Month => "Monthly",
            },
            href: query_href(&base, query.range, &query, g),
            current: query.granularity == g,
        })
        .collect();
    let status = super::page_status(problem.as_ref());
    Ok((
        status,
        RepoPage {
            layout: Layout::new(format!("{} · Repositories · Gatehouse", repo.name)),
            csrf: current.session.csrf.clone(),
            user: current.user,
            csv_href: query_href(
                &format!("{base}/traffic.csv"),
                query.range,
                &query,
                query.granularity,
            ),
            from: query
                .from
                .map_or_else(|| "the first day recorded".to_string(), |f| f.to_string()),
            to: query.to,
            ranges,
            granularities,
            problem,
            shown,
        },
    ))
}

/// The plotted series as CSV: `date,views,unique_views,clones,unique_clones`, one row per
/// period (its first day), dates in UTC.
pub async fn traffic_csv(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(name): Path<String>,
    Query(params): Query<SeriesParams>,
) -> Result<Response, AppError> {
    let (access, _) = access_in_org(&state, &current.user).await?;
    let (repo, _, points) = visible_series(&state, &access, &name, &params).await?;
    let mut csv = String::from("date,views,unique_views,clones,unique_clones\n");
    for p in &points {
        csv.push_str(&format!(
            "{},{},{},{},{}\n",
            p.period, p.views, p.unique_views, p.clones, p.unique_clones
        ));
    }
    let file = format!("attachment; filename=\"{}-traffic.csv\"", repo.name);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, file),
        ],
        csv,
    )
        .into_response())
}

/// A chart of a total and its unique count over the points, scaled to the largest value.
fn chart(
    title: &'static str,
    points: &[Point],
    total: impl Fn(&Point) -> i64,
    unique: impl Fn(&Point) -> i64,
) -> Chart {
    let y_max = points.iter().map(&total).max().unwrap_or(0).max(1);
    let n = points.len();
    let x = |i: usize| {
        let span = WIDTH - LEFT - RIGHT;
        if n <= 1 {
            LEFT + span / 2.0
        } else {
            LEFT + span * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: i64| TOP + (HEIGHT - TOP - BOTTOM) * (1.0 - v as f64 / y_max as f64);
    let line = |label: &'static str, class: &'static str, value: &dyn Fn(&Point) -> i64| Line {
        label,
        class,
        points: polyline(points.iter().enumerate().map(|(i, p)| (x(i), y(value(p))))),
        dots: points
            .iter()
            .enumerate()
            .map(|(i, p)| Dot {
                x: Tenths::of(x(i)),
                y: Tenths::of(y(value(p))),
                title: format!("{}: {} {}", p.period, value(p), label.to_lowercase()),
            })
            .collect(),
    };
    Chart {
        title,
        lines: vec![
            line(title, "total", &total),
            line(
                if title == "Views" {
                    "Unique visitors"
                } else {
                    "Unique cloners"
                },
                "unique",
                &unique,
            ),
        ],
        y_max,
        first: points
            .first()
            .map(|p| p.period.to_string())
            .unwrap_or_default(),
        last: points
            .last()
            .map(|p| p.period.to_string())
            .unwrap_or_default(),
        count: n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_github_could_give_reach_the_database() {
        for ok in ["web-shop", "my_repo", "a.b", "A1"] {
            assert!(plausible(ok), "{ok}");
        }
        let long = "a".repeat(101);
        for bad in ["", "a b", "a/b", "a\0b", "..%2f", "ü", long.as_str()] {
            assert!(!plausible(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_chart_has_one_point_per_period_scaled_to_the_largest() {
        let day = |d: u32| NaiveDate::from_ymd_opt(2026, 11, d).expect("date");
        let points: Vec<Point> = (1..=3)
            .map(|d| Point {
                period: day(d),
                views: i64::from(d) * 10,
                unique_views: i64::from(d),
                clones: 0,
                unique_clones: 0,
            })
            .collect();
        let c = chart("Views", &points, |p| p.views, |p| p.unique_views);
        assert_eq!((c.count, c.y_max), (3, 30));
        assert_eq!(c.lines[0].dots.len(), 3);
        assert_eq!(c.lines[0].dots[2].title, "2026-11-03: 30 views");
        assert_eq!(
            c.lines[0].dots[2].y.to_string(),
            "10.0",
            "the largest at the top"
        );
        assert_eq!(
            (c.first.as_str(), c.last.as_str()),
            ("2026-11-01", "2026-11-03")
        );
        let flat = chart("Clones", &points, |p| p.clones, |p| p.unique_clones);
        assert_eq!(flat.y_max, 1, "an empty series still has a scale");
    }
}
