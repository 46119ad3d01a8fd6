//! What a GitHub sync changes in the directory and the repositories, decided without I/O: the
//! store runs this inside its transaction against the rows as they are there.
//!
//! Over 400 lines with its unit tests (about 170 lines at the end).

use std::collections::{HashMap, HashSet};

use serde::Serialize;

/// One identity as fetched: work email (normalized), GitHub login and display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub email: String,
    pub login: String,
    pub name: String,
}

/// One stored identity as the plan needs it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Stored {
    pub id: i64,
    pub email: String,
    pub github_username: String,
    pub name: String,
    pub departed: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentityPlan {
    pub insert: Vec<Fetched>,
    /// (row id, new values): changed email or name, or back after having departed.
    pub update: Vec<(i64, Fetched)>,
    pub depart: Vec<i64>,
    pub counts: IdentityCounts,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct IdentityCounts {
    pub fetched: usize,
    /// Active before this run.
    pub active_before: usize,
    pub added: usize,
    pub changed: usize,
    pub returned: usize,
    pub departed: usize,
}

/// Rows are matched by login, case-insensitively (GitHub logins are): a login that appears
/// again is the same account even if its email or name changed.
pub fn plan(stored: &[Stored], fetched: &[Fetched]) -> IdentityPlan {
    let by_login: HashMap<String, &Stored> = stored
        .iter()
        .map(|s| (s.github_username.to_lowercase(), s))
        .collect();
    let mut seen: HashSet<String> = HashSet::with_capacity(fetched.len());
    let mut plan = IdentityPlan::default();
    for f in fetched {
        let key = f.login.to_lowercase();
        // GitHub should not list a login twice; if it does, the first one counts.
        if !seen.insert(key.clone()) {
            continue;
        }
        match by_login.get(&key) {
            None => {
                plan.insert.push(f.clone());
                plan.counts.added += 1;
            }
            Some(s) if s.departed => {
                plan.update.push((s.id, f.clone()));
                plan.counts.returned += 1;
            }
            Some(s) if s.email != f.email || s.name != f.name || s.github_username != f.login => {
                plan.update.push((s.id, f.clone()));
                plan.counts.changed += 1;
            }
            Some(_) => {}
        }
    }
    plan.depart = stored
        .iter()
        .filter(|s| !s.departed && !seen.contains(&s.github_username.to_lowercase()))
        .map(|s| s.id)
        .collect();
    plan.counts.fetched = seen.len();
    plan.counts.active_before = stored.iter().filter(|s| !s.departed).count();
    plan.counts.departed = plan.depart.len();
    plan
}

/// `Err` explains why the run must change nothing: a fetch that loses more than the allowed
/// share of active identities is more likely a broken fetch than a mass departure.
pub fn check_departures(counts: &IdentityCounts, max_share: f64) -> Result<(), String> {
    check_share(
        "identities",
        "departed",
        counts.departed,
        counts.active_before,
        max_share,
    )
}

/// The same rule for repositories, counted on their own: a token that lost access to the
/// private repositories lists only the public ones, which looks like a mass removal. Counted
/// apart from identities so that many people cannot hide the loss of most repositories.
pub fn check_removals(counts: &RepoCounts, max_share: f64) -> Result<(), String> {
    check_share(
        "repositories",
        "removed",
        counts.removed,
        counts.active_before,
        max_share,
    )
}

fn check_share(
    what: &str,
    marked: &str,
    lost: usize,
    active_before: usize,
    max_share: f64,
) -> Result<(), String> {
    if active_before == 0 || lost == 0 {
        return Ok(());
    }
    #[allow(clippy::cast_precision_loss)]
    let share = lost as f64 / active_before as f64;
    if share > max_share {
        return Err(format!(
            "this run would mark {lost} of {active_before} active {what} {marked} ({:.0}%), \
             more than GATEHOUSE_SYNC_MAX_DEPARTED ({:.0}%); nothing was changed",
            share * 100.0,
            max_share * 100.0
        ));
    }
    Ok(())
}

/// One fetched repository as the repository plan needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedRepo {
    pub github_id: i64,
    pub name: String,
}

/// One stored repository as the plan needs it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredRepo {
    pub id: i64,
    pub github_id: Option<i64>,
    pub name: String,
    pub removed: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepoPlan {
    /// (index in the fetch, the row it updates or `None` for a new row); a repository listed
    /// twice is written once.
    pub write: Vec<(usize, Option<i64>)>,
    /// Rows that change their name: they take a temporary one first, so that names can move
    /// between rows (two repositories swapping names) without breaking `repos.name`'s
    /// uniqueness halfway.
    pub rename: Vec<i64>,
    /// (row id, new name): rows gone from the organization whose name a fetched repository now
    /// uses (deleted and created again, or another renamed onto it). They keep their history
    /// under a name no GitHub repository can have.
    pub displace: Vec<(i64, String)>,
    pub remove: Vec<i64>,
    pub counts: RepoCounts,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RepoCounts {
    pub fetched: usize,
    /// Not removed before this run.
    pub active_before: usize,
    pub added: usize,
    pub renamed: usize,
    pub returned: usize,
    pub removed: usize,
}

/// Rows are matched by GitHub's id; a row stored before ids were kept has none and is matched
/// once by name (case-insensitively, as GitHub compares names), then keeps the id it got.
pub fn plan_repos(stored: &[StoredRepo], fetched: &[FetchedRepo]) -> RepoPlan {
    let by_id: HashMap<i64, &StoredRepo> = stored
        .iter()
        .filter_map(|s| s.github_id.map(|id| (id, s)))
        .collect();
    let by_name: HashMap<String, &StoredRepo> = stored
        .iter()
        .filter(|s| s.github_id.is_none())
        .map(|s| (s.name.to_lowercase(), s))
        .collect();
    let mut plan = RepoPlan::default();
    let mut seen_ids: HashSet<i64> = HashSet::with_capacity(fetched.len());
    let mut seen_names: HashSet<String> = HashSet::with_capacity(fetched.len());
    let mut matched: HashSet<i64> = HashSet::with_capacity(fetched.len());
    for (i, f) in fetched.iter().enumerate() {
        // GitHub should not list an id or a name twice; if it does, the first one counts.
        if !seen_ids.insert(f.github_id) || !seen_names.insert(f.name.to_lowercase()) {
            continue;
        }
        let row = by_id
            .get(&f.github_id)
            .or_else(|| by_name.get(&f.name.to_lowercase()))
            .filter(|s| !matched.contains(&s.id));
        match row {
            None => {
                plan.write.push((i, None));
                plan.counts.added += 1;
            }
            Some(s) => {
                matched.insert(s.id);
                plan.write.push((i, Some(s.id)));
                if s.name != f.name {
                    plan.rename.push(s.id);
                    plan.counts.renamed += 1;
                }
                if s.removed {
                    plan.counts.returned += 1;
                }
            }
        }
    }
    let wanted: HashSet<&str> = plan
        .write
        .iter()
        .map(|(i, _)| fetched[*i].name.as_str())
        .collect();
    for s in stored.iter().filter(|s| !matched.contains(&s.id)) {
        if !s.removed {
            plan.remove.push(s.id);
        }
        if wanted.contains(s.name.as_str()) {
            plan.displace
                .push((s.id, format!("{} (removed, row {})", s.name, s.id)));
        }
    }
    plan.counts.fetched = plan.write.len();
    plan.counts.active_before = stored.iter().filter(|s| !s.removed).count();
    plan.counts.removed = plan.remove.len();
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(email: &str, login: &str) -> Fetched {
        Fetched {
            email: email.into(),
            login: login.into(),
            name: String::new(),
        }
    }

    fn s(id: i64, email: &str, login: &str, departed: bool) -> Stored {
        Stored {
            id,
            email: email.into(),
            github_username: login.into(),
            name: String::new(),
            departed,
        }
    }

    #[test]
    fn plans_inserts_changes_returns_and_departures() {
        let stored = vec![
            s(1, "a@x.io", "ada", false),
            s(2, "b@x.io", "Bob", false),
            s(3, "c@x.io", "cy", true),
            s(4, "d@x.io", "dee", false),
        ];
        let fetched = vec![
            f("a@x.io", "ada"),
            f("bob@x.io", "bob"),
            f("c@x.io", "cy"),
            f("e@x.io", "eve"),
            f("e2@x.io", "EVE"),
        ];
        let plan = plan(&stored, &fetched);
        assert_eq!(plan.insert, vec![f("e@x.io", "eve")]);
        assert_eq!(
            plan.update,
            vec![(2, f("bob@x.io", "bob")), (3, f("c@x.io", "cy"))]
        );
        assert_eq!(plan.depart, vec![4]);
        assert_eq!(
            plan.counts,
            IdentityCounts {
                fetched: 4,
                active_before: 3,
                added: 1,
                changed: 1,
                returned: 1,
                departed: 1
            }
        );
        // The same fetch against its own result changes nothing.
        let after = vec![
            s(1, "a@x.io", "ada", false),
            s(2, "bob@x.io", "bob", false),
            s(3, "c@x.io", "cy", false),
            s(4, "d@x.io", "dee", true),
            s(5, "e@x.io", "eve", false),
        ];
        let again = super::plan(&after, &fetched);
        assert!(again.insert.is_empty() && again.update.is_empty() && again.depart.is_empty());
    }

    fn repo(id: i64, github_id: Option<i64>, name: &str, removed: bool) -> StoredRepo {
        StoredRepo {
            id,
            github_id,
            name: name.into(),
            removed,
        }
    }

    fn fr(github_id: i64, name: &str) -> FetchedRepo {
        FetchedRepo {
            github_id,
            name: name.into(),
        }
    }

    #[test]
    fn repositories_match_by_id_then_once_by_name() {
        let stored = vec![
            repo(1, Some(101), "api", false),
            repo(2, None, "Web", false),
            repo(3, Some(103), "infra", false),
            repo(4, Some(104), "old", true),
            repo(5, Some(105), "docs", false),
        ];
        let fetched = vec![
            fr(101, "api-v2"),
            fr(102, "web"),
            fr(104, "old"),
            fr(106, "docs"),
            fr(106, "dup"),
            fr(107, "api-v2"),
        ];
        let plan = plan_repos(&stored, &fetched);
        assert_eq!(
            plan.write,
            vec![(0, Some(1)), (1, Some(2)), (2, Some(4)), (3, None)],
            "renamed by id, adopted by name, back, and a new repository on a gone one's name"
        );
        assert_eq!(
            plan.rename,
            vec![1, 2],
            "a change of case is a rename of the row too"
        );
        assert_eq!(plan.remove, vec![3, 5]);
        assert_eq!(
            plan.displace,
            vec![(5, "docs (removed, row 5)".to_string())]
        );
        assert_eq!(
            plan.counts,
            RepoCounts {
                fetched: 4,
                active_before: 4,
                added: 1,
                renamed: 2,
                returned: 1,
                removed: 2,
            }
        );
        assert!(check_removals(&plan.counts, 0.5).is_ok());
        let refused = check_removals(&plan.counts, 0.2).expect_err("half the repositories");
        assert!(
            refused.contains("2 of 4 active repositories removed"),
            "{refused}"
        );
    }

    #[test]
    fn repositories_swapping_names_both_rename() {
        let stored = vec![repo(1, Some(1), "a", false), repo(2, Some(2), "b", false)];
        let plan = plan_repos(&stored, &[fr(1, "b"), fr(2, "a")]);
        assert_eq!(plan.write, vec![(0, Some(1)), (1, Some(2))]);
        assert_eq!(plan.rename, vec![1, 2]);
        assert!(plan.displace.is_empty() && plan.remove.is_empty());
        let empty = plan_repos(&stored, &[]);
        assert_eq!(empty.counts.removed, 2);
        assert!(
            check_removals(&empty.counts, 0.2).is_err(),
            "an empty listing removes nothing"
        );
    }

    #[test]
    fn departures_past_the_share_are_refused_and_empty_fetches_wipe_nothing() {
        let counts = |active_before, departed| IdentityCounts {
            active_before,
            departed,
            ..IdentityCounts::default()
        };
        assert!(check_departures(&counts(10, 2), 0.2).is_ok());
        assert!(check_departures(&counts(10, 3), 0.2).is_err());
        let stored: Vec<Stored> = (0..5)
            .map(|i| s(i, "x@x.io", &format!("u{i}"), false))
            .collect();
        let empty = plan(&stored, &[]);
        assert_eq!(empty.counts.departed, 5);
        assert!(check_departures(&empty.counts, 0.2).is_err());
        assert!(check_departures(&counts(0, 0), 0.2).is_ok(), "a first sync");
    }
}
