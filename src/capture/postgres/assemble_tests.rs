//! Assembler tests over hand-built message sequences.

use super::*;
use crate::capture::postgres::types::oid;
use bytes::Bytes;

fn asm(budget: usize) -> Assembler {
    Assembler::new(
        "crm".into(),
        budget,
        std::env::temp_dir().join("tandem-assemble-tests"),
        Lsn(0),
    )
}

fn relation() -> PgOutput {
    PgOutput::Relation {
        xid: None,
        oid: 1,
        namespace: "public".into(),
        name: "t".into(),
        replica_identity: b'd',
        columns: vec![
            Column {
                key: true,
                name: "id".into(),
                type_oid: oid::INT4,
                type_modifier: -1,
            },
            Column {
                key: false,
                name: "body".into(),
                type_oid: oid::TEXT,
                type_modifier: -1,
            },
        ],
    }
}

fn text(s: &str) -> TupleValue {
    TupleValue::Text(Bytes::copy_from_slice(s.as_bytes()))
}

fn insert(xid: Option<u32>, id: i64) -> PgOutput {
    PgOutput::Insert {
        xid,
        oid: 1,
        new: vec![text(&id.to_string()), text("x")],
    }
}

fn run(a: &mut Assembler, msgs: Vec<PgOutput>) -> Vec<CaptureEvent> {
    msgs.into_iter()
        .filter_map(|m| a.handle(m).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

fn ids(ev: &CaptureEvent) -> Vec<Value> {
    match ev {
        CaptureEvent::Transaction(t) => t
            .changes
            .to_vec()
            .unwrap()
            .iter()
            .map(|c| {
                c.after
                    .as_ref()
                    .and_then(|a| a.get("id").cloned())
                    .unwrap_or(Value::Null)
            })
            .collect(),
        CaptureEvent::Heartbeat(_) => vec![],
    }
}

fn begin(xid: u32, lsn: u64) -> PgOutput {
    PgOutput::Begin {
        final_lsn: lsn,
        commit_time: 0,
        xid,
    }
}

fn commit(lsn: u64) -> PgOutput {
    PgOutput::Commit {
        flags: 0,
        commit_lsn: lsn,
        end_lsn: lsn + 8,
        commit_time: 1,
    }
}

#[test]
fn a_transaction_with_origin_position_and_unchanged_toast() {
    let mut a = asm(1 << 20);
    let ev = run(
        &mut a,
        vec![
            begin(700, 100),
            PgOutput::Origin {
                commit_lsn: 5,
                name: "tandem_helpdesk".into(),
            },
            relation(),
            insert(None, 1),
            PgOutput::Update {
                xid: None,
                oid: 1,
                old: Some(OldTuple::Key(vec![text("1"), TupleValue::Null])),
                new: vec![text("2"), TupleValue::Unchanged],
            },
            PgOutput::Delete {
                xid: None,
                oid: 1,
                old: OldTuple::Key(vec![text("2"), TupleValue::Null]),
            },
            commit(100),
        ],
    );
    assert_eq!(ev.len(), 1);
    let CaptureEvent::Transaction(t) = &ev[0] else {
        panic!("expected a transaction")
    };
    assert_eq!(
        t.position,
        Position::Postgres(PgPosition {
            commit_lsn: Lsn(100),
            lsn: Lsn(108)
        })
    );
    assert_eq!(t.commit_time, 1 + PG_EPOCH_OFFSET_MICROS);
    assert_eq!(t.xid, Some(700));
    assert_eq!(t.marks.pg_origin.as_deref(), Some("tandem_helpdesk"));
    let changes = t.changes.to_vec().unwrap();
    assert_eq!(changes.len(), 3);
    let upd = &changes[1];
    assert_eq!(
        upd.after.as_ref().unwrap().get("body"),
        Some(&Value::Unchanged)
    );
    let key = upd.before.as_ref().unwrap();
    assert_eq!((key.kind, key.fields.len()), (ImageKind::Key, 1));
    assert_eq!(changes[2].op, Op::Delete);
    assert!(a.is_idle());
}

#[test]
fn empty_transactions_become_heartbeats_and_replays_are_filtered() {
    let mut a = asm(1 << 20);
    let ev = run(
        &mut a,
        vec![
            relation(),
            begin(1, 100),
            commit(100),
            begin(2, 200),
            insert(None, 1),
            commit(200),
        ],
    );
    assert!(matches!(ev[0], CaptureEvent::Heartbeat(_)));
    assert_eq!(ids(&ev[1]), vec![Value::Int(1)]);
    // The server replays after a reconnect: nothing at or below 208 comes out again.
    a.reset();
    let ev = run(
        &mut a,
        vec![
            begin(2, 200),
            insert(None, 1),
            commit(200),
            begin(3, 300),
            insert(None, 3),
            commit(300),
        ],
    );
    assert_eq!(ev.len(), 1);
    assert_eq!(ids(&ev[0]), vec![Value::Int(3)]);
}

#[test]
fn large_transactions_spill_and_come_back_whole() {
    let mut a = asm(2_000);
    let mut msgs = vec![relation(), begin(9, 100)];
    msgs.extend((0..500).map(|i| insert(None, i)));
    msgs.push(commit(100));
    let ev = run(&mut a, msgs);
    let CaptureEvent::Transaction(t) = &ev[0] else {
        panic!("expected a transaction")
    };
    assert!(
        matches!(t.changes, ChangeSet::Spilled(_)),
        "500 rows over a 2 kB budget stayed in memory"
    );
    assert_eq!(ids(&ev[0]), (0..500).map(Value::Int).collect::<Vec<_>>());
    assert_eq!(a.spilled_count(), 1);
}

#[test]
fn streamed_transactions_drop_aborted_subtransactions() {
    for budget in [1 << 20, 200] {
        let mut a = asm(budget);
        let ev = run(
            &mut a,
            vec![
                PgOutput::StreamStart {
                    xid: 10,
                    first_segment: true,
                },
                relation(),
                insert(Some(10), 1),
                insert(Some(11), 2),
                PgOutput::StreamStop,
                // An ordinary transaction commits between two segments of the streamed one.
                relation(),
                begin(20, 150),
                insert(None, 100),
                commit(150),
                PgOutput::StreamStart {
                    xid: 10,
                    first_segment: false,
                },
                insert(Some(11), 3),
                insert(Some(12), 4),
                insert(Some(10), 5),
                PgOutput::StreamStop,
                PgOutput::StreamAbort {
                    xid: 10,
                    subxid: 11,
                },
                PgOutput::StreamStart {
                    xid: 30,
                    first_segment: true,
                },
                insert(Some(30), 99),
                PgOutput::StreamStop,
                PgOutput::StreamAbort {
                    xid: 30,
                    subxid: 30,
                },
                PgOutput::StreamCommit {
                    xid: 10,
                    flags: 0,
                    commit_lsn: 200,
                    end_lsn: 208,
                    commit_time: 0,
                },
            ],
        );
        assert_eq!(ev.len(), 2, "budget {budget}");
        assert_eq!(ids(&ev[0]), vec![Value::Int(100)]);
        assert_eq!(
            ids(&ev[1]),
            vec![Value::Int(1), Value::Int(4), Value::Int(5)],
            "budget {budget}"
        );
        assert!(a.is_idle());
    }
}

#[test]
fn tandems_own_transactions_come_out_without_changes_when_asked() {
    let origin = |name: &str| PgOutput::Origin {
        commit_lsn: 5,
        name: name.into(),
    };
    let messages = || {
        vec![
            relation(),
            // Applied by tandem.
            begin(1, 100),
            origin("tandem_helpdesk"),
            insert(None, 1),
            commit(100),
            // Applied by a native subscription: the node's own to forward.
            begin(2, 200),
            origin("pg_16384"),
            insert(None, 2),
            commit(200),
            // Streamed and applied by tandem; the origin comes with the first segment only.
            PgOutput::StreamStart {
                xid: 3,
                first_segment: true,
            },
            origin("tandem_helpdesk"),
            insert(Some(3), 3),
            PgOutput::StreamStop,
            PgOutput::StreamStart {
                xid: 3,
                first_segment: false,
            },
            insert(Some(3), 4),
            PgOutput::StreamStop,
            PgOutput::StreamCommit {
                xid: 3,
                flags: 0,
                commit_lsn: 300,
                end_lsn: 308,
                commit_time: 0,
            },
            // A local transaction.
            begin(4, 400),
            insert(None, 5),
            commit(400),
        ]
    };
    let mut kept = asm(1 << 20);
    let kept = run(&mut kept, messages());
    let mut a = asm(1 << 20);
    a.drop_applied(true);
    let dropped = run(&mut a, messages());
    assert_eq!(kept.len(), 4);
    assert_eq!(dropped.len(), 4, "every transaction still comes out");
    fn txn(e: &CaptureEvent) -> &crate::model::Transaction {
        match e {
            CaptureEvent::Transaction(t) => t,
            other => panic!("expected a transaction, got {other:?}"),
        }
    }
    for i in [0, 2] {
        let (k, d) = (txn(&kept[i]), txn(&dropped[i]));
        assert!(!k.changes.is_empty() && d.changes.is_empty(), "#{i}");
        assert_eq!(d.position, k.position, "#{i}: the position still moves");
        assert_eq!(d.marks.pg_origin.as_deref(), Some("tandem_helpdesk"));
    }
    assert_eq!(ids(&dropped[1]), vec![Value::Int(2)]);
    assert_eq!(ids(&dropped[3]), vec![Value::Int(5)]);
    assert!(a.is_idle());
}

#[test]
fn protocol_violations_are_errors() {
    let mut a = asm(1 << 20);
    assert!(a.handle(commit(1)).is_err());
    assert!(a.handle(begin(1, 1)).is_ok());
    assert!(
        a.handle(insert(None, 1)).is_err(),
        "insert before its Relation message"
    );
    a.handle(relation()).unwrap();
    let short = PgOutput::Insert {
        xid: None,
        oid: 1,
        new: vec![text("1")],
    };
    assert!(a.handle(short).is_err());
    let bad_value = PgOutput::Insert {
        xid: None,
        oid: 1,
        new: vec![text("one"), text("x")],
    };
    let err = a.handle(bad_value).unwrap_err();
    assert!(err.to_string().contains("public.t column id"), "{err}");
    assert!(!err.is_transient());
}

#[test]
fn a_transaction_counts_as_large_while_it_streams_or_from_its_thousandth_change() {
    let mut a = asm(1 << 20);
    run(&mut a, vec![relation(), begin(7, 100)]);
    for id in 0..LARGE_TXN_CHANGES as i64 - 1 {
        run(&mut a, vec![insert(None, id)]);
    }
    assert!(!a.in_large_transaction(), "one change short");
    run(&mut a, vec![insert(None, -1)]);
    assert!(a.in_large_transaction());
    let done = run(&mut a, vec![commit(100)]);
    assert_eq!(done.len(), 1);
    assert!(!a.in_large_transaction(), "after its commit");
    run(&mut a, vec![begin(8, 200), insert(None, 1)]);
    assert!(!a.in_large_transaction(), "a small transaction");
    run(&mut a, vec![commit(200)]);
    run(
        &mut a,
        vec![PgOutput::StreamStart {
            xid: 9,
            first_segment: true,
        }],
    );
    assert!(a.in_large_transaction(), "a streamed block");
    run(&mut a, vec![insert(Some(9), 1), PgOutput::StreamStop]);
    assert!(!a.in_large_transaction(), "between streamed blocks");
}
