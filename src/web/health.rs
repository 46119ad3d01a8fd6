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

pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let mut checks = Map::new();
    let mut failures = Vec::new();

    let database =
        match tokio::time::timeout(CHECK_TIMEOUT, crate::store::ping(&state.store.db())).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {}s", CHECK_TIMEOUT.as_secs())),
        };
    record(&mut checks, &mut failures, "database", database);
    if let Some(redis) = &state.redis {
        record(
            &mut checks,
            &mut failures,
            "redis",
            redis.ping().await.map_err(|e| e.to_string()),
        );
    }

    let (status, body) = if failures.is_empty() {
        (
            StatusCode::OK,
            json!({ "status": "ready", "checks": checks }),
        )
    } else {
        tracing::warn!(reason = failures.join("; "), "not ready");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "status": "unavailable", "reason": failures.join("; "), "checks": checks }),
        )
    };
    (
        status,
        Extension(QuietLog),
        [(header::CACHE_CONTROL, "no-store")],
        Json(body),
    )
}

fn record(
    checks: &mut Map<String, Value>,
    failures: &mut Vec<String>,
    name: &str,
    result: Result<(), String>,
) {
    match result {
        Ok(()) => {
            checks.insert(name.into(), json!("ok"));
        }
        Err(reason) => {
            checks.insert(name.into(), json!(format!("fail: {reason}")));
            failures.push(format!("{name}: {reason}"));
        }
    }
}
