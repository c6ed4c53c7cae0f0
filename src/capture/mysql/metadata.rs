//! Table metadata: what a rows event needs to turn bytes into named, typed columns.
//!
//! Two sources, combined per table:
//! - the TABLE_MAP event that precedes every rows event (types and type metadata always; with
//!   `binlog_row_metadata=FULL` also names, signedness, charsets, ENUM/SET labels and the primary key,
//!   in its optional-metadata TLVs, MySQL `Table_map_log_event::Optional_metadata_field_type`);
//! - `information_schema` ([`SchemaInfo`]), read by the stream when the TABLE_MAP lacks names
//!   (`binlog_row_metadata=MINIMAL`) and to learn which MariaDB LONGTEXT columns are `JSON`.
//!
//! [`MetadataCache`] keeps the resolved [`TableMeta`] per table and rebuilds it when a TABLE_MAP's
//! bytes differ from the cached one (the table was altered) or when DDL names the table.
//!
//! Error handling: parsing is bounds-checked and returns [`DecodeError`]; a TABLE_MAP that does not
//! agree with the information_schema fallback is a [`MetadataError`] that names the fix.

use std::collections::HashMap;
use std::sync::Arc;

use super::types::{
    decode_text, Charset, ColType, ColumnDecoder, DecodeError, FixedBinary, Reader,
};
use crate::model::TableRef;

/// A TABLE_MAP event body, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableMap {
    pub table_id: u64,
    pub table: TableRef,
    pub columns: Vec<ColType>,
    pub optional: OptionalMeta,
    /// Whether the charset metadata lists GEOMETRY columns among the character columns: MariaDB
    /// does (its `is_character_type` counts GEOMETRY, whose field class is a BLOB), MySQL does not.
    pub geometry_has_charset: bool,
}

/// The optional metadata of a TABLE_MAP (`binlog_row_metadata=FULL`); empty fields were absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OptionalMeta {
    pub names: Vec<String>,
    /// One flag per numeric column, in column order; `true` is UNSIGNED.
    pub unsigned: Vec<bool>,
    /// Collation id per character column (CHAR/VARCHAR/TEXT/BLOB), in column order.
    pub charsets: Vec<u16>,
    /// Collation id per ENUM/SET column.
    pub enum_set_charsets: Vec<u16>,
    /// ENUM / SET labels as raw bytes in the column's charset (decoded in `resolve`).
    pub enum_values: Vec<Vec<Vec<u8>>>,
    pub set_values: Vec<Vec<Vec<u8>>>,
    pub primary_key: Vec<usize>,
}

/// Parses a TABLE_MAP event body (without header and checksum) as MySQL writes it.
pub fn parse_table_map(body: &[u8]) -> Result<TableMap, DecodeError> {
    parse_table_map_from(body, false)
}

/// Parses a TABLE_MAP event body; `mariadb` when MariaDB wrote it (see
/// [`TableMap::geometry_has_charset`]).
pub fn parse_table_map_from(body: &[u8], mariadb: bool) -> Result<TableMap, DecodeError> {
    let mut r = Reader::new(body);
    let table_id = r.uint_le(6)?;
    r.take(2)?; // flags
    let schema_len = usize::from(r.u8()?);
    let schema = r.take(schema_len)?;
    r.take(1)?;
    let name_len = usize::from(r.u8()?);
    let name = r.take(name_len)?;
    r.take(1)?;
    let count = usize::try_from(r.lenenc()?).map_err(|_| DecodeError::Malformed("TABLE_MAP"))?;
    let types = r.take(count)?;
    let meta_len = usize::try_from(r.lenenc()?).map_err(|_| DecodeError::Malformed("TABLE_MAP"))?;
    let mut meta = Reader::new(r.take(meta_len)?);
    let mut columns = Vec::with_capacity(count);
    for &t in types {
        let n = meta_bytes(t);
        columns.push(ColType::from_binlog(t, meta.take(n)?)?);
    }
    r.take(count.div_ceil(8))?; // nullability bitmap: the row's own NULL bitmap says it all
    let optional = parse_optional(&mut r, &columns, mariadb)?;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    Ok(TableMap {
        table_id,
        table: TableRef::new(&text(schema), &text(name)),
        columns,
        optional,
        geometry_has_charset: mariadb,
    })
}

/// Bytes of per-column metadata for a binlog type (MySQL `Table_map_log_event::save_field_metadata`).
fn meta_bytes(type_code: u8) -> usize {
    use super::types::code::*;
    match type_code {
        FLOAT | DOUBLE | BLOB | TINY_BLOB | MEDIUM_BLOB | LONG_BLOB | GEOMETRY | JSON
        | TIMESTAMP2 | DATETIME2 | TIME2 => 1,
        VARCHAR | VAR_STRING | BIT | NEWDECIMAL | STRING | ENUM | SET => 2,
        _ => 0,
    }
}

/// Whether a column has an entry in the charset metadata (see [`TableMap::geometry_has_charset`]).
fn has_charset(ty: &ColType, geometry_has_charset: bool) -> bool {
    ty.is_character() || (geometry_has_charset && matches!(ty, ColType::Geometry { .. }))
}

fn parse_optional(
    r: &mut Reader<'_>,
    columns: &[ColType],
    geometry_has_charset: bool,
) -> Result<OptionalMeta, DecodeError> {
    let mut m = OptionalMeta::default();
    let numeric = columns.iter().filter(|c| c.is_numeric()).count();
    let character = columns
        .iter()
        .filter(|c| has_charset(c, geometry_has_charset))
        .count();
    let enum_set = columns.iter().filter(|c| c.is_enum_or_set()).count();
    while !r.is_empty() {
        let kind = r.u8()?;
        let len = usize::try_from(r.lenenc()?).map_err(|_| DecodeError::Malformed("TABLE_MAP"))?;
        let mut v = Reader::new(r.take(len)?);
        match kind {
            1 => {
                let bits = v.take(len)?;
                m.unsigned = (0..numeric)
                    .map(|i| bits.get(i / 8).is_some_and(|b| b & (0x80 >> (i % 8)) != 0))
                    .collect();
            }
            2 => m.charsets = default_charset(&mut v, character)?,
            3 => m.charsets = per_column_u16(&mut v)?,
            4 => {
                while !v.is_empty() {
                    m.names.push(lenenc_string(&mut v)?);
                }
            }
            5 => m.set_values = string_lists(&mut v)?,
            6 => m.enum_values = string_lists(&mut v)?,
            8 => {
                while !v.is_empty() {
                    m.primary_key.push(lenenc_usize(&mut v)?);
                }
            }
            9 => {
                while !v.is_empty() {
                    m.primary_key.push(lenenc_usize(&mut v)?);
                    v.lenenc()?; // prefix length
                }
            }
            10 => m.enum_set_charsets = default_charset(&mut v, enum_set)?,
            11 => m.enum_set_charsets = per_column_u16(&mut v)?,
            // geometry types, visibility, vector dimensions, and types added later: not needed.
            _ => {}
        }
    }
    Ok(m)
}

fn lenenc_usize(v: &mut Reader<'_>) -> Result<usize, DecodeError> {
    usize::try_from(v.lenenc()?).map_err(|_| DecodeError::Malformed("TABLE_MAP"))
}

fn lenenc_string(v: &mut Reader<'_>) -> Result<String, DecodeError> {
    let n = lenenc_usize(v)?;
    Ok(String::from_utf8_lossy(v.take(n)?).into_owned())
}

fn per_column_u16(v: &mut Reader<'_>) -> Result<Vec<u16>, DecodeError> {
    let mut out = Vec::new();
    while !v.is_empty() {
        out.push(v.lenenc()? as u16);
    }
    Ok(out)
}

/// A default collation followed by (index, collation) exceptions, expanded to one id per column.
fn default_charset(v: &mut Reader<'_>, count: usize) -> Result<Vec<u16>, DecodeError> {
    let default = v.lenenc()? as u16;
    let mut out = vec![default; count];
    while !v.is_empty() {
        let idx = lenenc_usize(v)?;
        let id = v.lenenc()? as u16;
        *out.get_mut(idx)
            .ok_or(DecodeError::Malformed("TABLE_MAP charset"))? = id;
    }
    Ok(out)
}

fn string_lists(v: &mut Reader<'_>) -> Result<Vec<Vec<Vec<u8>>>, DecodeError> {
    let mut out = Vec::new();
    while !v.is_empty() {
        let n = lenenc_usize(v)?;
        if n > v.remaining().len() {
            return Err(DecodeError::Malformed("TABLE_MAP labels"));
        }
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            let len = lenenc_usize(v)?;
            labels.push(v.take(len)?.to_vec());
        }
        out.push(labels);
    }
    Ok(out)
}

/// Labels in their charset; a label the charset cannot decode is kept lossily rather than failing
/// the table (the label text is only ever compared with the same server's labels).
fn decode_labels(labels: &[Vec<u8>], charset: &Charset) -> Arc<[String]> {
    labels
        .iter()
        .map(|l| {
            decode_text(charset, l).unwrap_or_else(|_| String::from_utf8_lossy(l).into_owned())
        })
        .collect()
}

/// What `information_schema` says about a table's columns, in ordinal order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaInfo {
    pub columns: Vec<InfoColumn>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InfoColumn {
    pub name: String,
    pub unsigned: bool,
    /// `CHARACTER_SET_NAME`; `None` for non-character and binary columns.
    pub charset: Option<String>,
    pub enum_values: Vec<String>,
    pub set_values: Vec<String>,
    /// MariaDB `JSON` (an alias of LONGTEXT with a `json_valid` check).
    pub is_json: bool,
    /// MariaDB INET4/INET6/UUID, which the binlog does not tell from a `BINARY(n)`.
    pub fixed_binary: Option<FixedBinary>,
    pub primary_key: bool,
}

/// One column, ready to decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: Arc<str>,
    pub decoder: ColumnDecoder,
}

/// A table as the rows events of one TABLE_MAP must be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableMeta {
    pub table: TableRef,
    pub columns: Vec<Column>,
    /// Indexes of the primary key columns (empty when unknown or absent).
    pub primary_key: Vec<usize>,
}

/// The TABLE_MAP and information_schema disagree, or neither names the columns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error(
        "the binlog maps {binlog} columns for {table} but information_schema lists {schema}: the \
         table changed since; set binlog_row_metadata=FULL on the source so the binlog carries \
         column names"
    )]
    ColumnCountMismatch {
        table: TableRef,
        binlog: usize,
        schema: usize,
    },
    #[error(
        "the binlog does not name the columns of {table} and information_schema has no such table \
         (dropped since?); set binlog_row_metadata=FULL on the source so the binlog carries names"
    )]
    NoNames { table: TableRef },
}

/// Resolves collation ids to charsets: the server's own table when read, else the built-in list.
#[derive(Debug, Clone, Default)]
pub struct Collations(pub HashMap<u16, Charset>);

impl Collations {
    pub fn charset(&self, id: u16) -> Charset {
        self.0
            .get(&id)
            .cloned()
            .or_else(|| Charset::from_collation_id(id))
            .unwrap_or_else(|| Charset::Other(format!("collation {id}").into()))
    }
}

/// Combines a TABLE_MAP with the information_schema view of its table.
pub fn resolve(
    map: &TableMap,
    info: Option<&SchemaInfo>,
    collations: &Collations,
) -> Result<TableMeta, MetadataError> {
    let opt = &map.optional;
    let have_names = opt.names.len() == map.columns.len();
    let info_cols = info.map(|i| i.columns.as_slice());
    if !have_names {
        match info_cols {
            None => {
                return Err(MetadataError::NoNames {
                    table: map.table.clone(),
                })
            }
            Some([]) => {
                return Err(MetadataError::NoNames {
                    table: map.table.clone(),
                })
            }
            Some(c) if c.len() != map.columns.len() => {
                return Err(MetadataError::ColumnCountMismatch {
                    table: map.table.clone(),
                    binlog: map.columns.len(),
                    schema: c.len(),
                })
            }
            Some(_) => {}
        }
    }
    let (mut numeric, mut character, mut enum_set, mut enums, mut sets) = (0, 0, 0, 0, 0);
    let mut columns = Vec::with_capacity(map.columns.len());
    for (i, ty) in map.columns.iter().enumerate() {
        let name: String = if have_names {
            opt.names[i].clone()
        } else {
            info_cols
                .and_then(|c| c.get(i))
                .map(|c| c.name.clone())
                .unwrap_or_default()
        };
        // information_schema by name: still right after columns were reordered or added.
        let ic = info_cols.and_then(|c| c.iter().find(|c| c.name == name));
        let mut d = ColumnDecoder::new(ty.clone());
        if ty.is_numeric() {
            d.unsigned = opt
                .unsigned
                .get(numeric)
                .copied()
                .unwrap_or_else(|| ic.is_some_and(|c| c.unsigned));
            numeric += 1;
        }
        if matches!(ty, ColType::Geometry { .. }) && map.geometry_has_charset {
            // Listed for its BLOB class only: its value is bytes whatever the collation.
            character += 1;
        }
        if ty.is_character() {
            d.charset = Some(match (opt.charsets.get(character), ic) {
                (Some(&id), _) => collations.charset(id),
                (None, Some(c)) => c
                    .charset
                    .as_deref()
                    .map_or(Charset::Binary, Charset::from_name),
                (None, None) => Charset::Binary,
            });
            d.json_text = ic.is_some_and(|c| c.is_json);
            d.fixed_binary = ic.and_then(|c| c.fixed_binary);
            character += 1;
        }
        let label_charset = if ty.is_enum_or_set() {
            enum_set += 1;
            opt.enum_set_charsets
                .get(enum_set - 1)
                .map_or(Charset::Utf8, |&id| collations.charset(id))
        } else {
            Charset::Utf8
        };
        match ty {
            ColType::Enum { .. } => {
                d.enum_values = match (opt.enum_values.get(enums), ic) {
                    (Some(v), _) => decode_labels(v, &label_charset),
                    (None, Some(c)) => c.enum_values.clone().into(),
                    (None, None) => Arc::from(Vec::new()),
                };
                enums += 1;
            }
            ColType::Set { .. } => {
                d.set_values = match (opt.set_values.get(sets), ic) {
                    (Some(v), _) => decode_labels(v, &label_charset),
                    (None, Some(c)) => c.set_values.clone().into(),
                    (None, None) => Arc::from(Vec::new()),
                };
                sets += 1;
            }
            _ => {}
        }
        columns.push(Column {
            name: name.into(),
            decoder: d,
        });
    }
    let primary_key = if !opt.primary_key.is_empty() {
        opt.primary_key.clone()
    } else {
        info_cols
            .map(|c| {
                columns
                    .iter()
                    .enumerate()
                    .filter(|(_, col)| c.iter().any(|i| i.primary_key && *i.name == *col.name))
                    .map(|(i, _)| i)
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(TableMeta {
        table: map.table.clone(),
        columns,
        primary_key,
    })
}

/// Resolved tables, keyed by binlog table id, plus the information_schema data they were built from.
#[derive(Debug, Default)]
pub struct MetadataCache {
    /// table id -> (TABLE_MAP body it was built from, resolved table or `None` when not captured).
    by_id: HashMap<u64, (Vec<u8>, Option<Arc<TableMeta>>)>,
    info: HashMap<TableRef, Arc<SchemaInfo>>,
}

impl MetadataCache {
    /// The table a rows event with `table_id` belongs to: `Some(None)` when mapped but not captured.
    pub fn get(&self, table_id: u64) -> Option<Option<&Arc<TableMeta>>> {
        self.by_id.get(&table_id).map(|(_, m)| m.as_ref())
    }

    /// Whether a TABLE_MAP with exactly these bytes was already resolved for its id.
    pub fn is_current(&self, table_id: u64, body: &[u8]) -> bool {
        self.by_id
            .get(&table_id)
            .is_some_and(|(b, _)| b.as_slice() == body)
    }

    pub fn insert(&mut self, table_id: u64, body: &[u8], meta: Option<Arc<TableMeta>>) {
        self.by_id.insert(table_id, (body.to_vec(), meta));
    }

    pub fn schema_info(&self, table: &TableRef) -> Option<&Arc<SchemaInfo>> {
        self.info.get(table)
    }

    pub fn set_schema_info(&mut self, table: TableRef, info: SchemaInfo) {
        self.info.insert(table, Arc::new(info));
    }

    /// Forgets everything derived from `table` (after DDL on it).
    pub fn invalidate(&mut self, table: &TableRef) {
        self.info.remove(table);
        self.by_id
            .retain(|_, (_, m)| m.as_ref().is_none_or(|m| m.table != *table));
    }

    /// Forgets every table-id mapping (a new connection: ids may be reassigned after a restart).
    pub fn clear_ids(&mut self) {
        self.by_id.clear();
    }
}

#[cfg(test)]
#[path = "metadata_tests.rs"]
pub(crate) mod tests;
