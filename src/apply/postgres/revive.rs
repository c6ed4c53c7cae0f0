//! The applier's side of a PostgreSQL table's revive trigger (see `apply/revive.rs` for the
//! state both engines keep, and `setup::create_revive` for the trigger): looked up in `pg_trigger`
//! before a transaction writes a table's first tombstone, made between transactions when missing.

use super::sql::qname;
use super::{setup, PgTarget};
use crate::apply::error::ApplyError;
use crate::model::TableRef;

impl PgTarget {
    /// `Target::check_revive`: `Ok` when `table`'s revive trigger is there (looked up once per
    /// table and transaction), else the error that rolls the transaction back so that the
    /// rollback makes it (or, after a refusal, the definite error naming the grant).
    pub(super) async fn check_revive_trigger(
        &mut self,
        table: &TableRef,
        key: &[String],
    ) -> Result<(), ApplyError> {
        if self.revives.seen(table) {
            return Ok(());
        }
        let found = match self
            .prepared(
                "SELECT 1 FROM pg_trigger WHERE tgrelid = $1::text::regclass \
                 AND tgname = 'tandem_revive'",
            )
            .await
        {
            Ok(s) => self.client.query_opt(&s, &[&qname(table)]).await,
            Err(e) => Err(e),
        };
        if found
            .map_err(|e| self.db_err("looking for a revive trigger", e))?
            .is_some()
        {
            self.revives.found(table);
            return Ok(());
        }
        Err(self.revives.missing(
            &self.node,
            table,
            "tandem_revive",
            key,
            "the TRIGGER privilege on the table (as `tandem setup` needs)",
        ))
    }

    /// Makes the revive trigger of `table` between transactions, in a transaction of its own
    /// (`setup::make_revive`): it waits for the table's lock a second longer than
    /// `deadlock_timeout`, during which the table's new writes queue behind it. A refusal that
    /// retrying cannot fix (no TRIGGER privilege) is kept, and the next check returns it as a
    /// definite error (`apply/revive.rs`).
    pub(super) async fn make_revive(&mut self, table: &TableRef) -> Result<(), ApplyError> {
        let made = self
            .client
            .batch_execute(&setup::make_revive(&self.schema, table))
            .await;
        let Err(e) = made else {
            return self.revives.made(&self.node, table, Ok(()));
        };
        let e = self.db_err("making a revive trigger", e);
        let definite = !e.is_transient();
        let rolled_back = self.simple("ROLLBACK").await;
        let kept = self.revives.made(&self.node, table, Err((e, definite)));
        rolled_back?;
        kept
    }
}
