//! Column values, exact for everything PostgreSQL and MySQL/MariaDB can send.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::time;

/// One column value as captured from a source log or read from a table.
///
/// Conventions (each capture and applier relies on them):
/// - `Timestamp` and `TimestampTz` are microseconds since 1970-01-01T00:00:00; `TimestampTz` is a UTC
///   instant, `Timestamp` a wall-clock reading without zone. PostgreSQL's `infinity` / `-infinity` are
///   `i64::MAX` / `i64::MIN`, as PostgreSQL itself stores them.
/// - `Date` is days since 1970-01-01 (`i32::MAX` / `i32::MIN` for `infinity` / `-infinity`).
/// - `Time` is a signed duration in microseconds, so MySQL's `TIME` (-838:59:59 to 838:59:59) fits.
/// - `Unchanged` is a PostgreSQL TOAST value the log did not carry: the applier leaves the target's
///   value as it is. It never reaches a target as a value.
#[derive(Debug, Clone)]
pub enum Value {
    Null,
    Unchanged,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float32(f32),
    Float64(f64),
    Decimal(Decimal),
    Text(String),
    Bytes(Vec<u8>),
    /// JSON document as text (PostgreSQL `json` keeps its text verbatim; `jsonb` and MySQL's binary JSON
    /// arrive in their server's normalised text).
    Json(String),
    Uuid([u8; 16]),
    Date(i32),
    Time(i64),
    /// Time of day in microseconds plus the zone offset in seconds east of UTC (PostgreSQL `timetz`).
    TimeTz {
        micros: i64,
        offset_secs: i32,
    },
    Timestamp(i64),
    TimestampTz(i64),
    Interval {
        months: i32,
        days: i32,
        micros: i64,
    },
    /// An ENUM label (MySQL/MariaDB `ENUM`, PostgreSQL enum types).
    Enum(String),
    /// MySQL/MariaDB `SET`: the labels present, in the column's declaration order.
    Set(Vec<String>),
    /// A bit string: `len` bits, most significant first, packed into bytes.
    Bits {
        len: u32,
        bytes: Vec<u8>,
    },
    /// A MySQL/MariaDB spatial value: its SRID and its geometry as OGC well-known binary. The server
    /// stores and sends `srid` as 4 little-endian bytes before the WKB; a plain bytes column holds
    /// the WKB alone (see `apply::row`).
    Geometry {
        srid: u32,
        wkb: Vec<u8>,
    },
    /// An array; a multi-dimensional array is an array of arrays.
    Array(Vec<Value>),
    /// A value of a type the model has no variant for, kept as the server's text form with its type name.
    Other {
        type_name: String,
        text: String,
    },
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// A spatial value from MySQL/MariaDB's own form (4-byte little-endian SRID, then WKB); bytes
    /// too short to hold an SRID stay bytes, for the target to refuse.
    pub fn geometry_from_server(bytes: &[u8]) -> Value {
        match bytes.split_first_chunk::<4>() {
            Some((srid, wkb)) => Value::Geometry {
                srid: u32::from_le_bytes(*srid),
                wkb: wkb.to_vec(),
            },
            None => Value::Bytes(bytes.to_vec()),
        }
    }

    /// MySQL/MariaDB's own form of a spatial value: the SRID as 4 little-endian bytes, then the WKB.
    pub fn geometry_server_bytes(srid: u32, wkb: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(wkb.len() + 4);
        out.extend_from_slice(&srid.to_le_bytes());
        out.extend_from_slice(wkb);
        out
    }

    /// A short, stable name for the value's kind, used in errors (never the value itself).
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Unchanged => "unchanged",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::UInt(_) => "uint",
            Value::Float32(_) => "float32",
            Value::Float64(_) => "float64",
            Value::Decimal(_) => "decimal",
            Value::Text(_) => "text",
            Value::Bytes(_) => "bytes",
            Value::Json(_) => "json",
            Value::Uuid(_) => "uuid",
            Value::Date(_) => "date",
            Value::Time(_) => "time",
            Value::TimeTz { .. } => "timetz",
            Value::Timestamp(_) => "timestamp",
            Value::TimestampTz(_) => "timestamptz",
            Value::Interval { .. } => "interval",
            Value::Enum(_) => "enum",
            Value::Set(_) => "set",
            Value::Bits { .. } => "bits",
            Value::Geometry { .. } => "geometry",
            Value::Array(_) => "array",
            Value::Other { .. } => "other",
        }
    }
}

/// Values are equal when they hold the same data. Floats compare by bit pattern, so that `NaN` equals
/// itself (convergence checks must be able to say two rows are equal) and `0.0` differs from `-0.0`.
impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        use Value::*;
        match (self, other) {
            (Null, Null) | (Unchanged, Unchanged) => true,
            (Bool(a), Bool(b)) => a == b,
            (Int(a), Int(b)) => a == b,
            (UInt(a), UInt(b)) => a == b,
            (Float32(a), Float32(b)) => a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
            (Float64(a), Float64(b)) => a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
            (Decimal(a), Decimal(b)) => a == b,
            (Text(a), Text(b)) | (Json(a), Json(b)) | (Enum(a), Enum(b)) => a == b,
            (Bytes(a), Bytes(b)) => a == b,
            (Uuid(a), Uuid(b)) => a == b,
            (Date(a), Date(b)) => a == b,
            (Time(a), Time(b))
            | (Timestamp(a), Timestamp(b))
            | (TimestampTz(a), TimestampTz(b)) => a == b,
            (
                TimeTz {
                    micros: a,
                    offset_secs: x,
                },
                TimeTz {
                    micros: b,
                    offset_secs: y,
                },
            ) => a == b && x == y,
            (
                Interval {
                    months: a,
                    days: b,
                    micros: c,
                },
                Interval {
                    months: x,
                    days: y,
                    micros: z,
                },
            ) => a == x && b == y && c == z,
            (Set(a), Set(b)) => a == b,
            (Bits { len: a, bytes: x }, Bits { len: b, bytes: y }) => a == b && x == y,
            (Geometry { srid: a, wkb: x }, Geometry { srid: b, wkb: y }) => a == b && x == y,
            (Array(a), Array(b)) => a == b,
            (
                Other {
                    type_name: a,
                    text: x,
                },
                Other {
                    type_name: b,
                    text: y,
                },
            ) => a == b && x == y,
            _ => false,
        }
    }
}

impl Eq for Value {}

/// Human-readable text form, as a database would print it. Used by `tandem tail` and debug logs.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Unchanged => f.write_str("<unchanged>"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::UInt(u) => write!(f, "{u}"),
            Value::Float32(x) => fmt_float(f, f64::from(*x), x.to_string()),
            Value::Float64(x) => fmt_float(f, *x, x.to_string()),
            Value::Decimal(d) => write!(f, "{d}"),
            Value::Text(s) | Value::Json(s) | Value::Enum(s) => f.write_str(s),
            Value::Bytes(b) => {
                f.write_str("\\x")?;
                b.iter().try_for_each(|x| write!(f, "{x:02x}"))
            }
            Value::Uuid(u) => f.write_str(&format_uuid(u)),
            Value::Date(d) => match *d {
                i32::MAX => f.write_str("infinity"),
                i32::MIN => f.write_str("-infinity"),
                d => f.write_str(&time::format_date(i64::from(d))),
            },
            Value::Time(t) => f.write_str(&time::format_time(*t)),
            Value::TimeTz {
                micros,
                offset_secs,
            } => {
                // As PostgreSQL writes it: `+HH`, `+HH:MM` or `+HH:MM:SS` as the offset needs.
                let sign = if *offset_secs < 0 { '-' } else { '+' };
                let o = offset_secs.unsigned_abs();
                write!(f, "{}{sign}{:02}", time::format_time(*micros), o / 3600)?;
                if o % 3600 != 0 {
                    write!(f, ":{:02}", (o / 60) % 60)?;
                }
                if o % 60 != 0 {
                    write!(f, ":{:02}", o % 60)?;
                }
                Ok(())
            }
            Value::Timestamp(t) => fmt_ts(f, *t, ""),
            Value::TimestampTz(t) => fmt_ts(f, *t, "Z"),
            Value::Interval {
                months,
                days,
                micros,
            } => f.write_str(&time::format_interval(
                i64::from(*months),
                i64::from(*days),
                *micros,
            )),
            Value::Set(items) => f.write_str(&items.join(",")),
            Value::Bits { len, bytes } => (0..*len).try_for_each(|i| {
                let byte = bytes.get((i / 8) as usize).copied().unwrap_or(0);
                f.write_str(if byte & (0x80 >> (i % 8)) != 0 {
                    "1"
                } else {
                    "0"
                })
            }),
            // The WKB as PostgreSQL writes bytes, after `SRID=n;` when there is one (as PostGIS's
            // extended text form).
            Value::Geometry { srid, wkb } => {
                if *srid != 0 {
                    write!(f, "SRID={srid};")?;
                }
                f.write_str("\\x")?;
                wkb.iter().try_for_each(|x| write!(f, "{x:02x}"))
            }
            Value::Array(items) => {
                f.write_str("{")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("}")
            }
            Value::Other { text, .. } => f.write_str(text),
        }
    }
}

fn fmt_float(f: &mut fmt::Formatter<'_>, x: f64, shortest: String) -> fmt::Result {
    if x.is_nan() {
        f.write_str("NaN")
    } else if x.is_infinite() {
        f.write_str(if x > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        f.write_str(&shortest)
    }
}

fn fmt_ts(f: &mut fmt::Formatter<'_>, t: i64, zone: &str) -> fmt::Result {
    match t {
        i64::MAX => f.write_str("infinity"),
        i64::MIN => f.write_str("-infinity"),
        t => write!(f, "{}{zone}", time::format_timestamp(t)),
    }
}

/// Formats 16 bytes as the canonical lowercase hyphenated UUID text.
pub fn format_uuid(u: &[u8; 16]) -> String {
    let h: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Parses a UUID from its hyphenated or plain hex text.
pub fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let hex: Vec<u8> = s.bytes().filter(|b| *b != b'-').collect();
    if hex.len() != 32 || s.len() > 36 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

/// An exact decimal number of any precision, kept as its canonical text.
///
/// The text is `-?D+(.D+)?` with no leading zeros in the integer part (except a lone `0`) and no `-0`;
/// the scale (digits after the point, trailing zeros included) is kept as the source gave it, because
/// `1.50` in a `NUMERIC(5,2)` and `1.5` are different texts a round trip must not confuse. PostgreSQL's
/// `NaN`, `Infinity` and `-Infinity` are representable too. Equality is numeric equality: `1.50 == 1.5`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Decimal(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a decimal number: {0:?}")]
pub struct DecimalError(pub String);

impl Decimal {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_nan(&self) -> bool {
        self.0 == "NaN"
    }

    /// Digits after the decimal point.
    pub fn scale(&self) -> usize {
        self.0.split_once('.').map_or(0, |(_, f)| f.len())
    }

    /// Digits in total, excluding leading zeros of the integer part.
    pub fn precision(&self) -> usize {
        let digits = self.0.trim_start_matches('-');
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        let int = int.trim_start_matches('0');
        if int.is_empty() {
            frac.trim_start_matches('0').len().max(1)
        } else {
            int.len() + frac.len()
        }
    }

    /// The number without trailing fractional zeros: the form used for comparisons.
    pub fn normalized(&self) -> &str {
        if self.0.contains('.') {
            self.0.trim_end_matches('0').trim_end_matches('.')
        } else {
            &self.0
        }
    }
}

impl PartialEq for Decimal {
    fn eq(&self, other: &Self) -> bool {
        self.normalized() == other.normalized()
    }
}

impl Eq for Decimal {}

impl FromStr for Decimal {
    type Err = DecimalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || DecimalError(s.chars().take(64).collect());
        match s {
            "NaN" | "nan" => return Ok(Decimal("NaN".into())),
            "Infinity" | "inf" | "+Infinity" => return Ok(Decimal("Infinity".into())),
            "-Infinity" | "-inf" => return Ok(Decimal("-Infinity".into())),
            _ => {}
        }
        let (neg, body) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let (int, frac) = match body.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (body, None),
        };
        let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(int)
            || !frac.is_none_or(all_digits)
            || (int.is_empty() && frac.is_none_or(str::is_empty))
        {
            return Err(err());
        }
        let int = int.trim_start_matches('0');
        let int = if int.is_empty() { "0" } else { int };
        let mut out = String::with_capacity(s.len() + 1);
        let frac = frac.filter(|f| !f.is_empty());
        let zero = int == "0" && frac.is_none_or(|f| f.bytes().all(|b| b == b'0'));
        if neg && !zero {
            out.push('-');
        }
        out.push_str(int);
        if let Some(f) = frac {
            out.push('.');
            out.push_str(f);
        }
        Ok(Decimal(out))
    }
}

impl TryFrom<String> for Decimal {
    type Error = DecimalError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Decimal> for String {
    fn from(d: Decimal) -> String {
        d.0
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decimals_are_exact() {
        let big = format!("{}.{}", "9".repeat(35), "1".repeat(30));
        let d: Decimal = big.parse().unwrap();
        assert_eq!(d.as_str(), big);
        assert_eq!(d.precision(), 65);
        assert_eq!(d.scale(), 30);
        let thousand = "1".repeat(1000);
        assert_eq!(thousand.parse::<Decimal>().unwrap().as_str(), thousand);
        assert_eq!("-0.00".parse::<Decimal>().unwrap().as_str(), "0.00");
        assert_eq!("007.50".parse::<Decimal>().unwrap().as_str(), "7.50");
        assert_eq!(
            "1.50".parse::<Decimal>().unwrap(),
            "1.5".parse::<Decimal>().unwrap()
        );
        assert!("1e5".parse::<Decimal>().is_err());
        assert!(".".parse::<Decimal>().is_err());
        assert!("".parse::<Decimal>().is_err());
        assert_eq!(".5".parse::<Decimal>().unwrap().as_str(), "0.5");
    }

    #[test]
    fn nan_equals_itself_and_zero_signs_differ() {
        assert_eq!(Value::Float64(f64::NAN), Value::Float64(f64::NAN));
        assert_ne!(Value::Float64(0.0), Value::Float64(-0.0));
        assert_ne!(Value::Int(1), Value::UInt(1));
    }

    #[test]
    fn display_forms() {
        assert_eq!(Value::UInt(u64::MAX).to_string(), "18446744073709551615");
        assert_eq!(Value::Float64(f64::NEG_INFINITY).to_string(), "-Infinity");
        assert_eq!(Value::TimestampTz(i64::MAX).to_string(), "infinity");
        assert_eq!(
            Value::TimestampTz(1).to_string(),
            "1970-01-01T00:00:00.000001Z"
        );
        assert_eq!(
            Value::Bits {
                len: 3,
                bytes: vec![0b1010_0000]
            }
            .to_string(),
            "101"
        );
        let u = parse_uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").unwrap();
        assert_eq!(format_uuid(&u), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    }

    fn any_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            Just(Value::Unchanged),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            any::<u64>().prop_map(Value::UInt),
            any::<f64>().prop_map(Value::Float64),
            "-?[0-9]{1,80}(\\.[0-9]{1,40})?".prop_map(|s| Value::Decimal(s.parse().unwrap())),
            ".*".prop_map(Value::Text),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bytes),
            any::<[u8; 16]>().prop_map(Value::Uuid),
            any::<i32>().prop_map(Value::Date),
            any::<i64>().prop_map(Value::TimestampTz),
            (any::<i32>(), any::<i32>(), any::<i64>()).prop_map(|(months, days, micros)| {
                Value::Interval {
                    months,
                    days,
                    micros,
                }
            }),
        ];
        leaf.prop_recursive(2, 16, 4, |inner| {
            proptest::collection::vec(inner, 0..4).prop_map(Value::Array)
        })
    }

    proptest! {
        #[test]
        fn serde_round_trip_is_lossless(v in any_value()) {
            let json = serde_json::to_string(&v).unwrap();
            let back: Value = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(back, v);
        }
    }
}
