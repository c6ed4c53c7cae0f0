//! The value classes a cross-engine column pair can refuse at apply time, beyond what the declared
//! types' ranges say (see [`super::types::fits`]): values one engine admits and the other has no
//! form for (PostgreSQL `infinity` and `NaN`, dates beyond year 9999 or before Christ, MySQL zero
//! dates, characters a MySQL character set cannot hold, the NUL character PostgreSQL text cannot
//! hold, a spatial value's SRID in a bytes column).
//!
//! [`classes`] answers from the declared types of both sides, for `tandem check`; [`refuses`] holds
//! one sampled value against the target column, for `tandem check --sample`. Both are pure.

use crate::config::Engine;
use crate::model::schema::ColumnSchema;
use crate::model::schema::ColumnType;
use crate::model::Value;

/// One column on one node.
#[derive(Debug, Clone, Copy)]
pub struct Side<'a> {
    pub engine: Engine,
    pub column: &'a ColumnSchema,
}

/// A class of values the target refuses (or, `changed`, stores otherwise: the documented mapping
/// changes them), and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Class {
    pub what: String,
    pub fix: String,
    pub changed: bool,
}

fn class(what: impl Into<String>, fix: impl Into<String>) -> Class {
    Class {
        what: what.into(),
        fix: fix.into(),
        changed: false,
    }
}

fn changed(what: impl Into<String>, fix: impl Into<String>) -> Class {
    Class {
        changed: true,
        ..class(what, fix)
    }
}

/// The character sets that hold every Unicode character.
fn full_unicode(charset: &str) -> bool {
    matches!(
        charset.to_ascii_lowercase().as_str(),
        "utf8mb4" | "utf16" | "utf16le" | "utf32" | "binary"
    )
}

fn is_utf8mb3(charset: &str) -> bool {
    matches!(charset.to_ascii_lowercase().as_str(), "utf8mb3" | "utf8")
}

fn temporal(t: &ColumnType) -> bool {
    matches!(t, ColumnType::Date | ColumnType::Timestamp { .. })
}

fn textual(t: &ColumnType) -> bool {
    matches!(
        t,
        ColumnType::Text { .. } | ColumnType::Enum { .. } | ColumnType::Json
    )
}

/// The value classes of `from` that `to` refuses, for changes flowing from `from` to `to`.
pub fn classes(from: Side<'_>, to: Side<'_>) -> Vec<Class> {
    use ColumnType as T;
    let (a, b) = (&from.column.ty, &to.column.ty);
    let mut out = Vec::new();
    match (from.engine, to.engine) {
        (Engine::Postgres, Engine::Mysql) => {
            if temporal(a) && temporal(b) {
                out.push(class(
                    "infinity and -infinity, which MySQL/MariaDB date types do not have",
                    "replace them at the source (NULL or a real date), or keep the column one-way with owner",
                ));
            }
            if matches!(a, T::Date) && temporal(b) {
                out.push(class(
                    "dates after year 9999 or before Christ, which MySQL/MariaDB dates do not reach",
                    "add CHECK (col BETWEEN '0001-01-01' AND '9999-12-31') at the source, or keep the column one-way",
                ));
            }
            if let (T::Decimal { precision, .. }, T::Decimal { .. }) = (a, b) {
                let what = if precision.is_none() {
                    "NaN, Infinity and -Infinity, which a MySQL/MariaDB DECIMAL cannot hold"
                } else {
                    "NaN, which a MySQL/MariaDB DECIMAL cannot hold"
                };
                out.push(class(
                    what,
                    "add CHECK (col <> 'NaN') (and for numeric without precision, not infinite) at the source",
                ));
            }
            if matches!(a, T::Float { .. }) && matches!(b, T::Float { .. }) {
                out.push(class(
                    "NaN, Infinity and -Infinity, which MySQL/MariaDB FLOAT and DOUBLE cannot hold",
                    "add CHECK (col NOT IN ('NaN', 'Infinity', '-Infinity')) at the source",
                ));
                out.push(changed(
                    "-0 (a negative zero) as 0, as MySQL/MariaDB store it for every client: the sign is lost, the value compares equal",
                    "nothing, where -0 and 0 mean the same; otherwise keep the column one-way with owner",
                ));
            }
            if textual(a) && matches!(b, T::Text { .. } | T::Enum { .. }) {
                match to.column.charset.as_deref() {
                    Some(cs) if is_utf8mb3(cs) => out.push(class(
                        "characters outside the Basic Multilingual Plane (4-byte UTF-8: emoji, rarer CJK), which utf8mb3 cannot store",
                        format!(
                            "convert the column to utf8mb4 (ALTER TABLE … MODIFY {} … CHARACTER SET utf8mb4)",
                            to.column.name
                        ),
                    )),
                    Some(cs) if !full_unicode(cs) => out.push(class(
                        format!("characters that the character set {cs} cannot represent"),
                        format!(
                            "convert the column to utf8mb4 (ALTER TABLE … MODIFY {} … CHARACTER SET utf8mb4)",
                            to.column.name
                        ),
                    )),
                    _ => {}
                }
            }
        }
        (Engine::Mysql, Engine::Postgres) => {
            if temporal(a) && temporal(b) {
                out.push(class(
                    "zero and partly-zero dates ('0000-00-00', '2015-00-21') that a sql_mode without NO_ZERO_DATE / NO_ZERO_IN_DATE admits, which PostgreSQL has no value for",
                    "set them to NULL or a real date at the source, and give the application a strict sql_mode",
                ));
            }
            if textual(a) && textual(b) {
                out.push(class(
                    "text holding the NUL character (U+0000), which PostgreSQL text cannot store",
                    "remove NUL characters at the source, or map the column to bytea",
                ));
            }
            if matches!(a, T::Enum { .. }) && matches!(b, T::Enum { .. }) {
                out.push(class(
                    "the empty error value '' that a non-strict sql_mode stores for an invalid label",
                    "correct those rows at the source and give the application a strict sql_mode",
                ));
            }
        }
        _ => {}
    }
    out
}

/// Why `to` (a column on a node of `engine`) refuses the sampled value `v`, or `None`. Sampled
/// values are in the neutral form `catalog::sample_rows` gives: date-times and special numbers as
/// text, numbers as integers or decimals, a spatial value by its SRID.
pub fn refuses(v: &Value, to: &ColumnSchema, engine: Engine) -> Option<String> {
    use ColumnType as T;
    let special = |s: &str| {
        matches!(
            s.trim_start_matches(['+', '-'])
                .to_ascii_lowercase()
                .as_str(),
            "nan" | "infinity" | "inf"
        )
    };
    match (&to.ty, v) {
        (T::Bytes { .. }, Value::Geometry { srid, .. }) if *srid != 0 => {
            Some("a geometry with a non-zero SRID, which plain WKB cannot hold".into())
        }
        (
            T::Int {
                bytes, unsigned, ..
            },
            Value::Int(_) | Value::Decimal(_),
        ) => {
            let n: i128 = v.to_string().parse().ok()?;
            let bits = u32::from(*bytes) * 8;
            let (lo, hi) = if *unsigned {
                (0, (1i128 << bits) - 1)
            } else {
                (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
            };
            (n < lo || n > hi).then(|| format!("outside the range of {}", to.declared))
        }
        (T::Decimal { .. } | T::Float { .. }, Value::Text(s))
            if engine == Engine::Mysql && special(s) =>
        {
            Some(format!(
                "NaN or an infinity, which {} cannot hold",
                to.declared
            ))
        }
        (
            T::Decimal {
                precision: Some(p),
                scale,
            },
            Value::Decimal(_) | Value::Int(_),
        ) => {
            let text = v.to_string();
            let digits = text
                .trim_start_matches('-')
                .split('.')
                .next()
                .unwrap_or("")
                .trim_start_matches('0')
                .len() as u32;
            (digits > p.saturating_sub(*scale))
                .then(|| format!("more integer digits than {} holds", to.declared))
        }
        (T::Date | T::Timestamp { .. }, Value::Text(s)) => date_refused(s, &to.ty, engine),
        (T::Text { .. } | T::Enum { .. }, Value::Text(s)) if engine == Engine::Mysql => {
            match to.charset.as_deref() {
                Some(cs) if is_utf8mb3(cs) && s.chars().any(|c| u32::from(c) > 0xFFFF) => Some(
                    "characters outside the Basic Multilingual Plane, which utf8mb3 cannot store"
                        .into(),
                ),
                _ => None,
            }
        }
        (T::Text { .. } | T::Enum { .. } | T::Json, Value::Text(s) | Value::Json(s))
            if engine == Engine::Postgres && s.contains('\0') =>
        {
            Some("the NUL character, which PostgreSQL text cannot store".into())
        }
        (
            T::Time {
                signed_hours: false,
                ..
            },
            Value::Text(s),
        ) => {
            let hours: i64 = s.split(':').next()?.trim().parse().ok()?;
            (s.starts_with('-') || hours > 24).then(|| {
                format!(
                    "a time outside 00:00 to 24:00, which {} cannot hold",
                    to.declared
                )
            })
        }
        _ => None,
    }
}

/// A sampled date or date-time text (`2020-01-01`, `2020-01-01T00:00:00`, `21016-11-04 …`,
/// `0044-03-15 BC`, `-infinity`, `0000-00-00`) against the target's range.
fn date_refused(s: &str, to: &ColumnType, engine: Engine) -> Option<String> {
    let s = s.trim();
    if s.trim_start_matches(['+', '-'])
        .eq_ignore_ascii_case("infinity")
    {
        return (engine == Engine::Mysql)
            .then(|| "infinity, which MySQL/MariaDB date types do not have".into());
    }
    let bc = s.ends_with(" BC") || s.starts_with('-');
    let body = s.trim_start_matches('-');
    let mut parts = body.splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: u32 = parts.next()?.parse().ok()?;
    let day: u32 = parts.next()?.get(..2)?.parse().ok()?;
    match engine {
        Engine::Postgres if year == 0 || month == 0 || day == 0 => {
            Some("a zero or partly-zero date, which PostgreSQL has no value for".into())
        }
        Engine::Postgres => None,
        Engine::Mysql => {
            let (lo, hi) = match to {
                ColumnType::Timestamp {
                    utc: true,
                    min_year,
                    max_year,
                    ..
                } => (i64::from(*min_year), i64::from(*max_year)),
                _ => (0, 9999),
            };
            (bc || year < lo || year > hi)
                .then(|| format!("a date outside years {lo} to {hi}, which the column cannot hold"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::schema::{parse_mysql, parse_postgres};

    fn col(ty: ColumnType, declared: &str, charset: Option<&str>) -> ColumnSchema {
        ColumnSchema {
            name: "c".into(),
            declared: declared.into(),
            ty,
            nullable: true,
            has_default: false,
            charset: charset.map(str::to_string),
            base: declared.split('(').next().unwrap_or(declared).into(),
            generated: false,
            identity_always: false,
            type_oid: None,
            array_delim: ',',
        }
    }

    fn pg(t: &str) -> ColumnSchema {
        col(parse_postgres(t, None), t, None)
    }

    fn my(t: &str, cs: Option<&str>) -> ColumnSchema {
        col(parse_mysql(t, false), t, cs)
    }

    fn side(engine: Engine, column: &ColumnSchema) -> Side<'_> {
        Side { engine, column }
    }

    #[test]
    fn classes_from_the_declared_types() {
        let (p, m) = (Engine::Postgres, Engine::Mysql);
        let has = |cs: Vec<Class>, word: &str| cs.iter().any(|c| c.what.contains(word));
        let ts = pg("timestamp(6) without time zone");
        let dt = my("datetime(6)", None);
        assert!(has(classes(side(p, &ts), side(m, &dt)), "infinity"));
        assert!(has(classes(side(m, &dt), side(p, &ts)), "zero"));
        let num = pg("numeric");
        let dec = my("decimal(65,30)", None);
        assert!(has(classes(side(p, &num), side(m, &dec)), "Infinity"));
        assert!(has(
            classes(side(p, &pg("real")), side(m, &my("float", None))),
            "NaN"
        ));
        // A negative zero is stored as 0: a change the mapping documents, not a refusal.
        let floats = classes(
            side(p, &pg("double precision")),
            side(m, &my("double", None)),
        );
        let zero: Vec<_> = floats.iter().filter(|c| c.what.contains("-0")).collect();
        assert_eq!(zero.len(), 1, "{floats:?}");
        assert!(zero[0].changed && floats.iter().filter(|c| c.changed).count() == 1);
        let text = pg("text");
        let mb3 = my("varchar(20)", Some("utf8mb3"));
        let mb4 = my("varchar(20)", Some("utf8mb4"));
        assert!(has(classes(side(p, &text), side(m, &mb3)), "utf8mb3"));
        assert!(classes(side(p, &text), side(m, &mb4)).is_empty());
        assert!(has(classes(side(m, &mb4), side(p, &text)), "NUL"));
        assert!(classes(side(p, &pg("integer")), side(m, &my("int(11)", None))).is_empty());
    }

    #[test]
    fn sampled_values_the_target_refuses() {
        let (p, m) = (Engine::Postgres, Engine::Mysql);
        let t = |s: &str| Value::Text(s.into());
        let dt = my("datetime(6)", None);
        assert!(refuses(&t("infinity"), &dt, m).is_some());
        assert!(refuses(&t("21016-11-04T13:51:30"), &dt, m).is_some());
        assert!(refuses(&t("0044-03-15 BC"), &my("date", None), m).is_some());
        assert!(refuses(&t("2020-02-29T23:59:59.5"), &dt, m).is_none());
        assert!(refuses(&t("2040-01-01 00:00:00"), &my("timestamp", None), m).is_some());
        let pts = pg("timestamp without time zone");
        assert!(refuses(&t("0000-00-00 00:00:00"), &pts, p).is_some());
        assert!(refuses(&t("2015-05-00"), &pg("date"), p).is_some());
        assert!(refuses(&t("2015-05-01"), &pg("date"), p).is_none());
        assert!(refuses(&t("NaN"), &my("decimal(10,2)", None), m).is_some());
        assert!(refuses(&t("-Infinity"), &my("double", None), m).is_some());
        let big: Value = Value::Decimal("123456789.5".parse().expect("decimal"));
        assert!(refuses(&big, &my("decimal(10,2)", None), m).is_some());
        assert!(refuses(&Value::Int(99_999_999), &my("decimal(10,2)", None), m).is_none());
        assert!(refuses(&Value::Int(-1), &my("int(10) unsigned", None), m).is_some());
        assert!(refuses(&Value::Int(40_000), &pg("smallint"), p).is_some());
        assert!(refuses(&t("a😀"), &my("varchar(5)", Some("utf8mb3")), m).is_some());
        assert!(refuses(&t("a😀"), &my("varchar(5)", Some("utf8mb4")), m).is_none());
        assert!(refuses(&t("a\0b"), &pg("text"), p).is_some());
        assert!(refuses(&t("838:59:59"), &pg("time without time zone"), p).is_some());
        let g = |srid| Value::Geometry {
            srid,
            wkb: Vec::new(),
        };
        assert!(refuses(&g(4326), &pg("bytea"), p).is_some());
        assert!(refuses(&g(0), &pg("bytea"), p).is_none());
    }
}
