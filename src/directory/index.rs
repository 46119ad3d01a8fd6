//! The directory as each instance holds it: every row in memory, built once per directory
//! version (`store::versions`), searched and paged without asking the database.
//!
//! The directory changes only with a sync or an import, and is read thousands of times more
//! often; a search that went to the database cost that database a scan and a sort per request
//! (substring terms defeat ordinary indexes, and a trigram index does not help a term that
//! matches everyone). Here a search costs a walk of a presorted order, or one pass of a SIMD
//! substring search over all the text when the term is rare.
//!
//! The definitions, the same on both backends: a row matches when the lower-cased
//! "name email login" contains the lower-cased term (a plain substring: `%` and `_` are
//! characters like any other); rows are ordered by the key (lower-cased name, email,
//! lower-cased login, or last pull), compared by code point, then by id.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use memchr::memmem;

use super::Identity;
use super::search::{Cursor, CursorValue, SearchQuery, SortKey};
use crate::store::{Db, StoreError};

/// Rows tested in sort order, per row wanted, before a term counts as rare and the whole text
/// is searched at once instead. Testing one row costs about as much as the single pass spends
/// on a few hundred bytes of text: a term matching at least one row in 16 fills its page within
/// the walk; a rarer one is found faster by the pass, whose hits are then few.
const WALK_PER_ROW: usize = 16;

/// Where one row's lower-cased text lies in [`DirectoryIndex::text`].
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    /// The lower-cased name is `start..name_end`.
    name_end: usize,
    /// The lower-cased login is `login_start..end`.
    login_start: usize,
    end: usize,
}

/// Every row of one directory version, with what searching and paging need.
pub struct DirectoryIndex {
    version: i64,
    /// By id.
    rows: Vec<Identity>,
    /// Each row's lower-cased "name email login", one after another, each followed by a NUL
    /// (no term holds one, so no match spans two rows).
    text: String,
    spans: Vec<Span>,
    /// Positions in `rows`, ascending by (key, id), one order per [`SortKey`].
    orders: [Vec<u32>; 4],
    /// Where each row stands in each order: `orders[k][ranks[k][row]] == row`.
    ranks: [Vec<u32>; 4],
    trigrams: Trigrams,
    active: usize,
}

fn key_slot(key: SortKey) -> usize {
    match key {
        SortKey::Name => 0,
        SortKey::Email => 1,
        SortKey::GithubUsername => 2,
        SortKey::LastPullDate => 3,
    }
}

/// A sort key's value, borrowed from the index or from a cursor.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum KeyRef<'a> {
    Text(&'a str),
    Time(DateTime<Utc>),
}

impl DirectoryIndex {
    /// Reads every row (departed ones too) and builds the index for `version`; the sorting
    /// runs off the request threads.
    pub async fn load(db: &Db, version: i64) -> Result<DirectoryIndex, StoreError> {
        let rows = super::store::all_identities(db).await?;
        tokio::task::spawn_blocking(move || DirectoryIndex::build(version, rows))
            .await
            .map_err(|e| StoreError::Internal(format!("building the directory index: {e}")))
    }

    pub fn build(version: i64, mut rows: Vec<Identity>) -> DirectoryIndex {
        rows.sort_unstable_by_key(|r| r.id);
        let mut text = String::with_capacity(rows.len() * 64);
        let mut spans = Vec::with_capacity(rows.len());
        for row in &rows {
            let start = text.len();
            text.push_str(&row.name.to_lowercase());
            let name_end = text.len();
            text.push(' ');
            text.push_str(&row.email.to_lowercase());
            text.push(' ');
            let login_start = text.len();
            text.push_str(&row.github_username.to_lowercase());
            let end = text.len();
            text.push('\0');
            spans.push(Span {
                start,
                name_end,
                login_start,
                end,
            });
        }
        let active = rows.iter().filter(|r| r.departed_at.is_none()).count();
        let mut index = DirectoryIndex {
            version,
            rows,
            text,
            spans,
            orders: Default::default(),
            ranks: Default::default(),
            trigrams: Trigrams::default(),
            active,
        };
        for key in SortKey::ALL {
            let mut order: Vec<u32> = (0..index.rows.len()).map(position).collect();
            order.sort_unstable_by(|&a, &b| index.cmp_rows(key, a as usize, b as usize));
            let mut ranks = vec![0; order.len()];
            for (rank, &row) in order.iter().enumerate() {
                ranks[row as usize] = position(rank);
            }
            index.orders[key_slot(key)] = order;
            index.ranks[key_slot(key)] = ranks;
        }
        index.trigrams = Trigrams::build(index.text.as_bytes(), &index.spans);
        index
    }

    /// The directory version this was built from.
    pub fn version(&self) -> i64 {
        self.version
    }

    /// People who have not left.
    pub fn active_count(&self) -> usize {
        self.active
    }

    /// What the index holds, in bytes (strings' capacity included, allocator overhead not).
    pub fn heap_bytes(&self) -> usize {
        let rows: usize = self
            .rows
            .iter()
            .map(|r| {
                std::mem::size_of::<Identity>()
                    + r.name.capacity()
                    + r.email.capacity()
                    + r.github_username.capacity()
            })
            .sum();
        rows + self.text.capacity()
            + self.spans.capacity() * std::mem::size_of::<Span>()
            + self
                .orders
                .iter()
                .chain(&self.ranks)
                .map(|o| o.capacity() * std::mem::size_of::<u32>())
                .sum::<usize>()
            + self.trigrams.heap_bytes()
    }

    fn key(&self, key: SortKey, row: usize) -> KeyRef<'_> {
        let span = self.spans[row];
        match key {
            SortKey::Name => KeyRef::Text(&self.text[span.start..span.name_end]),
            SortKey::Email => KeyRef::Text(&self.rows[row].email),
            SortKey::GithubUsername => KeyRef::Text(&self.text[span.login_start..span.end]),
            SortKey::LastPullDate => KeyRef::Time(self.rows[row].last_pull_date),
        }
    }

    /// A row's lower-cased "name email login".
    fn row_text(&self, row: usize) -> &[u8] {
        let span = self.spans[row];
        &self.text.as_bytes()[span.start..span.end]
    }

    /// Two rows in ascending order under `key`.
    fn cmp_rows(&self, key: SortKey, a: usize, b: usize) -> Ordering {
        self.key(key, a)
            .cmp(&self.key(key, b))
            .then(self.rows[a].id.cmp(&self.rows[b].id))
    }

    /// The row against the cursor, in ascending order.
    fn cmp_cursor(&self, key: SortKey, row: usize, cursor: &Cursor) -> Ordering {
        let theirs = match &cursor.value {
            CursorValue::Text(s) => KeyRef::Text(s),
            CursorValue::Time(t) => KeyRef::Time(*t),
        };
        self.key(key, row)
            .cmp(&theirs)
            .then(self.rows[row].id.cmp(&cursor.id))
    }

    /// Every active row, by name: the whole directory as one answer.
    pub fn active_by_name(&self) -> impl Iterator<Item = &Identity> {
        self.orders[key_slot(SortKey::Name)]
            .iter()
            .map(|&i| &self.rows[i as usize])
            .filter(|r| r.departed_at.is_none())
    }

    /// Up to `limit + 1` rows after the cursor, in the query's order (the extra row tells
    /// that a next page exists).
    pub fn search(&self, query: &SearchQuery) -> Vec<Identity> {
        let want = usize::try_from(query.limit)
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        let slot = key_slot(query.sort);
        let order = &self.orders[slot];
        // The part of the order after the cursor, in the direction of the query.
        let (from, to) = match &query.after {
            None => (0, order.len()),
            Some(c) if query.desc => (
                0,
                order.partition_point(|&i| {
                    self.cmp_cursor(query.sort, i as usize, c) == Ordering::Less
                }),
            ),
            Some(c) => (
                order.partition_point(|&i| {
                    self.cmp_cursor(query.sort, i as usize, c) != Ordering::Greater
                }),
                order.len(),
            ),
        };
        let rest = &order[from..to];
        let walk: Box<dyn Iterator<Item = &u32>> = if query.desc {
            Box::new(rest.iter().rev())
        } else {
            Box::new(rest.iter())
        };
        let finder = (!query.q.is_empty()).then(|| memmem::Finder::new(query.q.as_bytes()));
        let budget = want.saturating_mul(WALK_PER_ROW);
        let mut found = Vec::with_capacity(want.min(rest.len()));
        for (tested, &i) in walk.enumerate() {
            if found.len() == want {
                break;
            }
            let i = i as usize;
            let row = &self.rows[i];
            if !query.include_departed && row.departed_at.is_some() {
                continue;
            }
            match &finder {
                None => found.push(row.clone()),
                Some(_) if tested >= budget => return self.rare(query, from..to, want),
                Some(f) => {
                    if f.find(self.row_text(i)).is_some() {
                        found.push(row.clone());
                    }
                }
            }
        }
        found
    }

    /// How many rows match `q` (people who left counted only with `include_departed`),
    /// whatever the page: for the page's "N people", not for the JSON answers, which stay one
    /// page's work.
    pub fn count(&self, q: &str, include_departed: bool) -> usize {
        let counts = |row: usize| include_departed || self.rows[row].departed_at.is_none();
        if q.is_empty() {
            return (0..self.rows.len()).filter(|&r| counts(r)).count();
        }
        let mut n = 0;
        self.each_match(q.as_bytes(), |row| {
            if counts(row) {
                n += 1;
            }
        });
        n
    }

    /// Calls `found` once for each row whose text contains `needle` (lower-cased, not
    /// empty), in no particular order: the candidates of the term's rarest trigram, checked,
    /// or one pass over the whole text for terms too short to have a trigram.
    fn each_match(&self, needle: &[u8], mut found: impl FnMut(usize)) {
        let finder = memmem::Finder::new(needle);
        match self.trigrams.candidates(needle) {
            Some((rows, exact)) => {
                for &row in rows {
                    let row = row as usize;
                    if exact || finder.find(self.row_text(row)).is_some() {
                        found(row);
                    }
                }
            }
            None => {
                let text = self.text.as_bytes();
                let mut at = 0;
                while let Some(offset) = finder.find(&text[at..]) {
                    let row = self
                        .spans
                        .partition_point(|s| s.start <= at + offset)
                        .saturating_sub(1);
                    found(row);
                    // One hit per row: go on from the next row.
                    at = self.spans[row].end + 1;
                    if at >= text.len() {
                        break;
                    }
                }
            }
        }
    }

    /// A term too rare (or too clustered) to fill a page by walking the order: the rows that
    /// may match come from the trigram postings (every row, found by one pass over the text,
    /// for terms too short to have a trigram); those that do and whose place in the order is
    /// in `range` are marked by that place, and the first `want` marks answered.
    fn rare(
        &self,
        query: &SearchQuery,
        range: std::ops::Range<usize>,
        want: usize,
    ) -> Vec<Identity> {
        let slot = key_slot(query.sort);
        let needle = query.q.as_bytes();
        let mut marks = vec![0_u64; self.rows.len().div_ceil(64)];
        let mut mark = |row: usize| {
            let rank = self.ranks[slot][row] as usize;
            if range.contains(&rank)
                && (query.include_departed || self.rows[row].departed_at.is_none())
            {
                marks[rank / 64] |= 1 << (rank % 64);
            }
        };
        self.each_match(needle, &mut mark);
        // The marked places, in the query's direction.
        let marked = |(w, word): (usize, u64)| {
            let bits: Box<dyn Iterator<Item = usize>> = if query.desc {
                Box::new((0..64).rev())
            } else {
                Box::new(0..64)
            };
            bits.filter(move |bit| word & (1 << bit) != 0)
                .map(move |bit| w * 64 + bit)
        };
        let words = marks.iter().copied().enumerate().filter(|(_, w)| *w != 0);
        let words: Box<dyn Iterator<Item = (usize, u64)>> = if query.desc {
            Box::new(words.rev())
        } else {
            Box::new(words)
        };
        words
            .flat_map(marked)
            .take(want)
            .map(|rank| self.rows[self.orders[slot][rank] as usize].clone())
            .collect()
    }
}

/// For each trigram of the lower-cased text, the rows holding it: what narrows a rare term to
/// a few rows to check instead of all. Bytes are folded into 64 symbols (letters, digits and
/// the punctuation of names, emails and logins exactly; every other byte into one of 22
/// shared ones), so the table is 2^18 lists, small and fixed, and a list may hold rows that
/// only share a folded trigram: rows are checked against the term unless it is exactly one
/// unfolded trigram.
#[derive(Default)]
struct Trigrams {
    /// Where each code's rows start in `rows`; `starts[code + 1]` is where they end.
    starts: Vec<u32>,
    /// Row positions, ascending within each code.
    rows: Vec<u32>,
}

const CODES: usize = 1 << 18;

/// A byte's symbol, and whether the symbol stands for that byte alone.
fn symbol(b: u8) -> (u32, bool) {
    match b {
        b'a'..=b'z' => (u32::from(b - b'a'), true),
        b'0'..=b'9' => (26 + u32::from(b - b'0'), true),
        b' ' => (36, true),
        b'@' => (37, true),
        b'.' => (38, true),
        b'-' => (39, true),
        b'_' => (40, true),
        b'\'' => (41, true),
        other => (42 + u32::from(other) % 22, false),
    }
}

fn code(w: &[u8]) -> (usize, bool) {
    let (a, ea) = symbol(w[0]);
    let (b, eb) = symbol(w[1]);
    let (c, ec) = symbol(w[2]);
    (((a << 12) | (b << 6) | c) as usize, ea && eb && ec)
}

impl Trigrams {
    fn build(text: &[u8], spans: &[Span]) -> Trigrams {
        // Two passes over the text: count each code's rows, then place them. `last` keeps a
        // row from being counted twice for one code.
        let mut counts = vec![0_u32; CODES + 1];
        let mut last = vec![u32::MAX; CODES];
        let each = |f: &mut dyn FnMut(usize, u32)| {
            for (row, span) in spans.iter().enumerate() {
                let row = position(row);
                for w in text[span.start..span.end].windows(3) {
                    f(code(w).0, row);
                }
            }
        };
        each(&mut |c, row| {
            if last[c] != row {
                last[c] = row;
                counts[c + 1] += 1;
            }
        });
        for c in 0..CODES {
            counts[c + 1] += counts[c];
        }
        let starts = counts;
        let mut next: Vec<u32> = starts[..CODES].to_vec();
        let mut rows = vec![0_u32; starts[CODES] as usize];
        last.fill(u32::MAX);
        each(&mut |c, row| {
            if last[c] != row {
                last[c] = row;
                rows[next[c] as usize] = row;
                next[c] += 1;
            }
        });
        Trigrams { starts, rows }
    }

    /// The rows that may hold `needle`: those of its rarest trigram, and whether holding that
    /// trigram is holding the needle. `None` for a needle shorter than a trigram.
    fn candidates(&self, needle: &[u8]) -> Option<(&[u32], bool)> {
        if self.starts.is_empty() {
            return None;
        }
        let (rows, code_exact) = needle
            .windows(3)
            .map(|w| {
                let (c, exact) = code(w);
                (
                    &self.rows[self.starts[c] as usize..self.starts[c + 1] as usize],
                    exact,
                )
            })
            .min_by_key(|(rows, _)| rows.len())?;
        Some((rows, code_exact && needle.len() == 3))
    }

    fn heap_bytes(&self) -> usize {
        (self.starts.capacity() + self.rows.capacity()) * std::mem::size_of::<u32>()
    }
}

/// A row's place as stored in the orders. A directory cannot hold four billion people in
/// memory, so the fallback never happens; it only keeps the conversion total.
fn position(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::search::Page;

    /// Names with mixed case, accents, ties on every key, and a tenth departed.
    fn people(n: usize) -> Vec<Identity> {
        let first = ["Ada", "élodie", "ÖZGE", "Bo", "ada", "Zoë", "Σοφία", "Li"];
        let last = ["Lindqvist", "Ng", "O'Brien", "Xu", "100%", "Under_Score"];
        (0..n)
            .map(|i| {
                let id = i64::try_from(i).unwrap_or_default() + 1;
                Identity {
                    id,
                    name: format!("{} {} {}", first[i % 8], last[(i / 8) % 6], i % 97),
                    email: format!("p{}@example.com", (i * 7919) % n),
                    github_username: format!("GH-{}", (i * 104_729) % (n / 2).max(1)),
                    last_pull_date: DateTime::from_timestamp(1_700_000_000 + (id % 28) * 86_400, 0)
                        .unwrap_or_default(),
                    departed_at: (i % 10 == 3).then(Utc::now),
                }
            })
            .collect()
    }

    fn query(q: &str, sort: SortKey, desc: bool, limit: u32, departed: bool) -> SearchQuery {
        SearchQuery {
            q: q.to_lowercase(),
            sort,
            desc,
            limit,
            after: None,
            include_departed: departed,
        }
    }

    /// The definition, written plainly: filter, then sort by (key, id).
    fn reference(rows: &[Identity], q: &SearchQuery) -> Vec<i64> {
        let mut hits: Vec<&Identity> = rows
            .iter()
            .filter(|r| q.include_departed || r.departed_at.is_none())
            .filter(|r| {
                format!(
                    "{} {} {}",
                    r.name.to_lowercase(),
                    r.email.to_lowercase(),
                    r.github_username.to_lowercase()
                )
                .contains(&q.q)
            })
            .collect();
        let key = |r: &Identity| match q.sort {
            SortKey::Name => r.name.to_lowercase(),
            SortKey::Email => r.email.clone(),
            SortKey::GithubUsername => r.github_username.to_lowercase(),
            SortKey::LastPullDate => r.last_pull_date.to_rfc3339(),
        };
        hits.sort_by(|a, b| {
            let ord = key(a).cmp(&key(b)).then(a.id.cmp(&b.id));
            if q.desc { ord.reverse() } else { ord }
        });
        hits.iter().map(|r| r.id).collect()
    }

    /// Every page, following cursors.
    fn all_pages(index: &DirectoryIndex, first: &SearchQuery) -> Vec<i64> {
        let mut q = first.clone();
        let mut out = Vec::new();
        // A cursor that does not move the page on would loop forever.
        for _ in 0..=index.rows.len() {
            let page = Page::from_rows(&q, index.search(&q));
            assert!(page.rows.len() <= q.limit as usize);
            out.extend(page.rows.iter().map(|r| r.id));
            match page.next {
                Some(c) => q.after = Some(c),
                None => return out,
            }
        }
        panic!("more pages than rows: the cursor does not move on")
    }

    #[test]
    fn pages_follow_the_definition_for_common_rare_and_absent_terms() {
        // More rows than the walk tests for a page, so rare terms take the single pass.
        let rows = people(10_000);
        let index = DirectoryIndex::build(7, rows.clone());
        assert_eq!(index.version(), 7);
        assert_eq!(index.active_count(), 9_000);
        let terms = [
            "",       // everyone
            "ada",    // a quarter, across case
            "ÉLODIE", // accents lower-case too
            "σοφία",  // Greek
            "% 4",    // wildcards are characters, across a field boundary
            "under_", // an underscore, not any character
            "p4242@", // one or two rows: the single pass
            "gh-12 ", // nothing: no field ends that way before the login
            "zzz",    // nothing at all
            "n 9",    // rare-ish: fewer than one per page in the walk
        ];
        for term in terms {
            for sort in SortKey::ALL {
                for desc in [false, true] {
                    for departed in [false, true] {
                        for limit in [7, 200] {
                            let q = query(term, sort, desc, limit, departed);
                            assert_eq!(
                                all_pages(&index, &q),
                                reference(&rows, &q),
                                "{term:?} {sort:?} desc={desc} departed={departed} limit={limit}"
                            );
                        }
                    }
                }
            }
            for departed in [false, true] {
                let q = query(term, SortKey::Name, false, 1, departed);
                assert_eq!(
                    index.count(&q.q, departed),
                    reference(&rows, &q).len(),
                    "count of {term:?} departed={departed}"
                );
            }
        }
    }

    #[test]
    fn a_cursor_whose_row_is_gone_continues_after_where_it_was() {
        let rows = people(6_000);
        let before = DirectoryIndex::build(1, rows.clone());
        for (term, sort, desc) in [
            ("", SortKey::Name, false),
            ("ada", SortKey::Email, true),
            ("p42", SortKey::LastPullDate, false),
        ] {
            let q = query(term, sort, desc, 10, false);
            let page = Page::from_rows(&q, before.search(&q));
            let cursor = page.next.expect("a next page");
            // The next directory version lost the row the cursor points at.
            let after_rows: Vec<Identity> =
                rows.iter().filter(|r| r.id != cursor.id).cloned().collect();
            let after = DirectoryIndex::build(2, after_rows.clone());
            let next = SearchQuery {
                after: Some(cursor),
                ..q.clone()
            };
            let got: Vec<i64> = after.search(&next).iter().map(|r| r.id).collect();
            let expected: Vec<i64> = reference(&after_rows, &q)
                .into_iter()
                .skip_while(|id| page.rows.iter().any(|r| r.id == *id))
                .take(11)
                .collect();
            assert_eq!(got, expected, "{term:?} {sort:?}");
        }
    }

    #[test]
    fn an_empty_directory_answers_nothing() {
        let index = DirectoryIndex::build(0, Vec::new());
        for term in ["", "a"] {
            assert!(
                index
                    .search(&query(term, SortKey::Name, false, 50, true))
                    .is_empty()
            );
        }
        assert_eq!(index.active_by_name().count(), 0);
    }

    #[test]
    fn the_whole_directory_is_every_active_row_by_name() {
        let rows = people(500);
        let index = DirectoryIndex::build(0, rows.clone());
        let got: Vec<i64> = index.active_by_name().map(|r| r.id).collect();
        assert_eq!(
            got,
            reference(&rows, &query("", SortKey::Name, false, 1, false))
        );
    }
}
