//! PostgreSQL values: model values to the text form PostgreSQL reads, column kinds from type names.

use crate::apply::target::ColKind;
use crate::model::{time, Value};

/// The column kind of a PostgreSQL type (as `format_type` prints it without modifier).
pub fn kind_of(base: &str) -> ColKind {
    match base {
        "boolean" => ColKind::Bool,
        "smallint" | "integer" | "bigint" | "oid" => ColKind::Int,
        "real" | "double precision" => ColKind::Float,
        "numeric" | "money" => ColKind::Numeric,
        "text" | "character varying" | "character" | "name" | "citext" => ColKind::Text,
        "bytea" => ColKind::Bytes,
        "json" | "jsonb" => ColKind::Json,
        "uuid" => ColKind::Uuid,
        "date" => ColKind::Date,
        "time without time zone" | "time with time zone" => ColKind::Time,
        "timestamp without time zone" => ColKind::Timestamp,
        "timestamp with time zone" => ColKind::TimestampTz,
        "bit" | "bit varying" => ColKind::Bit,
        _ => ColKind::Other,
    }
}

/// The type a text parameter is cast to for a column whose `format_type` without modifier is `base`.
/// In a cast, the bare SQL names `character` and `bit` mean length 1 (`'abc'::character` is `'a'`,
/// `'11'::bit` fails), so those take their internal names, which carry no length; the column's own
/// declared length is then enforced by the assignment, which fails rather than truncates.
pub fn cast_type(base: &str) -> String {
    let elem = base.trim_end_matches("[]");
    let dims = &base[elem.len()..];
    let elem = match elem {
        "character" => "bpchar",
        "bit" => "\"bit\"",
        other => other,
    };
    format!("{elem}{dims}")
}

/// The text PostgreSQL reads for `v` in a column of `kind`. `None` is SQL NULL. `source_offset_secs`
/// is the source node's UTC offset, for a wall-clock value written to a `timestamptz`.
pub fn to_text(v: &Value, kind: ColKind, source_offset_secs: i32) -> Option<String> {
    Some(match (v, kind) {
        (Value::Null | Value::Unchanged, _) => return None,
        (Value::Bool(b), ColKind::Int | ColKind::Numeric) => u8::from(*b).to_string(),
        (Value::Bool(b), _) => if *b { "t" } else { "f" }.to_string(),
        (Value::Timestamp(t), ColKind::TimestampTz) if *t != i64::MAX && *t != i64::MIN => {
            let utc = t - i64::from(source_offset_secs) * 1_000_000;
            format!("{}Z", time::format_timestamp(utc))
        }
        (Value::TimestampTz(t), ColKind::Timestamp) if *t != i64::MAX && *t != i64::MIN => {
            time::format_timestamp(*t)
        }
        (Value::Array(items), _) => array_text(items),
        (Value::Set(items), _) => items.join(","),
        (Value::Bytes(b), ColKind::Text) => String::from_utf8_lossy(b).into_owned(),
        (other, _) => other.to_string(),
    })
}

fn array_text(items: &[Value]) -> String {
    let mut out = String::from("{");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match item {
            Value::Null => out.push_str("NULL"),
            Value::Array(inner) => out.push_str(&array_text(inner)),
            other => {
                let text = to_text(other, ColKind::Other, 0).unwrap_or_default();
                out.push('"');
                for c in text.chars() {
                    if c == '"' || c == '\\' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push('"');
            }
        }
    }
    out.push('}');
    out
}

/// The column a data error most likely comes from, judged from the declared type: a text longer than
/// a `character varying(n)`, an integer outside its type's range.
pub fn suspect_column<'a>(
    fields: impl Iterator<Item = (&'a str, &'a Value, &'a str)>,
    sqlstate: &str,
) -> Option<String> {
    for (name, value, type_name) in fields {
        let limit = type_name.split_once('(').and_then(|(_, r)| {
            r.trim_end_matches(')')
                .split(',')
                .next()?
                .trim()
                .parse::<usize>()
                .ok()
        });
        let bad = match (sqlstate, value) {
            ("22001", Value::Text(s)) => limit.is_some_and(|n| s.chars().count() > n),
            ("22003", Value::Int(i)) => match type_name {
                "smallint" => i16::try_from(*i).is_err(),
                "integer" => i32::try_from(*i).is_err(),
                _ => false,
            },
            ("22003", Value::UInt(u)) => match type_name {
                "smallint" => i16::try_from(*u).is_err(),
                "integer" => i32::try_from(*u).is_err(),
                "bigint" => i64::try_from(*u).is_err(),
                _ => false,
            },
            ("22003", Value::Decimal(d)) => {
                type_name.starts_with("numeric(") && {
                    let p = limit.unwrap_or(usize::MAX);
                    let s = type_name
                        .split(',')
                        .nth(1)
                        .and_then(|x| x.trim_end_matches(')').trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    let int_digits = d.precision().saturating_sub(d.scale());
                    int_digits > p.saturating_sub(s)
                }
            }
            _ => false,
        };
        if bad {
            return Some(name.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_postgres_reads() {
        assert_eq!(
            to_text(&Value::Bool(true), ColKind::Int, 0).as_deref(),
            Some("1")
        );
        assert_eq!(
            to_text(
                &Value::Array(vec![Value::Text("a,\"b".into()), Value::Null]),
                ColKind::Other,
                0
            )
            .as_deref(),
            Some("{\"a,\\\"b\",NULL}")
        );
        assert_eq!(
            to_text(&Value::Timestamp(0), ColKind::TimestampTz, 3600).as_deref(),
            Some("1969-12-31T23:00:00Z")
        );
        assert_eq!(to_text(&Value::Null, ColKind::Text, 0), None);
    }

    #[test]
    fn casts_keep_the_declared_length() {
        assert_eq!(cast_type("character"), "bpchar");
        assert_eq!(cast_type("character[]"), "bpchar[]");
        assert_eq!(cast_type("bit[][]"), "\"bit\"[][]");
        assert_eq!(cast_type("character varying"), "character varying");
    }

    #[test]
    fn suspects_the_column_that_cannot_hold_the_value() {
        let long = Value::Text("abcdef".into());
        let short = Value::Text("ab".into());
        let cols = [
            ("a", &short, "character varying(5)"),
            ("b", &long, "character varying(5)"),
        ];
        assert_eq!(
            suspect_column(cols.iter().map(|(n, v, t)| (*n, *v, *t)), "22001").as_deref(),
            Some("b")
        );
    }
}
