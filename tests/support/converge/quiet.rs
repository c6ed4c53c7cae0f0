//! The echo check: once the links drain, neither node's log grows.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use tandem::harness::MariaDb;

use super::{maria_snapshot, pg_snapshot};
use crate::support::{unique_name, wait_for, Pair};

/// Marker keys, above every contested key.
const MARKERS: [i32; 2] = [1001, 1002];

/// Nothing echoes: once the links drain, neither node's log grows.
///
/// A probe slot (`test_decoding`) on crm counts every transaction that changes a row; MariaDB's
/// `@@gtid_binlog_pos` counts every binlog transaction (heartbeats are off). One marker row written on
/// each node drains the links: each log is ordered, so anything in flight before a marker has been
/// applied once the marker is on both nodes. The markers must add exactly two transactions to each
/// log (the local insert and the applied one), and after that the logs must stand still for several
/// polls over some seconds. An echo (tandem sending back what it applied) would be a new transaction.
pub async fn assert_quiet(p: &Pair, what: &str) {
    let slot = unique_name("probe");
    let c = p.pg.connect("crm").await.expect("connect to crm");
    c.query_one(
        "SELECT 1 FROM pg_create_logical_replication_slot($1, 'test_decoding')",
        &[&slot],
    )
    .await
    .expect("create the probe slot");
    let gtid_before = gtid_count(&p.maria).await;
    c.batch_execute(&format!(
        "INSERT INTO items VALUES ({}, 0, 'marker')",
        MARKERS[0]
    ))
    .await
    .expect("crm marker");
    let mut m = p.maria.connect("desk").await.expect("connect to helpdesk");
    m.query_drop(format!(
        "INSERT INTO items VALUES ({}, 0, 'marker')",
        MARKERS[1]
    ))
    .await
    .expect("helpdesk marker");
    m.disconnect().await.ok();
    wait_for(
        "both markers on both nodes",
        Duration::from_secs(60),
        || async {
            let (a, b) = (pg_snapshot(&p.pg).await, maria_snapshot(&p.maria).await);
            MARKERS
                .iter()
                .all(|k| a.items.contains_key(k) && b.items.contains_key(k))
                .then_some(())
        },
    )
    .await;
    let changes = probe_changes(&c, &slot).await;
    let begins = changes.iter().filter(|l| l.starts_with("BEGIN")).count();
    let gtid_after = gtid_count(&p.maria).await;
    assert!(
        begins == 2 && gtid_after.0 == gtid_before.0 + 2,
        "{what}: two markers should add two transactions to each log; crm got {begins}: {changes:#?}; \
         helpdesk's binlog went from {} to {}",
        gtid_before.1,
        gtid_after.1
    );
    for _ in 0..15 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = probe_changes(&c, &slot).await;
        assert_eq!(
            now, changes,
            "{what}: crm's log grew after the links drained (an echo)"
        );
        let gtid = gtid_count(&p.maria).await;
        assert_eq!(
            gtid.1, gtid_after.1,
            "{what}: helpdesk's binlog grew after the links drained (an echo)"
        );
    }
    c.query_one("SELECT pg_drop_replication_slot($1)", &[&slot])
        .await
        .expect("drop the probe slot");
}

/// The transactions with row changes that the probe slot has seen (`BEGIN` and `table` lines).
async fn probe_changes(c: &tokio_postgres::Client, slot: &str) -> Vec<String> {
    c.query(
        "SELECT data FROM pg_logical_slot_peek_changes($1, NULL, NULL, 'skip-empty-xacts', '1') \
         WHERE data LIKE 'BEGIN%' OR data LIKE 'table%'",
        &[&slot],
    )
    .await
    .expect("peek the probe slot")
    .iter()
    .map(|r| r.get::<_, String>(0))
    .collect()
}

/// `@@gtid_binlog_pos` as the sum of its sequence numbers, and as text.
async fn gtid_count(maria: &MariaDb) -> (u64, String) {
    let mut m = maria.connect("desk").await.expect("connect to helpdesk");
    let pos: Option<String> = m
        .query_first("SELECT @@gtid_binlog_pos")
        .await
        .expect("read gtid_binlog_pos");
    m.disconnect().await.ok();
    let pos = pos.unwrap_or_default();
    let sum = pos
        .split(',')
        .filter_map(|g| g.trim().rsplit('-').next()?.parse::<u64>().ok())
        .sum();
    (sum, pos)
}
