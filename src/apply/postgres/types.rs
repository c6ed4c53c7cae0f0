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
        "geometry" => ColKind::Geometry,
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
            pg_timestamp(t - i64::from(source_offset_secs) * 1_000_000, "+00")
        }
        (Value::TimestampTz(t), ColKind::Timestamp) if *t != i64::MAX && *t != i64::MIN => {
            pg_timestamp(*t, "")
        }
        // PostgreSQL's own form for its own temporal columns (array elements come as `Other`); a
        // text column keeps the ISO form.
        (Value::Timestamp(t), k) if temporal(k) && *t != i64::MAX && *t != i64::MIN => {
            pg_timestamp(*t, "")
        }
        (Value::TimestampTz(t), k) if temporal(k) && *t != i64::MAX && *t != i64::MIN => {
            pg_timestamp(*t, "+00")
        }
        (Value::Date(d), k) if temporal(k) && *d != i32::MAX && *d != i32::MIN => {
            pg_date(i64::from(*d))
        }
        (Value::Array(items), _) => array_text(items, ','),
        // PostGIS reads hex EWKB; plain WKB (from bytes) is EWKB without an SRID.
        (Value::Geometry { srid, wkb }, ColKind::Geometry) => {
            crate::model::ewkb::to_hex(*srid, wkb)
        }
        (Value::Bytes(b), ColKind::Geometry) => crate::model::ewkb::to_hex(0, b),
        (Value::Set(items), _) => items.join(","),
        (Value::Bytes(b), ColKind::Text) => String::from_utf8_lossy(b).into_owned(),
        // A MySQL BINARY(16) holding a UUID.
        (Value::Bytes(b), ColKind::Uuid) if b.len() == 16 => {
            let mut u = [0u8; 16];
            u.copy_from_slice(b);
            crate::model::format_uuid(&u)
        }
        (other, _) => other.to_string(),
    })
}

/// A date as PostgreSQL writes it: `YYYY-MM-DD`, years past 9999 with more digits and no sign, years
/// up to 0 (astronomical) as `YYYY-MM-DD BC`. The ISO form's signed years (`+21016-…`, `-4712-…`)
/// would be read as zone displacements.
fn pg_date(days: i64) -> String {
    let (body, bc) = pg_date_parts(days);
    format!("{body}{bc}")
}

fn pg_date_parts(days: i64) -> (String, &'static str) {
    let (y, m, d) = time::civil_from_days(days);
    if y <= 0 {
        (format!("{:04}-{m:02}-{d:02}", 1 - y), " BC")
    } else {
        (format!("{y:04}-{m:02}-{d:02}"), "")
    }
}

/// A date-time as PostgreSQL writes it (see [`pg_date`]), with `zone` (`+00` or nothing) before the era.
fn pg_timestamp(micros: i64, zone: &str) -> String {
    let days = micros.div_euclid(time::MICROS_PER_DAY);
    let tod = micros.rem_euclid(time::MICROS_PER_DAY);
    let (date, bc) = pg_date_parts(days);
    format!("{date} {}{zone}{bc}", time::format_time(tod))
}

fn temporal(kind: ColKind) -> bool {
    matches!(
        kind,
        ColKind::Date | ColKind::Timestamp | ColKind::TimestampTz | ColKind::Other
    )
}

/// An array literal with `delim` between elements (the element type's `typdelim`).
pub fn array_text(items: &[Value], delim: char) -> String {
    let mut out = String::from("{");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(delim);
        }
        match item {
            Value::Null => out.push_str("NULL"),
            Value::Array(inner) => out.push_str(&array_text(inner, delim)),
            other => {
                let text = match other {
                    Value::Geometry { srid, wkb } => crate::model::ewkb::to_hex(*srid, wkb),
                    _ => to_text(other, ColKind::Other, 0).unwrap_or_default(),
                };
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
            // A NUL character, which MySQL/MariaDB text admits: PostgreSQL names no column for it.
            ("22021", Value::Text(s)) => s.contains('\0'),
            ("22021", Value::Bytes(b)) => b.contains(&0),
            // A MySQL zero or partly-zero date, a MySQL TIME beyond a day or negative: PostgreSQL
            // names no column for them.
            ("22007" | "22008", Value::Other { type_name, .. }) => type_name == "zero_date",
            ("22007" | "22008", Value::Time(t)) => {
                type_name.starts_with("time") && (*t < 0 || *t > 86_400_000_000)
            }
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

/// A JSON array as a PostgreSQL array literal (`[1, null, "a"]` -> `{"1",NULL,"a"}`), nested arrays
/// as dimensions; `None` for JSON that is not an array (PostgreSQL then refuses the text).
pub fn json_array_text(json: &str) -> Option<String> {
    fn items(v: &serde_json::Value) -> Option<Value> {
        Some(match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Array(a) => {
                Value::Array(a.iter().map(items).collect::<Option<_>>()?)
            }
            serde_json::Value::String(s) => Value::Text(s.clone()),
            serde_json::Value::Bool(b) => Value::Text(if *b { "t" } else { "f" }.into()),
            other => Value::Text(other.to_string()),
        })
    }
    match serde_json::from_str::<serde_json::Value>(json).ok()? {
        a @ serde_json::Value::Array(_) => match items(&a)? {
            Value::Array(list) => Some(array_text(&list, ',')),
            _ => None,
        },
        _ => None,
    }
}

/// The one column with a value whose type an input error names (`invalid input syntax for type
/// uuid: …`, `invalid input value for enum mood: …`); PostgreSQL names no column for them.
pub fn column_of_named_type<'a>(
    fields: impl Iterator<Item = (&'a str, &'a Value, &'a str)>,
    message: &str,
) -> Option<String> {
    let (_, rest) = message
        .split_once("for type ")
        .or_else(|| message.split_once("for enum "))?;
    let named = rest.split(':').next()?.trim();
    let base = |t: &str| t.split('(').next().unwrap_or(t).trim().to_string();
    let mut hits = fields.filter(|(_, v, t)| !v.is_null() && base(t) == named);
    let (name, _, _) = hits.next()?;
    hits.next().is_none().then(|| name.to_string())
}

/// The column whose value the server quoted in a message that names no column (`malformed array
/// literal: "…"`): the one field whose text, as sent, is the quoted literal. `fields` are each
/// field's name and text.
pub fn column_of_literal<'a>(
    fields: impl Iterator<Item = (&'a str, Option<String>)>,
    message: &str,
) -> Option<String> {
    let (_, rest) = message.split_once(": \"")?;
    let literal = rest.strip_suffix('"')?;
    let mut hits = fields.filter(|(_, text)| text.as_deref() == Some(literal));
    let (name, _) = hits.next()?;
    hits.next().is_none().then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quoted_literal_names_its_column() {
        let fields = || {
            [
                ("id", Some("5".to_string())),
                ("ja", Some("{\"k\": 1}".to_string())),
                ("jt", None),
            ]
            .into_iter()
        };
        assert_eq!(
            column_of_literal(fields(), "malformed array literal: \"{\"k\": 1}\"").as_deref(),
            Some("ja")
        );
        assert_eq!(
            column_of_literal(fields(), "malformed array literal: \"x\""),
            None
        );
        assert_eq!(column_of_literal(fields(), "no literal quoted"), None);
        let twice = [("a", Some("x".to_string())), ("b", Some("x".to_string()))];
        assert_eq!(
            column_of_literal(twice.into_iter(), "malformed array literal: \"x\""),
            None,
            "two columns with that text: neither is named"
        );
    }

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
            Some("1969-12-31 23:00:00+00")
        );
        assert_eq!(to_text(&Value::Null, ColKind::Text, 0), None);
    }

    #[test]
    fn dates_beyond_year_9999_and_before_year_1_in_postgres_form() {
        let ts = |y, m, d, us| time::days_from_civil(y, m, d) * time::MICROS_PER_DAY + us;
        let text = |v: Value, k| to_text(&v, k, 0).unwrap_or_default();
        let late = ts(21016, 11, 4, 49_890_123_456);
        assert_eq!(
            text(Value::Timestamp(late), ColKind::Timestamp),
            "21016-11-04 13:51:30.123456"
        );
        let bc = ts(-4712, 12, 31, time::MICROS_PER_DAY - 1);
        assert_eq!(
            text(Value::TimestampTz(bc), ColKind::TimestampTz),
            "4713-12-31 23:59:59.999999+00 BC"
        );
        let day = time::days_from_civil(0, 1, 1) as i32;
        assert_eq!(text(Value::Date(day), ColKind::Date), "0001-01-01 BC");
        assert_eq!(
            text(Value::Timestamp(i64::MAX), ColKind::Timestamp),
            "infinity"
        );
    }

    #[test]
    fn json_arrays_as_array_literals() {
        assert_eq!(
            json_array_text(r#"[1, null, "a,\"b", true, [2]]"#).as_deref(),
            Some(r#"{"1",NULL,"a,\"b","t",{"2"}}"#)
        );
        assert_eq!(json_array_text("[]").as_deref(), Some("{}"));
        assert_eq!(json_array_text(r#"{"a": 1}"#), None);
    }

    #[test]
    fn input_errors_name_the_column_of_their_type() {
        let (u, e, n) = (
            Value::Text("x".into()),
            Value::Text("y".into()),
            Value::Null,
        );
        let cols = [("a", &n, "uuid"), ("b", &u, "uuid"), ("c", &e, "mood")];
        let find = |m| column_of_named_type(cols.iter().map(|(a, b, c)| (*a, *b, *c)), m);
        assert_eq!(
            find("invalid input syntax for type uuid: \"…\"").as_deref(),
            Some("b")
        );
        assert_eq!(
            find("invalid input value for enum mood: \"…\"").as_deref(),
            Some("c")
        );
        assert_eq!(find("date/time field value out of range"), None);
        let uuid = to_text(&Value::Bytes((0..16).collect()), ColKind::Uuid, 0);
        assert_eq!(
            uuid.as_deref(),
            Some("00010203-0405-0607-0809-0a0b0c0d0e0f")
        );
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
        let zero = Value::Other {
            type_name: "zero_date".into(),
            text: "0000-00-00".into(),
        };
        let day = Value::Time(time::MICROS_PER_DAY);
        let long = Value::Time(838 * 3600 * 1_000_000);
        let cols = [
            ("d", &zero, "date"),
            ("t", &day, "time without time zone"),
            ("u", &long, "time(6) without time zone"),
        ];
        let suspect = |state| suspect_column(cols.iter().map(|(n, v, t)| (*n, *v, *t)), state);
        assert_eq!(suspect("22008").as_deref(), Some("d"));
        assert_eq!(
            suspect_column(cols[1..].iter().map(|(n, v, t)| (*n, *v, *t)), "22008").as_deref(),
            Some("u")
        );
    }
}
