//! Apply: source transactions become target transactions, exactly once, with per-row version checks.
//!
//! ```text
//!  [Transaction, …] ──> Applier::apply ──> BEGIN
//!                                          for each change: map ─> version-checked write
//!                                                                └─ conflict: lock row, resolve, audit
//!                                          upsert <schema>.checkpoint (source node, last position)
//!                                          COMMIT ──> returns the committed position
//! ```
//!
//! ## Contract
//!
//! - **Ordering.** Transactions are applied in the order given; a group passed to one `apply` call
//!   shares one target transaction, in order, and a source transaction is never split.
//! - **Exactly once.** The checkpoint row of the link (in the target's bookkeeping schema) is written
//!   in the same target transaction as the changes. [`Applier::connect`] reads it back, and `apply`
//!   skips every transaction at or below it: such a transaction is a *duplicate* (a redelivery after
//!   a crash or reconnect) and is acknowledged without being applied again.
//! - **Acknowledge after commit.** `apply` returns the position of the last committed transaction;
//!   the caller confirms that to the source, and nothing earlier. After an error, the caller must not
//!   acknowledge; on a transient error it reconnects (a new `Applier` reads the checkpoint again, so
//!   a commit whose reply was lost is recognised) and redelivers.
//! - **Loop marks.** Every target transaction carries the checkpoint write; the PostgreSQL session also
//!   uses the replication origin `tandem_<source>`, the MySQL/MariaDB session `skip_replication`. The
//!   session marks itself as tandem's (`tandem.applying` / `@tandem_applying`) so the stamping triggers
//!   leave the incoming origin and version as written.
//!
//! Error handling: errors are classified once ([`error::classify`]). A transient error leaves the
//! position where it was. A definite one sends the failing transaction (found by retrying a group
//! one transaction at a time) to the dead-letter table together with a checkpoint past it, so the
//! link goes on, or halts the link, per the table's `on_error`. Row values never reach a log above
//! debug level; the dead-letter and conflict tables hold them for the operator.
//!
//! ## Where things are
//!
//! | file | role |
//! |---|---|
//! | `link.rs` | the driver: groups (`Link::try_group`: begin, changes, checkpoint with the commit), other transactions (`Link::in_transaction`), one row's version-checked write |
//! | `batch.rs` | runs of inserts, updates or deletes of one table as set statements, row by row on refusal |
//! | `conflicts.rs` | the conflict path: locked current row, decision, carrying it out, audit |
//! | `queue.rs` | the review queue as the applier meets it: hold, release, announce merges |
//! | `tombstone.rs` | deletes remembered, inserts placed against them, pruning |
//! | `dead_letter.rs` | recording a refused transaction in parts, replaying it |
//! | `pause.rs` | schema changes of the target: columns that stay home, tables paused and their held changes |
//! | `ddl.rs` | `ddl = "propagate"`: columns added or dropped on the source, added or dropped on the target |
//! | `copy.rs`, `truncate.rs`, `admin.rs` | the initial copy's batches, replicated TRUNCATE, resolve/replay commands |
//! | `repair.rs` | `tandem verify --repair`: a row written, a key deleted or a review entry, on a link's target |
//! | `target.rs` | what the driver asks of an engine: transaction and row writes (`Target`) |
//! | `book.rs`, `dialect.rs` | the bookkeeping statements, written once over the engines' SQL dialects |
//! | `postgres/`, `mysql/` | each engine's session, value binding, row statement forms, setup DDL |

/// `$link.in_transaction($body)`, run again at once while `Link::revive_again` says so (the body
/// stopped for a table's missing revive trigger, which the rollback made). A macro, not a method
/// taking the body: an async closure called more than once through a generic parameter loses the
/// `Send` the console's handlers need.
macro_rules! in_transaction_reviving {
    ($link:expr, $body:expr) => {{
        let mut rounds = 0;
        loop {
            let r = $link.in_transaction($body).await;
            if !r
                .as_ref()
                .err()
                .is_some_and(|e| $link.revive_again(e, &mut rounds))
            {
                break r;
            }
        }
    }};
}

mod admin;
mod batch;
mod book;
mod conflicts;
mod copy;
mod ddl;
mod dead_letter;
mod dialect;
pub mod error;
mod link;
pub mod mysql;
mod pause;
pub mod postgres;
mod queue;
mod repair;
mod revive;
mod row;
pub mod seed;
pub mod setup;
mod statement;
pub mod target;
mod tombstone;
mod truncate;

use std::collections::BTreeMap;
use std::time::Duration;

use tracing::warn;

pub use admin::{
    list_conflicts, list_dead_letters, replay_dead_letter, resolve_conflict, show_conflict,
    ReplayFailure,
};
pub use book::VerifyResult;
pub use copy::{CopyBatch, CopyProgress, CopyStats};
pub use error::{classify, ApplyError, DbCode, ErrorClass, UnknownErrors};
pub use link::LinkContext;
pub use repair::RepairAct;
pub use row::{version_key, Names, RowChange};
pub use target::DeadLetter;

use crate::config::{Config, Engine};
use crate::conflict::audit::StoredConflict;
use crate::loopguard::PG_ORIGIN_PREFIX;
use crate::mapping::Mapper;
use crate::model::{Change, Position, Transaction};
use book::{DeadLetters, ReviewQueue, VerifyResults};
use link::Link;
use mysql::MyTarget;
use postgres::PgTarget;

/// The applier of one link (source node -> target node).
pub struct Applier {
    inner: Inner,
}

enum Inner {
    Postgres(Box<Link<PgTarget>>),
    Mysql(Box<Link<MyTarget>>),
}

macro_rules! with_link {
    ($self:expr, $l:ident => $body:expr) => {
        match &mut $self.inner {
            Inner::Postgres($l) => {
                let $l = &mut **$l;
                $body
            }
            Inner::Mysql($l) => {
                let $l = &mut **$l;
                $body
            }
        }
    };
}

/// How a person resolves a parked conflict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Write the parked incoming change.
    TakeIncoming,
    /// Keep the row as it is here (rewritten, so that the other nodes take it too).
    KeepCurrent,
    /// Write these values (text forms, `None` for NULL) over the row.
    Values(BTreeMap<String, Option<String>>),
}

/// Who resolves a conflict and why: written into its audit record with the resolution.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signature {
    /// The person, as they gave their name (the console's login name, the CLI's `--by` or `$USER`).
    pub by: String,
    /// Why (the console requires one; the CLI's `--note`); empty for none.
    pub note: String,
}

impl Resolution {
    fn name(&self) -> &'static str {
        match self {
            Resolution::TakeIncoming => "take_incoming",
            Resolution::KeepCurrent => "keep_current",
            Resolution::Values(_) => "values",
        }
    }
}

impl Applier {
    /// Opens the link's apply session on `target`, marks it as tandem's, and reads the checkpoint.
    pub async fn connect(
        config: &Config,
        source: &str,
        target: &str,
    ) -> Result<Applier, ApplyError> {
        let (Some(src), Some(dst)) = (config.node(source), config.node(target)) else {
            return Err(ApplyError::Invalid(format!(
                "link {source}->{target}: both nodes must be defined in the file"
            )));
        };
        let s = &config.settings;
        let ctx = LinkContext {
            source: source.to_string(),
            target: target.to_string(),
            source_node: src.clone(),
            target_node: dst.clone(),
            names: Names {
                origin_column: s.origin_column.clone(),
                version_column: s.version_column.clone(),
            },
            priorities: config
                .nodes
                .iter()
                .map(|(id, n)| (id.clone(), n.priority))
                .collect(),
            on_error: s.on_error,
            schema: s.schema.clone(),
            tombstone_retention: s.tombstone_retention(),
            manage_columns: s.manage_columns,
        };
        let mapper = Mapper::new(config, source, target);
        let url = dst.url.expose();
        let inner = match dst.engine {
            Engine::Postgres => {
                let origin = format!("{PG_ORIGIN_PREFIX}{source}");
                let t =
                    PgTarget::connect(url, target, &s.schema, src.utc_offset_secs, Some(origin))
                        .await?;
                Inner::Postgres(Box::new(Link::start(t, ctx, mapper).await?))
            }
            Engine::Mysql => {
                // Zero dates the source admitted are carried as they are (see `MyTarget::connect`).
                let zero_dates = src.engine == Engine::Mysql;
                let t = MyTarget::connect(url, target, &s.schema, dst.utc_offset_secs, zero_dates)
                    .await?;
                Inner::Mysql(Box::new(Link::start(t, ctx, mapper).await?))
            }
        };
        Ok(Applier { inner })
    }

    /// The last position committed on the target for this link (read at connect, advanced by `apply`).
    pub fn committed(&self) -> Option<&Position> {
        match &self.inner {
            Inner::Postgres(l) => l.committed.as_ref(),
            Inner::Mysql(l) => l.committed.as_ref(),
        }
    }

    /// Applies `txs`, in order, in one target transaction with the checkpoint; returns the committed
    /// position to acknowledge. Transactions at or below the checkpoint are skipped as duplicates.
    pub async fn apply(&mut self, txs: &[Transaction]) -> Result<Option<Position>, ApplyError> {
        self.apply_with(txs, UnknownErrors::Retry).await
    }

    /// [`Applier::apply`], with `unknown` saying whether an error of unknown class is retried or, after
    /// it repeated, treated as definite.
    pub async fn apply_with(
        &mut self,
        txs: &[Transaction],
        unknown: UnknownErrors,
    ) -> Result<Option<Position>, ApplyError> {
        with_link!(self, l => l.apply(txs, unknown).await)
    }

    /// Between groups: applies the held changes of tables paused by a schema change whose schema was
    /// fixed (looked at about once a second while any table is paused); the tables resumed.
    pub async fn release_paused(&mut self) -> Result<Vec<String>, ApplyError> {
        with_link!(self, l => l.release_paused().await)
    }

    /// Maps this link's changes through `config` from the next transaction on (a reloaded file);
    /// paused tables are looked at again at once.
    pub fn remap(&mut self, config: &Config) {
        with_link!(self, l => l.remap(config))
    }

    /// Whether a table of this link is paused by a schema change of its target.
    pub fn has_paused(&self) -> bool {
        match &self.inner {
            Inner::Postgres(l) => l.pauses.any(),
            Inner::Mysql(l) => l.pauses.any(),
        }
    }

    /// The initial copy's progress on this link's target, one entry per table (empty: never started).
    pub async fn copy_progress(&mut self) -> Result<Vec<CopyProgress>, ApplyError> {
        with_link!(self, l => l.copy_progress().await)
    }

    /// Records that the copy of `tables` starts, with the link's stream to start at `start`.
    pub async fn copy_start(
        &mut self,
        start: &Position,
        tables: &[String],
        time: i64,
    ) -> Result<(), ApplyError> {
        with_link!(self, l => l.copy_start(start, tables, time).await)
    }

    /// Writes one batch of copied rows with its progress (see `apply::copy`).
    pub async fn copy_batch(&mut self, batch: &CopyBatch) -> Result<CopyStats, ApplyError> {
        with_link!(self, l => l.copy_batch(batch).await)
    }

    /// Conflict records on this node, newest first.
    pub async fn list_conflicts(
        &mut self,
        open_only: bool,
        limit: i64,
    ) -> Result<Vec<StoredConflict>, ApplyError> {
        with_link!(self, l => l.t.list_conflicts(open_only, limit).await)
    }

    pub async fn show_conflict(&mut self, id: i64) -> Result<Option<StoredConflict>, ApplyError> {
        with_link!(self, l => l.t.get_conflict(id).await)
    }

    /// Resolves a parked conflict of this link: the chosen row is written as a local write (stamped
    /// by the triggers, so it replicates like any other change), the entry is marked resolved, and
    /// the changes waiting behind it are applied in order (they may conflict again).
    pub async fn resolve_conflict(
        &mut self,
        id: i64,
        resolution: &Resolution,
        signature: &Signature,
    ) -> Result<(), ApplyError> {
        with_link!(self, l => admin::resolve_on(l, id, resolution, signature).await)
    }

    /// Dead letters of this node (all links).
    pub async fn list_dead_letters(
        &mut self,
        open_only: bool,
    ) -> Result<Vec<DeadLetter>, ApplyError> {
        with_link!(self, l => l.t.list_dead_letters(open_only).await)
    }

    /// `tandem verify --repair`: `act` for the source node's row `src` (an insert image in the
    /// source's physical form; for [`RepairAct::Delete`] a delete with it as before-image) on the
    /// target, with an audit record of `kind`. `false` when this link does not carry the row.
    pub async fn repair(
        &mut self,
        src: &Change,
        act: RepairAct,
        kind: &str,
    ) -> Result<bool, ApplyError> {
        with_link!(self, l => l.repair(src, act, kind).await)
    }

    /// Records a verify's per-table results on the target (`tandem status`, the verify gauges).
    pub async fn record_verify(&mut self, results: &[VerifyResult]) -> Result<(), ApplyError> {
        with_link!(self, l => l.in_transaction(async |l| {
            for r in results {
                l.t.record_verify(r).await?;
            }
            Ok::<_, ApplyError>(())
        }).await)
    }

    /// The latest delete stamp the target's tombstones hold for the key of the source's row `src`.
    pub async fn deleted_at(&mut self, src: &Change) -> Result<Option<i128>, ApplyError> {
        with_link!(self, l => l.repair_deleted_at(src).await)
    }

    /// Applies a dead-lettered transaction of this link again (with version checks). On success the
    /// entry is marked `replayed`; on a definite failure it stays open with the new error and one
    /// more attempt, on a transient one it is left as it was ([`ReplayFailure::left`]).
    pub async fn replay_dead_letter(&mut self, id: i64) -> Result<(), ApplyError> {
        self.replay_noting(id).await.map_err(|(e, _)| e)
    }

    /// [`Applier::replay_dead_letter`], with the error of recording a definite failure on the
    /// entry when that failed too.
    pub(crate) async fn replay_noting(
        &mut self,
        id: i64,
    ) -> Result<(), (ApplyError, Option<ApplyError>)> {
        with_link!(self, l => l.replay_on(id).await)
    }
}

/// Applies with retries: a transient error waits (100 ms doubling to 30 s), reconnects (which reads
/// the checkpoint again, so nothing is applied twice) and retries, up to `attempts` times.
pub async fn apply_retrying(
    config: &Config,
    source: &str,
    target: &str,
    applier: &mut Option<Applier>,
    txs: &[Transaction],
    attempts: u32,
) -> Result<Option<Position>, ApplyError> {
    let mut backoff =
        crate::backoff::Backoff::new(Duration::from_millis(100), Duration::from_secs(30));
    let mut tried = 0;
    // The same error of unknown class, again and again on these transactions, is proven definite.
    let mut repeats = Repeats::default();
    loop {
        tried += 1;
        let unknown = repeats.mode();
        let result = match applier {
            Some(a) => a.apply_with(txs, unknown).await,
            None => match Applier::connect(config, source, target).await {
                Ok(a) => applier.insert(a).apply_with(txs, unknown).await,
                Err(e) => Err(e),
            },
        };
        match result {
            Err(e) if e.is_transient() && tried < attempts => {
                let delay = backoff.next_delay();
                warn!(link = %format!("{source}->{target}"), error = %shown(&e), attempt = tried, retry_in_ms = delay.as_millis() as u64, "transient apply error");
                repeats.saw(&e);
                *applier = None;
                crate::observe::apply_retry(source, target, &shown(&e));
                tokio::time::sleep(delay).await;
            }
            other => return other,
        }
    }
}

/// Counts consecutive identical failures of unknown class (same code, same message).
#[derive(Default)]
struct Repeats {
    last: Option<String>,
    count: u32,
}

impl Repeats {
    fn saw(&mut self, e: &ApplyError) {
        if !e.is_unknown_server_error() {
            *self = Repeats::default();
            return;
        }
        let signature = format!("{} {e}", e.code());
        if self.last.as_deref() == Some(signature.as_str()) {
            self.count += 1;
        } else {
            self.last = Some(signature);
            self.count = 1;
        }
    }

    fn mode(&self) -> UnknownErrors {
        if self.count >= crate::classify::REPEATS_BEFORE_DEFINITE {
            UnknownErrors::Refuse {
                attempts: self.count,
            }
        } else {
            UnknownErrors::Retry
        }
    }
}

/// `e` as logs and `/health` show it: a row key only as its reference (DESIGN rule 9).
pub fn shown(e: &ApplyError) -> String {
    match e {
        ApplyError::Row { key, .. } => crate::model::digest::without_key(&e.to_string(), key),
        _ => e.to_string(),
    }
}

/// A failed setup statement, with the server's message and the statement's start (which names the
/// table), so that the reader knows what to fix.
fn setup_failed(e: ApplyError, statement: &str) -> ApplyError {
    let cause = match &e {
        ApplyError::Database { source, .. } => format!(": {source}"),
        _ => String::new(),
    };
    let head: String = statement
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(160)
        .collect();
    ApplyError::Invalid(format!("{e}{cause}; the statement: {head}"))
}

/// The MySQL/MariaDB session mode setup runs in.
pub(crate) const SETUP_SQL_MODE: &str =
    "SET SESSION sql_mode = 'ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION,NO_BACKSLASH_ESCAPES'";

/// Runs `tandem setup` on `node`: every statement, in order (idempotent). With `dry_run` nothing is
/// run. Returns the statements.
pub async fn setup(config: &Config, node: &str, dry_run: bool) -> Result<Vec<String>, ApplyError> {
    let statements = setup::statements(config, node)
        .ok_or_else(|| ApplyError::Invalid(format!("no node named {node} in the file")))?;
    if dry_run {
        return Ok(statements);
    }
    let n = config
        .node(node)
        .ok_or_else(|| ApplyError::Invalid(format!("no node named {node}")))?;
    match n.engine {
        Engine::Postgres => {
            let mut t =
                PgTarget::connect(n.url.expose(), node, &config.settings.schema, 0, None).await?;
            for s in &statements {
                t.simple(s).await.map_err(|e| setup_failed(e, s))?;
            }
        }
        Engine::Mysql => {
            let mut t =
                MyTarget::connect(n.url.expose(), node, &config.settings.schema, 0, false).await?;
            // Setup alters the application's tables as they are: one declared under a permissive
            // mode (`DATETIME NOT NULL DEFAULT 0`) must not fail the ALTER for the applier's strict
            // NO_ZERO_DATE; the triggers keep this mode, which changes nothing in their bodies.
            t.simple(SETUP_SQL_MODE).await?;
            for s in &statements {
                t.simple(s).await.map_err(|e| setup_failed(e, s))?;
            }
            if config.settings.manage_columns {
                for table in setup::tables_of(config, node) {
                    revive_where_needed(&mut t, config, node, &table).await?;
                }
            }
        }
    }
    Ok(statements)
}

/// Keeps a MariaDB table's revive trigger (which [`setup`]'s statements made on every managed table)
/// only where it holds a tombstone of another node's delete (see `mysql::setup::revive_trigger`).
/// What it drops it logs: setup's statements, as a dry run lists them, are the same every run.
async fn revive_where_needed(
    t: &mut MyTarget,
    config: &Config,
    node: &str,
    table: &setup::SetupTable,
) -> Result<(), ApplyError> {
    use book::BookSession;
    let Some(check) = mysql::setup::revive_check(node, &config.settings.schema, table) else {
        return Ok(());
    };
    let q = &check.holds_other_nodes_tombstone;
    // The table locked for writing (and so, through its triggers, the tombstones too) while the
    // tombstones are read and the trigger dropped: no applier writes the table's first such tombstone in between (it
    // saw the trigger, so it would not make it again), and no local insert runs without the
    // trigger once one is there.
    t.simple(&check.lock)
        .await
        .map_err(|e| setup_failed(e, &check.lock))?;
    let result = async {
        let holds = t
            .book_query(q, Vec::new(), false)
            .await
            .map_err(|e| setup_failed(e, q))?;
        if holds.is_empty() {
            t.simple(&check.drop)
                .await
                .map_err(|e| setup_failed(e, &check.drop))?;
            tracing::info!(%node, table = %table.table, "no revive trigger: the table holds no tombstone of another node's delete (the applier makes it before it writes the first)");
        }
        Ok(())
    }
    .await;
    let unlocked = t.simple("UNLOCK TABLES").await;
    result.and(unlocked)
}
