//! The initial copy: before a link out of the `[copy] from` node first streams, the rows its source
//! already holds are brought to the target, and the stream then starts exactly where the copy's
//! snapshot was taken, so nothing is lost or doubled between the two.
//!
//! ```text
//!  PostgreSQL source: drop the setup slot ─> CREATE_REPLICATION_SLOT … EXPORT_SNAPSHOT (PgSource)
//!                     reader: REPEATABLE READ + SET TRANSACTION SNAPSHOT; start = consistent point
//!  MariaDB source:    reader: START TRANSACTION WITH CONSISTENT SNAPSHOT; start = binlog_snapshot_*
//!        │
//!        ├─ copy_start: progress rows + checkpoint(start) on the target
//!        ├─ per table, in key order, batch_rows at a time:
//!        │     read rows after the last key ─> Applier::copy_batch (map, compare, conflicts, progress)
//!        └─ open the stream at start (the checkpoint); run/ streams as usual
//! ```
//!
//! When: a link copies when the file names its source in `[copy] from` and either its target has no
//! checkpoint and no copy progress yet (a fresh link), or a copy is under way (some table not done).
//! A link that already streams (it has a checkpoint) without copy progress never copies.
//!
//! Resume: the progress row of each table holds the last key copied and is written in the same target
//! transaction as the rows. After an interruption the snapshot is gone; the remaining key ranges are
//! read from a fresh snapshot, while the stream still starts at the first snapshot's position. The
//! changes between the two snapshots are then applied over rows that already show them: each is
//! checked against the row's version like any streamed change, so a replayed insert, update or delete
//! loses to the newer copied row under `last_write_wins` (recorded in the conflict log) and the nodes
//! end equal (tested in `tests/initial_copy.rs`).
//!
//! Error handling: errors reading the source are classified like capture's (a lost connection is
//! transient: the link restarts and the copy resumes from its progress); a value the model cannot hold
//! or a table without a usable key is definite and halts the link with the table and the fix.

mod mysql;
mod postgres;
pub(crate) mod progress;

use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tracing::info;

use crate::apply::{Applier, ApplyError, CopyBatch, CopyProgress, CopyStats};
use crate::capture::mysql::MysqlCaptureError;
use crate::capture::postgres::PgCaptureError;
use crate::capture::{link_name, CaptureError, Reader, Source};
use crate::config::{Config, Engine, Node, Table};
use crate::model::{Lsn, PgPosition, Position, RowImage, TableRef};
use progress::Meter;

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("reading PostgreSQL node {node}: {source}")]
    Postgres {
        node: String,
        #[source]
        source: PgCaptureError,
    },
    #[error("reading MySQL/MariaDB node {node}: {source}")]
    Mysql {
        node: String,
        #[source]
        source: MysqlCaptureError,
    },
    #[error("writing the copy: {0}")]
    Apply(#[from] ApplyError),
    #[error("opening the stream: {0}")]
    Capture(#[from] CaptureError),
    #[error("table {table} column {column}: a {type_name} value cannot be read; fix: exclude the column from the mapping or change its type")]
    Value {
        table: TableRef,
        column: String,
        type_name: String,
    },
    /// A definite problem the message explains, with its fix.
    #[error("{0}")]
    Definite(String),
}

impl CopyError {
    pub fn is_transient(&self) -> bool {
        match self {
            CopyError::Postgres { source, .. } => source.is_transient(),
            CopyError::Mysql { source, .. } => source.is_transient(),
            CopyError::Apply(e) => e.is_transient(),
            CopyError::Capture(e) => e.is_transient(),
            CopyError::Value { .. } | CopyError::Definite(_) => false,
        }
    }
}

/// How the copy step of a link ended.
#[derive(Debug)]
pub enum Copied {
    /// No copy is due: open the stream from the checkpoint as usual.
    NotDue,
    /// The copy is complete; stream from here (the applier's checkpoint is the start).
    Done(Source),
    /// Stopped on request between batches; the progress is kept.
    Stopped,
}

/// Runs the link's initial copy if one is due (see the module doc).
pub async fn run(
    config: &Config,
    source: &Node,
    target: &str,
    applier: &mut Applier,
    stop: &watch::Receiver<bool>,
) -> Result<Copied, CopyError> {
    let Some(copy) = config.copy.as_ref().filter(|c| c.from == source.id) else {
        return Ok(Copied::NotDue);
    };
    let link = link_name(&source.id, target);
    let progress = applier.copy_progress().await?;
    if !progress.is_empty() && progress.iter().all(|p| p.done) {
        return Ok(Copied::NotDue);
    }
    if progress.is_empty() && applier.committed().is_some() {
        info!(link = %link, "link already streams from a checkpoint; no initial copy");
        return Ok(Copied::NotDue);
    }
    let tables: Vec<&Table> = config
        .tables
        .iter()
        .filter(|t| t.physical.contains_key(&source.id) && t.physical.contains_key(target))
        .collect();
    let fresh = progress.is_empty();
    let (mut reader, start, stream) = if fresh {
        begin_fresh(config, source, target, applier, &tables).await?
    } else {
        let start: Position = progress[0].stream_start.parse().map_err(|_| {
            CopyError::Definite(format!(
                "link {link}: the copy's stream start {:?} cannot be read; fix: delete its rows from {}.copy_progress and the checkpoint on node {target} to copy again",
                progress[0].stream_start, config.settings.schema
            ))
        })?;
        let reader = SourceReader::open(source, None).await?;
        info!(link = %link, stream_start = %start, "initial copy resumes from its progress (fresh snapshot)");
        (reader, start, None)
    };
    let progress = applier.copy_progress().await?;
    let job = Job {
        link: link.clone(),
        source,
        batch_rows: copy.batch_rows,
        start: start.clone(),
        snapshot_time: now_micros(),
    };
    let mut totals = CopyStats::default();
    for table in &tables {
        let Some(p) = progress.iter().find(|p| p.table == table.name) else {
            continue; // added to the file after the copy began: streamed changes only
        };
        if p.done {
            continue;
        }
        match job.copy_table(&mut reader, applier, table, p, stop).await? {
            Some(stats) => add(&mut totals, stats),
            None => return Ok(Copied::Stopped),
        }
    }
    info!(link = %link, written = totals.written, equal = totals.equal, differed = totals.differed, sent_back = totals.sent_back, stream_start = %start, "initial copy done; streaming from its snapshot");
    let stream = match stream {
        Some(s) => s,
        None => {
            Source::open(
                config,
                source,
                Reader::Link {
                    target: target.to_string(),
                },
                Some(start),
            )
            .await?
        }
    };
    Ok(Copied::Done(stream))
}

/// A fresh copy: the snapshot, its position, and (PostgreSQL) the stream whose slot exported it.
async fn begin_fresh(
    config: &Config,
    source: &Node,
    target: &str,
    applier: &mut Applier,
    tables: &[&Table],
) -> Result<(SourceReader, Position, Option<Source>), CopyError> {
    let link = link_name(&source.id, target);
    let names: Vec<String> = tables.iter().map(|t| t.name.clone()).collect();
    let (reader, start, stream) = match source.engine {
        Engine::Postgres => {
            let slot = crate::names::slot(&source.id, target);
            postgres::drop_idle_slot(source, &slot).await?;
            let stream = Source::open(
                config,
                source,
                Reader::Link {
                    target: target.to_string(),
                },
                None,
            )
            .await?;
            let (snapshot, point) = match &stream {
                Source::Postgres(s) => {
                    (s.snapshot_name().map(str::to_string), s.consistent_point())
                }
                Source::Mysql(_) => (None, None),
            };
            let (Some(snapshot), Some(point)) = (snapshot, point) else {
                return Err(CopyError::Definite(format!(
                    "link {link}: slot {slot} was created by someone else while the copy started, so it has no snapshot; fix: stop the other tandem process for this link and restart"
                )));
            };
            let reader = SourceReader::open(source, Some(&snapshot)).await?;
            (reader, pg_position(point), Some(stream))
        }
        Engine::Mysql => {
            let reader = mysql::MyReader::open(source).await?;
            let start = reader.snapshot_position().cloned().ok_or_else(|| {
                CopyError::Definite(format!("node {}: the snapshot has no position", source.id))
            })?;
            (SourceReader::Mysql(reader), start, None)
        }
    };
    applier.copy_start(&start, &names, now_micros()).await?;
    info!(link = %link, tables = names.len(), stream_start = %start, "initial copy starts");
    Ok((reader, start, stream))
}

fn pg_position(lsn: Lsn) -> Position {
    Position::Postgres(PgPosition {
        commit_lsn: lsn,
        lsn,
    })
}

struct Job<'a> {
    link: String,
    source: &'a Node,
    batch_rows: u32,
    start: Position,
    snapshot_time: i64,
}

impl Job<'_> {
    /// Copies one table from its progress on; `None` when stopped.
    async fn copy_table(
        &self,
        reader: &mut SourceReader,
        applier: &mut Applier,
        table: &Table,
        progress: &CopyProgress,
        stop: &watch::Receiver<bool>,
    ) -> Result<Option<CopyStats>, CopyError> {
        let Some(physical) = table.physical.get(&self.source.id) else {
            return Ok(Some(CopyStats::default()));
        };
        let key: Vec<String> = table
            .key
            .iter()
            .map(|k| table.column_on(k, &self.source.id).to_string())
            .collect();
        let estimate = reader.estimate(physical).await?;
        let mut p = progress.clone();
        let mut meter = Meter::new(p.rows, estimate);
        let mut totals = CopyStats::default();
        info!(link = %self.link, table = %table.name, rows_done = p.rows, rows_estimate = %shown(estimate), "copying table");
        while !p.done {
            if *stop.borrow() {
                info!(link = %self.link, table = %table.name, rows_done = p.rows, "initial copy stopped; it resumes from here");
                return Ok(None);
            }
            let (rows, last) = reader
                .batch(
                    physical,
                    &key,
                    p.last_key.as_deref(),
                    self.batch_rows,
                    KeyOrder::Index,
                )
                .await?;
            let n = rows.len();
            p.rows += n as i64;
            if last.is_some() {
                p.last_key = last;
            }
            p.done = n < self.batch_rows as usize;
            let batch = CopyBatch {
                source_table: physical.clone(),
                rows,
                progress: p.clone(),
                stream_start: self.start.clone(),
                snapshot_time: self.snapshot_time,
            };
            let stats = applier.copy_batch(&batch).await?;
            add(&mut totals, stats);
            if let Some(r) = meter.record(n as u64, p.done) {
                info!(
                    link = %self.link,
                    table = %table.name,
                    rows_done = r.done,
                    rows_estimate = %shown(r.estimate),
                    rows_per_sec = r.rate as u64,
                    eta_secs = %shown(r.eta_secs),
                    "copy progress"
                );
            }
        }
        info!(link = %self.link, table = %table.name, rows = p.rows, written = totals.written, equal = totals.equal, differed = totals.differed, sent_back = totals.sent_back, dead_lettered = totals.dead_lettered, "table copied");
        Ok(Some(totals))
    }
}

/// A count for the log, `unknown` when there is none.
fn shown(n: Option<u64>) -> String {
    n.map_or_else(|| "unknown".to_string(), |n| n.to_string())
}

fn add(total: &mut CopyStats, s: CopyStats) {
    total.written += s.written;
    total.equal += s.equal;
    total.differed += s.differed;
    total.sent_back += s.sent_back;
    total.dead_lettered += s.dead_lettered;
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// The order a reader returns keys in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyOrder {
    /// The key index's own order (the copy: fastest, and the progress is the reader's own).
    Index,
    /// Text key columns by their bytes, the rest as indexed: the same order on every engine, which a
    /// merge of several nodes' rows needs (`verify`).
    Bytes,
}

/// A node's rows under one snapshot, in key order (the copy's source; `verify`'s nodes).
pub(crate) enum SourceReader {
    Postgres(postgres::PgReader),
    Mysql(mysql::MyReader),
}

impl SourceReader {
    /// Opens a read-only snapshot: the exported one named, or a fresh one.
    async fn open(node: &Node, snapshot: Option<&str>) -> Result<SourceReader, CopyError> {
        match node.engine {
            Engine::Postgres => Ok(SourceReader::Postgres(
                postgres::PgReader::open(node, snapshot).await?,
            )),
            Engine::Mysql => Ok(SourceReader::Mysql(mysql::MyReader::open(node).await?)),
        }
    }

    /// Opens a fresh read-only snapshot for reading only (no log position; MySQL too).
    pub(crate) async fn open_plain(node: &Node) -> Result<SourceReader, CopyError> {
        match node.engine {
            Engine::Postgres => Ok(SourceReader::Postgres(
                postgres::PgReader::open(node, None).await?,
            )),
            Engine::Mysql => Ok(SourceReader::Mysql(
                mysql::MyReader::open_plain(node).await?,
            )),
        }
    }

    /// The planner's row count estimate, when it has one.
    pub(crate) async fn estimate(&mut self, table: &TableRef) -> Result<Option<u64>, CopyError> {
        match self {
            SourceReader::Postgres(r) => r.estimate(table).await,
            SourceReader::Mysql(r) => r.estimate(table).await,
        }
    }

    /// Up to `limit` rows after `after` (a key as this reader wrote it), in `order`, with the last
    /// row's key.
    pub(crate) async fn batch(
        &mut self,
        table: &TableRef,
        key: &[String],
        after: Option<&str>,
        limit: u32,
        order: KeyOrder,
    ) -> Result<(Vec<RowImage>, Option<String>), CopyError> {
        match self {
            SourceReader::Postgres(r) => r.batch(table, key, after, limit, order).await,
            SourceReader::Mysql(r) => r.batch(table, key, after, limit, order).await,
        }
    }

    /// `key` (model values, in key column order) in the form [`Self::batch`] takes as `after`: the
    /// key's text forms on PostgreSQL, its model values on MySQL/MariaDB.
    pub(crate) fn cursor(&self, key: &[crate::model::Value]) -> Result<String, serde_json::Error> {
        match self {
            SourceReader::Postgres(_) => {
                serde_json::to_string(&key.iter().map(ToString::to_string).collect::<Vec<_>>())
            }
            SourceReader::Mysql(_) => serde_json::to_string(key),
        }
    }

    /// The rows whose key (physical `key` columns) is one of `keys`, in no set order.
    pub(crate) async fn rows_with_keys(
        &mut self,
        table: &TableRef,
        key: &[String],
        keys: &[Vec<crate::model::Value>],
    ) -> Result<Vec<RowImage>, CopyError> {
        match self {
            SourceReader::Postgres(r) => r.rows_with_keys(table, key, keys).await,
            SourceReader::Mysql(r) => r.rows_with_keys(table, key, keys).await,
        }
    }

    /// The rows whose managed `version` column is at least `since_micros`, in no set order.
    pub(crate) async fn rows_since(
        &mut self,
        table: &TableRef,
        key: &[String],
        version: &str,
        since_micros: i64,
    ) -> Result<Vec<RowImage>, CopyError> {
        match self {
            SourceReader::Postgres(r) => r.rows_since(table, key, version, since_micros).await,
            SourceReader::Mysql(r) => r.rows_since(table, key, version, since_micros).await,
        }
    }
}
