//! Liveness and readiness. Liveness does no I/O; readiness asks the database and Redis,
//! each bounded by a timeout so a hung dependency makes a 503, not a hung probe.

use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde_json::{Map, Value, json};

use super::middleware::QuietLog;
use crate::state::AppState;

const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

pub async fn live() -> impl IntoResponse {
    (
        Extension(QuietLog),
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({ "status": "ok" })),
    )
}

/// Public readiness: which dependency failed, by name only. The error texts name internal
/// hosts and ports, so they go to the log and to the metrics listener's `/health/ready`.
pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    answer(&state, false).await
}

/// Readiness with each failure's text, on the metrics listener only.
pub async fn ready_detailed(State(state): State<AppState>) -> impl IntoResponse {
    answer(&state, true).await
}

async fn answer(state: &AppState, detailed: bool) -> impl IntoResponse + use<> {
    // Stopping: the load balancer is to send nothing new here, whatever the dependencies say.
    if state.draining.load(std::sync::atomic::Ordering::Relaxed) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Extension(QuietLog),
            [(header::CACHE_CONTROL, "no-store")],
            Json(json!({ "status": "draining", "reason": "shutting down" })),
        );
    }
    let mut checks = Map::new();
    let mut failures: Vec<(&str, String)> = Vec::new();

    let database =
        match tokio::time::timeout(CHECK_TIMEOUT, crate::store::ping(&state.store.db())).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {}s", CHECK_TIMEOUT.as_secs())),
        };
    record(&mut checks, &mut failures, "database", database, detailed);
    if let Some(redis) = &state.redis {
        let result = redis.ping().await.map_err(|e| e.to_string());
        record(&mut checks, &mut failures, "redis", result, detailed);
    }

    let (status, body) = if failures.is_empty() {
        (
            StatusCode::OK,
            json!({ "status": "ready", "checks": checks }),
        )
    } else {
        let details: Vec<String> = failures.iter().map(|(n, r)| format!("{n}: {r}")).collect();
        tracing::warn!(reason = details.join("; "), "not ready");
        let reason = if detailed {
            details.join("; ")
        } else {
            failures
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(",")
        };
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "status": "unavailable", "reason": reason, "checks": checks }),
        )
    };
    (
        status,
        Extension(QuietLog),
        [(header::CACHE_CONTROL, "no-store")],
        Json(body),
    )
}

fn record<'a>(
    checks: &mut Map<String, Value>,
    failures: &mut Vec<(&'a str, String)>,
    name: &'a str,
    result: Result<(), String>,
    detailed: bool,
) {
    match result {
        Ok(()) => {
            checks.insert(name.into(), json!("ok"));
        }
        Err(reason) => {
            let shown = if detailed {
                format!("fail: {reason}")
            } else {
                "fail".to_string()
            };
            checks.insert(name.into(), json!(shown));
            failures.push((name, reason));
        }
    }
}
