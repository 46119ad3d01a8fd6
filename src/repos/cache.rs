//! What the repositories' pages show, kept in memory per data version: the list changes only
//! when a sync (or the daily refresh of its sums) bumps the `repos` version, yet every
//! signed-in page view would otherwise run the same five queries again. Keyed by everything
//! the answer depends on (the version, the day, the access patterns, the query), so a cached
//! answer is exactly what the queries would return now, and never shared between users whose
//! access differs. Bounded by entry count; a stale version's entries are never asked for again
//! and age out.

use std::sync::Arc;

use chrono::NaiveDate;
use quick_cache::sync::Cache;

use super::model::{Granularity, ListQuery};

/// Entries per cache: a page of the list is about 30 KB, a repository's three years of daily
/// traffic with its charts a few hundred KB at most, so memory stays within tens of MB.
const LISTS: usize = 256;
const DETAILS: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListKey {
    pub version: i64,
    pub today: NaiveDate,
    /// The access as `LIKE` patterns (`None`: all), as the queries take it.
    pub likes: Option<Vec<String>>,
    pub q: String,
    pub sort: &'static str,
    pub desc: bool,
    pub page: u32,
}

impl ListKey {
    pub fn new(version: i64, today: NaiveDate, likes: Option<Vec<String>>, q: &ListQuery) -> Self {
        ListKey {
            version,
            today,
            likes,
            q: q.q.clone(),
            sort: q.sort.param(),
            desc: q.desc,
            page: q.page,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DetailKey {
    pub version: i64,
    pub likes: Option<Vec<String>>,
    /// Lower case: GitHub's names compare case-insensitively.
    pub name: String,
    pub from: Option<NaiveDate>,
    pub to: NaiveDate,
    pub granularity: Granularity,
}

pub struct RepoCaches {
    pub lists: Cache<ListKey, Arc<super::pages::Listing>>,
    /// `None`: no such repository, or one this access does not allow.
    pub details: Cache<DetailKey, Option<Arc<super::detail::Shown>>>,
}

impl Default for RepoCaches {
    fn default() -> Self {
        RepoCaches {
            lists: Cache::new(LISTS),
            details: Cache::new(DETAILS),
        }
    }
}
