//! The console's HTML pages: overview, review queue, one conflict (with the resolve form), audit
//! log, dead letters and rule set. They read and act through `api.rs`'s functions, so a page and
//! the API never disagree; a form POSTs here with the session's CSRF token.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;
use serde_json::Value;

use super::api::{self, ConflictFilter, DeadFilter, ResolveBody};
use super::auth::{form_csrf_ok, Caller};
use super::view::{esc, message, page, url_part};
use super::Console;
use crate::config::Config;
use crate::conflict::audit::StoredConflict;

fn num(v: Option<impl std::fmt::Display>) -> String {
    v.map_or("–".into(), |v| v.to_string())
}

fn errors_html(errors: &[(String, String)]) -> String {
    errors
        .iter()
        .map(|(n, e)| message(&format!("node {n} could not be read: {e}"), false))
        .collect()
}

fn csrf_field(caller: &Caller) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(&caller.csrf)
    )
}

pub async fn overview(State(c): State<Console>, Extension(caller): Extension<Caller>) -> Response {
    let (links, verified) = crate::observe::probe::survey(&c.config, None).await;
    let running = crate::observe::health::snapshot();
    let mut b = String::from(
        "<h2>Links</h2><table><tr><th>link</th><th>state</th><th>this process</th><th>changes/s (1 min)</th><th>lag (s)</th>\
         <th>lag (bytes)</th><th>last applied</th><th>open conflicts</th><th>review queue</th>\
         <th>oldest parked (s)</th><th>dead letters</th><th>log retention</th><th>problems</th></tr>",
    );
    for l in &links {
        let here = running.get(&l.link);
        let process = here.map_or("–".to_string(), |h| h.state.name().to_string());
        let rate = here.map_or("–".to_string(), |h| {
            format!("{:.1}", crate::observe::health::throughput(h))
        });
        let state_class = if l.state == "streaming" { "ok" } else { "bad" };
        b.push_str(&format!(
            "<tr><td>{}</td><td class=\"{state_class}\">{}</td><td>{}</td><td class=\"num\">{rate}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td>{}</td><td class=\"num\">{}</td><td class=\"num\"><a href=\"/conflicts?state=open&amp;node={}\">{}</a></td>\
             <td class=\"num\">{}</td><td class=\"num\"><a href=\"/dead-letters?node={}\">{}</a></td><td>{}</td><td>{}</td></tr>",
            esc(&l.link),
            esc(&l.state),
            esc(&process),
            num(l.lag_seconds.map(|s| format!("{s:.1}"))),
            num(l.lag_bytes),
            esc(l.last_applied.as_deref().unwrap_or("–")),
            l.conflicts_open,
            url_part(&l.target),
            l.review_queue,
            num(l.oldest_parked_seconds.map(|s| format!("{s:.0}"))),
            url_part(&l.target),
            l.dead_letters_open,
            esc(&l.retention),
            esc(&l.problems.join("; ")),
        ));
    }
    b.push_str("</table><h2>Last verify</h2>");
    if verified.is_empty() {
        b.push_str("<p>No <code>tandem verify</code> has been recorded.</p>");
    } else {
        b.push_str("<table><tr><th>table</th><th>rows</th><th>differences</th><th>repaired</th><th>age (s)</th></tr>");
        for v in &verified {
            b.push_str(&format!(
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num {}\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.0}</td></tr>",
                esc(&v.table),
                v.rows,
                if v.differences > 0 { "bad" } else { "ok" },
                v.differences,
                v.repaired,
                v.age_seconds
            ));
        }
        b.push_str("</table>");
    }
    page("Overview", &caller, &b).into_response()
}

fn select(name: &str, options: &[&str], chosen: Option<&str>) -> String {
    let mut s = format!("<select name=\"{name}\"><option value=\"\">any</option>");
    for o in options {
        s.push_str(&format!(
            "<option{}>{}</option>",
            if chosen == Some(*o) { " selected" } else { "" },
            esc(o)
        ));
    }
    s + "</select>"
}

fn filter_form(c: &Console, action: &str, f: &ConflictFilter) -> String {
    let nodes: Vec<&str> = c.config.nodes.keys().map(String::as_str).collect();
    let tables: Vec<&str> = c.config.tables.iter().map(|t| t.name.as_str()).collect();
    let kinds = [
        "insert_exists",
        "update_missing",
        "update_differs",
        "delete_missing",
        "delete_differs",
        "not_owner",
        "queued",
        "truncate",
        "ddl",
    ];
    let states = ["open", "parked", "waiting", "deferred", "resolved"];
    format!(
        "<form class=\"filters\" method=\"get\" action=\"{action}\"><label>state{}</label><label>node{}</label>\
         <label>table{}</label><label>kind{}</label><label>older than<input name=\"older_than\" size=\"6\" placeholder=\"e.g. 2h\" value=\"{}\"></label>\
         <label>at most (per node)<input name=\"limit\" size=\"5\" value=\"{}\"></label>\
         <button>Filter</button></form>",
        select("state", &states, f.state.as_deref()),
        select("node", &nodes, f.node.as_deref()),
        select("table", &tables, f.table.as_deref()),
        select("kind", &kinds, f.kind.as_deref()),
        esc(f.older_than.as_deref().unwrap_or("")),
        f.limit.unwrap_or(100)
    )
}

/// An age in words: `45 s`, `12 min`, `3 h`, `2 d`.
fn age(seconds: Option<f64>) -> String {
    match seconds {
        None => "–".into(),
        Some(s) if s < 120.0 => format!("{s:.0} s"),
        Some(s) if s < 7200.0 => format!("{:.0} min", s / 60.0),
        Some(s) if s < 172_800.0 => format!("{:.0} h", s / 3600.0),
        Some(s) => format!("{:.0} d", s / 86400.0),
    }
}

fn key_text(e: &StoredConflict) -> String {
    if e.record.key.is_empty() {
        "(whole table)".into()
    } else {
        e.record.key.clone()
    }
}

pub async fn queue(
    State(c): State<Console>,
    Extension(caller): Extension<Caller>,
    Query(f): Query<ConflictFilter>,
) -> Response {
    let mut b = filter_form(&c, "/conflicts", &f);
    match api::gather_conflicts(&c.config, &f).await {
        Ok((found, errors)) => {
            b.push_str(&errors_html(&errors));
            b.push_str(&format!("<p>{} record(s)</p>", found.len()));
            b.push_str("<table><tr><th>node</th><th>id</th><th>table</th><th>key</th><th>kind</th><th>decision</th><th>state</th><th>detected</th><th>age</th></tr>");
            for (node, e) in &found {
                b.push_str(&format!(
                    "<tr><td>{}</td><td><a href=\"/conflicts/{}/{}\">{}</a></td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(node),
                    url_part(node),
                    e.id,
                    e.id,
                    esc(&e.record.table),
                    esc(&key_text(e)),
                    esc(&e.record.kind),
                    esc(&e.record.decision),
                    esc(e.record.state.as_str()),
                    esc(&e.detected_at),
                    age(e.age_seconds)
                ));
            }
            b.push_str("</table>");
        }
        Err(e) => b.push_str(&message(&e, false)),
    }
    page("Review queue", &caller, &b).into_response()
}

pub async fn audit(
    State(c): State<Console>,
    Extension(caller): Extension<Caller>,
    Query(mut f): Query<ConflictFilter>,
) -> Response {
    if f.state.is_none() {
        f.state = Some("resolved".into());
    }
    let mut b = filter_form(&c, "/audit", &f);
    match api::gather_conflicts(&c.config, &f).await {
        Ok((found, errors)) => {
            b.push_str(&errors_html(&errors));
            b.push_str("<table><tr><th>node</th><th>id</th><th>table</th><th>key</th><th>kind</th><th>decision</th>\
                         <th>resolved</th><th>how</th><th>by</th><th>why</th></tr>");
            for (node, e) in &found {
                b.push_str(&format!(
                    "<tr><td>{}</td><td><a href=\"/conflicts/{}/{}\">{}</a></td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td>\
                     <td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(node),
                    url_part(node),
                    e.id,
                    e.id,
                    esc(&e.record.table),
                    esc(&key_text(e)),
                    esc(&e.record.kind),
                    esc(&e.record.decision),
                    esc(e.resolved_at.as_deref().unwrap_or(&e.detected_at)),
                    esc(e.resolution.as_deref().unwrap_or("automatic")),
                    esc(e.resolved_by.as_deref().unwrap_or("tandem")),
                    esc(e.note.as_deref().unwrap_or(""))
                ));
            }
            b.push_str("</table>");
        }
        Err(e) => b.push_str(&message(&e, false)),
    }
    page("Audit log", &caller, &b).into_response()
}

fn cell(image: &Option<Value>, column: &str) -> String {
    match image.as_ref().and_then(|i| i.get(column)) {
        None => "<span class=\"small\">–</span>".into(),
        Some(Value::Null) => "<span class=\"small\">NULL</span>".into(),
        Some(Value::String(s)) => esc(s),
        Some(other) => esc(&other.to_string()),
    }
}

fn image_text(image: &Option<Value>, column: &str) -> String {
    match image.as_ref().and_then(|i| i.get(column)) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn conflict_html(config: &Config, node: &str, e: &StoredConflict, caller: &Caller) -> String {
    let r = &e.record;
    let diff = api::differing(config, e);
    let mut columns: Vec<String> = [&r.before, &r.current, &r.incoming]
        .iter()
        .filter_map(|i| i.as_ref().and_then(Value::as_object))
        .flat_map(|m| m.keys().cloned())
        .collect();
    columns.sort();
    columns.dedup();
    let mut b = format!(
        "<table><tr><th>node</th><td>{}</td><th>link</th><td>{}</td><th>table</th><td>{} <span class=\"small\">({})</span></td></tr>\
         <tr><th>key</th><td><code>{}</code></td><th>kind</th><td>{}</td><th>rule / decision</th><td>{} / {}</td></tr>\
         <tr><th>state</th><td>{}</td><th>detected</th><td>{}</td><th>resolved</th><td>{}</td></tr>",
        esc(node), esc(&r.link), esc(&r.table), esc(&r.target_table), esc(&key_text(e)), esc(&r.kind),
        esc(&r.rule), esc(&r.decision), esc(r.state.as_str()), esc(&e.detected_at),
        esc(&match (&e.resolved_at, &e.resolution) {
            (Some(at), how) => format!("{at} ({})", how.as_deref().unwrap_or("")),
            _ => "–".into(),
        })
    );
    if e.resolved_by.is_some() || e.note.is_some() {
        b.push_str(&format!(
            "<tr><th>by</th><td>{}</td><th>why</th><td colspan=\"3\">{}</td></tr>",
            esc(e.resolved_by.as_deref().unwrap_or("")),
            esc(e.note.as_deref().unwrap_or(""))
        ));
    }
    b.push_str("</table><h2>Row images</h2><p class=\"small\">Highlighted: the fields where this node's current row and the incoming change differ.</p>\
                <table id=\"images\"><tr><th>column</th><th>before (on the source)</th><th>current (here)</th><th>incoming</th></tr>");
    for col in &columns {
        let class = if diff.contains(col) {
            " class=\"diff\""
        } else {
            ""
        };
        b.push_str(&format!(
            "<tr{class}><th>{}</th><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(col),
            cell(&r.before, col),
            cell(&r.current, col),
            cell(&r.incoming, col)
        ));
    }
    b.push_str("</table>");
    if r.state == crate::conflict::audit::ConflictState::Parked {
        b.push_str(&format!(
            "<h2>Resolve</h2><form method=\"post\" action=\"/conflicts/{}/{}/resolve\" id=\"resolve\" \
             data-confirm=\"Resolve this conflict? The result replicates to every node.\">{}\
             <p><label style=\"flex-direction:row;gap:.4em\"><input type=\"radio\" name=\"how\" value=\"incoming\" required> Take the incoming change</label>\
             <label style=\"flex-direction:row;gap:.4em\"><input type=\"radio\" name=\"how\" value=\"current\"> Keep the current row</label>\
             <label style=\"flex-direction:row;gap:.4em\"><input type=\"radio\" name=\"how\" value=\"values\"> Write these values:</label></p><table>",
            url_part(node),
            e.id,
            csrf_field(caller)
        ));
        for col in columns.iter().filter(|c| !api::is_own_column(config, c)) {
            b.push_str(&format!(
                "<tr><th>{0}</th><td><input name=\"set.{0}\" value=\"{1}\" size=\"40\"></td>\
                 <td><label style=\"flex-direction:row;gap:.3em\"><input type=\"checkbox\" name=\"null.{0}\" value=\"1\"> NULL</label></td></tr>",
                esc(col),
                esc(&image_text(&r.current, col))
            ));
        }
        b.push_str("</table><label>Why (required; it goes into the audit record)<textarea name=\"note\" required maxlength=\"2000\"></textarea></label>\
                    <p><button>Resolve</button></p></form>");
    }
    b
}

#[derive(Debug, Deserialize)]
pub struct Done {
    done: Option<String>,
}

pub async fn conflict(
    State(c): State<Console>,
    Extension(caller): Extension<Caller>,
    Path((node, id)): Path<(String, i64)>,
    Query(done): Query<Done>,
) -> Response {
    let title = format!("Conflict {id} on {node}");
    match api::find_conflict(&c.config, &node, id).await {
        Ok(e) => {
            let note = done
                .done
                .map(|d| {
                    message(
                        &format!("Done: {d}. The result replicates like any other change."),
                        true,
                    )
                })
                .unwrap_or_default();
            page(
                &title,
                &caller,
                &(note + &conflict_html(&c.config, &node, &e, &caller)),
            )
            .into_response()
        }
        Err((status, m)) => (status, page(&title, &caller, &message(&m, false))).into_response(),
    }
}

/// The resolve form as the API's body: `how`, `set.<column>`, `null.<column>`, `note`, `csrf`.
fn form_body(form: &[(String, String)]) -> (ResolveBody, String) {
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let mut body = ResolveBody {
        note: get("note"),
        ..ResolveBody::default()
    };
    match get("how").as_deref() {
        Some("values") => {
            let mut set = BTreeMap::new();
            for (k, v) in form {
                if let Some(col) = k.strip_prefix("set.") {
                    set.insert(col.to_string(), Value::String(v.clone()));
                }
            }
            for (k, _) in form {
                if let Some(col) = k.strip_prefix("null.") {
                    set.insert(col.to_string(), Value::Null);
                }
            }
            body.set = Some(set);
        }
        Some(other) => body.take = Some(other.to_string()),
        None => {}
    }
    (body, get("csrf").unwrap_or_default())
}

pub async fn resolve(
    State(c): State<Console>,
    Extension(caller): Extension<Caller>,
    Path((node, id)): Path<(String, i64)>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let (body, csrf) = form_body(&form);
    let title = format!("Conflict {id} on {node}");
    if !form_csrf_ok(&caller, &csrf) {
        return (
            StatusCode::FORBIDDEN,
            page(
                &title,
                &caller,
                &message(
                    "The form is stale or not from this console: reload the page and try again.",
                    false,
                ),
            ),
        )
            .into_response();
    }
    let outcome = match api::parse_resolve(&body, &caller) {
        Ok((resolution, signature)) => {
            api::do_resolve(&c.config, &node, id, &resolution, &signature).await
        }
        Err(m) => Err((StatusCode::BAD_REQUEST, m)),
    };
    match outcome {
        Ok(()) => Redirect::to(&format!(
            "/conflicts/{}/{id}?done=resolved",
            url_part(&node)
        ))
        .into_response(),
        Err((status, m)) => {
            let rest = match api::find_conflict(&c.config, &node, id).await {
                Ok(e) => conflict_html(&c.config, &node, &e, &caller),
                Err(_) => String::new(),
            };
            (status, page(&title, &caller, &(message(&m, false) + &rest))).into_response()
        }
    }
}

pub async fn dead_letters(
    State(c): State<Console>,
    Extension(caller): Extension<Caller>,
    Query(f): Query<DeadFilter>,
) -> Response {
    let mut b = format!(
        "<form class=\"filters\" method=\"get\"><label>node{}</label><label style=\"flex-direction:row;gap:.3em\">\
         <input type=\"checkbox\" name=\"all\" value=\"true\"{}> replayed ones too</label><button>Filter</button></form>",
        select("node", &c.config.nodes.keys().map(String::as_str).collect::<Vec<_>>(), f.node.as_deref()),
        if f.all { " checked" } else { "" }
    );
    match api::gather_dead_letters(&c.config, &f).await {
        Ok((found, errors)) => {
            b.push_str(&errors_html(&errors));
            b.push_str("<table><tr><th>node</th><th>id</th><th>link</th><th>source position</th><th>changes</th>\
                        <th>attempts</th><th>state</th><th>error</th><th></th></tr>");
            for d in &found {
                let s = |k: &str| d[k].as_str().unwrap_or("").to_string();
                let node = s("node");
                let id = d["id"].as_i64().unwrap_or(0);
                let button = if s("state") == "open" {
                    format!(
                        "<form method=\"post\" action=\"/dead-letters/{}/{id}/replay\" data-confirm=\"Apply this transaction again?\">{}<button>Replay</button></form>",
                        url_part(&node),
                        csrf_field(&caller)
                    )
                } else {
                    String::new()
                };
                b.push_str(&format!(
                    "<tr><td>{}</td><td>{id}</td><td>{}</td><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                     <td>{}</td><td>{}</td><td>{button}</td></tr>",
                    esc(&node), esc(&s("link")), esc(&s("source_position")), d["changes"], d["attempts"],
                    esc(&s("state")), esc(&s("error"))
                ));
            }
            b.push_str("</table>");
        }
        Err(e) => b.push_str(&message(&e, false)),
    }
    page("Dead letters", &caller, &b).into_response()
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn replay(
    State(c): State<Console>,
    Extension(caller): Extension<Caller>,
    Path((node, id)): Path<(String, i64)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let title = format!("Dead letter {id} on {node}");
    if !form_csrf_ok(&caller, &form.csrf) {
        return (
            StatusCode::FORBIDDEN,
            page(
                &title,
                &caller,
                &message(
                    "The form is stale or not from this console: reload the page and try again.",
                    false,
                ),
            ),
        )
            .into_response();
    }
    let body = match api::do_replay(&c.config, &node, id).await {
        Ok(()) => message(&format!("Dead letter {id} on {node} was applied."), true),
        Err((_, m)) => message(&format!("{m}."), false),
    };
    page(
        &title,
        &caller,
        &(body + "<p><a href=\"/dead-letters\">Back to the dead letters</a></p>"),
    )
    .into_response()
}

pub async fn rules(State(c): State<Console>, Extension(caller): Extension<Caller>) -> Response {
    let doc = super::rules::document(&c.config);
    let b = format!(
        "<p class=\"small\">From the configuration file this process runs. For a wiki: <code>tandem rules --format markdown</code>.</p>{}",
        super::rules::html_body(&doc)
    );
    page("Rule set", &caller, &b).into_response()
}
