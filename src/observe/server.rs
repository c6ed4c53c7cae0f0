//! The `[metrics]` endpoint of `tandem run`: `/metrics` (Prometheus text format) and `/health`
//! (200 while every link is running or catching up, 503 with the reasons otherwise), served by a
//! minimal HTTP/1.1 responder (one request per connection), plus the ticker that refreshes the
//! gauges read from the databases.
//!
//! The exporter's own listener cannot serve `/health`, so the recorder is installed alone and this
//! module answers both paths on the one configured address.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use metrics::gauge;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

use super::names::*;
use crate::config::Config;

/// How often the gauges read from the databases are refreshed.
const PROBE_EVERY: Duration = Duration::from_secs(5);
/// Longest request head read before the connection is dropped.
const MAX_HEAD: usize = 8 * 1024;

/// Installs the Prometheus recorder (once per process) and binds `addr`.
pub async fn start(addr: SocketAddr) -> Result<(TcpListener, PrometheusHandle), String> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(APPLY_DURATION.to_string()), &APPLY_BUCKETS)
        .map_err(|e| format!("metrics: {e}"))?
        .install_recorder()
        .map_err(|e| format!("metrics: cannot install the recorder: {e}"))?;
    describe();
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("metrics: cannot listen on {addr}: {e}"))?;
    info!(addr = %addr, "serving /metrics and /health");
    Ok((listener, handle))
}

/// Serves requests until the task is dropped.
pub async fn serve(listener: TcpListener, handle: PrometheusHandle) {
    let handle = Arc::new(handle);
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let handle = handle.clone();
                tokio::spawn(async move {
                    if let Err(e) = respond(stream, &handle).await {
                        debug!(error = %e, "metrics request failed");
                    }
                });
            }
            Err(e) => {
                warn!(error = %e, "metrics: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn respond(mut stream: TcpStream, handle: &PrometheusHandle) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
    if !matches!(read, Ok(Ok(()))) {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&head);
    let mut first = text.lines().next().unwrap_or("").split_whitespace();
    let (method, path) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let (status, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => ("200 OK", handle.render()),
        ("GET" | "HEAD", "/health") => match super::health::verdict(&super::health::snapshot()) {
            Ok(body) => ("200 OK", body),
            Err(body) => ("503 Service Unavailable", body),
        },
        ("GET" | "HEAD", _) => ("404 Not Found", "try /metrics or /health\n".to_string()),
        _ => ("405 Method Not Allowed", String::new()),
    };
    let content_type = if path == "/metrics" {
        "text/plain; version=0.0.4; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if method != "HEAD" {
        out.extend_from_slice(body.as_bytes());
    }
    stream.write_all(&out).await?;
    stream.shutdown().await
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
