//! One pass over a table: every node's rows read in key order, a batch at a time, and merged on the
//! key, so memory holds a few batches per node whatever the table's size.
//!
//! ```text
//!  node A reader task ─ batch ─> channel (1 batch) ─┐
//!  node B reader task ─ batch ─> channel (1 batch) ─┼─> merge: smallest key first; the rows of every
//!  …                                                ┘   node at that key -> Form::judge -> candidates
//! ```
//!
//! Each reader is the initial copy's (`copy::SourceReader`: one REPEATABLE READ snapshot per node,
//! keyset pagination) asked for [`KeyOrder::Bytes`], the order every engine can give; the merge
//! checks that each node's keys really come in that order and stops with an error otherwise, rather
//! than report rows as missing.
//!
//! Error handling: a reader's error ends its task and is returned by the pass; nothing is retried
//! (a verify is run again).

use std::cmp::Ordering;
use std::collections::VecDeque;

use tokio::sync::mpsc;
use tracing::{debug, info};

use super::form::{cmp_key, Finding, Form};
use super::VerifyError;
use crate::config::Config;
use crate::copy::progress::Meter;
use crate::copy::{CopyError, KeyOrder, SourceReader};
use crate::model::{RowImage, TableRef, Value};

/// A key found to differ in a pass, with what was found.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The key as the first node holding it stores it.
    pub key: Vec<Value>,
    pub findings: Vec<Finding>,
    /// Which sides hold the key.
    pub held: Vec<bool>,
    /// Each side's row (`None`: missing), kept only when values are to be shown.
    pub rows: Option<Vec<Option<RowImage>>>,
}

/// What a pass saw.
#[derive(Debug, Default)]
pub struct Pass {
    /// Distinct keys seen on any node.
    pub rows: u64,
    /// Key ranges: hashed chunks plus the batches read row by row (the most any node needed).
    pub chunks: u64,
    /// Chunks whose hashes were equal on every node (not read row by row).
    pub chunks_hashed: u64,
    /// Why the table was read row by row as a whole, when it was (see `canon`).
    pub row_by_row: Option<String>,
    pub candidates: Vec<Candidate>,
    /// Keys that differed beyond the room given: counted, neither kept nor re-read.
    pub unlisted: u64,
}

type Batch = Result<Vec<RowImage>, CopyError>;

/// A range of keys: above `after` (`None`: from the first) up to and with `until` (`None`: to
/// the last).
#[derive(Debug, Clone, Default)]
pub struct Range {
    pub after: Option<Vec<Value>>,
    pub until: Option<Vec<Value>>,
}

/// Reads `table` (physical `key`) on `node` in key order, `batch_rows` at a time, into `tx`, from
/// the reader's cursor `after` up to `until`.
async fn read_all(
    mut reader: SourceReader,
    table: TableRef,
    key: Vec<String>,
    batch_rows: u32,
    mut after: Option<String>,
    until: Option<Vec<Value>>,
    tx: mpsc::Sender<Batch>,
) {
    loop {
        let r = reader
            .batch(&table, &key, after.as_deref(), batch_rows, KeyOrder::Bytes)
            .await;
        let (rows, last, end) = match r {
            Ok((mut rows, last)) => {
                let mut end = rows.len() < batch_rows as usize;
                if let Some(until) = &until {
                    let beyond = |r: &RowImage| {
                        let k: Option<Vec<Value>> = key.iter().map(|c| r.get(c).cloned()).collect();
                        k.is_some_and(|k| cmp_key(&k, until) == Ordering::Greater)
                    };
                    if let Some(cut) = rows.iter().position(beyond) {
                        rows.truncate(cut);
                        end = true;
                    }
                }
                (rows, last, end)
            }
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        if !rows.is_empty() && tx.send(Ok(rows)).await.is_err() {
            return; // the merge stopped
        }
        if end || last.is_none() {
            return;
        }
        after = last;
    }
}

/// One node's place in the merge.
struct Cursor {
    rx: mpsc::Receiver<Batch>,
    rows: VecDeque<(Vec<Value>, RowImage)>,
    last: Option<Vec<Value>>,
    batches: u64,
    done: bool,
}

/// Compares `form`'s table across its sides in `range` (see the module doc). `keep_rows`: keep
/// each candidate's rows, to show values; `room`: candidates kept at most (memory stays bounded
/// when a whole table differs), the rest only counted; `progress`: report rows read (a whole table).
pub async fn pass(
    config: &Config,
    form: &Form<'_>,
    batch_rows: u32,
    keep_rows: bool,
    room: usize,
    range: &Range,
    progress: bool,
) -> Result<Pass, VerifyError> {
    let mut cursors = Vec::new();
    let mut estimate = None;
    for side in &form.sides {
        let node = config
            .node(&side.node)
            .ok_or_else(|| VerifyError::Usage(format!("no node {:?}", side.node)))?;
        let mut reader = SourceReader::open_plain(node).await?;
        estimate = estimate.max(reader.estimate(&side.table).await?);
        let after = match &range.after {
            Some(k) => Some(reader.cursor(k).map_err(|e| {
                VerifyError::Definite(format!(
                    "table {} on node {}: a key cannot be written as a read position ({e})",
                    side.table, side.node
                ))
            })?),
            None => None,
        };
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(read_all(
            reader,
            side.table.clone(),
            side.key.clone(),
            batch_rows,
            after,
            range.until.clone(),
            tx,
        ));
        cursors.push(Cursor {
            rx,
            rows: VecDeque::new(),
            last: None,
            batches: 0,
            done: false,
        });
    }
    let table = &form.table.name;
    let mut meter = Meter::new(0, estimate);
    let terminal = progress && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut out = Pass::default();
    loop {
        for (i, c) in cursors.iter_mut().enumerate() {
            fill(form, i, c).await?;
        }
        let Some(min) = cursors
            .iter()
            .filter_map(|c| c.rows.front().map(|(k, _)| k))
            .min_by(|a, b| cmp_key(a, b))
            .cloned()
        else {
            break;
        };
        let mut rows: Vec<Option<RowImage>> = Vec::with_capacity(cursors.len());
        for c in &mut cursors {
            let here = c
                .rows
                .front()
                .is_some_and(|(k, _)| cmp_key(k, &min) == Ordering::Equal);
            rows.push(if here {
                c.rows.pop_front().map(|(_, r)| r)
            } else {
                None
            });
        }
        out.rows += 1;
        let refs: Vec<Option<&RowImage>> = rows.iter().map(Option::as_ref).collect();
        let findings = form.judge(&refs);
        if !findings.is_empty() && out.candidates.len() >= room {
            out.unlisted += 1;
        } else if !findings.is_empty() {
            debug!(table = %table, key = ?min, "rows differ");
            out.candidates.push(Candidate {
                key: min,
                findings,
                held: rows.iter().map(Option::is_some).collect(),
                rows: keep_rows.then_some(rows),
            });
        }
        if let Some(r) = meter.record(1, false).filter(|_| progress) {
            info!(table = %table, rows_done = r.done, rows_estimate = ?r.estimate, rows_per_sec = r.rate as u64, eta_secs = ?r.eta_secs, "verify progress");
            if terminal {
                progress_line(table, &r);
            }
        }
    }
    if terminal && out.rows > 0 {
        eprintln!();
    }
    out.chunks = cursors.iter().map(|c| c.batches).max().unwrap_or(0);
    Ok(out)
}

/// One progress line for a person at a terminal, rewritten in place: rows, rate, time left.
pub(super) fn progress_line(table: &str, r: &crate::copy::progress::Report) {
    use std::io::Write as _;
    let of = r
        .estimate
        .map_or(String::new(), |e| format!(" of about {e}"));
    let left = r
        .eta_secs
        .map_or(String::new(), |s| format!(", about {s} s left"));
    let mut err = std::io::stderr().lock();
    let _ = write!(
        err,
        "\rverify {table}: {} rows{of}, {} rows/s{left}   ",
        r.done, r.rate as u64
    );
    let _ = err.flush();
}

/// Makes sure the cursor has a row unless its node has no more; checks the node's key order.
async fn fill(form: &Form<'_>, i: usize, c: &mut Cursor) -> Result<(), VerifyError> {
    if !c.rows.is_empty() || c.done {
        return Ok(());
    }
    let Some(batch) = c.rx.recv().await else {
        c.done = true;
        return Ok(());
    };
    let batch = batch?;
    c.batches += 1;
    let side = &form.sides[i];
    for row in batch {
        let Some(key) = form.key_of(i, &row) else {
            return Err(VerifyError::Definite(format!(
                "table {} on node {}: a row has no value in a key column ({}); fix: make the table's key columns NOT NULL, or name a key that is",
                side.table,
                side.node,
                side.key.join(", ")
            )));
        };
        if c.last
            .as_ref()
            .is_some_and(|l| cmp_key(l, &key) != Ordering::Less)
        {
            return Err(VerifyError::Definite(format!(
                "table {} on node {}: the server returned keys out of the order verify merges in (a key type whose order differs between engines); fix: verify supports keys of integers, decimals, text, bytes, dates and times",
                side.table, side.node
            )));
        }
        c.last = Some(key.clone());
        c.rows.push_back((key, row));
    }
    Ok(())
}

/// Re-reads `keys` on every side and judges them again; the candidates that still differ.
pub async fn recheck(
    config: &Config,
    form: &Form<'_>,
    keys: &[Vec<Value>],
    keep_rows: bool,
) -> Result<Vec<Candidate>, VerifyError> {
    const CHUNK: usize = 500;
    let mut per_side: Vec<Vec<(Vec<Value>, RowImage)>> = Vec::new();
    for (i, side) in form.sides.iter().enumerate() {
        let node = config
            .node(&side.node)
            .ok_or_else(|| VerifyError::Usage(format!("no node {:?}", side.node)))?;
        let mut reader = SourceReader::open_plain(node).await?;
        let mut found = Vec::new();
        for chunk in keys.chunks(CHUNK) {
            for row in reader.rows_with_keys(&side.table, &side.key, chunk).await? {
                if let Some(k) = form.key_of(i, &row) {
                    found.push((k, row));
                }
            }
        }
        found.sort_by(|a, b| cmp_key(&a.0, &b.0));
        per_side.push(found);
    }
    let mut out = Vec::new();
    for key in keys {
        let rows: Vec<Option<RowImage>> = per_side
            .iter()
            .map(|found| {
                found
                    .binary_search_by(|(k, _)| cmp_key(k, key))
                    .ok()
                    .map(|i| found[i].1.clone())
            })
            .collect();
        let refs: Vec<Option<&RowImage>> = rows.iter().map(Option::as_ref).collect();
        let findings = form.judge(&refs);
        if !findings.is_empty() {
            out.push(Candidate {
                key: key.clone(),
                findings,
                held: rows.iter().map(Option::is_some).collect(),
                rows: keep_rows.then_some(rows),
            });
        }
    }
    Ok(out)
}

/// `--since`: the keys written on any side at or after `since_micros` (tandem's managed version is
/// a microsecond clock), re-read on every side and judged. A delete leaves no row to find: rows
/// deleted in the window are only seen where the other side's copy was written in it too.
pub async fn since(
    config: &Config,
    form: &Form<'_>,
    since_micros: i64,
    keep_rows: bool,
) -> Result<Pass, VerifyError> {
    let mut keys: Vec<Vec<Value>> = Vec::new();
    for (i, side) in form.sides.iter().enumerate() {
        let Some(plan) = form.plan(i) else { continue };
        if !plan.managed_version {
            return Err(VerifyError::Usage(format!(
                "--since needs tandem's managed version column, and table {} uses its own ({}) on node {}; fix: verify it without --since",
                form.table.name, plan.version, side.node
            )));
        }
        let node = config
            .node(&side.node)
            .ok_or_else(|| VerifyError::Usage(format!("no node {:?}", side.node)))?;
        let mut reader = SourceReader::open_plain(node).await?;
        for row in reader
            .rows_since(&side.table, &side.key, &plan.version, since_micros)
            .await?
        {
            if let Some(k) = form.key_of(i, &row) {
                keys.push(k);
            }
        }
    }
    keys.sort_by(|a, b| cmp_key(a, b));
    keys.dedup_by(|a, b| cmp_key(a, b) == Ordering::Equal);
    let candidates = recheck(config, form, &keys, keep_rows).await?;
    info!(table = %form.table.name, rows = keys.len(), candidates = candidates.len(), "table read");
    Ok(Pass {
        rows: keys.len() as u64,
        chunks: 1,
        candidates,
        ..Pass::default()
    })
}
