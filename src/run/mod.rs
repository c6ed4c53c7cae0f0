//! Running links: the wiring from a node's log to another node's tables, and nothing more.
//!
//! ```text
//!  Source::next (capture, its own task: feed.rs) ─> loopguard::provenance ─> Applier::apply
//!        ^                                                 (mapping, conflicts, checkpoint)
//!        └──────────────────── Source::confirm <─────────────┘ committed position
//! ```
//!
//! One task per link, plus its reader: the source is read and decoded ahead, within the memory
//! budget, while the applier works. A link starts from the checkpoint stored in its target, so a restart resumes
//! exactly where the last commit left off. A transaction is confirmed to its source only after the
//! target committed it (or after the loop guard dropped it, which needs no commit). On shutdown the
//! transaction being applied finishes (commits or rolls back) before the link stops.
//!
//! Error handling: capture and apply retry their transient errors themselves; what reaches this
//! module is definite, and halts the link alone with a message naming the fix. The other links go on.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, OwnedSemaphorePermit};
use tracing::{error, info, warn};

use crate::apply::{apply_retrying, Applier, ApplyError};
use crate::backoff::Backoff;
use crate::capture::{link_name, CaptureError, CaptureEvent, Reader, Source};
use crate::config::Config;
use crate::loopguard::{provenance, should_forward};
use crate::observe::LinkMeter;
use feed::{Fed, Feed};

mod feed;

/// What a link did, for a watcher such as `tandem demo`. Carries table names and counts, never values.
#[derive(Debug, Clone)]
pub enum LinkEvent {
    Started {
        link: String,
        checkpoint: Option<String>,
    },
    /// A transaction was read from the source.
    Captured {
        link: String,
        position: String,
        tables: Vec<(String, &'static str)>,
    },
    /// The loop guard dropped a transaction tandem had applied itself.
    Dropped { link: String, position: String },
    /// The target committed the transaction.
    Applied {
        link: String,
        position: String,
        changes: usize,
    },
}

/// Where link events go; `None` when nobody watches.
pub type Events = Option<tokio::sync::mpsc::UnboundedSender<LinkEvent>>;

fn emit(events: &Events, event: LinkEvent) {
    if let Some(tx) = events {
        let _ = tx.send(event);
    }
}

/// How a link ended.
#[derive(Debug)]
pub enum LinkEnd {
    /// Stopped on request.
    Stopped,
    /// Halted by a definite error; the message says what to do.
    Halted(String),
}

#[derive(Debug, thiserror::Error)]
enum LinkError {
    #[error("capture: {0}")]
    Capture(#[from] CaptureError),
    #[error("apply: {0}")]
    Apply(#[from] ApplyError),
    #[error("initial copy: {0}")]
    Copy(#[from] crate::copy::CopyError),
}

impl LinkError {
    /// The error as logs and `/health` show it: a row key only as its reference (DESIGN rule 9;
    /// the dead-letter table and `tandem dead-letter list` keep the key itself).
    fn shown(&self) -> String {
        match self {
            LinkError::Apply(e) => format!("apply: {}", crate::apply::shown(e)),
            _ => self.to_string(),
        }
    }
}

/// Attempts for one apply before a transient error is given up as a halt.
const APPLY_ATTEMPTS: u32 = 1_000;

/// Runs the link `source -> target` until `stop` turns true or a definite error halts it.
///
/// `configs` holds the file as last loaded: a new value (`tandem run` reloads on SIGHUP, see
/// [`reloadable`]) gives the link's applier the new mapping between two target transactions.
pub async fn run_link(
    mut configs: watch::Receiver<Arc<Config>>,
    source: String,
    target: String,
    mut stop: watch::Receiver<bool>,
    events: Events,
) -> LinkEnd {
    let link = link_name(&source, &target);
    let mut meter = LinkMeter::new(&configs.borrow(), &source, &target);
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
    loop {
        match run_once(
            &mut configs,
            &source,
            &target,
            &mut stop,
            &events,
            &mut meter,
        )
        .await
        {
            Ok(()) => {
                info!(link = %link, "link stopped");
                meter.stopped();
                return LinkEnd::Stopped;
            }
            Err(e) if is_transient(&e) && !*stop.borrow() => {
                let shown = e.shown();
                meter.restarting(&shown);
                let delay = backoff.next_delay();
                warn!(link = %link, error = %shown, retry_in_ms = delay.as_millis() as u64, "link interrupted; restarting from its checkpoint");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.changed() => return LinkEnd::Stopped,
                }
            }
            Err(e) => {
                let shown = e.shown();
                let message = format!("link {link} halted: {shown}");
                error!(link = %link, error = %shown, "link halted; fix the cause and restart tandem: the link resumes from its checkpoint");
                meter.halted(&shown);
                return LinkEnd::Halted(message);
            }
        }
    }
}

fn is_transient(e: &LinkError) -> bool {
    match e {
        LinkError::Capture(c) => c.is_transient(),
        LinkError::Apply(a) => a.is_transient(),
        LinkError::Copy(c) => c.is_transient(),
    }
}

async fn run_once(
    configs: &mut watch::Receiver<Arc<Config>>,
    source: &str,
    target: &str,
    stop: &mut watch::Receiver<bool>,
    events: &Events,
    meter: &mut LinkMeter,
) -> Result<(), LinkError> {
    let mut config = configs.borrow_and_update().clone();
    let Some((applier, stream)) = open_link(&config, source, target, stop, events, meter).await?
    else {
        return Ok(());
    };
    let mut applier = Some(applier);
    let mut feed = Feed::start(stream, memory_budget(&config));
    let mut pending: Option<Fed> = None;
    // While a table is paused by a schema change of the target, its schema is looked at again.
    let mut release = tokio::time::interval(Duration::from_secs(1));
    release.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let fed = match pending.take() {
            Some(e) => e,
            None => tokio::select! {
                biased;
                _ = stop.changed() => return Ok(()),
                Ok(()) = configs.changed() => {
                    config = configs.borrow_and_update().clone();
                    if let Some(a) = applier.as_mut() {
                        a.remap(&config);
                    }
                    info!(link = %meter.link(), "the file was reloaded: the tables' mapping and rules apply from the next transaction");
                    continue;
                }
                _ = release.tick(), if applier.as_ref().is_some_and(Applier::has_paused) => {
                    if let Some(a) = applier.as_mut() {
                        a.release_paused().await?;
                    }
                    continue;
                }
                e = feed.next() => match e {
                    Some(e) => e,
                    // The reader ends only after passing on an error, or when dropped.
                    None => return Ok(()),
                },
            },
        };
        meter.source(feed.stats());
        let first = match fed.event? {
            CaptureEvent::Heartbeat(position) => {
                feed.confirm(&position);
                meter.idle();
                continue;
            }
            CaptureEvent::Transaction(tx) => (tx, fed.permit),
        };
        let mut group = gather(&config, source, target, events, meter, &mut feed, first);
        // A small group, ended only because nothing more was ready: wait a moment for more to
        // join it (`[tandem] group_wait`), so that a steady stream of small transactions costs
        // the target a commit per few dozen, not per few.
        let wait = config.settings.group_wait();
        if !wait.is_zero() && group.lingers() {
            // Nothing of the group is confirmed yet: a stop meanwhile loses nothing.
            tokio::select! {
                biased;
                _ = stop.changed() => return Ok(()),
                _ = tokio::time::sleep(wait) => {}
            }
            fill(
                &config, source, target, events, meter, &mut feed, &mut group,
            );
        }
        pending = group.pending;
        if group.txs.is_empty() {
            if !group.more {
                meter.idle();
            }
        } else {
            meter.queued(&group.txs);
            let began = std::time::Instant::now();
            // A stop request wins over an apply that waits (a lock, a retry's backoff): the open
            // target transaction dies with its connection, and nothing unapplied was acknowledged.
            tokio::select! {
                biased;
                _ = stop.changed() => return Ok(()),
                r = apply_retrying(&config, source, target, &mut applier, &group.txs, APPLY_ATTEMPTS) => {
                    r?;
                }
            }
            meter.applied(&group.txs, began.elapsed(), group.more);
            announce_applied(&config, events, meter.link(), &group.txs);
        }
        // Everything up to `last` is committed (or was tandem's own and needs nothing); the
        // group's permits go back to the reader with it.
        feed.confirm(&group.last);
        drop(group.permits);
        if let Some(e) = group.failure {
            return Err(e.into());
        }
    }
}

/// Connects the applier, runs the initial copy where one is due, and opens the source stream where
/// the target's checkpoint says. `None` when a stop request came first.
async fn open_link(
    config: &Config,
    source: &str,
    target: &str,
    stop: &mut watch::Receiver<bool>,
    events: &Events,
    meter: &mut LinkMeter,
) -> Result<Option<(Applier, Source)>, LinkError> {
    let link = link_name(source, target);
    let (Some(source_node), Some(_)) = (config.node(source), config.node(target)) else {
        return Err(LinkError::Apply(ApplyError::Invalid(format!(
            "link {link}: unknown node"
        ))));
    };
    let mut applier = Applier::connect(config, source, target).await?;
    // A stop request ends the link at once, even while a write waits on the target (a lock, a
    // retry's backoff): the target transaction is dropped and rolled back, and the source position
    // was not acknowledged, so the link resumes from its checkpoint.
    let mut stopped = stop.clone();
    let copied = tokio::select! {
        biased;
        c = crate::copy::run(config, source_node, target, &mut applier, stop) => c?,
        _ = stopped.changed() => return Ok(None),
    };
    let start = applier.committed().cloned();
    let stream = match copied {
        crate::copy::Copied::Done(stream) => stream,
        crate::copy::Copied::Stopped => return Ok(None),
        crate::copy::Copied::NotDue => {
            Source::open(
                config,
                source_node,
                Reader::Link {
                    target: target.to_string(),
                },
                start.clone(),
            )
            .await?
        }
    };
    meter.stream_opened();
    let checkpoint = start.as_ref().map(ToString::to_string);
    info!(link = %link, checkpoint = %checkpoint.as_deref().unwrap_or("none (from now)"), "link started");
    emit(
        events,
        LinkEvent::Started {
            link: link.clone(),
            checkpoint,
        },
    );
    Ok(Some((applier, stream)))
}

/// Whether `new` may replace `old` while links run: the tables' column mapping, exclusions, value
/// maps, filters and conflict, delete and error rules may change. Nodes, the set of tables and their
/// physical names, and the bookkeeping settings are what connections, slots, publications and
/// triggers were made from: a change there needs `tandem setup` and a restart, which `Err` says.
pub fn reloadable(old: &Config, new: &Config) -> Result<(), String> {
    let nodes = |c: &Config| -> Vec<(String, String, &'static str)> {
        c.nodes
            .values()
            .map(|n| (n.id.clone(), n.url.expose().to_string(), n.engine.name()))
            .collect()
    };
    if nodes(old) != nodes(new) {
        return Err("the nodes changed (ids, URLs or engines): restart tandem".into());
    }
    let tables = |c: &Config| -> Vec<(String, Vec<(String, String)>)> {
        c.tables
            .iter()
            .map(|t| {
                let on = t.physical.iter().map(|(n, p)| (n.clone(), p.to_string()));
                (t.name.clone(), on.collect())
            })
            .collect()
    };
    if tables(old) != tables(new) {
        return Err("tables were added, removed or moved to other physical tables: run `tandem setup`, then restart tandem".into());
    }
    let (a, b) = (&old.settings, &new.settings);
    if (&a.schema, &a.origin_column, &a.version_column)
        != (&b.schema, &b.origin_column, &b.version_column)
    {
        return Err("the bookkeeping schema or column names changed: run `tandem setup`, then restart tandem".into());
    }
    Ok(())
}

/// What one target transaction will carry: the transactions the loop guard let through, the last
/// position read (to confirm once they commit), and what ended the group.
struct Group {
    txs: Vec<crate::model::Transaction>,
    /// The read-ahead permits of the group's transactions (see `feed`).
    permits: Vec<OwnedSemaphorePermit>,
    last: crate::model::Position,
    /// The event that ended the group, to handle next.
    pending: Option<Fed>,
    /// A capture error after the group's transactions: reported once they are applied.
    failure: Option<CaptureError>,
    /// More was ready than the group could take (no idle time to report).
    more: bool,
    /// The captured bytes the group holds (bounded by the memory budget).
    held: usize,
}

/// Groups of fewer transactions than this wait `[tandem] group_wait` for more when nothing else
/// is ready (see [`Group::lingers`]).
const LINGER_BELOW: usize = 16;

impl Group {
    /// Whether the group is worth waiting on: it holds a few transactions and ended only because
    /// the source had nothing more ready (no heartbeat, error, budget or size ended it).
    fn lingers(&self) -> bool {
        !self.txs.is_empty()
            && self.txs.len() < LINGER_BELOW
            && self.pending.is_none()
            && self.failure.is_none()
            && !self.more
    }
}

/// Groups what the source already has ready behind `first` into one target transaction (never
/// splitting one); a heartbeat, an empty buffer, `MAX_GROUP` or the memory budget ends the group.
fn gather(
    config: &Config,
    source: &str,
    target: &str,
    events: &Events,
    meter: &mut LinkMeter,
    feed: &mut Feed,
    (first, permit): (crate::model::Transaction, Option<OwnedSemaphorePermit>),
) -> Group {
    let mut group = Group {
        txs: Vec::new(),
        permits: permit.into_iter().collect(),
        last: first.position.clone(),
        pending: None,
        failure: None,
        more: false,
        held: first.changes.approx_bytes(),
    };
    admit(config, meter, source, target, events, first, &mut group.txs);
    fill(config, source, target, events, meter, feed, &mut group);
    group
}

/// Adds to `group` what the source has ready now, until something ends it (see [`gather`]).
fn fill(
    config: &Config,
    source: &str,
    target: &str,
    events: &Events,
    meter: &mut LinkMeter,
    feed: &mut Feed,
    group: &mut Group,
) {
    // The memory budget bounds the group as it bounds one transaction: a transaction that would
    // take the group past it waits for the next group.
    let budget = memory_budget(config);
    while group.txs.len() < MAX_GROUP {
        let Some(fed) = feed.ready() else {
            break;
        };
        meter.source(feed.stats());
        match fed.event {
            Ok(CaptureEvent::Transaction(tx)) => {
                let bytes = tx.changes.approx_bytes();
                if !joins(group.held, bytes, budget) {
                    group.pending = Some(Fed {
                        event: Ok(CaptureEvent::Transaction(tx)),
                        permit: fed.permit,
                    });
                    group.more = true;
                    break;
                }
                group.held += bytes;
                group.last = tx.position.clone();
                group.permits.extend(fed.permit);
                admit(config, meter, source, target, events, tx, &mut group.txs);
                group.more = group.txs.len() >= MAX_GROUP;
            }
            Ok(heartbeat) => {
                group.pending = Some(Fed {
                    event: Ok(heartbeat),
                    permit: fed.permit,
                });
                break;
            }
            Err(e) => {
                group.failure = Some(e);
                break;
            }
        }
    }
}

/// The log line and event of each applied transaction.
fn announce_applied(
    config: &Config,
    events: &Events,
    link: &str,
    txs: &[crate::model::Transaction],
) {
    for tx in txs {
        tracing::debug!(link = %link, position = %tx.position, changes = tx.changes.len(), "applied");
        emit(
            events,
            LinkEvent::Applied {
                link: link.to_string(),
                position: tx.position.to_string(),
                changes: crate::observe::data_changes(tx, &config.settings.schema) as usize,
            },
        );
    }
}

/// Most transactions one target transaction carries.
const MAX_GROUP: usize = 100;

/// Whether a transaction holding `bytes` in memory joins a group that holds `held` under `budget`.
fn joins(held: usize, bytes: usize, budget: usize) -> bool {
    held.saturating_add(bytes) <= budget
}

/// `[tandem] memory_budget_mib` in bytes.
fn memory_budget(config: &Config) -> usize {
    usize::try_from(config.settings.memory_budget_mib)
        .unwrap_or(usize::MAX)
        .saturating_mul(1 << 20)
}

/// Reports a captured transaction and keeps it for the group unless the loop guard drops it.
fn admit(
    config: &Config,
    meter: &LinkMeter,
    source: &str,
    target: &str,
    events: &Events,
    tx: crate::model::Transaction,
    group: &mut Vec<crate::model::Transaction>,
) {
    let link = meter.link();
    meter.captured(&tx);
    if events.is_some() {
        let tables = tx
            .changes
            .iter()
            .flatten()
            .filter(|c| *c.table.schema != *config.settings.schema)
            .map(|c| (c.table.to_string(), c.op.as_str()))
            .collect();
        emit(
            events,
            LinkEvent::Captured {
                link: link.to_string(),
                position: tx.position.to_string(),
                tables,
            },
        );
    }
    if should_forward(
        &provenance(&tx, &config.settings.schema),
        source,
        target,
        false,
    ) {
        group.push(tx);
    } else {
        meter.echo();
        tracing::debug!(link = %link, position = %tx.position, "dropped a transaction tandem applied");
        emit(
            events,
            LinkEvent::Dropped {
                link: link.to_string(),
                position: tx.position.to_string(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::joins;

    #[test]
    fn a_group_stays_within_the_memory_budget() {
        let budget = 64 << 20;
        // 100 transactions of 5 MiB used to make one 500 MiB group; now 12 fit.
        let mut held = 5 << 20;
        let mut n = 1;
        while n < 100 && joins(held, 5 << 20, budget) {
            held += 5 << 20;
            n += 1;
        }
        assert_eq!((n, held <= budget), (12, true));
        assert!(joins(0, 0, budget) && !joins(budget, 1, budget));
    }
}
