//! The `[metrics]` endpoint of `tandem run`: `/metrics` (Prometheus text format) and `/health`
//! (200 while every link is running or catching up, 503 with the reasons otherwise), an axum router
//! served by [`crate::http`] (its limits and timeouts), plus the ticker that refreshes the gauges
//! read from the databases.
//!
//! The exporter's own listener cannot serve `/health`, so the recorder is installed alone and this
//! module answers both paths on the one configured address.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics::gauge;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tracing::{debug, info};

use super::names::*;
use crate::config::Config;

/// How often the gauges read from the databases are refreshed.
const PROBE_EVERY: Duration = Duration::from_secs(5);

/// Installs the Prometheus recorder (once per process) and binds `addr`.
pub async fn start(addr: SocketAddr) -> Result<(TcpListener, PrometheusHandle), String> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(APPLY_DURATION.to_string()), &APPLY_BUCKETS)
        .map_err(|e| format!("metrics: {e}"))?
        .install_recorder()
        .map_err(|e| format!("metrics: cannot install the recorder: {e}"))?;
    describe();
    let listener = crate::http::bind("metrics", addr).await?;
    info!(addr = %addr, "serving /metrics and /health");
    Ok((listener, handle))
}

/// Serves requests until the task is dropped.
pub async fn serve(listener: TcpListener, handle: PrometheusHandle) {
    crate::http::serve(listener, router(handle), None).await
}

/// `/metrics` and `/health` (GET and HEAD); any other path is 404, any other method 405.
pub fn router(handle: PrometheusHandle) -> Router {
    let handle = Arc::new(handle);
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let handle = handle.clone();
                async move {
                    text(
                        StatusCode::OK,
                        "text/plain; version=0.0.4; charset=utf-8",
                        handle.render(),
                    )
                }
            }),
        )
        .route("/health", get(health))
        .fallback(|method: axum::http::Method| async move {
            if method == axum::http::Method::GET || method == axum::http::Method::HEAD {
                text(
                    StatusCode::NOT_FOUND,
                    "text/plain; charset=utf-8",
                    "try /metrics or /health\n".into(),
                )
            } else {
                StatusCode::METHOD_NOT_ALLOWED.into_response()
            }
        })
}

async fn health() -> Response {
    match super::health::verdict(&super::health::snapshot()) {
        Ok(body) => text(StatusCode::OK, "text/plain; charset=utf-8", body),
        Err(body) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain; charset=utf-8",
            body,
        ),
    }
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// Refreshes the lag gauges every second and the gauges read from the databases (log distance,
/// retention, review queue, dead letters) every few seconds, for the links whose source is
/// `only_source` (every link when `None`).
pub async fn tick(config: Arc<Config>, only_source: Option<String>, handle: PrometheusHandle) {
    let mut every_second = tokio::time::interval(Duration::from_secs(1));
    let mut last_probe: Option<tokio::time::Instant> = None;
    loop {
        every_second.tick().await;
        let now = super::now_micros();
        for (link, h) in super::health::snapshot() {
            if let Some(lag) = super::health::lag_seconds(&h, now) {
                gauge!(LAG_SECONDS, "link" => link).set(lag);
            }
        }
        if last_probe.is_some_and(|t| t.elapsed() < PROBE_EVERY) {
            continue;
        }
        last_probe = Some(tokio::time::Instant::now());
        handle.run_upkeep();
        let (links, verified) = super::probe::survey(&config, only_source.as_deref()).await;
        for v in verified {
            gauge!(VERIFY_DIFFERENCES, "table" => v.table.clone()).set(v.differences as f64);
            gauge!(VERIFY_AGE, "table" => v.table).set(v.age_seconds);
        }
        for st in links {
            let link = st.link.clone();
            let set = |name: &'static str, v: Option<f64>| {
                if let Some(v) = v {
                    gauge!(name, "link" => link.clone()).set(v);
                }
            };
            set(LAG_BYTES, st.lag_bytes.map(|v| v as f64));
            set(LAG_TRANSACTIONS, st.lag_transactions.map(|v| v as f64));
            set(RETAINED_BYTES, st.retained_bytes.map(|v| v as f64));
            set(
                POSITION_LOST,
                Some(if st.retention.starts_with("lost") {
                    1.0
                } else {
                    0.0
                }),
            );
            if st.problems.is_empty() {
                set(CONFLICTS_OPEN, Some(st.conflicts_open as f64));
                set(REVIEW_QUEUE, Some(st.review_queue as f64));
                set(
                    OLDEST_PARKED_AGE,
                    Some(st.oldest_parked_seconds.unwrap_or(0.0)),
                );
                set(DEAD_LETTERS_OPEN, Some(st.dead_letters_open as f64));
            } else {
                debug!(link = %st.link, problems = ?st.problems, "metrics probe incomplete");
            }
        }
    }
}
