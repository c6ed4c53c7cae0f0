//! [`PgSource`]: the PostgreSQL source stream. It wires the replication connection, the pgoutput
//! decoder and the transaction assembler together, reports acknowledged positions to the server, and
//! reconnects after failures.
//!
//! ```text
//!   next() ──> ReplConn::recv ──> 'w' XLogData ──> decode ──> (Relation: resolve types) ──> Assembler
//!      │                      └─> 'k' keepalive ──> Heartbeat when all delivered is confirmed
//!      └─ status update ('r': write = received, flush = apply = confirmed) when confirmed moved, when
//!         the server asks, and every STATUS_INTERVAL
//! ```
//!
//! Acknowledgement: the flush LSN sent to the server only ever comes from [`PgSource::confirm`]; the
//! stream never acknowledges on the caller's behalf (DESIGN rule 1).
//!
//! Error handling: a transient error (see [`PgCaptureError::is_transient`]) drops the connection and
//! the partly read transaction, waits with exponential backoff, reconnects and restarts replication
//! from the confirmed position; transactions at or below the last confirmed or delivered position are
//! filtered. A definite error is returned to the caller.
//!
//! Cancel safety: `next()` may be dropped at any await point (e.g. in `tokio::select!`) without losing
//! or duplicating data: socket input is buffered inside the connection, output is queued, and state
//! changes happen between awaits. A catalog lookup interrupted this way is simply repeated.

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::assemble::Assembler;
use super::conn::{ReadStats, ReplConn, ReplicationMessage};
use super::decode::{decode, PgOutput};
use super::error::PgCaptureError;
use super::setup::{quote_ident, quote_literal};
use super::tls::{catalog_client, ConnParams};
use super::types::{TypeInfo, TypeKind};
use crate::backoff::Backoff;
use crate::capture::CaptureEvent;
use crate::model::{Lsn, NodeId, PgPosition, Position, TableRef};

/// How often a status update goes out even when nothing changed, at most; a third of the server's
/// `wal_sender_timeout` when that is shorter, so the server never gives up on a live stream.
const STATUS_INTERVAL: Duration = Duration::from_secs(10);
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// What to capture and how.
#[derive(Clone)]
pub struct PgSourceOptions {
    /// The node this database is; stamped on every transaction as its origin.
    pub node: NodeId,
    /// `postgres://user:password@host:port/db?sslmode=…`.
    pub url: String,
    /// Replication slot name (see [`crate::names::slot`]).
    pub slot: String,
    /// Publication to read (see [`super::setup()`]).
    pub publication: String,
    /// A temporary slot lives only as long as the connection: for `tandem tail` and tests. After a
    /// reconnect it is created anew, so changes made while disconnected are not seen.
    pub temporary_slot: bool,
    /// Tables the publication is meant to cover (used by setup and checks; the stream itself reads
    /// whatever the publication publishes).
    pub tables: Vec<TableRef>,
    /// A transaction whose changes exceed this many bytes in memory moves to a spill file.
    pub memory_budget_bytes: usize,
    pub spill_dir: PathBuf,
    /// Leave out the changes of transactions tandem applied (replication origin `tandem_<node>`)
    /// instead of decoding them only for the loop guard to drop them: a link's reader. Off for
    /// `tandem tail`.
    pub drop_applied: bool,
    /// Ask a PostgreSQL 16+ server to send only transactions without a replication origin
    /// (`origin = none`): tandem's own are then never decoded into messages, and neither is what a
    /// native subscription or another tool wrote (the node's `forward_replicated = false`).
    pub origin_none: bool,
    /// Resume after this position (the checkpoint stored in the target).
    pub start: Option<Position>,
}

impl fmt::Debug for PgSourceOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let params = ConnParams::parse(&self.url).ok();
        f.debug_struct("PgSourceOptions")
            .field("node", &self.node)
            .field("connection", &params)
            .field("slot", &self.slot)
            .field("publication", &self.publication)
            .field("temporary_slot", &self.temporary_slot)
            .field("tables", &self.tables)
            .field("memory_budget_bytes", &self.memory_budget_bytes)
            .field("spill_dir", &self.spill_dir)
            .field("start", &self.start)
            .finish()
    }
}

/// A PostgreSQL source stream; see the module docs.
pub struct PgSource {
    opts: PgSourceOptions,
    params: ConnParams,
    server_version: i32,
    status_interval: Duration,
    conn: Option<ReplConn>,
    replicating: bool,
    snapshot: Option<String>,
    /// The new slot's consistent point: where its stream starts, and what its snapshot shows.
    consistent_point: Option<Lsn>,
    asm: Assembler,
    /// A decoded message waiting for its type lookups; kept here so that a cancelled `next()` does not
    /// lose it.
    pending: Option<PgOutput>,
    catalog: Option<tokio_postgres::Client>,
    /// Highest position the caller confirmed: the flush LSN reported.
    confirmed: Lsn,
    /// Highest WAL position received: the write LSN reported.
    received: Lsn,
    /// End of the last transaction (or heartbeat) handed to the caller.
    delivered: Lsn,
    /// How far the server's keepalives said it had sent, for heartbeats on a quiet slot.
    quiet: QuietEnd,
    status_due: Option<Instant>,
    backoff: Backoff,
    reconnects: u64,
    bytes_read: u64,
}

impl fmt::Debug for PgSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgSource")
            .field("params", &self.params)
            .field("slot", &self.opts.slot)
            .field("confirmed", &self.confirmed)
            .field("delivered", &self.delivered)
            .finish_non_exhaustive()
    }
}

impl PgSource {
    /// Connects, creates the slot if it does not exist (keeping its exported snapshot until the first
    /// `next()`), but does not start streaming yet.
    pub async fn connect(opts: PgSourceOptions) -> Result<PgSource, PgCaptureError> {
        let params = ConnParams::parse(&opts.url)?;
        let catalog = catalog_client(&params).await?;
        let row = catalog
            .query_one("SELECT current_setting('server_version_num')::int", &[])
            .await?;
        let server_version: i32 = row.try_get(0)?;
        let row = catalog
            .query_one(
                "SELECT setting::int8 FROM pg_settings WHERE name = 'wal_sender_timeout'",
                &[],
            )
            .await?;
        let timeout_ms: i64 = row.try_get(0)?;
        let status_interval = match u64::try_from(timeout_ms / 3) {
            Ok(ms) if ms > 0 => STATUS_INTERVAL.min(Duration::from_millis(ms)),
            _ => STATUS_INTERVAL,
        };
        let start = match &opts.start {
            Some(Position::Postgres(p)) => p.lsn,
            Some(other) => {
                return Err(PgCaptureError::Config(format!(
                    "start position {other} is not a PostgreSQL position"
                )))
            }
            None => Lsn(0),
        };
        let mut asm = Assembler::new(
            opts.node.clone(),
            opts.memory_budget_bytes,
            opts.spill_dir.clone(),
            start,
        );
        asm.drop_applied(opts.drop_applied);
        let mut src = PgSource {
            opts,
            params,
            server_version,
            status_interval,
            conn: None,
            replicating: false,
            snapshot: None,
            consistent_point: None,
            asm,
            pending: None,
            catalog: Some(catalog),
            confirmed: start,
            received: start,
            delivered: start,
            quiet: QuietEnd::default(),
            status_due: None,
            backoff: Backoff::new(BACKOFF_MIN, BACKOFF_MAX),
            reconnects: 0,
            bytes_read: 0,
        };
        src.open().await?;
        Ok(src)
    }

    /// The snapshot exported when this source created its slot: valid for `SET TRANSACTION SNAPSHOT`
    /// until the first call to [`PgSource::next`], for an initial copy consistent with the slot.
    pub fn snapshot_name(&self) -> Option<&str> {
        if self.replicating {
            None
        } else {
            self.snapshot.as_deref()
        }
    }

    /// The consistent point of the slot this source created, with [`PgSource::snapshot_name`]: every
    /// transaction the snapshot does not show comes after it in the stream.
    pub fn consistent_point(&self) -> Option<Lsn> {
        self.snapshot_name().and(self.consistent_point)
    }

    /// How many times the stream reconnected.
    pub fn reconnects(&self) -> u64 {
        self.reconnects
    }

    /// Bytes of XLogData payload read since the stream was opened.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Socket reads on the current connection (see `ReplConn::recv` for gulp mode).
    pub fn socket_reads(&self) -> ReadStats {
        self.conn
            .as_ref()
            .map_or_else(ReadStats::default, ReplConn::read_stats)
    }

    /// How many transactions went through a spill file.
    pub fn spilled_transactions(&self) -> u64 {
        self.asm.spilled_count()
    }

    /// Marks everything up to and including `position` as durably applied. The server hears of it with
    /// the next status update, sent by the next call to [`PgSource::next`]. Positions of other engines,
    /// and positions below one already confirmed, are ignored.
    pub fn confirm(&mut self, position: &Position) {
        if let Position::Postgres(p) = position {
            if p.lsn > self.confirmed {
                self.confirmed = p.lsn;
                self.status_due = Some(Instant::now());
            }
        }
    }

    /// The next transaction or heartbeat. Retries transient failures itself; returns definite ones.
    /// Call it regularly: status updates (and so the server's view of the connection) ride on it.
    pub async fn next(&mut self) -> Result<CaptureEvent, PgCaptureError> {
        loop {
            match self.step().await {
                Ok(Some(ev)) => return Ok(ev),
                Ok(None) => {}
                Err(e) if e.is_transient() => {
                    let delay = self.backoff.next_delay();
                    tracing::warn!(slot = %self.opts.slot, error = %e, backoff_ms = delay.as_millis() as u64, "postgres capture lost its stream; reconnecting");
                    self.conn = None;
                    self.replicating = false;
                    self.pending = None;
                    self.asm.reset();
                    tokio::time::sleep(delay).await;
                    self.reconnects += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One round: make sure we stream, send a due status update, read one message.
    async fn step(&mut self) -> Result<Option<CaptureEvent>, PgCaptureError> {
        if self.pending.is_some() {
            return self.deliver().await;
        }
        if self.conn.is_none() {
            self.open().await?;
        }
        if !self.replicating {
            self.start().await?;
        }
        if let Some(beat) = self.quiet_heartbeat() {
            return Ok(Some(beat));
        }
        let now = Instant::now();
        let due = self.status_due.unwrap_or(now);
        let Some(conn) = self.conn.as_mut() else {
            return Err(PgCaptureError::Closed);
        };
        if due <= now {
            conn.queue_status(self.received.0, self.confirmed.0, self.confirmed.0);
            conn.flush().await?;
            self.status_due = Some(Instant::now() + self.status_interval);
            return Ok(None);
        }
        let gulp = self.asm.in_large_transaction();
        let msg = match tokio::time::timeout(due - now, conn.recv(gulp)).await {
            Err(_) => return Ok(None),
            Ok(m) => m?,
        };
        self.backoff.reset();
        match msg {
            ReplicationMessage::Keepalive { wal_end, reply } => {
                self.received = self.received.max(Lsn(wal_end));
                if reply {
                    self.status_due = Some(Instant::now());
                }
                self.quiet.saw(Lsn(wal_end));
                Ok(self.quiet_heartbeat())
            }
            ReplicationMessage::XLogData {
                wal_start, data, ..
            } => {
                self.received = self.received.max(Lsn(wal_start));
                self.bytes_read += data.len() as u64;
                self.pending = Some(decode(&data, self.asm.in_stream())?);
                self.deliver().await
            }
        }
    }

    /// A heartbeat at the end of WAL the server last said it sent, once everything delivered is
    /// confirmed (see [`QuietEnd`]).
    fn quiet_heartbeat(&mut self) -> Option<CaptureEvent> {
        let lsn = self.quiet.due(self.confirmed, self.delivered)?;
        self.delivered = lsn;
        Some(CaptureEvent::Heartbeat(Position::Postgres(PgPosition {
            commit_lsn: lsn,
            lsn,
        })))
    }

    /// Resolves the pending message's types (Relation messages) and hands it to the assembler.
    async fn deliver(&mut self) -> Result<Option<CaptureEvent>, PgCaptureError> {
        if let Some(PgOutput::Relation { columns, .. }) = &self.pending {
            let oids: Vec<u32> = columns.iter().map(|c| c.type_oid).collect();
            self.resolve_types(&oids).await?;
        }
        let Some(msg) = self.pending.take() else {
            return Ok(None);
        };
        let ev = self.asm.handle(msg)?;
        if let Some(ev) = &ev {
            let end = match ev {
                CaptureEvent::Transaction(t) => &t.position,
                CaptureEvent::Heartbeat(p) => p,
            };
            if let Position::Postgres(p) = end {
                self.delivered = self.delivered.max(p.lsn);
            }
        }
        Ok(ev)
    }

    /// Opens the replication connection and makes sure the slot exists.
    async fn open(&mut self) -> Result<(), PgCaptureError> {
        let mut conn = ReplConn::connect(&self.params).await?;
        conn.simple_query("IDENTIFY_SYSTEM").await?;
        if self.server_version >= 140000 {
            self.stream_at_budget(&mut conn).await?;
        }
        let exists = !self.opts.temporary_slot && self.slot_exists().await?;
        if !exists {
            // The pre-15 syntax is still accepted by 15-17 and works on 10-14 too.
            let sql = format!(
                "CREATE_REPLICATION_SLOT {}{} LOGICAL pgoutput {}",
                quote_ident(&self.opts.slot),
                if self.opts.temporary_slot {
                    " TEMPORARY"
                } else {
                    ""
                },
                // Only the first slot of a source is worth a snapshot: an initial copy happens before
                // streaming starts, never after a reconnect.
                if self.reconnects == 0 {
                    "EXPORT_SNAPSHOT"
                } else {
                    "NOEXPORT_SNAPSHOT"
                }
            );
            match conn.simple_query(&sql).await {
                Ok(rows) => {
                    if self.reconnects == 0 {
                        let row = rows.first();
                        self.snapshot = row.and_then(|r| r.get(2).cloned().flatten());
                        self.consistent_point = row
                            .and_then(|r| r.get(1).cloned().flatten())
                            .and_then(|t| t.parse().ok());
                    }
                    tracing::info!(slot = %self.opts.slot, temporary = self.opts.temporary_slot, "created replication slot");
                }
                // Someone else created it in between: use theirs.
                Err(e) if e.sql_state() == Some("42710") => {}
                Err(e) => return Err(e),
            }
        }
        self.conn = Some(conn);
        self.replicating = false;
        Ok(())
    }

    /// Lowers this walsender's `logical_decoding_work_mem` to the memory budget: a transaction
    /// that outgrows it then streams (protocol v2) while it is still running, so the server decodes
    /// and sends it alongside the writes instead of all at once after the commit (and instead of
    /// spilling it to its own disk first), and tandem holds no more of it in memory than the
    /// budget either way. Never raised: a lower setting stays.
    async fn stream_at_budget(&self, conn: &mut ReplConn) -> Result<(), PgCaptureError> {
        let budget_kib = (self.opts.memory_budget_bytes / 1024).max(64);
        let rows = conn
            .simple_query(
                "SELECT setting FROM pg_settings WHERE name = 'logical_decoding_work_mem'",
            )
            .await?;
        let current: Option<usize> = rows
            .first()
            .and_then(|r| r.first().cloned().flatten())
            .and_then(|t| t.parse().ok());
        if current.is_some_and(|kib| kib > budget_kib) {
            conn.simple_query(&format!("SET logical_decoding_work_mem = '{budget_kib}kB'"))
                .await?;
        }
        Ok(())
    }

    async fn start(&mut self) -> Result<(), PgCaptureError> {
        let pubs = quote_literal(&quote_ident(&self.opts.publication));
        let opts = if self.server_version >= 140000 {
            let origin = if self.opts.origin_none && self.server_version >= 160000 {
                ", origin 'none'"
            } else {
                if self.opts.origin_none && self.reconnects == 0 {
                    tracing::info!(slot = %self.opts.slot, "forward_replicated = false needs PostgreSQL 16 or later to filter in the server; this reader leaves out tandem's own transactions itself");
                }
                ""
            };
            format!(
                "proto_version '2', streaming 'on', messages 'true'{origin}, publication_names {pubs}"
            )
        } else {
            format!("proto_version '1', publication_names {pubs}")
        };
        let sql = format!(
            "START_REPLICATION SLOT {} LOGICAL {} ({opts})",
            quote_ident(&self.opts.slot),
            self.confirmed
        );
        let Some(conn) = self.conn.as_mut() else {
            return Err(PgCaptureError::Closed);
        };
        conn.start_replication(&sql).await?;
        tracing::info!(slot = %self.opts.slot, from = %self.confirmed, "replication started");
        self.replicating = true;
        self.status_due = Some(Instant::now());
        Ok(())
    }

    async fn catalog(&mut self) -> Result<&tokio_postgres::Client, PgCaptureError> {
        if self.catalog.as_ref().is_none_or(|c| c.is_closed()) {
            self.catalog = Some(catalog_client(&self.params).await?);
        }
        self.catalog.as_ref().ok_or(PgCaptureError::Closed)
    }

    async fn slot_exists(&mut self) -> Result<bool, PgCaptureError> {
        let slot = self.opts.slot.clone();
        let rows = self
            .catalog()
            .await?
            .query(
                "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await?;
        Ok(!rows.is_empty())
    }

    /// Looks up enums, domains and arrays the registry does not know yet, following domains and array
    /// elements down to built-in types.
    async fn resolve_types(&mut self, oids: &[u32]) -> Result<(), PgCaptureError> {
        for &oid in oids {
            while let Some(missing) = self.asm.types().missing(oid) {
                let rows = self
                    .catalog()
                    .await?
                    .query(
                        "SELECT t.typname::text, n.nspname::text, t.typtype::text, t.typbasetype, \
                         t.typelem, t.typdelim::text, t.typcategory::text \
                         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid = $1",
                        &[&missing],
                    )
                    .await?;
                let info = match rows.first() {
                    None => TypeInfo {
                        name: format!("oid {missing}"),
                        kind: TypeKind::Other,
                    },
                    Some(r) => type_info(r)?,
                };
                self.asm.types_mut().insert(missing, info);
            }
        }
        Ok(())
    }
}

/// The end of WAL named by the server's latest keepalive: once everything delivered is confirmed, it
/// can be handed out as a heartbeat and confirmed too, even while a transaction is partly read or a
/// streamed one is still open: its commit record lies beyond that end, so after a reconnect from there
/// the server sends it again in full. Holding back for it would stall a fast shutdown for ever (the
/// walsender waits for the flush position to reach the end of the WAL it sent, and a streamed
/// transaction a crash ended stays open until the next running-transactions record, which a shutdown
/// never writes).
///
/// The end is kept, not dropped, when a keepalive comes while an earlier heartbeat is unconfirmed: the
/// server sends a keepalive only while the write position reported is behind what it sent, and the
/// write position reported is the latest keepalive's end, so a forgotten end would never be repeated
/// and a quiet slot would stay behind it until new WAL came.
#[derive(Debug, Default, Clone, Copy)]
struct QuietEnd(Lsn);

impl QuietEnd {
    fn saw(&mut self, wal_end: Lsn) {
        self.0 = self.0.max(wal_end);
    }

    /// The end, when nothing delivered waits for its confirmation and it lies past both.
    fn due(&self, confirmed: Lsn, delivered: Lsn) -> Option<Lsn> {
        (delivered <= confirmed && self.0 > confirmed && self.0 > delivered).then_some(self.0)
    }
}

/// A `pg_type` row (name, schema, typtype, typbasetype, typelem, typdelim, typcategory) as [`TypeInfo`].
pub(crate) fn type_info(r: &tokio_postgres::Row) -> Result<TypeInfo, PgCaptureError> {
    let name: String = r.try_get(0)?;
    let schema: String = r.try_get(1)?;
    let typtype: String = r.try_get(2)?;
    let base: u32 = r.try_get(3)?;
    let elem: u32 = r.try_get(4)?;
    let delim: String = r.try_get(5)?;
    let category: String = r.try_get(6)?;
    let kind = match (typtype.as_str(), category.as_str()) {
        ("e", _) => TypeKind::Enum,
        ("d", _) => TypeKind::Domain { base },
        (_, "A") if elem != 0 => TypeKind::Array {
            elem,
            delim: delim.bytes().next().unwrap_or(b','),
        },
        _ => TypeKind::Other,
    };
    let name = if schema == "pg_catalog" {
        name
    } else {
        format!("{schema}.{name}")
    };
    Ok(TypeInfo { name, kind })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_end_seen_while_a_heartbeat_waits_comes_out_once_it_is_confirmed() {
        let mut quiet = QuietEnd::default();
        let (mut confirmed, mut delivered) = (Lsn(100), Lsn(100));
        // The first keepalive past the confirmed position is a heartbeat.
        quiet.saw(Lsn(150));
        let beat = quiet.due(confirmed, delivered);
        assert_eq!(beat, Some(Lsn(150)));
        delivered = Lsn(150);
        // A later one while that heartbeat is unconfirmed waits: the slot must not pass it unasked.
        quiet.saw(Lsn(200));
        assert_eq!(quiet.due(confirmed, delivered), None);
        // An older keepalive does not take the end back.
        quiet.saw(Lsn(120));
        // Confirming the first heartbeat frees the later end, without another keepalive.
        confirmed = Lsn(150);
        assert_eq!(quiet.due(confirmed, delivered), Some(Lsn(200)));
        delivered = Lsn(200);
        confirmed = Lsn(200);
        assert_eq!(quiet.due(confirmed, delivered), None, "nothing new");
    }

    #[test]
    fn no_heartbeat_while_a_delivered_transaction_is_unconfirmed() {
        let mut quiet = QuietEnd::default();
        quiet.saw(Lsn(300));
        assert_eq!(quiet.due(Lsn(100), Lsn(250)), None);
        assert_eq!(quiet.due(Lsn(250), Lsn(250)), Some(Lsn(300)));
        // A transaction delivered past the keepalive's end leaves nothing to beat for.
        assert_eq!(quiet.due(Lsn(350), Lsn(350)), None);
    }
}
