//! Queries whose SQL both backends accept, and the `Store` impl over them, written once.
//! A macro rather than generic functions over `sqlx::Database`: the trait bounds those need
//! (per type, per lifetime) would outweigh the queries themselves.
//!
//! `ping`, the start page's counts and the sample data are called through functions over
//! `Db` in `store/mod.rs`; `impl_store!` implements the small `Store` trait (migrations,
//! `db()`, `close`). New queries go in their feature, written once over `Db` with `on_db!`.

macro_rules! shared_queries {
    ($db:ty) => {
        use chrono::{NaiveTime, Utc};

        use crate::sample::SampleData;
        use crate::store::{DirectorySummary, StoreError};

        /// Rows per multi-row `INSERT`: 6 values each stays far below both databases' limit
        /// on bound parameters.
        const ROWS_PER_INSERT: usize = 400;

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
                let departed = p.departed_days_ago.map(|d| now - chrono::Duration::days(d));
                sqlx::query(
                    "INSERT INTO github_identities \
                       (email, name, github_username, last_pull_date, departed_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&p.email)
                .bind(&p.name)
                .bind(&p.github_username)
                // Someone who left last pulled before leaving.
                .bind(departed.unwrap_or(now))
                .bind(departed)
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
                let removed_at = repo.removed_on.map(|d| d.and_time(NaiveTime::MIN).and_utc());
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO repos \
                       (name, description, visibility, archived, github_id, stars, forks, \
                        removed_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                )
                .bind(&repo.name)
                .bind(&repo.description)
                .bind(repo.visibility)
                .bind(repo.archived)
                .bind(repo.github_id)
                .bind(repo.stars)
                .bind(repo.forks)
                .bind(removed_at)
                .fetch_one(&mut *tx)
                .await?;
                // More than a year of days per repository: many rows per statement keep a
                // first dev start fast.
                for chunk in repo.traffic.chunks(ROWS_PER_INSERT) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO repo_traffic \
                           (repo_id, day, views, unique_views, clones, unique_clones) ",
                    );
                    q.push_values(chunk, |mut row, d| {
                        row.push_bind(id)
                            .push_bind(d.day)
                            .push_bind(d.views)
                            .push_bind(d.unique_views)
                            .push_bind(d.clones)
                            .push_bind(d.unique_clones);
                    });
                    q.build().execute(&mut *tx).await?;
                }
                for chunk in repo.star_history.chunks(ROWS_PER_INSERT) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO repo_stars (repo_id, day, stars, forks) ",
                    );
                    q.push_values(chunk, |mut row, d| {
                        row.push_bind(id)
                            .push_bind(d.day)
                            .push_bind(d.stars)
                            .push_bind(d.forks);
                    });
                    q.build().execute(&mut *tx).await?;
                }
                for r in &repo.referrers {
                    sqlx::query(
                        "INSERT INTO repo_referrers (repo_id, day, referrer, count, uniques) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(id)
                    .bind(r.day)
                    .bind(&r.key)
                    .bind(r.count)
                    .bind(r.uniques)
                    .execute(&mut *tx)
                    .await?;
                }
                for p in &repo.paths {
                    sqlx::query(
                        "INSERT INTO repo_paths (repo_id, day, path, title, count, uniques) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(id)
                    .bind(p.day)
                    .bind(&p.key)
                    .bind(&p.title)
                    .bind(p.count)
                    .bind(p.uniques)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            for role in &data.roles {
                // A role of that name made before (by `gatehouse roles`, say) is someone's
                // own: it is left as it is, and the demo assignment goes with it.
                let role_id: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO roles (name, description, data_sets) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO NOTHING RETURNING id",
                )
                .bind(role.name)
                .bind(role.description)
                .bind(sqlx::types::Json(serde_json::json!({ "repos": role.repo_patterns })))
                .fetch_optional(&mut *tx)
                .await?;
                let Some(role_id) = role_id else { continue };
                for email in role.emails {
                    sqlx::query(
                        "INSERT INTO role_email_assignments (email, role_id, granted_by) \
                         VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    )
                    .bind(email)
                    .bind(role_id)
                    .bind("dev mode sample data")
                    .execute(&mut *tx)
                    .await?;
                }
            }
            let [today, current, previous] =
                crate::repos::store::summary_window(chrono::Utc::now().date_naive());
            sqlx::query(crate::repos::store::REFRESH_SUMMARIES)
                .bind(today)
                .bind(current)
                .bind(previous)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
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
    // PostgreSQL's trigram index (pg_trgm) serves the LIKE itself.
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

            async fn migrate(&self) -> Result<MigrationStatus, StoreError> {
                MIGRATOR.run(&self.pool).await?;
                self.migration_status().await
            }

            async fn migration_status(&self) -> Result<MigrationStatus, StoreError> {
                let applied = shared::applied_migrations(&self.pool).await?;
                Ok(status_from(&MIGRATOR, applied))
            }

            fn db(&self) -> $crate::store::Db {
                self.pool.clone().into()
            }

            async fn close(&self) {
                self.pool.close().await;
            }
        }
    };
}
pub(crate) use impl_store;
