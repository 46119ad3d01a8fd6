//! Queries whose SQL both backends accept, and the `Store` impl over them, written once.
//! A macro rather than generic functions over `sqlx::Database`: the trait bounds those need
//! (per type, per lifetime) would outweigh the queries themselves.

macro_rules! shared_queries {
    ($db:ty) => {
        use chrono::Utc;

        use crate::sample::SampleData;
        use crate::store::{DirectorySummary, StoreError};

        type Pool = sqlx::Pool<$db>;

        pub async fn ping(pool: &Pool) -> Result<(), StoreError> {
            sqlx::query("SELECT 1").execute(pool).await?;
            Ok(())
        }

        pub async fn directory_summary(pool: &Pool) -> Result<DirectorySummary, StoreError> {
            let (people, laptops, lists, repos): (i64, i64, i64, i64) = sqlx::query_as(
                "SELECT \
                   (SELECT COUNT(*) FROM github_identities WHERE departed_at IS NULL), \
                   (SELECT COUNT(*) FROM assets), \
                   (SELECT COUNT(*) FROM distribution_lists), \
                   (SELECT COUNT(*) FROM repos)",
            )
            .fetch_one(pool)
            .await?;
            Ok(DirectorySummary {
                people,
                laptops,
                lists,
                repos,
            })
        }

        pub async fn load_sample_data(pool: &Pool, data: &SampleData) -> Result<bool, StoreError> {
            let mut tx = pool.begin().await?;
            // Checked inside the transaction so two instances starting together load it once
            // (PostgreSQL: the unique indexes make the loser's insert fail and roll back).
            let existing: i64 = sqlx::query_scalar(
                "SELECT (SELECT COUNT(*) FROM github_identities) + (SELECT COUNT(*) FROM assets) \
                   + (SELECT COUNT(*) FROM distribution_lists) + (SELECT COUNT(*) FROM repos)",
            )
            .fetch_one(&mut *tx)
            .await?;
            if existing > 0 {
                return Ok(false);
            }
            let now = Utc::now();
            for p in &data.people {
                sqlx::query(
                    "INSERT INTO github_identities (email, name, github_username, last_pull_date) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(&p.email)
                .bind(&p.name)
                .bind(&p.github_username)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            for l in &data.laptops {
                sqlx::query(
                    "INSERT INTO assets (serial, model, owner_email, assigned_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(&l.serial)
                .bind(&l.model)
                .bind(&l.owner_email)
                .bind(l.assigned_at)
                .execute(&mut *tx)
                .await?;
            }
            for list in &data.lists {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO distribution_lists (list_email, name, hidden) \
                     VALUES ($1, $2, $3) RETURNING id",
                )
                .bind(&list.list_email)
                .bind(&list.name)
                .bind(list.hidden)
                .fetch_one(&mut *tx)
                .await?;
                let members = list.members.iter().map(|m| (m, "member"));
                let owners = list.owners.iter().map(|o| (o, "owner"));
                for (email, role) in members.chain(owners) {
                    sqlx::query(
                        "INSERT INTO distribution_list_members (list_id, member_email, role) \
                         VALUES ($1, $2, $3)",
                    )
                    .bind(id)
                    .bind(email)
                    .bind(role)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            for repo in &data.repos {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO repos (name, description, visibility) VALUES ($1, $2, $3) \
                     RETURNING id",
                )
                .bind(&repo.name)
                .bind(&repo.description)
                .bind(repo.visibility)
                .fetch_one(&mut *tx)
                .await?;
                for d in &repo.traffic {
                    sqlx::query(
                        "INSERT INTO repo_traffic \
                           (repo_id, day, views, unique_views, clones, unique_clones) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(id)
                    .bind(d.day)
                    .bind(d.views)
                    .bind(d.unique_views)
                    .bind(d.clones)
                    .bind(d.unique_clones)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            tx.commit().await?;
            Ok(true)
        }

        #[derive(sqlx::FromRow)]
        struct UserRow {
            id: i64,
            issuer: String,
            subject: String,
            email: Option<String>,
            email_verified: bool,
            name: Option<String>,
            groups: sqlx::types::Json<Vec<String>>,
            is_admin: bool,
        }

        impl From<UserRow> for crate::store::User {
            fn from(r: UserRow) -> Self {
                crate::store::User {
                    id: r.id,
                    issuer: r.issuer,
                    subject: r.subject,
                    email: r.email,
                    email_verified: r.email_verified,
                    name: r.name,
                    groups: r.groups.0,
                    is_admin: r.is_admin,
                }
            }
        }

        const USER_COLUMNS: &str =
            "id, issuer, subject, email, email_verified, name, groups, is_admin";

        pub async fn upsert_user(
            pool: &Pool,
            login: &crate::store::UserLogin,
        ) -> Result<crate::store::User, StoreError> {
            let row: UserRow = sqlx::query_as(&format!(
                "INSERT INTO users \
                   (issuer, subject, email, email_verified, name, groups, is_admin, last_login_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (issuer, subject) DO UPDATE SET \
                   email = excluded.email, email_verified = excluded.email_verified, \
                   name = excluded.name, groups = excluded.groups, \
                   is_admin = excluded.is_admin, last_login_at = excluded.last_login_at \
                 RETURNING {USER_COLUMNS}"
            ))
            .bind(&login.issuer)
            .bind(&login.subject)
            .bind(&login.email)
            .bind(login.email_verified)
            .bind(&login.name)
            .bind(sqlx::types::Json(&login.groups))
            .bind(login.is_admin)
            .bind(Utc::now())
            .fetch_one(pool)
            .await?;
            Ok(row.into())
        }

        pub async fn user(pool: &Pool, id: i64) -> Result<Option<crate::store::User>, StoreError> {
            let row: Option<UserRow> =
                sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(pool)
                    .await?;
            Ok(row.map(Into::into))
        }

        pub async fn session_put(
            pool: &Pool,
            row: &crate::store::SessionRow,
        ) -> Result<(), StoreError> {
            let now = Utc::now();
            sqlx::query(
                "INSERT INTO sessions \
                   (id_hash, user_id, data, client_ip, user_agent, created_at, last_seen_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6, $7) \
                 ON CONFLICT (id_hash) DO UPDATE SET \
                   data = excluded.data, last_seen_at = excluded.last_seen_at, \
                   expires_at = excluded.expires_at",
            )
            .bind(&row.id_hash)
            .bind(row.user_id)
            .bind(sqlx::types::Json(&row.data))
            .bind(&row.client_ip)
            .bind(&row.user_agent)
            .bind(now)
            .bind(row.expires_at)
            .execute(pool)
            .await?;
            Ok(())
        }

        pub async fn session_get(
            pool: &Pool,
            id_hash: &str,
        ) -> Result<Option<serde_json::Value>, StoreError> {
            let data: Option<sqlx::types::Json<serde_json::Value>> = sqlx::query_scalar(
                "SELECT data FROM sessions WHERE id_hash = $1 AND expires_at > $2",
            )
            .bind(id_hash)
            .bind(Utc::now())
            .fetch_optional(pool)
            .await?;
            Ok(data.map(|d| d.0))
        }

        pub async fn session_take(
            pool: &Pool,
            id_hash: &str,
        ) -> Result<Option<serde_json::Value>, StoreError> {
            let row: Option<(sqlx::types::Json<serde_json::Value>, chrono::DateTime<Utc>)> =
                sqlx::query_as("DELETE FROM sessions WHERE id_hash = $1 RETURNING data, expires_at")
                    .bind(id_hash)
                    .fetch_optional(pool)
                    .await?;
            Ok(row.filter(|(_, expires)| *expires > Utc::now()).map(|(d, _)| d.0))
        }

        pub async fn session_delete(pool: &Pool, id_hash: &str) -> Result<(), StoreError> {
            sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
                .bind(id_hash)
                .execute(pool)
                .await?;
            Ok(())
        }

        pub async fn sessions_for_user(
            pool: &Pool,
            user_id: i64,
        ) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
            let rows: Vec<(String, sqlx::types::Json<serde_json::Value>)> = sqlx::query_as(
                "SELECT id_hash, data FROM sessions WHERE user_id = $1 AND expires_at > $2",
            )
            .bind(user_id)
            .bind(Utc::now())
            .fetch_all(pool)
            .await?;
            Ok(rows.into_iter().map(|(k, d)| (k, d.0)).collect())
        }

        pub async fn sessions_purge_expired(pool: &Pool) -> Result<u64, StoreError> {
            let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
                .bind(Utc::now())
                .execute(pool)
                .await?;
            Ok(done.rows_affected())
        }

        pub async fn record_audit(
            pool: &Pool,
            e: &crate::store::AuditEvent,
        ) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO audit_events \
                   (occurred_at, kind, outcome, actor_id, actor, client_ip, request_id, details) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(Utc::now())
            .bind(e.kind)
            .bind(e.outcome)
            .bind(e.actor_id)
            .bind(&e.actor)
            .bind(&e.client_ip)
            .bind(&e.request_id)
            .bind(sqlx::types::Json(&e.details))
            .execute(pool)
            .await?;
            Ok(())
        }

        pub async fn applied_migrations(pool: &Pool) -> Result<Vec<i64>, StoreError> {
            // Before the first migration the bookkeeping table does not exist: nothing applied.
            match sqlx::query_scalar::<_, i64>(
                "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version",
            )
            .fetch_all(pool)
            .await
            {
                Ok(v) => Ok(v),
                Err(sqlx::Error::Database(e)) if e.message().contains("_sqlx_migrations") => {
                    Ok(Vec::new())
                }
                Err(e) => Err(e.into()),
            }
        }
    };
}

pub mod pg {
    shared_queries!(sqlx::Postgres);
}

pub mod lite {
    shared_queries!(sqlx::Sqlite);
}

/// `impl Store` for a backend struct with a `pool` field, its `shared` module and `MIGRATOR`.
macro_rules! impl_store {
    ($store:ty, $backend:expr) => {
        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            fn backend(&self) -> $crate::config::Backend {
                $backend
            }

            async fn ping(&self) -> Result<(), StoreError> {
                shared::ping(&self.pool).await
            }

            async fn migrate(&self) -> Result<MigrationStatus, StoreError> {
                MIGRATOR.run(&self.pool).await?;
                self.migration_status().await
            }

            async fn migration_status(&self) -> Result<MigrationStatus, StoreError> {
                let applied = shared::applied_migrations(&self.pool).await?;
                Ok(status_from(&MIGRATOR, applied))
            }

            async fn directory_summary(&self) -> Result<DirectorySummary, StoreError> {
                shared::directory_summary(&self.pool).await
            }

            async fn load_sample_data(&self, data: &SampleData) -> Result<bool, StoreError> {
                shared::load_sample_data(&self.pool, data).await
            }

            async fn upsert_user(
                &self,
                login: &$crate::store::UserLogin,
            ) -> Result<$crate::store::User, StoreError> {
                shared::upsert_user(&self.pool, login).await
            }

            async fn user(&self, id: i64) -> Result<Option<$crate::store::User>, StoreError> {
                shared::user(&self.pool, id).await
            }

            async fn session_put(&self, row: &$crate::store::SessionRow) -> Result<(), StoreError> {
                shared::session_put(&self.pool, row).await
            }

            async fn session_get(
                &self,
                id_hash: &str,
            ) -> Result<Option<serde_json::Value>, StoreError> {
                shared::session_get(&self.pool, id_hash).await
            }

            async fn session_take(
                &self,
                id_hash: &str,
            ) -> Result<Option<serde_json::Value>, StoreError> {
                shared::session_take(&self.pool, id_hash).await
            }

            async fn session_delete(&self, id_hash: &str) -> Result<(), StoreError> {
                shared::session_delete(&self.pool, id_hash).await
            }

            async fn sessions_for_user(
                &self,
                user_id: i64,
            ) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
                shared::sessions_for_user(&self.pool, user_id).await
            }

            async fn sessions_purge_expired(&self) -> Result<u64, StoreError> {
                shared::sessions_purge_expired(&self.pool).await
            }

            async fn record_audit(
                &self,
                event: &$crate::store::AuditEvent,
            ) -> Result<(), StoreError> {
                shared::record_audit(&self.pool, event).await
            }

            async fn close(&self) {
                self.pool.close().await;
            }
        }
    };
}
pub(crate) use impl_store;
