//! The bookkeeping session of the PostgreSQL target: how `apply::book`'s queries (written once over
//! the dialect) run on this engine's driver, with text parameters and text results.

use std::future::Future;
use std::task::Poll;

use tokio_postgres::types::ToSql;

use super::{text, PgTarget};
use crate::apply::book::{BookSession, TextRow};
use crate::apply::dialect::Dialect;
use crate::apply::error::ApplyError;

impl BookSession for PgTarget {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn book_schema(&self) -> &str {
        &self.schema
    }

    async fn book_query(
        &mut self,
        sql: &str,
        params: Vec<Option<String>>,
        varying: bool,
    ) -> Result<Vec<TextRow>, ApplyError> {
        let refs: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let r = if varying {
            self.client.query(sql, &refs).await
        } else {
            match self.prepared(sql).await {
                Ok(stmt) => self.client.query(&stmt, &refs).await,
                Err(e) => Err(e),
            }
        };
        let rows = r.map_err(|e| self.db_err("a bookkeeping statement", e))?;
        Ok(rows
            .iter()
            .map(|r| (0..r.len()).map(|i| text(r, i)).collect())
            .collect())
    }

    async fn book_execute(
        &mut self,
        sql: &str,
        params: Vec<Option<String>>,
        varying: bool,
    ) -> Result<u64, ApplyError> {
        let refs: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let r = if varying {
            self.client.execute(sql, &refs).await
        } else {
            match self.prepared(sql).await {
                Ok(stmt) => self.client.execute(&stmt, &refs).await,
                Err(e) => Err(e),
            }
        };
        r.map_err(|e| self.db_err("a bookkeeping statement", e))
    }

    async fn book_execute_and_commit(
        &mut self,
        sql: &str,
        params: Vec<Option<String>>,
    ) -> Result<u64, ApplyError> {
        let refs: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        // Prepared first: `execute` with a text would wait for the prepare's round trip, and the
        // COMMIT would go out before the statement.
        let stmt = match self.prepared(sql).await {
            Ok(stmt) => stmt,
            Err(e) => return Err(self.db_err("a bookkeeping statement", e)),
        };
        // tokio-postgres sends a request when its future is first polled, in the order of first
        // polls (its documented pipelining). A statement that ends on its first poll was never
        // sent (its parameters did not encode, or the session is gone): no COMMIT goes then.
        let mut statement = std::pin::pin!(self.client.execute(&stmt, &refs));
        let first = std::future::poll_fn(|cx| Poll::Ready(statement.as_mut().poll(cx))).await;
        if let Poll::Ready(done) = first {
            let rows = done.map_err(|e| self.db_err("a bookkeeping statement", e))?;
            let commit = self.client.batch_execute("COMMIT").await;
            commit.map_err(|e| self.db_err("COMMIT", e))?;
            return Ok(rows);
        }
        // A statement the server refuses leaves the transaction aborted: the COMMIT behind it then
        // ends it as a rollback (the server answers ROLLBACK, no error), so the statement's error
        // is the one to report.
        let (done, commit) =
            futures_util::future::join(statement, self.client.batch_execute("COMMIT")).await;
        let rows = done.map_err(|e| self.db_err("a bookkeeping statement", e))?;
        commit.map_err(|e| self.db_err("COMMIT", e))?;
        Ok(rows)
    }

    async fn book_insert(
        &mut self,
        sql: &str,
        params: Vec<Option<String>>,
    ) -> Result<i64, ApplyError> {
        let rows = self
            .book_query(&format!("{sql} RETURNING id::text"), params, false)
            .await?;
        Ok(rows
            .first()
            .and_then(|r| r.first().cloned().flatten())
            .and_then(|t| t.parse().ok())
            .unwrap_or(0))
    }
}
