//! What every page shares: the base layout's fields, and the page that moves on by itself.

use askama::Template;

use super::assets;
use super::error::AppError;

/// Fields of `templates/base.html`; each page struct carries one.
pub struct Layout {
    pub title: String,
    pub css_url: &'static str,
    /// The site's icon (without one, every page's console shows a failed `/favicon.ico`).
    pub icon_url: &'static str,
    /// This request's CSP nonce, set on the page's stylesheet and script tags.
    pub nonce: String,
    /// This request's path, for `here`.
    pub path: std::sync::Arc<str>,
}

impl Layout {
    pub fn new(title: impl Into<String>) -> Self {
        Layout {
            title: title.into(),
            css_url: assets::url("gatehouse.css"),
            icon_url: assets::url("favicon.svg"),
            nonce: super::middleware::csp_nonce(),
            path: super::middleware::request_path(),
        }
    }

    /// Whether this page is `href` or lies under it (`/repos/x` is under `/repos`): the
    /// header and the admin tabs mark it with `aria-current`.
    pub fn here(&self, href: &str) -> bool {
        self.path
            .strip_prefix(href)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
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
