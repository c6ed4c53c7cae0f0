//! Audit records: what a conflict looked like and what was decided, as stored in the bookkeeping
//! `conflict` table (the audit log and the manual review queue). Pure data; the appliers write it.
//!
//! Row images are stored as JSON objects of column name to the value's text form (`null` for NULL),
//! so an operator can read them with any client. Values go to the table, never to logs.

use serde::{Deserialize, Serialize};

use super::ConflictKind;
use crate::model::{Field, RowImage, Value};

/// Where a conflict record stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictState {
    /// Decided and carried out (or resolved by a person).
    Resolved,
    /// Waiting in the review queue for a person (`manual`).
    Parked,
    /// A later change to a parked key, held behind it.
    Waiting,
    /// `manual` on the non-deciding node: the row was kept, and the decider's next change to the key
    /// will be applied without a version check.
    Deferred,
    /// A merge decided on the pair's decider, whose merged row is still to be rewritten as a local
    /// write (right after the commit; at the next start after a crash).
    Announcing,
}

impl ConflictState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictState::Resolved => "resolved",
            ConflictState::Parked => "parked",
            ConflictState::Waiting => "waiting",
            ConflictState::Deferred => "deferred",
            ConflictState::Announcing => "announcing",
        }
    }

    pub fn parse(s: &str) -> Option<ConflictState> {
        Some(match s {
            "resolved" => ConflictState::Resolved,
            "parked" => ConflictState::Parked,
            "waiting" => ConflictState::Waiting,
            "deferred" => ConflictState::Deferred,
            "announcing" => ConflictState::Announcing,
            _ => return None,
        })
    }
}

/// One row of the `conflict` table, as written when a conflict is detected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConflictRecord {
    /// `source->target`.
    pub link: String,
    pub source_node: String,
    /// Business table name.
    pub table: String,
    /// Physical target table, `schema.table`.
    pub target_table: String,
    /// The row key as a JSON object (see [`key_json`]).
    pub key: String,
    /// A conflict kind, or `queued` for a change waiting behind a parked one.
    pub kind: String,
    pub before: Option<serde_json::Value>,
    pub current: Option<serde_json::Value>,
    pub incoming: Option<serde_json::Value>,
    pub decision: String,
    /// The rule that decided (`last_write_wins`, `prefer`, `merge`, `manual`, `owner`).
    pub rule: String,
    pub state: ConflictState,
    pub source_position: Option<String>,
    /// For parked and waiting changes: the change itself (JSON), so it can be applied later.
    pub payload: Option<String>,
}

impl ConflictRecord {
    pub fn kind_name(kind: ConflictKind) -> String {
        kind.as_str().to_string()
    }
}

/// A conflict record read back, with its id and times.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredConflict {
    pub id: i64,
    #[serde(flatten)]
    pub record: ConflictRecord,
    /// Detection time, as the database prints it.
    pub detected_at: String,
    pub resolved_at: Option<String>,
    /// How a person resolved it (`take_incoming`, `keep_current`, `values`), or an automatic release.
    pub resolution: Option<String>,
    /// Who resolved it, as they gave their name (bookkeeping version 10).
    pub resolved_by: Option<String>,
    /// Why, in the resolver's words.
    pub note: Option<String>,
    /// Seconds since detection, by the node's clock.
    pub age_seconds: Option<f64>,
}

/// The text form a row image is stored with: `{column: text or null}`; unsent values are left out.
pub fn image_json(image: &RowImage) -> serde_json::Value {
    fields_json(image.fields.iter())
}

/// `{column: text or null}` for a set of fields.
pub fn fields_json<'a>(fields: impl Iterator<Item = &'a Field>) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for f in fields {
        let v = match &f.value {
            Value::Unchanged => continue,
            Value::Null => serde_json::Value::Null,
            other => serde_json::Value::String(other.to_string()),
        };
        map.insert(f.name.to_string(), v);
    }
    serde_json::Value::Object(map)
}

/// The canonical text of a row key: a JSON object of the key columns, in key order. Two changes to the
/// same row always give the same text, which is how the review queue finds "the same key".
/// Written straight out (the applier makes one per row it applies): the same text as
/// `fields_json(key).to_string()`, without the map and strings in between.
/// The values of a key text (`{"col":"value",…}`), sorted.
pub fn key_values(key: &str) -> Option<Vec<String>> {
    let serde_json::Value::Object(map) = serde_json::from_str(key).ok()? else {
        return None;
    };
    let mut values: Vec<String> = map
        .values()
        .map(|v| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    values.sort();
    Some(values)
}

pub fn key_json(key: &[Field]) -> String {
    let mut out = Vec::with_capacity(2 + 24 * key.len());
    out.push(b'{');
    for (i, f) in key.iter().enumerate() {
        if matches!(f.value, Value::Unchanged) {
            continue;
        }
        if key[..i].iter().any(|g| g.name == f.name) {
            // A name twice (not a key a table can have): as the map would write it.
            return fields_json(key.iter()).to_string();
        }
        if out.len() > 1 {
            out.push(b',');
        }
        // Writing a `str` into a `Vec` cannot fail.
        let _ = serde_json::to_writer(&mut out, &*f.name);
        out.push(b':');
        match &f.value {
            Value::Null => out.extend_from_slice(b"null"),
            Value::Text(t) => {
                let _ = serde_json::to_writer(&mut out, t);
            }
            other => {
                let _ = serde_json::to_writer(&mut out, &other.to_string());
            }
        }
    }
    out.push(b'}');
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod key_json_tests {
    use super::*;
    use crate::model::Field;

    #[test]
    fn key_json_is_the_text_of_fields_json() {
        let f = |n: &str, v: Value| Field {
            name: n.into(),
            value: v,
        };
        let keys = [
            vec![f("id", Value::Int(7))],
            vec![
                f("a \"q\" \\ é", Value::Text("x\ty\n\u{1}\"\\ ü 😀".into())),
                f("n", Value::Null),
                f("u", Value::Unchanged),
                f("d", Value::Decimal("12.50".parse().expect("decimal"))),
                f("b", Value::Bytes(vec![0, 255])),
            ],
            vec![f("id", Value::Int(1)), f("id", Value::Int(2))],
            vec![f("u", Value::Unchanged)],
            Vec::new(),
        ];
        for key in keys {
            assert_eq!(
                key_json(&key),
                fields_json(key.iter()).to_string(),
                "{key:?}"
            );
        }
    }
}
