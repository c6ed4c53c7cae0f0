//! The steward's console: web pages and a JSON API over the review queue, the audit log, dead
//! letters, the links' state and the rule set, served by `tandem run` on `[console] listen`.
//!
//! ```text
//!  request ─> crate::http (limits, timeouts; HTTPS with [console] tls_cert/tls_key) ─> Router
//!     /login, /logout, /static ................ open (the login page trades the token for a cookie)
//!     /api/*  ─ auth: Bearer token, or session cookie + CSRF token on POST ─> api.rs  (JSON)
//!     /, /conflicts, /audit, /dead-letters, /rules ─ auth: session cookie ─> pages.rs (HTML)
//!  api.rs and pages.rs act through the same calls `tandem conflicts` and `tandem dead-letter` make
//!  (crate::apply::{list_conflicts, show_conflict, resolve_conflict, list_dead_letters, replay_dead_letter})
//!  and read links through crate::observe (the probe `tandem status` runs, and this process's registry)
//! ```
//!
//! Row values leave the databases only here, to a holder of the token; they never reach a log line.
//!
//! Error handling: a node that cannot be reached shows as an error for that node (the others are
//! still listed); an action that fails answers with the error text and changes nothing (the calls
//! roll back); authentication failures answer 401 (API) or send the browser to the login page.

mod api;
mod auth;
mod pages;
pub mod rules;
mod view;

use std::path::Path;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::config::{Config, ConsoleSettings};

/// What every handler shares.
#[derive(Clone)]
pub struct Console {
    pub config: Arc<Config>,
    sessions: Arc<auth::Sessions>,
    token: Arc<str>,
    /// Served over HTTPS: the session cookie is marked `Secure`.
    https: bool,
}

impl Console {
    pub fn new(config: Arc<Config>, settings: &ConsoleSettings) -> Self {
        Console {
            config,
            sessions: Arc::new(auth::Sessions::default()),
            token: settings.token().into(),
            https: settings.tls.is_some(),
        }
    }
}

/// The console's bound address, and its TLS when it serves HTTPS.
pub struct Endpoint {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
}

/// Reads the TLS files (when set) and binds `[console] listen`.
pub async fn start(settings: &ConsoleSettings) -> Result<Endpoint, String> {
    let tls = match &settings.tls {
        Some((cert, key)) => Some(tls_acceptor(cert, key)?),
        None => None,
    };
    let listener = crate::http::bind("console", settings.listen).await?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(addr = %settings.listen, scheme, "serving the console");
    Ok(Endpoint { listener, tls })
}

/// Serves the console until the task is dropped.
pub async fn serve(endpoint: Endpoint, console: Console) {
    crate::http::serve(endpoint.listener, router(console), endpoint.tls).await
}

/// The TLS server configuration from `[console] tls_cert` and `tls_key`; errors name the file and
/// the key.
fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls;
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("console.tls_cert: cannot read certificates from {}: {e}; fix: give a PEM file with the certificate chain", cert.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "console.tls_cert: {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            cert.display()
        ));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        format!("console.tls_key: cannot read a private key from {}: {e}; fix: give the certificate's key as PEM (PKCS#8, PKCS#1 or SEC1)", key.display())
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("console: TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| {
            format!(
                "console.tls_key: the key does not fit the certificate in {} ({e})",
                cert.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Every route of the console.
pub fn router(console: Console) -> Router {
    let api = Router::new()
        .route("/api/links", get(api::links))
        .route("/api/conflicts", get(api::conflicts))
        .route("/api/conflicts/{node}/{id}", get(api::conflict))
        .route("/api/conflicts/{node}/{id}/resolve", post(api::resolve))
        .route("/api/dead-letters", get(api::dead_letters))
        .route("/api/dead-letters/{node}/{id}/replay", post(api::replay))
        .route("/api/rules", get(api::rules))
        .route_layer(axum::middleware::from_fn_with_state(
            console.clone(),
            auth::require_api,
        ));
    let pages = Router::new()
        .route("/", get(pages::overview))
        .route("/conflicts", get(pages::queue))
        .route("/conflicts/{node}/{id}", get(pages::conflict))
        .route("/conflicts/{node}/{id}/resolve", post(pages::resolve))
        .route("/audit", get(pages::audit))
        .route("/dead-letters", get(pages::dead_letters))
        .route("/dead-letters/{node}/{id}/replay", post(pages::replay))
        .route("/rules", get(pages::rules))
        .route_layer(axum::middleware::from_fn_with_state(
            console.clone(),
            auth::require_page,
        ));
    Router::new()
        .merge(api)
        .merge(pages)
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", post(auth::logout))
        .layer(axum::middleware::from_fn(auth::security_headers))
        .with_state(console)
}
