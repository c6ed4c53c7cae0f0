//! Events -> transactions: the state machine between the binlog connection and the consumer.
//!
//! ```text
//!  GTID ─┬─ BEGIN ── (TABLE_MAP ROWS*)* ── XID | COMMIT | ROLLBACK ──> Transaction / Heartbeat
//!        └─ DDL query (standalone) ────────────────────────────────> Heartbeat (+ metadata invalidated)
//! ```
//!
//! - A transaction ends at an XID event (transactional tables) or a `COMMIT` query (non-transactional
//!   tables such as MyISAM). A `ROLLBACK` query ends a group too: the binlog only holds a rolled-back
//!   group when it changed non-transactional tables, whose changes stay applied, so they are
//!   delivered. Rolled-back transactional work never reaches the binlog.
//! - Only tables in the caller's set pass; there is no built-in exclusion, so tandem's own
//!   `tandem.checkpoint` passes whenever the caller lists it. A group that touched no captured table
//!   yields a `Heartbeat` at its end position.
//! - Positions: MariaDB GTID list (`Position::MariaGtid`) when the stream was started from one,
//!   else binlog file + end offset of the commit event (`Position::Binlog`), or a MySQL GTID set.
//!   Each is a point from which a resumed dump continues right after the transaction.
//! - Transactions at or below the last delivered position are dropped, so a stream resumed from an
//!   older confirmed position never delivers one twice.
//! - DDL on a captured table (a query naming it) drops its cached metadata; a TABLE_MAP whose bytes
//!   changed is re-resolved (see `metadata`).
//!
//! Error handling: undecodable events are definite errors naming the event and table.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use super::decode::{decode_rows, rows_table_id, RowsKind};
use super::error::MysqlCaptureError;
use super::events::{self, kind, RawEvent, LOG_EVENT_SKIP_REPLICATION_F};
use super::metadata::{parse_table_map_from, resolve, Collations, MetadataCache};
use super::types::DecodeError;
use crate::capture::CaptureEvent;
use crate::model::spill::SpillBuffer;
use crate::model::{
    BinlogPosition, Change, LoopMarks, MariaGtid, MariaGtidList, MysqlGtidSet, NodeId, Op,
    Position, TableRef, Transaction,
};

/// Which kind of position the stream reports (chosen from the start position).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PositionKind {
    Binlog,
    MariaGtid,
    MysqlGtid,
}

#[derive(Debug, Clone)]
pub struct AssemblerConfig {
    pub origin: NodeId,
    pub tables: HashSet<TableRef>,
    pub memory_budget_bytes: usize,
    pub spill_dir: PathBuf,
    /// Rows of a transaction flagged `skip_replication` (tandem's own writes) are not decoded or
    /// buffered: the transaction comes out with its marks and no changes, which the loop guard
    /// drops. Off for `tandem tail`, which shows what tandem applied too.
    pub drop_marked: bool,
}

#[derive(Debug)]
struct OpenTxn {
    buffer: SpillBuffer,
    marks: LoopMarks,
    /// Rows were left out because the transaction is flagged (see `AssemblerConfig::drop_marked`).
    dropped: bool,
    maria_gtid: Option<MariaGtid>,
    mysql_gtid: Option<(String, u64)>,
    commit_micros: Option<i64>,
    /// Opened by a GTID event flagged standalone (MariaDB) or not yet followed by BEGIN (MySQL):
    /// a query other than BEGIN completes it.
    awaiting_begin: bool,
}

/// Turns a binlog event sequence into capture events. Pure apart from spill files.
#[derive(Debug)]
pub struct Assembler {
    config: AssemblerConfig,
    kind: PositionKind,
    /// Current binlog file and the end offset of the last event read.
    file: String,
    offset: u64,
    maria_state: MariaGtidList,
    mysql_state: MysqlGtidSet,
    txn: Option<OpenTxn>,
    delivered: Option<Position>,
    /// Whether events carry a CRC32 trailer; the fake ROTATE sent before the first
    /// FORMAT_DESCRIPTION is parsed without knowing it and keeps the trailer in its name.
    checksum: bool,
    fde_seen: bool,
    /// Whether MariaDB writes this log (its FORMAT_DESCRIPTION's server version says so): its
    /// TABLE_MAP metadata counts differently (see `TableMap::geometry_has_charset`).
    mariadb: bool,
    pub metadata: MetadataCache,
    pub collations: Collations,
}

impl Assembler {
    /// `start` is the position the dump resumes after; it also sets the kind of positions emitted.
    pub fn new(config: AssemblerConfig, start: &Position) -> Result<Self, MysqlCaptureError> {
        let mut a = Assembler {
            config,
            kind: PositionKind::Binlog,
            file: String::new(),
            offset: 4,
            maria_state: MariaGtidList::default(),
            mysql_state: MysqlGtidSet::default(),
            txn: None,
            delivered: None,
            checksum: false,
            fde_seen: false,
            mariadb: false,
            metadata: MetadataCache::default(),
            collations: Collations::default(),
        };
        a.restart(start, true)?;
        Ok(a)
    }

    /// Prepares for a new dump connection starting after `start`. Everything up to the last
    /// delivered position stays filtered.
    pub fn restart(&mut self, start: &Position, checksum: bool) -> Result<(), MysqlCaptureError> {
        match start {
            Position::Binlog(b) => {
                self.kind = PositionKind::Binlog;
                self.file.clone_from(&b.file);
                self.offset = b.offset;
            }
            Position::MariaGtid(g) => {
                self.kind = PositionKind::MariaGtid;
                self.maria_state = g.clone();
            }
            Position::MysqlGtid(g) => {
                self.kind = PositionKind::MysqlGtid;
                self.mysql_state = g.clone();
            }
            Position::Postgres(_) => {
                return Err(MysqlCaptureError::WrongPositionKind(start.to_string()))
            }
        }
        self.txn = None;
        self.checksum = checksum;
        self.fde_seen = false;
        self.metadata.clear_ids();
        Ok(())
    }

    /// The position after the last complete transaction read.
    pub fn position(&self) -> Position {
        match self.kind {
            PositionKind::Binlog => Position::Binlog(BinlogPosition {
                file: self.file.clone(),
                offset: self.offset,
            }),
            PositionKind::MariaGtid => Position::MariaGtid(self.maria_state.clone()),
            PositionKind::MysqlGtid => Position::MysqlGtid(self.mysql_state.clone()),
        }
    }

    /// The binlog point a server heartbeat at `log_pos` reached past the last event read, when the
    /// position is a GTID state that cannot say so by itself: the server left events out (the
    /// dump session's `skip_replication`), and no transaction is open.
    pub fn skipped_to(&self, log_pos: u32) -> Option<(String, u64)> {
        let past = u64::from(log_pos) > self.offset;
        (past && self.txn.is_none() && self.kind == PositionKind::MariaGtid)
            .then(|| (self.file.clone(), u64::from(log_pos)))
    }

    /// Takes in the GTID state at `offset` of the current binlog, which the server reached without
    /// sending what lies between (see [`Assembler::skipped_to`]). With an empty state (unknown) only
    /// the offset moves, so that the same heartbeat does not ask again.
    pub fn cover(&mut self, offset: u64, state: &MariaGtidList) {
        for g in state.domains.values() {
            if self
                .maria_state
                .domains
                .get(&g.domain)
                .is_none_or(|have| have.seq < g.seq)
            {
                self.maria_state.advance(*g);
            }
        }
        self.offset = self.offset.max(offset);
    }

    pub fn delivered(&self) -> Option<&Position> {
        self.delivered.as_ref()
    }

    /// Whether a TABLE_MAP body names a captured table: the stream reads information_schema for it
    /// before feeding the event when the cache has none.
    pub fn captured_table(&self, table_map_body: &[u8]) -> Option<TableRef> {
        let map = parse_table_map_from(table_map_body, self.mariadb).ok()?;
        self.config.tables.contains(&map.table).then_some(map.table)
    }

    /// Feeds one event; returns what the consumer should see, if anything.
    pub fn feed(&mut self, ev: RawEvent<'_>) -> Result<Option<CaptureEvent>, MysqlCaptureError> {
        let out = self.handle(&ev)?;
        if ev.log_pos != 0 && ev.type_code != kind::ROTATE {
            self.offset = u64::from(ev.log_pos);
        }
        Ok(match out {
            Some(Done::Txn(txn)) => self.complete(txn, &ev)?,
            Some(Done::Heartbeat) if self.txn.is_none() => self.heartbeat(),
            _ => None,
        })
    }

    fn handle(&mut self, ev: &RawEvent<'_>) -> Result<Option<Done>, MysqlCaptureError> {
        if let Some(t) = self.txn.as_mut() {
            t.marks.skip_replication |= ev.flags & LOG_EVENT_SKIP_REPLICATION_F != 0;
        }
        if let Some(e) = unsupported(ev.type_code) {
            return Err(e);
        }
        match ev.type_code {
            kind::FORMAT_DESCRIPTION => self.format_description(ev.body),
            kind::ROTATE => self.rotate(ev.body)?,
            kind::MARIADB_GTID => self.mariadb_gtid(ev)?,
            kind::MYSQL_GTID | kind::MYSQL_ANONYMOUS_GTID => self.mysql_gtid(ev)?,
            kind::QUERY => return self.query(ev),
            kind::XID => {
                let xid = events::parse_xid(ev.body).map_err(decode_error("XID"))?;
                return Ok(self.txn.take().map(|t| Done::Txn(Box::new((t, Some(xid))))));
            }
            kind::TABLE_MAP => self.table_map(ev.body)?,
            kind::HEARTBEAT | kind::HEARTBEAT_V2 => return Ok(Some(Done::Heartbeat)),
            t => {
                if let Some(k) = RowsKind::from_event_type(t) {
                    self.rows(k, ev)?;
                }
            }
        }
        Ok(None)
    }

    fn format_description(&mut self, body: &[u8]) {
        self.fde_seen = true;
        // binlog version (2 bytes), then the server version in 50 bytes.
        let version = body.get(2..52).unwrap_or_default();
        self.mariadb = version.windows(7).any(|w| w == b"MariaDB");
    }

    fn rotate(&mut self, body: &[u8]) -> Result<(), MysqlCaptureError> {
        let body = if !self.fde_seen && self.checksum && body.len() > 12 {
            &body[..body.len() - 4]
        } else {
            body
        };
        let r = events::parse_rotate(body).map_err(decode_error("ROTATE"))?;
        self.file = r.file;
        self.offset = r.position;
        Ok(())
    }

    fn mariadb_gtid(&mut self, ev: &RawEvent<'_>) -> Result<(), MysqlCaptureError> {
        let g = events::parse_mariadb_gtid(ev.body, ev.server_id).map_err(decode_error("GTID"))?;
        let mut t = self.open(ev);
        t.maria_gtid = Some(g.gtid);
        t.awaiting_begin = true;
        self.txn = Some(t);
        Ok(())
    }

    /// A GTID or, without GTIDs, an anonymous GTID event: either opens a group.
    fn mysql_gtid(&mut self, ev: &RawEvent<'_>) -> Result<(), MysqlCaptureError> {
        let g = events::parse_mysql_gtid(ev.body).map_err(decode_error("GTID"))?;
        let mut t = self.open(ev);
        if ev.type_code == kind::MYSQL_GTID {
            t.mysql_gtid = Some((g.uuid, g.gno));
        }
        t.commit_micros = g.commit_micros;
        t.awaiting_begin = true;
        self.txn = Some(t);
        Ok(())
    }

    fn open(&self, ev: &RawEvent<'_>) -> OpenTxn {
        OpenTxn {
            buffer: SpillBuffer::new(&self.config.spill_dir, self.config.memory_budget_bytes),
            marks: LoopMarks {
                pg_origin: None,
                skip_replication: ev.flags & LOG_EVENT_SKIP_REPLICATION_F != 0,
                server_id: Some(ev.server_id),
            },
            dropped: false,
            maria_gtid: None,
            mysql_gtid: None,
            commit_micros: None,
            awaiting_begin: false,
        }
    }

    fn query(&mut self, ev: &RawEvent<'_>) -> Result<Option<Done>, MysqlCaptureError> {
        let q = events::parse_query(ev.body).map_err(decode_error("QUERY"))?;
        let text = q.query.trim();
        let first = text.split_whitespace().next().unwrap_or("");
        if first.eq_ignore_ascii_case("BEGIN") {
            let t = match self.txn.take() {
                Some(t) => t,
                None => self.open(ev),
            };
            self.txn = Some(OpenTxn {
                awaiting_begin: false,
                ..t
            });
            return Ok(None);
        }
        if text.eq_ignore_ascii_case("COMMIT") || text.eq_ignore_ascii_case("ROLLBACK") {
            return Ok(self.txn.take().map(|t| Done::Txn(Box::new((t, None)))));
        }
        if self.txn.as_ref().is_some_and(|t| !t.awaiting_begin) {
            // SAVEPOINT and the like inside a transaction: no effect on captured rows.
            return Ok(None);
        }
        // A statement outside BEGIN..COMMIT: DDL. Forget metadata of captured tables it names.
        let lower = text.to_ascii_lowercase();
        let named: Vec<TableRef> = self
            .config
            .tables
            .iter()
            .filter(|t| lower.contains(&t.name.to_ascii_lowercase()))
            .cloned()
            .collect();
        for t in &named {
            self.metadata.invalidate(t);
        }
        let mut txn = self.txn.take().unwrap_or_else(|| self.open(ev));
        if let Some(table) = truncated_table(text, &q.schema) {
            if self.config.tables.contains(&table) {
                txn.buffer
                    .push(Change {
                        table,
                        op: Op::Truncate,
                        before: None,
                        after: None,
                    })
                    .map_err(MysqlCaptureError::Spill)?;
            }
        }
        Ok(Some(Done::Txn(Box::new((txn, None)))))
    }

    fn table_map(&mut self, body: &[u8]) -> Result<(), MysqlCaptureError> {
        let table_id = rows_table_id(body).map_err(decode_error("TABLE_MAP"))?;
        if self.metadata.is_current(table_id, body) {
            return Ok(());
        }
        let map = parse_table_map_from(body, self.mariadb).map_err(decode_error("TABLE_MAP"))?;
        let meta = if self.config.tables.contains(&map.table) {
            let info = self.metadata.schema_info(&map.table).cloned();
            let meta = resolve(&map, info.as_deref(), &self.collations)
                .map_err(MysqlCaptureError::Metadata)?;
            Some(Arc::new(meta))
        } else {
            None
        };
        self.metadata.insert(table_id, body, meta);
        Ok(())
    }

    fn rows(&mut self, k: RowsKind, ev: &RawEvent<'_>) -> Result<(), MysqlCaptureError> {
        let table_id = rows_table_id(ev.body).map_err(decode_error("ROWS"))?;
        let Some(Some(meta)) = self.metadata.get(table_id) else {
            return Ok(());
        };
        let meta = Arc::clone(meta);
        if self.config.drop_marked
            && (ev.flags & LOG_EVENT_SKIP_REPLICATION_F != 0
                || self.txn.as_ref().is_some_and(|t| t.marks.skip_replication))
        {
            if self.txn.is_none() {
                self.txn = Some(self.open(ev));
            }
            if let Some(t) = self.txn.as_mut() {
                t.marks.skip_replication = true;
                t.dropped = true;
            }
            return Ok(());
        }
        let changes =
            decode_rows(k, ev.body, &meta).map_err(|source| MysqlCaptureError::Decode {
                event: "ROWS",
                table: Some(meta.table.clone()),
                source,
            })?;
        if self.txn.is_none() {
            self.txn = Some(self.open(ev));
        }
        if let Some(t) = self.txn.as_mut() {
            for c in changes {
                t.buffer.push(c).map_err(MysqlCaptureError::Spill)?;
            }
        }
        Ok(())
    }

    fn complete(
        &mut self,
        done: Box<(OpenTxn, Option<u64>)>,
        ev: &RawEvent<'_>,
    ) -> Result<Option<CaptureEvent>, MysqlCaptureError> {
        let (t, xid) = *done;
        let duplicate = self.already_delivered(&t);
        // The GTID state advances even for a filtered duplicate: it describes what has been read,
        // and a later position missing this domain's progress would make a resume re-read it.
        if let Some(g) = t.maria_gtid {
            self.maria_state.advance(g);
        }
        if let Some((uuid, gno)) = &t.mysql_gtid {
            self.mysql_state.add(uuid, *gno);
        }
        if duplicate {
            return Ok(None);
        }
        let position = self.position();
        self.delivered = Some(position.clone());
        if t.buffer.is_empty() && !t.dropped {
            return Ok(Some(CaptureEvent::Heartbeat(position)));
        }
        let changes = t.buffer.finish().map_err(MysqlCaptureError::Spill)?;
        Ok(Some(CaptureEvent::Transaction(Transaction {
            origin: self.config.origin.clone(),
            position,
            commit_time: t
                .commit_micros
                .unwrap_or(i64::from(ev.timestamp) * 1_000_000),
            xid,
            marks: t.marks,
            changes,
        })))
    }

    fn already_delivered(&self, t: &OpenTxn) -> bool {
        match (&self.delivered, self.kind) {
            (None, _) => false,
            (Some(Position::MariaGtid(d)), PositionKind::MariaGtid) => t
                .maria_gtid
                .is_some_and(|g| d.domains.get(&g.domain).is_some_and(|x| x.seq >= g.seq)),
            (Some(Position::MysqlGtid(d)), PositionKind::MysqlGtid) => t
                .mysql_gtid
                .as_ref()
                .is_some_and(|(u, n)| d.contains(u, *n)),
            (Some(Position::Binlog(d)), PositionKind::Binlog) => {
                let end = BinlogPosition {
                    file: self.file.clone(),
                    offset: self.offset,
                };
                end <= *d
            }
            _ => false,
        }
    }

    fn heartbeat(&mut self) -> Option<CaptureEvent> {
        let p = self.position();
        if self
            .delivered
            .as_ref()
            .is_some_and(|d| p != *d && p.is_within(d))
        {
            return None;
        }
        Some(CaptureEvent::Heartbeat(p))
    }
}

enum Done {
    Txn(Box<(OpenTxn, Option<u64>)>),
    Heartbeat,
}

/// The error for an event of `event`'s kind that does not decode.
fn decode_error(event: &'static str) -> impl Fn(DecodeError) -> MysqlCaptureError {
    move |source| MysqlCaptureError::Decode {
        event,
        table: None,
        source,
    }
}

/// Events tandem cannot read, each with the source setting that stops the server writing them.
fn unsupported(type_code: u8) -> Option<MysqlCaptureError> {
    let (what, fix) = match type_code {
        kind::MYSQL_GTID_TAGGED => (
            "tagged GTIDs (MySQL 8.3+)",
            "use untagged GTIDs on the source",
        ),
        kind::PARTIAL_UPDATE_ROWS => (
            "partial JSON updates in the binlog",
            "SET GLOBAL binlog_row_value_options='' on the source",
        ),
        kind::MARIADB_QUERY_COMPRESSED
        | kind::MARIADB_ROWS_COMPRESSED_FIRST..=kind::MARIADB_ROWS_COMPRESSED_LAST => (
            "compressed binlog events",
            "SET GLOBAL log_bin_compress=OFF on the source",
        ),
        _ => return None,
    };
    Some(MysqlCaptureError::Unsupported { what, fix })
}

/// The table a `TRUNCATE [TABLE] [schema.]name` statement empties.
fn truncated_table(query: &str, default_schema: &str) -> Option<TableRef> {
    let mut words = query.split_whitespace();
    if !words.next()?.eq_ignore_ascii_case("truncate") {
        return None;
    }
    let mut name = words.next()?;
    if name.eq_ignore_ascii_case("table") {
        name = words.next()?;
    }
    let name = name.trim_end_matches(';');
    let parts: Vec<String> = name
        .split('.')
        .map(|p| p.trim_matches('`').to_string())
        .collect();
    match parts.as_slice() {
        [t] => Some(TableRef::new(default_schema, t)),
        [s, t] => Some(TableRef::new(s, t)),
        _ => None,
    }
}

#[cfg(test)]
#[path = "assemble_tests.rs"]
mod tests;
