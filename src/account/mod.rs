//! The signed-in user's own account: the profile page and their sessions.

pub mod profile;
pub mod sessions;

use axum::routing::{get, post};

use crate::web::routes::Route;

pub fn routes() -> Vec<Route> {
    vec![
        Route::page("/profile", &["GET"], get(profile::show_profile)).rule("profile"),
        Route::page("/account/sessions", &["GET"], get(sessions::list_sessions)),
        Route::page(
            "/account/sessions/revoke-others",
            &["POST"],
            post(sessions::revoke_other_sessions),
        ),
        Route::page(
            "/account/sessions/{handle}/revoke",
            &["POST"],
            post(sessions::revoke_session),
        ),
    ]
}
