//! Group → role mappings and roles themselves: which IdP groups give which roles.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use crate::account::sessions::when;
use crate::auth::extract::AdminUser;
use crate::auth::grants::{self, AdminGrant};
use crate::auth::roles::{self, GroupMapping, Role};
use crate::state::AppState;
use crate::store::User;
use crate::web::error::AppError;
use crate::web::extract::Form;
use crate::web::pages::Layout;

#[derive(Template, WebTemplate)]
#[template(path = "admin_groups.html")]
pub(super) struct GroupsPage {
    layout: Layout,
    user: User,
    csrf: String,
    mappings: Vec<GroupMapping>,
    roles: Vec<Role>,
    admin_groups: Vec<String>,
    grants: Vec<(AdminGrant, String)>,
}

pub(super) async fn show_groups(
    State(state): State<AppState>,
    admin: AdminUser,
) -> Result<GroupsPage, AppError> {
    let grants = grants::list(&state.store.db())
        .await?
        .into_iter()
        .map(|g| {
            let at = when(g.granted_at.timestamp());
            (g, at)
        })
        .collect();
    Ok(GroupsPage {
        layout: Layout::new("Groups and roles — Gatehouse"),
        csrf: admin.current.session.csrf.clone(),
        user: admin.current.user,
        mappings: roles::group_mappings(&state.store.db()).await?,
        roles: roles::all(&state.store.db()).await?,
        admin_groups: state.auth.admin_groups.clone(),
        grants,
    })
}

#[derive(Deserialize)]
pub(super) struct GroupChange {
    action: String,
    group: Option<String>,
    role_id: Option<i64>,
    name: Option<String>,
    description: Option<String>,
    repos: Option<String>,
}

pub(super) async fn change_groups(
    State(state): State<AppState>,
    admin: AdminUser,
    Form(form): Form<GroupChange>,
) -> Result<Response, AppError> {
    let text = |v: &Option<String>, what: &str| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.len() <= 200)
            .map(str::to_string)
            .ok_or_else(|| {
                AppError::BadRequest(format!("{what} is required (at most 200 characters)."))
            })
    };
    match form.action.as_str() {
        "create_role" => {
            let name = text(&form.name, "A role name")?;
            let repos: Vec<String> = form
                .repos
                .unwrap_or_default()
                .split([',', '\n', ' '])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            // A pattern that could never match, or one that means something else in SQL,
            // is refused here rather than silently granting nothing.
            for pattern in &repos {
                crate::repos::RepoPattern::parse(pattern)
                    .map_err(|e| AppError::BadRequest(format!("Repository pattern {e}.")))?;
            }
            let description = form.description.unwrap_or_default();
            let role = roles::create(&state.store.db(), &name, description.trim(), &repos)
                .await?
                .ok_or_else(|| {
                    AppError::BadRequest(format!("A role named {name} exists already."))
                })?;
            admin
                .audit(
                    &state,
                    "role_created",
                    json!({ "role": role.name, "repos": role.repo_patterns }),
                )
                .await;
        }
        action @ ("map" | "unmap") => {
            let group = text(&form.group, "A group name")?;
            let role_id = form
                .role_id
                .ok_or_else(|| AppError::BadRequest("A role is required.".into()))?;
            let role = roles::all(&state.store.db())
                .await?
                .into_iter()
                .find(|r| r.id == role_id)
                .ok_or_else(|| AppError::BadRequest("No such role.".into()))?;
            let changed = if action == "map" {
                roles::map_group(&state.store.db(), &group, role.id, &admin.name()).await?
            } else {
                roles::unmap_group(&state.store.db(), &group, role.id).await?
            };
            if changed {
                admin
                    .audit(
                        &state,
                        "group_mapping",
                        json!({ "action": action, "group": group, "role": role.name }),
                    )
                    .await;
            }
        }
        _ => return Err(AppError::BadRequest("Unknown action.".into())),
    }
    Ok(Redirect::to("/admin/groups").into_response())
}
