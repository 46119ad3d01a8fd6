//! What every page shares (the base layout's fields) and the landing page.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;

use super::assets;
use super::error::AppError;
use crate::auth::extract::CurrentUser;
use crate::state::AppState;
use crate::store::DirectorySummary;

/// Fields of `templates/base.html`; each page struct carries one.
pub struct Layout {
    pub title: String,
    pub css_url: &'static str,
    /// This request's CSP nonce, set on the page's stylesheet and script tags.
    pub nonce: String,
}

impl Layout {
    pub fn new(title: impl Into<String>) -> Self {
        Layout {
            title: title.into(),
            css_url: assets::url("gatehouse.css"),
            nonce: super::middleware::csp_nonce(),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "home.html")]
pub struct HomePage {
    layout: Layout,
    summary: DirectorySummary,
    dev_mode: bool,
    user: Option<crate::store::User>,
    csrf: String,
}

pub async fn show_home(
    State(state): State<AppState>,
    current: Option<CurrentUser>,
) -> Result<HomePage, AppError> {
    let summary = state.store.directory_summary().await?;
    let (user, csrf) = match current {
        Some(c) => (Some(c.user), c.session.csrf),
        None => (None, String::new()),
    };
    Ok(HomePage {
        layout: Layout::new("Gatehouse"),
        summary,
        dev_mode: state.config.is_dev_mode(),
        user,
        csrf,
    })
}

#[derive(Template)]
#[template(path = "hop.html")]
struct HopPage<'a> {
    layout: Layout,
    heading: &'a str,
    target: &'a str,
}

/// A 200 page that moves on by `<meta http-equiv="refresh">`. Used where a redirect would
/// lose something: after the provider's cross-site return (a Strict cookie is sent again on
/// the same-origin hop) and after a form POST whose next stop is another origin (CSP
/// `form-action 'self'` would block a redirect there).
pub fn hop_page(heading: &str, target: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    let page = HopPage {
        layout: Layout::new(heading),
        heading,
        target,
    };
    match page.render() {
        Ok(html) => (
            [(axum::http::header::CACHE_CONTROL, "no-store")],
            axum::response::Html(html),
        )
            .into_response(),
        Err(e) => AppError::Internal(e.into()).into_response(),
    }
}
