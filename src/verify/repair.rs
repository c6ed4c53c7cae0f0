//! `tandem verify --repair`: each difference that persisted is settled by the table's conflict rule,
//! and the nodes are made equal through tandem's own apply paths (`apply::repair`), so that every
//! write replicates and leaves an audit record.
//!
//! ```text
//!  key, rows of every side ─ outcome(): owner / prefer node's state, else `manual` -> review,
//!                            else last write wins between the rows' stamps (version, priority,
//!                            node) and the missing sides' tombstones (a later delete wins)
//!    Row(w)   -> every other side: w's row written as a local write (update, else insert)
//!    Delete   -> every holder: the key deleted as a local write (its trigger leaves a tombstone)
//!    Review   -> the decider parks the other side's state; the other side defers to the decider
//!    Leave    -> nothing written; the reason is reported
//! ```
//!
//! A local write on the losing node replicates back to the winner with the winner's own values,
//! which every rule adopts as they are (only version and origin move): the nodes end equal. Under
//! `merge` a difference found by verify has no common base to merge from, so the whole row of the
//! last writer wins. Repairs are idempotent: a second run finds nothing to repair.
//!
//! Error handling: a node that cannot be written fails the command (exit 2) after the repairs made so
//! far, which are committed one key at a time and reported in the log.

use std::collections::HashMap;

use serde::Serialize;
use tracing::info;

use super::form::Form;
use super::scan::Candidate;
use super::VerifyError;
use crate::apply::{version_key, Applier, ApplyError, RepairAct};
use crate::config::{Config, ConflictRule, DeletePolicy};
use crate::conflict::Stamp;
use crate::model::{Change, Op, RowImage, Value};

/// What was done about one difference.
#[derive(Debug, Clone, Serialize)]
pub struct Repaired {
    pub table: String,
    pub key: serde_json::Value,
    /// `write`, `delete`, `review` or `none`.
    pub action: String,
    /// The node whose row won (`write`), or the node that decides (`review`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The nodes written (`write`, `delete`) or given review entries (`review`).
    pub nodes: Vec<String>,
    /// The rule that decided, or why nothing was written.
    pub why: String,
}

/// Which state of the key wins.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// Side `w`'s row.
    Row(usize),
    /// The key's absence (a later delete, or the authority lacks it).
    Delete,
    /// A person decides on side `decider`.
    Review(usize),
    Leave(String),
}

/// Apply sessions opened so far, per (source, target).
struct Links<'c> {
    config: &'c Config,
    open: HashMap<(String, String), Applier>,
}

impl Links<'_> {
    async fn get(&mut self, source: &str, target: &str) -> Result<&mut Applier, VerifyError> {
        let k = (source.to_string(), target.to_string());
        if !self.open.contains_key(&k) {
            let a = Applier::connect(self.config, source, target)
                .await
                .map_err(|e| failed(self.config, target, &e))?;
            self.open.insert(k.clone(), a);
        }
        self.open
            .get_mut(&k)
            .ok_or_else(|| VerifyError::Definite(format!("no apply session {source}->{target}")))
    }
}

fn failed(config: &Config, node: &str, e: &ApplyError) -> VerifyError {
    let text = crate::apply::shown(e);
    let text = config
        .nodes
        .values()
        .fold(text, |t, n| crate::config::scrub(&t, &n.url));
    VerifyError::Definite(format!("repair on node {node} failed: {text}"))
}

fn insert_of(table: &crate::model::TableRef, row: &RowImage) -> Change {
    Change {
        table: table.clone(),
        op: Op::Insert,
        before: None,
        after: Some(row.clone()),
    }
}

fn delete_of(table: &crate::model::TableRef, row: RowImage) -> Change {
    Change {
        table: table.clone(),
        op: Op::Delete,
        before: Some(row),
        after: None,
    }
}

/// Settles `candidates` of `form`'s table (their rows read: `keep_rows`); one entry per key.
pub async fn repair(
    config: &Config,
    form: &Form<'_>,
    candidates: &[Candidate],
    keys: Vec<serde_json::Value>,
) -> Result<Vec<Repaired>, VerifyError> {
    let mut links = Links {
        config,
        open: HashMap::new(),
    };
    let mut out = Vec::new();
    for (c, key) in candidates.iter().zip(keys) {
        let Some(rows) = c.rows.as_ref() else {
            continue;
        };
        let kind = if rows.iter().any(Option::is_none) {
            "verify_missing"
        } else {
            "verify_differs"
        };
        let outcome = outcome(config, form, rows, &mut links).await?;
        let node = |i: usize| form.sides[i].node.clone();
        let mut done = Repaired {
            table: form.table.name.clone(),
            key,
            action: "none".into(),
            from: None,
            nodes: Vec::new(),
            why: form
                .plan(0)
                .map_or("last_write_wins", |p| {
                    rule_label(p.conflict, p.owner.is_some())
                })
                .to_string(),
        };
        match outcome {
            Outcome::Row(w) => {
                done.action = "write".into();
                done.from = Some(node(w));
                let Some(row) = rows[w].as_ref() else {
                    continue;
                };
                let change = insert_of(&form.sides[w].table, row);
                for s in (0..rows.len()).filter(|&s| s != w && needs(form, c, s)) {
                    let l = links.get(&node(w), &node(s)).await?;
                    if l.repair(&change, RepairAct::Write, kind)
                        .await
                        .map_err(|e| failed(config, &node(s), &e))?
                    {
                        done.nodes.push(node(s));
                    }
                }
            }
            Outcome::Delete => {
                done.action = "delete".into();
                let Some(m) = rows.iter().position(Option::is_none) else {
                    continue;
                };
                for h in (0..rows.len()).filter(|&h| rows[h].is_some()) {
                    let Some(Ok(image)) = rows[h].as_ref().and_then(|r| form.mapped(h, m, r))
                    else {
                        continue;
                    };
                    let change = delete_of(&form.sides[m].table, image);
                    let l = links.get(&node(m), &node(h)).await?;
                    if l.repair(&change, RepairAct::Delete, kind)
                        .await
                        .map_err(|e| failed(config, &node(h), &e))?
                    {
                        done.nodes.push(node(h));
                    }
                }
            }
            Outcome::Review(d) => {
                done.action = "review".into();
                done.from = Some(node(d));
                for o in (0..rows.len()).filter(|&o| o != d) {
                    // The other side's state, parked on the decider; the decider's, deferred on the
                    // other side (so that the steward's resolution passes there).
                    let (Some(park), Some(defer)) =
                        (state_of(form, rows, o, d), state_of(form, rows, d, o))
                    else {
                        continue;
                    };
                    let l = links.get(&node(o), &node(d)).await?;
                    let parked = l
                        .repair(&park, RepairAct::Park, kind)
                        .await
                        .map_err(|e| failed(config, &node(d), &e))?;
                    let l = links.get(&node(d), &node(o)).await?;
                    l.repair(&defer, RepairAct::Defer, kind)
                        .await
                        .map_err(|e| failed(config, &node(o), &e))?;
                    if parked {
                        done.nodes.push(node(d));
                    }
                }
            }
            Outcome::Leave(why) => done.why = why,
        }
        info!(table = %form.table.name, action = %done.action, nodes = ?done.nodes, "verify repaired a key");
        out.push(done);
    }
    Ok(out)
}

/// Side `s` must be written: it lacks the row, or a finding names it.
fn needs(form: &Form<'_>, c: &Candidate, s: usize) -> bool {
    let n = &form.sides[s].node;
    c.rows.as_ref().is_some_and(|r| r[s].is_none())
        || c.findings.iter().any(|f| match f {
            super::form::Finding::Differs { nodes, .. } => nodes.contains(n),
            super::form::Finding::MissingOn(m) => m == n,
        })
}

/// Side `from`'s state of the key as a change a link `from -> to` carries: its row as an insert,
/// or, when it lacks the row, a delete of `to`'s row (mapped into `from`'s form).
fn state_of(form: &Form<'_>, rows: &[Option<RowImage>], from: usize, to: usize) -> Option<Change> {
    match (&rows[from], &rows[to]) {
        (Some(r), _) => Some(insert_of(&form.sides[from].table, r)),
        (None, Some(r)) => match form.mapped(to, from, r)? {
            Ok(image) => Some(delete_of(&form.sides[from].table, image)),
            Err(_) => None,
        },
        (None, None) => None,
    }
}

fn rule_label(rule: ConflictRule, owned: bool) -> &'static str {
    if owned {
        return "owner";
    }
    match rule {
        ConflictRule::LastWriteWins => "last_write_wins",
        ConflictRule::Prefer => "prefer",
        ConflictRule::Merge => "merge (whole row of the last writer: verify has no common base)",
        ConflictRule::Manual => "manual",
    }
}

/// Side `i`'s row's stamp: its version, and its origin marker's node (else the side's node).
fn stamp(config: &Config, form: &Form<'_>, i: usize, row: &RowImage) -> Stamp {
    let plan = form.plan(i);
    let version = plan.and_then(|p| row.get(&p.version)).and_then(version_key);
    let node = plan
        .and_then(|p| row.get(&p.origin_column))
        .and_then(|v| match v {
            Value::Text(t) if !t.is_empty() => Some(t.clone()),
            _ => None,
        })
        .unwrap_or_else(|| form.sides[i].node.clone());
    Stamp {
        version,
        priority: config.node(&node).map_or(0, |n| n.priority),
        node,
    }
}

/// Which state of the key wins under the table's rule (see the module doc).
async fn outcome(
    config: &Config,
    form: &Form<'_>,
    rows: &[Option<RowImage>],
    links: &mut Links<'_>,
) -> Result<Outcome, VerifyError> {
    let Some(plan) = (0..rows.len()).find_map(|i| form.plan(i)) else {
        return Ok(Outcome::Leave(
            "the table is not synced between these nodes".into(),
        ));
    };
    let side_of = |n: &str| form.sides.iter().position(|s| s.node == n);
    let holders: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].is_some()).collect();
    let missing: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].is_none()).collect();
    if !missing.is_empty() && plan.deletes != DeletePolicy::Propagate {
        return Ok(Outcome::Leave(
            "deletes are not propagated on this table: a row missing on a node is its policy"
                .into(),
        ));
    }
    // The latest delete any missing side remembers.
    let mut deleted_at: Option<i128> = None;
    let mut deleted_on: Vec<usize> = Vec::new();
    if let Some(&h) = holders.first() {
        for &m in &missing {
            let Some(row) = rows[h].as_ref() else {
                continue;
            };
            let change = insert_of(&form.sides[h].table, row);
            let (hn, mn) = (form.sides[h].node.clone(), form.sides[m].node.clone());
            let at = links
                .get(&hn, &mn)
                .await?
                .deleted_at(&change)
                .await
                .map_err(|e| failed(config, &mn, &e))?;
            if at.is_some() {
                deleted_on.push(m);
            }
            deleted_at = deleted_at.max(at);
        }
    }
    if let Some(owner) = plan.owner.as_deref().and_then(side_of) {
        return Ok(if rows[owner].is_some() {
            Outcome::Row(owner)
        } else {
            Outcome::Delete
        });
    }
    let preferred = (plan.conflict == ConflictRule::Prefer)
        .then(|| plan.prefer.as_deref().and_then(side_of))
        .flatten();
    if let Some(p) = preferred {
        if rows[p].is_some() {
            return Ok(Outcome::Row(p));
        }
        if deleted_on.contains(&p) {
            return Ok(Outcome::Delete);
        }
    }
    if plan.conflict == ConflictRule::Manual {
        let decider = plan
            .prefer
            .as_deref()
            .and_then(side_of)
            .or_else(|| {
                (0..form.sides.len()).max_by_key(|&i| {
                    let n = &form.sides[i].node;
                    (config.node(n).map_or(0, |c| c.priority), n.clone())
                })
            })
            .unwrap_or(0);
        return Ok(Outcome::Review(decider));
    }
    let Some(w) = holders.iter().copied().max_by(|&a, &b| {
        let (ra, rb) = (rows[a].as_ref(), rows[b].as_ref());
        match (ra, rb) {
            (Some(ra), Some(rb)) => stamp(config, form, a, ra).cmp_lww(&stamp(config, form, b, rb)),
            _ => std::cmp::Ordering::Equal,
        }
    }) else {
        return Ok(Outcome::Leave("no node holds the row".into()));
    };
    let version = rows[w]
        .as_ref()
        .and_then(|r| stamp(config, form, w, r).version);
    // A later delete wins; equal stamps keep the row (as the appliers decide).
    Ok(if deleted_at.is_some() && deleted_at > version {
        Outcome::Delete
    } else {
        Outcome::Row(w)
    })
}
