//! Binlog event bodies other than TABLE_MAP and rows: the events that frame transactions and carry
//! positions, including the MariaDB-only ones that mysql_common does not decode.
//!
//! Formats implemented (MySQL "Binary Log Event" docs; MariaDB KB "GTID_EVENT", "GTID_LIST_EVENT",
//! "BINLOG_CHECKPOINT_EVENT"):
//!
//! ```text
//!  QUERY          thread_id:4 exec_time:4 schema_len:1 error:2 status_len:2 status schema 0x00 query
//!  ROTATE         position:8 file-name
//!  XID            xid:8
//!  GTID (MySQL)   flags:1 sid:16 gno:8 [lt_type:1 last_committed:8 sequence:8
//!                 [immediate_commit_ts:7 (bit 55 = original follows) [original_commit_ts:7]]]
//!  GTID (MariaDB) seq_no:8 domain_id:4 flags2:1 [commit_id:8 if flags2 & 2]
//!  GTID_LIST      count:4 (low 28 bits) (domain:4 server_id:4 seq_no:8)*
//! ```
//!
//! Bodies arrive without the common header and without the checksum. Every parser is pure and
//! bounds-checked: malformed input gives a [`DecodeError`].

use super::types::{DecodeError, Reader};
use crate::model::{MariaGtid, MariaGtidList};

/// Event type codes used by the capture.
pub mod kind {
    pub const QUERY: u8 = 2;
    pub const STOP: u8 = 3;
    pub const ROTATE: u8 = 4;
    pub const FORMAT_DESCRIPTION: u8 = 15;
    pub const XID: u8 = 16;
    pub const TABLE_MAP: u8 = 19;
    pub const HEARTBEAT: u8 = 27;
    pub const MYSQL_GTID: u8 = 33;
    pub const MYSQL_ANONYMOUS_GTID: u8 = 34;
    pub const PARTIAL_UPDATE_ROWS: u8 = 39;
    pub const TRANSACTION_PAYLOAD: u8 = 40;
    pub const HEARTBEAT_V2: u8 = 41;
    pub const MYSQL_GTID_TAGGED: u8 = 42;
    pub const MARIADB_ANNOTATE_ROWS: u8 = 160;
    pub const MARIADB_BINLOG_CHECKPOINT: u8 = 161;
    pub const MARIADB_GTID: u8 = 162;
    pub const MARIADB_GTID_LIST: u8 = 163;
    pub const MARIADB_QUERY_COMPRESSED: u8 = 165;
    pub const MARIADB_ROWS_COMPRESSED_FIRST: u8 = 166;
    pub const MARIADB_ROWS_COMPRESSED_LAST: u8 = 171;
}

/// The header flag a session with `@@skip_replication=1` puts on its events.
pub const LOG_EVENT_SKIP_REPLICATION_F: u16 = 0x8000;

/// One event as the assembler sees it: header fields plus the body without checksum.
#[derive(Debug, Clone, Copy)]
pub struct RawEvent<'a> {
    pub type_code: u8,
    pub timestamp: u32,
    pub server_id: u32,
    /// End of this event in its binlog file; 0 for artificial events and events inside a
    /// compressed transaction payload.
    pub log_pos: u32,
    pub flags: u16,
    pub body: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryEvent {
    pub schema: String,
    pub query: String,
}

pub fn parse_query(body: &[u8]) -> Result<QueryEvent, DecodeError> {
    let mut r = Reader::new(body);
    r.take(8)?;
    let schema_len = usize::from(r.u8()?);
    r.take(2)?;
    let status_len = r.uint_le(2)? as usize;
    r.take(status_len)?;
    let schema = r.take(schema_len)?;
    r.take(1)?;
    Ok(QueryEvent {
        schema: String::from_utf8_lossy(schema).into_owned(),
        query: String::from_utf8_lossy(r.remaining()).into_owned(),
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotateEvent {
    pub position: u64,
    pub file: String,
}

pub fn parse_rotate(body: &[u8]) -> Result<RotateEvent, DecodeError> {
    let mut r = Reader::new(body);
    let position = r.uint_le(8)?;
    let name = r.remaining();
    if name.is_empty() || !name.iter().all(|b| b.is_ascii_graphic()) {
        return Err(DecodeError::Malformed("ROTATE file name"));
    }
    Ok(RotateEvent {
        position,
        file: String::from_utf8_lossy(name).into_owned(),
    })
}

pub fn parse_xid(body: &[u8]) -> Result<u64, DecodeError> {
    Reader::new(body).uint_le(8)
}

/// A MariaDB GTID event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MariaGtidEvent {
    pub gtid: MariaGtid,
    /// `FL_STANDALONE`: the transaction is one statement (DDL) with no BEGIN/COMMIT around it.
    pub standalone: bool,
}

pub fn parse_mariadb_gtid(body: &[u8], server_id: u32) -> Result<MariaGtidEvent, DecodeError> {
    let mut r = Reader::new(body);
    let seq = r.uint_le(8)?;
    let domain = r.uint_le(4)? as u32;
    let flags2 = r.u8()?;
    Ok(MariaGtidEvent {
        gtid: MariaGtid {
            domain,
            server_id,
            seq,
        },
        standalone: flags2 & 1 != 0,
    })
}

/// A MariaDB GTID_LIST event: the binlog state at the start of a file.
pub fn parse_gtid_list(body: &[u8]) -> Result<MariaGtidList, DecodeError> {
    let mut r = Reader::new(body);
    let count = (r.uint_le(4)? & 0x0FFF_FFFF) as usize;
    if count.saturating_mul(16) > r.remaining().len() {
        return Err(DecodeError::Malformed("GTID_LIST count"));
    }
    let mut list = MariaGtidList::default();
    for _ in 0..count {
        let domain = r.uint_le(4)? as u32;
        let server_id = r.uint_le(4)? as u32;
        let seq = r.uint_le(8)?;
        list.advance(MariaGtid {
            domain,
            server_id,
            seq,
        });
    }
    Ok(list)
}

/// A MySQL GTID event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MysqlGtidEvent {
    /// Source server UUID, lowercase hyphenated.
    pub uuid: String,
    pub gno: u64,
    /// `immediate_commit_timestamp`, microseconds since the epoch, when the event carries it.
    pub commit_micros: Option<i64>,
}

pub fn parse_mysql_gtid(body: &[u8]) -> Result<MysqlGtidEvent, DecodeError> {
    let mut r = Reader::new(body);
    r.u8()?;
    let sid: [u8; 16] = r
        .take(16)?
        .try_into()
        .map_err(|_| DecodeError::Malformed("GTID sid"))?;
    let gno = r.uint_le(8)?;
    let mut commit_micros = None;
    // Logical clock (MySQL 5.7+) and commit timestamps (8.0.1+) are optional trailers.
    if r.remaining().len() >= 17 && r.u8()? == 2 {
        r.take(16)?;
        if r.remaining().len() >= 7 {
            let ts = r.uint_le(7)?;
            commit_micros = Some((ts & ((1 << 55) - 1)) as i64);
        }
    }
    Ok(MysqlGtidEvent {
        uuid: uuid_text(&sid),
        gno,
        commit_micros,
    })
}

fn uuid_text(u: &[u8; 16]) -> String {
    let mut out = String::with_capacity(36);
    for (i, b) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push_str(&format!("{b:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mariadb_gtid_and_list() {
        let mut b = 42u64.to_le_bytes().to_vec();
        b.extend(3u32.to_le_bytes());
        b.push(1);
        let g = parse_mariadb_gtid(&b, 7).unwrap();
        assert_eq!(g.gtid.to_string(), "3-7-42");
        assert!(g.standalone);

        let mut l = 2u32.to_le_bytes().to_vec();
        for (d, s, q) in [(0u32, 1u32, 10u64), (2, 5, 99)] {
            l.extend(d.to_le_bytes());
            l.extend(s.to_le_bytes());
            l.extend(q.to_le_bytes());
        }
        assert_eq!(parse_gtid_list(&l).unwrap().to_string(), "0-1-10,2-5-99");
        assert!(parse_gtid_list(&[9, 0, 0, 0, 1]).is_err());
    }

    #[test]
    fn parses_query_and_rotate() {
        let mut b = vec![0u8; 8];
        b.push(2);
        b.extend([0, 0]);
        b.extend(3u16.to_le_bytes());
        b.extend([0xAA, 0xBB, 0xCC]);
        b.extend(b"db\0ALTER TABLE t ADD c INT");
        let q = parse_query(&b).unwrap();
        assert_eq!(q.schema, "db");
        assert_eq!(q.query, "ALTER TABLE t ADD c INT");

        let mut r = 4u64.to_le_bytes().to_vec();
        r.extend(b"bin.000002");
        assert_eq!(parse_rotate(&r).unwrap().file, "bin.000002");
        let mut r = 4u64.to_le_bytes().to_vec();
        r.extend(b"bin.000002\x01\xfe\x00\x9c");
        assert!(parse_rotate(&r).is_err());
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80)) {
            let _ = parse_query(&data);
            let _ = parse_rotate(&data);
            let _ = parse_xid(&data);
            let _ = parse_mariadb_gtid(&data, 1);
            let _ = parse_gtid_list(&data);
            let _ = parse_mysql_gtid(&data);
        }
    }
}
