//! Roles and where users get them: a role is a name and the data sets it grants (for now
//! repository name patterns); admins assign roles to users (on the admin pages, to an
//! account), to email addresses (from the command line, before that person may have signed
//! in) or map IdP groups to them. The queries are this feature's own, each written once for
//! both databases.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::types::Json;

use crate::store::{Db, StoreError};
use crate::{execute, on_db};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub repo_patterns: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupMapping {
    pub group_name: String,
    pub role: Role,
}

/// A `roles` row; the data sets are JSON (`{"repos": [...]}`) so new kinds can join them.
#[derive(sqlx::FromRow)]
struct RoleRow {
    id: i64,
    name: String,
    description: String,
    data_sets: Json<Value>,
}

impl From<RoleRow> for Role {
    fn from(r: RoleRow) -> Self {
        let repo_patterns = r.data_sets.0["repos"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        Role {
            id: r.id,
            name: r.name,
            description: r.description,
            repo_patterns,
        }
    }
}

pub async fn all(db: &Db) -> Result<Vec<Role>, StoreError> {
    const SQL: &str = "SELECT id, name, description, data_sets FROM roles ORDER BY name";
    let rows: Vec<RoleRow> = on_db!(db, |pool| sqlx::query_as(SQL).fetch_all(pool).await)?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// `None` when a role of that name exists already.
pub async fn create(
    db: &Db,
    name: &str,
    description: &str,
    repo_patterns: &[String],
) -> Result<Option<Role>, StoreError> {
    const SQL: &str = "INSERT INTO roles (name, description, data_sets) VALUES ($1, $2, $3) \
                       ON CONFLICT (name) DO NOTHING RETURNING id, name, description, data_sets";
    let data_sets = Json(json!({ "repos": repo_patterns }));
    let row: Option<RoleRow> = on_db!(db, |pool| sqlx::query_as(SQL)
        .bind(name)
        .bind(description)
        .bind(&data_sets)
        .fetch_optional(pool)
        .await)?;
    Ok(row.map(Into::into))
}

pub async fn assigned(db: &Db, user_id: i64) -> Result<Vec<Role>, StoreError> {
    const SQL: &str = "SELECT r.id, r.name, r.description, r.data_sets FROM roles r \
                       JOIN user_roles ur ON ur.role_id = r.id WHERE ur.user_id = $1 \
                       ORDER BY r.name";
    let rows: Vec<RoleRow> = on_db!(db, |pool| sqlx::query_as(SQL)
        .bind(user_id)
        .fetch_all(pool)
        .await)?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// The roles assigned to `email`, which must already be the exact ASCII lower case of an
/// address the provider vouched for: the caller decides whether the address counts.
pub async fn assigned_to_email(db: &Db, email: &str) -> Result<Vec<Role>, StoreError> {
    const SQL: &str = "SELECT r.id, r.name, r.description, r.data_sets FROM roles r \
                       JOIN role_email_assignments a ON a.role_id = r.id WHERE a.email = $1 \
                       ORDER BY r.name";
    let rows: Vec<RoleRow> = on_db!(db, |pool| sqlx::query_as(SQL)
        .bind(email)
        .fetch_all(pool)
        .await)?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// `false` when the user had the role already.
pub async fn assign(db: &Db, user_id: i64, role_id: i64, by: &str) -> Result<bool, StoreError> {
    const SQL: &str = "INSERT INTO user_roles (user_id, role_id, granted_by, granted_at) \
                       VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";
    let now = Utc::now();
    let done = execute!(db, SQL, user_id, role_id, by, now)?;
    Ok(done > 0)
}

/// `false` when the user did not have the role.
pub async fn remove(db: &Db, user_id: i64, role_id: i64) -> Result<bool, StoreError> {
    const SQL: &str = "DELETE FROM user_roles WHERE user_id = $1 AND role_id = $2";
    let done = execute!(db, SQL, user_id, role_id)?;
    Ok(done > 0)
}

pub async fn group_mappings(db: &Db) -> Result<Vec<GroupMapping>, StoreError> {
    const SQL: &str = "SELECT g.group_name, r.id, r.name, r.description, r.data_sets \
                       FROM group_role_mappings g JOIN roles r ON r.id = g.role_id \
                       ORDER BY g.group_name, r.name";
    let rows: Vec<(String, i64, String, String, Json<Value>)> =
        on_db!(db, |pool| sqlx::query_as(SQL).fetch_all(pool).await)?;
    Ok(rows
        .into_iter()
        .map(
            |(group_name, id, name, description, data_sets)| GroupMapping {
                group_name,
                role: RoleRow {
                    id,
                    name,
                    description,
                    data_sets,
                }
                .into(),
            },
        )
        .collect())
}

/// `false` when the group was mapped to the role already.
pub async fn map_group(db: &Db, group: &str, role_id: i64, by: &str) -> Result<bool, StoreError> {
    const SQL: &str = "INSERT INTO group_role_mappings (group_name, role_id, created_by, \
                       created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";
    let now = Utc::now();
    let done = execute!(db, SQL, group, role_id, by, now)?;
    Ok(done > 0)
}

/// `false` when there was no such mapping.
pub async fn unmap_group(db: &Db, group: &str, role_id: i64) -> Result<bool, StoreError> {
    const SQL: &str = "DELETE FROM group_role_mappings WHERE group_name = $1 AND role_id = $2";
    let done = execute!(db, SQL, group, role_id)?;
    Ok(done > 0)
}
