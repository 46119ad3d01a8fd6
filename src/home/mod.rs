//! The start page: what Gatehouse offers, the directory's figures, and the way in.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::routing::get;

use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::Cookie;

use crate::auth::extract::CurrentUser;
use crate::auth::routes::SIGNED_OUT_COOKIE;
use crate::state::AppState;
use crate::store::DirectorySummary;
use crate::web::error::AppError;
use crate::web::pages::Layout;
use crate::web::routes::Route;

pub fn routes() -> Vec<Route> {
    vec![Route::page("/", &["GET"], get(show_home)).public()]
}

#[derive(Template, WebTemplate)]
#[template(path = "home.html")]
pub struct HomePage {
    layout: Layout,
    summary: DirectorySummary,
    dev_mode: bool,
    user: Option<crate::store::User>,
    csrf: String,
    signed_out: bool,
}

pub async fn show_home(
    State(state): State<AppState>,
    current: Option<CurrentUser>,
    jar: CookieJar,
) -> Result<(CookieJar, HomePage), AppError> {
    // Just signed out: said once, then the note is dropped.
    let note = Cookie::build(SIGNED_OUT_COOKIE).path("/");
    let (signed_out, jar) = match jar.get(SIGNED_OUT_COOKIE) {
        Some(_) => (current.is_none(), jar.remove(note)),
        None => (false, jar),
    };
    let (summary, user, csrf) = match current {
        Some(c) => {
            let mut summary = crate::store::directory_summary(&state.store.db()).await?;
            // Signed in, the card counts what this user may open, not what exists.
            let (access, org) = crate::repos::access_in_org(&state, &c.user).await?;
            let likes = access.like_patterns(&org);
            summary.repos =
                crate::repos::store::count(&state.store.db(), likes.as_deref(), "").await?;
            (summary, Some(c.user), c.session.csrf)
        }
        // Signed out, nothing internal is shown (nor counted).
        None => (DirectorySummary::default(), None, String::new()),
    };
    Ok((
        jar,
        HomePage {
            layout: Layout::new("Gatehouse"),
            summary,
            dev_mode: state.config.is_dev_mode(),
            user,
            csrf,
            signed_out,
        },
    ))
}
