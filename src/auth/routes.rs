//! Sign-in, its callback and sign-out.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use serde::Deserialize;
use serde_json::json;

use super::oidc::{CallbackParams, LoginError};
use super::session::NewSession;
use crate::state::AppState;
use crate::store::{AuditEvent, UserLogin};
use crate::web::client_ip::{ClientIp, client_ip};
use crate::web::error::AppError;
use crate::web::extract::Query;
use crate::web::pages::hop_page;
use crate::web::routes::Route;
use axum::routing::{get, post};

pub const LOGIN_COOKIE: &str = "gatehouse_login";

/// A one-time "you are signed out" for the start page. A cookie, because the way back may pass
/// through the provider's logout, which carries nothing of ours; it says nothing but that.
pub const SIGNED_OUT_COOKIE: &str = "gatehouse_signed_out";

/// Clears the session cookie. Over https its name carries the `__Host-` prefix, and a browser
/// takes a `Set-Cookie` for such a name only with `Secure`, the removal included.
pub fn session_cookie_removal(state: &AppState) -> Cookie<'static> {
    Cookie::build(state.auth.session_cookie())
        .path("/")
        .secure(state.auth.secure_cookies)
        .build()
}

fn signed_out_note(secure: bool) -> Cookie<'static> {
    Cookie::build((SIGNED_OUT_COOKIE, "1"))
        .path("/")
        .http_only(true)
        .secure(secure)
        // Lax: it must come back on the provider's cross-site redirect to the start page.
        .same_site(SameSite::Lax)
        .max_age(time::Duration::seconds(300))
        .build()
}

pub fn routes() -> Vec<Route> {
    vec![
        Route::page("/auth/login", &["GET"], get(start_login))
            .public()
            .rule("auth.login"),
        Route::page("/auth/callback", &["GET"], get(finish_login))
            .public()
            .rule("auth.callback"),
        Route::page("/auth/logout", &["POST"], post(logout)).public(),
        // The provider's server calls it, with no cookie: nothing for CSRF to protect.
        Route::page(
            "/auth/backchannel-logout",
            &["POST"],
            post(super::backchannel::backchannel_logout),
        )
        .public()
        .json()
        .rule("auth.backchannel"),
    ]
}
const DEFAULT_NEXT: &str = "/profile";

/// Only a same-site relative path is a place to go after sign-in: `/x`, never `//host`,
/// `/\host`, a scheme, or anything with control characters.
pub fn safe_next(next: Option<&str>) -> String {
    let Some(next) = next else {
        return DEFAULT_NEXT.into();
    };
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control() || c == '\\')
        && next.len() <= 2048;
    if ok {
        next.to_string()
    } else {
        DEFAULT_NEXT.into()
    }
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

pub async fn start_login(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Query(query): Query<LoginQuery>,
) -> Result<Response, AppError> {
    // The login cookie and the callback live on PUBLIC_URL's host: start there.
    let public = &state.config.public_url;
    let expected_host = match public.port() {
        Some(p) => format!("{}:{p}", public.host_str().unwrap_or_default()),
        None => public.host_str().unwrap_or_default().to_string(),
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if !host.eq_ignore_ascii_case(&expected_host) {
        let target = format!(
            "{}{}",
            public.as_str().trim_end_matches('/'),
            uri.path_and_query().map_or("/auth/login", |p| p.as_str())
        );
        return Ok(Redirect::to(&target).into_response());
    }
    begin_sign_in(&state, safe_next(query.next.as_deref()), false).await
}

/// Sends the browser to the provider (303) with a new login transaction, whose id rides in
/// a short-lived cookie to the callback; `fresh` makes the provider authenticate again.
pub async fn begin_sign_in(
    state: &AppState,
    next: String,
    fresh: bool,
) -> Result<Response, AppError> {
    let (url, tx) = state
        .auth
        .oidc
        .begin(next, fresh)
        .await
        .map_err(|e| AppError::Unavailable(format!("{e}. Please try again in a moment.")))?;
    let id = state
        .auth
        .sessions
        .save_login(&tx)
        .await
        .map_err(|e| AppError::Unavailable(e.to_string()))?;
    let cookie = Cookie::build((LOGIN_COOKIE, id))
        .path("/auth")
        .http_only(true)
        .secure(state.auth.secure_cookies)
        // Lax: it must come back on the provider's cross-site top-level redirect.
        .same_site(SameSite::Lax)
        .max_age(time::Duration::seconds(600))
        .build();
    Ok((CookieJar::new().add(cookie), Redirect::to(&url)).into_response())
}

pub async fn finish_login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    jar: CookieJar,
    Query(params): Query<CallbackParams>,
) -> Result<Response, AppError> {
    let ip = client_ip(Some(peer), &headers, &state.config.trusted_proxies).map(|i| i.to_string());
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let cleared = jar
        .clone()
        .remove(Cookie::build(LOGIN_COOKIE).path("/auth"));
    let outcome = async {
        let id = jar
            .get(LOGIN_COOKIE)
            .map(|c| c.value().to_string())
            .ok_or(LoginError::UnknownTransaction)?;
        let tx = state
            .auth
            .sessions
            .take_login(&id)
            .await
            .map_err(|e| LoginError::SessionStorage(e.to_string()))?
            .ok_or(LoginError::UnknownTransaction)?;
        let verified = state.auth.oidc.finish(&tx, &params).await?;
        Ok::<_, LoginError>((tx, verified))
    }
    .await;
    let (tx, verified) = match outcome {
        Ok(ok) => ok,
        Err(e) => {
            tracing::warn!(reason = e.code(), client_ip = ?ip, error = %e, "sign-in failed");
            // The code's first part only: a provider's error text follows a colon, and any
            // text as a label value would be a new series kept forever.
            let reason = e.code().split(':').next().unwrap_or_default().to_string();
            metrics::counter!("gatehouse_sign_ins_total", "outcome" => "failure", "reason" => reason)
                .increment(1);
            let _ = crate::store::audit::record(
                &state.store.db(),
                &AuditEvent {
                    kind: "login",
                    outcome: "failure",
                    client_ip: ip.clone(),
                    request_id,
                    details: json!({ "reason": e.code(), "message": e.to_string() }),
                    ..AuditEvent::default()
                },
            )
            .await;
            let page = match e {
                LoginError::ProviderUnavailable(m) => AppError::Unavailable(format!(
                    "The identity provider could not be reached ({m}). Please try again."
                )),
                LoginError::SessionStorage(m) => {
                    AppError::Unavailable(format!("{m}. Please try again in a moment."))
                }
                LoginError::UnknownTransaction => {
                    AppError::SignInFailed("This sign-in has expired or was already used.".into())
                }
                LoginError::ProviderError { error, .. } if error == "access_denied" => {
                    AppError::SignInFailed("The identity provider did not let you in.".into())
                }
                other => {
                    AppError::SignInFailed(format!("Sign-in could not be completed: {other}."))
                }
            };
            return Ok((cleared, page).into_response());
        }
    };
    let claims = verified.claims;
    let completed = crate::lifecycle::groups::at_sign_in(&state, &claims).await;
    let groups = completed.groups;
    let user = super::users::upsert(
        &state.store.db(),
        &UserLogin {
            issuer: claims.iss.clone(),
            subject: claims.sub.clone(),
            email: claims.email.as_ref().map(|e| e.to_ascii_lowercase()),
            // A provider that omits the claim may let a guest bring any address (Entra ID
            // does), so only `true` is trusted unless the operator said otherwise.
            email_verified: claims.email.is_some()
                && state.config.email_verified.trusts(claims.email_verified),
            name: claims.name.clone().or(claims.preferred_username.clone()),
            is_admin: state.auth.is_admin(&groups),
            groups,
        },
    )
    .await?;
    crate::lifecycle::groups::keep_note(&state, &user, completed.note.as_deref()).await;
    // A sign-in rewrites the account (a GET that writes): its next page must see the
    // account as written now, not as kept.
    state.data_versions.refresh(&state.store.db()).await?;
    // A new id at every sign-in; any session the browser had is ended.
    if let Some(old) = jar.get(state.auth.session_cookie()) {
        let _ = state.auth.sessions.destroy(old.value()).await;
    }
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(300).collect());
    let (session_id, _) = state
        .auth
        .sessions
        .create(NewSession {
            user_id: user.id,
            email: user.email.clone(),
            id_token: Some(verified.id_token),
            auth_time: claims.auth_time,
            client_ip: ip.clone(),
            user_agent,
            flash: tx.fresh.then(|| {
                "You signed in again. Submit the form once more to make the change.".to_string()
            }),
        })
        .await
        .map_err(|e| AppError::Unavailable(e.to_string()))?;
    if let Some(sid) = &claims.sid {
        super::backchannel::remember_sid(&state, &claims.iss, sid, user.id).await;
    }
    tracing::info!(user = ?user.email, client_ip = ?ip, "signed in");
    metrics::counter!("gatehouse_sign_ins_total", "outcome" => "success", "reason" => "")
        .increment(1);
    let _ = crate::store::audit::record(
        &state.store.db(),
        &AuditEvent {
            kind: "login",
            outcome: "success",
            actor_id: Some(user.id),
            actor: user.email.clone(),
            client_ip: ip,
            request_id,
            details: json!({ "admin": user.is_admin }),
        },
    )
    .await;
    let cookie = Cookie::build((state.auth.session_cookie(), session_id))
        .path("/")
        .http_only(true)
        .secure(state.auth.secure_cookies)
        .same_site(SameSite::Strict)
        .build();
    let mut response = hop_page("Signing you in…", &tx.next);
    // The callback URL carries the code: never leak it as a referrer.
    response.headers_mut().insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
    Ok((cleared.add(cookie), response).into_response())
}

pub async fn logout(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
) -> Result<Response, AppError> {
    // The CSRF token was checked by the middleware (`web::csrf`) before this runs.
    let cookie_name = state.auth.session_cookie();
    let Some(id) = jar.get(cookie_name).map(|c| c.value().to_string()) else {
        return Ok(Redirect::to("/").into_response());
    };
    let session = state
        .auth
        .sessions
        .load(&id)
        .await
        .map_err(|e| AppError::Unavailable(e.to_string()))?;
    let Some(session) = session else {
        let cleared = jar.remove(session_cookie_removal(&state));
        return Ok((cleared, Redirect::to("/")).into_response());
    };
    state
        .auth
        .sessions
        .destroy(&id)
        .await
        .map_err(|e| AppError::Unavailable(e.to_string()))?;
    let user = super::users::get(&state.store.db(), session.user_id).await?;
    let _ = crate::store::audit::record(
        &state.store.db(),
        &AuditEvent {
            kind: "logout",
            outcome: "success",
            actor_id: Some(session.user_id),
            actor: user.and_then(|u| u.email),
            client_ip: Some(ip),
            details: json!({ "session_client_ip": session.client_ip }),
            ..AuditEvent::default()
        },
    )
    .await;
    let cleared = jar
        .remove(session_cookie_removal(&state))
        .add(signed_out_note(state.auth.secure_cookies));
    let end_session = match state.auth.oidc.metadata().await {
        Ok(meta) => meta.end_session_endpoint.clone(),
        Err(_) => None,
    };
    let Some(endpoint) = end_session else {
        return Ok((cleared, Redirect::to("/")).into_response());
    };
    let mut url = url::Url::parse(&endpoint)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("end_session_endpoint: {e}")))?;
    {
        let mut q = url.query_pairs_mut();
        if let Some(hint) = &session.id_token {
            q.append_pair("id_token_hint", hint);
        }
        q.append_pair("client_id", &state.auth.oidc.relying_party().client_id)
            .append_pair("post_logout_redirect_uri", state.config.public_url.as_str());
    }
    // A 303 to the provider would be blocked by CSP form-action 'self'; a page that moves
    // on by itself is not.
    Ok((cleared, hop_page("Signing you out…", url.as_str())).into_response())
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_is_a_same_site_path_or_the_profile() {
        assert_eq!(safe_next(None), "/profile");
        assert_eq!(safe_next(Some("/gh/search?q=a")), "/gh/search?q=a");
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/\\evil.example",
            "javascript:alert(1)",
            "profile",
            "",
            "/a\nb",
            "/a\\b",
        ] {
            assert_eq!(safe_next(Some(bad)), "/profile", "{bad:?}");
        }
    }
}
