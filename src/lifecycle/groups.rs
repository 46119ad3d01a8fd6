//! Groups beyond the claim cap. Okta puts at most 100 groups in a token and Entra ID at most
//! 200 (then a `_claim_names` overage marker instead of the list): the rest are silently
//! missing, and with them admin rights and group roles. A list at the cap, an overage marker,
//! or no list at all while admin groups are configured is completed from the Okta Users API
//! when it is configured; otherwise the sign-in goes ahead with what was sent, and the user
//! is marked "groups may be incomplete" (logged once, shown on the admin user page).

use super::okta::OktaClient;
use crate::auth::verify::IdClaims;
use crate::state::AppState;
use crate::store::User;

/// Okta's cap on a groups claim.
pub const OKTA_CAP: usize = 100;

/// The groups a sign-in goes on with, and the note to keep on the user (`None`: complete).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completed {
    pub groups: Vec<String>,
    pub note: Option<String>,
    /// Where the list came from, for the log.
    pub from_users_api: bool,
}

/// What the token (or userinfo) said about groups.
pub struct Claimed<'a> {
    pub groups: Option<&'a [String]>,
    /// Entra ID named `groups` among its distributed claims.
    pub overage: bool,
    /// Admin groups are configured (so a missing list matters).
    pub admin_groups: bool,
}

/// Why the claimed list cannot be trusted to be whole; `None` when it can.
pub fn doubt(claimed: &Claimed<'_>) -> Option<String> {
    if claimed.overage {
        return Some(
            "the provider left the groups out of the token (Entra ID's overage marker, \
             _claim_names: more groups than a token holds); Gatehouse does not read Microsoft \
             Graph: have the app registration send only the groups assigned to it"
                .into(),
        );
    }
    match claimed.groups {
        Some(list) if list.len() >= OKTA_CAP => Some(format!(
            "the token carried {} groups, the provider's cap: any beyond it are missing",
            list.len()
        )),
        None if claimed.admin_groups => Some(
            "the token carried no groups claim, so admin and role mappings by group cannot \
             apply (is the groups scope or claim configured at the provider?)"
                .into(),
        ),
        _ => None,
    }
}

/// The groups a sign-in goes on with: the token's, completed from the Users API when they
/// are in doubt and the API serves this issuer.
pub async fn at_sign_in(state: &AppState, claims: &IdClaims) -> Completed {
    let okta = state
        .auth
        .okta
        .as_deref()
        .filter(|okta| super::serves(okta.org_url(), &claims.iss));
    let claimed = Claimed {
        groups: claims.groups.as_ref().map(|g| g.as_slice()),
        overage: claims
            .claim_names
            .as_ref()
            .is_some_and(|names| names.get("groups").is_some()),
        admin_groups: !state.auth.admin_groups.is_empty(),
    };
    let completed = complete(&claimed, okta, &claims.sub).await;
    if completed.from_users_api {
        tracing::info!(
            count = completed.groups.len(),
            "groups completed from the Okta Users API"
        );
    }
    completed
}

/// Keeps (or clears) the user's "groups may be incomplete" note; a new note is logged once.
pub async fn keep_note(state: &AppState, user: &User, note: Option<&str>) {
    let db = state.store.db();
    let before = super::store::get(&db, user.id).await;
    if before
        .as_ref()
        .is_ok_and(|b| b.groups_note.as_deref() == note)
    {
        return;
    }
    if let Some(note) = note {
        tracing::warn!(user = ?user.email, note, "groups may be incomplete");
    }
    if let Err(e) = super::store::note_groups(&db, user.id, note).await {
        tracing::warn!(error = %e, "the note on the user's groups could not be kept");
    }
}

/// Completes the list from the Users API when it is in doubt and the API is there.
pub async fn complete(
    claimed: &Claimed<'_>,
    okta: Option<&OktaClient>,
    subject: &str,
) -> Completed {
    let as_sent = claimed.groups.map(<[String]>::to_vec).unwrap_or_default();
    let Some(reason) = doubt(claimed) else {
        return Completed {
            groups: as_sent,
            note: None,
            from_users_api: false,
        };
    };
    let Some(okta) = okta else {
        return Completed {
            groups: as_sent,
            note: Some(reason),
            from_users_api: false,
        };
    };
    match okta.groups(subject).await {
        Ok(groups) => Completed {
            groups,
            note: None,
            from_users_api: true,
        },
        Err(e) => Completed {
            groups: as_sent,
            note: Some(format!(
                "{reason}; completing them from the Okta Users API failed: {e}"
            )),
            from_users_api: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("g{i}")).collect()
    }

    #[test]
    fn a_list_at_the_cap_an_overage_marker_or_no_list_is_in_doubt() {
        let short = names(99);
        let full = names(100);
        let claimed = |groups, overage, admin_groups| Claimed {
            groups,
            overage,
            admin_groups,
        };
        assert_eq!(doubt(&claimed(Some(&short), false, true)), None);
        assert!(
            doubt(&claimed(Some(&full), false, true))
                .is_some_and(|d| d.contains("100 groups, the provider's cap"))
        );
        assert!(doubt(&claimed(None, true, true)).is_some_and(|d| d.contains("_claim_names")));
        assert!(doubt(&claimed(None, false, true)).is_some_and(|d| d.contains("no groups claim")));
        assert_eq!(doubt(&claimed(None, false, false)), None);
    }
}
