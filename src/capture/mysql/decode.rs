//! Rows events -> model [`Change`]s.
//!
//! Implements WRITE/UPDATE/DELETE_ROWS events, version 1 (MariaDB, types 23-25) and version 2
//! (MySQL 5.6+, types 30-32, with the extra-data block), per the MySQL "Rows_event" documentation:
//!
//! ```text
//!  table_id:6 flags:2 [v2: extra_len:2 extra:(extra_len-2)] ncols:lenenc
//!  present:bitmap(ncols) [update: present_after:bitmap(ncols)]
//!  rows := ( nulls:bitmap(popcount(present)) value* ){ 1 or 2 per row (update: before, after) }
//! ```
//!
//! Bitmaps are least-significant-bit first. Columns absent from the present bitmap
//! (`binlog_row_image=MINIMAL/NOBLOB`) are left out of the image, whose kind is then `Partial`.
//!
//! Error handling: a pure decoder; malformed bytes give a [`DecodeError`], never a panic.

use super::metadata::TableMeta;
use super::types::{decode_value, DecodeError, Reader};
use crate::model::{Change, Field, ImageKind, Op, RowImage, Value};

/// Which rows event an event type code is, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowsKind {
    pub op: Op,
    pub v2: bool,
}

impl RowsKind {
    pub fn from_event_type(t: u8) -> Option<RowsKind> {
        let (op, v2) = match t {
            23 => (Op::Insert, false),
            24 => (Op::Update, false),
            25 => (Op::Delete, false),
            30 => (Op::Insert, true),
            31 => (Op::Update, true),
            32 => (Op::Delete, true),
            _ => return None,
        };
        Some(RowsKind { op, v2 })
    }
}

/// The table id of a rows event body (its first six bytes).
pub fn rows_table_id(body: &[u8]) -> Result<u64, DecodeError> {
    Reader::new(body).uint_le(6)
}

/// Decodes every row of a rows event body for `table`.
pub fn decode_rows(
    kind: RowsKind,
    body: &[u8],
    table: &TableMeta,
) -> Result<Vec<Change>, DecodeError> {
    let mut r = Reader::new(body);
    r.take(8)?; // table id, flags
    if kind.v2 {
        let extra = r.uint_le(2)? as usize;
        r.take(
            extra
                .checked_sub(2)
                .ok_or(DecodeError::Malformed("rows extra data"))?,
        )?;
    }
    let ncols = usize::try_from(r.lenenc()?).map_err(|_| DecodeError::Malformed("rows"))?;
    // A zero-column image would consume no bytes, and the row loop would never end.
    if ncols == 0 {
        return Err(DecodeError::Malformed("rows event without columns"));
    }
    if ncols > table.columns.len() {
        return Err(DecodeError::Malformed(
            "rows event has more columns than its TABLE_MAP",
        ));
    }
    let bitmap_len = ncols.div_ceil(8);
    let before_present = r.take(bitmap_len)?;
    let after_present = if kind.op == Op::Update {
        r.take(bitmap_len)?
    } else {
        before_present
    };
    let mut changes = Vec::new();
    while !r.is_empty() {
        let before_len = r.remaining().len();
        let change = match kind.op {
            Op::Insert => Change {
                table: table.table.clone(),
                op: Op::Insert,
                before: None,
                after: Some(read_image(&mut r, table, ncols, after_present)?),
            },
            Op::Delete => Change {
                table: table.table.clone(),
                op: Op::Delete,
                before: Some(read_image(&mut r, table, ncols, before_present)?),
                after: None,
            },
            Op::Update | Op::Truncate => {
                let before = read_image(&mut r, table, ncols, before_present)?;
                let after = read_image(&mut r, table, ncols, after_present)?;
                Change {
                    table: table.table.clone(),
                    op: Op::Update,
                    before: Some(before),
                    after: Some(after),
                }
            }
        };
        // An image with no present columns consumes nothing; without progress the loop never ends.
        if r.remaining().len() == before_len {
            return Err(DecodeError::Malformed("rows event image without columns"));
        }
        changes.push(change);
    }
    Ok(changes)
}

fn bit(bitmap: &[u8], i: usize) -> bool {
    bitmap.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)
}

fn read_image(
    r: &mut Reader<'_>,
    table: &TableMeta,
    ncols: usize,
    present: &[u8],
) -> Result<RowImage, DecodeError> {
    let present_count = (0..ncols).filter(|&i| bit(present, i)).count();
    let nulls = r.take(present_count.div_ceil(8))?;
    let mut fields = Vec::with_capacity(present_count);
    let mut k = 0;
    for (i, col) in table.columns.iter().enumerate().take(ncols) {
        if !bit(present, i) {
            continue;
        }
        let value = if bit(nulls, k) {
            Value::Null
        } else {
            decode_value(&col.decoder, r)?
        };
        k += 1;
        fields.push(Field {
            name: col.name.clone(),
            value,
        });
    }
    let kind = if present_count == table.columns.len() {
        ImageKind::Full
    } else {
        ImageKind::Partial
    };
    Ok(RowImage::new(kind, fields))
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
