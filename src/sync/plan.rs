//! What a GitHub sync changes in the directory, decided without I/O: the store runs this
//! inside its transaction against the rows as they are there.

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
    if counts.active_before == 0 || counts.departed == 0 {
        return Ok(());
    }
    #[allow(clippy::cast_precision_loss)]
    let share = counts.departed as f64 / counts.active_before as f64;
    if share > max_share {
        return Err(format!(
            "this run would mark {} of {} active identities departed ({:.0}%), more than \
             GATEHOUSE_SYNC_MAX_DEPARTED ({:.0}%); nothing was changed",
            counts.departed,
            counts.active_before,
            share * 100.0,
            max_share * 100.0
        ));
    }
    Ok(())
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
