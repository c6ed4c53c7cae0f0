//! Apply scenarios, each run against both engines as the target (see apply_postgres.rs and
//! apply_mysql.rs). The batched path's (inserts, updates and deletes applied together, and what
//! they must leave alike with row by row) are in `batches.rs`; the review queue's (`manual` parks a
//! key, a steward resolves it) in `review_queue.rs`; the dead letters' (a definite error parks a
//! transaction, a replay applies it as it first came) in `dead_letters.rs`.

mod batches;
mod dead_letters;
mod review_queue;
pub use batches::*;
pub use dead_letters::*;
pub use review_queue::*;

use tandem::apply;
use tandem::model::Op;

use crate::apply_support::*;

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

pub async fn setup_is_idempotent_and_dry_run_lists_the_sql(kind: Kind) {
    let mut f = Fixture::new(kind, "", 0).await;
    let dry = apply::setup(&f.config, TARGET, true)
        .await
        .expect("dry run");
    assert!(dry.iter().any(|s| s.contains("checkpoint")), "{dry:#?}");
    assert!(dry.iter().any(|s| s.contains("dead_letter")), "{dry:#?}");
    assert!(dry.iter().any(|s| s.contains("_tandem_origin")), "{dry:#?}");
    let again = apply::setup(&f.config, TARGET, false)
        .await
        .expect("setup runs a second time");
    assert_eq!(dry, again);
    assert_eq!(
        f.db.one(&format!(
            "SELECT count(*) FROM {} WHERE version IN (1, 2, 3, 4, 5, 6)",
            f.book("schema_version")
        ))
        .await,
        s("6"),
        "schema versions 1 (bookkeeping), 2 (tombstones), 3 (heartbeats), 4 (copy progress), 5 (tombstones per node), 6 (keyless conflict records)"
    );
    // A local write is stamped with the local node and a time-based version.
    f.db.exec("INSERT INTO customer (id, name) VALUES (1, 'local')")
        .await;
    let row = f.row(1).await.expect("row");
    assert_eq!(row[3], s(TARGET));
    let version: i64 = row[2].clone().unwrap_or_default().parse().expect("version");
    assert!(
        version > 1_600_000_000_000_000,
        "version {version} carries the time"
    );
    f.db.exec("UPDATE customer SET name = 'again' WHERE id = 1")
        .await;
    let v2: i64 = f.row(1).await.expect("row")[2]
        .clone()
        .unwrap_or_default()
        .parse()
        .expect("v");
    assert!(v2 > version, "a local update advances the version");
    // A local delete leaves a tombstone keyed exactly as the applier keys rows, stamped with the
    // deleted row's version + 1.
    f.db.exec("DELETE FROM customer WHERE id = 1").await;
    let stone =
        f.db.rows(&format!(
            "SELECT row_key, version FROM {} WHERE target_table LIKE '%customer'",
            f.book("tombstone")
        ))
        .await;
    assert_eq!(stone.len(), 1, "{stone:?}");
    assert_eq!(stone[0][0], s("{\"id\":\"1\"}"));
    assert_eq!(stone[0][1], Some((v2 + 1).to_string()));
}

pub async fn applies_once_and_resumes_from_the_checkpoint(kind: Kind) {
    let mut f = Fixture::new(kind, "", 0).await;
    let mut a = f.applier().await;
    assert_eq!(a.committed(), None);
    let t1 = f.tx(
        100,
        vec![f.change(
            Op::Insert,
            None,
            Some(customer(1, "ann", "a@x", 10, SOURCE)),
        )],
    );
    let committed = a.apply(std::slice::from_ref(&t1)).await.expect("apply");
    assert_eq!(committed, Some(f.position(100)));
    assert_eq!(
        f.row(1).await,
        Some(vec![s("ann"), s("a@x"), s("10"), s(SOURCE)])
    );
    // Crash before the caller acknowledges: the applier is gone, the source redelivers t1.
    drop(a);
    let mut a = f.applier().await;
    assert_eq!(
        a.committed(),
        Some(&f.position(100)),
        "resumes from the target's checkpoint"
    );
    let t2 = f.tx(
        200,
        vec![f.change(
            Op::Update,
            Some(customer(1, "ann", "a@x", 10, SOURCE)),
            Some(customer(1, "anne", "a@x", 11, SOURCE)),
        )],
    );
    let committed = a.apply(&[t1, t2]).await.expect("apply");
    assert_eq!(committed, Some(f.position(200)));
    assert_eq!(
        f.row(1).await,
        Some(vec![s("anne"), s("a@x"), s("11"), s(SOURCE)])
    );
    assert!(
        f.conflicts().await.is_empty(),
        "the redelivered insert was skipped, not re-applied: {:?}",
        f.conflicts().await
    );
    let t3 = f.tx(
        300,
        vec![f.change(
            Op::Delete,
            Some(customer(1, "anne", "a@x", 11, SOURCE)),
            None,
        )],
    );
    a.apply(&[t3]).await.expect("apply delete");
    assert_eq!(f.row(1).await, None);
    assert_eq!(
        f.db.one(&format!(
            "SELECT position FROM {} WHERE source_node = '{SOURCE}'",
            f.book("checkpoint")
        ))
        .await,
        Some(f.position(300).to_string())
    );
}

/// Every conflict kind under last_write_wins, with the decisions the rules give.
pub async fn every_conflict_kind_is_detected_and_recorded(kind: Kind) {
    let mut f = Fixture::new(kind, "", 0).await;
    let mut a = f.applier().await;
    // insert_exists: the target has the key with a later local version; the incoming insert loses.
    f.db.exec("INSERT INTO customer (id, name, email) VALUES (1, 'local', 'l@x')")
        .await;
    a.apply(&[f.tx(
        1,
        vec![f.change(
            Op::Insert,
            None,
            Some(customer(1, "remote", "r@x", 5, SOURCE)),
        )],
    )])
    .await
    .expect("apply");
    assert_eq!(f.row(1).await.expect("row")[0], s("local"));
    // update_differs, incoming later (a huge version): incoming wins.
    let far = 9_000_000_000_000_000;
    a.apply(&[f.tx(
        2,
        vec![f.change(
            Op::Update,
            Some(customer(1, "old", "r@x", 5, SOURCE)),
            Some(customer(1, "newer", "r@x", far, SOURCE)),
        )],
    )])
    .await
    .expect("apply");
    assert_eq!(
        f.row(1).await,
        Some(vec![s("newer"), s("r@x"), Some(far.to_string()), s(SOURCE)])
    );
    // update_missing: no row 2; an update wins over a delete, so the row comes back.
    a.apply(&[f.tx(
        3,
        vec![f.change(
            Op::Update,
            Some(customer(2, "x", "x", 1, SOURCE)),
            Some(customer(2, "y", "x", 2, SOURCE)),
        )],
    )])
    .await
    .expect("apply");
    assert_eq!(
        f.row(2).await,
        Some(vec![s("y"), s("x"), s("2"), s(SOURCE)])
    );
    // delete_missing.
    a.apply(&[f.tx(
        4,
        vec![f.change(Op::Delete, Some(customer(3, "x", "x", 1, SOURCE)), None)],
    )])
    .await
    .expect("apply");
    // delete_differs: the row changed here since; the update wins, the row stays.
    f.db.exec("UPDATE customer SET email = 'changed@x' WHERE id = 1")
        .await;
    a.apply(&[f.tx(
        5,
        vec![f.change(
            Op::Delete,
            Some(customer(1, "newer", "r@x", far, SOURCE)),
            None,
        )],
    )])
    .await
    .expect("apply");
    assert_eq!(f.row(1).await.expect("row")[1], s("changed@x"));
    let kinds: Vec<(String, String)> = f
        .conflicts()
        .await
        .into_iter()
        .map(|(k, d, _)| (k, d))
        .collect();
    let expect = [
        ("insert_exists", "keep_current"),
        ("update_differs", "apply_incoming"),
        ("update_missing", "apply_incoming"),
        ("delete_missing", "keep_current"),
        ("delete_differs", "keep_current"),
    ];
    assert_eq!(
        kinds,
        expect
            .iter()
            .map(|(k, d)| (k.to_string(), d.to_string()))
            .collect::<Vec<_>>()
    );
    assert_eq!(a.committed(), Some(&f.position(5)));
}

pub async fn merge_keeps_columns_changed_on_one_side(kind: Kind) {
    let mut f = Fixture::new(kind, "conflict = \"merge\"", 0).await;
    let mut a = f.applier().await;
    a.apply(&[f.tx(
        1,
        vec![f.change(
            Op::Insert,
            None,
            Some(customer(1, "ann", "a@x", 10, SOURCE)),
        )],
    )])
    .await
    .expect("apply");
    f.db.exec("UPDATE customer SET email = 'here@x' WHERE id = 1")
        .await;
    a.apply(&[f.tx(
        2,
        vec![f.change(
            Op::Update,
            Some(customer(1, "ann", "a@x", 10, SOURCE)),
            Some(customer(1, "anna", "a@x", 11, SOURCE)),
        )],
    )])
    .await
    .expect("apply");
    let row = f.row(1).await.expect("row");
    assert_eq!(
        (row[0].clone(), row[1].clone()),
        (s("anna"), s("here@x")),
        "both one-sided changes survive"
    );
    assert_eq!(f.conflicts().await[0].1, "merge");
}

pub async fn prefer_and_owner_rules(kind: Kind) {
    let mut f = Fixture::new(
        kind,
        &format!("conflict = \"prefer\"\nprefer = \"{SOURCE}\""),
        0,
    )
    .await;
    let mut a = f.applier().await;
    f.replicated_then_edited_locally(&mut a).await;
    // The source is preferred: its older change wins over the later local one.
    a.apply(&[f.tx(
        2,
        vec![f.change(
            Op::Update,
            Some(customer(1, "ann", "a@x", 10, SOURCE)),
            Some(customer(1, "src", "a@x", 11, SOURCE)),
        )],
    )])
    .await
    .expect("apply");
    assert_eq!(f.row(1).await.expect("row")[0], s("src"));

    let mut g = Fixture::new(kind, &format!("owner = \"{TARGET}\""), 0).await;
    let mut b = g.applier().await;
    b.apply(&[g.tx(
        1,
        vec![g.change(
            Op::Insert,
            None,
            Some(customer(1, "ann", "a@x", 10, SOURCE)),
        )],
    )])
    .await
    .expect("apply");
    assert_eq!(
        g.row(1).await,
        None,
        "the target owns the table: the source's insert is not applied"
    );
    assert_eq!(g.conflicts().await[0].0, "not_owner");
}

pub async fn delete_policies_soft_and_ignore(kind: Kind) {
    let mut f = Fixture::new(kind, "deletes = { soft = \"gone\" }", 0).await;
    let mut a = f.applier().await;
    a.apply(&[f.tx(
        1,
        vec![f.change(
            Op::Insert,
            None,
            Some(customer(1, "ann", "a@x", 10, SOURCE)),
        )],
    )])
    .await
    .expect("apply");
    a.apply(&[f.tx(
        2,
        vec![f.change(
            Op::Delete,
            Some(customer(1, "ann", "a@x", 10, SOURCE)),
            None,
        )],
    )])
    .await
    .expect("apply");
    let gone = f.db.one("SELECT gone FROM customer WHERE id = 1").await;
    assert!(
        matches!(gone.as_deref(), Some("t" | "1")),
        "soft-deleted: {gone:?}"
    );

    let mut g = Fixture::new(kind, "deletes = \"ignore\"", 0).await;
    let mut b = g.applier().await;
    b.apply(&[g.tx(
        1,
        vec![g.change(
            Op::Insert,
            None,
            Some(customer(1, "ann", "a@x", 10, SOURCE)),
        )],
    )])
    .await
    .expect("apply");
    b.apply(&[g.tx(
        2,
        vec![g.change(
            Op::Delete,
            Some(customer(1, "ann", "a@x", 10, SOURCE)),
            None,
        )],
    )])
    .await
    .expect("apply");
    assert!(g.row(1).await.is_some(), "delete ignored");
}

/// Two tables in one source transaction: one target transaction, one checkpoint.
pub async fn a_multi_table_transaction_applies_whole(kind: Kind) {
    let mut f = Fixture::new(kind, "", 0).await;
    let mut a = f.applier().await;
    let order = tandem::model::Change {
        table: f.source_table("orders"),
        op: Op::Insert,
        before: None,
        after: Some(image(&[
            ("id", tandem::model::Value::Int(7)),
            ("customer_id", tandem::model::Value::Int(1)),
            (
                "total",
                tandem::model::Value::Decimal("12.50".parse().expect("decimal")),
            ),
        ])),
    };
    let tx = f.tx(
        1,
        vec![
            f.change(
                Op::Insert,
                None,
                Some(customer(1, "ann", "a@x", 10, SOURCE)),
            ),
            order,
        ],
    );
    a.apply(&[tx]).await.expect("apply");
    assert_eq!(
        f.db.one("SELECT total FROM orders WHERE id = 7").await,
        s("12.50")
    );
    assert_eq!(f.row(1).await.expect("row")[0], s("ann"));
}

/// Values of every common kind reach the target column as the same value, and an unsent (unchanged
/// TOAST) value leaves the target's column alone.
pub async fn values_of_every_kind_are_converted(kind: Kind) {
    use tandem::model::{parse_uuid, Value as V};
    let mut f = Fixture::new(kind, "", 0).await;
    let mut a = f.applier().await;
    let uuid = parse_uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").expect("uuid");
    let ts = 1_700_000_000_123_456;
    let fields = vec![
        ("id", V::Int(1)),
        ("b", V::Bool(true)),
        ("i", V::Int(-5)),
        ("f", V::Float64(1.5)),
        ("d", V::Decimal("12.345".parse().expect("decimal"))),
        ("t", V::Text("héllo 'q' \\ ,".into())),
        ("bin", V::Bytes(vec![0, 1, 255])),
        ("j", V::Json("{\"a\": 1}".into())),
        ("u", V::Uuid(uuid)),
        ("dt", V::Date(19_000)),
        ("tm", V::Time(3_723_000_001)),
        ("ts", V::Timestamp(ts)),
        ("tz", V::TimestampTz(ts)),
        ("_tandem_version", V::Int(1)),
        ("_tandem_origin", V::Text(f.source.clone())),
    ];
    let typed = f.source_table("typed");
    let insert = tandem::model::Change {
        table: typed.clone(),
        op: Op::Insert,
        before: None,
        after: Some(image(&fields)),
    };
    let nulls: Vec<(&str, V)> = fields
        .iter()
        .map(|(n, v)| {
            (
                *n,
                if ["id", "_tandem_version", "_tandem_origin"].contains(n) {
                    if *n == "id" {
                        V::Int(2)
                    } else {
                        v.clone()
                    }
                } else {
                    V::Null
                },
            )
        })
        .collect();
    let insert_nulls = tandem::model::Change {
        table: typed.clone(),
        op: Op::Insert,
        before: None,
        after: Some(image(&nulls)),
    };
    a.apply(&[f.tx(1, vec![insert, insert_nulls])])
        .await
        .expect("apply");
    f.db.exec(if kind == Kind::Pg {
        "SET TIME ZONE 'UTC'"
    } else {
        "SET time_zone = '+00:00'"
    })
    .await;
    let q = match kind {
        Kind::Pg => "SELECT b::text, i::text, f::text, d::text, t, encode(bin, 'hex'), j::text, u::text, dt::text, tm::text, ts::text, tz::text FROM typed WHERE id = 1",
        Kind::My => "SELECT CAST(b AS CHAR), CAST(i AS CHAR), CAST(f AS CHAR), CAST(d AS CHAR), t, LOWER(HEX(bin)), CAST(j AS CHAR), u, CAST(dt AS CHAR), CAST(tm AS CHAR), CAST(ts AS CHAR), CAST(tz AS CHAR) FROM typed WHERE id = 1",
    };
    let got = f.db.rows(q).await.into_iter().next().expect("row");
    let expect = [
        if kind == Kind::Pg { "true" } else { "1" },
        "-5",
        "1.5",
        "12.345",
        "héllo 'q' \\ ,",
        "0001ff",
        "{\"a\": 1}",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "2022-01-08",
        "01:02:03.000001",
        "2023-11-14 22:13:20.123456",
        if kind == Kind::Pg {
            "2023-11-14 22:13:20.123456+00"
        } else {
            "2023-11-14 22:13:20.123456"
        },
    ];
    let names = [
        "b", "i", "f", "d", "t", "bin", "j", "u", "dt", "tm", "ts", "tz",
    ];
    for ((name, want), have) in names.iter().zip(expect).zip(&got) {
        assert_eq!(
            have.as_deref(),
            Some(want),
            "table typed, key 1, column {name}"
        );
    }
    let nulls =
        f.db.rows("SELECT b, i, f, d, t, bin, j, u, dt, tm, ts, tz FROM typed WHERE id = 2")
            .await;
    assert!(
        nulls[0].iter().all(Option::is_none),
        "NULLs stay NULL: {:?}",
        nulls[0]
    );
    // An update whose after-image did not carry `t` (unchanged TOAST) leaves `t` as it is.
    let mut after: Vec<(&str, V)> = fields.clone();
    for (n, v) in after.iter_mut() {
        match *n {
            "t" => *v = V::Unchanged,
            "i" => *v = V::Int(6),
            "_tandem_version" => *v = V::Int(2),
            _ => {}
        }
    }
    let update = tandem::model::Change {
        table: typed,
        op: Op::Update,
        before: Some(image(&fields)),
        after: Some(image(&after)),
    };
    a.apply(&[f.tx(2, vec![update])]).await.expect("apply");
    assert_eq!(
        f.db.one("SELECT t FROM typed WHERE id = 1")
            .await
            .as_deref(),
        Some("héllo 'q' \\ ,")
    );
    assert_eq!(
        f.db.one(if kind == Kind::Pg {
            "SELECT i::text FROM typed WHERE id = 1"
        } else {
            "SELECT CAST(i AS CHAR) FROM typed WHERE id = 1"
        })
        .await,
        s("6")
    );
    assert!(f.conflicts().await.is_empty(), "{:?}", f.conflicts().await);
}

/// A definite error under `on_error = "halt"` stops the link: nothing is committed past it.
pub async fn halt_policy_stops_the_link(kind: Kind) {
    let mut f = Fixture::new(kind, "on_error = \"halt\"", 0).await;
    let mut a = f.applier().await;
    let bad = f.too_long_insert(1, 1);
    let err = a.apply(&[bad]).await.expect_err("halts");
    assert!(!err.is_transient(), "{err}");
    assert_eq!(a.committed(), None);
    assert!(a.list_dead_letters(false).await.expect("list").is_empty());
    assert_eq!(f.row(1).await, None);
}
