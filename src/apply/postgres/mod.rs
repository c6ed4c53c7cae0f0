//! The PostgreSQL target: one client session per link, marked as tandem's by the `tandem.applying`
//! setting (the stamping triggers leave its writes alone) and by a replication origin
//! `tandem_<source node>` (so the PostgreSQL capture sees `marks.pg_origin`).
//!
//! Error handling: every driver error becomes an [`ApplyError`] classified by SQLSTATE; a row error
//! names the table, key and (where the server or the declared type tells) the column.

mod book;
mod copy_in;
mod revive;
pub mod setup;
pub mod sql;
pub mod types;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Row, Statement};
use tracing::warn;

use super::error::{classify, fix_for, ApplyError, DbCode, DriverError, ErrorClass};
use super::revive::Revives;
use super::statement::{RowStatements, Taken};
use super::target::{Checked, ColumnInfo, Current, Probe, TableInfo, Target, Write};
use crate::model::{Field, TableRef, Value};
use sql::{ident, qname, ArraySql, Builder, Sql};

pub struct PgTarget {
    client: Client,
    node: String,
    schema: String,
    source_offset_secs: i32,
    /// Replication origin to mark applied transactions with.
    origin_name: Option<String>,
    origin_active: bool,
    /// Whether the session may apply with `session_replication_role = replica` (`None`: not yet
    /// known), and whether it does now.
    replica_allowed: Option<bool>,
    replica_active: bool,
    statements: HashMap<String, Statement>,
    tables: HashMap<TableRef, Arc<TableInfo>>,
    /// Tables whose batched inserts last found a key taken, and when: they insert with
    /// `ON CONFLICT DO NOTHING` for [`CHECKED_INSERTS_FOR`] (see [`Target::insert_new`]).
    checked_inserts: HashMap<TableRef, Instant>,
    /// Whether a `COPY` into a table does what an `INSERT` does (see `copy_in.rs`),
    /// read from the catalog once per table and session.
    copy_fits: HashMap<TableRef, bool>,
    /// The task that drives the connection: aborted to end a session whose protocol state is
    /// lost (see `copy_in.rs`).
    connection: tokio::task::AbortHandle,
    /// The server, database and role (no password), naming this target among the tables a
    /// `COPY` was refused into (`copy_in.rs`).
    url_key: String,
    /// The tables' revive triggers: seen, due, failed (see [`PgTarget::check_revive`]).
    revives: Revives,
}

/// How long a table whose batched insert found a key taken inserts the checked way.
const CHECKED_INSERTS_FOR: Duration = Duration::from_secs(60);

impl PgTarget {
    pub async fn connect(
        url: &str,
        node: &str,
        schema: &str,
        source_offset_secs: i32,
        origin_name: Option<String>,
    ) -> Result<PgTarget, ApplyError> {
        let (client, conn) =
            crate::connect::postgres(url)
                .await
                .map_err(|cause| ApplyError::Connect {
                    node: node.to_string(),
                    cause,
                })?;
        let connection = tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "postgres connection ended");
            }
        })
        .abort_handle();
        let mut t = PgTarget {
            client,
            node: node.to_string(),
            schema: schema.to_string(),
            source_offset_secs,
            origin_name,
            origin_active: false,
            replica_allowed: None,
            replica_active: false,
            statements: HashMap::new(),
            tables: HashMap::new(),
            checked_inserts: HashMap::new(),
            copy_fits: HashMap::new(),
            connection,
            url_key: copy_in::without_password(url),
            revives: Revives::default(),
        };
        // READ COMMITTED whatever the server's default: each statement sees what committed before
        // it (the revive trigger's check, in `tandem_mark`, relies on it, as the row checks do).
        t.simple(
            "SET TIME ZONE 'UTC'; SET DateStyle = 'ISO'; SET IntervalStyle = 'postgres'; \
             SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED",
        )
        .await?;
        Ok(t)
    }

    /// Applies with `session_replication_role = replica` (`on`), as PostgreSQL's apply workers do:
    /// no ordinary trigger fires for the applier's writes, tandem's own (which would return at
    /// once) and the application's alike, and foreign keys are not checked, as with native
    /// replication (a trigger that must fire for them is `ENABLE ALWAYS`). Only when the
    /// bookkeeping's own trigger on `tombstone` is `ENABLE ALWAYS` (tandem setup makes it so) and
    /// the role may set it (a superuser, or `GRANT SET ON PARAMETER session_replication_role`);
    /// otherwise the triggers fire and return at once (`tandem.applying`).
    async fn replica_role(&mut self, on: bool) -> Result<(), ApplyError> {
        if !on {
            if self.replica_active {
                self.simple("SET session_replication_role = origin").await?;
                self.replica_active = false;
            }
            return Ok(());
        }
        if self.replica_active || self.replica_allowed == Some(false) {
            return Ok(());
        }
        if self.replica_allowed.is_none() {
            let tombstone = format!("{}.tombstone", ident(&self.schema));
            let always = self
                .client
                .query_opt(
                    "SELECT 1 FROM pg_trigger WHERE tgname = 'tandem_mark' \
                     AND tgrelid = to_regclass($1) AND tgenabled = 'A'",
                    &[&tombstone],
                )
                .await
                .map_err(|e| self.db_err("reading tandem's triggers", e))?
                .is_some();
            if !always {
                tracing::info!(node = %self.node, "applying with the tables' triggers on: run `tandem setup` to let the applier skip them");
                self.replica_allowed = Some(false);
                return Ok(());
            }
        }
        match self
            .client
            .batch_execute("SET session_replication_role = replica")
            .await
        {
            Ok(()) => {
                self.replica_allowed = Some(true);
                self.replica_active = true;
            }
            Err(e)
                if e.code() == Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) =>
            {
                tracing::info!(node = %self.node, "applying with the tables' triggers on: the role may not set session_replication_role (a superuser, or GRANT SET ON PARAMETER session_replication_role, lets the applier skip them)");
                self.replica_allowed = Some(false);
            }
            Err(e) => return Err(self.db_err("a session statement", e)),
        }
        Ok(())
    }

    fn db_err(&self, what: &str, e: tokio_postgres::Error) -> ApplyError {
        let source = DriverError::Postgres(e);
        ApplyError::Database {
            node: self.node.clone(),
            what: what.to_string(),
            code: source.code(),
            source,
        }
    }

    pub(crate) async fn simple(&mut self, text: &str) -> Result<(), ApplyError> {
        let r = self.client.batch_execute(text).await;
        r.map_err(|e| self.db_err("a session statement", e))
    }

    async fn prepared(&mut self, text: &str) -> Result<Statement, tokio_postgres::Error> {
        if let Some(s) = self.statements.get(text) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(text).await?;
        self.statements.insert(text.to_string(), s.clone());
        Ok(s)
    }

    async fn run_rows(&mut self, sql: &Sql) -> Result<Vec<Row>, tokio_postgres::Error> {
        let stmt = self.prepared(&sql.text).await?;
        let params: Vec<&(dyn ToSql + Sync)> = sql
            .params
            .iter()
            .map(|p| p as &(dyn ToSql + Sync))
            .collect();
        self.client.query(&stmt, &params).await
    }

    /// Runs a batch statement over arrays (see [`ArraySql`]). One that joins the rows to the table
    /// runs as an unnamed statement with typed parameters: one round trip, and a plan made for
    /// these arrays and the table as it is now. A prepared statement's generic plan is made from
    /// the statistics of the moment and stays: one made while a table was small joins a batch's
    /// keys to it by scanning it whole once it is large (9.4 s for 600 batches of one
    /// 200,000-row transaction). The insert joins nothing: it is prepared once, since parsing and
    /// planning it at each run cost the target about twice the CPU on one-row transactions.
    async fn run_arrays(&mut self, sql: &ArraySql) -> Result<Vec<Row>, tokio_postgres::Error> {
        if !sql.joins_table {
            // No join to the table whose plan could go stale: prepared once, parsed once.
            let stmt = self.prepared(&sql.text).await?;
            let params: Vec<&(dyn ToSql + Sync)> = sql
                .columns
                .iter()
                .map(|p| p as &(dyn ToSql + Sync))
                .collect();
            return self.client.query(&stmt, &params).await;
        }
        let params: Vec<(&(dyn ToSql + Sync), Type)> = sql
            .columns
            .iter()
            .map(|p| (p as &(dyn ToSql + Sync), Type::TEXT_ARRAY))
            .collect();
        self.client.query_typed(&sql.text, &params).await
    }

    async fn run(&mut self, sql: &Sql) -> Result<u64, tokio_postgres::Error> {
        let stmt = self.prepared(&sql.text).await?;
        let params: Vec<&(dyn ToSql + Sync)> = sql
            .params
            .iter()
            .map(|p| p as &(dyn ToSql + Sync))
            .collect();
        self.client.execute(&stmt, &params).await
    }

    /// Runs a checked batch statement that returns the indexes of the rows it applied, inside a
    /// savepoint: after a definite error nothing changed and the caller goes row by row (`None`).
    /// The savepoint, the statement and the release go out together (one round trip): a failed
    /// statement fails the release too, and the rollback to the savepoint then undoes it.
    async fn run_checked(
        &mut self,
        t: &TableInfo,
        sql: &ArraySql,
        rows: usize,
    ) -> Result<Option<Vec<bool>>, ApplyError> {
        let params: Vec<(&(dyn ToSql + Sync), Type)> = sql
            .columns
            .iter()
            .map(|p| (p as &(dyn ToSql + Sync), Type::TEXT_ARRAY))
            .collect();
        let client = &self.client;
        let (savepoint, result, released) = tokio::join!(
            client.batch_execute("SAVEPOINT tandem_batch"),
            client.query_typed(&sql.text, &params),
            client.batch_execute("RELEASE SAVEPOINT tandem_batch"),
        );
        savepoint.map_err(|e| self.db_err("a session statement", e))?;
        match result {
            Ok(found) => {
                released.map_err(|e| self.db_err("a session statement", e))?;
                let mut applied = vec![false; rows];
                for r in &found {
                    if let Some(slot) = text(r, 0)
                        .and_then(|i| i.parse::<usize>().ok())
                        .and_then(|i| applied.get_mut(i))
                    {
                        *slot = true;
                    }
                }
                Ok(Some(applied))
            }
            Err(e) => {
                let e = self.row_err(t, &[], &[], e);
                if e.is_transient() {
                    return Err(e);
                }
                tracing::debug!(table = %t.table, error = %e, "batch not applied together; row by row");
                self.simple("ROLLBACK TO SAVEPOINT tandem_batch").await?;
                Ok(None)
            }
        }
    }

    /// A row statement's error, with table, key and column.
    /// The error of a batched insert: one row names its key; of several, none names the failing
    /// row (the caller goes row by row).
    fn batch_err(&self, info: &TableInfo, rows: &[Write], e: tokio_postgres::Error) -> ApplyError {
        let fields: Vec<Field> = rows.iter().flat_map(|w| w.set.iter().cloned()).collect();
        let key = match rows {
            [one] => one.key.as_slice(),
            _ => &[],
        };
        self.row_err(info, &fields, key, e)
    }

    fn row_err(
        &self,
        info: &TableInfo,
        fields: &[Field],
        key: &[Field],
        e: tokio_postgres::Error,
    ) -> ApplyError {
        let source = DriverError::Postgres(e);
        let code = source.code();
        if classify(&code) == ErrorClass::Transient {
            return ApplyError::Database {
                node: self.node.clone(),
                what: format!("writing to {}", info.table),
                code,
                source,
            };
        }
        let state = match &code {
            DbCode::SqlState(s) => s.clone(),
            _ => String::new(),
        };
        let typed = || {
            fields.iter().filter_map(|f| {
                info.column(&f.name)
                    .map(|c| (&*f.name, &f.value, c.type_name.as_str()))
            })
        };
        let texts = || {
            fields.iter().map(|f| {
                let col = sql::column_info(info, &f.name);
                (
                    &*f.name,
                    sql::value_text(&col, &f.value, self.source_offset_secs),
                )
            })
        };
        let column = source
            .column()
            .or_else(|| types::suspect_column(typed(), &state))
            .or_else(|| types::column_of_named_type(typed(), &source.to_string()))
            .or_else(|| types::column_of_literal(texts(), &source.to_string()));
        ApplyError::Row {
            table: String::new(),
            key: crate::conflict::audit::key_json(key),
            column,
            message: format!(
                "{} on {}",
                super::error::scrub_values_keeping(&source.to_string(), &info.names()),
                info.table
            ),
            fix: fix_for(&code).to_string(),
            class: ErrorClass::Definite,
            code,
        }
    }
}

fn text(row: &Row, i: usize) -> Option<String> {
    row.try_get::<_, Option<String>>(i).ok().flatten()
}

impl Target for PgTarget {
    async fn begin(&mut self) -> Result<(), ApplyError> {
        self.revives.begin();
        self.simple("BEGIN").await
    }

    async fn commit(&mut self) -> Result<(), ApplyError> {
        self.simple("COMMIT").await
    }

    async fn rollback(&mut self) -> Result<(), ApplyError> {
        self.simple("ROLLBACK").await?;
        match self.revives.take_due() {
            Some((table, _)) => self.make_revive(&table).await,
            None => Ok(()),
        }
    }

    fn revive_made(&mut self) -> bool {
        self.revives.take_made()
    }

    async fn check_revive(&mut self, table: &TableRef, key: &[String]) -> Result<(), ApplyError> {
        self.check_revive_trigger(table, key).await
    }

    async fn set_applying(&mut self, on: bool) -> Result<(), ApplyError> {
        if on {
            self.simple("SET tandem.applying = 'on'").await?;
            self.replica_role(true).await?;
            if let Some(name) = self.origin_name.clone() {
                let setup = self
                    .client
                    .batch_execute(&format!(
                        "SELECT pg_replication_origin_create({n}) WHERE NOT EXISTS \
                         (SELECT 1 FROM pg_replication_origin WHERE roname = {n}); \
                         SELECT pg_replication_origin_session_setup({n})",
                        n = sql::literal(&name)
                    ))
                    .await;
                match setup {
                    Ok(()) => self.origin_active = true,
                    // The checkpoint row still marks every applied transaction.
                    Err(e) => {
                        warn!(node = %self.node, origin = %name, error = %e, "replication origin not set on the apply session")
                    }
                }
            }
        } else {
            self.simple("SET tandem.applying = 'off'").await?;
            self.replica_role(false).await?;
            if self.origin_active {
                self.simple("SELECT pg_replication_origin_session_reset()")
                    .await?;
                self.origin_active = false;
            }
        }
        Ok(())
    }

    async fn set_replicating(&mut self) -> Result<(), ApplyError> {
        self.simple("SET tandem.applying = 'on'").await?;
        self.replica_role(false).await?;
        if self.origin_active {
            self.simple("SELECT pg_replication_origin_session_reset()")
                .await?;
            self.origin_active = false;
        }
        Ok(())
    }

    fn forget_table(&mut self, table: Option<&TableRef>) {
        match table {
            Some(t) => {
                self.tables.remove(t);
                self.copy_fits.remove(t);
            }
            None => {
                self.tables.clear();
                self.copy_fits.clear();
            }
        }
    }

    async fn table(&mut self, table: &TableRef) -> Result<Arc<TableInfo>, ApplyError> {
        if let Some(t) = self.tables.get(table) {
            return Ok(t.clone());
        }
        let read = crate::catalog::postgres::read_table(&self.client, table).await;
        let Some(schema) = read.map_err(|e| self.db_err("reading the catalog", e))? else {
            return Err(ApplyError::Row {
                table: String::new(),
                key: String::new(),
                column: None,
                message: format!("table {table} does not exist on node {}", self.node),
                code: DbCode::SqlState("42P01".into()),
                fix: fix_for(&DbCode::SqlState("42P01".into())).into(),
                class: ErrorClass::Definite,
            });
        };
        let columns = schema
            .columns
            .into_iter()
            .map(|c| ColumnInfo {
                kind: types::kind_of(&c.base),
                name: c.name,
                type_name: c.declared,
                base_type: c.base,
                identity_always: c.identity_always,
                array_delim: c.array_delim,
            })
            .collect();
        let info = Arc::new(TableInfo {
            table: table.clone(),
            columns,
        });
        self.tables.insert(table.clone(), info.clone());
        Ok(info)
    }

    async fn insert(&mut self, t: &TableInfo, w: &Write) -> Result<bool, ApplyError> {
        let sql = Builder::new(t, self.source_offset_secs).insert(w, Taken::Skip);
        let n = match self.run(&sql).await {
            Ok(n) => n,
            Err(e) => return Err(self.row_err(t, &w.set, &w.key, e)),
        };
        if n > 0 {
            return Ok(true);
        }
        let exists = Builder::new(t, self.source_offset_secs).exists(&w.key);
        match self.run_rows(&exists).await {
            Ok(rows) if !rows.is_empty() => Ok(false),
            Ok(_) => {
                // A unique constraint other than the key: let the server say which.
                let strict = Builder::new(t, self.source_offset_secs).insert(w, Taken::Fail);
                match self.run(&strict).await {
                    Ok(_) => Ok(true),
                    Err(e) => Err(self.row_err(t, &w.set, &w.key, e)),
                }
            }
            Err(e) => Err(self.row_err(t, &w.set, &w.key, e)),
        }
    }

    async fn existing(
        &mut self,
        t: &TableInfo,
        keys: &[Vec<Field>],
    ) -> Result<Vec<bool>, ApplyError> {
        let sql = Builder::new(t, self.source_offset_secs).existing(keys);
        let rows = match self.run_arrays(&sql).await {
            Ok(r) => r,
            Err(e) => return Err(self.row_err(t, &[], &[], e)),
        };
        let mut found = vec![false; keys.len()];
        for r in &rows {
            if let Some(i) = text(r, 0).and_then(|i| i.parse::<usize>().ok()) {
                if let Some(slot) = found.get_mut(i) {
                    *slot = true;
                }
            }
        }
        Ok(found)
    }

    /// A plain `COPY` of all the rows into the table (or, where the server refuses a `COPY`
    /// into it, a plain `INSERT`): keys already taken are rare (a key inserted on both nodes at
    /// once, which the row path then records as a conflict), and the speculative insertion of
    /// `ON CONFLICT` costs the server about as much again per row. A key taken fails the
    /// statement and so the target transaction (no savepoint: hundreds of subtransactions in one
    /// transaction slow every snapshot on the server); the error says the group is to be applied
    /// again, and the table then inserts with `ON CONFLICT DO NOTHING`, joined back to the rows
    /// by key, for a while.
    async fn insert_new(
        &mut self,
        t: &TableInfo,
        rows: &[Write],
    ) -> Result<Option<Vec<bool>>, ApplyError> {
        let checked = self
            .checked_inserts
            .get(&t.table)
            .is_some_and(|since| since.elapsed() < CHECKED_INSERTS_FOR);
        if !checked {
            let result = self.insert_plain(t, rows).await?;
            return match result {
                Ok(_) => Ok(Some(vec![true; rows.len()])),
                Err(e) if matches!(e.code(), Some(c) if *c == SqlState::UNIQUE_VIOLATION || *c == SqlState::EXCLUSION_VIOLATION) =>
                {
                    self.checked_inserts.insert(t.table.clone(), Instant::now());
                    Err(ApplyError::Raced(format!(
                        "table {}: a batch of inserts found a key taken; applying the transaction \
                         again with checked inserts",
                        t.table
                    )))
                }
                Err(e) => Err(self.batch_err(t, rows, e)),
            };
        }
        let Some(sql) = Builder::new(t, self.source_offset_secs).insert_new(rows) else {
            return Ok(None);
        };
        let found = match self.run_arrays(&sql).await {
            Ok(found) => found,
            Err(e) => return Err(self.batch_err(t, rows, e)),
        };
        let mut inserted = vec![false; rows.len()];
        for r in &found {
            if let Some(slot) = text(r, 0)
                .and_then(|i| i.parse::<usize>().ok())
                .and_then(|i| inserted.get_mut(i))
            {
                *slot = true;
            }
        }
        Ok(Some(inserted))
    }

    async fn update(
        &mut self,
        t: &TableInfo,
        w: &Write,
        version: &str,
        check: Option<&Value>,
    ) -> Result<u64, ApplyError> {
        let sql = Builder::new(t, self.source_offset_secs).update(w, version, check);
        match self.run(&sql).await {
            Ok(n) => Ok(n),
            Err(e) => Err(self.row_err(t, &w.set, &w.key, e)),
        }
    }

    async fn delete(
        &mut self,
        t: &TableInfo,
        key: &[Field],
        version: &str,
        check: Option<&Value>,
    ) -> Result<u64, ApplyError> {
        let sql = Builder::new(t, self.source_offset_secs).delete(key, version, check);
        match self.run(&sql).await {
            Ok(n) => Ok(n),
            Err(e) => Err(self.row_err(t, &[], key, e)),
        }
    }

    async fn truncate(&mut self, t: &TableInfo) -> Result<Option<u64>, ApplyError> {
        // pgoutput carries this TRUNCATE in the same transaction as the checkpoint write, under the
        // session's replication origin: the reader of this node drops it as tandem's.
        let text = format!("TRUNCATE TABLE {}", qname(&t.table));
        match self.client.batch_execute(&text).await {
            Ok(()) => Ok(None),
            Err(e) => Err(self.row_err(t, &[], &[], e)),
        }
    }

    async fn update_many(
        &mut self,
        t: &TableInfo,
        rows: &[Checked],
        version: &str,
    ) -> Result<Option<Vec<bool>>, ApplyError> {
        let sql = Builder::new(t, self.source_offset_secs).update_many(rows, version);
        self.run_checked(t, &sql, rows.len()).await
    }

    async fn delete_many(
        &mut self,
        t: &TableInfo,
        rows: &[Checked],
        version: &str,
    ) -> Result<Option<Vec<bool>>, ApplyError> {
        let sql = Builder::new(t, self.source_offset_secs).delete_many(rows, version);
        self.run_checked(t, &sql, rows.len()).await
    }

    async fn current(
        &mut self,
        t: &TableInfo,
        probe: &Probe,
    ) -> Result<Option<Current>, ApplyError> {
        let sql = Builder::new(t, self.source_offset_secs).current(probe);
        let rows = match self.run_rows(&sql).await {
            Ok(r) => r,
            Err(e) => return Err(self.row_err(t, &probe.after, &probe.key, e)),
        };
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        let same: Vec<bool> = r
            .try_get::<_, Vec<Option<bool>>>(2)
            .unwrap_or_default()
            .into_iter()
            .map(|b| b.unwrap_or(false))
            .collect();
        let (before, after) = same.split_at(probe.before.len().min(same.len()));
        Ok(Some(Current {
            version_key: text(r, 0).and_then(|v| v.parse().ok()),
            origin: text(r, 1),
            same_as_before: before.to_vec(),
            same_as_after: after.to_vec(),
            image: text(r, 3)
                .and_then(|j| serde_json::from_str(&j).ok())
                .unwrap_or(serde_json::Value::Null),
        }))
    }
}
