//! The JSON form of model values, rows and transactions: what `tandem tail` prints and what audit
//! records store.
//!
//! Lossless where JSON allows and explicit where it does not:
//! - integers beyond ±2^53 and every decimal are strings (a JSON reader would round them as numbers);
//! - floats are numbers, except `"NaN"`, `"Infinity"` and `"-Infinity"`, which are strings;
//! - bytes are base64 strings (standard alphabet, padded);
//! - an unchanged PostgreSQL TOAST value is the object `{"unchanged_toast": true}`, never `null`;
//! - dates and times are ISO 8601 strings; a `timestamptz` ends in `Z`;
//! - a JSON column is embedded as JSON; arrays and sets are arrays.

use serde_json::{json, Map, Value as Json};

use super::{time, Change, RowImage, Transaction, Value};

/// Largest integer a JSON reader using doubles holds exactly.
const MAX_SAFE: i64 = (1 << 53) - 1;

pub fn value(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Unchanged => json!({ "unchanged_toast": true }),
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) if (-MAX_SAFE..=MAX_SAFE).contains(i) => json!(i),
        Value::Int(i) => Json::String(i.to_string()),
        Value::UInt(u) if *u <= MAX_SAFE as u64 => json!(u),
        Value::UInt(u) => Json::String(u.to_string()),
        Value::Float32(x) => float(f64::from(*x), x.to_string()),
        Value::Float64(x) => float(*x, x.to_string()),
        Value::Bytes(b) => Json::String(base64(b)),
        Value::Json(text) => {
            serde_json::from_str(text).unwrap_or_else(|_| Json::String(text.clone()))
        }
        Value::Set(items) => Json::Array(items.iter().cloned().map(Json::String).collect()),
        Value::Array(items) => Json::Array(items.iter().map(value).collect()),
        other => Json::String(other.to_string()),
    }
}

fn float(x: f64, shortest: String) -> Json {
    if x.is_finite() {
        shortest
            .parse::<serde_json::Number>()
            .map_or(Json::String(shortest), Json::Number)
    } else {
        Json::String(Value::Float64(x).to_string())
    }
}

pub fn row(image: &RowImage) -> Json {
    let mut m = Map::with_capacity(image.fields.len());
    for f in &image.fields {
        m.insert(f.name.to_string(), value(&f.value));
    }
    Json::Object(m)
}

pub fn change(c: &Change) -> Json {
    json!({
        "table": c.table.to_string(),
        "op": c.op.as_str(),
        "before": c.before.as_ref().map_or(Json::Null, row),
        "after": c.after.as_ref().map_or(Json::Null, row),
    })
}

/// One transaction as one JSON object (`node`, `position`, `commit_time`, `changes`). Reads a spilled
/// change set back from disk.
pub fn transaction(t: &Transaction) -> std::io::Result<Json> {
    let changes = t
        .changes
        .iter()
        .map(|c| c.map(|c| change(&c)))
        .collect::<std::io::Result<Vec<_>>>()?;
    Ok(json!({
        "node": &*t.origin,
        "position": t.position.to_string(),
        "commit_time": format!("{}Z", time::format_timestamp(t.commit_time)),
        "changes": changes,
    }))
}

/// Standard base64 with padding (RFC 4648 section 4), the `base64` crate's standard engine.
pub fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        ChangeSet, Field, ImageKind, LoopMarks, Lsn, Op, PgPosition, Position, TableRef,
    };

    #[test]
    fn precision_is_never_lost() {
        assert_eq!(value(&Value::Int(42)), json!(42));
        assert_eq!(value(&Value::Int(i64::MIN)), json!("-9223372036854775808"));
        assert_eq!(value(&Value::UInt(u64::MAX)), json!("18446744073709551615"));
        assert_eq!(
            value(&Value::Decimal(
                "12345678901234567890.000000000001".parse().unwrap()
            )),
            json!("12345678901234567890.000000000001")
        );
        assert_eq!(value(&Value::Float64(f64::NAN)), json!("NaN"));
        assert_eq!(value(&Value::Float64(0.1)).to_string(), "0.1");
        assert_eq!(value(&Value::Unchanged), json!({"unchanged_toast": true}));
        assert_eq!(
            value(&Value::Json("{\"a\":[1,2]}".into())),
            json!({"a": [1, 2]})
        );
        assert_eq!(value(&Value::TimestampTz(0)), json!("1970-01-01T00:00:00Z"));
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn transaction_shape() {
        let t = Transaction {
            origin: "crm".into(),
            position: Position::Postgres(PgPosition {
                commit_lsn: Lsn(0x10),
                lsn: Lsn(0x20),
            }),
            commit_time: 1_000_000,
            xid: Some(7),
            marks: LoopMarks::default(),
            changes: ChangeSet::Memory(vec![Change {
                table: TableRef::new("public", "t"),
                op: Op::Update,
                before: None,
                after: Some(RowImage::new(
                    ImageKind::Full,
                    vec![Field {
                        name: "b".into(),
                        value: Value::Bytes(vec![0, 255]),
                    }],
                )),
            }]),
        };
        let j = transaction(&t).unwrap();
        assert_eq!(
            j,
            json!({"node": "crm", "position": "pg:0/10:0/20", "commit_time": "1970-01-01T00:00:01Z",
                   "changes": [{"table": "public.t", "op": "update", "before": null, "after": {"b": "AP8="}}]})
        );
    }
}
