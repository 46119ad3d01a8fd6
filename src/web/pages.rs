//! What every page shares (the base layout's fields) and the landing page.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;

use super::assets;
use super::error::AppError;
use crate::state::AppState;
use crate::store::DirectorySummary;

/// Fields of `templates/base.html`; each page struct carries one.
pub struct Layout {
    pub title: String,
    pub css_url: &'static str,
}

impl Layout {
    pub fn new(title: impl Into<String>) -> Self {
        Layout {
            title: title.into(),
            css_url: assets::url("gatehouse.css"),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "home.html")]
pub struct HomePage {
    layout: Layout,
    summary: DirectorySummary,
    dev_mode: bool,
}

pub async fn show_home(State(state): State<AppState>) -> Result<HomePage, AppError> {
    let summary = state.store.directory_summary().await?;
    Ok(HomePage {
        layout: Layout::new("Gatehouse"),
        summary,
        dev_mode: state.config.is_dev_mode(),
    })
}
