//! The batched path: consecutive inserts, updates or deletes of one table applied together
//! (`src/apply/batch.rs`), and what they must leave exactly as row by row does.

use tandem::apply;
use tandem::model::{Op, RowImage};

use super::s;
use crate::apply_support::*;

/// Many inserts into one table in one transaction go through the batch path; keys that exist take the
/// conflict path one by one, the rest are inserted together.
pub async fn batched_inserts_with_some_existing_keys(kind: Kind) {
    let mut f = Fixture::new(kind, "", 0).await;
    let mut a = f.applier().await;
    f.db.exec("INSERT INTO customer (id, name) VALUES (3, 'local3'), (7, 'local7')")
        .await;
    let inserts = inserts_at_5(&f, 1..=10);
    a.apply(&[f.tx(1, inserts)]).await.expect("apply");
    for id in 1..=10 {
        let want = if id == 3 || id == 7 {
            format!("local{id}")
        } else {
            format!("r{id}")
        };
        assert_eq!(
            f.row(id).await.expect("row")[0],
            s(&want),
            "table customer, key {id}, column name"
        );
    }
    let kinds: Vec<String> = f.conflicts().await.into_iter().map(|(k, _, _)| k).collect();
    assert_eq!(kinds, ["insert_exists", "insert_exists"]);
    // Redelivered: every key exists now with the same version; nothing changes, nothing is inserted.
    let mut b = f.applier().await;
    let again = inserts_at_5(&f, 1..=10);
    b.apply(&[f.tx(1, again)]).await.expect("duplicate");
    assert_eq!(
        f.conflicts().await.len(),
        2,
        "a duplicate transaction is skipped whole"
    );
}

/// Inserts of customers `ids` as the source writes them: name `r<id>`, version 5.
fn inserts_at_5(f: &Fixture, ids: std::ops::RangeInclusive<i32>) -> Vec<tandem::model::Change> {
    ids.map(|id| {
        f.change(
            Op::Insert,
            None,
            Some(customer(id, &format!("r{id}"), "x@x", 5, SOURCE)),
        )
    })
    .collect()
}

/// `changes` with as many inserts into `orders` after them or, `interleaved`, one after each (which
/// closes every batch: the row-by-row path).
fn with_orders(
    f: &Fixture,
    changes: Vec<tandem::model::Change>,
    interleaved: bool,
) -> Vec<tandem::model::Change> {
    let orders: Vec<tandem::model::Change> = (0..changes.len())
        .map(|i| tandem::model::Change {
            table: f.source_table("orders"),
            op: Op::Insert,
            before: None,
            after: Some(image(&[
                ("id", tandem::model::Value::Int(i as i64)),
                ("_tandem_version", tandem::model::Value::Int(1)),
            ])),
        })
        .collect();
    if interleaved {
        changes
            .into_iter()
            .zip(orders)
            .flat_map(|(c, o)| [c, o])
            .collect()
    } else {
        changes.into_iter().chain(orders).collect()
    }
}

/// The target's customer rows, tombstones left for the source's deletes, conflict records and
/// orders, as text: what one way of applying a transaction must leave exactly as another does.
async fn outcome(f: &mut Fixture) -> Vec<Vec<Option<String>>> {
    let mut all =
        f.db.rows(
            "SELECT 'customer', id, name, email, _tandem_origin, \
             CASE WHEN _tandem_origin = 's' THEN _tandem_version END FROM customer ORDER BY id",
        )
        .await;
    all.extend(
        f.db.rows(&format!(
            "SELECT 'tombstone', row_key, version, node FROM {} WHERE node = 's' ORDER BY row_key",
            f.book("tombstone")
        ))
        .await,
    );
    all.extend(
        f.conflicts()
            .await
            .into_iter()
            .map(|(k, d, st)| vec![s("conflict"), Some(k), Some(d), Some(st)]),
    );
    all.extend(
        f.db.rows("SELECT 'orders', id FROM orders ORDER BY id")
            .await,
    );
    all
}

/// Updates and deletes of many rows of one table in one transaction go through the batch path:
/// rows whose version check fails in the middle of a batch (changed or deleted here), a key twice
/// in the transaction, rows of differing shapes. The outcome is the row-by-row path's, which the
/// same transaction takes when every change is followed by a change of another table.
pub async fn batched_updates_and_deletes_match_row_by_row(kind: Kind) {
    let mut outcomes = Vec::new();
    for interleaved in [false, true] {
        let mut f = Fixture::new(kind, "", 0).await;
        let mut a = f.applier().await;
        let inserts = inserts_at_5(&f, 1..=12);
        a.apply(&[f.tx(1, inserts)]).await.expect("inserts");
        // Local writes the source has not seen: the version checks of 4, 7, 9 and 11 fail.
        f.db.exec("UPDATE customer SET email = 'local@x' WHERE id IN (4, 7, 11)")
            .await;
        f.db.exec("DELETE FROM customer WHERE id = 9").await;
        let far = 9_000_000_000_000_000;
        let up = |id: i32, from: (&str, i64), to: (&str, i64)| {
            f.change(
                Op::Update,
                Some(customer(id, from.0, "x@x", from.1, SOURCE)),
                Some(customer(id, to.0, "x@x", to.1, SOURCE)),
            )
        };
        let mut changes: Vec<tandem::model::Change> = (1..=10)
            .map(|id| {
                let name = format!("r{id}");
                // Row 7's incoming version is later than the local write: it wins its conflict.
                let to = if id == 7 { far } else { 6 };
                up(id, (&name, 5), (&format!("u{id}"), to))
            })
            .collect();
        // The same key again: a new batch.
        changes.push(up(2, ("u2", 6), ("w2", 7)));
        changes.push(up(1, ("u1", 6), ("w1", 7)));
        // Another shape: only the email changes.
        changes.push(f.change(
            Op::Update,
            Some(customer(3, "u3", "x@x", 6, SOURCE)),
            Some(customer(3, "u3", "y@x", 7, SOURCE)),
        ));
        changes.push(f.change(
            Op::Update,
            Some(customer(5, "u5", "x@x", 6, SOURCE)),
            Some(customer(5, "u5", "y@x", 7, SOURCE)),
        ));
        let del = |id: i32, name: &str, version: i64| {
            f.change(
                Op::Delete,
                Some(customer(id, name, "x@x", version, SOURCE)),
                None,
            )
        };
        changes.extend([
            del(6, "u6", 6),
            del(11, "r11", 5),
            del(12, "r12", 5),
            del(8, "u8", 6),
            del(12, "r12", 5),
            del(10, "u10", 6),
        ]);
        // Inserts of keys without tombstones into a table that has some: a batch.
        changes.extend((20..=22).map(|id| {
            f.change(
                Op::Insert,
                None,
                Some(customer(id, &format!("r{id}"), "x@x", 1, SOURCE)),
            )
        }));
        let tx = with_orders(&f, changes, interleaved);
        a.apply(&[f.tx(2, tx)]).await.expect("apply");
        let got = outcome(&mut f).await;
        let customers: Vec<_> = got.iter().filter(|r| r[0] == s("customer")).collect();
        let name = |id: &str| {
            customers
                .iter()
                .find(|r| r[1].as_deref() == Some(id))
                .map(|r| (r[2].clone(), r[3].clone()))
        };
        assert_eq!(
            name("1"),
            Some((s("w1"), s("x@x"))),
            "interleaved {interleaved}"
        );
        assert_eq!(
            name("2"),
            Some((s("w2"), s("x@x"))),
            "interleaved {interleaved}"
        );
        assert_eq!(
            name("3"),
            Some((s("u3"), s("y@x"))),
            "interleaved {interleaved}"
        );
        assert_eq!(name("4"), Some((s("r4"), s("local@x"))), "local write kept");
        assert_eq!(
            name("7").map(|n| n.0),
            Some(s("u7")),
            "the later incoming wins"
        );
        assert_eq!(
            name("11"),
            Some((s("r11"), s("local@x"))),
            "delete_differs keeps the row"
        );
        assert_eq!(
            name("21"),
            Some((s("r21"), s("x@x"))),
            "interleaved {interleaved}"
        );
        for gone in ["6", "8", "10", "12"] {
            assert_eq!(
                name(gone),
                None,
                "key {gone} deleted (interleaved {interleaved})"
            );
        }
        let kinds: Vec<_> = got
            .iter()
            .filter(|r| r[0] == s("conflict"))
            .map(|r| r[1].clone().unwrap_or_default())
            .collect();
        assert_eq!(
            kinds,
            [
                "update_differs",
                "update_differs",
                "update_missing",
                "delete_differs",
                "delete_missing"
            ],
            "interleaved {interleaved}"
        );
        outcomes.push(got);
    }
    assert_eq!(
        outcomes[0], outcomes[1],
        "batched (left) and row by row (right) differ"
    );
}

/// A transaction of more inserts than one batch holds, each batch with its queue and tombstone
/// reads. Batches meet a key taken here (3, 1100: on
/// PostgreSQL the plain insert fails, the group is applied again with checked inserts, and the
/// rows not inserted take the conflict path), a key with a tombstone (700: its batch is taken back
/// and goes row by row), and changes after them that need their rows (an update of 5 and of 3, a
/// delete of 1200). The outcome is the row-by-row path's, which
/// the same transaction takes when every change is followed by a change of another table.
pub async fn inserts_of_many_batches_match_row_by_row(kind: Kind) {
    let mut outcomes = Vec::new();
    for interleaved in [false, true] {
        let mut f = Fixture::new(kind, "", 0).await;
        let mut a = f.applier().await;
        f.db.exec("INSERT INTO customer (id, name) VALUES (3, 'local3'), (700, 'local700'), (1100, 'local1100')")
            .await;
        f.db.exec("DELETE FROM customer WHERE id = 700").await;
        let mut changes = inserts_at_5(&f, 1..=1200);
        changes.push(f.change(
            Op::Update,
            Some(customer(5, "r5", "x@x", 5, SOURCE)),
            Some(customer(5, "u5", "x@x", 6, SOURCE)),
        ));
        changes.push(f.change(
            Op::Update,
            Some(customer(3, "r3", "x@x", 5, SOURCE)),
            Some(customer(3, "u3", "x@x", 6, SOURCE)),
        ));
        changes.push(f.change(
            Op::Delete,
            Some(customer(1200, "r1200", "x@x", 5, SOURCE)),
            None,
        ));
        let tx = with_orders(&f, changes, interleaved);
        a.apply(&[f.tx(1, tx)]).await.expect("apply");
        let got = outcome(&mut f).await;
        let customers: Vec<_> = got.iter().filter(|r| r[0] == s("customer")).collect();
        let name = |id: &str| {
            customers
                .iter()
                .find(|r| r[1].as_deref() == Some(id))
                .and_then(|r| r[2].clone())
        };
        // 700's local delete is later than the incoming insert: it stays deleted.
        assert_eq!(customers.len(), 1198, "interleaved {interleaved}");
        assert_eq!(name("700"), None, "interleaved {interleaved}");
        assert_eq!(name("1"), s("r1"), "interleaved {interleaved}");
        assert_eq!(name("5"), s("u5"), "interleaved {interleaved}");
        assert_eq!(name("3"), s("local3"), "interleaved {interleaved}");
        assert_eq!(name("1100"), s("local1100"), "interleaved {interleaved}");
        assert_eq!(name("1199"), s("r1199"), "interleaved {interleaved}");
        assert_eq!(name("1200"), None, "interleaved {interleaved}");
        let kinds: Vec<_> = got
            .iter()
            .filter(|r| r[0] == s("conflict"))
            .map(|r| r[1].clone().unwrap_or_default())
            .collect();
        assert_eq!(
            kinds.iter().filter(|k| *k == "insert_exists").count(),
            2,
            "keys 3 and 1100 (interleaved {interleaved}): {kinds:?}"
        );
        outcomes.push(got);
    }
    assert_eq!(
        outcomes[0], outcomes[1],
        "batched (left) and row by row (right) differ"
    );
}

/// A key under review holds a batch of inserts that carries it before anything is written: the
/// batch goes row by row, the held row waits in the queue unwritten (even one the target would
/// refuse: its name is too long for the column), and the other rows go in.
pub async fn a_key_under_review_holds_its_batch_of_inserts_unwritten(kind: Kind) {
    let mut f = Fixture::new(kind, "conflict = \"manual\"", 5).await;
    let mut a = f.applier().await;
    f.replicated_then_edited_locally(&mut a).await;
    let parks = f.change(
        Op::Update,
        Some(customer(1, "ann", "a@x", 10, SOURCE)),
        Some(customer(1, "remote", "a@x", 11, SOURCE)),
    );
    a.apply(&[f.tx(2, vec![parks])]).await.expect("parks");
    let inserts = inserts_one_too_long(&f, 1..=10, 1, 12);
    a.apply(&[f.tx(3, inserts)]).await.expect("apply");
    let dead = a.list_dead_letters(true).await.expect("list");
    assert!(dead.is_empty(), "{dead:?}");
    assert_eq!(f.row(1).await.expect("row")[0], s("local"), "held");
    for id in 2..=10 {
        assert_eq!(
            f.row(id).await.expect("row")[0],
            Some(format!("r{id}")),
            "key {id}"
        );
    }
    let states = f.conflict_states().await;
    assert_eq!(states, ["parked", "waiting"]);
}

/// Inserts of customers `ids` at `version`, named `r<id>` but for `long`, whose name is too long
/// for the target's column.
fn inserts_one_too_long(
    f: &Fixture,
    ids: std::ops::RangeInclusive<i32>,
    long: i32,
    version: i64,
) -> Vec<tandem::model::Change> {
    ids.map(|id| {
        let name = if id == long {
            "x".repeat(30)
        } else {
            format!("r{id}")
        };
        f.change(
            Op::Insert,
            None,
            Some(customer(id, &name, "x@x", version, SOURCE)),
        )
    })
    .collect()
}

/// The one dead letter there is names `what` and the column `name`.
async fn one_dead_letter_naming(a: &mut apply::Applier, what: &str) {
    let dead = a.list_dead_letters(true).await.expect("list");
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(
        dead[0].error.contains(what) && dead[0].error.contains("column name"),
        "{}",
        dead[0].error
    );
}

/// A batch of inserts the target refuses (a value too long for its column in the first of three
/// batches): the error names the table and the column, and the transaction goes to the
/// dead-letter table whole.
pub async fn a_refused_batch_of_inserts_is_dead_lettered_whole(kind: Kind) {
    let mut f = Fixture::new(kind, "", 0).await;
    let mut a = f.applier().await;
    let inserts = inserts_one_too_long(&f, 1..=1200, 250, 5);
    a.apply(&[f.tx(1, inserts)]).await.expect("dead-lettered");
    one_dead_letter_naming(&mut a, "table customer").await;
    assert_eq!(f.row(1).await, None, "nothing of the transaction stays");
    assert_eq!(f.row(1199).await, None, "nothing of the transaction stays");
}

/// A batch the target refuses (a value too long for its column) goes row by row: the error names
/// the row's key and column, and the transaction goes to the dead-letter table whole.
pub async fn a_refused_batch_goes_row_by_row(kind: Kind) {
    let mut f = Fixture::new(kind, "", 0).await;
    let mut a = f.applier().await;
    let inserts = (1..=3)
        .map(|id| f.change(Op::Insert, None, Some(customer(id, "r", "x@x", 5, SOURCE))))
        .collect();
    a.apply(&[f.tx(1, inserts)]).await.expect("inserts");
    let long = "x".repeat(30);
    let updates = (1..=3)
        .map(|id| {
            let name = if id == 2 {
                long.clone()
            } else {
                format!("u{id}")
            };
            f.change(
                Op::Update,
                Some(customer(id, "r", "x@x", 5, SOURCE)),
                Some(customer(id, &name, "x@x", 6, SOURCE)),
            )
        })
        .collect();
    a.apply(&[f.tx(2, updates)]).await.expect("dead-lettered");
    one_dead_letter_naming(&mut a, "\"id\":\"2\"").await;
    for id in 1..=3 {
        assert_eq!(
            f.row(id).await.expect("row")[0],
            s("r"),
            "key {id} unchanged"
        );
    }
}

/// Values of every kind pass a batched update (two rows, every column changed) unchanged.
pub async fn batched_updates_convert_values_of_every_kind(kind: Kind) {
    use tandem::model::{parse_uuid, Value as V};
    let mut f = Fixture::new(kind, "", 0).await;
    let mut a = f.applier().await;
    let ts = 1_700_000_000_123_456;
    let old = |id: i64| {
        vec![
            ("id", V::Int(id)),
            ("b", V::Bool(true)),
            ("i", V::Int(-5)),
            ("f", V::Float64(1.5)),
            ("d", V::Decimal("12.345".parse().expect("decimal"))),
            ("t", V::Text("a".into())),
            ("bin", V::Bytes(vec![0, 1, 255])),
            ("j", V::Json("{\"a\": 1}".into())),
            (
                "u",
                V::Uuid(parse_uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").expect("uuid")),
            ),
            ("dt", V::Date(19_000)),
            ("tm", V::Time(3_723_000_001)),
            ("ts", V::Timestamp(ts)),
            ("tz", V::TimestampTz(ts)),
            ("_tandem_version", V::Int(1)),
            ("_tandem_origin", V::Text(f.source.clone())),
        ]
    };
    let new = |id: i64| {
        vec![
            ("id", V::Int(id)),
            ("b", V::Bool(false)),
            ("i", V::Int(7 + id)),
            ("f", V::Float64(2.25)),
            ("d", V::Decimal("1.5".parse().expect("decimal"))),
            (
                "t",
                if id == 1 {
                    V::Text("wörld \"x\"".into())
                } else {
                    V::Null
                },
            ),
            ("bin", V::Bytes(vec![255, 0, 0x80])),
            ("j", V::Json("{\"b\": [1, 2]}".into())),
            (
                "u",
                V::Uuid(parse_uuid("b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12").expect("uuid")),
            ),
            ("dt", V::Date(19_001)),
            ("tm", V::Time(1)),
            ("ts", V::Timestamp(ts + 1)),
            ("tz", V::TimestampTz(ts + 1)),
            ("_tandem_version", V::Int(2)),
            ("_tandem_origin", V::Text(f.source.clone())),
        ]
    };
    let typed = f.source_table("typed");
    let change = |op, before: Option<RowImage>, after: Option<RowImage>| tandem::model::Change {
        table: typed.clone(),
        op,
        before,
        after,
    };
    a.apply(&[f.tx(
        1,
        vec![
            change(Op::Insert, None, Some(image(&old(1)))),
            change(Op::Insert, None, Some(image(&old(2)))),
        ],
    )])
    .await
    .expect("insert");
    a.apply(&[f.tx(
        2,
        vec![
            change(Op::Update, Some(image(&old(1))), Some(image(&new(1)))),
            change(Op::Update, Some(image(&old(2))), Some(image(&new(2)))),
        ],
    )])
    .await
    .expect("update");
    assert!(f.conflicts().await.is_empty(), "{:?}", f.conflicts().await);
    f.db.exec(if kind == Kind::Pg {
        "SET TIME ZONE 'UTC'"
    } else {
        "SET time_zone = '+00:00'"
    })
    .await;
    let q = match kind {
        Kind::Pg => "SELECT b::text, i::text, f::text, d::text, t, encode(bin, 'hex'), j::text, u::text, dt::text, tm::text, ts::text, tz::text FROM typed ORDER BY id",
        Kind::My => "SELECT CAST(b AS CHAR), CAST(i AS CHAR), CAST(f AS CHAR), CAST(d AS CHAR), t, LOWER(HEX(bin)), CAST(j AS CHAR), u, CAST(dt AS CHAR), CAST(tm AS CHAR), CAST(ts AS CHAR), CAST(tz AS CHAR) FROM typed ORDER BY id",
    };
    let got = f.db.rows(q).await;
    let names = [
        "b", "i", "f", "d", "t", "bin", "j", "u", "dt", "tm", "ts", "tz",
    ];
    for (id, row) in [1, 2].into_iter().zip(&got) {
        let i = (7 + id).to_string();
        let expect = [
            Some(if kind == Kind::Pg { "false" } else { "0" }),
            Some(i.as_str()),
            Some("2.25"),
            Some("1.500"),
            (id == 1).then_some("wörld \"x\""),
            Some("ff0080"),
            Some("{\"b\": [1, 2]}"),
            Some("b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12"),
            Some("2022-01-09"),
            Some("00:00:00.000001"),
            Some("2023-11-14 22:13:20.123457"),
            Some(if kind == Kind::Pg {
                "2023-11-14 22:13:20.123457+00"
            } else {
                "2023-11-14 22:13:20.123457"
            }),
        ];
        for ((name, want), have) in names.iter().zip(expect).zip(row) {
            assert_eq!(
                have.as_deref(),
                want,
                "table typed, key {id}, column {name}"
            );
        }
    }
    assert_eq!(got.len(), 2);
}

/// Text, bytes and JSON holding the characters a bulk load's format escapes (tab, newline,
/// carriage return, backslash) and NULLs arrive unchanged through a batch of inserts.
pub async fn batched_inserts_keep_escaped_characters(kind: Kind) {
    use tandem::model::Value as V;
    let mut f = Fixture::new(kind, "", 0).await;
    let mut a = f.applier().await;
    let text = "tab\there\nnew line\r\\N \\x41 back\\slash \\.";
    let row = |id: i64| {
        let t = match id {
            1 => V::Text(text.into()),
            2 => V::Text("\\N".into()),
            _ => V::Null,
        };
        vec![
            ("id", V::Int(id)),
            ("t", t),
            ("bin", V::Bytes(vec![b'\\', b'\t', b'\n', 0, 255])),
            ("j", V::Json("{\"a\": \"x\\\\y\\n\"}".into())),
            ("_tandem_version", V::Int(1)),
            ("_tandem_origin", V::Text(f.source.clone())),
        ]
    };
    let typed = f.source_table("typed");
    let inserts = (1..=3)
        .map(|id| tandem::model::Change {
            table: typed.clone(),
            op: Op::Insert,
            before: None,
            after: Some(image(&row(id))),
        })
        .collect();
    a.apply(&[f.tx(1, inserts)]).await.expect("insert");
    assert!(f.conflicts().await.is_empty(), "{:?}", f.conflicts().await);
    let q = match kind {
        Kind::Pg => "SELECT t, encode(bin, 'hex'), j->>'a' FROM typed ORDER BY id",
        Kind::My => "SELECT t, LOWER(HEX(bin)), JSON_VALUE(j, '$.a') FROM typed ORDER BY id",
    };
    let got = f.db.rows(q).await;
    let want = |t: Option<&str>| vec![t.map(String::from), s("5c090a00ff"), s("x\\y\n")];
    assert_eq!(
        got,
        vec![want(Some(text)), want(Some("\\N")), want(None)],
        "the rows as inserted"
    );
}

/// The source transactions of one group commit together, so their changes are batched across
/// transaction boundaries: one-row transactions of updates, deletes and inserts, some of whose
/// version checks fail, leave what applying them one group each leaves, and each conflict record
/// names its own transaction's position.
pub async fn a_group_of_one_row_transactions_matches_one_at_a_time(kind: Kind) {
    let mut outcomes = Vec::new();
    for grouped in [true, false] {
        let mut f = Fixture::new(kind, "", 0).await;
        let mut a = f.applier().await;
        let inserts = inserts_at_5(&f, 1..=8);
        a.apply(&[f.tx(1, inserts)]).await.expect("inserts");
        // Local writes the source has not seen: the checks of 3 (update) and 6 (delete) fail.
        f.db.exec("UPDATE customer SET email = 'local@x' WHERE id IN (3, 6)")
            .await;
        let mut changes: Vec<tandem::model::Change> = (1..=5)
            .map(|id| {
                f.change(
                    Op::Update,
                    Some(customer(id, &format!("r{id}"), "x@x", 5, SOURCE)),
                    Some(customer(id, &format!("u{id}"), "x@x", 6, SOURCE)),
                )
            })
            .collect();
        changes.extend((6..=8).map(|id| {
            f.change(
                Op::Delete,
                Some(customer(id, &format!("r{id}"), "x@x", 5, SOURCE)),
                None,
            )
        }));
        changes.extend([20, 21, 22].map(|id| {
            f.change(
                Op::Insert,
                None,
                Some(customer(id, &format!("n{id}"), "x@x", 9, SOURCE)),
            )
        }));
        let txs: Vec<_> = changes
            .into_iter()
            .enumerate()
            .map(|(i, c)| f.tx(10 + i as u64, vec![c]))
            .collect();
        if grouped {
            a.apply(&txs).await.expect("the group");
        } else {
            for tx in &txs {
                a.apply(std::slice::from_ref(tx)).await.expect("one");
            }
        }
        let mut got = outcome(&mut f).await;
        got.extend(
            f.db.rows(&format!(
                "SELECT kind, source_position FROM {} ORDER BY id",
                f.book("conflict")
            ))
            .await,
        );
        let positions: Vec<_> = got
            .iter()
            .filter(|r| r.len() == 2)
            .map(|r| (r[0].clone(), r[1].clone()))
            .collect();
        assert_eq!(
            positions,
            [
                (s("update_differs"), Some(f.position(12).to_string())),
                (s("delete_differs"), Some(f.position(15).to_string())),
            ],
            "grouped {grouped}"
        );
        outcomes.push(got);
    }
    assert_eq!(
        outcomes[0], outcomes[1],
        "grouped (left) and one at a time (right) differ"
    );
}
