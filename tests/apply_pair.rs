//! Two real nodes (PostgreSQL `p`, MariaDB `m`) write the same row concurrently; each applies the
//! other's change and both must end with the same row. Capture lands separately, so each side's
//! change is built from its own rows, as the capture would deliver it.

use tandem::apply::{self, Applier};
use tandem::config::Config;
use tandem::model::{
    BinlogPosition, Change, ChangeSet, LoopMarks, Lsn, Op, PgPosition, Position, RowImage,
    TableRef, Transaction, Value,
};

use crate::apply_support::*;
use crate::support::unique_name;

struct Pair {
    config: Config,
    p: Db,
    m: Db,
    m_db: String,
    seq: u64,
}

const TABLE: &str =
    "CREATE TABLE customer (id INT PRIMARY KEY, name VARCHAR(20), email VARCHAR(40))";

impl Pair {
    async fn new(table_extra: &str) -> Pair {
        Pair::with_nodes(table_extra, "").await
    }

    /// A pair whose file also names node `x` (a PostgreSQL database never set up): links from `x`
    /// into `p` or `m` apply real rows; `x` itself is only a name.
    async fn with_third(table_extra: &str) -> Pair {
        let x = format!(
            "[nodes.x]\nurl = \"{}\"\n",
            pg().await.url(&unique_name("px"))
        );
        Pair::with_nodes(table_extra, &x).await
    }

    async fn with_nodes(table_extra: &str, more_nodes: &str) -> Pair {
        let x_on = if more_nodes.is_empty() {
            ""
        } else {
            ", x = \"public.customer\""
        };
        let (p_db, m_db, schema) = (unique_name("pp"), unique_name("pm"), unique_name("tk"));
        pg().await.create_database(&p_db).await.expect("db");
        maria().await.create_database(&m_db).await.expect("db");
        let text = format!(
            r#"
[tandem]
schema = "{schema}"
[nodes.p]
url = "{}"
[nodes.m]
url = "{}"
{more_nodes}
[[tables]]
name = "customer"
key = ["id"]
on = {{ p = "public.customer", m = "{m_db}.customer"{x_on} }}
{table_extra}
"#,
            pg().await.url(&p_db),
            maria().await.url(&m_db)
        );
        let (config, _) = Config::from_str_with_env(&text, "pair.toml", &|_| None)
            .unwrap_or_else(|e| panic!("{:?}", e.problems));
        let mut p = Db::open(Kind::Pg, &p_db).await;
        let mut m = Db::open(Kind::My, &m_db).await;
        p.exec(TABLE).await;
        m.exec(TABLE).await;
        apply::setup(&config, "p", false).await.expect("setup p");
        apply::setup(&config, "m", false).await.expect("setup m");
        Pair {
            config,
            p,
            m,
            m_db,
            seq: 0,
        }
    }

    fn db(&mut self, node: &str) -> &mut Db {
        if node == "p" {
            &mut self.p
        } else {
            &mut self.m
        }
    }

    async fn image(&mut self, node: &str, id: i32) -> Option<RowImage> {
        let r = self
            .db(node)
            .rows(&format!(
                "SELECT name, email, _tandem_version, _tandem_origin FROM customer WHERE id = {id}"
            ))
            .await
            .into_iter()
            .next()?;
        let text = |i: usize| r[i].clone().unwrap_or_default();
        Some(customer(
            id,
            &text(0),
            &text(1),
            text(2).parse().expect("version"),
            &text(3),
        ))
    }

    /// The change `node` made to row `id` since `before`, as its capture would deliver it.
    async fn change(&mut self, node: &str, id: i32, before: Option<RowImage>) -> Transaction {
        let after = self.image(node, id).await;
        let op = match (&before, &after) {
            (None, _) => Op::Insert,
            (Some(_), Some(_)) => Op::Update,
            (Some(_), None) => Op::Delete,
        };
        let table = if node == "p" {
            TableRef::new("public", "customer")
        } else {
            TableRef::new(&self.m_db, "customer")
        };
        self.seq += 1;
        let position = if node == "p" {
            Position::Postgres(PgPosition {
                commit_lsn: Lsn(self.seq),
                lsn: Lsn(self.seq),
            })
        } else {
            Position::Binlog(BinlogPosition {
                file: "bin.000001".into(),
                offset: self.seq,
            })
        };
        Transaction {
            origin: node.into(),
            position,
            commit_time: 1_700_000_000_000_000,
            xid: None,
            marks: LoopMarks::default(),
            changes: ChangeSet::Memory(vec![Change {
                table,
                op,
                before,
                after,
            }]),
        }
    }

    async fn apply(&self, source: &str, target: &str, tx: Transaction) {
        let mut a = Applier::connect(&self.config, source, target)
            .await
            .expect("connect");
        a.apply(&[tx]).await.expect("apply");
    }

    /// Row 1 on both nodes, compared column by column (values, version, origin).
    async fn assert_converged(&mut self, id: i32) -> Option<RowImage> {
        let (p, m) = (self.image("p", id).await, self.image("m", id).await);
        assert_eq!(p, m, "row {id} differs between p (left) and m (right)");
        p
    }

    /// Inserts row 1 on p and replicates it to m.
    async fn seed(&mut self) -> RowImage {
        self.p
            .exec("INSERT INTO customer (id, name, email) VALUES (1, 'ann', 'a@x')")
            .await;
        let tx = self.change("p", 1, None).await;
        self.apply("p", "m", tx).await;
        self.assert_converged(1).await.expect("seeded")
    }

    /// p and m both update row 1 from the same base; each applies the other's change.
    async fn concurrent(&mut self, p_sql: &str, m_sql: &str) -> Option<RowImage> {
        self.crossed(p_sql, m_sql).await;
        self.assert_converged(1).await
    }

    /// Seeds row 1, edits it on both nodes, and delivers each edit to the other node.
    async fn crossed(&mut self, p_sql: &str, m_sql: &str) {
        let base = self.seed().await;
        self.p.exec(p_sql).await;
        self.m.exec(m_sql).await;
        let from_p = self.change("p", 1, Some(base.clone())).await;
        let from_m = self.change("m", 1, Some(base)).await;
        self.apply("p", "m", from_p).await;
        self.apply("m", "p", from_m).await;
    }

    /// The open conflict entries of `node`.
    async fn open_conflicts(&self, node: &str) -> Vec<tandem::conflict::audit::StoredConflict> {
        apply::list_conflicts(&self.config, node, true, 10)
            .await
            .expect("list")
    }
}

fn field(img: &RowImage, name: &str) -> Value {
    img.get(name).cloned().unwrap_or(Value::Null)
}

#[tokio::test]
async fn apply_pair_last_write_wins_converges() {
    let mut pair = Pair::new("").await;
    let row = pair
        .concurrent(
            "UPDATE customer SET name = 'p-name' WHERE id = 1",
            "UPDATE customer SET email = 'm@x' WHERE id = 1",
        )
        .await
        .expect("row");
    // m wrote last (its version is later): its whole row wins on both nodes.
    assert_eq!(field(&row, "name"), Value::Text("ann".into()));
    assert_eq!(field(&row, "email"), Value::Text("m@x".into()));
    assert_eq!(field(&row, "_tandem_origin"), Value::Text("m".into()));
}

/// Both nodes merge field by field; p, the decider of the pair (greater node id), then announces its
/// merged row as a local write, which m takes, so both end with the same row, version and origin.
#[tokio::test]
async fn apply_pair_merge_converges_with_both_changes() {
    let mut pair = Pair::new("conflict = \"merge\"").await;
    pair.crossed(
        "UPDATE customer SET name = 'p-name' WHERE id = 1",
        "UPDATE customer SET email = 'm@x' WHERE id = 1",
    )
    .await;
    // m merged p's change: the same row p merged before announcing it (same values, version, origin).
    let merged = pair.image("m", 1).await;
    let announced = pair.image("p", 1).await.expect("row");
    assert_eq!(
        field(&announced, "_tandem_origin"),
        Value::Text("p".into()),
        "the decider rewrote its merged row as a local write"
    );
    let entries = apply::list_conflicts(&pair.config, "p", false, 10)
        .await
        .expect("list");
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].record.decision, "merge");
    assert_eq!(entries[0].resolution.as_deref(), Some("announced"));
    assert_eq!(entries[0].record.state.as_str(), "resolved");
    let announcement = pair.change("p", 1, merged).await;
    pair.apply("p", "m", announcement).await;
    let row = pair.assert_converged(1).await.expect("row");
    assert_eq!(field(&row, "name"), Value::Text("p-name".into()));
    assert_eq!(field(&row, "email"), Value::Text("m@x".into()));
}

#[tokio::test]
async fn apply_pair_prefer_converges_on_the_preferred_node() {
    let mut pair = Pair::new("conflict = \"prefer\"\nprefer = \"p\"").await;
    let row = pair
        .concurrent(
            "UPDATE customer SET name = 'p-name' WHERE id = 1",
            "UPDATE customer SET name = 'm-name' WHERE id = 1",
        )
        .await
        .expect("row");
    assert_eq!(field(&row, "name"), Value::Text("p-name".into()));
    assert_eq!(field(&row, "_tandem_origin"), Value::Text("p".into()));
}

#[tokio::test]
async fn apply_pair_delete_against_update_converges() {
    let mut pair = Pair::new("").await;
    let row = pair
        .concurrent(
            "DELETE FROM customer WHERE id = 1",
            "UPDATE customer SET email = 'm@x' WHERE id = 1",
        )
        .await;
    let row = row.expect("the update wins on both nodes");
    assert_eq!(field(&row, "email"), Value::Text("m@x".into()));
}

/// A local update of a row tandem last wrote is a local change: stamped with the local node, and its
/// change replicates and applies cleanly on the other node (no conflict, no echo).
#[tokio::test]
async fn apply_pair_local_update_of_a_replicated_row_flows_back() {
    let mut pair = Pair::new("").await;
    let base = pair.seed().await;
    pair.m
        .exec("UPDATE customer SET name = 'm-edit' WHERE id = 1")
        .await;
    let edited = pair.image("m", 1).await.expect("row");
    assert_eq!(field(&edited, "_tandem_origin"), Value::Text("m".into()));
    let tx = pair.change("m", 1, Some(base)).await;
    pair.apply("m", "p", tx).await;
    let row = pair.assert_converged(1).await.expect("row");
    assert_eq!(field(&row, "name"), Value::Text("m-edit".into()));
}

/// Manual on both nodes: p (higher priority) parks, m defers. Keeping p's row on p is a local write
/// that replicates; m, deferring to p, takes it without a version check. Both end equal.
#[tokio::test]
async fn apply_pair_manual_resolved_on_the_decider_converges() {
    let mut pair = Pair::new("conflict = \"manual\"").await;
    pair.crossed(
        "UPDATE customer SET name = 'p-name' WHERE id = 1",
        "UPDATE customer SET name = 'm-name' WHERE id = 1",
    )
    .await;
    // Equal priorities: the greater node id, p, decides.
    let parked = pair.open_conflicts("p").await;
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert_eq!(parked[0].record.state.as_str(), "parked");
    let deferred = pair.open_conflicts("m").await;
    assert_eq!(deferred[0].record.state.as_str(), "deferred");
    let before = pair.image("p", 1).await;
    apply::resolve_conflict(
        &pair.config,
        "p",
        parked[0].id,
        &apply::Resolution::KeepCurrent,
        &apply::Signature::default(),
    )
    .await
    .expect("resolve");
    // The resolution is a local write on p: its change goes to m like any other.
    let resolution = pair.change("p", 1, before).await;
    pair.apply("p", "m", resolution).await;
    let row = pair.assert_converged(1).await.expect("row");
    assert_eq!(field(&row, "name"), Value::Text("p-name".into()));
    assert!(pair.open_conflicts("m").await.is_empty());
    assert!(pair.open_conflicts("p").await.is_empty());
}

/// Manual, resolved on the decider by taking the incoming row (m's): the resolution replicates, and
/// m, which deferred to p and holds that row already, closes its deferral without writing. A later
/// change from p is then version-checked again on m, not forced.
#[tokio::test]
async fn apply_pair_manual_take_incoming_closes_the_deferral() {
    let mut pair = Pair::new("conflict = \"manual\"").await;
    pair.crossed(
        "UPDATE customer SET name = 'p-name' WHERE id = 1",
        "UPDATE customer SET name = 'm-name' WHERE id = 1",
    )
    .await;
    let parked = pair.open_conflicts("p").await;
    assert_eq!(parked.len(), 1, "{parked:?}");
    let m_row = pair.image("m", 1).await.expect("row");
    let before = pair.image("p", 1).await;
    apply::resolve_conflict(
        &pair.config,
        "p",
        parked[0].id,
        &apply::Resolution::TakeIncoming,
        &apply::Signature::default(),
    )
    .await
    .expect("resolve");
    let row = pair.image("p", 1).await.expect("row");
    assert_eq!(row, m_row, "p holds m's row, version and origin included");
    let resolution = pair.change("p", 1, before).await;
    pair.apply("p", "m", resolution).await;
    assert_eq!(
        pair.image("m", 1).await.expect("row"),
        m_row,
        "m kept its row"
    );
    assert!(
        pair.open_conflicts("m").await.is_empty(),
        "m's deferral is closed"
    );
    // The next change from p is checked as usual: it applies cleanly on m's row.
    pair.p
        .exec("UPDATE customer SET name = 'p-later' WHERE id = 1")
        .await;
    let later = pair.change("p", 1, Some(m_row)).await;
    pair.apply("p", "m", later).await;
    let row = pair.assert_converged(1).await.expect("row");
    assert_eq!(field(&row, "name"), Value::Text("p-later".into()));
    for node in ["m", "p"] {
        assert!(pair.open_conflicts(node).await.is_empty());
    }
}

/// p deletes the row and inserts the key again while m updates it (after the re-insert): both nodes
/// weigh m's update against p's re-insert by time and end equal.
#[tokio::test]
async fn apply_pair_reinsert_during_a_concurrent_update_converges() {
    let mut pair = Pair::new("").await;
    let base = pair.seed().await;
    pair.p.exec("DELETE FROM customer WHERE id = 1").await;
    let delete = pair.change("p", 1, Some(base.clone())).await;
    pair.p
        .exec("INSERT INTO customer (id, name, email) VALUES (1, 'again', 'p2@x')")
        .await;
    let insert = pair.change("p", 1, None).await;
    pair.m
        .exec("UPDATE customer SET email = 'm@x' WHERE id = 1")
        .await;
    let update = pair.change("m", 1, Some(base)).await;
    pair.apply("p", "m", delete).await;
    pair.apply("p", "m", insert).await;
    pair.apply("m", "p", update).await;
    let row = pair.assert_converged(1).await.expect("row");
    assert_eq!(
        field(&row, "email"),
        Value::Text("m@x".into()),
        "m wrote last"
    );
}

/// Mesh: a key parked on p by the link m -> p holds on p for every link into p. The link x -> p,
/// connected before the key was parked, must not apply x's later update of that row over the
/// parked conflict (it used to, from a queue cache loaded when the link connected).
#[tokio::test]
async fn apply_pair_a_key_parked_by_one_link_holds_for_every_link_into_the_node() {
    let mut pair = Pair::with_third("conflict = \"manual\"").await;
    let mut from_x = Applier::connect(&pair.config, "x", "p")
        .await
        .expect("connect x -> p");
    pair.crossed(
        "UPDATE customer SET name = 'p-name' WHERE id = 1",
        "UPDATE customer SET name = 'm-name' WHERE id = 1",
    )
    .await;
    let parked = pair.open_conflicts("p").await;
    assert_eq!(parked.len(), 1, "{parked:?}");
    // x's update of row 1, made from p's current row (its version check alone would pass).
    let current = pair.image("p", 1).await.expect("row 1 on p");
    let version = match field(&current, "_tandem_version") {
        Value::Int(v) => v,
        other => panic!("version {other:?}"),
    };
    let tx = Transaction {
        origin: "x".into(),
        position: Position::Postgres(PgPosition {
            commit_lsn: Lsn(1),
            lsn: Lsn(1),
        }),
        commit_time: 1_700_000_000_000_000,
        xid: None,
        marks: LoopMarks::default(),
        changes: ChangeSet::Memory(vec![Change {
            table: TableRef::new("public", "customer"),
            op: Op::Update,
            before: Some(current.clone()),
            after: Some(customer(1, "x-name", "a@x", version + 1, "x")),
        }]),
    };
    from_x.apply(&[tx]).await.expect("apply x's update");
    assert_eq!(
        pair.image("p", 1).await,
        Some(current),
        "x's update was applied over a key under review"
    );
    let open = pair.open_conflicts("p").await;
    assert!(open.len() >= 2, "x's update waits in the queue: {open:?}");
}
