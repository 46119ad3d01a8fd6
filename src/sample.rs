//! Made-up directory data for dev mode, so the pages have something to show on first start.
//!
//! Everything is clearly fictional: people at `example.com` (a domain reserved for examples),
//! GitHub usernames with an `-example` suffix, serials starting `DEMO-`. The data is generated
//! deterministically (a fixed-seed generator written here, because reproducible demo data is
//! all it has to do) so screenshots and tests see the same people every time.

use chrono::{Duration, NaiveDate};

pub const DOMAIN: &str = "example.com";

#[derive(Debug, Clone)]
pub struct Person {
    pub name: String,
    pub email: String,
    pub github_username: String,
}

#[derive(Debug, Clone)]
pub struct Laptop {
    pub serial: String,
    pub model: String,
    pub owner_email: String,
    pub assigned_at: NaiveDate,
}

#[derive(Debug, Clone)]
pub struct MailingList {
    pub list_email: String,
    pub name: String,
    pub hidden: bool,
    pub members: Vec<String>,
    pub owners: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct RepoDay {
    pub day: NaiveDate,
    pub views: i32,
    pub unique_views: i32,
    pub clones: i32,
    pub unique_clones: i32,
}

#[derive(Debug, Clone)]
pub struct Repo {
    pub name: String,
    pub description: String,
    pub visibility: &'static str,
    pub traffic: Vec<RepoDay>,
}

#[derive(Debug, Clone, Default)]
pub struct SampleData {
    pub people: Vec<Person>,
    pub laptops: Vec<Laptop>,
    pub lists: Vec<MailingList>,
    pub repos: Vec<Repo>,
}

const FIRST: &[&str] = &[
    "Ada", "Boris", "Chiara", "Dmitri", "Esther", "Farid", "Greta", "Hiro", "Ines", "Jonas",
    "Kemi", "Lars", "Mira", "Nadia", "Oskar", "Priya", "Quentin", "Rosa", "Sven", "Tomoko", "Ugo",
    "Vera", "Wen", "Ximena", "Yusuf", "Zofia", "Amara", "Bastian", "Celine", "Diego", "Elif",
    "Fynn", "Gaia", "Hamid", "Ilse", "Jun",
];
const LAST: &[&str] = &[
    "Lindqvist",
    "Okafor",
    "Moreau",
    "Tanaka",
    "Novak",
    "Haddad",
    "Silva",
    "Kowalski",
    "Fischer",
    "Nakamura",
    "Adeyemi",
    "Rossi",
];
const MODELS: &[&str] = &[
    "MacBook Pro 14\" (M3)",
    "MacBook Air 13\" (M2)",
    "ThinkPad X1 Carbon Gen 11",
    "Dell XPS 13 Plus",
];
const LISTS: &[(&str, &str, bool)] = &[
    ("all-hands", "All hands", false),
    ("engineering", "Engineering", false),
    ("platform-team", "Platform team", false),
    ("security-incidents", "Security incidents", true),
    ("design-guild", "Design guild", false),
    ("oncall", "On-call rotation", false),
    ("social-club", "Social club", false),
];
const REPOS: &[(&str, &str, &str)] = &[
    (
        "gatehouse-demo",
        "The portal you are looking at (demo data)",
        "internal",
    ),
    ("platform-api", "Example service API", "private"),
    (
        "platform-infra",
        "Example infrastructure as code",
        "private",
    ),
    ("website", "Example public website", "public"),
    ("mobile-app", "Example mobile client", "private"),
    ("handbook", "Example employee handbook", "internal"),
];

/// A fixed-seed linear congruential generator: deterministic, good enough for demo numbers.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound.max(1)
    }
}

/// The demo data set, with traffic for the 28 days up to `today`.
pub fn generate(today: NaiveDate) -> SampleData {
    let mut rng = Lcg(0x6761_7465_686f_7573);
    let people: Vec<Person> = FIRST
        .iter()
        .enumerate()
        .map(|(i, first)| {
            let last = LAST[i % LAST.len()];
            let login = format!("{}{}", first, &last[..1]).to_ascii_lowercase();
            Person {
                name: format!("{first} {last}"),
                email: format!(
                    "{}.{}@{DOMAIN}",
                    first.to_ascii_lowercase(),
                    last.to_ascii_lowercase()
                ),
                github_username: format!("{login}-example"),
            }
        })
        .collect();

    let mut laptops = Vec::new();
    for (i, person) in people.iter().enumerate() {
        // Most people have one laptop, every fifth a second one.
        let count = if i % 5 == 0 { 2 } else { 1 };
        for n in 0..count {
            laptops.push(Laptop {
                serial: format!("DEMO-{:04}{}", 1000 + i * 7, (b'A' + n) as char),
                model: MODELS[rng.next(MODELS.len() as u64) as usize].to_string(),
                owner_email: person.email.clone(),
                assigned_at: today - Duration::days(30 + rng.next(900) as i64),
            });
        }
    }

    let lists = LISTS
        .iter()
        .enumerate()
        .map(|(li, (local, name, hidden))| {
            let members: Vec<String> = people
                .iter()
                .enumerate()
                .filter(|(pi, _)| li == 0 || (pi + li) % (li + 2) == 0)
                .map(|(_, p)| p.email.clone())
                .collect();
            let owners = vec![people[(li * 5) % people.len()].email.clone()];
            MailingList {
                list_email: format!("{local}@{DOMAIN}"),
                name: (*name).to_string(),
                hidden: *hidden,
                members,
                owners,
            }
        })
        .collect();

    let repos = REPOS
        .iter()
        .map(|(name, description, visibility)| {
            let base = 5 + rng.next(60) as i32;
            let traffic = (0..28)
                .rev()
                .map(|ago| {
                    let views = base + rng.next(40) as i32;
                    let clones = rng.next(12) as i32;
                    RepoDay {
                        day: today - Duration::days(ago),
                        views,
                        unique_views: (views / 3).max(1),
                        clones,
                        unique_clones: clones / 2,
                    }
                })
                .collect();
            Repo {
                name: (*name).to_string(),
                description: (*description).to_string(),
                visibility,
                traffic,
            }
        })
        .collect();

    SampleData {
        people,
        laptops,
        lists,
        repos,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn data() -> SampleData {
        generate(NaiveDate::from_ymd_opt(2026, 11, 24).expect("valid date"))
    }

    #[test]
    fn a_few_dozen_fictional_people_with_unique_keys() {
        let d = data();
        assert!((24..=60).contains(&d.people.len()));
        let emails: HashSet<_> = d.people.iter().map(|p| &p.email).collect();
        let logins: HashSet<_> = d
            .people
            .iter()
            .map(|p| p.github_username.to_lowercase())
            .collect();
        assert_eq!(emails.len(), d.people.len());
        assert_eq!(logins.len(), d.people.len());
        assert!(d.people.iter().all(|p| p.email.ends_with("@example.com")));
        let serials: HashSet<_> = d.laptops.iter().map(|l| &l.serial).collect();
        assert_eq!(serials.len(), d.laptops.len());
        assert!(d.laptops.len() > d.people.len());
    }

    #[test]
    fn lists_have_members_and_owners_and_one_is_hidden() {
        let d = data();
        assert!(
            d.lists
                .iter()
                .all(|l| !l.members.is_empty() && !l.owners.is_empty())
        );
        assert!(d.lists.iter().any(|l| l.hidden));
        assert_eq!(d.lists[0].members.len(), d.people.len());
    }

    #[test]
    fn generation_is_deterministic() {
        let (a, b) = (data(), data());
        assert_eq!(a.laptops[3].model, b.laptops[3].model);
        assert_eq!(a.repos[2].traffic[5].views, b.repos[2].traffic[5].views);
        assert_eq!(a.repos[0].traffic.len(), 28);
    }
}
