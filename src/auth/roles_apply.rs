//! Roles as code, in the database: reads the stored roles, plans a request against them and
//! writes the changes with one audit row each, all in one transaction (a dry run plans the
//! same and rolls back). Written once in the macro below, expanded for both backends: the
//! transaction needs a typed connection, which `on_db!`'s single expression would make hard
//! to read.

use super::roles_file::{Change, Request, StoredRole};
use crate::per_backend;
use crate::store::{Db, StoreError};

/// The stored roles, with whether each assigned address has signed in yet.
#[derive(Debug, Clone)]
pub struct Listing {
    pub role: StoredRole,
    /// Assigned addresses no verified user has yet.
    pub pending: Vec<String>,
}

/// What a request did (or, in a dry run, would do).
#[derive(Debug, Clone)]
pub enum Outcome {
    Changed(Vec<Change>),
    Refused(String),
}

macro_rules! roles_queries {
    () => {
        use std::collections::BTreeSet;

        use chrono::Utc;
        use serde_json::{Value, json};
        use sqlx::types::Json;

        use crate::auth::roles_file::{Account, Change, Request, StoredRole, plan};
        use crate::store::StoreError;

        use super::{Listing, Outcome};

        async fn load(conn: &mut Conn) -> Result<Vec<(i64, StoredRole)>, StoreError> {
            let roles: Vec<(i64, String, Json<Value>)> =
                sqlx::query_as("SELECT id, name, data_sets FROM roles ORDER BY name")
                    .fetch_all(&mut *conn)
                    .await?;
            let emails: Vec<(i64, String)> = sqlx::query_as(
                "SELECT role_id, email FROM role_email_assignments ORDER BY email",
            )
            .fetch_all(&mut *conn)
            .await?;
            let groups: Vec<(i64, String)> = sqlx::query_as(
                "SELECT role_id, group_name FROM group_role_mappings ORDER BY group_name",
            )
            .fetch_all(&mut *conn)
            .await?;
            let accounts: Vec<(i64, i64, Option<String>, bool)> = sqlx::query_as(
                "SELECT ur.role_id, u.id, u.email, u.email_verified FROM user_roles ur \
                 JOIN users u ON u.id = ur.user_id ORDER BY u.id",
            )
            .fetch_all(&mut *conn)
            .await?;
            Ok(roles
                .into_iter()
                .map(|(id, name, data_sets)| {
                    let repos = data_sets.0["repos"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| v.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default();
                    let of = |rows: &[(i64, String)]| -> Vec<String> {
                        rows.iter()
                            .filter(|(r, _)| *r == id)
                            .map(|(_, v)| v.clone())
                            .collect()
                    };
                    let role = StoredRole {
                        name,
                        repos,
                        users: of(&emails),
                        groups: of(&groups),
                        accounts: accounts
                            .iter()
                            .filter(|a| a.0 == id)
                            .map(|(_, user_id, email, verified)| Account {
                                user_id: *user_id,
                                email: email.clone(),
                                trusted_email: email
                                    .as_deref()
                                    .filter(|_| *verified)
                                    .map(str::to_ascii_lowercase),
                            })
                            .collect(),
                    };
                    (id, role)
                })
                .collect())
        }

        pub async fn list(pool: &Pool) -> Result<Vec<Listing>, StoreError> {
            let mut conn = pool.acquire().await?;
            let roles = load(&mut conn).await?;
            // Narrowed in SQL, compared exactly here: `lower()` is not ASCII-only everywhere.
            let emails: Vec<String> = sqlx::query_scalar(
                "SELECT email FROM users WHERE email_verified AND email IS NOT NULL \
                 AND lower(email) IN (SELECT email FROM role_email_assignments)",
            )
            .fetch_all(&mut *conn)
            .await?;
            let known: BTreeSet<String> = emails.iter().map(|e| e.to_ascii_lowercase()).collect();
            Ok(roles
                .into_iter()
                .map(|(_, role)| Listing {
                    pending: role
                        .users
                        .iter()
                        .filter(|e| !known.contains(*e))
                        .cloned()
                        .collect(),
                    role,
                })
                .collect())
        }

        pub async fn run(
            pool: &Pool,
            request: &Request,
            actor: &str,
            dry_run: bool,
        ) -> Result<Outcome, StoreError> {
            let mut tx = pool.begin().await?;
            let stored = load(&mut *tx).await?;
            let roles: Vec<StoredRole> = stored.into_iter().map(|(_, r)| r).collect();
            let changes = match plan(request, &roles) {
                Ok(changes) => changes,
                Err(reason) => {
                    tx.rollback().await?;
                    return Ok(Outcome::Refused(reason));
                }
            };
            if dry_run || changes.is_empty() {
                tx.rollback().await?;
                return Ok(Outcome::Changed(changes));
            }
            for change in &changes {
                write(&mut *tx, change, actor).await?;
            }
            tx.commit().await?;
            Ok(Outcome::Changed(changes))
        }

        async fn write(conn: &mut Conn, change: &Change, actor: &str) -> Result<(), StoreError> {
            let now = Utc::now();
            let (kind, details) = match change {
                Change::Create { role, repos } => {
                    sqlx::query(
                        "INSERT INTO roles (name, description, data_sets) VALUES ($1, '', $2)",
                    )
                    .bind(role)
                    .bind(Json(json!({ "repos": repos })))
                    .execute(&mut *conn)
                    .await?;
                    ("role_created", json!({ "role": role, "repos": repos }))
                }
                Change::Update { role, from, to } => {
                    // Other kinds of data set may join the repositories; keep them.
                    let Json(mut data_sets): Json<Value> =
                        sqlx::query_scalar("SELECT data_sets FROM roles WHERE name = $1")
                            .bind(role)
                            .fetch_one(&mut *conn)
                            .await?;
                    if !data_sets.is_object() {
                        data_sets = json!({});
                    }
                    data_sets["repos"] = json!(to);
                    sqlx::query("UPDATE roles SET data_sets = $2 WHERE name = $1")
                        .bind(role)
                        .bind(Json(&data_sets))
                        .execute(&mut *conn)
                        .await?;
                    (
                        "role_updated",
                        json!({ "role": role, "from": from, "repos": to }),
                    )
                }
                Change::Delete { role } => {
                    // Its assignments and group mappings go with it (ON DELETE CASCADE).
                    sqlx::query("DELETE FROM roles WHERE name = $1")
                        .bind(role)
                        .execute(&mut *conn)
                        .await?;
                    ("role_deleted", json!({ "role": role }))
                }
                Change::Assign { role, email } => {
                    sqlx::query(
                        "INSERT INTO role_email_assignments (email, role_id, granted_by, \
                         granted_at) SELECT $1, id, $2, $3 FROM roles WHERE name = $4",
                    )
                    .bind(email)
                    .bind(actor)
                    .bind(now)
                    .bind(role)
                    .execute(&mut *conn)
                    .await?;
                    (
                        "role_change",
                        json!({ "action": "add", "role": role, "email": email }),
                    )
                }
                Change::Unassign { role, email } => {
                    sqlx::query(
                        "DELETE FROM role_email_assignments WHERE email = $1 \
                         AND role_id = (SELECT id FROM roles WHERE name = $2)",
                    )
                    .bind(email)
                    .bind(role)
                    .execute(&mut *conn)
                    .await?;
                    (
                        "role_change",
                        json!({ "action": "remove", "role": role, "email": email }),
                    )
                }
                Change::UnassignAccount { role, account } => {
                    sqlx::query(
                        "DELETE FROM user_roles WHERE user_id = $1 \
                         AND role_id = (SELECT id FROM roles WHERE name = $2)",
                    )
                    .bind(account.user_id)
                    .bind(role)
                    .execute(&mut *conn)
                    .await?;
                    (
                        "role_change",
                        json!({ "action": "remove", "role": role,
                                "user_id": account.user_id, "user": account.email }),
                    )
                }
                Change::Map { role, group } => {
                    sqlx::query(
                        "INSERT INTO group_role_mappings (group_name, role_id, created_by, \
                         created_at) SELECT $1, id, $2, $3 FROM roles WHERE name = $4",
                    )
                    .bind(group)
                    .bind(actor)
                    .bind(now)
                    .bind(role)
                    .execute(&mut *conn)
                    .await?;
                    (
                        "group_mapping",
                        json!({ "action": "map", "group": group, "role": role }),
                    )
                }
                Change::Unmap { role, group } => {
                    sqlx::query(
                        "DELETE FROM group_role_mappings WHERE group_name = $1 \
                         AND role_id = (SELECT id FROM roles WHERE name = $2)",
                    )
                    .bind(group)
                    .bind(role)
                    .execute(&mut *conn)
                    .await?;
                    (
                        "group_mapping",
                        json!({ "action": "unmap", "group": group, "role": role }),
                    )
                }
            };
            let mut details = details;
            details["via"] = json!("cli");
            sqlx::query(
                "INSERT INTO audit_events (occurred_at, kind, outcome, actor, details) \
                 VALUES ($1, $2, 'success', $3, $4)",
            )
            .bind(now)
            .bind(kind)
            .bind(actor)
            .bind(Json(&details))
            .execute(&mut *conn)
            .await?;
            Ok(())
        }
    };
}

mod pg {
    type Pool = sqlx::PgPool;
    type Conn = sqlx::PgConnection;
    roles_queries!();
}

mod sqlite {
    type Pool = sqlx::SqlitePool;
    type Conn = sqlx::SqliteConnection;
    roles_queries!();
}

pub async fn list(db: &Db) -> Result<Vec<Listing>, StoreError> {
    per_backend!(db, pg, sqlite, list())
}

/// Plans `request` against the stored roles and, unless `dry_run`, writes it, all in one
/// transaction.
pub async fn run(
    db: &Db,
    request: &Request,
    actor: &str,
    dry_run: bool,
) -> Result<Outcome, StoreError> {
    per_backend!(db, pg, sqlite, run(request, actor, dry_run))
}
