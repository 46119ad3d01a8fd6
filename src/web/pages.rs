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
    /// What the form just submitted did, shown once above the page (see `admin::Flash`).
    pub flash: Option<String>,
}

impl Layout {
    pub fn new(title: impl Into<String>) -> Self {
        Layout {
            title: title.into(),
            css_url: assets::url("gatehouse.css"),
            icon_url: assets::url("favicon.svg"),
            nonce: super::middleware::csp_nonce(),
            path: super::middleware::request_path(),
            flash: None,
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

/// A past moment as people say it ("3 hours ago"), for a table cell; the exact time goes
/// beside it in `<time datetime>` and its title. `static/search.js` says it the same way.
pub fn ago(t: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> String {
    let secs = (now - t).num_seconds();
    let plural = |n: i64, unit: &str| {
        if n == 1 {
            format!("1 {unit} ago")
        } else {
            format!("{n} {unit}s ago")
        }
    };
    match secs {
        ..60 => "just now".to_string(),
        60..3_600 => plural(secs / 60, "minute"),
        3_600..86_400 => plural(secs / 3_600, "hour"),
        86_400..2_592_000 => plural(secs / 86_400, "day"),
        _ => format!("on {}", t.format("%Y-%m-%d")),
    }
}

/// The exact time for a title: "2026-12-02 15:13 UTC".
pub fn exact_utc(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ago_says_the_largest_whole_unit() {
        let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let before = |s: i64| ago(now - chrono::Duration::seconds(s), now);
        assert_eq!(before(-5), "just now", "a clock a little ahead");
        assert_eq!(before(59), "just now");
        assert_eq!(before(60), "1 minute ago");
        assert_eq!(before(3_599), "59 minutes ago");
        assert_eq!(before(3_600), "1 hour ago");
        assert_eq!(before(7_300), "2 hours ago");
        assert_eq!(before(86_400), "1 day ago");
        assert_eq!(before(29 * 86_400), "29 days ago");
        assert_eq!(before(30 * 86_400), "on 2026-12-16");
        assert_eq!(exact_utc(now), "2027-01-15 08:00 UTC");
    }
}
