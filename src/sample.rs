//! Made-up directory data for dev mode, so the pages have something to show on first start.
//!
//! Everything is clearly fictional: people at `example.com` (a domain reserved for examples),
//! GitHub usernames with an `-example` suffix, serials starting `DEMO-`. The data is generated
//! deterministically (a fixed-seed generator written here, because reproducible demo data is
//! all it has to do) so screenshots and tests see the same people every time.
//!
//! Repositories belong to a made-up `example-org` and have fictional GitHub ids; they carry
//! more than a year of daily traffic and stars, with the cases the `/repos` page must show
//! well: a launch spike, a rename (history under the current name), an archived and a removed
//! repository. A demo role gives bob some of them, so dev mode shows access by role.
//!
//! Over 400 lines: the generator with its fixed tables of names, models, lists and repositories
//! (data rather than logic), and about 130 lines of tests.

use chrono::{Datelike, Duration, NaiveDate, Weekday};

pub const DOMAIN: &str = "example.com";

#[derive(Debug, Clone)]
pub struct Person {
    pub name: String,
    pub email: String,
    pub github_username: String,
    /// Left the company this many days ago; `None` while still here.
    pub departed_days_ago: Option<i64>,
}

impl Person {
    pub fn is_active(&self) -> bool {
        self.departed_days_ago.is_none()
    }
}

/// Coworkers who left, for "include people who left": (name, email's local part, days ago).
const DEPARTED: &[(&str, &str, i64)] = &[
    ("Dana Former", "dana.former", 12),
    ("Eli Gone", "eli.gone", 95),
    ("Fran Moved-On", "fran.movedon", 400),
];

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
pub struct StarDay {
    pub day: NaiveDate,
    pub stars: i32,
    pub forks: i32,
}

/// One referring site or popular path on one day (GitHub reports both for the last 14 days
/// as one list; the sample keeps a single day's).
#[derive(Debug, Clone)]
pub struct Hit {
    pub day: NaiveDate,
    /// A referring host, or a path on GitHub.
    pub key: String,
    /// A path's page title; empty for a referrer.
    pub title: String,
    pub count: i32,
    pub uniques: i32,
}

#[derive(Debug, Clone)]
pub struct Repo {
    /// GitHub's id, which a rename keeps: history belongs to the id, shown under the name.
    pub github_id: i64,
    pub name: String,
    pub description: String,
    pub visibility: &'static str,
    pub archived: bool,
    /// Gone from the organization on this day; its history is kept.
    pub removed_on: Option<NaiveDate>,
    pub stars: i32,
    pub forks: i32,
    pub traffic: Vec<RepoDay>,
    pub star_history: Vec<StarDay>,
    pub referrers: Vec<Hit>,
    pub paths: Vec<Hit>,
}

/// A role dev mode creates so that the demo users see different repositories.
#[derive(Debug, Clone)]
pub struct DemoRole {
    pub name: &'static str,
    pub description: &'static str,
    pub repo_patterns: &'static [&'static str],
    /// Assigned by address, because a demo user's account exists only once they sign in.
    pub emails: &'static [&'static str],
}

#[derive(Debug, Clone, Default)]
pub struct SampleData {
    pub people: Vec<Person>,
    pub laptops: Vec<Laptop>,
    pub lists: Vec<MailingList>,
    pub repos: Vec<Repo>,
    pub roles: Vec<DemoRole>,
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
/// How a sample repository's traffic goes over the days.
#[derive(Clone, Copy)]
enum Shape {
    /// Steady, slowly growing.
    Steady,
    /// Hardly any traffic until launch this many days ago, a spike, then a higher plateau.
    Launch(i64),
    /// Archived long ago: a trickle.
    Fading,
    /// Removed from the organization this many days ago: no traffic reported since.
    RemovedAgo(i64),
}

struct RepoSpec {
    name: &'static str,
    description: &'static str,
    visibility: &'static str,
    /// Typical weekday views at the end of the period.
    views: u64,
    shape: Shape,
}

const REPOS: &[RepoSpec] = &[
    RepoSpec {
        name: "gatehouse-demo",
        description: "The portal you are looking at (demo data)",
        visibility: "internal",
        views: 40,
        shape: Shape::Steady,
    },
    RepoSpec {
        name: "platform-api",
        description: "Example service API",
        visibility: "private",
        views: 90,
        shape: Shape::Steady,
    },
    RepoSpec {
        name: "platform-infra",
        description: "Example infrastructure as code",
        visibility: "private",
        views: 30,
        shape: Shape::Steady,
    },
    RepoSpec {
        name: "web-storefront",
        description: "Example shop front, launched recently",
        visibility: "public",
        views: 120,
        shape: Shape::Launch(20),
    },
    RepoSpec {
        name: "web-docs",
        description: "Example documentation site (renamed from docs-site, history kept)",
        visibility: "public",
        views: 70,
        shape: Shape::Steady,
    },
    RepoSpec {
        name: "web-campaign-2024",
        description: "Example campaign site, archived",
        visibility: "public",
        views: 6,
        shape: Shape::Fading,
    },
    RepoSpec {
        name: "mobile-app",
        description: "Example mobile client",
        visibility: "private",
        views: 50,
        shape: Shape::Steady,
    },
    RepoSpec {
        name: "handbook",
        description: "Example employee handbook, removed from GitHub",
        visibility: "internal",
        views: 25,
        shape: Shape::RemovedAgo(60),
    },
];

/// How many days of traffic and stars the sample repositories have: more than a year, so
/// year-over-year views have something to compare.
pub const HISTORY_DAYS: i64 = 400;

/// Fictional GitHub ids start here, far from real ones' order of magnitude today.
const FIRST_GITHUB_ID: i64 = 900_000_001;

/// Roles for the demo users (see `devidp::DEMO_USERS`): alice is an administrator and sees
/// everything anyway; bob gets the `web-*` repositories only.
const ROLES: &[DemoRole] = &[DemoRole {
    name: "web",
    description: "Demo role (dev mode): the web-* repositories",
    repo_patterns: &["web-*"],
    emails: &["bob@example.com"],
}];

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

/// The demo data set, with `HISTORY_DAYS` of repository traffic and stars up to `today`.
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
                departed_days_ago: None,
            }
        })
        .collect();
    // The made-up coworkers decide the lists below, as they always have; the demo users and
    // the people who left are added after them.
    let coworkers = people.len();
    let mut people = people;
    // The demo users sign in through the dev provider: their pages show their own data.
    people.extend(crate::devidp::DEMO_USERS.iter().map(|u| Person {
        name: u.name.to_string(),
        email: u.email.to_string(),
        github_username: format!("{}-example", u.sub),
        departed_days_ago: None,
    }));
    people.extend(DEPARTED.iter().map(|(name, local, ago)| Person {
        name: (*name).to_string(),
        email: format!("{local}@{DOMAIN}"),
        github_username: format!("{}-example", local.replace('.', "")),
        departed_days_ago: Some(*ago),
    }));

    let mut laptops = Vec::new();
    // People who left handed their laptops back.
    for (i, person) in people.iter().enumerate().filter(|(_, p)| p.is_active()) {
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
            let mut members: Vec<String> = people
                .iter()
                .enumerate()
                .filter(|(pi, p)| {
                    p.is_active() && (li == 0 || (*pi < coworkers && (pi + li) % (li + 2) == 0))
                })
                .map(|(_, p)| p.email.clone())
                .collect();
            let mut owners = vec![people[(li * 5) % coworkers].email.clone()];
            // alice is on engineering and owns the platform team's list; bob is on both and
            // owns the design guild's.
            for (demo, on, owns) in [
                ("alice@example.com", [1, 2], 2),
                ("bob@example.com", [1, 4], 4),
            ] {
                if on.contains(&li) && !members.iter().any(|m| m == demo) {
                    members.push(demo.to_string());
                }
                if li == owns {
                    owners.push(demo.to_string());
                }
            }
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
        .enumerate()
        .map(|(i, spec)| sample_repo(&mut rng, today, i, spec))
        .collect();

    SampleData {
        people,
        laptops,
        lists,
        repos,
        roles: ROLES.to_vec(),
    }
}

/// Weekday traffic is what people at work make; weekends see about a third of it.
fn weekday_factor(day: NaiveDate) -> u64 {
    match day.weekday() {
        Weekday::Sat | Weekday::Sun => 35,
        Weekday::Mon | Weekday::Fri => 90,
        _ => 100,
    }
}

fn sample_repo(rng: &mut Lcg, today: NaiveDate, index: usize, spec: &RepoSpec) -> Repo {
    let last_reported = match spec.shape {
        Shape::RemovedAgo(ago) => ago,
        _ => 0,
    };
    let mut traffic = Vec::with_capacity(HISTORY_DAYS as usize);
    for ago in (last_reported..HISTORY_DAYS).rev() {
        let day = today - Duration::days(ago);
        // Percent of the final level: a slow climb over the period, shaped per repository.
        let level: u64 = match spec.shape {
            Shape::Steady | Shape::RemovedAgo(_) => {
                60 + (40 * (HISTORY_DAYS - ago) / HISTORY_DAYS) as u64
            }
            Shape::Launch(launch) if ago > launch => 4,
            // The launch day is ten times the later plateau, halving every two days.
            Shape::Launch(launch) => 100 + 900 / (1u64 << ((launch - ago) / 2).min(10)),
            Shape::Fading => 100 + (200 * ago / HISTORY_DAYS) as u64,
        };
        let typical = spec.views * level / 100 * weekday_factor(day) / 100;
        // ±20% noise, and never below one view on a day with any interest.
        let views = (typical * (80 + rng.next(41)) / 100).max(u64::from(typical > 0)) as i32;
        let clones = (views / 8 + rng.next(3) as i32).min(views);
        traffic.push(RepoDay {
            day,
            views,
            unique_views: (views / 3).max(views.min(1)),
            clones,
            unique_clones: clones / 2,
        });
    }

    // Stars grow with the views seen so far; forks are a tenth of them.
    let total_views: i64 = traffic.iter().map(|d| i64::from(d.views)).sum();
    let target_stars = (total_views / 150) as i32;
    let mut seen = 0i64;
    let mut star_history = Vec::with_capacity(traffic.len());
    for d in &traffic {
        seen += i64::from(d.views);
        let stars = (i64::from(target_stars) * seen / total_views.max(1)) as i32;
        star_history.push(StarDay {
            day: d.day,
            stars,
            forks: stars / 10,
        });
    }
    let (stars, forks) = star_history.last().map_or((0, 0), |s| (s.stars, s.forks));

    // A day's referrers and popular paths for the busier repositories.
    let (mut referrers, mut paths) = (Vec::new(), Vec::new());
    if let Some(last) = traffic.last().filter(|d| d.views >= 20) {
        for (n, host) in [
            "github.com",
            "google.com",
            "duckduckgo.com",
            "intranet.example.com",
        ]
        .iter()
        .enumerate()
        {
            let count = last.views / (n as i32 + 2);
            referrers.push(Hit {
                day: last.day,
                key: (*host).to_string(),
                title: String::new(),
                count,
                uniques: (count / 2).max(count.min(1)),
            });
        }
        for (n, (path, title)) in [
            ("", "README"),
            ("/blob/main/CONTRIBUTING.md", "Contributing"),
            ("/issues", "Issues"),
            ("/pulls", "Pull requests"),
        ]
        .iter()
        .enumerate()
        {
            let count = last.views / (n as i32 + 1);
            paths.push(Hit {
                day: last.day,
                key: format!("/example-org/{}{path}", spec.name),
                title: format!("{title} · example-org/{}", spec.name),
                count,
                uniques: (count / 3).max(count.min(1)),
            });
        }
    }

    Repo {
        github_id: FIRST_GITHUB_ID + index as i64,
        name: spec.name.to_string(),
        description: spec.description.to_string(),
        visibility: spec.visibility,
        archived: matches!(spec.shape, Shape::Fading),
        removed_on: match spec.shape {
            Shape::RemovedAgo(ago) => Some(today - Duration::days(ago)),
            _ => None,
        },
        stars,
        forks,
        traffic,
        star_history,
        referrers,
        paths,
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
        let active = d.people.iter().filter(|p| p.is_active()).count();
        assert_eq!(d.lists[0].members.len(), active, "everyone still here");
    }

    #[test]
    fn the_demo_users_have_data_of_their_own_and_some_coworkers_left() {
        let d = data();
        for demo in crate::devidp::DEMO_USERS {
            let person = d
                .people
                .iter()
                .find(|p| p.email == demo.email)
                .expect("in the directory");
            assert!(person.is_active());
            assert!(!person.github_username.is_empty());
            assert!(d.laptops.iter().any(|l| l.owner_email == demo.email));
            let on = |l: &&MailingList| l.members.iter().any(|m| m == demo.email);
            let owns = |l: &&MailingList| l.owners.iter().any(|m| m == demo.email);
            assert!(d.lists.iter().filter(on).count() >= 2, "{}", demo.email);
            assert!(d.lists.iter().any(|l| owns(&l) && on(&l)), "{}", demo.email);
        }
        let left: Vec<&Person> = d.people.iter().filter(|p| !p.is_active()).collect();
        assert!(left.len() >= 3);
        for p in left {
            assert!(!d.laptops.iter().any(|l| l.owner_email == p.email));
            assert!(!d.lists.iter().any(|l| l.members.contains(&p.email)));
        }
    }

    #[test]
    fn generation_is_deterministic() {
        let (a, b) = (data(), data());
        assert_eq!(a.laptops[3].model, b.laptops[3].model);
        assert_eq!(a.repos[2].traffic[5].views, b.repos[2].traffic[5].views);
        assert_eq!(a.repos[0].traffic.len(), HISTORY_DAYS as usize);
        assert_eq!(
            a.repos[3].star_history[100].stars,
            b.repos[3].star_history[100].stars
        );
    }

    #[test]
    fn repositories_have_a_year_of_traffic_with_weekends_quieter() {
        let d = data();
        assert!((6..=12).contains(&d.repos.len()));
        let names: HashSet<_> = d.repos.iter().map(|r| &r.name).collect();
        let ids: HashSet<_> = d.repos.iter().map(|r| r.github_id).collect();
        assert_eq!(names.len(), d.repos.len());
        assert_eq!(ids.len(), d.repos.len());
        let steady = &d.repos[1];
        assert!(steady.traffic.len() > 365);
        let mean = |weekend: bool| {
            let days: Vec<i64> = steady
                .traffic
                .iter()
                .filter(|t| matches!(t.day.weekday(), Weekday::Sat | Weekday::Sun) == weekend)
                .map(|t| i64::from(t.views))
                .collect();
            days.iter().sum::<i64>() / days.len() as i64
        };
        assert!(mean(false) > 2 * mean(true), "weekdays are busier");
        for r in &d.repos {
            assert!(
                r.traffic
                    .iter()
                    .all(|t| t.unique_views <= t.views && t.clones <= t.views)
            );
            assert!(r.star_history.windows(2).all(|w| w[0].stars <= w[1].stars));
            assert_eq!(r.star_history.last().map(|s| s.stars), Some(r.stars));
        }
    }

    #[test]
    fn one_launch_one_archived_one_removed_and_some_referrers() {
        let d = data();
        let launch = d
            .repos
            .iter()
            .map(|r| r.traffic.iter().map(|t| t.views).max().unwrap_or(0))
            .max()
            .unwrap_or(0);
        assert!(launch > 500, "a launch spike stands out: {launch}");
        assert_eq!(d.repos.iter().filter(|r| r.archived).count(), 1);
        let removed: Vec<_> = d.repos.iter().filter(|r| r.removed_on.is_some()).collect();
        assert_eq!(removed.len(), 1);
        assert!(
            removed[0].traffic.last().map(|t| t.day)
                < removed[0].removed_on.map(|d| d + Duration::days(1)),
            "no traffic after removal"
        );
        assert!(d.repos.iter().filter(|r| !r.referrers.is_empty()).count() >= 3);
        assert!(d.repos.iter().filter(|r| !r.paths.is_empty()).count() >= 3);
    }

    #[test]
    fn demo_roles_give_bob_some_repositories_and_not_others() {
        let d = data();
        let bob = crate::devidp::DEMO_USERS
            .iter()
            .find(|u| u.sub == "bob")
            .map(|u| u.email);
        let bobs: Vec<_> = d
            .roles
            .iter()
            .filter(|r| r.emails.iter().any(|e| Some(*e) == bob))
            .collect();
        assert!(!bobs.is_empty());
        let patterns: Vec<crate::repos::RepoPattern> = bobs
            .iter()
            .flat_map(|r| r.repo_patterns.iter())
            .map(|p| crate::repos::RepoPattern::parse(p).unwrap_or_else(|e| panic!("{p}: {e}")))
            .collect();
        let sees = |name: &str| patterns.iter().any(|p| p.matches("", name));
        let seen = d.repos.iter().filter(|r| sees(&r.name)).count();
        assert!(seen >= 2 && seen < d.repos.len(), "{seen}");
    }
}
