//! Reading a PostgreSQL source for the copy: one REPEATABLE READ, READ ONLY transaction, on the
//! slot's exported snapshot (`SET TRANSACTION SNAPSHOT`) or a fresh one, read in key order with
//! keyset pagination. Values come as text with the same session settings as the replication
//! connection and are decoded by capture's type decoder, so a copied row is exactly what the stream
//! would have carried as an insert.

use std::collections::HashMap;

use tokio_postgres::{Client, SimpleQueryMessage};

use super::{CopyError, KeyOrder};
use crate::capture::postgres::setup::{quote_ident, quote_literal};
use crate::capture::postgres::types::TypeRegistry;
use crate::capture::postgres::{catalog_client, type_info, ConnParams, PgCaptureError};
use crate::config::Node;
use crate::model::{Field, ImageKind, RowImage, TableRef, Value};

pub struct PgReader {
    node: String,
    client: Client,
    types: TypeRegistry,
    columns: HashMap<TableRef, Vec<(String, u32)>>,
}

fn qualified(t: &TableRef) -> String {
    format!("{}.{}", quote_ident(&t.schema), quote_ident(&t.name))
}

impl PgReader {
    pub async fn open(node: &Node, snapshot: Option<&str>) -> Result<PgReader, CopyError> {
        let err = |source: PgCaptureError| CopyError::Postgres {
            node: node.id.clone(),
            source,
        };
        let params = ConnParams::parse(node.url.expose()).map_err(err)?;
        let client = catalog_client(&params).await.map_err(err)?;
        let mut sql = String::from(
            "SET DateStyle = ISO; SET IntervalStyle = iso_8601; SET extra_float_digits = 3; \
             SET TimeZone = 'UTC'; SET bytea_output = hex; SET client_encoding = UTF8; \
             BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        );
        if let Some(s) = snapshot {
            sql.push_str(&format!("; SET TRANSACTION SNAPSHOT {}", quote_literal(s)));
        }
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| err(e.into()))?;
        Ok(PgReader {
            node: node.id.clone(),
            client,
            types: TypeRegistry::default(),
            columns: HashMap::new(),
        })
    }

    fn err(&self, e: impl Into<PgCaptureError>) -> CopyError {
        CopyError::Postgres {
            node: self.node.clone(),
            source: e.into(),
        }
    }

    pub async fn estimate(&mut self, table: &TableRef) -> Result<Option<u64>, CopyError> {
        let row = self
            .client
            .query_one(
                "SELECT reltuples::float8 FROM pg_class WHERE oid = $1::text::regclass",
                &[&qualified(table)],
            )
            .await
            .map_err(|e| self.err(e))?;
        let n: f64 = row.try_get(0).map_err(|e| self.err(e))?;
        // -1: never analysed.
        Ok((n >= 0.0).then_some(n as u64))
    }

    /// The table's columns (name, type OID) in column order, with their types resolved.
    async fn columns(&mut self, table: &TableRef) -> Result<Vec<(String, u32)>, CopyError> {
        if let Some(c) = self.columns.get(table) {
            return Ok(c.clone());
        }
        let read = crate::catalog::postgres::read_table(&self.client, table).await;
        let Some(schema) = read.map_err(|e| self.err(e))? else {
            return Err(CopyError::Definite(format!(
                "table {table} does not exist on node {}; fix: create it or correct the mapping",
                self.node
            )));
        };
        let mut cols = Vec::with_capacity(schema.columns.len());
        for c in schema.columns.into_iter().filter(|c| !c.generated) {
            let oid = c.type_oid.unwrap_or_default();
            self.resolve(oid).await?;
            cols.push((c.name, oid));
        }
        self.columns.insert(table.clone(), cols.clone());
        Ok(cols)
    }

    async fn resolve(&mut self, oid: u32) -> Result<(), CopyError> {
        while let Some(missing) = self.types.missing(oid) {
            let rows = self
                .client
                .query(
                    "SELECT t.typname::text, n.nspname::text, t.typtype::text, t.typbasetype, \
                     t.typelem, t.typdelim::text, t.typcategory::text \
                     FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid = $1",
                    &[&missing],
                )
                .await
                .map_err(|e| self.err(e))?;
            let info = match rows.first() {
                Some(r) => type_info(r).map_err(|e| self.err(e))?,
                None => crate::capture::postgres::types::TypeInfo {
                    name: format!("oid {missing}"),
                    kind: crate::capture::postgres::types::TypeKind::Other,
                },
            };
            self.types.insert(missing, info);
        }
        Ok(())
    }

    /// Up to `limit` rows with a key above `after` (a JSON array of the key's text forms), in key
    /// order, and the last row's key in that form. Under [`KeyOrder::Bytes`] text key columns are
    /// ordered by their bytes (`COLLATE "C"`), the order every engine can give.
    pub async fn batch(
        &mut self,
        table: &TableRef,
        key: &[String],
        after: Option<&str>,
        limit: u32,
        order: KeyOrder,
    ) -> Result<(Vec<RowImage>, Option<String>), CopyError> {
        let cols = self.columns(table).await?;
        let key_index = self
            .key_index(table, &cols, key)
            .map_err(CopyError::Definite)?;
        let order: Vec<String> = key_index
            .iter()
            .map(|&i| {
                let (name, oid) = &cols[i];
                if order == KeyOrder::Bytes && TEXT_OIDS.contains(oid) {
                    format!("{} COLLATE \"C\"", quote_ident(name))
                } else {
                    quote_ident(name)
                }
            })
            .collect();
        let mut sql = select_list(table, &cols);
        if let Some(after) = after {
            let values: Vec<String> = serde_json::from_str(after).map_err(|_| {
                CopyError::Definite(format!(
                    "the copy progress of {table} holds an unreadable key; fix: delete that table's row from the copy_progress table on the target to copy it again"
                ))
            })?;
            let lits: Vec<String> = values.iter().map(|v| quote_literal(v)).collect();
            sql.push_str(&format!(
                " WHERE ({}) > ({})",
                order.join(", "),
                lits.join(", ")
            ));
        }
        sql.push_str(&format!(" ORDER BY {} LIMIT {limit}", order.join(", ")));
        let (rows, last) = self.read(table, &cols, &key_index, &sql).await?;
        let last = match last {
            Some(k) => Some(serde_json::to_string(&k).map_err(|e| {
                CopyError::Definite(format!("cannot record the last key of {table}: {e}"))
            })?),
            None => None,
        };
        Ok((rows, last))
    }

    /// The rows whose key is one of `keys` (model values, in key column order), in no set order.
    pub async fn rows_with_keys(
        &mut self,
        table: &TableRef,
        key: &[String],
        keys: &[Vec<Value>],
    ) -> Result<Vec<RowImage>, CopyError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let cols = self.columns(table).await?;
        let key_index = self
            .key_index(table, &cols, key)
            .map_err(CopyError::Definite)?;
        let names: Vec<String> = key.iter().map(|k| quote_ident(k)).collect();
        let tuples: Vec<String> = keys
            .iter()
            .map(|k| {
                let lits: Vec<String> = k.iter().map(|v| quote_literal(&v.to_string())).collect();
                format!("({})", lits.join(", "))
            })
            .collect();
        let mut sql = select_list(table, &cols);
        sql.push_str(&format!(
            " WHERE ({}) IN ({})",
            names.join(", "),
            tuples.join(", ")
        ));
        Ok(self.read(table, &cols, &key_index, &sql).await?.0)
    }

    /// The rows whose `version` column (tandem's managed version: microseconds) is at least
    /// `since_micros`, in no set order.
    pub async fn rows_since(
        &mut self,
        table: &TableRef,
        key: &[String],
        version: &str,
        since_micros: i64,
    ) -> Result<Vec<RowImage>, CopyError> {
        let cols = self.columns(table).await?;
        let key_index = self
            .key_index(table, &cols, key)
            .map_err(CopyError::Definite)?;
        let mut sql = select_list(table, &cols);
        sql.push_str(&format!(
            " WHERE {} >= {since_micros}",
            quote_ident(version)
        ));
        Ok(self.read(table, &cols, &key_index, &sql).await?.0)
    }

    fn key_index(
        &self,
        table: &TableRef,
        cols: &[(String, u32)],
        key: &[String],
    ) -> Result<Vec<usize>, String> {
        key.iter()
            .map(|k| {
                cols.iter().position(|(n, _)| n == k).ok_or_else(|| {
                    format!(
                        "table {table} on node {} has no key column {k}; fix: correct the table's key in the file",
                        self.node
                    )
                })
            })
            .collect()
    }

    /// Runs `sql` (a select of `cols`) and decodes its rows; with the last row's key text forms.
    async fn read(
        &mut self,
        table: &TableRef,
        cols: &[(String, u32)],
        key_index: &[usize],
        sql: &str,
    ) -> Result<(Vec<RowImage>, Option<Vec<String>>), CopyError> {
        let messages = self
            .client
            .simple_query(sql)
            .await
            .map_err(|e| self.err(e))?;
        let mut rows = Vec::new();
        let mut last = None;
        for m in messages {
            let SimpleQueryMessage::Row(r) = m else {
                continue;
            };
            let mut fields = Vec::with_capacity(cols.len());
            for (i, (name, oid)) in cols.iter().enumerate() {
                let value = match r.get(i) {
                    None => Value::Null,
                    Some(text) => {
                        self.types
                            .decode_text(*oid, text)
                            .map_err(|e| CopyError::Value {
                                table: table.clone(),
                                column: name.clone(),
                                type_name: e.type_name,
                            })?
                    }
                };
                fields.push(Field {
                    name: name.as_str().into(),
                    value,
                });
            }
            last = key_index
                .iter()
                .map(|&i| r.get(i).map(str::to_string))
                .collect();
            rows.push(RowImage::new(ImageKind::Full, fields));
        }
        Ok((rows, last))
    }
}

/// Type OIDs of the character types (`text`, `varchar`, `bpchar`, `name`).
const TEXT_OIDS: [u32; 4] = [25, 1043, 1042, 19];

fn select_list(table: &TableRef, cols: &[(String, u32)]) -> String {
    let list: Vec<String> = cols.iter().map(|(n, _)| quote_ident(n)).collect();
    format!("SELECT {} FROM {}", list.join(", "), qualified(table))
}

/// Drops the link's slot when it exists and no one reads it, so that the stream creates it again with
/// an exported snapshot. Only for a link that has never applied anything (no checkpoint), so the
/// slot holds no position anyone relies on: the snapshot shows every change it held.
pub async fn drop_idle_slot(node: &Node, slot: &str) -> Result<(), CopyError> {
    let err = |source: PgCaptureError| CopyError::Postgres {
        node: node.id.clone(),
        source,
    };
    let params = ConnParams::parse(node.url.expose()).map_err(err)?;
    let client = catalog_client(&params).await.map_err(err)?;
    let rows = client
        .query(
            "SELECT active FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .map_err(|e| err(e.into()))?;
    let Some(row) = rows.first() else {
        return Ok(());
    };
    let active: bool = row.try_get(0).map_err(|e| err(e.into()))?;
    if active {
        return Err(CopyError::Definite(format!(
            "slot {slot} on node {} is in use, so the initial copy cannot take its snapshot; fix: stop the other reader of that slot (another tandem run?) and restart",
            node.id
        )));
    }
    client
        .execute("SELECT pg_drop_replication_slot($1)", &[&slot])
        .await
        .map_err(|e| err(e.into()))?;
    tracing::info!(node = %node.id, slot = %slot, "dropped the link's unused slot; the copy creates it again with a snapshot");
    Ok(())
}
