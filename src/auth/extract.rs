//! Who is asking, as extractors in a handler's signature: `CurrentUser`, `AdminUser`,
//! `Option<CurrentUser>` on public pages, and `Bearer` (in `bearer.rs`). They read what the
//! pipeline's layers (`layers.rs`) found, so a request's session and user are looked up once;
//! a route the table does not protect gets no user from them (they fail closed).

use crate::web::client_ip::ClientIp;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;

use super::access::AdminReason;
use super::session::SessionData;
use crate::state::AppState;
use crate::store::User;
use crate::web::error::AppError;

/// The session of the request's cookie, as the session layer found it (`None`: no cookie, or
/// one that names no live session).
#[derive(Clone)]
pub struct SessionLookup(pub Option<(String, SessionData)>);

/// The request carried a session cookie that names no live session (signed out elsewhere,
/// revoked, expired).
#[derive(Clone, Copy)]
pub struct SessionEnded;

pub use crate::web::principal::SessionStoreDown;

#[derive(Clone)]
pub struct CurrentUser {
    pub user: User,
    pub session: SessionData,
    pub session_id: String,
    /// This request's client address; the session keeps the one it was signed in from.
    pub client_ip: String,
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        if let Some(current) = parts.extensions.get::<CurrentUser>() {
            return Ok(current.clone());
        }
        // The guard puts the user here on every protected route; reaching this on a route
        // the table marks public means the handler wants a user the table does not require.
        match <CurrentUser as OptionalFromRequestParts<AppState>>::from_request_parts(parts, state)
            .await?
        {
            Some(current) => Ok(current),
            None => Err(AppError::Forbidden("Sign in first.".into())),
        }
    }
}

/// On a public page: the user when signed in. Storage trouble is an error; simply not being
/// signed in is not.
impl OptionalFromRequestParts<AppState> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, AppError> {
        if let Some(current) = parts.extensions.get::<CurrentUser>() {
            return Ok(Some(current.clone()));
        }
        if let Some(SessionStoreDown(e)) = parts.extensions.get::<SessionStoreDown>() {
            return Err(AppError::Unavailable(e.clone()));
        }
        let Some(SessionLookup(Some((id, session)))) = parts.extensions.get::<SessionLookup>()
        else {
            return Ok(None);
        };
        let user = state.user(session.user_id).await?;
        Ok(user.map(|user| CurrentUser {
            user,
            session: session.clone(),
            session_id: id.clone(),
            client_ip: request_ip(parts),
        }))
    }
}

impl CurrentUser {
    /// Leaves `text` for the next page this user sees (the one the form redirects to), in
    /// the session rather than a cookie, so no one else can put words on the page. A notice
    /// that cannot be kept is only logged: the change itself is done.
    pub async fn flash(&self, state: &AppState, text: String) {
        self.keep_flash(state, Some(text)).await;
    }

    /// The notice the last change left, taken so it shows once.
    pub async fn take_flash(&self, state: &AppState) -> Option<String> {
        let text = self.session.flash.clone()?;
        self.keep_flash(state, None).await;
        Some(text)
    }

    async fn keep_flash(&self, state: &AppState, flash: Option<String>) {
        let session = SessionData {
            flash,
            ..self.session.clone()
        };
        if let Err(e) = state.auth.sessions.touch(&self.session_id, &session).await {
            tracing::warn!(error = %e, "the one-time notice could not be kept or cleared");
        }
    }
}

/// An administrator. The guard decides admin routes before their handlers run; taking an
/// `AdminUser` in a handler the table does not mark admin still checks (defence in depth).
pub struct AdminUser {
    pub current: CurrentUser,
    pub reason: AdminReason,
}

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let current =
            <CurrentUser as FromRequestParts<AppState>>::from_request_parts(parts, state).await?;
        let reason = match parts.extensions.get::<AdminReason>() {
            Some(reason) => reason.clone(),
            None => state.admin_reason(&current.user).await?,
        };
        if !reason.is_admin() {
            return Err(not_admin(&current.user, parts.uri.path()));
        }
        Ok(AdminUser { current, reason })
    }
}

/// The client address the tag layer worked out for this request.
pub(super) fn request_ip(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ClientIp>()
        .map_or_else(|| "unknown".to_string(), |c| c.0.clone())
}

pub fn not_admin(user: &User, path: &str) -> AppError {
    tracing::warn!(user = ?user.email, path, "admin page refused");
    AppError::Forbidden("This page is for administrators.".into())
}
