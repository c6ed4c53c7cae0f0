//! Schema changes as the applier meets them: a column one node has and the target lacks stays home
//! (a warning once, a gauge); a column the target had and lost (dropped or renamed), or a table it
//! lost, *pauses* that table toward the target: its changes are held in order in the target's
//! bookkeeping (`<schema>.held`), written in the transaction that moves the checkpoint past them,
//! while every other table goes on. When the schema is fixed, [`Link::release_paused`] applies the
//! held changes in order and deletes them, in one target transaction.
//!
//! ```text
//!  Mapped ─> gate(): table paused? ─────────────────────────────> Hold (held row, in order)
//!              │ columns of the change the cached target lacks?
//!              │   none ─> Pass
//!              │   re-read the catalog (once per target transaction): gained them ─> Pass
//!              │   lacks a column it had (seen by this process) ─> pause ─> Hold
//!              └   never had it ─> warn once, the column stays home ─> Pass
//!  tick ─> release_paused(): first held change fits the live schema? ─> apply all, delete, resume
//! ```
//!
//! The columns a target table has had are remembered per process (a reconnect keeps them); a pause
//! is remembered by its held rows (a restart keeps it). A change of the source's own schema needs
//! nothing here: both captures follow it (PostgreSQL relation messages, binlog table maps), so the
//! change already carries the new column.
//!
//! A column whose type changed since this process first saw it (narrowed) is found when a change of
//! the table fails with a definite error: the table is paused then too ([`Link::paused_by_retype`]),
//! and released once its held changes apply again.
//!
//! Error handling: a statement refused for a missing column or table (the cached columns were stale)
//! makes the driver forget every cached table and try the group once more (see `Link::apply`), so
//! the gate sees the live schema. A release that fails leaves the table paused and is tried again.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::book::HeldChange;
use super::error::ApplyError;
use super::link::{Link, TxMeta};
use super::target::{TableInfo, Target};
use crate::mapping::Mapped;
use crate::model::{Change, TableRef};

/// How often a paused table's schema is looked at again.
const RELEASE_EVERY: Duration = Duration::from_secs(1);
/// Held changes read per statement while releasing.
const RELEASE_CHUNK: u32 = 500;

/// What the target's live schema lacks of a change.
enum Gap {
    /// It takes the change; these columns of it (never on the target) stay home.
    Fits(BTreeSet<String>),
    /// The table is gone.
    TableGone,
    /// Columns the table had are gone.
    ColumnsGone(BTreeSet<String>),
}

/// What the gate says of a change.
pub(super) enum Gate {
    Pass,
    /// The table is paused toward this target: hold the change, for this reason.
    Hold(String),
}

/// A link's view of the target's schema changes.
#[derive(Debug, Default)]
pub(super) struct Pauses {
    /// Business table -> why it is paused (the reason of its oldest held change).
    paused: BTreeMap<String, String>,
    /// Business table -> the columns whose loss paused it (held with its changes, so that a
    /// restarted process, which has not seen the table before, knows them too).
    gone: BTreeMap<String, BTreeSet<String>>,
    /// Target tables whose catalog was read again in the current target transaction.
    refreshed: HashSet<TableRef>,
    /// The catalog read whose columns were last added to what the table has had.
    remembered: HashMap<TableRef, Arc<TableInfo>>,
    /// (table, column) already warned about as staying home.
    warned: HashSet<(TableRef, String)>,
    last_release: Option<Instant>,
    /// Business table -> the error its last release failed with (logged once, not every second).
    last_failure: HashMap<String, String>,
}

impl Pauses {
    /// A new target transaction: a table's catalog may be read again once in it.
    pub(super) fn new_transaction(&mut self) {
        self.refreshed.clear();
    }

    /// The file was reloaded: warn again, and look at paused tables at once.
    fn reloaded(&mut self) {
        self.warned.clear();
        self.last_release = None;
    }

    pub(super) fn any(&self) -> bool {
        !self.paused.is_empty()
    }
}

/// Target database (its URL: node ids repeat across the configurations of one test process) and
/// table -> every column this process has seen the table have there, with the type it had when
/// first seen. The URL is a key only: it is never logged.
type Seen = HashMap<(String, TableRef), BTreeMap<String, String>>;

fn seen() -> &'static Mutex<Seen> {
    static SEEN: OnceLock<Mutex<Seen>> = OnceLock::new();
    SEEN.get_or_init(Default::default)
}

/// Adds `info`'s columns to what `node`'s table has had.
fn remember(node: &str, info: &TableInfo) {
    let columns = info.columns.iter().map(|c| (&c.name, &c.type_name));
    remember_columns(node, &info.table, columns);
}

/// Adds `(name, type)` columns to what `node`'s `table` has had (a type already known stays).
fn remember_columns<'a>(
    node: &str,
    table: &TableRef,
    columns: impl Iterator<Item = (&'a String, &'a String)>,
) {
    let mut seen = seen().lock().unwrap_or_else(|e| e.into_inner());
    let had = seen.entry((node.to_string(), table.clone())).or_default();
    for (name, type_name) in columns {
        had.entry(name.clone()).or_insert_with(|| type_name.clone());
    }
}

/// The columns of `info` whose type differs from the one this process first saw: (column, was, now).
fn retyped(node: &str, info: &TableInfo) -> Vec<(String, String, String)> {
    let seen = seen().lock().unwrap_or_else(|e| e.into_inner());
    let Some(had) = seen.get(&(node.to_string(), info.table.clone())) else {
        return Vec::new();
    };
    info.columns
        .iter()
        .filter_map(|c| {
            let was = had.get(&c.name)?;
            (*was != c.type_name).then(|| (c.name.clone(), was.clone(), c.type_name.clone()))
        })
        .collect()
}

fn had_columns(node: &str, table: &TableRef) -> BTreeSet<String> {
    let seen = seen().lock().unwrap_or_else(|e| e.into_inner());
    seen.get(&(node.to_string(), table.clone()))
        .map(|had| had.keys().cloned().collect())
        .unwrap_or_default()
}

fn had_table(node: &str, table: &TableRef) -> bool {
    let seen = seen().lock().unwrap_or_else(|e| e.into_inner());
    seen.contains_key(&(node.to_string(), table.clone()))
}

/// The columns of `change` (either image) that `info` lacks.
fn missing(change: &Change, info: &TableInfo) -> BTreeSet<String> {
    [&change.before, &change.after]
        .into_iter()
        .flatten()
        .flat_map(|image| image.fields.iter())
        .filter(|f| info.column(&f.name).is_none())
        .map(|f| f.name.to_string())
        .collect()
}

fn list(columns: &BTreeSet<String>) -> String {
    columns.iter().cloned().collect::<Vec<_>>().join(", ")
}

impl<T: Target> Link<T> {
    /// What the seen-columns memory knows the target database by.
    fn database(&self) -> &str {
        self.ctx.target_node.url.expose()
    }

    /// Takes the mapping of a reloaded file.
    pub(super) fn remap(&mut self, config: &crate::config::Config) {
        self.mapper = Arc::new(crate::mapping::Mapper::new(
            config,
            &self.ctx.source,
            &self.ctx.target,
        ));
        self.pauses.reloaded();
    }

    /// What the target's tables had when links last started (`<schema>.target_column`), then what
    /// they have now, recorded: a column dropped or narrowed while tandem was not running is still
    /// one the table had. A table that cannot be read now is left to the first change of it.
    pub(super) async fn load_columns(&mut self) -> Result<(), ApplyError> {
        let known = self.t.known_columns().await?;
        let plans: Vec<TableRef> = self.mapper.plans().map(|p| p.target.clone()).collect();
        for target in &plans {
            let text = target.to_string();
            let columns = known
                .iter()
                .filter(|(t, _, _)| *t == text)
                .map(|(_, c, ty)| (c, ty));
            remember_columns(self.database(), target, columns);
        }
        let mut read = Vec::new();
        for target in &plans {
            match self.t.table(target).await {
                Ok(info) => {
                    remember(self.database(), &info);
                    read.push(info);
                }
                Err(e) if e.is_transient() => return Err(e),
                Err(e) => {
                    tracing::debug!(link = %self.ctx.link(), table = %target, error = %super::shown(&e), "target table not read at start")
                }
            }
        }
        // Only what is not recorded yet: a start with an unchanged schema writes nothing.
        let recorded: HashSet<(&str, &str)> = known
            .iter()
            .map(|(t, c, _)| (t.as_str(), c.as_str()))
            .collect();
        let new: Vec<(String, &String, &String)> = read
            .iter()
            .flat_map(|info| {
                let table = info.table.to_string();
                info.columns
                    .iter()
                    .map(move |c| (table.clone(), &c.name, &c.type_name))
            })
            .filter(|(t, c, _)| !recorded.contains(&(t.as_str(), c.as_str())))
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        self.in_transaction(async |l| {
            for (table, column, type_name) in &new {
                l.t.record_column(table, column, type_name).await?;
            }
            Ok::<_, ApplyError>(())
        })
        .await
    }

    /// Reads the tables this link holds changes of (a pause survives a restart).
    pub(super) async fn load_pauses(&mut self) -> Result<(), ApplyError> {
        for (table, reason, gone) in self.t.held_tables(&self.ctx.source).await? {
            crate::observe::table_paused(&self.ctx.source, &self.ctx.target, &table, Some(&reason));
            let gone = gone
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string);
            self.pauses.gone.insert(table.clone(), gone.collect());
            self.pauses.paused.insert(table, reason);
        }
        Ok(())
    }

    /// Whether the change goes on to the applier or is held (see the module doc).
    pub(super) async fn gate(
        &mut self,
        m: &Mapped,
        position: Option<&str>,
    ) -> Result<Gate, ApplyError> {
        let plan = &m.plan;
        if let Some(reason) = self.pauses.paused.get(&plan.business) {
            return Ok(Gate::Hold(reason.clone()));
        }
        let Ok(change) = &m.target else {
            return Ok(Gate::Pass);
        };
        let gap = self.gap(m, change).await?;
        let (target, node, source) = (&plan.target, &self.ctx.target, &self.ctx.source);
        // Under `ddl = "propagate"` a column dropped here is dropped on the source too, once one
        // of this node's changes shows it: until then its values are not taken, as a column the
        // target never had.
        let gap = match gap {
            Gap::ColumnsGone(gone) if plan.ddl == crate::config::DdlPolicy::Propagate => {
                Gap::Fits(gone)
            }
            gap => gap,
        };
        let reason = match gap {
            Gap::Fits(home) => {
                if plan.ddl == crate::config::DdlPolicy::Propagate {
                    let info = self.t.table(&plan.target).await?;
                    if self.ddl_due(m, change, &info, &home, position) {
                        return Err(ApplyError::SchemaDue(plan.business.clone()));
                    }
                }
                if !home.is_empty() || self.pauses.warned.iter().any(|(t, _)| *t == plan.target) {
                    self.columns_home(m, &home);
                }
                return Ok(Gate::Pass);
            }
            Gap::TableGone => format!(
                "table {target} no longer exists on node {node}; fix: create it again there, or remove the table from the file and restart tandem; the table's changes from {source} wait until then"
            ),
            Gap::ColumnsGone(gone) => {
                self.pauses.gone.insert(plan.business.clone(), gone.clone());
                format!(
                "column(s) {} of table {} no longer exist on node {node} ({target}): dropped or renamed there; fix: add them back on {node}, or exclude them under tables.columns in the file and restart tandem; the table's changes from {source} wait until then",
                list(&gone),
                plan.business,
                )
            }
        };
        Ok(self.pause(m, reason))
    }

    /// What the target's live schema lacks of `change` (see the module doc).
    async fn gap(&mut self, m: &Mapped, change: &Change) -> Result<Gap, ApplyError> {
        let target = &m.plan.target;
        let Some(info) = self.live_table(target, false).await? else {
            return Ok(Gap::TableGone);
        };
        let mut lacks = missing(change, &info);
        if lacks.is_empty() {
            return Ok(Gap::Fits(lacks));
        }
        if !self.pauses.refreshed.insert(target.clone()) {
            return Ok(self.split(m, lacks));
        }
        let Some(info) = self.live_table(target, true).await? else {
            return Ok(Gap::TableGone);
        };
        let before = lacks.len();
        lacks = missing(change, &info);
        if lacks.len() < before {
            info!(link = %self.ctx.link(), table = %m.plan.business, node = %self.ctx.target, "the target table gained columns: they are synced from this change on");
        }
        Ok(self.split(m, lacks))
    }

    /// Columns the target lacks: those it had are gone (a pause), the others stay home.
    fn split(&self, m: &Mapped, lacks: BTreeSet<String>) -> Gap {
        let mut had = had_columns(self.database(), &m.plan.target);
        had.extend(
            self.pauses
                .gone
                .get(&m.plan.business)
                .into_iter()
                .flatten()
                .cloned(),
        );
        let (gone, home): (BTreeSet<String>, BTreeSet<String>) =
            lacks.into_iter().partition(|c| had.contains(c));
        if gone.is_empty() {
            Gap::Fits(home)
        } else {
            Gap::ColumnsGone(gone)
        }
    }

    /// The target table's columns (read again with `fresh`), remembered; `None` when the table is
    /// gone after this process saw it (a table never seen is the caller's definite error).
    async fn live_table(
        &mut self,
        table: &TableRef,
        fresh: bool,
    ) -> Result<Option<Arc<TableInfo>>, ApplyError> {
        if fresh {
            self.t.forget_table(Some(table));
        }
        match self.t.table(table).await {
            Ok(info) => {
                // Once per catalog read, not per change.
                let known = self.pauses.remembered.get(table);
                if known.is_none_or(|k| !Arc::ptr_eq(k, &info)) {
                    remember(self.database(), &info);
                    self.pauses.remembered.insert(table.clone(), info.clone());
                }
                Ok(Some(info))
            }
            Err(e) if e.is_schema_drift() && had_table(self.database(), table) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn pause(&mut self, m: &Mapped, reason: String) -> Gate {
        warn!(link = %self.ctx.link(), table = %m.plan.business, node = %self.ctx.target, reason = %reason, "table paused toward this node: its changes are held, other tables go on");
        crate::observe::table_paused(
            &self.ctx.source,
            &self.ctx.target,
            &m.plan.business,
            Some(&reason),
        );
        self.pauses
            .paused
            .insert(m.plan.business.clone(), reason.clone());
        Gate::Hold(reason)
    }

    /// Warns once per column that stays home, and sets the gauge of the table's unsynced columns.
    fn columns_home(&mut self, m: &Mapped, home: &BTreeSet<String>) {
        let target = &m.plan.target;
        for c in home {
            if self.pauses.warned.insert((target.clone(), c.clone())) {
                warn!(link = %self.ctx.link(), table = %m.plan.business, column = %c, source = %self.ctx.source, node = %self.ctx.target,
                    "column exists on the source but not on the target: its values stay on the source; add the column on the target (or exclude it under tables.columns in the file)");
            }
        }
        self.pauses
            .warned
            .retain(|(t, c)| t != target || home.contains(c));
        crate::observe::columns_home(
            &self.ctx.source,
            &self.ctx.target,
            &m.plan.business,
            home.len(),
        );
    }

    /// After a definite error of `business`'s changes that says a value does not fit its column: when
    /// that column (or, where the error names none, any column) of the target table changed type
    /// since this process first saw it (a narrowed `varchar`, a smaller integer), the table is paused
    /// instead of the change being refused, and `true` says to try the group again. Any error
    /// reading the catalog is `false`: the error stands as it was.
    pub(super) async fn paused_by_retype(&mut self, business: &str, error: &ApplyError) -> bool {
        if !error.is_value_misfit() {
            return false;
        }
        let Some(plan) = self.mapper.plans().find(|p| p.business == business) else {
            return false;
        };
        let (target, business) = (plan.target.clone(), plan.business.clone());
        if self.pauses.paused.contains_key(&business) {
            return false;
        }
        self.t.forget_table(Some(&target));
        let Ok(info) = self.t.table(&target).await else {
            return false;
        };
        let mut changed = retyped(self.database(), &info);
        // Where the error names its column, only that column's change of type explains it.
        if let Some(column) = error.column() {
            changed.retain(|(c, _, _)| c == column);
        }
        if changed.is_empty() {
            return false;
        }
        let what: Vec<String> = changed
            .iter()
            .map(|(c, was, now)| format!("{c} was {was}, now {now}"))
            .collect();
        let (node, source) = (&self.ctx.target, &self.ctx.source);
        let reason = format!(
            "column(s) of table {business} changed type on node {node} ({target}: {}) and no longer take the changes from {source} ({}); fix: change the type back on {node}, or map the values to what it holds now and reload the file; the table's changes from {source} wait until then",
            what.join("; "),
            super::shown(error)
        );
        warn!(link = %self.ctx.link(), table = %business, node = %node, reason = %reason, "table paused toward this node: its changes are held, other tables go on");
        crate::observe::table_paused(source, node, &business, Some(&reason));
        self.pauses.paused.insert(business, reason);
        true
    }

    /// Holds `m` behind the table's earlier held changes, in the open target transaction.
    pub(super) async fn hold(
        &mut self,
        m: &Mapped,
        meta: &TxMeta,
        reason: &str,
    ) -> Result<(), ApplyError> {
        let change = serde_json::to_string(&m.source)
            .map_err(|e| ApplyError::Invalid(format!("a held change cannot be written: {e}")))?;
        let held = HeldChange {
            id: 0,
            table: m.plan.business.clone(),
            target_table: m.plan.target.to_string(),
            reason: reason.to_string(),
            gone: self
                .pauses
                .gone
                .get(&m.plan.business)
                .map(|g| g.iter().cloned().collect::<Vec<_>>().join(","))
                .unwrap_or_default(),
            position: meta.position.clone(),
            origin: meta.origin.clone(),
            commit_time: meta.commit_time,
            change,
        };
        self.t.hold(&self.ctx.source, &held).await
    }

    /// Applies the held changes of every paused table whose schema fits them again, in order, and
    /// resumes it; at most once per [`RELEASE_EVERY`]. The tables resumed.
    pub(super) async fn release_paused(&mut self) -> Result<Vec<String>, ApplyError> {
        if !self.pauses.any()
            || self
                .pauses
                .last_release
                .is_some_and(|t| t.elapsed() < RELEASE_EVERY)
        {
            return Ok(Vec::new());
        }
        self.pauses.last_release = Some(Instant::now());
        let mut resumed = Vec::new();
        let tables: Vec<String> = self.pauses.paused.keys().cloned().collect();
        for table in tables {
            let released = self
                .in_transaction(async |l| l.release_table(&table).await)
                .await;
            match released {
                Ok(Some(n)) => {
                    info!(link = %self.ctx.link(), table = %table, node = %self.ctx.target, held = n, "table resumed: its held changes are applied");
                    crate::observe::table_paused(&self.ctx.source, &self.ctx.target, &table, None);
                    self.pauses.paused.remove(&table);
                    self.pauses.gone.remove(&table);
                    self.pauses.last_failure.remove(&table);
                    resumed.push(table);
                }
                Ok(None) => {}
                Err(e) if e.is_transient() => return Err(e),
                Err(e) => {
                    let shown = super::shown(&e);
                    if self.pauses.last_failure.get(&table) != Some(&shown) {
                        warn!(link = %self.ctx.link(), table = %table, node = %self.ctx.target, error = %shown, "held changes could not be applied yet; the table stays paused");
                        self.pauses.last_failure.insert(table, shown);
                    }
                }
            }
        }
        Ok(resumed)
    }

    /// In the open transaction: when the table's first held change fits the live schema, applies
    /// every held change in order and deletes them; how many, or `None` while it does not fit.
    async fn release_table(&mut self, table: &str) -> Result<Option<u64>, ApplyError> {
        let source = self.ctx.source.clone();
        let mut after = 0;
        let mut applied = 0u64;
        self.pauses.new_transaction();
        loop {
            let chunk = self
                .t
                .held_changes(&source, table, after, RELEASE_CHUNK)
                .await?;
            let Some(last) = chunk.last().map(|h| h.id) else {
                break;
            };
            for h in chunk {
                let change: Change = serde_json::from_str(&h.change).map_err(|e| {
                    ApplyError::Invalid(format!(
                        "held change {} of table {table} cannot be read: {e}",
                        h.id
                    ))
                })?;
                let Some(m) = self.mapper.map_change(change) else {
                    continue; // the file no longer maps the table on this link
                };
                if applied == 0 {
                    if let Ok(change) = &m.target {
                        if !matches!(self.gap(&m, change).await?, Gap::Fits(_)) {
                            return Ok(None);
                        }
                    }
                }
                let meta = TxMeta {
                    origin: h.origin,
                    position: h.position,
                    commit_time: h.commit_time,
                };
                self.apply_mapped(&m, &meta).await?;
                applied += 1;
            }
            self.t.release_held(&source, table, last).await?;
            after = last;
        }
        // The loop guard's marker, as in every transaction the applier commits: the released
        // changes are tandem's writes here and must not travel back.
        self.t.touch_checkpoint(&source).await?;
        Ok(Some(applied))
    }
}
