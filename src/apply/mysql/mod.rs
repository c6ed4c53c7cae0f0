//! The MySQL/MariaDB target: one session per link, marked as tandem's by `@tandem_applying = 1` (the
//! stamping triggers leave its writes alone) and by `skip_replication = 1` (so the MySQL capture sees
//! `marks.skip_replication`). The session runs in strict SQL mode, so a value the column cannot hold
//! is an error naming the column rather than a silent truncation, and in UTC.
//!
//! The session reads at READ COMMITTED, as the PostgreSQL applier does: every plain read (the
//! tombstones of a key, whether a key exists) sees what committed before it, not a snapshot taken at
//! the transaction's first read. Under REPEATABLE READ a local delete or insert that committed while
//! an apply transaction was under way was invisible to those reads though the writes saw it, and
//! the conflict was decided against stale facts (a deleted row brought back, an insert dead-lettered).
//!
//! Error handling: every driver error becomes an [`ApplyError`] classified by error number; a row
//! error names the table, key and the column the server named.

mod book;
pub mod setup;
pub mod sql;
pub mod types;

use std::collections::HashMap;
use std::sync::Arc;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Params, Row, Value as My};
use tracing::warn;

use super::book::BookSession;
use super::error::{classify, fix_for, ApplyError, DbCode, DriverError, ErrorClass};
use super::statement::{RowStatements, Taken};
use super::target::{Checked, ColKind, ColumnInfo, Current, Probe, TableInfo, Target, Write};
use crate::apply::batch::MAX_RUN_BYTES;
use crate::apply::revive::Revives;
use crate::model::{Field, TableRef, Value};
use sql::{qname, Builder, Relax, Sql};

/// ER_NET_PACKET_TOO_LARGE: a statement over the server's `max_allowed_packet`.
pub(crate) const PACKET_TOO_LARGE: u16 = 1153;

/// The largest packet payload of the protocol; mysql_async sends parameters that would make a
/// larger `COM_STMT_EXECUTE` as long data instead.
const MAX_PAYLOAD: usize = (1 << 24) - 1;

const ISOLATION: &str = "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED";

/// The session's settings. The sql_mode is strict, so that a value the column cannot hold fails
/// instead of being changed. Values from a MySQL/MariaDB source (`from_mysql`) may hold the zero and
/// partly-zero dates that source's sql_mode admitted (`'0000-00-00'`, `'2013-00-00 00:00:00'`): such
/// a session leaves out NO_ZERO_DATE and NO_ZERO_IN_DATE so that those dates are carried as they are.
fn session(from_mysql: bool) -> String {
    let zero = if from_mysql {
        ""
    } else {
        "NO_ZERO_IN_DATE,NO_ZERO_DATE,"
    };
    format!(
        "SET SESSION time_zone = '+00:00', \
         SESSION sql_mode = 'STRICT_ALL_TABLES,{zero}ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION,NO_BACKSLASH_ESCAPES'"
    )
}

pub struct MyTarget {
    conn: Conn,
    node: String,
    schema: String,
    offset: i32,
    tables: HashMap<TableRef, Arc<TableInfo>>,
    /// How a statement may write an ENUM's empty error value (`''`, index 0) that a MySQL/MariaDB
    /// source holds, by relaxing its own sql_mode (see `sql::Relax`).
    empty_enum: Relax,
    /// The tables' revive triggers: seen, due, failed (see [`MyTarget::check_revive`]).
    revives: Revives,
    /// Whether the session serves a MySQL/MariaDB source (its sql_mode, see [`session`]).
    from_mysql: bool,
    /// The session's `max_allowed_packet`: the server refuses a larger statement and closes the
    /// connection, so tandem does not send one (see [`MyTarget::fits`]).
    max_packet: usize,
}

fn s(v: impl Into<String>) -> My {
    My::Bytes(v.into().into_bytes())
}

fn opt(v: Option<impl Into<String>>) -> My {
    v.map_or(My::NULL, s)
}

fn text(row: &Row, i: usize) -> Option<String> {
    row.get_opt::<Option<String>, usize>(i)
        .and_then(Result::ok)
        .flatten()
}

impl MyTarget {
    pub async fn connect(
        url: &str,
        node: &str,
        schema: &str,
        offset: i32,
        from_mysql: bool,
    ) -> Result<MyTarget, ApplyError> {
        let failed = |cause| ApplyError::Connect {
            node: node.to_string(),
            cause,
        };
        let opts = OptsBuilder::from_opts(crate::connect::mysql_opts(url).map_err(failed)?)
            .client_found_rows(true)
            .stmt_cache_size(256);
        let conn = crate::connect::mysql(opts.into()).await.map_err(failed)?;
        let mut t = MyTarget {
            conn,
            node: node.to_string(),
            schema: schema.to_string(),
            offset,
            tables: HashMap::new(),
            empty_enum: Relax::No,
            revives: Revives::default(),
            from_mysql,
            max_packet: usize::MAX,
        };
        t.simple(&session(from_mysql)).await?;
        let max_packet: Option<u64> = t
            .conn
            .query_first("SELECT @@max_allowed_packet")
            .await
            .map_err(|e| t.db_err("reading max_allowed_packet", e))?;
        t.max_packet = max_packet
            .and_then(|m| usize::try_from(m).ok())
            .unwrap_or(usize::MAX);
        if from_mysql {
            let version: Option<String> = t
                .conn
                .query_first("SELECT VERSION()")
                .await
                .map_err(|e| t.db_err("reading the server version", e))?;
            t.empty_enum = version.as_deref().map_or(Relax::No, Relax::for_server);
        }
        t.simple(ISOLATION).await?;
        Ok(t)
    }

    fn builder<'a>(&self, t: &'a TableInfo) -> Builder<'a> {
        Builder::new(t, self.offset).admit_empty_enum(self.empty_enum)
    }

    fn db_err(&self, what: &str, e: mysql_async::Error) -> ApplyError {
        let source = DriverError::Mysql(e);
        ApplyError::Database {
            node: self.node.clone(),
            what: what.to_string(),
            code: source.code(),
            source,
        }
    }

    pub(crate) async fn simple(&mut self, text: &str) -> Result<(), ApplyError> {
        let r = self.conn.query_drop(text).await;
        r.map_err(|e| self.db_err("a session statement", e))
    }

    /// Makes the revive trigger of `table` (between transactions: a trigger is DDL, which commits),
    /// as setup makes it (its sql_mode, which the trigger keeps). It waits at most a second for
    /// the transactions open on the table, during which MariaDB holds the table's new statements
    /// back; a refusal that retrying cannot fix (a missing privilege; 1419: binary logging on,
    /// log_bin_trust_function_creators off, and no SUPER) is kept, and the next check returns it
    /// as a definite error (`apply/revive.rs`). Local inserts that open the table afterwards run
    /// the trigger; the transaction tried again then writes the tombstone.
    async fn make_revive(&mut self, table: &TableRef, key: &[String]) -> Result<(), ApplyError> {
        let create = setup::revive_trigger(&self.schema, table, key);
        self.simple(&format!(
            "{}, SESSION lock_wait_timeout = 1",
            crate::apply::SETUP_SQL_MODE
        ))
        .await?;
        let made = self.conn.query_drop(&create).await;
        self.simple(&format!(
            "{}, SESSION lock_wait_timeout = DEFAULT",
            session(self.from_mysql)
        ))
        .await?;
        let outcome = made.map_err(|e| {
            let e = self.db_err("making a revive trigger", e);
            let definite = e.code() == DbCode::Mysql(1419) || !e.is_transient();
            (e, definite)
        });
        self.revives.made(&self.node, table, outcome)
    }

    /// Refuses, without sending it, a statement the server would refuse for its size: a packet
    /// over `max_allowed_packet` makes MariaDB answer error 1153 and close the connection, and the
    /// same statement would be sent again after every reconnect. The refusal carries that code,
    /// definite on a target (`apply::error::known_class`), whose fix names the setting. The
    /// estimate is generous: a prepared statement's text, or its parameters as `COM_STMT_EXECUTE`
    /// sends them (each value with the longest length prefix, two bytes of type, the header).
    /// Parameters whose `COM_STMT_EXECUTE` would pass 16 MiB go as long data, one packet per byte
    /// value (mysql_common's rule), and the server holds each value to the setting alone.
    fn fits(&self, sql: &Sql) -> Result<(), mysql_async::Error> {
        let value = |p: &My| match p {
            My::Bytes(b) => b.len() + 9,
            _ => 16,
        };
        let head = 64 + 2 * sql.params.len();
        let values: usize = sql.params.iter().map(value).sum();
        let size = if head + values <= MAX_PAYLOAD {
            head + values
        } else {
            let others: usize = sql
                .params
                .iter()
                .filter(|p| !matches!(p, My::Bytes(_)))
                .map(value)
                .sum();
            let largest = sql
                .params
                .iter()
                .filter(|p| matches!(p, My::Bytes(_)))
                .map(value)
                .max()
                .unwrap_or(0);
            (head + others).max(largest + 16)
        };
        let size = size.max(sql.text.len() + 64);
        if size <= self.max_packet {
            return Ok(());
        }
        Err(mysql_async::Error::Server(mysql_async::ServerError {
            code: PACKET_TOO_LARGE,
            state: "08S01".into(),
            message: format!(
                "tandem did not send a statement of about {size} bytes: max_allowed_packet \
                 on this target is {} bytes",
                self.max_packet
            ),
        }))
    }

    async fn run(&mut self, sql: Sql) -> Result<u64, mysql_async::Error> {
        self.fits(&sql)?;
        self.conn
            .exec_drop(sql.text, Params::Positional(sql.params))
            .await?;
        Ok(self.conn.affected_rows())
    }

    async fn rows(&mut self, sql: Sql) -> Result<Vec<Row>, mysql_async::Error> {
        self.fits(&sql)?;
        self.conn
            .exec(sql.text, Params::Positional(sql.params))
            .await
    }

    fn row_err(&self, info: &TableInfo, key: &[Field], e: mysql_async::Error) -> ApplyError {
        self.row_err_in(info, key, &[], e)
    }

    /// The error of a batched insert: one row names its key and values; of several, none names
    /// the failing row (the caller goes row by row).
    fn batch_err(&self, info: &TableInfo, rows: &[Write], e: mysql_async::Error) -> ApplyError {
        let fields = match rows {
            [one] => one.set.as_slice(),
            _ => &[],
        };
        self.row_err_in(info, single_key(rows), fields, e)
    }

    /// [`Self::row_err`] for a statement that wrote `fields`: an error whose message names no
    /// column (1416, bytes that are no geometry) names the one spatial column written with a
    /// value, where there is one.
    fn row_err_in(
        &self,
        info: &TableInfo,
        key: &[Field],
        fields: &[Field],
        e: mysql_async::Error,
    ) -> ApplyError {
        let spatial = |f: &&Field| {
            !f.value.is_null()
                && info
                    .column(&f.name)
                    .is_some_and(|c| c.kind == ColKind::Geometry)
        };
        let mut candidates = fields.iter().filter(spatial);
        let geometry_column = match (candidates.next(), candidates.next()) {
            (Some(only), None) => Some(only.name.to_string()),
            _ => None,
        };
        let source = DriverError::Mysql(e);
        let code = source.code();
        if classify(&code) == ErrorClass::Transient {
            return ApplyError::Database {
                node: self.node.clone(),
                what: format!("writing to {}", info.table),
                code,
                source,
            };
        }
        ApplyError::Row {
            table: String::new(),
            key: crate::conflict::audit::key_json(key),
            column: source.column().or_else(|| {
                (code == DbCode::Mysql(1416))
                    .then_some(geometry_column)
                    .flatten()
            }),
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

    /// Applies a checked batch: finds and locks the rows whose version matches, then runs the
    /// batch statement, inside a savepoint. `None`, with nothing changed, after a definite error or
    /// when the statement did not affect exactly the rows found.
    async fn run_checked(
        &mut self,
        t: &TableInfo,
        find: Sql,
        write: Sql,
        rows: usize,
    ) -> Result<Option<Vec<bool>>, ApplyError> {
        self.simple("SAVEPOINT tandem_batch").await?;
        let r = async {
            let found = self.rows(find).await?;
            let mut applied = vec![false; rows];
            for r in &found {
                if let Some(slot) = r
                    .get_opt::<Option<i64>, usize>(0)
                    .and_then(Result::ok)
                    .flatten()
                    .and_then(|i| usize::try_from(i).ok())
                    .and_then(|i| applied.get_mut(i))
                {
                    *slot = true;
                }
            }
            let expected = applied.iter().filter(|a| **a).count();
            let affected = if expected == 0 {
                0
            } else {
                self.run(write).await?
            };
            Ok::<_, mysql_async::Error>((applied, expected, affected))
        }
        .await;
        match r {
            Ok((applied, expected, affected)) if u64::try_from(expected) == Ok(affected) => {
                self.simple("RELEASE SAVEPOINT tandem_batch").await?;
                Ok(Some(applied))
            }
            Ok((_, expected, affected)) => {
                tracing::debug!(table = %t.table, expected, affected, "batch affected other rows than it found; row by row");
                self.simple("ROLLBACK TO SAVEPOINT tandem_batch").await?;
                Ok(None)
            }
            Err(e) => {
                let e = self.row_err(t, &[], e);
                if e.is_transient() {
                    return Err(e);
                }
                tracing::debug!(table = %t.table, error = %e, "batch not applied together; row by row");
                self.simple("ROLLBACK TO SAVEPOINT tandem_batch").await?;
                Ok(None)
            }
        }
    }

    async fn last_id(&mut self) -> i64 {
        self.conn
            .last_insert_id()
            .and_then(|i| i64::try_from(i).ok())
            .unwrap_or(0)
    }
}

impl Target for MyTarget {
    async fn begin(&mut self) -> Result<(), ApplyError> {
        self.revives.begin();
        self.simple("START TRANSACTION").await
    }

    async fn commit(&mut self) -> Result<(), ApplyError> {
        self.simple("COMMIT").await
    }

    async fn rollback(&mut self) -> Result<(), ApplyError> {
        self.simple("ROLLBACK").await?;
        match self.revives.take_due() {
            Some((table, key)) => self.make_revive(&table, &key).await,
            None => Ok(()),
        }
    }

    fn revive_made(&mut self) -> bool {
        self.revives.take_made()
    }

    async fn check_revive(&mut self, table: &TableRef, key: &[String]) -> Result<(), ApplyError> {
        if self.revives.seen(table) {
            return Ok(());
        }
        let name = crate::names::mysql_trigger("revive", table);
        let found = self
            .book_query(
                "SELECT 1 FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = ? \
                 AND EVENT_OBJECT_TABLE = ? AND TRIGGER_NAME = ?",
                vec![
                    Some(table.schema.to_string()),
                    Some(table.name.to_string()),
                    Some(name.clone()),
                ],
                false,
            )
            .await?;
        if !found.is_empty() {
            self.revives.found(table);
            return Ok(());
        }
        Err(self.revives.missing(
            &self.node,
            table,
            &name,
            key,
            "the TRIGGER privilege on the table (as `tandem setup` needs; with binary logging on \
             and log_bin_trust_function_creators off, also SUPER)",
        ))
    }

    /// Half the session's `max_allowed_packet` (at most [`MAX_RUN_BYTES`]): a batch's statement
    /// carries its rows' values and a little more, well under twice their captured size.
    fn batch_bytes(&self) -> usize {
        (self.max_packet / 2).clamp(1, MAX_RUN_BYTES)
    }

    async fn set_applying(&mut self, on: bool) -> Result<(), ApplyError> {
        let flag = u8::from(on);
        self.simple(&format!("SET @tandem_applying = {flag}"))
            .await?;
        if let Err(e) = self
            .conn
            .query_drop(format!("SET SESSION skip_replication = {flag}"))
            .await
        {
            // The checkpoint row still marks every applied transaction.
            warn!(node = %self.node, error = %e, "skip_replication not set on the apply session");
        }
        Ok(())
    }

    async fn set_replicating(&mut self) -> Result<(), ApplyError> {
        self.simple("SET @tandem_applying = 1").await?;
        self.simple("SET SESSION skip_replication = 0").await
    }

    fn forget_table(&mut self, table: Option<&TableRef>) {
        match table {
            Some(t) => {
                self.tables.remove(t);
            }
            None => self.tables.clear(),
        }
    }

    async fn table(&mut self, table: &TableRef) -> Result<Arc<TableInfo>, ApplyError> {
        if let Some(t) = self.tables.get(table) {
            return Ok(t.clone());
        }
        let read = crate::catalog::mysql::read_table(&mut self.conn, table).await;
        let Some(schema) = read.map_err(|e| self.db_err("reading the catalog", e))? else {
            return Err(ApplyError::Row {
                table: String::new(),
                key: String::new(),
                column: None,
                message: format!("table {table} does not exist on node {}", self.node),
                code: DbCode::Mysql(1146),
                fix: fix_for(&DbCode::Mysql(1146)).into(),
                class: ErrorClass::Definite,
            });
        };
        let columns = schema
            .columns
            .into_iter()
            .map(|c| ColumnInfo {
                kind: types::kind_of(&c.base, &c.declared.to_lowercase()),
                name: c.name,
                type_name: c.declared,
                base_type: c.base,
                identity_always: false,
                array_delim: ',',
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
        let sql = self.builder(t).insert(w, Taken::Fail);
        match self.run(sql).await {
            Ok(_) => Ok(true),
            Err(mysql_async::Error::Server(e)) if e.code == 1062 => {
                let exists = self.builder(t).exists(&w.key);
                match self.rows(exists).await {
                    Ok(rows) if !rows.is_empty() => Ok(false),
                    Ok(_) => Err(self.row_err(t, &w.key, mysql_async::Error::Server(e))),
                    Err(e) => Err(self.row_err(t, &w.key, e)),
                }
            }
            Err(e) => Err(self.row_err_in(t, &w.key, &w.set, e)),
        }
    }

    async fn existing(
        &mut self,
        t: &TableInfo,
        keys: &[Vec<Field>],
    ) -> Result<Vec<bool>, ApplyError> {
        let sql = self.builder(t).existing(keys);
        let rows = match self.rows(sql).await {
            Ok(r) => r,
            Err(e) => return Err(self.row_err(t, &[], e)),
        };
        let mut found = vec![false; keys.len()];
        for r in &rows {
            let i = r
                .get_opt::<Option<i64>, usize>(0)
                .and_then(Result::ok)
                .flatten();
            if let Some(slot) = i
                .and_then(|i| usize::try_from(i).ok())
                .and_then(|i| found.get_mut(i))
            {
                *slot = true;
            }
        }
        Ok(found)
    }

    /// A locking existence check, then one multi-row insert of the rows not found. (`INSERT
    /// IGNORE` would also turn errors about values into warnings.)
    async fn insert_new(
        &mut self,
        t: &TableInfo,
        rows: &[Write],
    ) -> Result<Option<Vec<bool>>, ApplyError> {
        // Usually no key exists: one statement, without a lookup first. A key taken fails the
        // statement whole (InnoDB rolls back the statement, the transaction goes on); then the
        // keys are looked up and only the new rows inserted.
        match self.run(self.builder(t).insert_many(rows)).await {
            Ok(_) => return Ok(Some(vec![true; rows.len()])),
            Err(mysql_async::Error::Server(e)) if e.code == 1062 => {}
            // Too large to send together (values that grow in the statement, as long bit strings
            // do): nothing was sent, and the rows go one by one.
            Err(mysql_async::Error::Server(e)) if e.code == PACKET_TOO_LARGE && rows.len() > 1 => {
                return Ok(None)
            }
            Err(e) => return Err(self.batch_err(t, rows, e)),
        }
        let keys: Vec<Vec<Field>> = rows.iter().map(|w| w.key.clone()).collect();
        let exists = self.existing(t, &keys).await?;
        let subset: Vec<Write>;
        let new: &[Write] = if exists.iter().any(|e| *e) {
            subset = rows
                .iter()
                .zip(&exists)
                .filter(|(_, e)| !**e)
                .map(|(w, _)| w.clone())
                .collect();
            &subset
        } else {
            rows
        };
        if new.is_empty() {
            return Ok(Some(vec![false; rows.len()]));
        }
        let sql = self.builder(t).insert_many(new);
        match self.run(sql).await {
            Ok(_) => Ok(Some(exists.into_iter().map(|e| !e).collect())),
            // A failed statement is rolled back whole; the transaction goes on. One too large was
            // not sent.
            Err(mysql_async::Error::Server(e)) if e.code == 1062 => Ok(None),
            Err(mysql_async::Error::Server(e)) if e.code == PACKET_TOO_LARGE && new.len() > 1 => {
                Ok(None)
            }
            Err(e) => Err(self.batch_err(t, new, e)),
        }
    }

    async fn update(
        &mut self,
        t: &TableInfo,
        w: &Write,
        version: &str,
        check: Option<&Value>,
    ) -> Result<u64, ApplyError> {
        let sql = self.builder(t).update(w, version, check);
        let r = self.run(sql).await;
        r.map_err(|e| self.row_err_in(t, &w.key, &w.set, e))
    }

    async fn delete(
        &mut self,
        t: &TableInfo,
        key: &[Field],
        version: &str,
        check: Option<&Value>,
    ) -> Result<u64, ApplyError> {
        let sql = self.builder(t).delete(key, version, check);
        let r = self.run(sql).await;
        r.map_err(|e| self.row_err(t, key, e))
    }

    async fn truncate(&mut self, t: &TableInfo) -> Result<Option<u64>, ApplyError> {
        // Not TRUNCATE: it would commit the open transaction (and the checkpoint with it) on its
        // own. The session's @tandem_applying keeps the delete triggers from writing tombstones.
        let text = format!("DELETE FROM {}", qname(&t.table));
        match self.conn.query_drop(text).await {
            Ok(()) => Ok(Some(self.conn.affected_rows())),
            Err(e) => Err(self.row_err(t, &[], e)),
        }
    }

    async fn update_many(
        &mut self,
        t: &TableInfo,
        rows: &[Checked],
        version: &str,
    ) -> Result<Option<Vec<bool>>, ApplyError> {
        let find = self.builder(t).checked_locked(rows, version);
        let write = self.builder(t).update_many(rows, version);
        self.run_checked(t, find, write, rows.len()).await
    }

    async fn delete_many(
        &mut self,
        t: &TableInfo,
        rows: &[Checked],
        version: &str,
    ) -> Result<Option<Vec<bool>>, ApplyError> {
        let find = self.builder(t).checked_locked(rows, version);
        let write = self.builder(t).delete_many(rows, version);
        self.run_checked(t, find, write, rows.len()).await
    }

    async fn current(
        &mut self,
        t: &TableInfo,
        probe: &Probe,
    ) -> Result<Option<Current>, ApplyError> {
        let sql = self.builder(t).current(probe);
        let rows = match self.rows(sql).await {
            Ok(r) => r,
            Err(e) => return Err(self.row_err(t, &probe.key, e)),
        };
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        let flag = |i: usize| {
            r.get_opt::<Option<i64>, usize>(i)
                .and_then(Result::ok)
                .flatten()
                .is_some_and(|v| v != 0)
        };
        let nb = probe.before.len();
        Ok(Some(Current {
            version_key: text(r, 0).and_then(|v| v.parse().ok()),
            origin: text(r, 1),
            same_as_before: (0..nb).map(|i| flag(3 + i)).collect(),
            same_as_after: (0..probe.after.len()).map(|i| flag(3 + nb + i)).collect(),
            image: text(r, 2)
                .and_then(|j| serde_json::from_str(&j).ok())
                .unwrap_or(serde_json::Value::Null),
        }))
    }
}

/// The key of a one-row write list, else none.
fn single_key(rows: &[Write]) -> &[Field] {
    match rows {
        [one] => &one.key,
        _ => &[],
    }
}
