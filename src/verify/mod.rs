//! `tandem verify`: finds drift between nodes. Every mapped row of every mapped table is compared
//! across the nodes through the mapping the appliers use, and a difference is reported only if it
//! persists after the links have applied what was in flight when it was first seen.
//!
//! ```text
//!  per table:  hash::compare  key ranges of `--batch-rows` keys: every node counts and hashes its
//!                             rows' business form in SQL (canon) -> equal chunks done; the differing
//!                             ranges (or the whole table, when canon cannot render it) go to
//!              scan::pass     every node's rows in key order, a batch at a time, merged on the key
//!                             (copy's readers) -> form::Form::judge per key -> candidates
//!  if any:     settle::wait every streaming link applied up to its source's log end (or timeout)
//!              scan::recheck the candidate keys re-read on every node, judged again; kept if still
//!              different (again after another wait while keys keep dropping out, at most 3 rounds)
//!  --repair:   repair::repair  each persisting key settled by the table's rule, written through the
//!                              apply paths (local writes that replicate, with audit records)
//!  report:     differences (table, key, kind, business columns, nodes), per-table counts, repairs
//! ```
//!
//! Memory holds a few batches per node plus the differences found, at most `max_listed` of them
//! (beyond it a difference is only counted); nothing is written to any node except one heartbeat
//! row per source (`<schema>.heartbeat`) so that quiet links confirm.
//!
//! With `--repair`, each difference that persisted is then settled by the table's conflict rule
//! through the apply paths (see `repair`): the winning row written on the other nodes as a local
//! write that replicates, the key deleted where a later delete wins, or review entries (`manual`).
//!
//! `--since D` reads only the keys written in the last `D` on any node (tandem's managed version is a
//! microsecond clock) and re-reads them everywhere; deletes in the window are not looked for.
//!
//! Chunk hashes never decide that rows differ, only that a range is equal: whatever differs is
//! judged row by row, so the differences and their kinds are the row path's (see `canon` for what is
//! hashed and what falls back). Each table's result is kept on the nodes (`<schema>.verify_result`)
//! for `tandem status` and the `tandem_verify_*` gauges.
//!
//! Error handling: a node that cannot be read, a key type whose order differs between engines or
//! a row without a key is a [`VerifyError`]; the command exits 2 and reports no differences.

pub mod canon;
mod form;
mod hash;
mod repair;
mod report;
mod scan;
mod settle;

use std::time::Duration;

use tracing::{info, warn};

use crate::config::Config;
use crate::copy::CopyError;
pub use repair::Repaired;
pub use report::{Difference, Report, TableResult};
pub use settle::{wait_links, Settled};

/// Keys per hashed chunk, and rows read per node and batch, when `--batch-rows` is not given.
pub const DEFAULT_BATCH_ROWS: u32 = 5000;

/// Differences listed at most when `--max-differences` is not given.
pub const DEFAULT_MAX_LISTED: usize = 100_000;

/// Rounds of wait and re-read at most.
const ROUNDS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{0}")]
    Read(#[from] CopyError),
    /// A definite problem the message explains, with its fix.
    #[error("{0}")]
    Definite(String),
    /// The command line names what the file does not have.
    #[error("{0}")]
    Usage(String),
}

/// What to compare and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// Only this business table.
    pub table: Option<String>,
    /// Only these nodes (at least two); empty: every node.
    pub nodes: Vec<String>,
    pub batch_rows: u32,
    /// Keep the differing rows' values for the report.
    pub show_values: bool,
    /// How long to wait for the links to apply what was in flight.
    pub settle_timeout: Duration,
    /// Differences listed (and re-read) at most, over all tables; beyond it they are only counted.
    pub max_listed: usize,
    /// Settle each difference that persisted by the table's rule (see `repair`).
    pub repair: bool,
    /// Only the rows written (inserted or updated) this long ago or later.
    pub since: Option<Duration>,
}

/// Compares the nodes (see the module doc).
pub async fn verify(config: &Config, opts: &Options) -> Result<Report, VerifyError> {
    let nodes: Vec<String> = if opts.nodes.is_empty() {
        config.nodes.keys().cloned().collect()
    } else {
        for n in &opts.nodes {
            if config.node(n).is_none() {
                return Err(VerifyError::Usage(format!("no node {n:?} in the file")));
            }
        }
        config
            .nodes
            .keys()
            .filter(|n| opts.nodes.contains(n))
            .cloned()
            .collect()
    };
    if nodes.len() < 2 {
        return Err(VerifyError::Usage(
            "verify compares at least two nodes; name two or more with --node".into(),
        ));
    }
    if let Some(t) = &opts.table {
        if !config.tables.iter().any(|x| &x.name == t) {
            return Err(VerifyError::Usage(format!("no table {t:?} in the file")));
        }
    }
    let forms: Vec<form::Form> = config
        .tables
        .iter()
        .filter(|t| opts.table.as_ref().is_none_or(|n| *n == t.name))
        .map(|t| form::Form::new(config, t, &nodes))
        .filter(|f| f.sides.len() >= 2)
        .collect();
    let batch_rows = opts.batch_rows.max(1);
    let keep_rows = opts.show_values || opts.repair;
    let mut passes = Vec::with_capacity(forms.len());
    for f in &forms {
        info!(table = %f.table.name, nodes = nodes.len(), "verifying table");
        let listed: usize = passes.iter().map(|p: &scan::Pass| p.candidates.len()).sum();
        let room = opts.max_listed.saturating_sub(listed);
        let p = match opts.since {
            Some(d) => {
                let cutoff = crate::observe::now_micros()
                    .saturating_sub(i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
                scan::since(config, f, cutoff, keep_rows).await?
            }
            None => hash::compare(config, f, batch_rows, keep_rows, room).await?,
        };
        info!(table = %f.table.name, rows = p.rows, chunks = p.chunks, chunks_hashed = p.chunks_hashed, candidates = p.candidates.len(), "table read");
        passes.push(p);
    }
    let mut settled = None;
    for _ in 0..ROUNDS {
        let before: usize = passes.iter().map(|p| p.candidates.len()).sum();
        if before == 0 {
            break;
        }
        settled = Some(settle::wait(config, &nodes, opts.settle_timeout).await);
        for (f, p) in forms.iter().zip(passes.iter_mut()) {
            if p.candidates.is_empty() {
                continue;
            }
            let keys: Vec<_> = p.candidates.iter().map(|c| c.key.clone()).collect();
            p.candidates = scan::recheck(config, f, &keys, keep_rows).await?;
        }
        let after: usize = passes.iter().map(|p| p.candidates.len()).sum();
        info!(
            seen = before,
            persisting = after,
            "verify re-read the differing keys"
        );
        if after == before {
            break; // nothing was in flight: what is left is drift
        }
    }
    let mut repairs = None;
    if opts.repair {
        let mut done = Vec::new();
        for (f, p) in forms.iter().zip(passes.iter()) {
            let keys = p.candidates.iter().map(|c| report::key_of(f, c)).collect();
            done.extend(repair::repair(config, f, &p.candidates, keys).await?);
        }
        repairs = Some(done);
    }
    if !opts.show_values {
        for p in &mut passes {
            for c in &mut p.candidates {
                c.rows = None;
            }
        }
    }
    let report = report::build(&forms, &passes, settled, repairs);
    record(config, &nodes, &report).await;
    Ok(report)
}

/// Keeps each table's result on every node compared, for `tandem status` and the verify gauges. A
/// node that cannot take it (bookkeeping older than version 9) is logged, not an error: the
/// verify's own result stands.
async fn record(config: &Config, nodes: &[String], report: &Report) {
    let results: Vec<crate::apply::VerifyResult> = report
        .tables
        .iter()
        .map(|t| crate::apply::VerifyResult {
            table: t.table.clone(),
            rows: t.rows,
            differences: t.differences + t.unlisted,
            repaired: report.repairs.as_ref().map_or(0, |r| {
                r.iter()
                    .filter(|x| {
                        x.table == t.table && matches!(x.action.as_str(), "write" | "delete")
                    })
                    .count() as u64
            }),
            nodes: nodes.join(","),
        })
        .collect();
    for n in nodes {
        let Some(peer) = nodes.iter().find(|p| *p != n) else {
            continue;
        };
        let done = match crate::apply::Applier::connect(config, peer, n).await {
            Ok(mut a) => a.record_verify(&results).await,
            Err(e) => Err(e),
        };
        if let Err(e) = done {
            let text = config.nodes.values().fold(crate::apply::shown(&e), |t, x| {
                crate::config::scrub(&t, &x.url)
            });
            warn!(node = %n, error = %text, "verify could not record its result on the node; fix: run `tandem setup` (bookkeeping version 9)");
        }
    }
}
