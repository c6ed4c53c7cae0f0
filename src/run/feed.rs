//! The capture side of a link on a task of its own, so that the source is read and decoded while
//! the applier works on the group before (capture and apply used to take turns in one task).
//!
//! ```text
//!  reader task: Source::next ─> permits for the transaction's bytes ─> channel ─> run_once: gather,
//!       ^                                                                       apply, then drop
//!       └── Source::confirm <── watch (the last position committed or dropped) <──┘ the permits
//! ```
//!
//! Read-ahead is bounded in bytes, not transactions: a transaction takes permits for what it holds
//! in memory (`ChangeSet::approx_bytes`, at most the whole budget; a spilled one holds little) and
//! gives them back when the link is done with it (applied, or dropped by the loop guard). The
//! memory budget thus bounds the transactions read ahead and those in apply together, as it
//! bounded the group alone before. Positions are confirmed to the source only after the target
//! committed them, as before: the reader task only carries the confirmation to the stream.
//!
//! Error handling: a capture error is passed on as the stream's last event and ends the task.
//! Dropping the [`Feed`] stops the task and closes the stream.

use std::sync::Arc;

use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use crate::capture::SourceStats;
use crate::capture::{CaptureError, CaptureEvent, Source};
use crate::model::Position;

/// Events read ahead at most, whatever their size (heartbeats take no permits).
const MAX_AHEAD: usize = 1024;

/// One event of the stream, with the permits its transaction holds.
#[derive(Debug)]
pub(super) struct Fed {
    pub event: Result<CaptureEvent, CaptureError>,
    pub permit: Option<OwnedSemaphorePermit>,
}

/// The reading end of a link's source stream.
#[derive(Debug)]
pub(super) struct Feed {
    events: mpsc::Receiver<Fed>,
    confirm: watch::Sender<Option<Position>>,
    stats: watch::Receiver<SourceStats>,
    task: JoinHandle<()>,
}

impl Feed {
    /// Starts reading `stream` ahead, at most `budget` bytes of transactions in memory.
    pub fn start(stream: Source, budget: usize) -> Feed {
        let (events_tx, events) = mpsc::channel(MAX_AHEAD);
        let (confirm, confirmed) = watch::channel(None);
        let (stats_tx, stats) = watch::channel(stream.stats());
        let permits = u32::try_from(budget).unwrap_or(u32::MAX).max(1);
        let task = tokio::spawn(read(
            stream,
            Arc::new(Semaphore::new(permits as usize)),
            permits,
            events_tx,
            confirmed,
            stats_tx,
        ));
        Feed {
            events,
            confirm,
            stats,
            task,
        }
    }

    /// The next event, waiting for one. `None` once the task ended after its last event.
    pub async fn next(&mut self) -> Option<Fed> {
        self.events.recv().await
    }

    /// The next event if one was read already.
    pub fn ready(&mut self) -> Option<Fed> {
        self.events.try_recv().ok()
    }

    /// Everything up to `position` is committed on the target (or needed nothing).
    pub fn confirm(&self, position: &Position) {
        self.confirm.send_replace(Some(position.clone()));
    }

    pub fn stats(&self) -> SourceStats {
        *self.stats.borrow()
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The reader task: the stream's events into the channel, confirmations into the stream.
async fn read(
    mut stream: Source,
    budget: Arc<Semaphore>,
    max_permits: u32,
    events: mpsc::Sender<Fed>,
    mut confirmed: watch::Receiver<Option<Position>>,
    stats: watch::Sender<SourceStats>,
) {
    loop {
        // `Source::next` is cancel-safe: a confirmation that comes first loses nothing read.
        let event = tokio::select! {
            biased;
            changed = confirmed.changed() => {
                if changed.is_err() {
                    return;
                }
                if let Some(p) = confirmed.borrow_and_update().clone() {
                    stream.confirm(&p);
                }
                continue;
            }
            event = stream.next() => event,
        };
        stats.send_replace(stream.stats());
        let permit = match &event {
            Ok(CaptureEvent::Transaction(tx)) => {
                let bytes = u32::try_from(tx.changes.approx_bytes()).unwrap_or(u32::MAX);
                let mut wanted =
                    Box::pin(budget.clone().acquire_many_owned(bytes.min(max_permits)));
                // Confirmations keep reaching the stream while it waits for room.
                let permit = loop {
                    tokio::select! {
                        biased;
                        permit = &mut wanted => break permit.ok(),
                        changed = confirmed.changed() => {
                            if changed.is_err() {
                                return;
                            }
                            if let Some(p) = confirmed.borrow_and_update().clone() {
                                stream.confirm(&p);
                            }
                        }
                    }
                };
                permit
            }
            _ => None,
        };
        let failed = event.is_err();
        if events.send(Fed { event, permit }).await.is_err() || failed {
            return;
        }
    }
}
