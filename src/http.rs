//! The HTTP server under `tandem run`'s two endpoints, `[metrics]` and `[console]`: axum routers
//! served by hyper (HTTP/1.1), one request per connection, inside fixed limits.
//!
//! ```text
//!  TcpListener ── accept (waits while MAX_CONNECTIONS are open) ──> one task per connection
//!     └─ [TLS handshake within HEADER_TIMEOUT, when serving HTTPS]
//!     └─ hyper http1 (head read within HEADER_TIMEOUT, no keep-alive)
//!          └─ body limit (BODY_LIMIT, 413) ─> request timeout (REQUEST_TIMEOUT, 408) ─> Router
//!     the whole connection is dropped after CONNECTION_TIMEOUT (a client that never reads)
//! ```
//!
//! Error handling: a connection that fails (reset, timed out, malformed) is dropped and logged at
//! debug level; accept errors (out of descriptors) pause the loop briefly. Nothing here ends the
//! process.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use tracing::{debug, warn};

/// Connections served at once; the next one waits in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 64;
/// Longest time to receive a request's head (request line and headers).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest time from the head to the response (a resolve or replay reaches the databases).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest life of a connection, writing the response included.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(40);
/// Largest request body accepted (a resolve form or JSON document).
pub const BODY_LIMIT: usize = 64 * 1024;

/// Binds `addr`; the error names the endpoint (`what`) and the address.
pub async fn bind(what: &str, addr: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr).await.map_err(|e| {
        format!(
            "{what}: cannot listen on {addr}: {e}; fix: free the port or change `{what}.listen`"
        )
    })
}

/// The router with the body limit and the request timeout applied.
pub fn limited(router: Router) -> Router {
    router
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(BODY_LIMIT))
}

/// Serves `router` on `listener` until the task is dropped: HTTPS when `tls` is given.
pub async fn serve(listener: TcpListener, router: Router, tls: Option<TlsAcceptor>) {
    let router = limited(router);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "http: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let router = router.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let served = tokio::time::timeout(CONNECTION_TIMEOUT, async move {
                match tls {
                    None => connection(stream, router).await,
                    Some(acceptor) => {
                        match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await {
                            Ok(Ok(tls_stream)) => connection(tls_stream, router).await,
                            Ok(Err(e)) => Err(format!("TLS handshake failed: {e}")),
                            Err(_) => Err("TLS handshake timed out".into()),
                        }
                    }
                }
            })
            .await;
            match served {
                Ok(Ok(())) => {}
                Ok(Err(e)) => debug!(peer = %peer, error = %e, "http: connection failed"),
                Err(_) => debug!(peer = %peer, "http: connection timed out"),
            }
            drop(slot);
        });
    }
}

/// One request on one connection.
async fn connection<S>(io: S, router: Router) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| router.clone().oneshot(req));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(false);
    builder
        .serve_connection(TokioIo::new(io), service)
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::{get, post};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Router::new().route("/", get(|| async { "hello" })).route(
            "/echo",
            post(|body: String| async move { body.len().to_string() }),
        );
        tokio::spawn(serve(listener, router, None));
        addr
    }

    async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(request).await.unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out).await;
        out
    }

    #[tokio::test]
    async fn answers_and_closes_the_connection() {
        let addr = server().await;
        let out = exchange(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        assert!(out.ends_with("hello"), "{out}");
    }

    #[tokio::test]
    async fn refuses_a_body_over_the_limit() {
        let addr = server().await;
        let body = "x".repeat(BODY_LIMIT + 1);
        let req = format!(
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let out = exchange(addr, req.as_bytes()).await;
        assert!(
            out.starts_with("HTTP/1.1 413"),
            "{}",
            &out[..out.len().min(200)]
        );
        let ok = "x".repeat(BODY_LIMIT);
        let req = format!(
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{ok}",
            ok.len()
        );
        let out = exchange(addr, req.as_bytes()).await;
        assert!(out.ends_with(&BODY_LIMIT.to_string()), "{out}");
    }

    #[tokio::test]
    async fn drops_a_client_that_never_finishes_its_head() {
        let addr = server().await;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        let started = std::time::Instant::now();
        let mut out = Vec::new();
        let read = tokio::time::timeout(HEADER_TIMEOUT * 3, s.read_to_end(&mut out)).await;
        assert!(
            read.is_ok(),
            "the connection is still open after 3 header timeouts"
        );
        assert!(
            started.elapsed() >= HEADER_TIMEOUT - Duration::from_millis(500),
            "dropped too early: {:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn holds_at_most_max_connections_open() {
        let addr = server().await;
        let mut idle = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
            idle.push(s);
        }
        // Every slot is taken by a client still sending its head: the next request waits.
        let next = tokio::spawn(exchange(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            !next.is_finished(),
            "a request was served beyond the connection limit"
        );
        drop(idle);
        let out = tokio::time::timeout(Duration::from_secs(10), next)
            .await
            .expect("served once the slots are free")
            .unwrap();
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    }
}
