//! The console's JSON API (documented in README "Steward's console"), and the reads and actions the
//! pages share with it. Every action goes through the calls `tandem conflicts` and `tandem
//! dead-letter` make.
//!
//! Error handling: a node that cannot be read is listed under `errors` (the other nodes still
//! answer); a failed action answers 4xx/5xx with `{"error": "..."}` and has changed nothing.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Caller;
use super::Console;
use crate::apply::{self, ApplyError, Resolution, Signature};
use crate::config::Config;
use crate::conflict::audit::StoredConflict;

/// Longest note accepted.
pub const MAX_NOTE: usize = 2000;

/// A failed read or action: the status to answer and what to tell the person.
pub type Failure = (StatusCode, String);

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

fn failed((status, message): Failure) -> Response {
    error(status, message)
}

/// The nodes to ask: `only` (which must exist) or every node.
fn nodes<'a>(config: &'a Config, only: Option<&'a str>) -> Result<Vec<&'a str>, String> {
    match only.filter(|n| !n.is_empty()) {
        Some(n) if config.node(n).is_none() => Err(format!("no node {n:?} in the file")),
        Some(n) => Ok(vec![n]),
        None => Ok(config.nodes.keys().map(String::as_str).collect()),
    }
}

/// Filters of the review queue and the audit log.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct ConflictFilter {
    /// `open` (parked, waiting, deferred), or one state (`resolved`, `parked`, …).
    pub state: Option<String>,
    pub node: Option<String>,
    pub table: Option<String>,
    pub kind: Option<String>,
    /// At most this many per node (default 100, at most 1000).
    pub limit: Option<i64>,
    /// Only records detected longer ago than this (`30m`, `2h`, `1d`).
    pub older_than: Option<String>,
}

/// Conflict records on every node (newest first per node) that pass `f`, and the nodes that could
/// not be read.
pub async fn gather_conflicts(
    config: &Config,
    f: &ConflictFilter,
) -> Result<(Vec<(String, StoredConflict)>, Vec<(String, String)>), String> {
    let open = f.state.as_deref() == Some("open");
    let min_age = match f
        .older_than
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        None => None,
        Some(t) => Some(
            humantime::parse_duration(t)
                .map_err(|e| {
                    format!("older_than: {t:?} is not a duration ({e}); write e.g. 30m, 2h, 1d")
                })?
                .as_secs_f64(),
        ),
    };
    let limit = f.limit.unwrap_or(100).clamp(1, 1000);
    let asks = nodes(config, f.node.as_deref())?
        .into_iter()
        .map(|n| async move { (n, apply::list_conflicts(config, n, open, limit).await) });
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for (node, r) in futures_util::future::join_all(asks).await {
        match r {
            Ok(entries) => found.extend(entries.into_iter().map(|e| (node.to_string(), e))),
            Err(e) => errors.push((node.to_string(), apply::shown(&e))),
        }
    }
    let want = |v: &Option<String>, actual: &str| {
        v.as_deref()
            .filter(|w| !w.is_empty())
            .is_none_or(|w| w == actual)
    };
    found.retain(|(_, e)| {
        want(&f.table, &e.record.table)
            && want(&f.kind, &e.record.kind)
            && (open || want(&f.state, e.record.state.as_str()))
            && min_age.is_none_or(|m| e.age_seconds.is_some_and(|a| a >= m))
    });
    found.sort_by(|a, b| b.1.detected_at.cmp(&a.1.detected_at));
    Ok((found, errors))
}

fn errors_json(errors: &[(String, String)]) -> Value {
    errors
        .iter()
        .map(|(n, e)| json!({"node": n, "error": e}))
        .collect()
}

/// One record as JSON, with its node and the business fields whose current and incoming values
/// differ.
pub fn conflict_json(config: &Config, node: &str, e: &StoredConflict) -> Value {
    let mut doc = serde_json::to_value(e).unwrap_or_default();
    if let Some(m) = doc.as_object_mut() {
        m.insert("node".into(), json!(node));
        m.insert("differing".into(), json!(differing(config, e)));
    }
    doc
}

/// tandem's origin or managed version column: not a business field.
pub fn is_own_column(config: &Config, name: &str) -> bool {
    config.settings.is_own_column(name, true)
}

/// A stored image value as text (`None` for NULL): the images keep the engine's JSON types, so
/// `1` and `"1"` are the same value.
fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The business columns whose current and incoming values differ (both images present); tandem's
/// origin and managed version columns are not business fields.
pub fn differing(config: &Config, e: &StoredConflict) -> Vec<String> {
    let (Some(Value::Object(cur)), Some(Value::Object(inc))) =
        (&e.record.current, &e.record.incoming)
    else {
        return Vec::new();
    };
    let mut names: Vec<&String> = cur.keys().chain(inc.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|k| !is_own_column(config, k))
        .filter(|k| cur.get(*k).map(value_text) != inc.get(*k).map(value_text))
        .cloned()
        .collect()
}

pub async fn links(State(c): State<Console>) -> Response {
    let (links, verified) = crate::observe::probe::survey(&c.config, None).await;
    let running = crate::observe::health::snapshot();
    let links: Vec<Value> = links
        .iter()
        .map(|l| {
            let mut doc = serde_json::to_value(l).unwrap_or_default();
            if let (Some(m), Some(h)) = (doc.as_object_mut(), running.get(&l.link)) {
                m.insert("process_state".into(), json!(h.state.name()));
                let reason = match &h.state {
                    crate::observe::health::LinkState::Halted(r)
                    | crate::observe::health::LinkState::Restarting(r)
                    | crate::observe::health::LinkState::Retrying(r) => Some(r.clone()),
                    _ => None,
                };
                m.insert("process_reason".into(), json!(reason));
                m.insert("changes_applied".into(), json!(h.changes_applied));
                m.insert(
                    "changes_per_second".into(),
                    json!(crate::observe::health::throughput(h)),
                );
            }
            doc
        })
        .collect();
    Json(json!({ "links": links, "verify": verified })).into_response()
}

pub async fn conflicts(State(c): State<Console>, Query(f): Query<ConflictFilter>) -> Response {
    match gather_conflicts(&c.config, &f).await {
        Ok((found, errors)) => Json(json!({
            "conflicts": found.iter().map(|(n, e)| conflict_json(&c.config, n, e)).collect::<Vec<_>>(),
            "errors": errors_json(&errors),
        }))
        .into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, e),
    }
}

/// One record, or the answer to give instead.
pub async fn find_conflict(
    config: &Config,
    node: &str,
    id: i64,
) -> Result<StoredConflict, Failure> {
    if config.node(node).is_none() {
        return Err((
            StatusCode::NOT_FOUND,
            format!("no node {node:?} in the file"),
        ));
    }
    match apply::show_conflict(config, node, id).await {
        Ok(Some(e)) => Ok(e),
        Ok(None) => Err((
            StatusCode::NOT_FOUND,
            format!("no conflict with id {id} on node {node}"),
        )),
        Err(e) => Err((
            StatusCode::BAD_GATEWAY,
            format!("node {node}: {}", apply::shown(&e)),
        )),
    }
}

pub async fn conflict(State(c): State<Console>, Path((node, id)): Path<(String, i64)>) -> Response {
    match find_conflict(&c.config, &node, id).await {
        Ok(e) => Json(conflict_json(&c.config, &node, &e)).into_response(),
        Err(f) => failed(f),
    }
}

/// `POST /api/conflicts/{node}/{id}/resolve`'s body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    /// `incoming` or `current`.
    pub take: Option<String>,
    /// Target column -> value (text, number or boolean; `null` for NULL).
    pub set: Option<BTreeMap<String, Value>>,
    /// Why; required.
    pub note: Option<String>,
}

/// The resolution and signature a body asks for, or what is wrong with it.
pub fn parse_resolve(
    body: &ResolveBody,
    caller: &Caller,
) -> Result<(Resolution, Signature), String> {
    let note = body.note.as_deref().unwrap_or("").trim();
    if note.is_empty() {
        return Err("a note is required: say why (it goes into the audit record)".into());
    }
    if note.chars().count() > MAX_NOTE {
        return Err(format!("the note is longer than {MAX_NOTE} characters"));
    }
    let resolution = match (body.take.as_deref(), &body.set) {
        (Some("incoming"), None) => Resolution::TakeIncoming,
        (Some("current"), None) => Resolution::KeepCurrent,
        (None, Some(set)) if !set.is_empty() => {
            let mut values = BTreeMap::new();
            for (column, v) in set {
                let text = match v {
                    Value::Null => None,
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    Value::Bool(b) => Some(b.to_string()),
                    _ => return Err(format!("set.{column}: give a text, number, boolean or null")),
                };
                values.insert(column.clone(), text);
            }
            Resolution::Values(values)
        }
        (Some(other), None) => {
            return Err(format!("take is \"incoming\" or \"current\", not {other:?}"))
        }
        _ => {
            return Err(
                "say how to resolve: {\"take\":\"incoming\"}, {\"take\":\"current\"} or {\"set\":{column: value}}"
                    .into(),
            )
        }
    };
    Ok((
        resolution,
        Signature {
            by: caller.name.clone(),
            note: note.to_string(),
        },
    ))
}

/// Resolves conflict `id` on `node` exactly as `tandem conflicts resolve` does.
pub async fn do_resolve(
    config: &Config,
    node: &str,
    id: i64,
    resolution: &Resolution,
    signature: &Signature,
) -> Result<(), Failure> {
    find_conflict(config, node, id).await?;
    apply::resolve_conflict(config, node, id, resolution, signature)
        .await
        .map_err(|e| action_error(node, &e))
}

fn action_error(node: &str, e: &ApplyError) -> Failure {
    let status = if matches!(e, ApplyError::Invalid(_)) {
        StatusCode::CONFLICT
    } else {
        StatusCode::BAD_GATEWAY
    };
    (status, format!("node {node}: {}", apply::shown(e)))
}

pub async fn resolve(
    State(c): State<Console>,
    Extension(caller): Extension<Caller>,
    Path((node, id)): Path<(String, i64)>,
    body: Bytes,
) -> Response {
    let body: ResolveBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the body is not a resolve document: {e}"),
            )
        }
    };
    let (resolution, signature) = match parse_resolve(&body, &caller) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match do_resolve(&c.config, &node, id, &resolution, &signature).await {
        Ok(()) => Json(json!({"resolved": true, "node": node, "id": id})).into_response(),
        Err(f) => failed(f),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct DeadFilter {
    pub node: Option<String>,
    /// Include replayed entries.
    #[serde(default)]
    pub all: bool,
}

/// Dead letters on every node (open only unless `all`), as JSON documents without their payload,
/// and the nodes that could not be read.
pub async fn gather_dead_letters(
    config: &Config,
    f: &DeadFilter,
) -> Result<(Vec<Value>, Vec<(String, String)>), String> {
    let asks = nodes(config, f.node.as_deref())?
        .into_iter()
        .map(|n| async move { (n, apply::list_dead_letters(config, n, !f.all).await) });
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for (node, r) in futures_util::future::join_all(asks).await {
        match r {
            Ok(letters) => found.extend(letters.into_iter().map(|d| {
                let changes = serde_json::from_str::<Vec<Value>>(&d.payload).map_or(0, |v| v.len());
                json!({"node": node, "id": d.id, "link": d.link, "source_node": d.source_node,
                       "source_position": d.source_position, "commit_time": d.commit_time,
                       "error": d.error, "attempts": d.attempts, "state": d.state, "changes": changes})
            })),
            Err(e) => errors.push((node.to_string(), apply::shown(&e))),
        }
    }
    Ok((found, errors))
}

pub async fn dead_letters(State(c): State<Console>, Query(f): Query<DeadFilter>) -> Response {
    match gather_dead_letters(&c.config, &f).await {
        Ok((found, errors)) => {
            Json(json!({"dead_letters": found, "errors": errors_json(&errors)})).into_response()
        }
        Err(e) => error(StatusCode::BAD_REQUEST, e),
    }
}

/// Replays dead letter `id` on `node` as `tandem dead-letter replay` does.
pub async fn do_replay(config: &Config, node: &str, id: i64) -> Result<(), Failure> {
    if config.node(node).is_none() {
        return Err((
            StatusCode::NOT_FOUND,
            format!("no node {node:?} in the file"),
        ));
    }
    apply::replay_dead_letter(config, node, id)
        .await
        .map_err(|f| match f.left() {
            None => (StatusCode::NOT_FOUND, apply::shown(&f.error)),
            Some(left) => {
                let (status, m) = action_error(node, &f.error);
                (status, format!("{m}; {left}"))
            }
        })
}

pub async fn replay(State(c): State<Console>, Path((node, id)): Path<(String, i64)>) -> Response {
    match do_replay(&c.config, &node, id).await {
        Ok(()) => Json(json!({"replayed": true, "node": node, "id": id})).into_response(),
        Err(f) => failed(f),
    }
}

pub async fn rules(State(c): State<Console>) -> Response {
    Json(super::rules::document(&c.config)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller() -> Caller {
        Caller {
            name: "ana".into(),
            csrf: String::new(),
        }
    }

    fn body(text: &str) -> ResolveBody {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn a_resolve_needs_a_note_and_one_way() {
        let e = parse_resolve(&body(r#"{"take":"incoming"}"#), &caller()).unwrap_err();
        assert!(e.starts_with("a note is required"), "{e}");
        let e = parse_resolve(&body(r#"{"take":"incoming","note":"  "}"#), &caller()).unwrap_err();
        assert!(e.starts_with("a note is required"), "{e}");
        let (r, s) = parse_resolve(
            &body(r#"{"take":"current","note":"desk is right"}"#),
            &caller(),
        )
        .unwrap();
        assert_eq!(r, Resolution::KeepCurrent);
        assert_eq!((s.by.as_str(), s.note.as_str()), ("ana", "desk is right"));
        let e = parse_resolve(&body(r#"{"take":"both","note":"x"}"#), &caller()).unwrap_err();
        assert!(e.contains("not \"both\""), "{e}");
        let e = parse_resolve(
            &body(r#"{"take":"incoming","set":{"a":"1"},"note":"x"}"#),
            &caller(),
        )
        .unwrap_err();
        assert!(e.starts_with("say how to resolve"), "{e}");
        let (r, _) = parse_resolve(
            &body(r#"{"set":{"name":"x","n":3,"gone":null},"note":"x"}"#),
            &caller(),
        )
        .unwrap();
        let want = BTreeMap::from([
            ("gone".to_string(), None),
            ("n".to_string(), Some("3".to_string())),
            ("name".to_string(), Some("x".to_string())),
        ]);
        assert_eq!(r, Resolution::Values(want));
        assert!(serde_json::from_str::<ResolveBody>(r#"{"tak":"incoming"}"#).is_err());
    }
}
