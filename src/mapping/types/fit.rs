//! Whether a value of one column type survives in another: [`fits`], one function per family of
//! types so that each fits a screen. A pair no family knows has no conversion (lossy).

use super::{int_range, ColumnType, Fit};

/// Booleans, integers, decimals, floats, years and bit strings. `None`: not a pair of this family.
fn numeric(from: &ColumnType, to: &ColumnType) -> Option<Fit> {
    use ColumnType as T;
    Some(match (from, to) {
        (
            T::Bool,
            T::Int {
                bytes: 1,
                display_width: Some(1),
                ..
            },
        ) => Fit::Conventional("boolean stored as TINYINT(1): 0 and 1 only".into()),
        (
            T::Int {
                bytes: 1,
                display_width: Some(1),
                ..
            },
            T::Bool,
        ) => Fit::Conventional(
            "TINYINT(1) read as boolean: a value other than 0 or 1 is refused at apply time".into(),
        ),
        (T::Bool, T::Int { .. }) => Fit::Conventional("boolean stored as an integer 0/1".into()),
        (
            T::Int {
                bytes: a,
                unsigned: ua,
                ..
            },
            T::Int {
                bytes: b,
                unsigned: ub,
                ..
            },
        ) => {
            let (fa, ta) = int_range(*a, *ua);
            let (fb, tb) = int_range(*b, *ub);
            if fb <= fa && ta <= tb {
                Fit::Exact
            } else {
                Fit::Narrowing(format!("{from} values outside {fb}..={tb} do not fit {to}"))
            }
        }
        (
            T::Int {
                bytes, unsigned, ..
            },
            T::Decimal { precision, scale },
        ) => {
            let (lo, hi) = int_range(*bytes, *unsigned);
            let digits = hi.max(-lo).to_string().len() as u32;
            match precision {
                None => Fit::Exact,
                Some(p) if p.saturating_sub(*scale) >= digits => Fit::Exact,
                Some(_) => Fit::Narrowing(format!("large {from} values do not fit {to}")),
            }
        }
        (
            T::Decimal {
                precision: pa,
                scale: sa,
            },
            T::Decimal {
                precision: pb,
                scale: sb,
            },
        ) => {
            if sb < sa {
                return Some(Fit::Lossy(format!(
                    "{from} has {sa} decimal places, {to} only {sb}: values are rounded"
                )));
            }
            match (pa, pb) {
                (_, None) => Fit::Exact,
                (Some(pa), Some(pb)) if pb - sb >= pa - sa => Fit::Exact,
                _ => Fit::Narrowing(format!(
                    "{from} values with more integer digits than {to} holds do not fit"
                )),
            }
        }
        (T::Float { double: false }, T::Float { double: true }) => Fit::Exact,
        (T::Float { double: true }, T::Float { double: false }) => {
            Fit::Lossy("a double stored as a single-precision float is rounded".into())
        }
        (T::Year, T::Int { bytes, .. }) if *bytes >= 2 => Fit::Exact,
        (T::Int { .. }, T::Year) => Fit::Narrowing("only years 1901 to 2155 fit YEAR".into()),
        (T::Bits { len: a, .. }, T::Bits { len: b, .. }) if a <= b => Fit::Exact,
        _ => return None,
    })
}

/// Text, bytes, UUIDs, JSON, enums, arrays into JSON and geometries. `None`: not a pair of this family.
fn text(from: &ColumnType, to: &ColumnType) -> Option<Fit> {
    use ColumnType as T;
    Some(match (from, to) {
        (
            T::Text {
                max_chars: a,
                fixed: fa,
            },
            T::Text {
                max_chars: b,
                fixed: fb,
            },
        ) => {
            if *fb && !*fa {
                return Some(Fit::Lossy(format!(
                    "{to} pads values with spaces, so they come back longer"
                )));
            }
            if *fa && !*fb {
                return Some(Fit::Lossy(format!(
                    "{from} pads with spaces that {to} keeps, so values change"
                )));
            }
            match (a, b) {
                (_, None) => Fit::Exact,
                (Some(a), Some(b)) if a <= b => Fit::Exact,
                _ => Fit::Narrowing(format!("values longer than {to} allows are refused")),
            }
        }
        (
            T::Bytes {
                max_bytes: a,
                fixed: fa,
            },
            T::Bytes {
                max_bytes: b,
                fixed: fb,
            },
        ) => {
            if fa != fb && !(*fa && a == b) {
                return Some(Fit::Lossy(format!("{to} pads values with zero bytes")));
            }
            match (a, b) {
                (_, None) => Fit::Exact,
                (Some(a), Some(b)) if a <= b => Fit::Exact,
                _ => Fit::Narrowing(format!("values longer than {to} allows are refused")),
            }
        }
        (T::Uuid, T::Text { max_chars, fixed }) => match max_chars {
            Some(n) if *n < 36 => {
                Fit::Narrowing(format!("a UUID needs 36 characters, {to} has {n}"))
            }
            Some(36) | None => Fit::Exact,
            Some(_) if *fixed => Fit::Lossy(format!("{to} pads a UUID with spaces")),
            Some(_) => Fit::Exact,
        },
        (T::Text { .. }, T::Uuid) => {
            Fit::Conventional("text read as a UUID: a value that is not a UUID is refused".into())
        }
        (
            T::Uuid,
            T::Bytes {
                max_bytes: Some(16),
                ..
            },
        )
        | (
            T::Bytes {
                max_bytes: Some(16),
                ..
            },
            T::Uuid,
        ) => Fit::Exact,
        (T::Json, T::Json) => Fit::Exact,
        (
            T::Json,
            T::Text {
                max_chars: None, ..
            },
        ) => Fit::Exact,
        (
            T::Text {
                max_chars: None, ..
            },
            T::Json,
        ) => Fit::Conventional("text read as JSON: text that is not JSON is refused".into()),
        (T::Array(_), T::Json) => Fit::Conventional("an array stored as a JSON array".into()),
        (T::Json, T::Array(_)) => {
            Fit::Conventional("a JSON array read as an array: other JSON is refused".into())
        }
        (T::Enum { labels: a }, T::Enum { labels: b }) => {
            if a.iter().all(|l| b.contains(l)) {
                Fit::Exact
            } else {
                Fit::Narrowing(format!("labels missing from {to}"))
            }
        }
        (
            T::Enum { labels },
            T::Text {
                max_chars,
                fixed: false,
            },
        ) => match max_chars {
            Some(n) if labels.iter().any(|l| l.chars().count() as u64 > *n) => {
                Fit::Narrowing(format!("a label is longer than {to} holds"))
            }
            _ => Fit::Conventional("an enum label stored as a string".into()),
        },
        (T::Text { .. }, T::Enum { .. }) => {
            Fit::Conventional("a string read as an enum label: other strings are refused".into())
        }
        (
            T::Geometry,
            T::Bytes {
                max_bytes: None, ..
            },
        ) => Fit::Narrowing(
            "a geometry is stored as plain WKB, which has no SRID: one with a non-zero SRID is refused"
                .into(),
        ),
        (T::Bytes { .. }, T::Geometry) => Fit::Conventional(
            "bytes read as WKB with SRID 0: bytes that are no geometry are refused".into(),
        ),
        _ => return None,
    })
}

/// Dates, times and timestamps. `None`: not a pair of this family.
fn temporal(from: &ColumnType, to: &ColumnType) -> Option<Fit> {
    use ColumnType as T;
    Some(match (from, to) {
        (T::Date, T::Date) => Fit::Exact,
        (T::Date, T::Timestamp { .. }) => Fit::Conventional("a date stored as midnight".into()),
        (
            T::Time {
                frac: fa,
                signed_hours: sa,
                tz: za,
            },
            T::Time {
                frac: fb,
                signed_hours: sb,
                tz: zb,
            },
        ) => {
            if za != zb {
                return Some(Fit::Lossy("time with and without time zone differ".into()));
            }
            if fb < fa {
                return Some(Fit::Lossy(format!(
                    "{from} keeps {fa} fractional digits, {to} only {fb}: values are rounded"
                )));
            }
            if *sa && !*sb {
                Fit::Narrowing("negative times and times over 24 hours do not fit".into())
            } else {
                Fit::Exact
            }
        }
        (
            T::Timestamp {
                frac: fa,
                utc: ua,
                min_year: la,
                max_year: ha,
            },
            T::Timestamp {
                frac: fb,
                utc: ub,
                min_year: lb,
                max_year: hb,
            },
        ) => {
            let mut fit = Fit::Exact;
            if fb < fa {
                fit = fit.worst(Fit::Lossy(format!(
                    "{from} keeps {fa} fractional digits, {to} only {fb}: values are rounded"
                )));
            }
            if ua != ub {
                fit = fit.worst(Fit::Conventional(
                    "an instant stored as a wall-clock date-time in the node's time zone".into(),
                ));
            }
            if lb > la || hb < ha {
                fit = fit.worst(Fit::Narrowing(format!(
                    "{to} holds years {lb} to {hb} only"
                )));
            }
            fit
        }
        _ => return None,
    })
}

/// Whether every value of `from` is held exactly by `to` (one direction).
pub fn fits(from: &ColumnType, to: &ColumnType) -> Fit {
    if from == to {
        return Fit::Exact;
    }
    if let (ColumnType::Array(a), ColumnType::Array(b)) = (from, to) {
        return fits(a, b);
    }
    numeric(from, to)
        .or_else(|| text(from, to))
        .or_else(|| temporal(from, to))
        .unwrap_or_else(|| Fit::Lossy(format!("{from} has no conversion to {to}")))
}
