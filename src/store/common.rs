//! Queries whose SQL both backends accept, and the `Store` impl over them, written once.
//! A macro rather than generic functions over `sqlx::Database`: the trait bounds those need
//! (per type, per lifetime) would outweigh the queries themselves.
//!
//! `ping`, the start page's counts and the sample data are called through functions over
//! `Db` in `store/mod.rs`; `impl_store!` implements the small `Store` trait (migrations,
//! `db()`, `close`). New queries go in their feature, written once over `Db` with `on_db!`.

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
