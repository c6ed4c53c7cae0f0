//! Exact decoding of PostgreSQL text-format values into model [`Value`]s, by type OID.
//!
//! The walsender prints values with the session's settings, so the replication connection pins them in
//! its startup packet (`DateStyle=ISO`, `IntervalStyle=iso_8601`, `extra_float_digits=3`,
//! `TimeZone=UTC`, `bytea_output=hex`); the parsers below accept exactly those forms and refuse anything
//! else rather than guess. Types the model has no variant for become [`Value::Other`] with their type
//! name, never dropped. Enums, domains and arrays are resolved through a [`TypeRegistry`] filled from
//! the catalog (see `stream.rs`); built-in scalar types need no lookup.

use std::collections::HashMap;

use super::array::{parse_array, ArrayItem};
use crate::model::time::{parse_date, parse_time, parse_timestamp, MICROS_PER_DAY};
use crate::model::{Decimal, Value};

/// A value that could not be parsed; names the type, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {type_name} text")]
pub struct TypeError {
    pub type_name: String,
}

/// Built-in type OIDs (`pg_type.dat`); stable across PostgreSQL versions.
pub mod oid {
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const CHAR: u32 = 18;
    pub const NAME: u32 = 19;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const OID: u32 = 26;
    pub const JSON: u32 = 114;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const DATE: u32 = 1082;
    pub const TIME: u32 = 1083;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const INTERVAL: u32 = 1186;
    pub const TIMETZ: u32 = 1266;
    pub const BIT: u32 = 1560;
    pub const VARBIT: u32 = 1562;
    pub const NUMERIC: u32 = 1700;
    pub const UUID: u32 = 2950;
    pub const JSONB: u32 = 3802;
}

/// What the catalog says about a type that is not a built-in scalar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeKind {
    /// `typtype = 'e'`.
    Enum,
    /// `typtype = 'd'`, over `base`.
    Domain { base: u32 },
    /// `typelem <> 0` with `typcategory = 'A'`; elements separated by `delim` (`,` for all but `box`).
    Array { elem: u32, delim: u8 },
    /// Anything else (composite, range, extension base types): kept as text.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeInfo {
    pub name: String,
    pub kind: TypeKind,
}

/// Known non-built-in types, keyed by OID.
#[derive(Debug, Clone, Default)]
pub struct TypeRegistry {
    types: HashMap<u32, TypeInfo>,
}

/// Domains over domains over arrays: deeper than this is a catalog cycle or nonsense.
const MAX_DEPTH: usize = 16;

impl TypeRegistry {
    pub fn insert(&mut self, oid: u32, info: TypeInfo) {
        self.types.insert(oid, info);
    }

    pub fn get(&self, oid: u32) -> Option<&TypeInfo> {
        self.types.get(&oid)
    }

    /// Whether decoding a value of `oid` can proceed without a catalog lookup; otherwise returns the
    /// first OID still to look up.
    pub fn missing(&self, oid: u32) -> Option<u32> {
        let mut cur = oid;
        for _ in 0..MAX_DEPTH {
            if builtin_name(cur).is_some() {
                return None;
            }
            match self.types.get(&cur) {
                None => return Some(cur),
                Some(TypeInfo {
                    kind: TypeKind::Domain { base },
                    ..
                }) => cur = *base,
                Some(TypeInfo {
                    kind: TypeKind::Array { elem, .. },
                    ..
                }) => cur = *elem,
                Some(_) => return None,
            }
        }
        None
    }

    /// The type's name for errors and [`Value::Other`].
    pub fn name(&self, oid: u32) -> String {
        builtin_name(oid)
            .map(str::to_owned)
            .or_else(|| self.types.get(&oid).map(|t| t.name.clone()))
            .unwrap_or_else(|| format!("oid {oid}"))
    }

    /// Decodes one text-format value of type `oid`.
    pub fn decode_text(&self, oid: u32, text: &str) -> Result<Value, TypeError> {
        self.decode_at(oid, text, 0)
    }

    fn decode_at(&self, oid: u32, text: &str, depth: usize) -> Result<Value, TypeError> {
        let err = || TypeError {
            type_name: self.name(oid),
        };
        if depth > MAX_DEPTH {
            return Err(err());
        }
        if let Some(v) = decode_builtin(oid, text) {
            return v.ok_or_else(err);
        }
        match self.types.get(&oid).map(|t| &t.kind) {
            Some(TypeKind::Enum) => Ok(Value::Enum(text.to_owned())),
            Some(TypeKind::Domain { base }) => self.decode_at(*base, text, depth + 1),
            Some(TypeKind::Array { elem, delim }) => {
                let items = parse_array(text, *delim).ok_or_else(err)?;
                self.array_value(*elem, items, depth)
            }
            Some(TypeKind::Other) | None => {
                let type_name = self.name(oid);
                // PostGIS prints a geometry as hex EWKB: the same SRID and WKB a MySQL/MariaDB
                // spatial column holds (3-D and measured geometries stay text). The extension's
                // types are named with their schema.
                if type_name == "geometry" || type_name.ends_with(".geometry") {
                    if let Some((srid, wkb)) = crate::model::ewkb::from_hex(text) {
                        return Ok(Value::Geometry { srid, wkb });
                    }
                }
                Ok(Value::Other {
                    type_name,
                    text: text.to_owned(),
                })
            }
        }
    }

    fn array_value(&self, elem: u32, items: ArrayItem, depth: usize) -> Result<Value, TypeError> {
        match items {
            ArrayItem::Null => Ok(Value::Null),
            ArrayItem::Text(t) => self.decode_at(elem, &t, depth + 1),
            ArrayItem::Nested(v) => v
                .into_iter()
                .map(|i| self.array_value(elem, i, depth))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
        }
    }
}

fn builtin_name(oid: u32) -> Option<&'static str> {
    use oid::*;
    Some(match oid {
        BOOL => "bool",
        BYTEA => "bytea",
        CHAR => "char",
        NAME => "name",
        INT8 => "int8",
        INT2 => "int2",
        INT4 => "int4",
        TEXT => "text",
        OID => "oid",
        JSON => "json",
        FLOAT4 => "float4",
        FLOAT8 => "float8",
        BPCHAR => "bpchar",
        VARCHAR => "varchar",
        DATE => "date",
        TIME => "time",
        TIMESTAMP => "timestamp",
        TIMESTAMPTZ => "timestamptz",
        INTERVAL => "interval",
        TIMETZ => "timetz",
        BIT => "bit",
        VARBIT => "varbit",
        NUMERIC => "numeric",
        UUID => "uuid",
        JSONB => "jsonb",
        _ => return None,
    })
}

/// `None`: not a built-in scalar. `Some(None)`: built-in but the text is invalid.
fn decode_builtin(oid: u32, s: &str) -> Option<Option<Value>> {
    use oid::*;
    let v = match oid {
        BOOL => match s {
            "t" => Some(Value::Bool(true)),
            "f" => Some(Value::Bool(false)),
            _ => None,
        },
        INT2 | INT4 | INT8 | OID => s.parse().ok().map(Value::Int),
        FLOAT4 => parse_float::<f32>(s).map(Value::Float32),
        FLOAT8 => parse_float::<f64>(s).map(Value::Float64),
        NUMERIC => s.parse::<Decimal>().ok().map(Value::Decimal),
        TEXT | VARCHAR | BPCHAR | NAME | CHAR => Some(Value::Text(s.to_owned())),
        JSON | JSONB => Some(Value::Json(s.to_owned())),
        BYTEA => parse_bytea(s).map(Value::Bytes),
        UUID => parse_uuid(s).map(Value::Uuid),
        DATE => parse_pg_date(s).map(Value::Date),
        TIME => parse_time(s)
            .filter(|t| (0..=MICROS_PER_DAY).contains(t))
            .map(Value::Time),
        TIMETZ => parse_timetz(s),
        TIMESTAMP => parse_pg_timestamp(s, false).map(Value::Timestamp),
        TIMESTAMPTZ => parse_pg_timestamp(s, true).map(Value::TimestampTz),
        INTERVAL => parse_iso_interval(s),
        BIT | VARBIT => parse_bits(s),
        _ => return None,
    };
    Some(v)
}

/// PostgreSQL prints `NaN`, `Infinity`, `-Infinity`; Rust's parser also takes `inf`, which the server
/// never sends, so the specials are matched first and everything else must be a plain number.
/// float4 is parsed as f32 directly so the shortest-exact text round-trips bit for bit.
fn parse_float<F: std::str::FromStr>(s: &str) -> Option<F> {
    let special = match s {
        "NaN" => "NaN",
        "Infinity" => "inf",
        "-Infinity" => "-inf",
        _ if s
            .bytes()
            .any(|b| b.is_ascii_alphabetic() && b != b'e' && b != b'E') =>
        {
            return None
        }
        _ => s,
    };
    special.parse().ok()
}

/// The canonical `8-4-4-4-12` lowercase-or-uppercase hex form PostgreSQL prints.
fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
        return None;
    }
    let hex: Vec<u8> = b.iter().copied().filter(|&c| c != b'-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        let hi = hex_digit(*pair.first()?)?;
        let lo = hex_digit(*pair.get(1)?)?;
        *out.get_mut(i)? = (hi << 4) | lo;
    }
    Some(out)
}

/// `bytea_output = hex`: `\x` then two hex digits a byte.
fn parse_bytea(s: &str) -> Option<Vec<u8>> {
    let hex = s.strip_prefix("\\x")?.as_bytes();
    if hex.len() % 2 != 0 {
        return None;
    }
    hex.chunks(2)
        .map(|p| Some((hex_digit(p[0])? << 4) | hex_digit(p[1])?))
        .collect()
}

fn hex_digit(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Splits a trailing ` BC` (DateStyle ISO prints `0044-03-15 BC`) and converts the year to
/// astronomical numbering (1 BC is year 0).
fn split_bc(s: &str) -> (&str, bool) {
    match s.strip_suffix(" BC") {
        Some(rest) => (rest, true),
        None => (s, false),
    }
}

fn bc_date(s: &str) -> Option<String> {
    let (y, rest) = s.split_once('-')?;
    let y: i64 = y.parse().ok()?;
    Some(format!("{}-{rest}", 1 - y))
}

fn parse_pg_date(s: &str) -> Option<i32> {
    match s {
        "infinity" => return Some(i32::MAX),
        "-infinity" => return Some(i32::MIN),
        _ => {}
    }
    let (body, bc) = split_bc(s);
    let days = if bc {
        parse_date(&bc_date(body)?)?
    } else {
        parse_date(body)?
    };
    i32::try_from(days).ok()
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM[:SS]]][ BC]`; with `TimeZone=UTC` the offset is `+00`, but any
/// offset is honoured.
fn parse_pg_timestamp(s: &str, with_zone: bool) -> Option<i64> {
    match s {
        "infinity" => return Some(i64::MAX),
        "-infinity" => return Some(i64::MIN),
        _ => {}
    }
    let (body, bc) = split_bc(s);
    let (date, time) = body.split_once(' ')?;
    let (time, offset) = if with_zone {
        let (t, o) = split_offset(time)?;
        (t, o)
    } else {
        (time, 0)
    };
    let date = if bc { bc_date(date)? } else { date.to_owned() };
    let local = parse_timestamp(&format!("{date} {time}"))?;
    local.checked_sub(i64::from(offset) * 1_000_000)
}

/// Splits `HH:MM:SS[.f]` from a trailing `±HH[:MM[:SS]]` zone offset; returns seconds east of UTC.
fn split_offset(s: &str) -> Option<(&str, i32)> {
    let at = s.rfind(['+', '-'])?;
    let (time, off) = s.split_at(at);
    let sign = if off.starts_with('-') { -1 } else { 1 };
    let mut secs = 0i32;
    let mut unit = 3600;
    for part in off[1..].split(':') {
        if part.len() != 2 || unit == 0 {
            return None;
        }
        let n: i32 = part.parse().ok()?;
        secs += n * unit;
        unit /= 60;
    }
    Some((time, sign * secs))
}

fn parse_timetz(s: &str) -> Option<Value> {
    let (time, offset_secs) = split_offset(s)?;
    let micros = parse_time(time).filter(|t| (0..=MICROS_PER_DAY).contains(t))?;
    Some(Value::TimeTz {
        micros,
        offset_secs,
    })
}

/// `IntervalStyle = iso_8601`: `P[nY][nM][nD][T[nH][nM][n[.f]S]]`, each number optionally negative;
/// PostgreSQL prints `PT0S` for zero.
fn parse_iso_interval(s: &str) -> Option<Value> {
    let body = s.strip_prefix('P')?;
    let (date, time) = match body.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (body, None),
    };
    let (mut months, mut days, mut micros) = (0i64, 0i64, 0i64);
    for (num, unit) in iso_parts(date)? {
        let n: i64 = num.parse().ok()?;
        match unit {
            'Y' => months = months.checked_add(n.checked_mul(12)?)?,
            'M' => months = months.checked_add(n)?,
            'D' => days = days.checked_add(n)?,
            _ => return None,
        }
    }
    if let Some(time) = time {
        for (num, unit) in iso_parts(time)? {
            let us = match unit {
                'H' => num.parse::<i64>().ok()?.checked_mul(3_600_000_000)?,
                'M' => num.parse::<i64>().ok()?.checked_mul(60_000_000)?,
                'S' => seconds_to_micros(num)?,
                _ => return None,
            };
            micros = micros.checked_add(us)?;
        }
    }
    Some(Value::Interval {
        months: i32::try_from(months).ok()?,
        days: i32::try_from(days).ok()?,
        micros,
    })
}

fn iso_parts(s: &str) -> Option<Vec<(&str, char)>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if c.is_ascii_alphabetic() {
            let num = &s[start..i];
            if num.is_empty() {
                return None;
            }
            out.push((num, c));
            start = i + 1;
        }
    }
    (start == s.len()).then_some(out)
}

/// `-12.345678` seconds to microseconds, exactly.
fn seconds_to_micros(s: &str) -> Option<i64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let (whole, frac) = body.split_once('.').unwrap_or((body, ""));
    if whole.is_empty() || frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<6}").parse().ok()?
    };
    let us = whole.checked_mul(1_000_000)?.checked_add(frac)?;
    Some(if neg { -us } else { us })
}

fn parse_bits(s: &str) -> Option<Value> {
    let len = u32::try_from(s.len()).ok()?;
    let mut bytes = vec![0u8; s.len().div_ceil(8)];
    for (i, b) in s.bytes().enumerate() {
        match b {
            b'1' => bytes[i / 8] |= 0x80 >> (i % 8),
            b'0' => {}
            _ => return None,
        }
    }
    Some(Value::Bits { len, bytes })
}

#[cfg(test)]
#[path = "types_tests.rs"]
mod tests;
