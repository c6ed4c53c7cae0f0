//! Who may use the console, and proof that a POST came from its own pages.
//!
//! ```text
//!  API request:  Authorization: Bearer <token> ─ equal (constant time) ─> allowed
//!                or a session cookie; a POST with it also needs X-CSRF-Token = the session's token
//!  page request: session cookie ─> allowed; else GET -> /login, POST -> 401
//!  POST /login:  token (constant time) ─> new session: random id in an HttpOnly, SameSite=Strict
//!                cookie, a random CSRF token embedded in every form of the pages
//!  every POST with a cookie: Origin (when the browser sends it) must be this host
//! ```
//!
//! Sessions live in this process's memory for [`SESSION_LIFETIME`]; a restart logs everyone out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use subtle::ConstantTimeEq;

use super::view;
use super::Console;

/// How long a login lasts.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Sessions held at once; the oldest is dropped beyond this.
const MAX_SESSIONS: usize = 1000;
const COOKIE: &str = "tandem_session";

/// The person behind a request, as the handlers see it.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The name given at login (or `api` for a bearer-token request): the audit record's `resolved_by`.
    pub name: String,
    /// The session's CSRF token (pages put it in their forms); empty for a bearer-token request.
    pub csrf: String,
}

struct Session {
    name: String,
    csrf: String,
    expires: Instant,
}

/// The open sessions, by id.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Session>) -> R) -> R {
        let mut guard = self.map.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }

    fn open(&self, name: String) -> Result<String, String> {
        let id = random_hex()?;
        let csrf = random_hex()?;
        let now = Instant::now();
        self.with(|m| {
            m.retain(|_, s| s.expires > now);
            if m.len() >= MAX_SESSIONS {
                if let Some(oldest) = m
                    .iter()
                    .min_by_key(|(_, s)| s.expires)
                    .map(|(k, _)| k.clone())
                {
                    m.remove(&oldest);
                }
            }
            m.insert(
                id.clone(),
                Session {
                    name,
                    csrf,
                    expires: now + SESSION_LIFETIME,
                },
            );
        });
        Ok(id)
    }

    fn caller(&self, id: &str) -> Option<Caller> {
        self.with(|m| {
            m.get(id)
                .filter(|s| s.expires > Instant::now())
                .map(|s| Caller {
                    name: s.name.clone(),
                    csrf: s.csrf.clone(),
                })
        })
    }

    fn close(&self, id: &str) {
        self.with(|m| m.remove(id));
    }
}

/// 32 random bytes from the operating system, in hex.
fn random_hex() -> Result<String, String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| format!("no randomness from the operating system: {e}"))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Equal, in time that does not depend on where the texts differ.
pub fn same_secret(given: &str, expected: &str) -> bool {
    given.as_bytes().ct_eq(expected.as_bytes()).into()
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// A POST whose Origin (sent by every current browser on a POST) names another site.
fn foreign_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("");
    origin_host.is_empty() || origin_host != host
}

fn session_caller(console: &Console, headers: &HeaderMap) -> Option<Caller> {
    session_id(headers).and_then(|id| console.sessions.caller(&id))
}

fn api_error(status: StatusCode, message: &str) -> Response {
    let mut r = (status, axum::Json(serde_json::json!({ "error": message }))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"tandem console\""),
        );
    }
    r
}

/// The API's gate: a bearer token, or a session cookie (with the CSRF token on a POST).
pub async fn require_api(State(console): State<Console>, mut req: Request, next: Next) -> Response {
    let headers = req.headers();
    let caller = if let Some(given) = bearer(headers) {
        if !same_secret(given, &console.token) {
            return api_error(
                StatusCode::UNAUTHORIZED,
                "the bearer token is not the console's token",
            );
        }
        Caller {
            name: "api".into(),
            csrf: String::new(),
        }
    } else if let Some(caller) = session_caller(&console, headers) {
        if req.method() == Method::POST {
            let token = headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if foreign_origin(headers) || !same_secret(token, &caller.csrf) {
                return api_error(
                    StatusCode::FORBIDDEN,
                    "a POST with the session cookie needs the page's X-CSRF-Token header and this site's Origin",
                );
            }
        }
        caller
    } else {
        return api_error(
            StatusCode::UNAUTHORIZED,
            "send Authorization: Bearer <the [console] token>",
        );
    };
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// The pages' gate: a session cookie; a POST must come from this site (its form's CSRF token is
/// checked by the handler, which reads the form).
pub async fn require_page(
    State(console): State<Console>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(caller) = session_caller(&console, req.headers()) else {
        if req.method() == Method::GET {
            let next_path = req.uri().path_and_query().map_or("/", |p| p.as_str());
            let target = format!("/login?next={}", view::url_part(next_path));
            return Redirect::to(&target).into_response();
        }
        return (StatusCode::UNAUTHORIZED, "log in again at /login").into_response();
    };
    if req.method() == Method::POST && foreign_origin(req.headers()) {
        let origin = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let refused = format!("a POST from another site ({origin}) is refused");
        return (StatusCode::FORBIDDEN, refused).into_response();
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// The form's CSRF token matches the session's.
pub fn form_csrf_ok(caller: &Caller, given: &str) -> bool {
    !caller.csrf.is_empty() && same_secret(given, &caller.csrf)
}

#[derive(serde::Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

pub async fn login_page(axum::extract::Query(q): axum::extract::Query<LoginQuery>) -> Response {
    view::login(q.next.as_deref().unwrap_or("/"), None).into_response()
}

#[derive(serde::Deserialize)]
pub struct LoginForm {
    token: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    next: String,
}

/// Only a path on this site (not `//host`), so that the login cannot send the browser elsewhere.
fn local_path(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/"
    }
}

pub async fn login(State(console): State<Console>, Form(form): Form<LoginForm>) -> Response {
    let next = local_path(&form.next).to_string();
    if !same_secret(form.token.trim(), &console.token) {
        // Slows a guesser; the token is long and random anyway (at least 16 characters).
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut r = view::login(&next, Some("That is not the console's token.")).into_response();
        *r.status_mut() = StatusCode::UNAUTHORIZED;
        return r;
    }
    let name: String = form.name.trim().chars().take(100).collect();
    let name = if name.is_empty() {
        "console".to_string()
    } else {
        name
    };
    let id = match console.sessions.open(name) {
        Ok(id) => id,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    };
    let cookie = format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_LIFETIME.as_secs(),
        if console.https { "; Secure" } else { "" }
    );
    let mut r = Redirect::to(&next).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

pub async fn logout(State(console): State<Console>, headers: HeaderMap) -> Response {
    if foreign_origin(&headers) {
        return (StatusCode::FORBIDDEN, "a POST from another site is refused").into_response();
    }
    if let Some(id) = session_id(&headers) {
        console.sessions.close(&id);
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("tandem_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    r
}

/// Headers on every answer: no caching of row values, no framing, scripts and styles only inline
/// from the page itself, nothing fetched from elsewhere.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // `same-origin`, not `no-referrer`: under `no-referrer` a browser sends `Origin: null` on a form
    // POST, which the Origin check must refuse.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("0123456789abcdef", "0123456789abcdef"));
        assert!(!same_secret("0123456789abcdeX", "0123456789abcdef"));
        assert!(!same_secret("0123456789abcdef0", "0123456789abcdef"));
        assert!(!same_secret("", "0123456789abcdef"));
    }

    #[test]
    fn login_sends_only_to_local_paths() {
        assert_eq!(local_path("/conflicts?table=x"), "/conflicts?table=x");
        assert_eq!(local_path("//evil.example/"), "/");
        assert_eq!(local_path("https://evil.example/"), "/");
        assert_eq!(local_path("/\\evil.example"), "/");
    }

    #[test]
    fn a_cross_site_origin_is_foreign() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:9465"));
        assert!(!foreign_origin(&h), "no Origin: the CSRF token decides");
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:9465"),
        );
        assert!(!foreign_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(foreign_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(foreign_origin(&h));
    }
}
