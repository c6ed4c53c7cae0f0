//! What `tandem verify` prints: the differences and the per-table counts, as JSON
//! (`{ "differences": [ { "table", "key", "kind", "columns", "nodes" } ], "tables": [ { "table",
//! "rows", "chunks", "differences", "unlisted", "chunks_hashed", "chunks_read", "row_by_row" } ] }`)
//! or as text. Keys are row values: they go to the output
//! the operator asked for, never to the log; other values only with `--show-values`.

use std::fmt::Write as _;

use serde::Serialize;

use super::form::{Finding, Form};
use super::repair::Repaired;
use super::scan::{Candidate, Pass};
use super::settle::Settled;
use crate::model::{RowImage, Value};

/// One difference.
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    /// Business table.
    pub table: String,
    /// Business key columns and their values (text).
    pub key: serde_json::Value,
    /// `missing_on <node>` or `differs`.
    pub kind: String,
    /// Business columns that differ (empty for `missing_on`).
    pub columns: Vec<String>,
    /// `missing_on`: the nodes holding the row; `differs`: the two nodes whose rows differ.
    pub nodes: Vec<String>,
    /// With `--show-values`: per node, the row's values (`differs`: the differing columns only), in
    /// business column names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<serde_json::Value>,
}

/// One table's counts.
#[derive(Debug, Clone, Serialize)]
pub struct TableResult {
    pub table: String,
    /// Distinct keys read on any node.
    pub rows: u64,
    /// Key ranges: chunks hashed in the databases plus batches read row by row (of the node that
    /// needed most).
    pub chunks: u64,
    pub differences: u64,
    /// Keys that differed in the first pass beyond `--max-differences`: neither listed nor re-read
    /// (some may have been in flight).
    pub unlisted: u64,
    /// Chunks whose count and hash were equal on every node: not read row by row.
    pub chunks_hashed: u64,
    /// Chunks read row by row: those whose hashes differed, or every batch when the table could
    /// not be hashed.
    pub chunks_read: u64,
    /// Why the whole table was read row by row (`null`: it was hashed).
    pub row_by_row: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub differences: Vec<Difference>,
    pub tables: Vec<TableResult>,
    /// How the wait for in-flight changes ended (`null`: no pass found a difference).
    pub settled: Option<Settled>,
    /// With `--repair`: what was done about each differing key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repairs: Option<Vec<Repaired>>,
}

pub(super) fn build(
    forms: &[Form],
    passes: &[Pass],
    settled: Option<Settled>,
    repairs: Option<Vec<Repaired>>,
) -> Report {
    let mut differences = Vec::new();
    let mut tables = Vec::new();
    for (f, p) in forms.iter().zip(passes) {
        let before = differences.len();
        for c in &p.candidates {
            differences.extend(describe(f, c));
        }
        tables.push(TableResult {
            table: f.table.name.clone(),
            rows: p.rows,
            chunks: p.chunks,
            differences: (differences.len() - before) as u64,
            unlisted: p.unlisted,
            chunks_hashed: p.chunks_hashed,
            chunks_read: p.chunks.saturating_sub(p.chunks_hashed),
            row_by_row: p.row_by_row.clone(),
        });
    }
    Report {
        differences,
        tables,
        settled,
        repairs,
    }
}

fn text(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        other => serde_json::Value::String(other.to_string()),
    }
}

/// The candidate's key as `{business key column: text}`.
pub(super) fn key_of(f: &Form, c: &Candidate) -> serde_json::Value {
    let mut key = serde_json::Map::new();
    for (name, v) in f.table.key.iter().zip(&c.key) {
        key.insert(name.clone(), text(v));
    }
    serde_json::Value::Object(key)
}

fn describe(f: &Form, c: &Candidate) -> Vec<Difference> {
    let key = key_of(f, c);
    let holders: Vec<String> = f
        .sides
        .iter()
        .zip(&c.held)
        .filter(|(_, held)| **held)
        .map(|(s, _)| s.node.clone())
        .collect();
    c.findings
        .iter()
        .map(|finding| {
            let (kind, columns, nodes) = match finding {
                Finding::MissingOn(n) => (format!("missing_on {n}"), Vec::new(), holders.clone()),
                Finding::Differs { nodes, columns } => {
                    ("differs".to_string(), columns.clone(), nodes.to_vec())
                }
            };
            let values = c
                .rows
                .as_ref()
                .map(|rows| values(f, rows, &nodes, &columns));
            Difference {
                table: f.table.name.clone(),
                key: key.clone(),
                kind,
                columns,
                nodes,
                values,
            }
        })
        .collect()
}

/// `{node: {business column: value}}` for `nodes`' rows; every column when `columns` is empty.
fn values(
    f: &Form,
    rows: &[Option<RowImage>],
    nodes: &[String],
    columns: &[String],
) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for (i, side) in f.sides.iter().enumerate() {
        let Some(Some(row)) = rows.get(i).filter(|_| nodes.contains(&side.node)) else {
            continue;
        };
        let mut m = serde_json::Map::new();
        for field in &row.fields {
            let business = f.business_name(i, &field.name);
            if columns.is_empty() || columns.iter().any(|c| c == business) {
                m.insert(business.to_string(), text(&field.value));
            }
        }
        out.insert(side.node.clone(), serde_json::Value::Object(m));
    }
    serde_json::Value::Object(out)
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty() && self.tables.iter().all(|t| t.unlisted == 0)
    }

    /// The report for a person.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for d in &self.differences {
            let _ = write!(out, "{} {} {}", d.table, d.key, d.kind);
            if !d.columns.is_empty() {
                let _ = write!(out, ": {}", d.columns.join(", "));
            }
            let _ = writeln!(out, " ({})", d.nodes.join(", "));
            if let Some(serde_json::Value::Object(per_node)) = &d.values {
                for (node, v) in per_node {
                    let _ = writeln!(out, "    {node}: {v}");
                }
            }
        }
        for t in &self.tables {
            let _ = writeln!(
                out,
                "table {}: {} rows, {} chunks ({} hashed, {} read row by row), {} differences",
                t.table, t.rows, t.chunks, t.chunks_hashed, t.chunks_read, t.differences
            );
            if let Some(why) = &t.row_by_row {
                let _ = writeln!(out, "  read row by row: {why}");
            }
            if t.unlisted > 0 {
                let _ = writeln!(
                    out,
                    "  and {} more keys that differed in the first pass, beyond --max-differences: neither listed nor re-read",
                    t.unlisted
                );
            }
        }
        if let Some(s) = &self.settled {
            if s.complete() {
                let _ = writeln!(
                    out,
                    "links: every link had applied what was in flight ({:.1} s waited)",
                    s.waited_seconds
                );
            }
            if !s.lagging.is_empty() {
                let _ = writeln!(
                    out,
                    "links still behind after {:.0} s: {}; the differences may include changes in flight, run verify again",
                    s.waited_seconds,
                    s.lagging.join(", ")
                );
            }
            if !s.not_streaming.is_empty() {
                let _ = writeln!(
                    out,
                    "links not streaming (not waited for): {}",
                    s.not_streaming.join(", ")
                );
            }
        }
        for r in self.repairs.iter().flatten() {
            let _ = match r.action.as_str() {
                "write" => writeln!(
                    out,
                    "repaired {} {}: {}'s row written on {} ({})",
                    r.table,
                    r.key,
                    r.from.as_deref().unwrap_or("?"),
                    r.nodes.join(", "),
                    r.why
                ),
                "delete" => writeln!(
                    out,
                    "repaired {} {}: deleted on {} ({})",
                    r.table,
                    r.key,
                    r.nodes.join(", "),
                    r.why
                ),
                "review" => writeln!(
                    out,
                    "queued {} {} for review on {} (manual): see `tandem conflicts list --node {}`",
                    r.table,
                    r.key,
                    r.nodes.join(", "),
                    r.from.as_deref().unwrap_or("?")
                ),
                _ => writeln!(out, "not repaired {} {}: {}", r.table, r.key, r.why),
            };
        }
        let _ = writeln!(
            out,
            "{}",
            if self.is_clean() {
                "verify: the nodes are equal".to_string()
            } else {
                format!("verify: {} differences", self.differences.len())
            }
        );
        out
    }
}
