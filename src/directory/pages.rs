//! Directory pages: `/lookup`, `/gh/search` and `/gh/search.json`. Handlers parse, call the
//! store, and render; the query model lives in `search`.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;

use crate::web::extract::Query;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::search::{Page, SearchParams, SearchQuery, SortKey};
use super::{IdentityJson, PersonFacts, could_be_email, normalize_email};
use crate::auth::extract::CurrentUser;
use crate::state::AppState;
use crate::store::User;
use crate::web::error::AppError;
use crate::web::pages::Layout;
use crate::web::routes::Route;

pub fn routes() -> Vec<Route> {
    vec![
        Route::page("/lookup", &["GET"], get(lookup)).rule("lookup"),
        Route::page("/gh/search", &["GET"], get(search_page)).rule("gh.search"),
        Route::page("/gh/search.json", &["GET"], get(search_json))
            .json()
            .rule("gh.search_json"),
    ]
}

#[derive(Debug, Deserialize)]
pub struct LookupParams {
    email: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "lookup.html")]
pub struct LookupPage {
    layout: Layout,
    user: User,
    csrf: String,
    /// What was typed: an email, or part of a name (or of an email or GitHub username).
    typed: String,
    /// The email whose facts are shown.
    email: String,
    /// The person's name, when the directory knows it.
    name: Option<String>,
    /// `None` before a search; `Some(empty)` when no one was found.
    facts: Option<PersonFacts>,
    /// Several people matched a name: (name, email) of each, to pick from.
    choices: Vec<(String, String)>,
    /// More matched than are listed.
    more_choices: bool,
    problem: Option<&'static str>,
    github_web: String,
}

/// How many people a name lookup lists to pick from.
const CHOICES: u32 = 20;

/// A coworker's GitHub username(s) and non-hidden lists; never their laptops. An email is
/// looked up as it is; anything else is searched in the directory (names, emails, GitHub
/// usernames): one person found is shown, several are listed to pick from.
pub async fn lookup(
    State(state): State<AppState>,
    current: CurrentUser,
    Query(params): Query<LookupParams>,
) -> Result<LookupPage, AppError> {
    let typed = params.email.as_deref().unwrap_or("").trim().to_string();
    let mut page = LookupPage {
        layout: Layout::new("Look up a coworker — Gatehouse"),
        csrf: current.session.csrf,
        user: current.user,
        typed: typed.clone(),
        email: String::new(),
        name: None,
        facts: None,
        choices: Vec::new(),
        more_choices: false,
        problem: None,
        github_web: state.config.github_web.clone(),
    };
    if typed.is_empty() {
        return Ok(page);
    }
    let email = if typed.contains('@') {
        let email = normalize_email(&typed);
        if !could_be_email(&email) {
            page.problem = Some("That does not look like an email address.");
            return Ok(page);
        }
        email
    } else {
        let Ok(query) = SearchParams {
            q: Some(typed.clone()),
            limit: Some(CHOICES.to_string()),
            ..SearchParams::default()
        }
        .parse() else {
            page.problem = Some("Type an email, or part of a name (at most 200 characters).");
            return Ok(page);
        };
        let found = state.directory().await?.search(&query);
        // One person may have several GitHub accounts: people are told apart by email.
        let mut people: Vec<(String, String)> = Vec::new();
        for row in &found {
            if !people.iter().any(|(_, e)| *e == row.email) {
                people.push((row.name.clone(), row.email.clone()));
            }
        }
        page.more_choices = found.len() > CHOICES as usize;
        match people.len() {
            0 => {
                page.facts = Some(PersonFacts::default());
                return Ok(page);
            }
            1 if !page.more_choices => people.swap_remove(0).1,
            _ => {
                people.truncate(CHOICES as usize);
                page.choices = people;
                return Ok(page);
            }
        }
    };
    let facts = crate::directory::store::person_facts(&state.store.db(), &email)
        .await?
        .for_coworker();
    page.name = facts
        .github
        .iter()
        .map(|g| g.name.trim())
        .find(|n| !n.is_empty())
        .map(str::to_string);
    page.email = email;
    page.facts = Some(facts);
    Ok(page)
}

/// One column header of the directory table: its link toggles the direction.
pub struct SortLink {
    pub label: &'static str,
    pub href: String,
    /// `"ascending"`, `"descending"` or `"none"`, for `aria-sort`.
    pub state: &'static str,
}

#[derive(Template, WebTemplate)]
#[template(path = "gh_search.html")]
pub struct SearchPage {
    layout: Layout,
    user: User,
    csrf: String,
    q: String,
    limit: u32,
    include_departed: bool,
    columns: Vec<SortLink>,
    /// A row, whether the person left, and when it was last pulled: in words, exactly.
    rows: Vec<(IdentityJson, bool, String, String)>,
    next_href: Option<String>,
    first_href: Option<String>,
    script_url: &'static str,
    problem: Option<String>,
    /// "3 people match", over every page.
    count: String,
    github_web: String,
}

/// How many match, in words (search-as-you-type says it the same way); nothing for none,
/// which the table's own notice says.
fn count_words(n: usize, q: &str) -> String {
    let people = if n == 1 {
        "1 person".to_string()
    } else {
        format!("{n} people")
    };
    match (n, q.is_empty()) {
        (0, _) => String::new(),
        (_, true) => people,
        (1, false) => format!("{people} matches"),
        (_, false) => format!("{people} match"),
    }
}

/// `count=1` on a page of `/gh/search.json`: the number of rows matching over every page in
/// `X-Total-Count` (search-as-you-type shows it; other clients need not pay for it).
#[derive(Debug, Default, serde::Deserialize)]
pub struct CountParam {
    count: Option<String>,
}

fn search_href(query: &SearchQuery, sort: SortKey, desc: bool, cursor: Option<&str>) -> String {
    let mut url = url::form_urlencoded::Serializer::new(String::new());
    if !query.q.is_empty() {
        url.append_pair("q", &query.q);
    }
    url.append_pair(
        "sort",
        &format!("{}{}", if desc { "-" } else { "" }, sort.as_str()),
    );
    if query.limit != super::search::DEFAULT_LIMIT {
        url.append_pair("limit", &query.limit.to_string());
    }
    if query.include_departed {
        url.append_pair("include_departed", "1");
    }
    if let Some(c) = cursor {
        url.append_pair("cursor", c);
    }
    format!("/gh/search?{}", url.finish())
}

/// The directory page: server-rendered (works without JavaScript); `search.js` adds
/// search-as-you-type on top.
pub async fn search_page(
    State(state): State<AppState>,
    current: CurrentUser,
    Query(params): Query<SearchParams>,
) -> Result<SearchPage, AppError> {
    let (query, problem) = match params.parse() {
        Ok(q) => (q, None),
        Err(e) => (SearchQuery::default(), Some(e)),
    };
    let index = state.directory().await?;
    let page = Page::from_rows(&query, index.search(&query));
    let count = count_words(index.count(&query.q, query.include_departed), &query.q);
    let now = chrono::Utc::now();
    let columns = [
        ("Name", SortKey::Name),
        ("Email", SortKey::Email),
        ("GitHub username", SortKey::GithubUsername),
        ("Last pulled", SortKey::LastPullDate),
    ]
    .into_iter()
    .map(|(label, key)| {
        let current = query.sort == key;
        SortLink {
            label,
            href: search_href(&query, key, current && !query.desc, None),
            state: match (current, query.desc) {
                (false, _) => "none",
                (true, false) => "ascending",
                (true, true) => "descending",
            },
        }
    })
    .collect();
    let next_href = page
        .next
        .as_ref()
        .map(|c| search_href(&query, query.sort, query.desc, Some(&c.encode())));
    let first_href = query
        .after
        .is_some()
        .then(|| search_href(&query, query.sort, query.desc, None));
    Ok(SearchPage {
        layout: Layout::new("GitHub usernames — Gatehouse"),
        csrf: current.session.csrf,
        user: current.user,
        q: query.q.clone(),
        limit: query.limit,
        include_departed: query.include_departed,
        columns,
        rows: page
            .rows
            .iter()
            .map(|r| {
                (
                    IdentityJson::from(r),
                    r.departed_at.is_some(),
                    crate::web::pages::ago(r.last_pull_date, now),
                    crate::web::pages::exact_utc(r.last_pull_date),
                )
            })
            .collect(),
        next_href,
        first_href,
        script_url: crate::web::assets::url("search.js"),
        problem,
        count,
        github_web: state.config.github_web.clone(),
    })
}

/// The Flask service's JSON, for its scripts: without parameters every active row as one
/// array (`dump`); with any parameter one page, the next page's URL in `Link`.
pub async fn search_json(
    State(state): State<AppState>,
    _current: CurrentUser,
    headers: axum::http::HeaderMap,
    Query(params): Query<SearchParams>,
    Query(count): Query<CountParam>,
) -> Result<Response, AppError> {
    if params.is_empty() {
        return super::dump::serve(&state, &headers).await;
    }
    let query = params.parse().map_err(AppError::BadRequest)?;
    let index = state.directory().await?;
    let page = Page::from_rows(&query, index.search(&query));
    let rows: Vec<IdentityJson> = page.rows.iter().map(IdentityJson::from).collect();
    let mut response = axum::Json(rows).into_response();
    match count.count.as_deref() {
        None | Some("0" | "") => {}
        Some("1") => {
            let n = index.count(&query.q, query.include_departed);
            response
                .headers_mut()
                .insert("x-total-count", HeaderValue::from(n));
        }
        Some(_) => return Err(AppError::BadRequest("count: 1 or 0".into())),
    }
    if let Some(next) = &page.next {
        let href = search_href(&query, query.sort, query.desc, Some(&next.encode())).replacen(
            "/gh/search?",
            "/gh/search.json?",
            1,
        );
        let link = format!(
            "<{}{}>; rel=\"next\"",
            state.config.public_url.as_str().trim_end_matches('/'),
            href
        );
        if let Ok(v) = HeaderValue::from_str(&link) {
            response.headers_mut().insert(header::LINK, v);
        }
    }
    Ok(response)
}
