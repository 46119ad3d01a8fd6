//! The profile page: who the provider says you are, why you are (or are not) an admin, your
//! roles, and the directory's facts about you (GitHub usernames, laptops, lists).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;

use crate::auth::access::HeldRole;
use crate::auth::extract::CurrentUser;
use crate::directory::{PersonFacts, normalize_email};
use crate::state::AppState;
use crate::store::User;
use crate::web::error::AppError;
use crate::web::pages::Layout;

#[derive(Template, WebTemplate)]
#[template(path = "profile.html")]
pub struct ProfilePage {
    layout: Layout,
    user: User,
    csrf: String,
    admin: bool,
    roles: Vec<HeldRole>,
    /// `None` when the provider did not verify the email: facts are keyed by it.
    facts: Option<PersonFacts>,
    github_web: String,
}

/// The directory facts are looked up by the email the provider verified, never by anything
/// the browser sends.
pub async fn show_profile(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<ProfilePage, AppError> {
    let store = state.store.as_ref();
    let rules = state.access_rules(state.versions().await?).await?;
    let reason = rules.admin_reason(&state.auth.admin_groups, &current.user);
    let roles = rules.effective_roles(&current.user);
    let facts = match verified_email(&current.user) {
        Some(email) => Some(crate::directory::store::person_facts(&store.db(), &email).await?),
        None => None,
    };
    Ok(ProfilePage {
        layout: Layout::new("Your profile — Gatehouse"),
        csrf: current.session.csrf,
        user: current.user,
        admin: reason.is_admin(),
        roles,
        facts,
        github_web: state.config.github_web.clone(),
    })
}

fn verified_email(user: &User) -> Option<String> {
    user.email
        .as_deref()
        .filter(|_| user.email_verified)
        .map(normalize_email)
}
