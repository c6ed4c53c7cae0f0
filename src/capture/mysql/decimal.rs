//! DECIMAL values in MySQL's binary format -> exact model decimals.

use super::reader::{DecodeError, Reader};
use crate::model::Decimal;

/// Bytes used by a group of `digits` (< 9) decimal digits (MySQL `dig2bytes`).
pub(crate) const DIG2BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];

/// DECIMAL(precision, scale) in MySQL's binary format (`bin2decimal`): base-10^9 groups of 4 bytes,
/// partial groups at both ends, sign in the top bit, negative numbers stored inverted.
pub fn decode_decimal(
    r: &mut Reader<'_>,
    precision: u8,
    scale: u8,
) -> Result<Decimal, DecodeError> {
    let bad = || DecodeError::Malformed("DECIMAL");
    if scale > precision || precision > 65 {
        return Err(bad());
    }
    let intg = usize::from(precision - scale);
    let frac = usize::from(scale);
    let (intg0, intg0x, frac0, frac0x) = (intg / 9, intg % 9, frac / 9, frac % 9);
    let size = intg0 * 4 + DIG2BYTES[intg0x] + frac0 * 4 + DIG2BYTES[frac0x];
    let mut bytes = r.take(size)?.to_vec();
    let Some(first) = bytes.first_mut() else {
        return Err(bad());
    };
    let negative = *first & 0x80 == 0;
    *first ^= 0x80;
    if negative {
        bytes.iter_mut().for_each(|b| *b = !*b);
    }
    let mut g = Reader::new(&bytes);
    let group = |g: &mut Reader<'_>, digits: usize| -> Result<String, DecodeError> {
        let n = if digits == 9 { 4 } else { DIG2BYTES[digits] };
        let v = g.uint_be(n)?;
        if v >= 10u64.pow(digits as u32) {
            return Err(bad());
        }
        Ok(format!("{v:0digits$}"))
    };
    let mut int_part = String::new();
    if intg0x > 0 {
        int_part.push_str(&group(&mut g, intg0x)?);
    }
    for _ in 0..intg0 {
        int_part.push_str(&group(&mut g, 9)?);
    }
    let mut frac_part = String::new();
    for _ in 0..frac0 {
        frac_part.push_str(&group(&mut g, 9)?);
    }
    if frac0x > 0 {
        frac_part.push_str(&group(&mut g, frac0x)?);
    }
    let mut text = String::with_capacity(intg + frac + 3);
    if negative {
        text.push('-');
    }
    let trimmed = int_part.trim_start_matches('0');
    text.push_str(if trimmed.is_empty() { "0" } else { trimmed });
    if !frac_part.is_empty() {
        text.push('.');
        text.push_str(&frac_part);
    }
    text.parse().map_err(|_| bad())
}
