//! Who a request is from, as the identity layers (in `auth`) found it: a signed-in user or a
//! verified access token. The shell's own layers (CSRF, rate limits, the audit line) read only
//! this, so they do not depend on how identity is established.

#[derive(Debug, Clone)]
pub struct Principal {
    /// What a rate limit counts against: `user:{id}`, or `token:{sub, else client}`.
    pub key: String,
    /// Who, for the audit line: the user's email, or the token's subject or client.
    pub label: String,
    /// The signed-in user's id, for audit rows; none for a token.
    pub user_id: Option<i64>,
    /// The session's CSRF token; none for a token (no cookie, so nothing to forge).
    pub csrf: Option<String>,
}

/// The session store failed for this request, so who sent it is unknown: public pages carry
/// on signed out, protected ones answer 503, and CSRF refuses state changes (it cannot tell
/// whether the cookie names a live session whose token must be checked).
#[derive(Clone)]
pub struct SessionStoreDown(pub String);
