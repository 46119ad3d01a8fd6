//! The sync's queries: the lease, the runs, applying a snapshot. Each is written once, in the
//! macro below, expanded for both backends, and called through one function over `Db` (the
//! snapshot's transaction and the lease's upsert use a typed pool inside, which `on_db!`'s
//! single expression would make hard to read).
//!
//! Over 400 lines: applying a snapshot is one transaction, written once for both backends in one
//! macro, and is easiest to check when read whole.

use std::time::Duration;

use super::{Applied, GithubSnapshot, SyncRun};
use crate::per_backend;
use crate::store::{Db, StoreError};

macro_rules! sync_queries {
    // `$greatest`: the backend's two-argument maximum (`GREATEST` in PostgreSQL, `MAX` in
    // SQLite), the one word in which the traffic upsert differs.
    ($db:ty, $greatest:literal) => {
        use crate::sync::plan::{
            FetchedRepo, Stored, StoredRepo, check_departures, check_removals,
            plan as plan_identities, plan_repos,
        };
        use crate::sync::{Applied, GithubSnapshot, SyncRun};

        /// Takes the named lease if it is free or expired; `true` when this holder has it.
        /// One statement, so two takers cannot both win: the loser's upsert finds an
        /// unexpired row and its `WHERE` leaves it alone.
        pub async fn lease_acquire(
            pool: &Pool,
            name: &str,
            holder: &str,
            ttl: std::time::Duration,
        ) -> Result<bool, StoreError> {
            let now = Utc::now();
            let until = now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(1));
            let done = sqlx::query(
                "INSERT INTO sync_leases (name, holder, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                   expires_at = excluded.expires_at \
                 WHERE sync_leases.expires_at < $4 OR sync_leases.holder = excluded.holder",
            )
            .bind(name)
            .bind(holder)
            .bind(until)
            .bind(now)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        }

        pub async fn lease_release(pool: &Pool, name: &str, holder: &str) -> Result<(), StoreError> {
            sqlx::query("DELETE FROM sync_leases WHERE name = $1 AND holder = $2")
                .bind(name)
                .bind(holder)
                .execute(pool)
                .await?;
            Ok(())
        }

        pub async fn sync_run_start(
            pool: &Pool,
            kind: &str,
            trigger: &str,
            holder: &str,
        ) -> Result<i64, StoreError> {
            Ok(sqlx::query_scalar(
                "INSERT INTO sync_runs (kind, trigger, started_at, outcome, holder) \
                 VALUES ($1, $2, $3, 'running', $4) RETURNING id",
            )
            .bind(kind)
            .bind(trigger)
            .bind(Utc::now())
            .bind(holder)
            .fetch_one(pool)
            .await?)
        }

        pub async fn sync_run_finish(
            pool: &Pool,
            id: i64,
            outcome: &str,
            counts: &serde_json::Value,
            error: Option<&str>,
        ) -> Result<(), StoreError> {
            sqlx::query(
                "UPDATE sync_runs SET finished_at = $2, outcome = $3, counts = $4, error = $5 \
                 WHERE id = $1",
            )
            .bind(id)
            .bind(Utc::now())
            .bind(outcome)
            .bind(sqlx::types::Json(counts))
            .bind(error)
            .execute(pool)
            .await?;
            Ok(())
        }

        pub async fn sync_runs(pool: &Pool, limit: i64) -> Result<Vec<SyncRun>, StoreError> {
            Ok(sqlx::query_as(
                "SELECT id, kind, trigger, started_at, finished_at, outcome, counts, error, holder \
                 FROM sync_runs ORDER BY id DESC LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?)
        }

        /// Writes one complete fetch in one transaction, or nothing when the departure guard
        /// refuses it.
        pub async fn apply_github_snapshot(
            pool: &Pool,
            snapshot: &GithubSnapshot,
            max_departed: f64,
        ) -> Result<Applied, StoreError> {
            let now = Utc::now();
            let mut tx = pool.begin().await?;
            let stored: Vec<Stored> = sqlx::query_as(
                "SELECT id, email, github_username, name, departed_at IS NOT NULL AS departed \
                 FROM github_identities",
            )
            .fetch_all(&mut *tx)
            .await?;
            let plan = plan_identities(&stored, &snapshot.identities);
            let stored_repos: Vec<StoredRepo> = sqlx::query_as(
                "SELECT id, github_id, name, removed_at IS NOT NULL AS removed FROM repos",
            )
            .fetch_all(&mut *tx)
            .await?;
            let fetched_repos: Vec<FetchedRepo> = snapshot
                .repos
                .iter()
                .map(|r| FetchedRepo {
                    github_id: r.github_id,
                    name: r.name.clone(),
                })
                .collect();
            let repo_plan = plan_repos(&stored_repos, &fetched_repos);
            let mut applied = Applied {
                identities: plan.counts,
                repo_changes: repo_plan.counts,
                ..Applied::default()
            };
            if let Err(reason) = check_departures(&plan.counts, max_departed)
                .and_then(|()| check_removals(&repo_plan.counts, max_departed))
            {
                tx.rollback().await?;
                applied.refused = Some(reason);
                return Ok(applied);
            }
            // Many rows per statement: a first sync of 100,000 people is 200 round trips,
            // not 100,000 (6 binds a row stays far below both backends' parameter limits).
            for chunk in plan.insert.chunks(500) {
                let mut insert = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO github_identities \
                       (email, name, github_username, last_pull_date, created_at, updated_at) ",
                );
                insert.push_values(chunk, |mut row, f| {
                    row.push_bind(&f.email)
                        .push_bind(&f.name)
                        .push_bind(&f.login)
                        .push_bind(now)
                        .push_bind(now)
                        .push_bind(now);
                });
                insert.build().execute(&mut *tx).await?;
            }
            for (id, f) in &plan.update {
                sqlx::query(
                    "UPDATE github_identities SET email = $2, name = $3, github_username = $4, \
                       departed_at = NULL, updated_at = $5 WHERE id = $1",
                )
                .bind(id)
                .bind(&f.email)
                .bind(&f.name)
                .bind(&f.login)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            for id in &plan.depart {
                sqlx::query(
                    "UPDATE github_identities SET departed_at = $2, updated_at = $2 WHERE id = $1",
                )
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            // Everyone still here was seen by this pull.
            sqlx::query("UPDATE github_identities SET last_pull_date = $1 WHERE departed_at IS NULL")
                .bind(now)
                .execute(&mut *tx)
                .await?;
            // Names first, so that no statement below meets a name another row still holds.
            for (id, name) in &repo_plan.displace {
                sqlx::query("UPDATE repos SET name = $2, updated_at = $3 WHERE id = $1")
                    .bind(id)
                    .bind(name)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            for id in &repo_plan.rename {
                // No GitHub repository name has a space: this one is free.
                sqlx::query("UPDATE repos SET name = $2 WHERE id = $1")
                    .bind(id)
                    .bind(format!(" renaming row {id}"))
                    .execute(&mut *tx)
                    .await?;
            }
            for id in &repo_plan.remove {
                sqlx::query("UPDATE repos SET removed_at = $2, updated_at = $2 WHERE id = $1")
                    .bind(id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            for (index, row) in &repo_plan.write {
                let repo = &snapshot.repos[*index];
                let repo_id: i64 = match row {
                    Some(id) => {
                        sqlx::query(
                            "UPDATE repos SET github_id = $2, name = $3, description = $4, \
                               visibility = $5, archived = $6, html_url = $7, stars = $8, \
                               forks = $9, removed_at = NULL, updated_at = $10 WHERE id = $1",
                        )
                        .bind(id)
                        .bind(repo.github_id)
                        .bind(&repo.name)
                        .bind(&repo.description)
                        .bind(&repo.visibility)
                        .bind(repo.archived)
                        .bind(&repo.html_url)
                        .bind(repo.stars)
                        .bind(repo.forks)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                        *id
                    }
                    None => {
                        sqlx::query_scalar(
                            "INSERT INTO repos (github_id, name, description, visibility, \
                               archived, html_url, stars, forks, updated_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
                        )
                        .bind(repo.github_id)
                        .bind(&repo.name)
                        .bind(&repo.description)
                        .bind(&repo.visibility)
                        .bind(repo.archived)
                        .bind(&repo.html_url)
                        .bind(repo.stars)
                        .bind(repo.forks)
                        .bind(now)
                        .fetch_one(&mut *tx)
                        .await?
                    }
                };
                // GitHub keeps 14 days and a recent day's figures still grow while it counts
                // them: each column keeps the highest figure any answer gave for the day, so
                // a partial count never replaces a complete one; older days stay as history.
                for d in &repo.traffic {
                    sqlx::query(concat!(
                        "INSERT INTO repo_traffic \
                           (repo_id, day, views, unique_views, clones, unique_clones) \
                         VALUES ($1, $2, $3, $4, $5, $6) \
                         ON CONFLICT (repo_id, day) DO UPDATE SET views = ",
                        $greatest,
                        "(repo_traffic.views, excluded.views), unique_views = ",
                        $greatest,
                        "(repo_traffic.unique_views, excluded.unique_views), clones = ",
                        $greatest,
                        "(repo_traffic.clones, excluded.clones), unique_clones = ",
                        $greatest,
                        "(repo_traffic.unique_clones, excluded.unique_clones)"
                    ))
                    .bind(repo_id)
                    .bind(d.day)
                    .bind(d.views)
                    .bind(d.unique_views)
                    .bind(d.clones)
                    .bind(d.unique_clones)
                    .execute(&mut *tx)
                    .await?;
                    applied.traffic_days += 1;
                }
                // Stars and forks go down as well as up: the day's last sync wins.
                sqlx::query(
                    "INSERT INTO repo_stars (repo_id, day, stars, forks) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (repo_id, day) DO UPDATE SET stars = excluded.stars, \
                       forks = excluded.forks",
                )
                .bind(repo_id)
                .bind(snapshot.day)
                .bind(repo.stars)
                .bind(repo.forks)
                .execute(&mut *tx)
                .await?;
                // The lists are GitHub's whole 14 days, not a day's: the day's last answer
                // replaces the day's rows. Unreadable ones leave what the day has.
                if let Some(popular) = &repo.popular {
                    sqlx::query("DELETE FROM repo_referrers WHERE repo_id = $1 AND day = $2")
                        .bind(repo_id)
                        .bind(snapshot.day)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM repo_paths WHERE repo_id = $1 AND day = $2")
                        .bind(repo_id)
                        .bind(snapshot.day)
                        .execute(&mut *tx)
                        .await?;
                    // A name GitHub lists twice keeps its first entry.
                    for r in &popular.referrers {
                        let done = sqlx::query(
                            "INSERT INTO repo_referrers (repo_id, day, referrer, count, uniques) \
                             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                        )
                        .bind(repo_id)
                        .bind(snapshot.day)
                        .bind(&r.referrer)
                        .bind(r.count)
                        .bind(r.uniques)
                        .execute(&mut *tx)
                        .await?;
                        applied.referrers += usize::try_from(done.rows_affected()).unwrap_or(0);
                    }
                    for p in &popular.paths {
                        let done = sqlx::query(
                            "INSERT INTO repo_paths (repo_id, day, path, title, count, uniques) \
                             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                        )
                        .bind(repo_id)
                        .bind(snapshot.day)
                        .bind(&p.path)
                        .bind(&p.title)
                        .bind(p.count)
                        .bind(p.uniques)
                        .execute(&mut *tx)
                        .await?;
                        applied.paths += usize::try_from(done.rows_affected()).unwrap_or(0);
                    }
                }
                applied.repos += 1;
            }
            // The list's 14-day sums, with the traffic they come from.
            let [today, current, previous] =
                crate::repos::store::summary_window(Utc::now().date_naive());
            sqlx::query(crate::repos::store::REFRESH_SUMMARIES)
                .bind(today)
                .bind(current)
                .bind(previous)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(applied)
        }
    };
}

mod pg {
    use chrono::Utc;

    use crate::store::StoreError;

    type Pool = sqlx::PgPool;
    sync_queries!(sqlx::Postgres, "GREATEST");
}

mod sqlite {
    use chrono::Utc;

    use crate::store::StoreError;

    type Pool = sqlx::SqlitePool;
    sync_queries!(sqlx::Sqlite, "MAX");
}

/// Takes the named lease if it is free or expired; `true` when this holder has it.
pub async fn lease_acquire(
    db: &Db,
    name: &str,
    holder: &str,
    ttl: Duration,
) -> Result<bool, StoreError> {
    per_backend!(db, pg, sqlite, lease_acquire(name, holder, ttl))
}

pub async fn lease_release(db: &Db, name: &str, holder: &str) -> Result<(), StoreError> {
    per_backend!(db, pg, sqlite, lease_release(name, holder))
}

pub async fn sync_run_start(
    db: &Db,
    kind: &str,
    trigger: &str,
    holder: &str,
) -> Result<i64, StoreError> {
    per_backend!(db, pg, sqlite, sync_run_start(kind, trigger, holder))
}

pub async fn sync_run_finish(
    db: &Db,
    id: i64,
    outcome: &str,
    counts: &serde_json::Value,
    error: Option<&str>,
) -> Result<(), StoreError> {
    per_backend!(db, pg, sqlite, sync_run_finish(id, outcome, counts, error))
}

/// Newest first.
pub async fn sync_runs(db: &Db, limit: i64) -> Result<Vec<SyncRun>, StoreError> {
    per_backend!(db, pg, sqlite, sync_runs(limit))
}

/// One complete fetch, in one transaction; nothing written when the guard refuses.
pub async fn apply_github_snapshot(
    db: &Db,
    snapshot: &GithubSnapshot,
    max_departed: f64,
) -> Result<Applied, StoreError> {
    per_backend!(
        db,
        pg,
        sqlite,
        apply_github_snapshot(snapshot, max_departed)
    )
}
