//! Group → role mappings and roles themselves: which IdP groups give which roles.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
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
    /// A refused form's answer, shown beside that form, with what was typed kept.
    refused: Option<Refused>,
}

/// Which form was refused, why, and what was typed in it.
pub(super) struct Refused {
    form: Which,
    message: String,
    entered: GroupChange,
}

#[derive(PartialEq)]
enum Which {
    Mapping,
    Role,
}

impl GroupsPage {
    /// What the form `which` showed when it was refused: the typed value of `field`, else
    /// empty.
    fn entered(&self, which: Which, field: &str) -> &str {
        let Some(r) = self.refused.as_ref().filter(|r| r.form == which) else {
            return "";
        };
        let value = match field {
            "group" => &r.entered.group,
            "name" => &r.entered.name,
            "description" => &r.entered.description,
            _ => &r.entered.repos,
        };
        value.as_deref().unwrap_or("")
    }

    fn error_for(&self, which: Which) -> Option<&str> {
        self.refused
            .as_ref()
            .filter(|r| r.form == which)
            .map(|r| r.message.as_str())
    }

    fn role_entered(&self, field: &str) -> &str {
        self.entered(Which::Role, field)
    }

    fn group_entered(&self) -> &str {
        self.entered(Which::Mapping, "group")
    }

    fn role_error(&self) -> Option<&str> {
        self.error_for(Which::Role)
    }

    fn mapping_error(&self) -> Option<&str> {
        self.error_for(Which::Mapping)
    }

    /// The role the refused mapping form had chosen.
    fn chosen_role(&self, id: &i64) -> bool {
        self.refused
            .as_ref()
            .is_some_and(|r| r.form == Which::Mapping && r.entered.role_id == Some(*id))
    }
}

async fn groups_page(
    state: &AppState,
    admin: &AdminUser,
    refused: Option<Refused>,
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
        layout: admin.layout(state, "Groups and roles — Gatehouse").await,
        csrf: admin.current.session.csrf.clone(),
        user: admin.current.user.clone(),
        mappings: roles::group_mappings(&state.store.db()).await?,
        roles: roles::all(&state.store.db()).await?,
        admin_groups: state.auth.admin_groups.clone(),
        grants,
        refused,
    })
}

pub(super) async fn show_groups(
    State(state): State<AppState>,
    admin: AdminUser,
) -> Result<GroupsPage, AppError> {
    groups_page(&state, &admin, None).await
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

/// A form's answer: done (with the notice for the next page) or refused (with why). The
/// outer `Result` is for faults (the database), which are not the form's.
type Outcome = Result<Result<String, String>, AppError>;

/// A change to roles or mappings. Done: back to the page with a notice. Refused: the page
/// again, 400, the reason beside the form and what was typed still in it.
pub(super) async fn change_groups(
    State(state): State<AppState>,
    admin: AdminUser,
    Form(form): Form<GroupChange>,
) -> Result<Response, AppError> {
    let (which, outcome) = match form.action.as_str() {
        "create_role" => (Which::Role, create_role(&state, &admin, &form).await),
        "map" | "unmap" => (Which::Mapping, change_mapping(&state, &admin, &form).await),
        _ => return Err(AppError::BadRequest("Unknown action.".into())),
    };
    match outcome? {
        Ok(notice) => {
            admin.current.flash(&state, notice).await;
            Ok(Redirect::to("/admin/groups").into_response())
        }
        Err(message) => {
            let refused = Refused {
                form: which,
                message,
                entered: form,
            };
            let page = groups_page(&state, &admin, Some(refused)).await?;
            Ok((StatusCode::BAD_REQUEST, page).into_response())
        }
    }
}

/// A required text field, trimmed: `Err` says what is wrong with it.
fn required(value: &Option<String>, what: &str) -> Result<String, String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.len() <= 200)
        .map(str::to_string)
        .ok_or_else(|| format!("{what} is required (at most 200 characters)."))
}

async fn create_role(state: &AppState, admin: &AdminUser, form: &GroupChange) -> Outcome {
    let name = match required(&form.name, "A role name") {
        Ok(name) => name,
        Err(message) => return Ok(Err(message)),
    };
    let repos: Vec<String> = form
        .repos
        .as_deref()
        .unwrap_or_default()
        .split([',', '\n', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    // A pattern that could never match, or one that means something else in SQL, is refused
    // here rather than silently granting nothing.
    for pattern in &repos {
        if let Err(e) = crate::repos::RepoPattern::parse(pattern) {
            return Ok(Err(format!("Repository pattern {e}.")));
        }
    }
    let description = form.description.as_deref().unwrap_or_default().trim();
    let Some(role) = roles::create(&state.store.db(), &name, description, &repos).await? else {
        return Ok(Err(format!(
            "A role named “{name}” exists already: choose another name."
        )));
    };
    admin
        .audit(
            state,
            "role_created",
            json!({ "role": role.name, "repos": role.repo_patterns }),
        )
        .await;
    Ok(Ok(format!(
        "Role “{}” created. Map a group to it, or assign it to people on their user page.",
        role.name
    )))
}

async fn change_mapping(state: &AppState, admin: &AdminUser, form: &GroupChange) -> Outcome {
    let group = match required(&form.group, "A group name") {
        Ok(group) => group,
        Err(message) => return Ok(Err(message)),
    };
    let Some(role_id) = form.role_id else {
        return Ok(Err("Choose a role.".into()));
    };
    let Some(role) = roles::all(&state.store.db())
        .await?
        .into_iter()
        .find(|r| r.id == role_id)
    else {
        return Ok(Err("That role no longer exists.".into()));
    };
    let mapping = form.action == "map";
    let changed = if mapping {
        roles::map_group(&state.store.db(), &group, role.id, &admin.name()).await?
    } else {
        roles::unmap_group(&state.store.db(), &group, role.id).await?
    };
    if changed {
        admin
            .audit(
                state,
                "group_mapping",
                json!({ "action": form.action, "group": group, "role": role.name }),
            )
            .await;
    }
    let role = &role.name;
    Ok(Ok(match (mapping, changed) {
        (true, true) => {
            format!("Members of “{group}” hold the role “{role}” from their next sign-in.")
        }
        (true, false) => format!("“{group}” already gives the role “{role}”: nothing changed."),
        (false, true) => {
            format!("“{group}” no longer gives the role “{role}” (from its members' next sign-in).")
        }
        (false, false) => format!("“{group}” did not give the role “{role}”: nothing changed."),
    }))
}
