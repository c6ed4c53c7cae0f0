//! The steward's console: web pages and a JSON API over the review queue, the audit log, dead
//! letters, the links' state and the rule set, served by `tandem run` on `[console] listen`.
//!
//! ```text
//!  request ─> crate::http (limits, timeouts) ─> Router
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

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;

use crate::config::{Config, ConsoleSettings};

/// What every handler shares.
#[derive(Clone)]
pub struct Console {
    pub config: Arc<Config>,
    sessions: Arc<auth::Sessions>,
    token: Arc<str>,
}

impl Console {
    pub fn new(config: Arc<Config>, settings: &ConsoleSettings) -> Self {
        Console {
            config,
            sessions: Arc::new(auth::Sessions::default()),
            token: settings.token().into(),
        }
    }
}

/// Binds `[console] listen`.
pub async fn start(settings: &ConsoleSettings) -> Result<TcpListener, String> {
    let listener = crate::http::bind("console", settings.listen).await?;
    tracing::info!(addr = %settings.listen, "serving the console");
    Ok(listener)
}

/// Serves the console until the task is dropped.
pub async fn serve(listener: TcpListener, console: Console) {
    crate::http::serve(listener, router(console)).await
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
