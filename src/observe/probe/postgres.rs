//! The PostgreSQL side of a status probe: bookkeeping rows and `pg_replication_slots`.

use super::{NodeReport, Slot, SourceSide, TargetRow, VerifyRow};
use crate::apply::postgres::sql::ident;
use crate::config::{Config, Node};

pub(super) async fn ask(config: &Config, node: &Node) -> Result<NodeReport, String> {
    let (client, conn) = crate::connect::postgres(node.url.expose())
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    let result = ask_on(&client, config).await;
    drop(client);
    let _ = task.await;
    result.map_err(|e| e.to_string())
}

async fn ask_on(
    c: &tokio_postgres::Client,
    config: &Config,
) -> Result<NodeReport, tokio_postgres::Error> {
    let s = ident(&config.settings.schema);
    let mut report = NodeReport::default();
    for r in c
        .query(
            &format!(
                "SELECT source_node, position, (extract(epoch from commit_time) * 1000000)::bigint, \
                 (extract(epoch from applied_at) * 1000000)::bigint FROM {s}.checkpoint"
            ),
            &[],
        )
        .await?
    {
        let row = report.targets.entry(r.get(0)).or_default();
        row.position = r.get(1);
        row.commit_micros = r.get(2);
        row.applied_micros = r.get(3);
    }
    for r in c
        .query(
            &format!(
                "SELECT source_node, count(*), count(*) FILTER (WHERE state = 'parked'), \
                 extract(epoch from now() - min(detected_at) FILTER (WHERE state = 'parked'))::float8 \
                 FROM {s}.conflict WHERE state <> 'resolved' GROUP BY source_node"
            ),
            &[],
        )
        .await?
    {
        let row: &mut TargetRow = report.targets.entry(r.get(0)).or_default();
        row.conflicts_open = r.get(1);
        row.review_queue = r.get(2);
        row.oldest_parked_secs = r.get(3);
    }
    for r in c
        .query(
            &format!(
                "SELECT source_node, count(*) FROM {s}.dead_letter WHERE state = 'open' GROUP BY source_node"
            ),
            &[],
        )
        .await?
    {
        report.targets.entry(r.get(0)).or_default().dead_letters_open = r.get(1);
    }
    // Bookkeeping version 11; a node set up before it has no held changes (not an error).
    if let Ok(rows) = c.query(&super::paused_query(&s), &[]).await {
        for r in rows {
            report
                .targets
                .entry(r.get(0))
                .or_default()
                .paused
                .push(super::PausedTable {
                    table: r.get(1),
                    held: r.get(2),
                    reason: r.get(3),
                });
        }
    }
    // Bookkeeping version 9; a node set up before it has no results (not an error).
    if let Ok(rows) = c
        .query(
            &format!(
                "SELECT table_name, rows_compared, differences, repaired, \
                 extract(epoch from now() - finished_at)::float8 FROM {s}.verify_result"
            ),
            &[],
        )
        .await
    {
        report.verify = rows
            .iter()
            .map(|r| VerifyRow {
                table: r.get(0),
                rows: r.get(1),
                differences: r.get(2),
                repaired: r.get(3),
                age_secs: r.get(4),
            })
            .collect();
    }
    let current_lsn: String = c
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await?
        .get(0);
    let mut slots = std::collections::BTreeMap::new();
    for r in c
        .query(
            "SELECT slot_name::text, active, confirmed_flush_lsn::text, \
             pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint, \
             pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint, wal_status \
             FROM pg_replication_slots WHERE slot_type = 'logical'",
            &[],
        )
        .await?
    {
        slots.insert(
            r.get::<_, String>(0),
            Slot {
                active: r.get(1),
                confirmed_flush: r.get(2),
                lag_bytes: r.get(3),
                retained_bytes: r.get(4),
                wal_status: r.get(5),
            },
        );
    }
    report.source = Some(SourceSide::Postgres { current_lsn, slots });
    Ok(report)
}
