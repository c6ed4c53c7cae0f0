use super::*;
use crate::capture::mysql::fixtures::{
    self, column_names, event, lenenc, mysql_gtid, query, rows_event, table_map,
};
use crate::capture::mysql::types::code;
use crate::model::{ChangeSet, Value};
use mysql_async::binlog::events::{Event, FormatDescriptionEvent, TransactionPayloadEvent};
use mysql_async::binlog::BinlogVersion;

const SID: [u8; 16] = [
    0x3e, 0x11, 0xfa, 0x47, 0x71, 0xca, 0x11, 0xe1, 0x9e, 0x33, 0xc8, 0x0a, 0xa9, 0x42, 0x95, 0x62,
];

fn assembler(start: Position) -> Assembler {
    let config = AssemblerConfig {
        origin: "mysql8".into(),
        tables: [TableRef::new("app", "doc")].into_iter().collect(),
        memory_budget_bytes: 1 << 20,
        spill_dir: std::env::temp_dir().join("tandem-assemble-tests"),
        drop_marked: false,
    };
    Assembler::new(config, &start).unwrap()
}

fn raw(type_code: u8, log_pos: u32, flags: u16, body: &[u8]) -> RawEvent<'_> {
    RawEvent {
        type_code,
        timestamp: 1_700_000_000,
        server_id: 8,
        log_pos,
        flags,
        body,
    }
}

/// (id BIGINT UNSIGNED, body JSON) with full metadata, as MySQL 8 writes it.
fn doc_table_map(table_id: u64) -> Vec<u8> {
    table_map(
        table_id,
        "app",
        "doc",
        &[(code::LONGLONG, vec![]), (code::JSON, vec![4])],
        &[
            (1, vec![0x80]),
            (4, column_names(&["id", "body"])),
            (8, lenenc(0)),
        ],
    )
}

fn doc_row(id: u64) -> Vec<u8> {
    let json = crate::capture::mysql::jsonb::tests::sample_doc();
    let mut r = vec![0];
    r.extend(id.to_le_bytes());
    r.extend((json.len() as u32).to_le_bytes());
    r.extend(json);
    r
}

fn binlog(file: &str, offset: u64) -> Position {
    Position::Binlog(BinlogPosition {
        file: file.into(),
        offset,
    })
}

fn txn(ev: Option<CaptureEvent>) -> Transaction {
    match ev {
        Some(CaptureEvent::Transaction(t)) => t,
        other => panic!("expected a transaction, got {other:?}"),
    }
}

#[test]
fn mysql8_gtid_rows_v2_and_binary_json() {
    let mut a = assembler(binlog("binlog.000007", 4));
    // The fake ROTATE arrives before FORMAT_DESCRIPTION and keeps its CRC32 trailer.
    let mut rotate = 4u64.to_le_bytes().to_vec();
    rotate.extend(b"binlog.000007");
    rotate.extend([0xde, 0xad, 0xbe, 0xef]);
    a.restart(&binlog("binlog.000007", 4), true).unwrap();
    assert!(a
        .feed(raw(kind::ROTATE, 0, 0x20, &rotate))
        .unwrap()
        .is_none());
    assert!(a
        .feed(raw(kind::FORMAT_DESCRIPTION, 0, 0, &[]))
        .unwrap()
        .is_none());
    let commit_micros = 1_700_000_000_123_456u64;
    let gtid = mysql_gtid(SID, 42, commit_micros);
    assert!(a
        .feed(raw(kind::MYSQL_GTID, 300, 0, &gtid))
        .unwrap()
        .is_none());
    assert!(a
        .feed(raw(kind::QUERY, 380, 0, &query("app", "BEGIN")))
        .unwrap()
        .is_none());
    let map = doc_table_map(90);
    assert!(a
        .feed(raw(kind::TABLE_MAP, 450, 0, &map))
        .unwrap()
        .is_none());
    let rows = rows_event(90, true, false, 2, &[doc_row(u64::MAX)]);
    assert!(a.feed(raw(30, 600, 0, &rows)).unwrap().is_none());
    let t = txn(a
        .feed(raw(kind::XID, 631, 0, &77u64.to_le_bytes()))
        .unwrap());
    assert_eq!(t.position, binlog("binlog.000007", 631));
    assert_eq!(t.commit_time, commit_micros as i64);
    assert_eq!(t.xid, Some(77));
    assert_eq!(t.marks.server_id, Some(8));
    let c = t.changes.to_vec().unwrap();
    let after = c[0].after.as_ref().unwrap();
    assert_eq!(after.get("id"), Some(&Value::UInt(u64::MAX)));
    assert_eq!(
        after.get("body"),
        Some(&Value::Json(r#"{"a": 1, "b": [true, "x"]}"#.into()))
    );
}

#[test]
fn mysql_gtid_positions_and_duplicates() {
    let start: MysqlGtidSet = "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-41".parse().unwrap();
    let mut a = assembler(Position::MysqlGtid(start.clone()));
    let run = |a: &mut Assembler, gno: u64| {
        let gtid = mysql_gtid(SID, gno, 1);
        a.feed(raw(kind::MYSQL_GTID, 0, 0, &gtid)).unwrap();
        a.feed(raw(kind::QUERY, 0, 0, &query("app", "BEGIN")))
            .unwrap();
        a.feed(raw(kind::TABLE_MAP, 0, 0, &doc_table_map(5)))
            .unwrap();
        a.feed(raw(
            30,
            0,
            0,
            &rows_event(5, true, false, 2, &[doc_row(gno)]),
        ))
        .unwrap();
        a.feed(raw(kind::XID, 0, 0, &1u64.to_le_bytes())).unwrap()
    };
    let t = txn(run(&mut a, 42));
    assert_eq!(
        t.position.to_string(),
        "mysql-gtid:3e11fa47-71ca-11e1-9e33-c80aa9429562:1-42"
    );
    // A reconnect from the older start re-reads 42: filtered, 43 passes.
    a.restart(&Position::MysqlGtid(start), true).unwrap();
    assert!(
        run(&mut a, 42).is_none(),
        "a delivered transaction came twice"
    );
    let t = txn(run(&mut a, 43));
    assert_eq!(
        t.position.to_string(),
        "mysql-gtid:3e11fa47-71ca-11e1-9e33-c80aa9429562:1-43"
    );
}

#[test]
fn mysql8_compressed_transaction_payload() {
    // Inner events as MySQL writes them into a TRANSACTION_PAYLOAD: no checksums, log_pos 0.
    let mut inner = Vec::new();
    inner.extend(event(kind::QUERY, 8, 0, 0, &query("app", "BEGIN")));
    inner.extend(event(kind::TABLE_MAP, 8, 0, 0, &doc_table_map(91)));
    inner.extend(event(
        30,
        8,
        0,
        0,
        &rows_event(91, true, false, 2, &[doc_row(1), doc_row(2)]),
    ));
    inner.extend(event(kind::XID, 8, 0, 0, &5u64.to_le_bytes()));
    let compressed = zstd::encode_all(&inner[..], 3).unwrap();
    let mut body = Vec::new();
    for (field, value) in [
        (1u64, compressed.len() as u64),
        (2, 0),
        (3, inner.len() as u64),
    ] {
        let v = lenenc(value);
        body.extend(lenenc(field));
        body.extend(lenenc(v.len() as u64));
        body.extend(v);
    }
    body.extend(lenenc(0));
    body.extend(&compressed);
    let payload_event = event(kind::TRANSACTION_PAYLOAD, 8, 9000, 0, &body);

    // Drive it the way mysql_async's BinlogStream does: the payload event, then its inner events.
    let fde = FormatDescriptionEvent::new(BinlogVersion::Version4);
    let outer = Event::read(&fde, &payload_event[..]).unwrap();
    let mut a = assembler(binlog("binlog.000009", 4));
    let gtid = mysql_gtid(SID, 7, 5);
    a.feed(raw(kind::MYSQL_GTID, 8800, 0, &gtid)).unwrap();
    let h = outer.header();
    assert!(a
        .feed(raw(h.event_type_raw(), h.log_pos(), 0, outer.data()))
        .unwrap()
        .is_none());
    let decompressed = outer
        .read_event::<TransactionPayloadEvent<'_>>()
        .unwrap()
        .danger_decompress();
    assert_eq!(decompressed, inner);
    let mut cursor = &decompressed[..];
    let mut out = None;
    while !cursor.is_empty() {
        let e = Event::read(&fde, &mut cursor).unwrap();
        let h = e.header();
        out = a
            .feed(raw(
                h.event_type_raw(),
                h.log_pos(),
                h.flags_raw(),
                e.data(),
            ))
            .unwrap()
            .or(out);
    }
    let t = txn(out);
    assert_eq!(
        t.position,
        binlog("binlog.000009", 9000),
        "the payload's end is the resume point"
    );
    assert_eq!(t.changes.len(), 2);
}

#[test]
fn mariadb_gtid_standalone_ddl_invalidates_and_positions_advance() {
    let mut a = assembler(Position::MariaGtid("0-1-10".parse().unwrap()));
    let gtid = |seq: u64, standalone: bool| {
        let mut b = seq.to_le_bytes().to_vec();
        b.extend(0u32.to_le_bytes());
        b.push(u8::from(standalone));
        b
    };
    a.feed(raw(kind::MARIADB_GTID, 0, 0, &gtid(11, false)))
        .unwrap();
    a.feed(raw(kind::QUERY, 0, 0, &query("app", "BEGIN")))
        .unwrap();
    a.feed(raw(kind::TABLE_MAP, 0, 0, &doc_table_map(3)))
        .unwrap();
    a.feed(raw(
        23,
        0,
        LOG_EVENT_SKIP_REPLICATION_F,
        &rows_event(3, false, false, 2, &[doc_row(1)]),
    ))
    .unwrap();
    let t = txn(a.feed(raw(kind::XID, 0, 0, &1u64.to_le_bytes())).unwrap());
    assert_eq!(t.position.to_string(), "mariadb-gtid:0-8-11");
    assert!(
        t.marks.skip_replication,
        "the flag on any event of the group marks it"
    );
    assert!(a.metadata.get(3).is_some());

    a.feed(raw(kind::MARIADB_GTID, 0, 0, &gtid(12, true)))
        .unwrap();
    let hb = a
        .feed(raw(
            kind::QUERY,
            0,
            0,
            &query("app", "ALTER TABLE doc ADD x INT"),
        ))
        .unwrap();
    assert!(
        matches!(hb, Some(CaptureEvent::Heartbeat(ref p)) if p.to_string() == "mariadb-gtid:0-8-12")
    );
    assert!(
        a.metadata.get(3).is_none(),
        "DDL on a captured table drops its metadata"
    );
}

#[test]
fn a_flagged_transaction_comes_out_without_its_rows_when_asked() {
    let flagged_then_local = |drop_marked: bool| {
        let mut a = assembler(binlog("b.000001", 4));
        a.config.drop_marked = drop_marked;
        let mut out = Vec::new();
        for (pos, flags) in [(200, LOG_EVENT_SKIP_REPLICATION_F), (400, 0)] {
            a.feed(raw(kind::QUERY, pos, flags, &query("app", "BEGIN")))
                .unwrap();
            a.feed(raw(kind::TABLE_MAP, pos + 50, flags, &doc_table_map(3)))
                .unwrap();
            let rows = rows_event(3, false, false, 2, &[doc_row(1), doc_row(2)]);
            a.feed(raw(23, pos + 100, flags, &rows)).unwrap();
            out.push(txn(a
                .feed(raw(kind::XID, pos + 150, flags, &1u64.to_le_bytes()))
                .unwrap()));
        }
        out
    };
    let kept = flagged_then_local(false);
    assert_eq!(kept[0].changes.len(), 2, "tail sees what tandem applied");
    let dropped = flagged_then_local(true);
    assert!(dropped[0].marks.skip_replication && dropped[0].changes.is_empty());
    assert_eq!(
        dropped[0].position, kept[0].position,
        "the position still moves"
    );
    assert_eq!(
        dropped[1].changes.len(),
        2,
        "an unflagged transaction keeps its rows"
    );
    assert!(!dropped[1].marks.skip_replication);
}

#[test]
fn rollback_of_non_transactional_changes_is_delivered_and_others_filtered() {
    let mut a = assembler(binlog("b.000001", 4));
    a.feed(raw(kind::QUERY, 100, 0, &query("app", "BEGIN")))
        .unwrap();
    let other = table_map(
        4,
        "app",
        "other",
        &[(code::LONG, vec![])],
        &[(4, column_names(&["id"]))],
    );
    a.feed(raw(kind::TABLE_MAP, 150, 0, &other)).unwrap();
    a.feed(raw(
        23,
        200,
        0,
        &rows_event(4, false, false, 1, &[vec![0, 1, 0, 0, 0]]),
    ))
    .unwrap();
    let hb = a
        .feed(raw(kind::QUERY, 250, 0, &query("app", "COMMIT")))
        .unwrap();
    assert!(
        matches!(hb, Some(CaptureEvent::Heartbeat(_))),
        "untracked tables give a heartbeat"
    );
    a.feed(raw(kind::QUERY, 300, 0, &query("app", "BEGIN")))
        .unwrap();
    a.feed(raw(kind::TABLE_MAP, 350, 0, &doc_table_map(5)))
        .unwrap();
    a.feed(raw(
        23,
        400,
        0,
        &rows_event(5, false, false, 2, &[doc_row(9)]),
    ))
    .unwrap();
    let t = txn(a
        .feed(raw(kind::QUERY, 450, 0, &query("app", "ROLLBACK")))
        .unwrap());
    assert_eq!(t.changes.len(), 1);
    assert!(matches!(t.changes, ChangeSet::Memory(_)));
}

proptest::proptest! {
    /// Random event streams never panic the assembler.
    #[test]
    fn random_events_never_panic(events in proptest::collection::vec(
        (proptest::prelude::any::<u8>(), proptest::collection::vec(proptest::prelude::any::<u8>(), 0..60)), 0..20)) {
        let mut a = assembler(binlog("b.000001", 4));
        for (t, body) in &events {
            let _ = a.feed(raw(*t, 0, 0, body));
        }
    }
}

#[test]
fn fixtures_lenenc_is_the_protocol_encoding() {
    assert_eq!(fixtures::lenenc(250), vec![250]);
    assert_eq!(fixtures::lenenc(251), vec![0xFC, 251, 0]);
}

#[test]
fn a_heartbeat_past_left_out_events_moves_a_gtid_position_once() {
    let start: Position = "mariadb-gtid:0-1-5".parse().unwrap();
    let mut a = assembler(start);
    a.offset = 1000;
    assert_eq!(a.skipped_to(1000), None, "nothing left out");
    assert_eq!(a.skipped_to(1400), Some((a.file.clone(), 1400)));
    a.cover(1400, &"0-1-7,1-2-3".parse().unwrap());
    assert_eq!(a.position().to_string(), "mariadb-gtid:0-1-7,1-2-3");
    assert_eq!(
        a.skipped_to(1400),
        None,
        "the same heartbeat does not ask again"
    );
    // An older state never moves a domain back; an unknown one moves only the offset.
    a.cover(1500, &"0-1-6".parse().unwrap());
    a.cover(1600, &MariaGtidList::default());
    assert_eq!(a.position().to_string(), "mariadb-gtid:0-1-7,1-2-3");
    assert_eq!(a.skipped_to(1600), None);

    // Inside a transaction (its GTID read, its commit not yet) nothing is covered.
    let mut gtid = 8u64.to_le_bytes().to_vec();
    gtid.extend(0u32.to_le_bytes());
    gtid.push(0);
    a.feed(raw(kind::MARIADB_GTID, 1700, 0, &gtid)).unwrap();
    assert_eq!(a.skipped_to(1800), None, "a transaction is open");

    let by_file = assembler("binlog:b.000001:4".parse().unwrap());
    assert_eq!(
        by_file.skipped_to(400),
        None,
        "a file position moves by itself"
    );
}
