//! Batches of new rows as one `COPY … FROM STDIN` (text format), where a `COPY` does what an
//! `INSERT` does; elsewhere, and after the server refused one, `INSERT … SELECT … FROM unnest(…)`.
//!
//! A `COPY` the server refuses before it starts leaves tokio-postgres one response out of step
//! with the server, so that refusal ends the session (see [`PgTarget::run_copy`]).

use std::collections::HashSet;

use tracing::warn;

use super::sql::{qname, Builder, CopySql};
use super::PgTarget;
use crate::apply::error::{classify, ApplyError, DbCode, ErrorClass};
use crate::apply::target::{TableInfo, Write};
use crate::model::TableRef;

/// The tables, by target (`url_key`) and name, whose server refused a `COPY` into them at its
/// start (row-level security, a foreign table whose wrapper cannot, a privilege on some columns
/// only): their batches insert with `INSERT … SELECT`. Kept for the process, since the refusal
/// ends the session and the link connects again.
static COPY_REFUSED: std::sync::LazyLock<std::sync::Mutex<HashSet<(String, TableRef)>>> =
    std::sync::LazyLock::new(Default::default);

/// The URL without its password (it names a target in [`COPY_REFUSED`]; the role matters: row-level
/// security applies to some roles and not to others).
pub(super) fn without_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => url.to_string(),
    }
}

fn copy_refused(url_key: &str, table: &TableRef) -> bool {
    COPY_REFUSED
        .lock()
        .map(|set| set.contains(&(url_key.to_string(), table.clone())))
        .unwrap_or(true)
}

/// How a `COPY` failed.
enum CopyFailed {
    /// Before it started: the session is ended (see [`PgTarget::run_copy`]); whether the table
    /// was marked to insert without `COPY` from then on.
    AtStart(tokio_postgres::Error, bool),
    /// While it ran, or preparing it: the session is as after any failed statement.
    Statement(tokio_postgres::Error),
}

/// An error before a `COPY` started that says it cannot go into the table (where the `INSERT`
/// path then gives the error, if it has one, classified as always): not supported there
/// (row-level security), not a table, a privilege missing, a generated column. Not a transient
/// error, and not a table or column gone (the schema gate reads the catalog again).
fn refuses_copy(e: &tokio_postgres::Error) -> bool {
    let Some(code) = e.code() else {
        return false;
    };
    let code = DbCode::SqlState(code.code().to_string());
    let drift = matches!(&code, DbCode::SqlState(s) if s == "42703" || s == "42P01");
    classify(&code) == ErrorClass::Definite && !drift
}

impl PgTarget {
    /// Inserts the rows with a `COPY` or, where it does not fit, an `INSERT`: the server's answer
    /// (the rows written, or its error, which the caller classifies). A `COPY` refused at its
    /// start is a retry (`Raced`) on a new session, which inserts that table with `INSERT`.
    pub(super) async fn insert_plain(
        &mut self,
        t: &TableInfo,
        rows: &[Write],
    ) -> Result<Result<u64, tokio_postgres::Error>, ApplyError> {
        let builder = Builder::new(t, self.source_offset_secs);
        if !self.copy_fits(t).await? {
            return Ok(self
                .run_arrays(&builder.insert_plain(rows))
                .await
                .map(|_| 0));
        }
        match self.run_copy(&t.table, builder.copy_plain(rows)).await {
            Ok(n) => Ok(Ok(n)),
            Err(CopyFailed::Statement(e)) => Ok(Err(e)),
            Err(CopyFailed::AtStart(e, true)) => {
                warn!(node = %self.node, table = %t.table, error = %e, "the server refused a COPY into the table; its batches insert with INSERT from now on (the session is closed and opened again)");
                Err(ApplyError::Raced(format!(
                    "table {}: the server refused a COPY into it; applying the transaction \
                     again with INSERT on a new session",
                    t.table
                )))
            }
            // Classified as any statement's error; the session is closed, so whatever
            // is tried next connects again first.
            Err(CopyFailed::AtStart(e, false)) => Ok(Err(e)),
        }
    }

    /// Runs a `COPY … FROM STDIN` (prepared once per text) with its data in one message. A
    /// `COPY` the server refuses before it starts (before any data) leaves tokio-postgres one
    /// response out of step with the server: it sent a `Sync` with the statement and another with
    /// the `CopyFail` it sends when the copy is dropped, so the next statement would be handed the
    /// answer of the one before. The session is ended then (its transaction rolls back on the
    /// server, and every later statement on it fails as on a lost connection); the link connects
    /// again, and the table is marked to insert without `COPY`.
    async fn run_copy(&mut self, table: &TableRef, sql: CopySql) -> Result<u64, CopyFailed> {
        use futures_util::SinkExt;
        let stmt = self
            .prepared(&sql.text)
            .await
            .map_err(CopyFailed::Statement)?;
        let sink = match self.client.copy_in::<_, bytes::Bytes>(&stmt).await {
            Ok(sink) => sink,
            Err(e) => {
                self.connection.abort();
                let refused = refuses_copy(&e);
                if refused {
                    if let Ok(mut set) = COPY_REFUSED.lock() {
                        set.insert((self.url_key.clone(), table.clone()));
                    }
                }
                return Err(CopyFailed::AtStart(e, refused));
            }
        };
        futures_util::pin_mut!(sink);
        sink.send(bytes::Bytes::from(sql.data))
            .await
            .map_err(CopyFailed::Statement)?;
        sink.finish().await.map_err(CopyFailed::Statement)
    }

    /// Whether a `COPY` into the table does what an `INSERT` does, for the session's role: a table
    /// (or a partitioned one) with no rules (`COPY` does not apply them), without row-level
    /// security for the role (`COPY` is refused then), that the role may insert into. Read once
    /// per table and session.
    async fn copy_fits(&mut self, t: &TableInfo) -> Result<bool, ApplyError> {
        if copy_refused(&self.url_key, &t.table) {
            return Ok(false);
        }
        if let Some(fits) = self.copy_fits.get(&t.table) {
            return Ok(*fits);
        }
        let row = self
            .client
            .query_opt(
                "SELECT c.relkind IN ('r', 'p') AND NOT c.relhasrules \
                 AND NOT row_security_active(c.oid) \
                 AND has_table_privilege(c.oid, 'INSERT') \
                 FROM pg_class c WHERE c.oid = to_regclass($1)",
                &[&qname(&t.table)],
            )
            .await
            .map_err(|e| self.db_err("reading the catalog", e))?;
        let fits = row
            .and_then(|r| r.try_get::<_, bool>(0).ok())
            .unwrap_or(false);
        self.copy_fits.insert(t.table.clone(), fits);
        Ok(fits)
    }
}
