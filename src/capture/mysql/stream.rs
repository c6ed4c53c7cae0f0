//! The binlog connection: dump request, reading, reconnecting and resuming.
//!
//! ```text
//!  MysqlSource::next
//!    ├─ no connection? connect (backoff on transient errors) from the last confirmed position
//!    ├─ read one event (mysql_async BinlogStream: framing, checksums, MySQL payload decompression)
//!    ├─ TABLE_MAP of a captured table without schema data? read information_schema first
//!    ├─ heartbeat past events the server left out, at a GTID position? read the GTID state there
//!    └─ Assembler::feed -> Transaction | Heartbeat | nothing
//! ```
//!
//! Dump setup: a replica `server_id` of the caller's choosing (distinct per link, or the server drops
//! the older connection); `@master_heartbeat_period` so a quiet source still sends heartbeats (and a
//! silent connection is detected); on MariaDB `@mariadb_slave_capability=4` so GTID events arrive as
//! GTID events, and `@slave_connect_state` with an empty file name to resume by GTID; for a link's
//! reader on MariaDB, `skip_replication = 1`, so the dump thread leaves out tandem's own transactions.
//!
//! Error handling: transient errors (connection lost, dump thread killed, server restart) are retried
//! here with exponential backoff, resuming from the last confirmed position and filtering everything
//! already delivered; definite errors (purged binlog, access denied, undecodable event) are returned.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use mysql_async::binlog::events::Event;
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStream, BinlogStreamRequest, Conn, Opts};

use super::assemble::{Assembler, AssemblerConfig};
use super::error::{is_purged, MysqlCaptureError};
use super::events::{kind, RawEvent};
use super::metadata::{Collations, SchemaInfo};
use super::server;
use crate::backoff::Backoff;
use crate::capture::CaptureEvent;
use crate::model::{MariaGtidList, NodeId, Position, TableRef};
use tokio::task::JoinHandle;

const HEARTBEAT: Duration = Duration::from_secs(1);
/// No event, not even a heartbeat, for this long means the connection is dead.
const SILENCE: Duration = Duration::from_secs(10);
/// The first reconnect waits this long; each failure after doubles it, up to `BACKOFF_MAX`.
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// The common header of every binlog event (v4), which `Event::data` leaves out.
const EVENT_HEADER_BYTES: usize = 19;
/// Heartbeats for groups that touched no captured table are coalesced to one per interval.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

/// How to capture one MySQL/MariaDB source.
#[derive(Clone)]
pub struct MysqlSourceOptions {
    /// The node the transactions are tagged with.
    pub node: NodeId,
    /// `mysql://user:password@host:port/db`. Never logged.
    pub url: String,
    /// The replica server id this link registers with; distinct per link and from every real server.
    pub server_id: u32,
    /// The tables to capture (`database.table`); everything else in the server-wide binlog is skipped.
    pub tables: Vec<TableRef>,
    /// A transaction whose changes exceed this many bytes spills to `spill_dir`.
    pub memory_budget_bytes: usize,
    pub spill_dir: PathBuf,
    /// Leave out the rows of transactions tandem applied (flagged `skip_replication`) instead of
    /// decoding them only for the loop guard to drop them: a link's reader. Off for `tandem tail`.
    pub drop_applied: bool,
    /// Resume after this position; `None` starts at the current end of the binlog.
    pub start: Option<Position>,
}

impl std::fmt::Debug for MysqlSourceOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MysqlSourceOptions")
            .field("node", &self.node)
            .field("url", &"<redacted>")
            .field("server_id", &self.server_id)
            .field("tables", &self.tables)
            .field("memory_budget_bytes", &self.memory_budget_bytes)
            .field("spill_dir", &self.spill_dir)
            .field("start", &self.start.as_ref().map(ToString::to_string))
            .finish()
    }
}

/// A stream of committed transactions from one MySQL/MariaDB source.
pub struct MysqlSource {
    opts: Opts,
    server_id: u32,
    mariadb: bool,
    checksum: bool,
    /// Ask the server to leave out tandem's own transactions (see `open_dump`).
    drop_applied: bool,
    assembler: Assembler,
    /// Resume point for the next connection: the last confirmed position, else the start.
    resume: Position,
    binlog: Option<BinlogStream>,
    /// Connection for information_schema reads, opened on demand.
    meta_conn: Option<Conn>,
    /// An information_schema read in flight. It runs as its own task so that a dropped `next`
    /// future neither loses its progress nor leaves a half-read connection behind.
    schema_fetch: Option<SchemaFetch>,
    /// A GTID state lookup in flight for a heartbeat that passed events the server left out (see
    /// `step`); a task of its own for the same reason as `schema_fetch`.
    gtid_fetch: Option<GtidFetch>,
    /// A GTID state lookup failed on this connection (warned once).
    gtid_lookup_failed: bool,
    /// An event taken from the stream but not yet fed (kept across cancellation).
    pending: Option<Event>,
    backoff: Backoff,
    last_heartbeat: Option<Instant>,
    reconnects: u64,
    bytes_read: u64,
}

/// Work on the metadata connection, running as a task of its own (see `on_meta_conn`).
type MetaTask<T> = JoinHandle<(Option<Conn>, Result<T, MysqlCaptureError>)>;

type GtidFetch = MetaTask<Option<MariaGtidList>>;

struct SchemaFetch(TableRef, MetaTask<SchemaInfo>);

impl std::fmt::Debug for MysqlSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MysqlSource")
            .field("server_id", &self.server_id)
            .field("mariadb", &self.mariadb)
            .field("resume", &self.resume.to_string())
            .field("connected", &self.binlog.is_some())
            .finish_non_exhaustive()
    }
}

impl MysqlSource {
    /// Connects, resolves the start position and opens the binlog dump.
    pub async fn connect(options: MysqlSourceOptions) -> Result<MysqlSource, MysqlCaptureError> {
        let opts = server::parse_url(&options.url)?;
        let mut conn = server::connect(&opts).await?;
        let mariadb = server::is_mariadb(&mut conn).await?;
        let checksum = server::binlog_checksum(&mut conn).await?;
        let collations = server::collations(&mut conn).await?;
        let start = match options.start {
            Some(p) => p,
            None => server::current_position(&mut conn).await?,
        };
        let config = AssemblerConfig {
            origin: options.node,
            tables: options.tables.into_iter().collect::<HashSet<_>>(),
            memory_budget_bytes: options.memory_budget_bytes,
            spill_dir: options.spill_dir,
            drop_marked: options.drop_applied,
        };
        let mut assembler = Assembler::new(config, &start)?;
        assembler.collations = Collations(collations);
        let mut source = MysqlSource {
            opts,
            server_id: options.server_id,
            mariadb,
            checksum,
            drop_applied: options.drop_applied,
            assembler,
            resume: start,
            binlog: None,
            meta_conn: Some(conn),
            schema_fetch: None,
            gtid_fetch: None,
            gtid_lookup_failed: false,
            pending: None,
            backoff: Backoff::new(BACKOFF_MIN, BACKOFF_MAX),
            last_heartbeat: None,
            reconnects: 0,
            bytes_read: 0,
        };
        source.open_dump().await?;
        Ok(source)
    }

    /// The next transaction or heartbeat. Transient failures are retried inside (reconnecting with
    /// backoff); an error returned here is definite.
    ///
    /// Cancel-safe: dropping the future loses nothing; an event already read from the connection is
    /// kept and processed by the next call, and a half-made connection is simply made again.
    pub async fn next(&mut self) -> Result<CaptureEvent, MysqlCaptureError> {
        loop {
            match self.step().await {
                Ok(Some(ev)) => {
                    self.backoff.reset();
                    return Ok(ev);
                }
                Ok(None) => {}
                Err(e) if e.is_transient() => self.back_off(&e).await,
                Err(e) => return Err(e),
            }
        }
    }

    /// Records that everything up to `position` is durably applied: a reconnect resumes from here.
    pub fn confirm(&mut self, position: &Position) {
        if self.resume.is_within(position) {
            self.resume = position.clone();
        }
    }

    /// The position after the last transaction read (delivered or skipped).
    pub fn current_position(&self) -> Position {
        self.assembler.position()
    }

    /// Bytes of binlog events (header and body) read since the stream was opened.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// How many times the binlog stream was reopened after a failure.
    pub fn reconnects(&self) -> u64 {
        self.reconnects
    }

    /// The position the next reconnect resumes after.
    pub fn confirmed_position(&self) -> &Position {
        &self.resume
    }

    async fn step(&mut self) -> Result<Option<CaptureEvent>, MysqlCaptureError> {
        if self.binlog.is_none() {
            self.open_dump().await?;
        }
        let event = match self.pending.take() {
            Some(e) => e,
            None => self.read_event().await?,
        };
        if event.header().event_type_raw() == kind::TABLE_MAP {
            if let Some(table) = self.assembler.captured_table(event.data()) {
                if self.assembler.metadata.schema_info(&table).is_none() {
                    self.pending = Some(event);
                    let info = match self.load_schema_info(table.clone()).await {
                        Ok((_, info)) => info,
                        // Dropped since this event was written: with binlog_row_metadata=FULL the
                        // TABLE_MAP's own names still decode it (metadata::resolve decides).
                        Err(MysqlCaptureError::MissingTable { .. }) => SchemaInfo::default(),
                        Err(e) => return Err(e),
                    };
                    self.assembler.metadata.set_schema_info(table, info);
                    return Ok(None);
                }
            }
        }
        let h = event.header();
        // A heartbeat says how far the server read; past events it left out (tandem's own, see
        // `open_dump`), a GTID position learns from the server which transactions those were, so
        // that the link is not shown behind by them.
        if self.drop_applied && matches!(h.event_type_raw(), kind::HEARTBEAT | kind::HEARTBEAT_V2) {
            if let Some((file, offset)) = self.assembler.skipped_to(h.log_pos()) {
                self.pending = Some(event);
                // Not worth stopping the stream for, whatever went wrong: the next transaction in
                // the same GTID domain moves the position anyway, and a later heartbeat past more
                // left-out events asks again.
                let state = match self.gtid_state_at_end(file, offset).await {
                    Ok(state) => state,
                    Err(e) => {
                        if !self.gtid_lookup_failed {
                            tracing::warn!(error = %e, "cannot read the GTID state past tandem's own transactions, which the server left out; the link may show them as lag until the next local transaction (the account needs BINLOG MONITOR or REPLICATION CLIENT)");
                            self.gtid_lookup_failed = true;
                        }
                        None
                    }
                };
                self.assembler.cover(offset, &state.unwrap_or_default());
                return Ok(None);
            }
        }
        let raw = RawEvent {
            type_code: h.event_type_raw(),
            timestamp: h.timestamp(),
            server_id: h.server_id(),
            log_pos: h.log_pos(),
            flags: h.flags_raw(),
            body: event.data(),
        };
        let out = self.assembler.feed(raw)?;
        Ok(match out {
            Some(CaptureEvent::Heartbeat(p)) => {
                if self
                    .last_heartbeat
                    .is_some_and(|t| t.elapsed() < HEARTBEAT_EVERY)
                {
                    None
                } else {
                    self.last_heartbeat = Some(Instant::now());
                    Some(CaptureEvent::Heartbeat(p))
                }
            }
            other => other,
        })
    }

    async fn read_event(&mut self) -> Result<Event, MysqlCaptureError> {
        let Some(stream) = self.binlog.as_mut() else {
            return Err(MysqlCaptureError::StreamEnded);
        };
        let result = tokio::time::timeout(SILENCE, stream.next()).await;
        let err = match result {
            Ok(Some(Ok(event))) => {
                self.bytes_read += (EVENT_HEADER_BYTES + event.data().len()) as u64;
                return Ok(event);
            }
            Ok(Some(Err(e))) if is_purged(&e) => MysqlCaptureError::PurgedPosition {
                position: self.resume.to_string(),
                source: e,
            },
            Ok(Some(Err(e))) => MysqlCaptureError::Stream(e),
            Ok(None) => MysqlCaptureError::StreamEnded,
            Err(_) => MysqlCaptureError::Silent {
                secs: SILENCE.as_secs(),
            },
        };
        // Whatever went wrong, this connection is finished; the next step opens a new one.
        self.binlog = None;
        Err(err)
    }

    async fn load_schema_info(
        &mut self,
        table: TableRef,
    ) -> Result<(TableRef, SchemaInfo), MysqlCaptureError> {
        if self.schema_fetch.as_ref().is_none_or(|f| f.0 != table) {
            let t = table.clone();
            let task = self
                .on_meta_conn(move |c| Box::pin(async move { server::schema_info(c, &t).await }));
            self.schema_fetch = Some(SchemaFetch(table.clone(), task));
        }
        let Some(fetch) = self.schema_fetch.as_mut() else {
            return Err(MysqlCaptureError::StreamEnded);
        };
        let joined = (&mut fetch.1).await;
        self.schema_fetch = None;
        self.meta_result(joined).map(|info| (table, info))
    }

    async fn gtid_state_at_end(
        &mut self,
        file: String,
        offset: u64,
    ) -> Result<Option<MariaGtidList>, MysqlCaptureError> {
        let fetch = match self.gtid_fetch.take() {
            Some(f) => f,
            None => self.on_meta_conn(move |c| {
                Box::pin(async move { server::gtid_state_at_end(c, &file, offset).await })
            }),
        };
        let joined = self.gtid_fetch.insert(fetch).await;
        self.gtid_fetch = None;
        self.meta_result(joined)
    }

    /// Runs `work` on the connection for metadata reads (opened again if it is gone) as a task of
    /// its own: a dropped `next` future neither loses its progress nor leaves a half-read
    /// connection behind. The connection comes back unless the work failed transiently.
    fn on_meta_conn<T: Send + 'static>(
        &mut self,
        work: impl for<'c> FnOnce(&'c mut Conn) -> BoxFuture<'c, Result<T, MysqlCaptureError>>
            + Send
            + 'static,
    ) -> MetaTask<T> {
        let conn = self.meta_conn.take();
        let opts = self.opts.clone();
        tokio::spawn(async move {
            let mut conn = match conn {
                Some(c) => c,
                None => match server::connect(&opts).await {
                    Ok(c) => c,
                    Err(e) => return (None, Err(e)),
                },
            };
            let result = work(&mut conn).await;
            let keep = !result.as_ref().is_err_and(MysqlCaptureError::is_transient);
            (keep.then_some(conn), result)
        })
    }

    /// A finished [`Self::on_meta_conn`] task: its connection kept, its result.
    fn meta_result<T>(
        &mut self,
        joined: Result<(Option<Conn>, Result<T, MysqlCaptureError>), tokio::task::JoinError>,
    ) -> Result<T, MysqlCaptureError> {
        let (conn, result) = joined.map_err(|_| MysqlCaptureError::StreamEnded)?;
        self.meta_conn = conn;
        result
    }

    async fn open_dump(&mut self) -> Result<(), MysqlCaptureError> {
        self.binlog = None;
        self.pending = None;
        if let Some(fetch) = self.gtid_fetch.take() {
            fetch.abort();
        }
        self.gtid_lookup_failed = false;
        let mut conn = server::connect(&self.opts).await?;
        self.checksum = server::binlog_checksum(&mut conn).await?;
        let setup_err = |source| MysqlCaptureError::Query {
            what: "preparing the binlog dump session",
            source,
        };
        let period_ns = HEARTBEAT.as_nanos() as u64;
        conn.query_drop(format!("SET @master_heartbeat_period = {period_ns}"))
            .await
            .map_err(setup_err)?;
        let resume = self.resume.clone();
        self.assembler.restart(&resume, self.checksum)?;
        let (file, pos) = match &resume {
            Position::Binlog(b) => (b.file.clone(), b.offset),
            _ => (String::new(), 4),
        };
        let mut request = BinlogStreamRequest::new(self.server_id);
        if self.mariadb {
            // Capability 4 (MARIA_SLAVE_CAPABILITY_GTID): send GTID events as such, not as BEGIN.
            conn.query_drop("SET @mariadb_slave_capability = 4")
                .await
                .map_err(setup_err)?;
            // The dump thread of a session with `skip_replication` set does not send the events
            // flagged with it (what a MariaDB replica's `FILTER_ON_MASTER` asks for): tandem's own
            // transactions then never leave the server. The assembler still drops what comes.
            if self.drop_applied {
                if let Err(e) = conn.query_drop("SET SESSION skip_replication = 1").await {
                    if self.reconnects == 0 {
                        tracing::info!(error = %e, "tandem's own transactions are left out by the reader, not by the server: skip_replication not set on the dump session");
                    }
                }
            }
            if let Position::MariaGtid(g) = &resume {
                conn.exec_drop("SET @slave_connect_state = ?", (g.to_string(),))
                    .await
                    .map_err(setup_err)?;
                conn.query_drop("SET @slave_gtid_strict_mode = 0")
                    .await
                    .map_err(setup_err)?;
                conn.query_drop("SET @slave_gtid_ignore_duplicates = 0")
                    .await
                    .map_err(setup_err)?;
            }
        }
        let sids = match &resume {
            Position::MysqlGtid(set) => Some(super::setup::gtid_sids(set)?),
            _ => None,
        };
        request = request.with_filename(file.as_bytes()).with_pos(pos);
        if let Some(sids) = sids {
            request = request.with_gtid().with_gtid_set(sids);
        }
        let stream = conn.get_binlog_stream(request).await.map_err(|e| {
            if is_purged(&e) {
                MysqlCaptureError::PurgedPosition {
                    position: resume.to_string(),
                    source: e,
                }
            } else {
                MysqlCaptureError::Stream(e)
            }
        })?;
        tracing::info!(position = %resume, server_id = self.server_id, "binlog dump opened");
        self.binlog = Some(stream);
        Ok(())
    }

    async fn back_off(&mut self, error: &MysqlCaptureError) {
        self.binlog = None;
        self.reconnects += 1;
        let delay = self.backoff.next_delay();
        tracing::warn!(
            error = %error,
            cause = ?std::error::Error::source(error).map(ToString::to_string),
            attempt = self.backoff.attempts(),
            delay_ms = delay.as_millis() as u64,
            "binlog stream interrupted; reconnecting"
        );
        tokio::time::sleep(delay).await;
    }
}
