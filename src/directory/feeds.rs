//! Data feeds: full snapshots of laptops and distribution lists from other systems,
//! through `gatehouse import …` or the write API. Both call `parse_*` (CSV) or build raw rows
//! from JSON, then `validate_*`, then the store's `replace_*`, which plans with `plan_*` and
//! checks `SnapshotLimits` inside its transaction. Everything here is pure.
//!
//! Over 400 lines because of its tests (about 160 lines, at the end): parsing, validation
//! and planning of both feeds are one pipeline, tested together.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::normalize_email;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Feed {
    Assets,
    DistributionLists,
}

impl Feed {
    pub fn as_str(self) -> &'static str {
        match self {
            Feed::Assets => "assets",
            Feed::DistributionLists => "distribution-lists",
        }
    }
}

/// Where a bad row is: a CSV line number (the header is line 1) or a JSON array index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    Line(u64),
    Index(usize),
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Position::Line(n) => write!(f, "line {n}"),
            Position::Index(n) => write!(f, "row {n}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    #[serde(flatten)]
    pub at: Position,
    pub reason: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.at, self.reason)
    }
}

/// One row as sent, before validation; every field optional so a missing one is reported as
/// such rather than as a parse failure of the whole file.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawAsset {
    pub serial: Option<String>,
    pub model: Option<String>,
    pub owner_email: Option<String>,
    pub assigned_at: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawListRow {
    pub list_email: Option<String>,
    pub name: Option<String>,
    pub member_email: Option<String>,
    pub role: Option<String>,
    pub hidden: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct AssetRow {
    pub serial: String,
    pub model: String,
    pub owner_email: String,
    pub assigned_at: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListInfo {
    pub name: String,
    pub hidden: bool,
}

/// A whole distribution-list snapshot: the lists, and who is on or owns each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListSnapshot {
    pub lists: BTreeMap<String, ListInfo>,
    /// (list_email, member_email, role)
    pub members: BTreeSet<(String, String, String)>,
}

const ASSET_COLUMNS: &[&str] = &["serial", "model", "owner_email"];
const LIST_COLUMNS: &[&str] = &["list_email", "name", "member_email", "role"];

/// Reads a CSV with a header naming at least `required` columns (any order, extra columns
/// refused so a misspelt optional column is not silently ignored).
fn read_csv<T: for<'de> Deserialize<'de>>(
    bytes: &[u8],
    required: &[&str],
    optional: &[&str],
) -> Result<Vec<(Position, T)>, Vec<RowError>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(bytes);
    let header_error = |reason: String| {
        vec![RowError {
            at: Position::Line(1),
            reason,
        }]
    };
    let headers = reader
        .headers()
        .map_err(|e| header_error(format!("unreadable header: {e}")))?
        .clone();
    let names: Vec<&str> = headers.iter().collect();
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|c| !names.contains(c))
        .collect();
    if !missing.is_empty() {
        return Err(header_error(format!(
            "the header lacks column(s) {}; expected {}",
            missing.join(", "),
            required
                .iter()
                .chain(optional)
                .copied()
                .collect::<Vec<_>>()
                .join(",")
        )));
    }
    if let Some(unknown) = names
        .iter()
        .find(|n| !required.contains(n) && !optional.contains(n))
    {
        return Err(header_error(format!("unknown column '{unknown}'")));
    }
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for record in reader.records() {
        match record {
            Ok(record) => {
                let line = record.position().map_or(0, csv::Position::line);
                match record.deserialize::<T>(Some(&headers)) {
                    Ok(row) => rows.push((Position::Line(line), row)),
                    Err(e) => errors.push(RowError {
                        at: Position::Line(line),
                        reason: e.to_string(),
                    }),
                }
            }
            Err(e) => errors.push(RowError {
                at: Position::Line(e.position().map_or(0, csv::Position::line)),
                reason: e.to_string(),
            }),
        }
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}

pub fn parse_assets(csv: &[u8]) -> Result<Vec<(Position, RawAsset)>, Vec<RowError>> {
    read_csv(csv, ASSET_COLUMNS, &["assigned_at"])
}

pub fn parse_lists(csv: &[u8]) -> Result<Vec<(Position, RawListRow)>, Vec<RowError>> {
    read_csv(csv, LIST_COLUMNS, &["hidden"])
}

fn required(value: Option<&String>, column: &str) -> Result<String, String> {
    match value.map(|v| v.trim()).filter(|v| !v.is_empty()) {
        Some(v) if v.chars().count() > 320 => {
            Err(format!("{column} is longer than 320 characters"))
        }
        // PostgreSQL's text type cannot hold a NUL; other control characters are kept.
        Some(v) if v.contains('\0') => Err(format!("{column} contains a NUL character")),
        Some(v) => Ok(v.to_string()),
        None => Err(format!("{column} is empty")),
    }
}

fn email(value: Option<&String>, column: &str) -> Result<String, String> {
    let v = normalize_email(&required(value, column)?);
    let valid = v.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
    }) && !v.contains(char::is_whitespace)
        && v.matches('@').count() == 1;
    if valid {
        Ok(v)
    } else {
        Err(format!("{column} '{v}' is not an email address"))
    }
}

fn boolean(value: Option<&String>, column: &str) -> Result<bool, String> {
    match value.map(|v| v.trim().to_lowercase()).as_deref() {
        None | Some("" | "false" | "0" | "no") => Ok(false),
        Some("true" | "1" | "yes") => Ok(true),
        Some(other) => Err(format!("{column} '{other}' is not true/false")),
    }
}

/// Every row checked; all problems reported at once, by position.
pub fn validate_assets(rows: Vec<(Position, RawAsset)>) -> Result<Vec<AssetRow>, Vec<RowError>> {
    let mut out = Vec::with_capacity(rows.len());
    let mut errors = Vec::new();
    let mut seen: HashMap<String, Position> = HashMap::new();
    for (at, raw) in rows {
        let row = (|| {
            let serial = required(raw.serial.as_ref(), "serial")?;
            let model = required(raw.model.as_ref(), "model")?;
            let owner_email = email(raw.owner_email.as_ref(), "owner_email")?;
            let assigned_at = match raw.assigned_at.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(d) => Some(
                    NaiveDate::parse_from_str(d, "%Y-%m-%d")
                        .map_err(|_| format!("assigned_at '{d}' is not a date like 2026-11-24"))?,
                ),
            };
            if let Some(first) = seen.get(&serial) {
                return Err(format!("serial {serial} already appears at {first}"));
            }
            seen.insert(serial.clone(), at);
            Ok(AssetRow {
                serial,
                model,
                owner_email,
                assigned_at,
            })
        })();
        match row {
            Ok(r) => out.push(r),
            Err(reason) => errors.push(RowError { at, reason }),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

pub fn validate_lists(rows: Vec<(Position, RawListRow)>) -> Result<ListSnapshot, Vec<RowError>> {
    let mut snapshot = ListSnapshot::default();
    let mut errors = Vec::new();
    let mut first_seen: HashMap<String, Position> = HashMap::new();
    for (at, raw) in rows {
        let row = (|| {
            let list_email = email(raw.list_email.as_ref(), "list_email")?;
            let name = required(raw.name.as_ref(), "name")?;
            let member_email = email(raw.member_email.as_ref(), "member_email")?;
            let role = match raw
                .role
                .as_deref()
                .map(|r| r.trim().to_lowercase())
                .as_deref()
            {
                Some("member") => "member",
                Some("owner") => "owner",
                _ => return Err("role must be member or owner".to_string()),
            };
            let hidden = boolean(raw.hidden.as_ref(), "hidden")?;
            let info = ListInfo { name, hidden };
            // A list's name and visibility are repeated on each of its rows: they must agree.
            match snapshot.lists.get(&list_email) {
                Some(existing) if *existing != info => {
                    let first = first_seen.get(&list_email).copied().unwrap_or(at);
                    return Err(format!(
                        "{list_email} has name '{}' hidden={} at {first}, but '{}' hidden={} here",
                        existing.name, existing.hidden, info.name, info.hidden
                    ));
                }
                Some(_) => {}
                None => {
                    first_seen.insert(list_email.clone(), at);
                    snapshot.lists.insert(list_email.clone(), info);
                }
            }
            if !snapshot.members.insert((
                list_email.clone(),
                member_email.clone(),
                role.to_string(),
            )) {
                return Err(format!("{member_email} is already {role} of {list_email}"));
            }
            Ok(())
        })();
        if let Err(reason) = row {
            errors.push(RowError { at, reason });
        }
    }
    if errors.is_empty() {
        Ok(snapshot)
    } else {
        Err(errors)
    }
}

/// What applying a snapshot changes, in rows of the feed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Counts {
    pub existing: usize,
    pub added: usize,
    pub changed: usize,
    pub removed: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssetPlan {
    pub add: Vec<AssetRow>,
    pub change: Vec<AssetRow>,
    pub remove: Vec<String>,
    pub counts: Counts,
}

pub fn plan_assets(existing: &[AssetRow], incoming: &[AssetRow]) -> AssetPlan {
    let before: HashMap<&str, &AssetRow> =
        existing.iter().map(|a| (a.serial.as_str(), a)).collect();
    let after: BTreeSet<&str> = incoming.iter().map(|a| a.serial.as_str()).collect();
    let mut plan = AssetPlan::default();
    for row in incoming {
        match before.get(row.serial.as_str()) {
            None => plan.add.push(row.clone()),
            Some(old) if *old != row => plan.change.push(row.clone()),
            Some(_) => {}
        }
    }
    plan.remove = existing
        .iter()
        .filter(|a| !after.contains(a.serial.as_str()))
        .map(|a| a.serial.clone())
        .collect();
    plan.counts = Counts {
        existing: existing.len(),
        added: plan.add.len(),
        changed: plan.change.len(),
        removed: plan.remove.len(),
    };
    plan
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPlan {
    /// Lists to insert or update (name, hidden).
    pub upsert_lists: Vec<(String, ListInfo)>,
    pub remove_lists: Vec<String>,
    pub add_members: Vec<(String, String, String)>,
    pub remove_members: Vec<(String, String, String)>,
    /// Counted in membership rows (the feed's rows); a list whose name or visibility changed
    /// counts as changed.
    pub counts: Counts,
}

pub fn plan_lists(existing: &ListSnapshot, incoming: &ListSnapshot) -> ListPlan {
    let mut plan = ListPlan::default();
    let mut changed_lists = 0;
    for (email, info) in &incoming.lists {
        match existing.lists.get(email) {
            Some(old) if old == info => {}
            Some(_) => {
                changed_lists += 1;
                plan.upsert_lists.push((email.clone(), info.clone()));
            }
            None => plan.upsert_lists.push((email.clone(), info.clone())),
        }
    }
    plan.remove_lists = existing
        .lists
        .keys()
        .filter(|l| !incoming.lists.contains_key(*l))
        .cloned()
        .collect();
    plan.add_members = incoming
        .members
        .difference(&existing.members)
        .cloned()
        .collect();
    plan.remove_members = existing
        .members
        .difference(&incoming.members)
        .cloned()
        .collect();
    plan.counts = Counts {
        existing: existing.members.len(),
        added: plan.add_members.len(),
        changed: changed_lists,
        removed: plan.remove_members.len(),
    };
    plan
}

/// The guard against a truncated or wrong export wiping the directory.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SnapshotLimits {
    /// Largest share of existing rows one snapshot may remove (`GATEHOUSE_SYNC_MAX_DEPARTED`).
    pub max_removed_share: f64,
    pub force: bool,
    pub dry_run: bool,
}

impl SnapshotLimits {
    /// `Err` explains the refusal.
    pub fn check(&self, counts: &Counts) -> Result<(), String> {
        if self.force || counts.existing == 0 {
            return Ok(());
        }
        #[allow(clippy::cast_precision_loss)]
        let share = counts.removed as f64 / counts.existing as f64;
        if share > self.max_removed_share {
            return Err(format!(
                "this snapshot would remove {} of {} existing rows ({:.0}%), more than the \
                 allowed {:.0}% (GATEHOUSE_SYNC_MAX_DEPARTED); nothing was changed. If the \
                 export is right, apply it with --force",
                counts.removed,
                counts.existing,
                share * 100.0,
                self.max_removed_share * 100.0
            ));
        }
        Ok(())
    }
}

/// What a snapshot did (or, dry or refused, would do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SnapshotOutcome {
    pub feed: Feed,
    #[serde(flatten)]
    pub counts: Counts,
    pub applied: bool,
    /// Why it was not applied when it was refused.
    pub refused: Option<String>,
}

impl SnapshotOutcome {
    /// The outcome of a plan before anything is written: refused past the limits.
    pub fn planned(feed: Feed, counts: Counts, limits: &SnapshotLimits) -> Self {
        SnapshotOutcome {
            feed,
            counts,
            applied: false,
            refused: limits.check(&counts).err(),
        }
    }

    /// Whether the store should roll back instead of writing: refused, or only a dry run.
    pub fn writes_nothing(&self, limits: &SnapshotLimits) -> bool {
        self.refused.is_some() || limits.dry_run
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assets(csv: &str) -> Result<Vec<AssetRow>, Vec<RowError>> {
        validate_assets(parse_assets(csv.as_bytes())?)
    }

    #[test]
    fn assets_parse_with_optional_date_and_any_column_order() {
        let rows = assets(
            "owner_email,serial,model,assigned_at\n\
             Ada@Example.com , C02X1 , MacBook Pro 14,2025-01-02\n\
             bo@example.com,PF3Y2,ThinkPad X1,\n",
        )
        .expect("valid");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].owner_email, "ada@example.com");
        assert_eq!(rows[0].serial, "C02X1");
        assert_eq!(rows[0].assigned_at, NaiveDate::from_ymd_opt(2025, 1, 2));
        assert_eq!(rows[1].assigned_at, None);
    }

    #[test]
    fn every_bad_row_is_reported_by_line() {
        let errors = assets(
            "serial,model,owner_email,assigned_at\n\
             A1,Mac,ada@example.com,2025-01-02\n\
             ,Mac,ada@example.com,\n\
             A2,Mac,not-an-email,\n\
             A3,Mac,ada@example.com,yesterday\n\
             A1,Mac,bo@example.com,\n",
        )
        .expect_err("invalid");
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert!(
            lines[0].starts_with("line 3: serial is empty"),
            "{lines:#?}"
        );
        assert!(lines[1].starts_with("line 4: owner_email 'not-an-email'"));
        assert!(lines[2].starts_with("line 5: assigned_at 'yesterday'"));
        assert!(lines[3].starts_with("line 6: serial A1 already appears at line 2"));
    }

    #[test]
    fn headers_are_checked() {
        let e = assets("serial,model\nA,B\n").expect_err("missing column");
        assert!(e[0].to_string().contains("owner_email"), "{e:?}");
        let e = assets("serial,model,owner_email,colour\nA,B,c@d.ef,red\n").expect_err("extra");
        assert!(e[0].to_string().contains("unknown column 'colour'"));
        let e = assets("serial,model,owner_email\nA,B\n").expect_err("short row");
        assert!(e[0].to_string().starts_with("line 2"), "{e:?}");
    }

    #[test]
    fn lists_group_rows_and_insist_on_consistency() {
        let rows = parse_lists(
            b"list_email,name,member_email,role,hidden\n\
              eng@example.com,Engineering,ada@example.com,member,\n\
              eng@example.com,Engineering,bo@example.com,owner,false\n\
              s@example.com,Secret,ada@example.com,member,true\n",
        )
        .expect("parses");
        let snap = validate_lists(rows).expect("valid");
        assert_eq!(snap.lists.len(), 2);
        assert!(snap.lists["s@example.com"].hidden);
        assert_eq!(snap.members.len(), 3);

        let rows = parse_lists(
            b"list_email,name,member_email,role\n\
              eng@example.com,Engineering,ada@example.com,member\n\
              eng@example.com,Engineers,bo@example.com,member\n\
              eng@example.com,Engineering,ada@example.com,member\n\
              eng@example.com,Engineering,cy@example.com,boss\n",
        )
        .expect("parses");
        let errors: Vec<String> = validate_lists(rows)
            .expect_err("invalid")
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(errors.len(), 3, "{errors:#?}");
        assert!(errors[0].starts_with("line 3: eng@example.com has name 'Engineering'"));
        assert!(errors[1].starts_with("line 4: ada@example.com is already member"));
        assert!(errors[2].starts_with("line 5: role must be member or owner"));
    }

    fn asset(serial: &str, owner: &str) -> AssetRow {
        AssetRow {
            serial: serial.into(),
            model: "Mac".into(),
            owner_email: owner.into(),
            assigned_at: None,
        }
    }

    #[test]
    fn plans_count_added_changed_removed() {
        let before = vec![
            asset("A", "a@x.io"),
            asset("B", "b@x.io"),
            asset("C", "c@x.io"),
        ];
        let after = vec![
            asset("A", "a@x.io"),
            asset("B", "z@x.io"),
            asset("D", "d@x.io"),
        ];
        let plan = plan_assets(&before, &after);
        assert_eq!(
            plan.counts,
            Counts {
                existing: 3,
                added: 1,
                changed: 1,
                removed: 1
            }
        );
        assert_eq!(plan.remove, vec!["C".to_string()]);
        assert_eq!(plan_assets(&after, &after).counts.added, 0);
    }

    #[test]
    fn the_removal_guard() {
        let limits = SnapshotLimits {
            max_removed_share: 0.2,
            force: false,
            dry_run: false,
        };
        let counts = |existing, removed| Counts {
            existing,
            removed,
            ..Counts::default()
        };
        assert!(
            limits.check(&counts(10, 2)).is_ok(),
            "exactly 20% is allowed"
        );
        let refusal = limits.check(&counts(10, 3)).expect_err("30% refused");
        assert!(
            refusal.contains("3 of 10") && refusal.contains("--force"),
            "{refusal}"
        );
        assert!(limits.check(&counts(0, 0)).is_ok(), "a first import");
        assert!(
            limits.check(&counts(5, 5)).is_err(),
            "an empty snapshot wipes nothing"
        );
        let forced = SnapshotLimits {
            force: true,
            ..limits
        };
        assert!(forced.check(&counts(5, 5)).is_ok());
    }
}
