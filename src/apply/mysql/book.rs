//! The bookkeeping session of the MySQL/MariaDB target: how `apply::book`'s queries (written once over
//! the dialect) run on this engine's driver, with text parameters and text results.

use super::sql::Sql;
use super::{opt, text, MyTarget};
use crate::apply::book::{BookSession, TextRow};
use crate::apply::dialect::Dialect;
use crate::apply::error::ApplyError;
use crate::apply::target::Target;

impl BookSession for MyTarget {
    fn dialect(&self) -> Dialect {
        Dialect::Mysql
    }

    fn book_schema(&self) -> &str {
        &self.schema
    }

    async fn book_query(
        &mut self,
        sql: &str,
        params: Vec<Option<String>>,
        _varying: bool,
    ) -> Result<Vec<TextRow>, ApplyError> {
        let sql = Sql {
            text: sql.to_string(),
            params: params.into_iter().map(opt).collect(),
        };
        let r = self.rows(sql).await;
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
        _varying: bool,
    ) -> Result<u64, ApplyError> {
        let sql = Sql {
            text: sql.to_string(),
            params: params.into_iter().map(opt).collect(),
        };
        let r = self.run(sql).await;
        r.map_err(|e| self.db_err("a bookkeeping statement", e))
    }

    async fn book_execute_and_commit(
        &mut self,
        sql: &str,
        params: Vec<Option<String>>,
    ) -> Result<u64, ApplyError> {
        let rows = self.book_execute(sql, params, false).await?;
        Target::commit(self).await?;
        Ok(rows)
    }

    async fn book_insert(
        &mut self,
        sql: &str,
        params: Vec<Option<String>>,
    ) -> Result<i64, ApplyError> {
        self.book_execute(sql, params, false).await?;
        Ok(self.last_id().await)
    }
}
