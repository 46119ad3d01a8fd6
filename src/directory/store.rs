//! The directory's queries: every row (for the in-memory index that searches), a person's
//! facts, the feed snapshots. Each is written once, in the macro below, expanded for both
//! backends, and called through one function over `Db`.

use super::feeds::{AssetRow, ListSnapshot, SnapshotLimits, SnapshotOutcome};
use super::{Identity, PersonFacts};
use crate::per_backend;
use crate::store::{Db, StoreError};

macro_rules! directory_queries {
    ($db:ty) => {
        use crate::directory::feeds::{
            AssetRow, Feed, ListInfo, ListSnapshot, SnapshotLimits, SnapshotOutcome, plan_assets,
            plan_lists,
        };
        use crate::directory::{Identity, Laptop, ListMembership, PersonFacts};

        const IDENTITY_COLUMNS: &str =
            "id, name, email, github_username, last_pull_date, departed_at";

        /// Every row, departed ones too: what the in-memory index is built from.
        pub async fn all_identities(pool: &Pool) -> Result<Vec<Identity>, StoreError> {
            Ok(
                sqlx::query_as(&format!("SELECT {IDENTITY_COLUMNS} FROM github_identities"))
                    .fetch_all(pool)
                    .await?,
            )
        }

        pub async fn person_facts(pool: &Pool, email: &str) -> Result<PersonFacts, StoreError> {
            let github: Vec<Identity> = sqlx::query_as(&format!(
                "SELECT {IDENTITY_COLUMNS} FROM github_identities \
                 WHERE email = $1 AND departed_at IS NULL ORDER BY lower(github_username)"
            ))
            .bind(email)
            .fetch_all(pool)
            .await?;
            let laptops: Vec<Laptop> = sqlx::query_as(
                "SELECT serial, model, assigned_at FROM assets WHERE owner_email = $1 \
                 ORDER BY serial",
            )
            .bind(email)
            .fetch_all(pool)
            .await?;
            let lists: Vec<ListMembership> = sqlx::query_as(
                "SELECT l.list_email, l.name, l.hidden, m.role \
                 FROM distribution_list_members m \
                 JOIN distribution_lists l ON l.id = m.list_id \
                 WHERE m.member_email = $1 ORDER BY lower(l.name), l.list_email",
            )
            .bind(email)
            .fetch_all(pool)
            .await?;
            let (owner_of, member_of) = lists.into_iter().partition(|l| l.role == "owner");
            Ok(PersonFacts {
                github,
                laptops,
                member_of,
                owner_of,
            })
        }

        /// Replaces the laptops with the snapshot in one transaction: planned against the rows
        /// as they are inside it, refused (nothing written) past the removal limit.
        pub async fn replace_assets(
            pool: &Pool,
            incoming: &[AssetRow],
            limits: &SnapshotLimits,
        ) -> Result<SnapshotOutcome, StoreError> {
            let mut tx = pool.begin().await?;
            let existing: Vec<AssetRow> = sqlx::query_as(
                "SELECT serial, model, owner_email, assigned_at FROM assets ORDER BY serial",
            )
            .fetch_all(&mut *tx)
            .await?;
            let plan = plan_assets(&existing, incoming);
            let mut outcome = SnapshotOutcome::planned(Feed::Assets, plan.counts, limits);
            if outcome.writes_nothing(limits) {
                tx.rollback().await?;
                return Ok(outcome);
            }
            for serial in &plan.remove {
                sqlx::query("DELETE FROM assets WHERE serial = $1")
                    .bind(serial)
                    .execute(&mut *tx)
                    .await?;
            }
            for row in plan.add.iter().chain(&plan.change) {
                sqlx::query(
                    "INSERT INTO assets (serial, model, owner_email, assigned_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (serial) DO UPDATE SET model = excluded.model, \
                       owner_email = excluded.owner_email, assigned_at = excluded.assigned_at, \
                       updated_at = excluded.updated_at",
                )
                .bind(&row.serial)
                .bind(&row.model)
                .bind(&row.owner_email)
                .bind(row.assigned_at)
                .bind(Utc::now())
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            outcome.applied = true;
            Ok(outcome)
        }

        pub async fn replace_lists(
            pool: &Pool,
            incoming: &ListSnapshot,
            limits: &SnapshotLimits,
        ) -> Result<SnapshotOutcome, StoreError> {
            let mut tx = pool.begin().await?;
            let lists: Vec<(String, String, bool)> =
                sqlx::query_as("SELECT list_email, name, hidden FROM distribution_lists")
                    .fetch_all(&mut *tx)
                    .await?;
            let members: Vec<(String, String, String)> = sqlx::query_as(
                "SELECT l.list_email, m.member_email, m.role FROM distribution_list_members m \
                 JOIN distribution_lists l ON l.id = m.list_id",
            )
            .fetch_all(&mut *tx)
            .await?;
            let existing = ListSnapshot {
                lists: lists
                    .into_iter()
                    .map(|(email, name, hidden)| (email, ListInfo { name, hidden }))
                    .collect(),
                members: members.into_iter().collect(),
            };
            let plan = plan_lists(&existing, incoming);
            let mut outcome = SnapshotOutcome::planned(Feed::DistributionLists, plan.counts, limits);
            if outcome.writes_nothing(limits) {
                tx.rollback().await?;
                return Ok(outcome);
            }
            let now = Utc::now();
            for (email, info) in &plan.upsert_lists {
                sqlx::query(
                    "INSERT INTO distribution_lists (list_email, name, hidden, updated_at) \
                     VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (list_email) DO UPDATE SET name = excluded.name, \
                       hidden = excluded.hidden, updated_at = excluded.updated_at",
                )
                .bind(email)
                .bind(&info.name)
                .bind(info.hidden)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            // Members of removed lists go with them (ON DELETE CASCADE).
            for email in &plan.remove_lists {
                sqlx::query("DELETE FROM distribution_lists WHERE list_email = $1")
                    .bind(email)
                    .execute(&mut *tx)
                    .await?;
            }
            for (list, member, role) in &plan.remove_members {
                sqlx::query(
                    "DELETE FROM distribution_list_members WHERE member_email = $2 AND role = $3 \
                     AND list_id = (SELECT id FROM distribution_lists WHERE list_email = $1)",
                )
                .bind(list)
                .bind(member)
                .bind(role)
                .execute(&mut *tx)
                .await?;
            }
            for (list, member, role) in &plan.add_members {
                sqlx::query(
                    "INSERT INTO distribution_list_members (list_id, member_email, role) \
                     SELECT id, $2, $3 FROM distribution_lists WHERE list_email = $1",
                )
                .bind(list)
                .bind(member)
                .bind(role)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            outcome.applied = true;
            Ok(outcome)
        }
    };
}

mod pg {
    use chrono::Utc;

    use crate::store::StoreError;

    type Pool = sqlx::PgPool;
    directory_queries!(sqlx::Postgres);
}

mod sqlite {
    use chrono::Utc;

    use crate::store::StoreError;

    type Pool = sqlx::SqlitePool;
    directory_queries!(sqlx::Sqlite);
}

/// Every row of the directory, departed ones too, for the in-memory index (`super::index`).
pub async fn all_identities(db: &Db) -> Result<Vec<Identity>, StoreError> {
    per_backend!(db, pg, sqlite, all_identities())
}

/// Everything the directory holds for a (normalized) work email.
pub async fn person_facts(db: &Db, email: &str) -> Result<PersonFacts, StoreError> {
    per_backend!(db, pg, sqlite, person_facts(email))
}

/// Replaces every laptop with the snapshot, all or nothing.
pub async fn replace_assets(
    db: &Db,
    incoming: &[AssetRow],
    limits: &SnapshotLimits,
) -> Result<SnapshotOutcome, StoreError> {
    per_backend!(db, pg, sqlite, replace_assets(incoming, limits))
}

/// Replaces every distribution list and membership with the snapshot, all or nothing.
pub async fn replace_lists(
    db: &Db,
    incoming: &ListSnapshot,
    limits: &SnapshotLimits,
) -> Result<SnapshotOutcome, StoreError> {
    per_backend!(db, pg, sqlite, replace_lists(incoming, limits))
}
