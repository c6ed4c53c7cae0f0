//! Temporal values (DATE, TIME, DATETIME, TIMESTAMP in their old and MySQL 5.6+ fractional formats)
//! -> model values, per MySQL `my_time.cc` (`my_*_packed_from_binary`). Zero and partly-zero dates
//! become `Value::Other { type_name: "zero_date" }` (see `types`).

use super::reader::{DecodeError, Reader};
use super::types::ColType;
use crate::model::time::{days_from_civil, is_valid_date, MICROS_PER_DAY};
use crate::model::Value;

/// Decodes one value of a temporal column type.
pub fn decode_temporal(ty: &ColType, r: &mut Reader<'_>) -> Result<Value, DecodeError> {
    Ok(match ty {
        ColType::Date => {
            let v = r.uint_le(3)?;
            date_value((v >> 9) as i64, ((v >> 5) & 15) as u32, (v & 31) as u32)
        }
        ColType::Time => {
            let raw = r.uint_le(3)? as i64;
            let v = (raw << 40) >> 40;
            let a = v.unsigned_abs() as i64;
            let (h, m, s) = (a / 10000, (a / 100) % 100, a % 100);
            let micros = ((h * 60 + m) * 60 + s) * 1_000_000;
            Value::Time(if v < 0 { -micros } else { micros })
        }
        ColType::Time2 { fsp } => Value::Time(decode_time2(r, *fsp)?),
        ColType::Datetime => {
            let v = r.uint_le(8)?;
            let (date, time) = (v / 1_000_000, v % 1_000_000);
            datetime_value(
                (date / 10000) as i64,
                ((date / 100) % 100) as u32,
                (date % 100) as u32,
                (time / 10000) as i64,
                ((time / 100) % 100) as i64,
                (time % 100) as i64,
                0,
            )?
        }
        ColType::Datetime2 { fsp } => {
            let int = r.uint_be(5)? as i64 - 0x80_0000_0000;
            let frac = read_frac(r, *fsp)?;
            if int < 0 {
                return Err(DecodeError::Malformed("DATETIME2"));
            }
            let ymd = int >> 17;
            let ym = ymd >> 5;
            let hms = int & 0x1FFFF;
            datetime_value(
                ym / 13,
                (ym % 13) as u32,
                (ymd & 31) as u32,
                hms >> 12,
                (hms >> 6) & 63,
                hms & 63,
                frac,
            )?
        }
        ColType::Timestamp => timestamp_value(r.uint_le(4)? as i64, 0),
        ColType::Timestamp2 { fsp } => {
            let secs = r.uint_be(4)? as i64;
            let frac = read_frac(r, *fsp)?;
            timestamp_value(secs, frac)
        }
        _ => return Err(DecodeError::Malformed("temporal type")),
    })
}

/// Reads the fractional-seconds part of a TIME2/DATETIME2/TIMESTAMP2 as microseconds.
fn read_frac(r: &mut Reader<'_>, fsp: u8) -> Result<i64, DecodeError> {
    Ok(match fsp {
        0 => 0,
        1 | 2 => r.uint_be(1)? as i64 * 10_000,
        3 | 4 => r.uint_be(2)? as i64 * 100,
        5 | 6 => r.uint_be(3)? as i64,
        _ => return Err(DecodeError::Malformed("fractional seconds precision")),
    })
}

/// TIME2: a packed signed value, `(hms bits << 24) + microseconds`, stored offset big-endian
/// (MySQL `my_time_packed_from_binary`).
fn decode_time2(r: &mut Reader<'_>, fsp: u8) -> Result<i64, DecodeError> {
    let packed: i64 = match fsp {
        0 => (r.uint_be(3)? as i64 - 0x80_0000) << 24,
        1..=4 => {
            let mut int = r.uint_be(3)? as i64 - 0x80_0000;
            let (mut frac, unit, wrap) = if fsp <= 2 {
                (r.uint_be(1)? as i64, 10_000, 0x100)
            } else {
                (r.uint_be(2)? as i64, 100, 0x1_0000)
            };
            // Negative values store the fraction as a complement that borrows from the seconds.
            if int < 0 && frac != 0 {
                int += 1;
                frac -= wrap;
            }
            (int << 24) + frac * unit
        }
        5 | 6 => r.uint_be(6)? as i64 - 0x8000_0000_0000,
        _ => return Err(DecodeError::Malformed("TIME2 precision")),
    };
    let neg = packed < 0;
    let p = packed.unsigned_abs() as i64;
    let int = p >> 24;
    let frac = p & 0xFF_FFFF;
    let (h, m, s) = ((int >> 12) & 0x3FF, (int >> 6) & 63, int & 63);
    if m > 59 || s > 59 || frac > 999_999 {
        return Err(DecodeError::Malformed("TIME2"));
    }
    let micros = ((h * 60 + m) * 60 + s) * 1_000_000 + frac;
    Ok(if neg { -micros } else { micros })
}

fn zero_date(text: String) -> Value {
    Value::Other {
        type_name: "zero_date".into(),
        text,
    }
}

fn date_value(y: i64, m: u32, d: u32) -> Value {
    if is_valid_date(y, m, d) {
        Value::Date(days_from_civil(y, m, d) as i32)
    } else {
        zero_date(format!("{y:04}-{m:02}-{d:02}"))
    }
}

fn datetime_value(
    y: i64,
    mo: u32,
    d: u32,
    h: i64,
    mi: i64,
    s: i64,
    frac: i64,
) -> Result<Value, DecodeError> {
    // MySQL stores years up to 9999 and a valid time of day; anything else is corrupt, and a
    // far-out year would overflow the microsecond count.
    if y > 9999 || h > 23 || mi > 59 || s > 59 {
        return Err(DecodeError::Malformed("DATETIME"));
    }
    if !is_valid_date(y, mo, d) {
        let mut text = format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}");
        if frac != 0 {
            text.push_str(&format!(".{frac:06}"));
        }
        return Ok(zero_date(text));
    }
    let tod = ((h * 60 + mi) * 60 + s) * 1_000_000 + frac;
    Ok(Value::Timestamp(
        days_from_civil(y, mo, d) * MICROS_PER_DAY + tod,
    ))
}

fn timestamp_value(secs: i64, frac: i64) -> Value {
    // MySQL cannot store 1970-01-01 00:00:00 UTC in a TIMESTAMP: zero seconds is the zero date.
    if secs == 0 && frac == 0 {
        return zero_date("0000-00-00 00:00:00".into());
    }
    Value::TimestampTz(secs * 1_000_000 + frac)
}
