//! Reading the catalogs' type names (PostgreSQL `format_type()`, MySQL/MariaDB `COLUMN_TYPE`) into
//! [`ColumnType`].

use super::ColumnType;

/// Scale given to PostgreSQL's unconstrained `numeric`: its largest display scale.
const UNBOUNDED_SCALE: u32 = 16_383;

fn args(s: &str) -> Vec<u64> {
    s.split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(inner, _)| {
            inner
                .split(',')
                .filter_map(|a| a.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn labels(s: &str) -> Vec<String> {
    // enum('a','b''c') -> ["a", "b'c"]
    let Some((_, inner)) = s.split_once('(') else {
        return Vec::new();
    };
    let inner = inner.strip_suffix(')').unwrap_or(inner);
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quote = false;
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, in_quote) {
            ('\'', true) if chars.peek() == Some(&'\'') => {
                cur.push('\'');
                chars.next();
            }
            ('\'', true) => {
                in_quote = false;
                out.push(std::mem::take(&mut cur));
            }
            ('\'', false) => in_quote = true,
            (c, true) => cur.push(c),
            _ => {}
        }
    }
    out
}

/// Parses PostgreSQL's `format_type()` text. `enum_labels` is given when the type is an enum.
pub fn parse_postgres(format_type: &str, enum_labels: Option<Vec<String>>) -> ColumnType {
    let t = format_type.trim().to_ascii_lowercase();
    if let Some(inner) = t.strip_suffix("[]") {
        return ColumnType::Array(Box::new(parse_postgres(inner, enum_labels)));
    }
    if let Some(labels) = enum_labels {
        return ColumnType::Enum { labels };
    }
    let a = args(&t);
    let base = t.split('(').next().unwrap_or(&t).trim();
    let frac = a.first().map_or(6, |f| (*f).min(6) as u8);
    let pg_ts = |utc| ColumnType::Timestamp {
        frac,
        utc,
        min_year: -4713,
        max_year: 294_276,
    };
    match base {
        "boolean" => ColumnType::Bool,
        "smallint" => ColumnType::Int {
            bytes: 2,
            unsigned: false,
            display_width: None,
        },
        "integer" => ColumnType::Int {
            bytes: 4,
            unsigned: false,
            display_width: None,
        },
        "bigint" => ColumnType::Int {
            bytes: 8,
            unsigned: false,
            display_width: None,
        },
        "numeric" => match a.as_slice() {
            [] => ColumnType::Decimal {
                precision: None,
                scale: UNBOUNDED_SCALE,
            },
            [p] => ColumnType::Decimal {
                precision: Some(*p as u32),
                scale: 0,
            },
            [p, s, ..] => ColumnType::Decimal {
                precision: Some(*p as u32),
                scale: *s as u32,
            },
        },
        "real" => ColumnType::Float { double: false },
        "double precision" => ColumnType::Float { double: true },
        "text" | "name" | "citext" => ColumnType::Text {
            max_chars: None,
            fixed: false,
        },
        "character varying" => ColumnType::Text {
            max_chars: a.first().copied(),
            fixed: false,
        },
        "character" | "bpchar" => ColumnType::Text {
            max_chars: Some(a.first().copied().unwrap_or(1)),
            fixed: true,
        },
        "bytea" => ColumnType::Bytes {
            max_bytes: None,
            fixed: false,
        },
        "date" => ColumnType::Date,
        _ if base.starts_with("timestamp") => pg_ts(t.contains("with time zone")),
        _ if base.starts_with("time") => ColumnType::Time {
            frac,
            signed_hours: false,
            tz: t.contains("with time zone"),
        },
        "interval" => ColumnType::Interval,
        "json" | "jsonb" => ColumnType::Json,
        "uuid" => ColumnType::Uuid,
        "bit" => ColumnType::Bits {
            len: a.first().copied().unwrap_or(1) as u32,
            varying: false,
        },
        // PostGIS (`geometry`, `geometry(Point,4326)`).
        "geometry" => ColumnType::Geometry,
        "bit varying" => ColumnType::Bits {
            len: a.first().copied().unwrap_or(u64::from(u32::MAX)) as u32,
            varying: true,
        },
        _ => ColumnType::Other(format_type.to_string()),
    }
}

/// Parses MySQL/MariaDB `information_schema.COLUMNS.COLUMN_TYPE` text (`int(10) unsigned`,
/// `enum('a','b')`, `datetime(6)`). MariaDB's JSON is `longtext` with a JSON check: pass
/// `is_json` for it.
pub fn parse_mysql(column_type: &str, is_json: bool) -> ColumnType {
    if is_json {
        return ColumnType::Json;
    }
    let t = column_type.trim();
    let lower = t.to_ascii_lowercase();
    let base = lower.split(['(', ' ']).next().unwrap_or(&lower);
    let unsigned = lower.contains("unsigned");
    let a = args(&lower);
    let int = |bytes| ColumnType::Int {
        bytes,
        unsigned,
        display_width: a.first().map(|w| *w as u32),
    };
    let frac = a.first().map_or(0, |f| (*f).min(6) as u8);
    match base {
        "tinyint" | "bool" | "boolean" => int(1),
        "smallint" => int(2),
        "mediumint" => int(3),
        "int" | "integer" => int(4),
        "bigint" => int(8),
        "decimal" | "numeric" => ColumnType::Decimal {
            precision: Some(a.first().copied().unwrap_or(10) as u32),
            scale: a.get(1).copied().unwrap_or(0) as u32,
        },
        "float" => ColumnType::Float { double: false },
        "double" | "real" => ColumnType::Float { double: true },
        "char" => ColumnType::Text {
            max_chars: Some(a.first().copied().unwrap_or(1)),
            fixed: true,
        },
        "varchar" => ColumnType::Text {
            max_chars: a.first().copied(),
            fixed: false,
        },
        "tinytext" => ColumnType::Text {
            max_chars: Some(255),
            fixed: false,
        },
        "text" => ColumnType::Text {
            max_chars: Some(65_535),
            fixed: false,
        },
        "mediumtext" => ColumnType::Text {
            max_chars: Some(16_777_215),
            fixed: false,
        },
        "longtext" => ColumnType::Text {
            max_chars: None,
            fixed: false,
        },
        "binary" => ColumnType::Bytes {
            max_bytes: Some(a.first().copied().unwrap_or(1)),
            fixed: true,
        },
        "varbinary" => ColumnType::Bytes {
            max_bytes: a.first().copied(),
            fixed: false,
        },
        "tinyblob" => ColumnType::Bytes {
            max_bytes: Some(255),
            fixed: false,
        },
        "blob" => ColumnType::Bytes {
            max_bytes: Some(65_535),
            fixed: false,
        },
        "mediumblob" => ColumnType::Bytes {
            max_bytes: Some(16_777_215),
            fixed: false,
        },
        "longblob" => ColumnType::Bytes {
            max_bytes: None,
            fixed: false,
        },
        "date" => ColumnType::Date,
        "time" => ColumnType::Time {
            frac,
            signed_hours: true,
            tz: false,
        },
        "datetime" => ColumnType::Timestamp {
            frac,
            utc: false,
            min_year: 1000,
            max_year: 9999,
        },
        "timestamp" => ColumnType::Timestamp {
            frac,
            utc: true,
            min_year: 1970,
            max_year: 2038,
        },
        "year" => ColumnType::Year,
        "json" => ColumnType::Json,
        "enum" => ColumnType::Enum { labels: labels(t) },
        "set" => ColumnType::Set { labels: labels(t) },
        "bit" => ColumnType::Bits {
            len: a.first().copied().unwrap_or(1) as u32,
            varying: false,
        },
        "uuid" => ColumnType::Uuid,
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" => ColumnType::Geometry,
        _ => ColumnType::Other(column_type.to_string()),
    }
}
