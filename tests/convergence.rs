//! Convergence: random concurrent inserts, updates and deletes on both nodes over the same keys, under
//! each automatic conflict rule. After the writers stop and the links drain, every mapped row is equal
//! on both nodes, every writer transaction arrived exactly once, every conflict the writes forced left
//! an audit row, and nothing echoes. The workload and the checks are in `support::converge`;
//! `convergence_fire` runs the same while tandem is killed and the databases restart.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::support::converge::{assert_all, join_writers, pair, spawn_writers, start_run, Load};
use crate::support::stop_tandem_run;

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
