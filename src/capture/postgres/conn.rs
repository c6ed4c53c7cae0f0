//! The streaming replication connection: startup in `replication=database` mode, authentication
//! (trust, cleartext, md5, SCRAM-SHA-256), simple queries (IDENTIFY_SYSTEM, CREATE_REPLICATION_SLOT,
//! START_REPLICATION) and the CopyBoth sub-protocol that carries WAL data.
//!
//! From "Streaming Replication Protocol": "To initiate streaming replication, the frontend sends the
//! replication parameter in the startup message. … Only the simple query protocol can be used in
//! walsender mode." START_REPLICATION answers with CopyBothResponse ('W'), a message postgres-protocol
//! does not parse, so this module frames backend messages itself and uses postgres-protocol only to
//! build frontend messages and for the SCRAM exchange.
//!
//! Reads go through an internal buffer and writes through a queue that is drained with `write_buf`, so
//! dropping a future of this module between awaits loses no bytes (the stream relies on that for its
//! cancel safety).

use std::time::Duration;

use tokio::time::Instant;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use postgres_protocol::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::error::PgCaptureError;
use super::tls::{ConnParams, Socket, SslMode};

/// Session settings that make the walsender print values in the one form `types.rs` parses.
pub const SESSION_OPTIONS: &str = "-c DateStyle=ISO -c IntervalStyle=iso_8601 \
     -c extra_float_digits=3 -c TimeZone=UTC -c bytea_output=hex -c client_encoding=UTF8";

/// One backend message: its tag and body.
#[derive(Debug)]
pub struct BackendMessage {
    pub tag: u8,
    pub body: Bytes,
}

/// What a CopyData message of the replication stream carries (server to client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicationMessage {
    /// "XLogData (B): Byte1('w') … Int64 The starting point of the WAL data in this message. Int64 The
    /// current end of WAL on the server. Int64 The server's system clock at the time of transmission,
    /// as microseconds since midnight on 2000-01-01. Byten A section of the WAL data stream."
    XLogData {
        wal_start: u64,
        wal_end: u64,
        data: Bytes,
    },
    /// "Primary keepalive message (B): Byte1('k') … Int64 The current end of WAL on the server. Int64
    /// The server's system clock … Byte1 1 means that the client should reply to this message as soon
    /// as possible, to avoid a timeout disconnect. 0 otherwise."
    Keepalive { wal_end: u64, reply: bool },
}

impl ReplicationMessage {
    pub fn parse(mut b: Bytes) -> Result<ReplicationMessage, PgCaptureError> {
        let short = || PgCaptureError::Protocol("truncated replication message".into());
        if b.is_empty() {
            return Err(short());
        }
        match b.get_u8() {
            b'w' if b.len() >= 24 => {
                let wal_start = b.get_u64();
                let wal_end = b.get_u64();
                b.advance(8);
                Ok(ReplicationMessage::XLogData {
                    wal_start,
                    wal_end,
                    data: b,
                })
            }
            b'k' if b.len() >= 17 => {
                let wal_end = b.get_u64();
                b.advance(8);
                Ok(ReplicationMessage::Keepalive {
                    wal_end,
                    reply: b.get_u8() == 1,
                })
            }
            b'w' | b'k' => Err(short()),
            other => Err(PgCaptureError::Protocol(format!(
                "unknown replication message {other:#04x}"
            ))),
        }
    }
}

/// How much the socket holds before a read in gulp mode wakes (see [`ReplConn::recv`]).
const GULP_BYTES: u32 = 64 * 1024;

/// How long a read in gulp mode waits for [`GULP_BYTES`] before it takes what is there.
const GULP_WAIT: Duration = Duration::from_millis(10);

/// A replication-mode connection.
pub struct ReplConn {
    socket: Socket,
    rbuf: BytesMut,
    wbuf: BytesMut,
    /// Whether the socket's low-water mark is at [`GULP_BYTES`] now.
    lowat: bool,
    /// The low-water mark cannot be raised here (`Socket::set_recv_lowat` said so, or failed):
    /// reads never wait for a socketful.
    lowat_refused: bool,
    /// When the read in gulp mode under way stops waiting for a socketful. Kept here, not in the
    /// read's future, so that a read cancelled and started again (the stream's status timer, the
    /// link's confirmations) waits no longer in all.
    gulp_deadline: Option<Instant>,
    stats: ReadStats,
}

/// Socket reads of a connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadStats {
    pub reads: u64,
    /// Reads in gulp mode that got their socketful in time, and the bytes they got.
    pub gulped_reads: u64,
    pub gulped_bytes: u64,
}

impl ReplConn {
    /// Connects, authenticates and waits for ReadyForQuery.
    pub async fn connect(p: &ConnParams) -> Result<ReplConn, PgCaptureError> {
        let socket = Socket::connect(p).await?;
        let mut c = ReplConn {
            socket,
            rbuf: BytesMut::with_capacity(1 << 16),
            wbuf: BytesMut::new(),
            lowat: false,
            lowat_refused: false,
            gulp_deadline: None,
            stats: ReadStats::default(),
        };
        let params = [
            ("user", p.user.as_str()),
            ("database", p.dbname.as_str()),
            ("replication", "database"),
            ("application_name", "tandem"),
            ("options", SESSION_OPTIONS),
        ];
        frontend::startup_message(params.iter().copied(), &mut c.wbuf)?;
        c.flush().await?;
        c.authenticate(p).await?;
        loop {
            let m = c.read_message().await?;
            match m.tag {
                b'Z' => return Ok(c),
                b'E' => return Err(server_error(&m.body)),
                // ParameterStatus, BackendKeyData, NoticeResponse: nothing tandem needs.
                _ => {}
            }
        }
    }

    async fn authenticate(&mut self, p: &ConnParams) -> Result<(), PgCaptureError> {
        let password = || {
            p.password().map(str::as_bytes).ok_or_else(|| {
                PgCaptureError::Auth(format!(
                    "the server asks user {} for a password and the URL has none",
                    p.user
                ))
            })
        };
        let mut scram: Option<ScramSha256> = None;
        // SCRAM ends with the server proving it knows the password (SASLFinal); an
        // AuthenticationOk before that proof is not accepted.
        let mut scram_proved = false;
        loop {
            let mut m = self.read_message().await?;
            match m.tag {
                b'E' => {
                    let e = server_error(&m.body);
                    return Err(match e {
                        PgCaptureError::Server { ref code, .. } if code.starts_with("28") => {
                            PgCaptureError::Auth(e.to_string())
                        }
                        other => other,
                    });
                }
                b'R' if m.body.len() >= 4 => {}
                _ => return Err(PgCaptureError::Protocol("expected authentication".into())),
            }
            match m.body.get_i32() {
                0 if scram.is_some() && !scram_proved => {
                    return Err(PgCaptureError::Auth(
                        "the server ended SCRAM authentication without proving it knows the password (a server in the middle?); fix: check the host, and use sslmode=verify-full"
                            .into(),
                    ))
                }
                0 => return Ok(()),
                3 if !self.socket.is_tls()
                    && !self.socket.is_local()
                    && p.sslmode != SslMode::Disable =>
                {
                    return Err(PgCaptureError::Auth(format!(
                        "the server asks user {} for the password in clear text over an unencrypted connection (sslmode=prefer fell back to no TLS); fix: enable TLS on the server, or use scram-sha-256 in pg_hba.conf, or set sslmode=disable to allow it knowingly",
                        p.user
                    )))
                }
                3 => frontend::password_message(password()?, &mut self.wbuf)?,
                5 if m.body.len() >= 4 => {
                    let salt = [m.body[0], m.body[1], m.body[2], m.body[3]];
                    let hash = postgres_protocol::authentication::md5_hash(
                        p.user.as_bytes(),
                        password()?,
                        salt,
                    );
                    frontend::password_message(hash.as_bytes(), &mut self.wbuf)?;
                }
                10 => {
                    let offered = m.body.split(|&b| b == 0).any(|s| s == b"SCRAM-SHA-256");
                    if !offered {
                        return Err(PgCaptureError::Auth(
                            "the server offers no SASL mechanism tandem speaks (SCRAM-SHA-256)"
                                .into(),
                        ));
                    }
                    let s = ScramSha256::new(password()?, ChannelBinding::unsupported());
                    frontend::sasl_initial_response("SCRAM-SHA-256", s.message(), &mut self.wbuf)?;
                    scram = Some(s);
                }
                11 => {
                    let s = scram.as_mut().ok_or_else(|| {
                        PgCaptureError::Protocol("SASL continue without SASL start".into())
                    })?;
                    s.update(&m.body)
                        .map_err(|e| PgCaptureError::Auth(format!("SCRAM: {e}")))?;
                    frontend::sasl_response(s.message(), &mut self.wbuf)?;
                }
                12 => {
                    let s = scram.as_mut().ok_or_else(|| {
                        PgCaptureError::Protocol("SASL final without SASL start".into())
                    })?;
                    s.finish(&m.body)
                        .map_err(|e| PgCaptureError::Auth(format!("SCRAM: {e}")))?;
                    scram_proved = true;
                }
                other => {
                    return Err(PgCaptureError::Auth(format!(
                        "authentication method {other} is not supported (use trust, md5 or scram-sha-256)"
                    )))
                }
            }
            self.flush().await?;
        }
    }

    /// Socket reads so far.
    pub fn read_stats(&self) -> ReadStats {
        self.stats
    }

    /// Moves the socket's low-water mark. A mark that cannot be raised turns gulp mode off for the
    /// connection; one that cannot be lowered again is an I/O error (the stream reconnects, on a
    /// new socket).
    fn set_lowat(&mut self, on: bool) -> Result<(), PgCaptureError> {
        if on == self.lowat || (on && self.lowat_refused) {
            return Ok(());
        }
        match self.socket.set_recv_lowat(if on { GULP_BYTES } else { 1 }) {
            Ok(took) => {
                self.lowat = on && took;
                self.lowat_refused |= !took;
                Ok(())
            }
            Err(e) if on => {
                tracing::debug!(error = %e, "SO_RCVLOWAT refused; the replication stream is read message by message");
                self.lowat_refused = true;
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Reads one whole backend message. Cancel-safe: partial input stays in the buffer.
    pub async fn read_message(&mut self) -> Result<BackendMessage, PgCaptureError> {
        self.read_message_in(false).await
    }

    /// [`ReplConn::read_message`], in gulp mode when `gulp` (see [`ReplConn::recv`]).
    async fn read_message_in(&mut self, gulp: bool) -> Result<BackendMessage, PgCaptureError> {
        loop {
            if let Some(m) = split_message(&mut self.rbuf)? {
                return Ok(m);
            }
            let n = if gulp && !self.lowat_refused {
                self.read_gulp().await?
            } else {
                self.gulp_deadline = None;
                self.set_lowat(false)?;
                self.socket.read_buf(&mut self.rbuf).await?
            };
            self.stats.reads += 1;
            if n == 0 {
                return Err(PgCaptureError::Closed);
            }
        }
    }

    /// One read in gulp mode: wait until the socket holds [`GULP_BYTES`], or until
    /// [`GULP_WAIT`] after the wait began, then take what is there.
    async fn read_gulp(&mut self) -> Result<usize, PgCaptureError> {
        let deadline = *self
            .gulp_deadline
            .get_or_insert_with(|| Instant::now() + GULP_WAIT);
        if Instant::now() < deadline {
            self.set_lowat(true)?;
            if self.lowat {
                // Room for a whole socketful in one read.
                self.rbuf.reserve(2 * GULP_BYTES as usize);
                let read = self.socket.read_buf(&mut self.rbuf);
                if let Ok(n) = tokio::time::timeout_at(deadline, read).await {
                    self.gulp_deadline = None;
                    let n = n?;
                    self.stats.gulped_reads += 1;
                    self.stats.gulped_bytes += n as u64;
                    return Ok(n);
                }
            }
        }
        // Less than a socketful came in time: take what is there (lowering the mark wakes the
        // read when anything is queued; see `tls::lowat_wakes_reader`).
        self.set_lowat(false)?;
        let n = self.socket.read_buf(&mut self.rbuf).await?;
        self.gulp_deadline = None;
        Ok(n)
    }

    /// Writes everything queued. Cancel-safe: unsent bytes stay queued.
    pub async fn flush(&mut self) -> Result<(), PgCaptureError> {
        while !self.wbuf.is_empty() {
            self.socket.write_buf(&mut self.wbuf).await?;
        }
        self.socket.flush().await?;
        Ok(())
    }

    /// Runs one simple query and returns its rows as text (NULL as `None`).
    pub async fn simple_query(
        &mut self,
        sql: &str,
    ) -> Result<Vec<Vec<Option<String>>>, PgCaptureError> {
        frontend::query(sql, &mut self.wbuf)?;
        self.flush().await?;
        let mut rows = Vec::new();
        let mut error = None;
        loop {
            let m = self.read_message().await?;
            match m.tag {
                b'D' => rows.push(data_row(m.body)?),
                b'E' => error = Some(server_error(&m.body)),
                b'Z' => return error.map_or(Ok(rows), Err),
                _ => {}
            }
        }
    }

    /// Sends START_REPLICATION and waits for CopyBothResponse.
    pub async fn start_replication(&mut self, sql: &str) -> Result<(), PgCaptureError> {
        frontend::query(sql, &mut self.wbuf)?;
        self.flush().await?;
        loop {
            let m = self.read_message().await?;
            match m.tag {
                b'W' => return Ok(()),
                b'E' => return Err(server_error(&m.body)),
                b'N' => {}
                other => {
                    return Err(PgCaptureError::Protocol(format!(
                        "expected CopyBothResponse, got {:?}",
                        other as char
                    )))
                }
            }
        }
    }

    /// The next replication message of the CopyBoth stream.
    ///
    /// `gulp` is for the middle of a large transaction, when nobody waits on the next message
    /// (the rest of its transaction comes first): the read then waits until the socket holds
    /// [`GULP_BYTES`] (`SO_RCVLOWAT`), or [`GULP_WAIT`] passed, instead of waking for every
    /// message. The walsender writes each decoded message to the socket as soon as it has it; a
    /// reader that takes each as it comes costs a wake-up of the reader, and the wake-up work in
    /// the walsender's own send, per message: measured on a 200,000-row transaction, the source's
    /// walsender spent about three times the CPU it spends for a native subscriber, most of it in
    /// the kernel. Without `gulp` (and on a Unix socket, or a kernel that does not wake a reader
    /// when the mark is lowered) a message is read as soon as it arrives; one that arrives while
    /// the mark is up waits at most [`GULP_WAIT`].
    pub async fn recv(&mut self, gulp: bool) -> Result<ReplicationMessage, PgCaptureError> {
        loop {
            let m = self.read_message_in(gulp).await?;
            match m.tag {
                b'd' => return ReplicationMessage::parse(m.body),
                b'E' => return Err(server_error(&m.body)),
                b'c' | b'C' | b'Z' => return Err(PgCaptureError::Closed),
                _ => {}
            }
        }
    }

    /// Queues a standby status update: "Byte1('r') … Int64 The location of the last WAL byte + 1
    /// received and written to disk in the standby. Int64 The location of the last WAL byte + 1 flushed
    /// to disk in the standby. Int64 The location of the last WAL byte + 1 applied in the standby.
    /// Int64 The client's system clock … Byte1 If 1, the client requests the server to reply to this
    /// message immediately."
    pub fn queue_status(&mut self, write: u64, flush: u64, apply: u64) {
        let mut msg = BytesMut::with_capacity(34);
        msg.put_u8(b'r');
        msg.put_u64(write);
        msg.put_u64(flush);
        msg.put_u64(apply);
        msg.put_i64(pg_now());
        msg.put_u8(0);
        if let Ok(cd) = frontend::CopyData::new(msg.freeze()) {
            cd.write(&mut self.wbuf);
        }
    }
}

/// Microseconds since 2000-01-01 by the local clock.
fn pg_now() -> i64 {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    unix - super::assemble::PG_EPOCH_OFFSET_MICROS
}

fn data_row(mut b: Bytes) -> Result<Vec<Option<String>>, PgCaptureError> {
    let short = || PgCaptureError::Protocol("truncated DataRow".into());
    if b.len() < 2 {
        return Err(short());
    }
    let n = b.get_i16();
    let mut row = Vec::new();
    for _ in 0..n {
        if b.len() < 4 {
            return Err(short());
        }
        let len = b.get_i32();
        if len < 0 {
            row.push(None);
            continue;
        }
        let len = len as usize;
        if b.len() < len {
            return Err(short());
        }
        let v = b.split_to(len);
        row.push(Some(String::from_utf8_lossy(&v).into_owned()));
    }
    Ok(row)
}

/// An ErrorResponse: "(Byte1 field type, String value)* terminated by a zero byte".
pub fn server_error(body: &[u8]) -> PgCaptureError {
    let (mut code, mut message, mut detail, mut hint) = (String::new(), String::new(), None, None);
    let mut rest = body;
    while let Some((&kind, tail)) = rest.split_first() {
        if kind == 0 {
            break;
        }
        let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
        let value = String::from_utf8_lossy(&tail[..end]).into_owned();
        match kind {
            b'C' => code = value,
            b'M' => message = value,
            b'D' => detail = Some(value),
            b'H' => hint = Some(value),
            _ => {}
        }
        rest = tail.get(end + 1..).unwrap_or_default();
    }
    PgCaptureError::Server {
        code,
        message,
        detail,
        hint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replication_messages_parse_and_refuse_truncation() {
        let mut k = BytesMut::new();
        k.put_u8(b'k');
        k.put_u64(0x16_B374_D848);
        k.put_i64(1);
        k.put_u8(1);
        assert_eq!(
            ReplicationMessage::parse(k.clone().freeze()).unwrap(),
            ReplicationMessage::Keepalive {
                wal_end: 0x16_B374_D848,
                reply: true
            }
        );
        for n in 0..k.len() {
            assert!(ReplicationMessage::parse(k.clone().freeze().slice(..n)).is_err());
        }
        let e = server_error(b"SERROR\0C42P01\0Mrelation \"x\" does not exist\0\0");
        assert_eq!(e.sql_state(), Some("42P01"));
        assert!(!e.is_transient());
        let _ = server_error(b"C4");
    }
}

#[cfg(test)]
mod framing_tests {
    use super::*;

    #[test]
    fn a_huge_length_field_reserves_no_huge_buffer() {
        let mut b = BytesMut::new();
        b.extend_from_slice(&[b'd', 0x3F, 0xFF, 0xFF, 0xFF, 1, 2, 3]);
        assert!(split_message(&mut b)
            .expect("a 1 GiB message is allowed")
            .is_none());
        assert!(b.capacity() < 4 * READ_CHUNK, "reserved {}", b.capacity());
        let mut bad = BytesMut::from(&[b'd', 0x7F, 0xFF, 0xFF, 0xFF][..]);
        assert!(split_message(&mut bad).is_err(), "2 GiB is refused");
        let mut whole = BytesMut::from(&[b'Z', 0, 0, 0, 5, b'I', b'x'][..]);
        let m = split_message(&mut whole).expect("frame").expect("whole");
        assert_eq!((m.tag, &m.body[..]), (b'Z', &b"I"[..]));
        assert_eq!(&whole[..], b"x");
    }

    /// A local peer for `ReplConn::connect`: its port, and a task that accepts one connection,
    /// reads the startup message and runs `script` on the socket.
    async fn peer<F, Fut>(script: F) -> (u16, tokio::task::JoinHandle<tokio::net::TcpStream>)
    where
        F: FnOnce(tokio::net::TcpStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = tokio::net::TcpStream> + Send,
    {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut startup = vec![0u8; 4096];
            let _ = s.read(&mut startup).await;
            script(s).await
        });
        (port, task)
    }

    /// A connection to a peer that lets it in without a password, and the peer's end.
    async fn trusted_pair() -> (ReplConn, tokio::net::TcpStream) {
        use tokio::io::AsyncWriteExt;
        let (port, peer) = peer(|mut s| async move {
            // AuthenticationOk, then ReadyForQuery.
            s.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 0, b'Z', 0, 0, 0, 5, b'I'])
                .await
                .expect("write");
            s
        })
        .await;
        let p = ConnParams::parse(&format!("postgres://u@127.0.0.1:{port}/db?sslmode=disable"))
            .expect("params");
        let conn = ReplConn::connect(&p).await.expect("connect");
        (conn, peer.await.expect("peer"))
    }

    /// One small CopyData message.
    const SMALL: [u8; 8] = [b'd', 0, 0, 0, 7, b'a', b'b', b'c'];

    #[tokio::test]
    async fn a_read_in_gulp_mode_takes_less_than_a_socketful_once_its_wait_is_over() {
        use tokio::io::AsyncWriteExt;
        let (mut conn, mut peer) = trusted_pair().await;
        peer.write_all(&SMALL).await.expect("write");
        // Lowering the mark after the wait must wake the read: the peer sends nothing more.
        let m = tokio::time::timeout(Duration::from_secs(10), conn.read_message_in(true))
            .await
            .expect("the read ended")
            .expect("a message");
        assert_eq!((m.tag, &m.body[..]), (b'd', &b"abc"[..]));
        assert_eq!(conn.read_stats().gulped_reads, 0, "no socketful came");
    }

    #[tokio::test]
    async fn a_read_in_gulp_mode_cancelled_over_and_over_still_ends_by_its_deadline() {
        use tokio::io::AsyncWriteExt;
        let (mut conn, mut peer) = trusted_pair().await;
        peer.write_all(&SMALL).await.expect("write");
        // Each attempt is cancelled before GULP_WAIT; the wait must not start over each time.
        let mut got = None;
        for _ in 0..1000 {
            let attempt = conn.read_message_in(true);
            if let Ok(m) = tokio::time::timeout(Duration::from_millis(2), attempt).await {
                got = Some(m.expect("a message"));
                break;
            }
        }
        let m = got.expect("the read ended within 1,000 cancelled attempts");
        assert_eq!(&m.body[..], b"abc");
        // Then a message read outside gulp mode comes at once.
        peer.write_all(&SMALL).await.expect("write");
        let m = tokio::time::timeout(Duration::from_secs(10), conn.read_message())
            .await
            .expect("the read ended")
            .expect("a message");
        assert_eq!(&m.body[..], b"abc");
    }

    #[tokio::test]
    async fn a_socketful_is_taken_in_one_read_in_gulp_mode() {
        use tokio::io::AsyncWriteExt;
        let (mut conn, mut peer) = trusted_pair().await;
        let burst: Vec<u8> = SMALL
            .iter()
            .copied()
            .cycle()
            .take(SMALL.len() * 20_000)
            .collect();
        let writer = tokio::spawn(async move {
            peer.write_all(&burst).await.expect("write");
            peer
        });
        for _ in 0..20_000 {
            let m = conn.read_message_in(true).await.expect("a message");
            assert_eq!(&m.body[..], b"abc");
        }
        let _peer = writer.await.expect("writer");
        let stats = conn.read_stats();
        if super::super::tls::lowat_wakes_reader() {
            assert!(stats.gulped_reads > 0, "{stats:?}");
            assert!(
                stats.gulped_bytes >= u64::from(GULP_BYTES) * stats.gulped_reads / 2,
                "the reads that waited got about a socketful each: {stats:?}"
            );
        }
    }

    /// A peer that answers the SCRAM client-first message with AuthenticationOk, skipping the proof
    /// that it knows the password, is refused.
    #[tokio::test]
    async fn authentication_ok_in_the_middle_of_scram_is_refused() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (port, peer) = peer(|mut s| async move {
            let mut buf = vec![0u8; 4096];
            let mut sasl = BytesMut::new();
            sasl.put_u8(b'R');
            sasl.put_i32(4 + 4 + 14 + 1);
            sasl.put_i32(10);
            sasl.put_slice(b"SCRAM-SHA-256\0\0");
            s.write_all(&sasl).await.expect("write");
            let _ = s.read(&mut buf).await; // client-first message
            s.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 0])
                .await
                .expect("write");
            let _ = s.read(&mut buf).await;
            s
        })
        .await;
        let p = ConnParams::parse(&format!(
            "postgres://u:pw@127.0.0.1:{port}/db?sslmode=disable"
        ))
        .expect("params");
        let err = match ReplConn::connect(&p).await {
            Ok(_) => panic!("a server that skipped the SCRAM proof was accepted"),
            Err(e) => e,
        };
        assert!(err.to_string().contains("without proving"), "{err}");
        peer.abort();
    }
}

/// The largest backend message accepted: a data row or WAL record carries at most one 1 GB field
/// (PostgreSQL's own limit) and its framing.
const MAX_MESSAGE: usize = (1 << 30) + (1 << 20);

/// How much buffer one read grows by: a length field alone never reserves a huge buffer.
const READ_CHUNK: usize = 1 << 20;

/// Takes one whole message off the front of `rbuf`, or `None` until more input arrived (after
/// making room for it, a chunk at a time).
fn split_message(rbuf: &mut BytesMut) -> Result<Option<BackendMessage>, PgCaptureError> {
    if rbuf.len() < 5 {
        rbuf.reserve(5);
        return Ok(None);
    }
    let len = i32::from_be_bytes([rbuf[1], rbuf[2], rbuf[3], rbuf[4]]);
    let len = usize::try_from(len)
        .ok()
        .filter(|&l| (4..=MAX_MESSAGE).contains(&l))
        .ok_or_else(|| PgCaptureError::Protocol(format!("invalid message length {len}")))?;
    if rbuf.len() > len {
        let tag = rbuf[0];
        rbuf.advance(5);
        let body = rbuf.split_to(len - 4).freeze();
        return Ok(Some(BackendMessage { tag, body }));
    }
    rbuf.reserve((len + 1 - rbuf.len()).min(READ_CHUNK));
    Ok(None)
}
