//! Convergence: random concurrent inserts, updates and deletes on both nodes over the same keys, under
//! each automatic conflict rule. After the writers stop and the links drain, every mapped row is equal
//! on both nodes, every writer transaction arrived exactly once, every conflict the writes forced left
//! an audit row, and nothing echoes. The workload and the checks are in `support::converge`;
//! `convergence_fire` runs the same while tandem is killed and the databases restart.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use std::time::Duration;

use mysql_async::prelude::Queryable;

use crate::support::converge::{
    assert_all, join_writers, pair, spawn_writers, start_run, wait_converged, Load,
};
use crate::support::{start_tandem_run, stop_tandem_run, wait_for};

async fn converge_under(rule: &str, rule_name: &str, deletes: bool) {
    let p = pair(rule).await;
    let (tandem, _traces) = start_run(&p).await;
    let load = Load {
        per_node: 2,
        seed: 0x9E37_79B9_85EB_CA6B,
        deletes,
        ops: 120,
        stop: Arc::new(AtomicBool::new(false)),
        pace_ms: 10,
    };
    let reports = join_writers(spawn_writers(&p, &load)).await;
    assert_all(&p, &format!("under `{rule_name}`"), rule_name, &reports).await;
    stop_tandem_run(tandem).await;
}

#[tokio::test]
async fn converge_last_write_wins() {
    converge_under("conflict = \"last_write_wins\"", "last_write_wins", false).await;
}

#[tokio::test]
async fn converge_prefer_a_node() {
    converge_under(
        "conflict = \"prefer\"\nprefer = \"helpdesk\"",
        "prefer",
        false,
    )
    .await;
}

#[tokio::test]
async fn converge_merge() {
    converge_under("conflict = \"merge\"", "merge", false).await;
}

#[tokio::test]
async fn converge_last_write_wins_with_deletes() {
    converge_under("conflict = \"last_write_wins\"", "last_write_wins", true).await;
}

#[tokio::test]
async fn converge_prefer_a_node_with_deletes() {
    converge_under(
        "conflict = \"prefer\"\nprefer = \"helpdesk\"",
        "prefer",
        true,
    )
    .await;
}

#[tokio::test]
async fn converge_merge_with_deletes() {
    converge_under("conflict = \"merge\"", "merge", true).await;
}

/// Under `merge`, helpdesk (the pair's decider) updates a row and then deletes it while crm, later,
/// changes another column. crm merges helpdesk's update into its newer row and keeps that row when
/// the delete arrives (the row is later than the delete); helpdesk never sees a conflict: it takes
/// crm's row whole, over its own older delete. Without more, crm ends with helpdesk's `n` and
/// helpdesk without it. The row that survives the delete holds a merge helpdesk never saw, and is
/// announced (rewritten as a local write) by the node that kept it, so both end with crm's merged
/// row.
#[tokio::test]
async fn a_merged_row_that_survives_a_delete_is_the_same_on_both_nodes() {
    let p = pair("conflict = \"merge\"").await;
    let run = start_tandem_run(&p.config, 2).await;
    let crm = p.pg.connect("crm").await.unwrap();
    crm.execute("INSERT INTO items VALUES (1, 0, 'a')", &[])
        .await
        .unwrap();
    wait_for(
        "the row reaches helpdesk",
        Duration::from_secs(60),
        || async {
            let mut c = p.maria.connect("desk").await.ok()?;
            let n: Option<i64> = c
                .query_first("SELECT COUNT(*) FROM items WHERE id = 1")
                .await
                .ok()?;
            c.disconnect().await.ok()?;
            (n == Some(1)).then_some(())
        },
    )
    .await;
    stop_tandem_run(run).await;
    let mut desk = p.maria.connect("desk").await.unwrap();
    desk.query_drop("UPDATE items SET n = 1 WHERE id = 1")
        .await
        .unwrap();
    desk.query_drop("DELETE FROM items WHERE id = 1")
        .await
        .unwrap();
    desk.disconnect().await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    crm.execute("UPDATE items SET label = 'x' WHERE id = 1", &[])
        .await
        .unwrap();
    let run = start_tandem_run(&p.config, 2).await;
    // Both links have met what they will meet (the nodes can look equal for a moment before crm
    // merges): crm the delete, helpdesk crm's update.
    wait_for(
        "both conflicts are decided",
        Duration::from_secs(60),
        || async {
            let on_crm: i64 = crm
                .query_one(
                    "SELECT count(*) FROM tandem.conflict WHERE kind = 'delete_differs'",
                    &[],
                )
                .await
                .ok()?
                .get(0);
            let mut c = p.maria.connect("desk").await.ok()?;
            let on_desk: Option<i64> = c
                .query_first("SELECT COUNT(*) FROM tandem.conflict WHERE kind = 'update_missing'")
                .await
                .ok()?;
            c.disconnect().await.ok()?;
            (on_crm == 1 && on_desk == Some(1)).then_some(())
        },
    )
    .await;
    let both = wait_converged(&p, "a merged row that survived a delete").await;
    let row = both.items.get(&1).expect("the row survives on both nodes");
    assert_eq!(
        (row[0].as_deref(), row[1].as_deref()),
        (Some("1"), Some("x")),
        "helpdesk's n merged with crm's label"
    );
    stop_tandem_run(run).await;
}
