//! Binlog events -> the MySQL/MariaDB assembler: every event parser (QUERY, ROTATE, XID, both GTID
//! kinds, GTID_LIST, TABLE_MAP, rows v1/v2) behind the transaction state machine.
//!
//! Input: one byte choosing the start position (binlog file/offset, MariaDB GTID, MySQL GTID set)
//! and, by its bit 7, whether rows of flagged transactions are left out (a link's reader), then
//! events, each `type:u8 flags:u16le len:u16le body` (a short last body takes what is left).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem::capture::mysql::assemble::{Assembler, AssemblerConfig};
use tandem::capture::mysql::events::RawEvent;
use tandem::capture::CaptureEvent;
use tandem::model::{BinlogPosition, ChangeSet, Position, TableRef};

fuzz_target!(|data: &[u8]| {
    let Some((&start_byte, mut rest)) = data.split_first() else {
        return;
    };
    let start = match start_byte % 3 {
        0 => Position::Binlog(BinlogPosition {
            file: "binlog.000001".into(),
            offset: 4,
        }),
        1 => Position::MariaGtid("0-1-10".parse().unwrap()),
        _ => Position::MysqlGtid("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-41".parse().unwrap()),
    };
    let config = AssemblerConfig {
        origin: "fuzz".into(),
        tables: [TableRef::new("app", "doc"), TableRef::new("app", "t")]
            .into_iter()
            .collect(),
        memory_budget_bytes: 1 << 20,
        spill_dir: std::env::temp_dir().join("tandem-fuzz-binlog"),
        drop_marked: start_byte & 0x80 != 0,
    };
    let mut asm = Assembler::new(config, &start).expect("a valid start position");
    let mut log_pos = 4u32;
    while rest.len() >= 5 {
        let type_code = rest[0];
        let flags = u16::from_le_bytes([rest[1], rest[2]]);
        let len = usize::from(u16::from_le_bytes([rest[3], rest[4]]));
        let end = (5 + len).min(rest.len());
        let body = &rest[5..end];
        rest = &rest[end..];
        log_pos = log_pos.wrapping_add(19 + body.len() as u32);
        let ev = RawEvent {
            type_code,
            timestamp: 1_700_000_000,
            server_id: 8,
            log_pos,
            flags,
            body,
        };
        match asm.feed(ev) {
            Ok(Some(CaptureEvent::Transaction(txn))) => {
                if let ChangeSet::Spilled(s) = &txn.changes {
                    for c in s.iter() {
                        c.expect("a spill file written by this process reads back");
                    }
                }
            }
            Ok(_) => {}
            // The stream ends the connection on an error; a later event starts over.
            Err(_) => return,
        }
    }
});
