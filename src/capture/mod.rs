//! Capture: reading each source database's log and turning it into model [`Transaction`]s.
//!
//! ```text
//!  PostgreSQL slot (pgoutput) ── capture::postgres ──┐
//!                                                    ├──> CaptureEvent::Transaction(model::Transaction)
//!  MySQL/MariaDB binlog ──────── capture::mysql ─────┘
//! ```
//!
//! Contract of every source stream (the applier and `tandem tail` rely on it):
//! - transactions arrive whole, in commit order, each exactly once per stream; rolled-back work never
//!   arrives;
//! - after a reconnect the stream resumes after the last position passed to `confirm`, and transactions
//!   at or below it are filtered, so the consumer never sees one twice;
//! - the source is told a position is durable (PostgreSQL flush LSN) only when the consumer calls
//!   `confirm` with it; nothing is acknowledged on the consumer's behalf;
//! - a `Heartbeat` says the source has nothing more up to that position; confirming it lets a quiet
//!   source release its log.

pub mod mysql;
pub mod postgres;
mod source;

pub use source::{
    capture_tables, link_name, publication_name, replica_server_id, CaptureError, Reader, Source,
    SourceStats,
};

use crate::model::{Position, Transaction};

/// One item read from a source stream.
#[derive(Debug)]
pub enum CaptureEvent {
    Transaction(Transaction),
    /// Nothing for this stream up to `Position` (a keepalive on a quiet source, or a transaction that
    /// touched no captured table).
    Heartbeat(Position),
}
