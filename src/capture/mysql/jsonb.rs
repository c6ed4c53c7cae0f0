//! MySQL binary JSON (the storage format of MySQL 5.7+/8 `JSON` columns) -> JSON text.
//!
//! Implements the format documented in MySQL `sql-common/json_binary.h`:
//!
//! ```text
//!  doc    := type:u8 value
//!  object := count size key-entry* value-entry* key* value*      (small: u16 fields, large: u32)
//!  key-entry   := offset length:u16
//!  value-entry := type:u8 (offset | inlined scalar)
//!  string := varlen-length utf8     opaque := field-type:u8 varlen-length bytes
//! ```
//!
//! Offsets are relative to the start of the enclosing object or array. The text uses MySQL's own
//! spacing (`{"a": 1, "b": [true, null]}`). MariaDB stores JSON as text and never reaches this module.
//!
//! Error handling: offsets and lengths are checked against the slice they point into, and nesting
//! is capped, so malformed input returns an error rather than panicking or recursing without end.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::types::{decode_decimal, DecodeError, Reader};
use crate::model::time;

const MAX_DEPTH: usize = 150;

/// Converts one binary JSON document to its text form.
pub fn to_text(doc: &[u8]) -> Result<String, DecodeError> {
    let mut out = String::with_capacity(doc.len() * 2);
    // MySQL writes an empty value for a JSON column that holds SQL NULL in some paths; treat it as
    // the JSON null literal rather than failing the row.
    let Some((&ty, body)) = doc.split_first() else {
        out.push_str("null");
        return Ok(out);
    };
    // Every value of a well-formed document is stored once, so visiting more values than there are
    // bytes means entries share substructure: refuse it instead of expanding it exponentially. And
    // no stored byte becomes more than a few bytes of text (`\u0001` is six), so text far longer
    // than the document means the same stored string is visited over and over.
    let mut budget = Budget {
        values: doc.len(),
        bytes: doc.len().saturating_mul(MAX_EXPANSION).saturating_add(64),
    };
    write_value(ty, body, 0, &mut budget, &mut out)?;
    Ok(out)
}

/// What decoding one document may still spend: values to visit, and bytes of text to write.
struct Budget {
    values: usize,
    bytes: usize,
}

/// Text bytes per stored byte that no well-formed document exceeds.
const MAX_EXPANSION: usize = 16;

fn err(what: &str) -> DecodeError {
    DecodeError::Json(what.to_string())
}

fn write_value(
    ty: u8,
    data: &[u8],
    depth: usize,
    budget: &mut Budget,
    out: &mut String,
) -> Result<(), DecodeError> {
    if depth > MAX_DEPTH {
        return Err(err("nesting too deep"));
    }
    budget.values = budget
        .values
        .checked_sub(1)
        .ok_or_else(|| err("values share storage"))?;
    if out.len() > budget.bytes {
        return Err(err("values share storage (the text outgrows the document)"));
    }
    let mut r = Reader::new(data);
    match ty {
        0x00 => write_container(data, false, true, depth, budget, out),
        0x01 => write_container(data, true, true, depth, budget, out),
        0x02 => write_container(data, false, false, depth, budget, out),
        0x03 => write_container(data, true, false, depth, budget, out),
        0x04 => {
            out.push_str(match r.u8()? {
                0 => "null",
                1 => "true",
                2 => "false",
                _ => return Err(err("unknown literal")),
            });
            Ok(())
        }
        0x05 => push_display(out, r.uint_le(2)? as u16 as i16),
        0x06 => push_display(out, r.uint_le(2)?),
        0x07 => push_display(out, r.uint_le(4)? as u32 as i32),
        0x08 => push_display(out, r.uint_le(4)?),
        0x09 => push_display(out, r.uint_le(8)? as i64),
        0x0A => push_display(out, r.uint_le(8)?),
        0x0B => {
            let x = f64::from_bits(r.uint_le(8)?);
            if !x.is_finite() {
                return Err(err("non-finite double"));
            }
            if x.fract() == 0.0 && x.abs() < 1e15 {
                out.push_str(&format!("{x:.1}"));
            } else {
                out.push_str(&format!("{x}"));
            }
            Ok(())
        }
        0x0C => {
            let len = varlen(&mut r)?;
            let s = std::str::from_utf8(r.take(len)?).map_err(|_| err("string is not UTF-8"))?;
            push_string(out, s);
            Ok(())
        }
        0x0F => {
            let field_type = r.u8()?;
            let len = varlen(&mut r)?;
            write_opaque(field_type, r.take(len)?, out)
        }
        _ => Err(err("unknown value type")),
    }
}

fn push_display(out: &mut String, v: impl std::fmt::Display) -> Result<(), DecodeError> {
    out.push_str(&v.to_string());
    Ok(())
}

/// A variable-length length: 7 bits per byte, least significant group first, at most 5 bytes.
fn varlen(r: &mut Reader<'_>) -> Result<usize, DecodeError> {
    let mut len: u64 = 0;
    for i in 0..5 {
        let b = r.u8()?;
        len |= u64::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return usize::try_from(len).map_err(|_| err("length overflow"));
        }
    }
    Err(err("length longer than 5 bytes"))
}

fn write_container(
    data: &[u8],
    large: bool,
    object: bool,
    depth: usize,
    budget: &mut Budget,
    out: &mut String,
) -> Result<(), DecodeError> {
    let w = if large { 4 } else { 2 };
    let mut r = Reader::new(data);
    let count = r.uint_le(w)? as usize;
    let size = r.uint_le(w)? as usize;
    let data = data.get(..size).ok_or_else(|| err("container size"))?;
    // Each entry needs at least a few bytes, so a count larger than the data is malformed; checking
    // before the loop keeps a forged count from costing time.
    if count > data.len() {
        return Err(err("element count"));
    }
    let key_entry = w + 2;
    let value_entry = 1 + w;
    let keys_at = 2 * w;
    let values_at = keys_at + if object { count * key_entry } else { 0 };
    out.push(if object { '{' } else { '[' });
    for i in 0..count {
        if i > 0 {
            out.push_str(", ");
        }
        if object {
            let mut k = Reader::new(data.get(keys_at + i * key_entry..).unwrap_or_default());
            let off = k.uint_le(w)? as usize;
            let len = k.uint_le(2)? as usize;
            let key = data
                .get(off..off.saturating_add(len))
                .ok_or_else(|| err("key offset"))?;
            let key = std::str::from_utf8(key).map_err(|_| err("key is not UTF-8"))?;
            push_string(out, key);
            out.push_str(": ");
        }
        let entry = data
            .get(values_at + i * value_entry..)
            .ok_or_else(|| err("value entry"))?;
        let mut e = Reader::new(entry);
        let ty = e.u8()?;
        let inlined = matches!(ty, 0x04..=0x06) || (large && matches!(ty, 0x07 | 0x08));
        if inlined {
            write_value(ty, e.take(w)?, depth + 1, budget, out)?;
        } else {
            let off = e.uint_le(w)? as usize;
            if off == 0 {
                return Err(err("value offset"));
            }
            let v = data.get(off..).ok_or_else(|| err("value offset"))?;
            write_value(ty, v, depth + 1, budget, out)?;
        }
    }
    out.push(if object { '}' } else { ']' });
    Ok(())
}

/// Opaque values: MySQL-typed scalars inside a JSON document (DECIMAL, temporal values), written the
/// way MySQL's `JSON_UNQUOTE` shows them; other types as `base64:typeN:...` like MySQL does.
fn write_opaque(field_type: u8, data: &[u8], out: &mut String) -> Result<(), DecodeError> {
    use super::types::code;
    match field_type {
        code::NEWDECIMAL => {
            let mut r = Reader::new(data);
            let (precision, scale) = (r.u8()?, r.u8()?);
            let d = decode_decimal(&mut r, precision, scale)?;
            out.push_str(d.as_str());
        }
        code::DATE | code::DATETIME | code::TIMESTAMP | code::TIME => {
            let mut r = Reader::new(data);
            let packed = r.uint_le(8)? as i64;
            let text = packed_temporal(field_type, packed)?;
            push_string(out, &text);
        }
        _ => {
            let text = format!("base64:type{field_type}:{}", STANDARD.encode(data));
            push_string(out, &text);
        }
    }
    Ok(())
}

/// MySQL's in-memory packed temporal format: `(int part << 24) | microseconds`, signed.
fn packed_temporal(field_type: u8, packed: i64) -> Result<String, DecodeError> {
    use super::types::code;
    let neg = packed < 0;
    let p = packed.unsigned_abs();
    let frac = p & 0xFF_FFFF;
    let int = p >> 24;
    if field_type == code::TIME {
        let (h, m, s) = ((int >> 12) & 0x3FF, (int >> 6) & 63, int & 63);
        let micros = (((h * 60 + m) * 60 + s) * 1_000_000 + frac) as i64;
        return Ok(time::format_time(if neg { -micros } else { micros }));
    }
    let ymd = int >> 17;
    let ym = ymd >> 5;
    let hms = int & 0x1FFFF;
    let (y, mo, d) = (ym / 13, ym % 13, ymd & 31);
    if field_type == code::DATE {
        return Ok(format!("{y:04}-{mo:02}-{d:02}"));
    }
    Ok(format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}.{frac:06}",
        hms >> 12,
        (hms >> 6) & 63,
        hms & 63
    ))
}

fn push_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0C}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An array of many entries that all point at one long string: each entry is a value of its own
    /// (so the value budget holds) but the text would be entries x string length. Refused, not
    /// expanded (it grew to gigabytes from a few kilobytes).
    #[test]
    fn entries_sharing_one_long_string_are_refused() {
        let n: u16 = 2000;
        let header = 4 + 3 * usize::from(n);
        let mut arr = Vec::new();
        arr.extend(n.to_le_bytes());
        arr.extend([0, 0]);
        for _ in 0..n {
            arr.push(0x0C);
            arr.extend((header as u16).to_le_bytes());
        }
        let long = vec![b'a'; 3000];
        arr.extend([0xB8, 0x17]); // varlen 3000
        arr.extend(&long);
        let size = arr.len() as u16;
        arr[2..4].copy_from_slice(&size.to_le_bytes());
        let mut doc = vec![0x02];
        doc.extend(arr);
        let r = to_text(&doc);
        assert!(
            r.as_ref()
                .is_err_and(|e| e.to_string().contains("outgrows")),
            "{:?}",
            r.map(|t| t.len())
        );
    }

    /// Builds a small object `{"a": 1, "b": [true, "x"]}` by hand from the documented layout.
    pub(crate) fn sample_doc() -> Vec<u8> {
        // inner array [true, "x"]: count 2, size, 2 value entries (3 bytes each), then "x".
        let mut arr = vec![2, 0, 0, 0];
        arr.extend([0x04, 1, 0]); // true, inlined
        arr.extend([0x0C, 0, 0]); // string at offset (patched below)
        let str_off = arr.len() as u16;
        arr[8..10].copy_from_slice(&str_off.to_le_bytes());
        arr.extend([1, b'x']);
        let arr_len = arr.len() as u16;
        arr[2..4].copy_from_slice(&arr_len.to_le_bytes());

        // object: count 2, size, key entries (4 bytes each), value entries (3 bytes each), keys, values
        let mut obj = vec![2, 0, 0, 0];
        let keys_start = 4 + 2 * 4 + 2 * 3;
        obj.extend((keys_start as u16).to_le_bytes());
        obj.extend(1u16.to_le_bytes());
        obj.extend((keys_start as u16 + 1).to_le_bytes());
        obj.extend(1u16.to_le_bytes());
        obj.extend([0x05, 1, 0]); // int16 1, inlined
        let arr_off = (keys_start + 2) as u16;
        obj.push(0x02);
        obj.extend(arr_off.to_le_bytes());
        obj.extend(b"ab");
        obj.extend(&arr);
        let obj_len = obj.len() as u16;
        obj[2..4].copy_from_slice(&obj_len.to_le_bytes());
        let mut doc = vec![0x00];
        doc.extend(obj);
        doc
    }

    #[test]
    fn decodes_a_hand_built_document() {
        assert_eq!(
            to_text(&sample_doc()).unwrap(),
            r#"{"a": 1, "b": [true, "x"]}"#
        );
    }

    #[test]
    fn decodes_scalars() {
        assert_eq!(to_text(&[0x04, 0]).unwrap(), "null");
        assert_eq!(to_text(&[0x05, 0xFF, 0xFF]).unwrap(), "-1");
        let mut d = vec![0x0A];
        d.extend(u64::MAX.to_le_bytes());
        assert_eq!(to_text(&d).unwrap(), "18446744073709551615");
        let mut d = vec![0x0B];
        d.extend(1.5f64.to_le_bytes());
        assert_eq!(to_text(&d).unwrap(), "1.5");
        assert_eq!(
            to_text(&[0x0C, 5, b'a', b'"', b'\n', 0xC3, 0xA9]).unwrap(),
            "\"a\\\"\\né\""
        );
        // DECIMAL(4,2) 12.34 as an opaque value
        let dec = [0x0F, 246, 4, 4, 2, 0x80 | 12, 34];
        assert_eq!(to_text(&dec).unwrap(), "12.34");
    }

    /// An opaque value of a type JSON has no form for is shown as MySQL shows it, standard base64.
    #[test]
    fn other_opaque_values_are_base64() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foobar", "Zm9vYmFy"),
        ] {
            let mut doc = vec![0x0F, 252, plain.len() as u8];
            doc.extend(plain.as_bytes());
            assert_eq!(
                to_text(&doc).unwrap(),
                format!("\"base64:type252:{encoded}\"")
            );
        }
    }

    #[test]
    fn rejects_malformed_documents() {
        assert!(to_text(&[0x0C, 10, b'a']).is_err());
        assert!(to_text(&[0x00, 1, 0, 0xFF, 0]).is_err());
        assert!(to_text(&[0x99]).is_err());
        // a value entry pointing at its own container must not recurse forever
        assert!(to_text(&[0x02, 1, 0, 7, 0, 0x02, 0, 0]).is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = to_text(&data);
        }

        #[test]
        fn never_panics_on_mutated_documents(idx in 0usize..40, byte in proptest::prelude::any::<u8>()) {
            let mut d = sample_doc();
            let i = idx % d.len();
            d[i] = byte;
            let _ = to_text(&d);
        }
    }
}
