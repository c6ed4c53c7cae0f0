//! The target type of each column: candidates per target engine, judged by the same rules
//! `tandem check` uses ([`round_trip`]); and the defaults that have a counterpart.
//!
//! Each candidate is written the way the target's catalog prints it (PostgreSQL `format_type`,
//! MySQL/MariaDB `COLUMN_TYPE`), so parsing it back gives exactly the type `check` will read once
//! the table exists. The best verdict wins (exact, then conventional, then narrowing; the first
//! candidate on a tie); a lossy candidate is never taken.

use crate::config::{Engine, Scalar, Table};
use crate::connect::quote;
use crate::mapping::types::{round_trip, Fit};
use crate::model::schema::{parse_mysql, parse_postgres, ColumnSchema, ColumnType};

/// The type chosen for one column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The type as the target's DDL takes it.
    pub sql: String,
    /// The rules' verdict on the pair (source type, this type).
    pub fit: Fit,
    /// Labels a CHECK constraint holds the column to (an enum stored as text).
    pub labels: Option<Vec<String>>,
}

/// What the target's catalog reads `sql` as.
pub fn parse(engine: Engine, sql: &str) -> ColumnType {
    match engine {
        Engine::Postgres => parse_postgres(sql, None),
        Engine::Mysql => parse_mysql(sql, false),
    }
}

/// The target type of `column` (declared on a node of engine `from`), or every candidate with why
/// it was refused (empty: the target has no type for it at all).
pub fn choose(column: &ColumnSchema, from: Engine, to: Engine) -> Result<Choice, Vec<String>> {
    if from == to {
        return Ok(Choice {
            sql: column.declared.clone(),
            fit: Fit::Exact,
            labels: None,
        });
    }
    let (candidates, labels) = match (&column.ty, to) {
        (ColumnType::Enum { labels }, Engine::Postgres) => (vec!["text".into()], Some(labels)),
        (_, Engine::Postgres) => (to_postgres(column), None),
        (_, Engine::Mysql) => (to_mysql(&column.ty), None),
    };
    let mut best: Option<Choice> = None;
    let mut refused = Vec::new();
    for sql in candidates {
        let fit = round_trip(&column.ty, &parse(to, &sql));
        if let Fit::Lossy(why) = &fit {
            refused.push(format!("{sql} ({why})"));
        } else if best.as_ref().is_none_or(|b| fit.rank() < b.fit.rank()) {
            best = Some(Choice {
                sql,
                fit,
                labels: labels.cloned(),
            });
        }
    }
    best.ok_or(refused)
}

fn to_postgres(column: &ColumnSchema) -> Vec<String> {
    use ColumnType as T;
    let one = |s: &str| vec![s.to_string()];
    match &column.ty {
        T::Bool => one("boolean"),
        T::Int {
            bytes, unsigned, ..
        } => match (bytes, unsigned) {
            (1, _) | (2, false) => one("smallint"),
            (2, true) | (3, _) | (4, false) => one("integer"),
            (4, true) | (8, false) => one("bigint"),
            _ => vec!["numeric(20,0)".into(), "bigint".into()],
        },
        T::Decimal {
            precision: Some(p),
            scale,
        } => vec![format!("numeric({p},{scale})")],
        T::Decimal { .. } => one("numeric"),
        T::Float { double } => one(if *double { "double precision" } else { "real" }),
        // MySQL's TEXT types count bytes, not characters: `text`, never `varchar(65535)`.
        T::Text { .. } if column.base.ends_with("text") => one("text"),
        T::Text {
            max_chars: Some(n),
            fixed: true,
        } => vec![format!("character({n})")],
        T::Text {
            max_chars: Some(n),
            fixed: false,
        } => vec![format!("character varying({n})")],
        T::Text { .. } => one("text"),
        T::Bytes {
            max_bytes: Some(16),
            fixed: true,
        } => vec!["uuid".into(), "bytea".into()],
        T::Bytes { .. } | T::Geometry => one("bytea"),
        T::Date => one("date"),
        T::Time { frac, tz, .. } => vec![format!("time({frac}) {}", zone(*tz))],
        T::Timestamp { frac, utc, .. } => vec![
            format!("timestamp({frac}) {}", zone(*utc)),
            format!("timestamp({frac}) {}", zone(!*utc)),
        ],
        T::Interval => one("interval"),
        T::Json => vec!["jsonb".into(), "json".into()],
        T::Uuid => one("uuid"),
        T::Set { .. } => one("text"),
        T::Bits { len, varying } => vec![format!(
            "bit{}({len})",
            if *varying { " varying" } else { "" }
        )],
        T::Year => one("smallint"),
        T::Enum { .. } | T::Array(_) | T::Other(_) => Vec::new(),
    }
}

fn zone(tz: bool) -> &'static str {
    if tz {
        "with time zone"
    } else {
        "without time zone"
    }
}

fn to_mysql(ty: &ColumnType) -> Vec<String> {
    use ColumnType as T;
    let one = |s: &str| vec![s.to_string()];
    match ty {
        T::Bool => one("tinyint(1)"),
        T::Int { bytes: 1 | 2, .. } => one("smallint"),
        T::Int { bytes: 3 | 4, .. } => one("int"),
        T::Int { .. } => one("bigint"),
        T::Decimal {
            precision: Some(p),
            scale,
        } if *p <= 65 && *scale <= 30 => vec![format!("decimal({p},{scale})")],
        T::Decimal { .. } => one("decimal(65,30)"),
        T::Float { double } => one(if *double { "double" } else { "float" }),
        T::Text {
            max_chars: Some(n),
            fixed: true,
        } if *n <= 255 => vec![format!("char({n})")],
        // 16383 characters of utf8mb4 are VARCHAR's most; beyond, a TEXT type.
        T::Text {
            max_chars: Some(n),
            fixed: false,
        } if *n <= 16_383 => vec![format!("varchar({n})")],
        T::Text { fixed: false, .. } => one("longtext"),
        T::Bytes {
            max_bytes: Some(n),
            fixed: true,
        } if *n <= 255 => vec![format!("binary({n})")],
        T::Bytes { fixed: false, .. } => one("longblob"),
        T::Uuid => vec!["uuid".into(), "binary(16)".into(), "char(36)".into()],
        T::Date => one("date"),
        T::Time {
            frac, tz: false, ..
        } => vec![format!("time({frac})")],
        T::Timestamp { frac, .. } => {
            vec![format!("datetime({frac})"), format!("timestamp({frac})")]
        }
        T::Json => one("json"),
        T::Enum { labels } => vec![format!(
            "enum({})",
            labels
                .iter()
                .map(|l| quote::mysql::literal(l))
                .collect::<Vec<_>>()
                .join(",")
        )],
        T::Bits { len, .. } if *len <= 64 => vec![format!("bit({len})")],
        T::Array(_) => one("json"),
        T::Geometry => one("geometry"),
        _ => Vec::new(),
    }
}

/// The target type of a value-mapped column: it stores the target's own values (or the business
/// values when the target has no map), whatever the source stores. `None`: not value-mapped.
pub fn mapped(
    table: &Table,
    business: &str,
    to: Engine,
    to_node: &str,
) -> Option<Result<String, String>> {
    let column = table.columns.iter().find(|c| c.name == business)?;
    if column.values.is_empty() {
        return None;
    }
    let stored: Vec<Scalar> = match column.values.get(to_node) {
        Some(map) => map.iter().map(|(_, v)| v.clone()).collect(),
        None => column
            .values
            .values()
            .flatten()
            .map(|(business, _)| Scalar::Text(business.clone()))
            .collect(),
    };
    let pg = to == Engine::Postgres;
    if stored.iter().all(|v| matches!(v, Scalar::Int(_))) {
        let fits = |lo: i64, hi: i64| {
            stored
                .iter()
                .all(|v| matches!(v, Scalar::Int(i) if (lo..=hi).contains(i)))
        };
        let sql = if fits(i16::MIN.into(), i16::MAX.into()) {
            "smallint"
        } else if fits(i32::MIN.into(), i32::MAX.into()) {
            if pg {
                "integer"
            } else {
                "int"
            }
        } else {
            "bigint"
        };
        return Some(Ok(sql.into()));
    }
    if stored.iter().all(|v| matches!(v, Scalar::Text(_))) {
        let longest = stored
            .iter()
            .map(|v| match v {
                Scalar::Text(s) => s.chars().count(),
                _ => 0,
            })
            .max()
            .unwrap_or(1)
            .max(1);
        let name = if pg { "character varying" } else { "varchar" };
        return Some(Ok(format!("{name}({longest})")));
    }
    if stored.iter().all(|v| matches!(v, Scalar::Bool(_))) {
        return Some(Ok(if pg { "boolean" } else { "tinyint(1)" }.into()));
    }
    Some(Err(format!(
        "the value map of column {business} stores values of mixed kinds on node {to_node}"
    )))
}

/// A column default in neutral form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefaultValue {
    /// A numeric literal as written.
    Number(String),
    Text(String),
    Bool(bool),
    /// The current date and time.
    Now,
}

/// A catalog's default text (PostgreSQL `pg_get_expr`, MariaDB `COLUMN_DEFAULT`) in neutral form:
/// `Ok(None)` for a NULL default, `Err` for an expression with no portable counterpart.
pub fn parse_default(expr: &str) -> Result<Option<DefaultValue>, ()> {
    let mut e = expr.trim();
    // PostgreSQL wraps negative numbers and casts: `(-1)`, `'a'::character varying`.
    if let Some((value, cast)) = e.rsplit_once("::") {
        if cast
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " _()[],\"".contains(c))
        {
            e = value.trim();
        }
    }
    if let Some(inner) = e.strip_prefix('(').and_then(|s| s.strip_suffix(')')) {
        e = inner.trim();
    }
    let lower = e.to_ascii_lowercase();
    if lower == "null" {
        return Ok(None);
    }
    if lower == "true" || lower == "false" {
        return Ok(Some(DefaultValue::Bool(lower == "true")));
    }
    let now = [
        "now()",
        "current_timestamp",
        "localtimestamp",
        "transaction_timestamp()",
    ];
    if now.contains(&lower.as_str())
        || lower.starts_with("current_timestamp(")
        || lower.starts_with("localtimestamp(")
    {
        return Ok(Some(DefaultValue::Now));
    }
    if !e.is_empty()
        && e.parse::<f64>().is_ok()
        && e.chars().all(|c| c.is_ascii_digit() || ".-+eE".contains(c))
    {
        return Ok(Some(DefaultValue::Number(e.to_string())));
    }
    if let Some(body) = e.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        // Only the standard form: quotes doubled, no backslash (whose meaning depends on the mode).
        let lone_quote = body.replace("''", "").contains('\'');
        if !lone_quote && !body.contains('\\') {
            return Ok(Some(DefaultValue::Text(body.replace("''", "'"))));
        }
    }
    Err(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(declared: &str, engine: Engine) -> ColumnSchema {
        let ty = parse(engine, declared);
        ColumnSchema {
            name: "c".into(),
            declared: declared.into(),
            base: declared.split('(').next().unwrap_or_default().into(),
            ty,
            nullable: true,
            has_default: false,
            charset: None,
            generated: false,
            identity_always: false,
            type_oid: None,
            array_delim: ',',
        }
    }

    fn pick(declared: &str, from: Engine, to: Engine) -> Result<String, Vec<String>> {
        choose(&column(declared, from), from, to).map(|c| c.sql)
    }

    #[test]
    fn mariadb_types_on_postgres() {
        let my = |t| pick(t, Engine::Mysql, Engine::Postgres);
        assert_eq!(my("int(11)"), Ok("integer".into()));
        assert_eq!(my("int(10) unsigned"), Ok("bigint".into()));
        assert_eq!(
            my("tinyint(1)"),
            Ok("smallint".into()),
            "lossless, not boolean"
        );
        assert_eq!(
            my("bigint(20) unsigned"),
            Ok("bigint".into()),
            "narrowing, the best there is"
        );
        assert_eq!(my("float"), Ok("real".into()));
        assert_eq!(my("varchar(255)"), Ok("character varying(255)".into()));
        assert_eq!(my("text"), Ok("text".into()), "TEXT counts bytes");
        assert_eq!(
            my("datetime(6)"),
            Ok("timestamp(6) without time zone".into())
        );
        assert_eq!(my("timestamp"), Ok("timestamp(0) with time zone".into()));
        assert_eq!(my("binary(16)"), Ok("uuid".into()));
        assert_eq!(my("year(4)"), Ok("smallint".into()));
        assert_eq!(my("decimal(10,2)"), Ok("numeric(10,2)".into()));
        let e = choose(
            &column("enum('a','b')", Engine::Mysql),
            Engine::Mysql,
            Engine::Postgres,
        )
        .unwrap();
        assert_eq!(
            (e.sql.as_str(), e.labels),
            ("text", Some(vec!["a".into(), "b".into()]))
        );
        assert!(my("set('a','b')").is_err(), "no type holds a SET both ways");
    }

    #[test]
    fn postgres_types_on_mariadb() {
        let pg = |t| pick(t, Engine::Postgres, Engine::Mysql);
        assert_eq!(pg("integer"), Ok("int".into()));
        assert_eq!(pg("boolean"), Ok("tinyint(1)".into()));
        assert_eq!(pg("numeric(12,2)"), Ok("decimal(12,2)".into()));
        assert_eq!(pg("text"), Ok("longtext".into()));
        assert_eq!(pg("character varying(40)"), Ok("varchar(40)".into()));
        assert_eq!(pg("timestamp(6) with time zone"), Ok("datetime(6)".into()));
        assert_eq!(pg("jsonb"), Ok("json".into()));
        assert_eq!(pg("uuid"), Ok("uuid".into()));
        assert_eq!(pg("bytea"), Ok("longblob".into()));
        assert_eq!(pg("integer[]"), Ok("json".into()));
        let refused = pg("numeric").unwrap_err();
        assert!(refused[0].starts_with("decimal(65,30) ("), "{refused:?}");
        assert_eq!(pg("interval"), Err(vec![]));
        assert_eq!(
            pick("int(11) unsigned", Engine::Mysql, Engine::Mysql),
            Ok("int(11) unsigned".into())
        );
    }

    #[test]
    fn defaults() {
        use DefaultValue as D;
        assert_eq!(
            parse_default("'abc'::character varying"),
            Ok(Some(D::Text("abc".into())))
        );
        assert_eq!(parse_default("'it''s'"), Ok(Some(D::Text("it's".into()))));
        assert_eq!(parse_default("(-1)"), Ok(Some(D::Number("-1".into()))));
        assert_eq!(parse_default("0.5"), Ok(Some(D::Number("0.5".into()))));
        assert_eq!(parse_default("NULL"), Ok(None));
        assert_eq!(parse_default("now()"), Ok(Some(D::Now)));
        assert_eq!(parse_default("current_timestamp(6)"), Ok(Some(D::Now)));
        assert_eq!(parse_default("true"), Ok(Some(D::Bool(true))));
        assert_eq!(parse_default("gen_random_uuid()"), Err(()));
        assert_eq!(parse_default("nextval('s'::regclass)"), Err(()));
    }
}
