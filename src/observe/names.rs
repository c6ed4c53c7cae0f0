//! Every metric tandem exports, named once: `tandem_<noun>_<unit>[_total]`. Labels are `link`
//! (`<source>_to_<target>`), `table` (business table), `kind`, `decision` and `stage`, all bounded by
//! the configuration file or by the code.

/// Source transactions read by a link (heartbeats and tandem's own echoes included).
pub const TRANSACTIONS_CAPTURED: &str = "tandem_transactions_captured_total";
/// Row changes in the source transactions a link read (heartbeats excluded).
pub const CHANGES_CAPTURED: &str = "tandem_changes_captured_total";
/// Source transactions committed on the target (heartbeats and echoes excluded).
pub const TRANSACTIONS_APPLIED: &str = "tandem_transactions_applied_total";
/// Row changes in the transactions committed on the target (heartbeats and echoes excluded).
pub const CHANGES_APPLIED: &str = "tandem_changes_applied_total";
/// Transactions tandem applied itself, recognised and not sent back.
pub const ECHOES_SKIPPED: &str = "tandem_echoes_skipped_total";
/// Heartbeat transactions a link carried (progress without data).
pub const HEARTBEATS: &str = "tandem_heartbeats_total";
/// Bytes read from the source log (pgoutput payloads; binlog events).
pub const SOURCE_READ_BYTES: &str = "tandem_source_read_bytes_total";
/// Seconds from the source commit of the last applied transaction to now while the link is behind
/// or stopped; the last commit-to-commit delay while it is caught up.
pub const LAG_SECONDS: &str = "tandem_link_lag_seconds";
/// Source log not yet applied: WAL bytes after the slot's confirmed position (PostgreSQL), binlog
/// bytes after the checkpoint (MySQL/MariaDB file positions).
pub const LAG_BYTES: &str = "tandem_link_lag_bytes";
/// Source transactions not yet applied, counted in GTIDs (MariaDB GTID positions).
pub const LAG_TRANSACTIONS: &str = "tandem_link_lag_transactions";
/// Source log the link holds back: WAL retained by the slot (PostgreSQL), binlog bytes from the
/// checkpoint's file on (MySQL/MariaDB).
pub const RETAINED_BYTES: &str = "tandem_source_retained_bytes";
/// 1 while the link's position is no longer in the source log (slot lost or binlog purged).
pub const POSITION_LOST: &str = "tandem_source_position_lost";
/// 1 while the link is running or catching up, 0 when starting, halted or stopped.
pub const LINK_UP: &str = "tandem_link_up";
/// Unix time of the last target commit of the link.
pub const LAST_APPLIED: &str = "tandem_link_last_applied_timestamp_seconds";
/// Time to apply one target transaction (a group of source transactions), retries included.
pub const APPLY_DURATION: &str = "tandem_apply_duration_seconds";
/// Conflicts decided, by `kind` and `decision`.
pub const CONFLICTS: &str = "tandem_conflicts_total";
/// Transactions sent to the dead-letter table.
pub const DEAD_LETTERS: &str = "tandem_dead_letters_total";
/// Retries after transient errors, by `stage` (`apply`: one target transaction; `link`: the whole
/// link restarted from its checkpoint).
pub const RETRIES: &str = "tandem_retries_total";
/// Reconnects of the source stream after transient failures.
pub const RECONNECTS: &str = "tandem_reconnects_total";
/// Source transactions held in memory for the target transaction being applied.
pub const QUEUE_TRANSACTIONS: &str = "tandem_queue_transactions";
/// Bytes of spill files held by the transactions being applied.
pub const SPILL_BYTES: &str = "tandem_spill_bytes";
/// Transactions that went through a spill file.
pub const SPILLED_TRANSACTIONS: &str = "tandem_spilled_transactions_total";
/// Conflicts not resolved yet (parked for review or deferred), per link, on its target.
pub const CONFLICTS_OPEN: &str = "tandem_conflicts_open";
/// The manual review queue: conflicts parked for a person, per link, on its target.
pub const REVIEW_QUEUE: &str = "tandem_review_queue_conflicts";
/// Age of the oldest parked conflict of the link (0 when none).
pub const OLDEST_PARKED_AGE: &str = "tandem_oldest_parked_conflict_age_seconds";
/// Dead letters still open (not replayed), per link, on its target.
pub const DEAD_LETTERS_OPEN: &str = "tandem_dead_letters_open";
/// 1 while a table's changes toward the link's target are held by a schema pause (a column or the
/// table the target had is gone), per link and `table`.
pub const TABLE_PAUSED: &str = "tandem_table_paused";
/// Columns of a table's changes that stay on the source: the target lacks them (it never had
/// them), per link and `table`.
pub const COLUMNS_NOT_SYNCED: &str = "tandem_columns_not_synced";

/// Differences the last `tandem verify` of a table found (that persisted), per `table`.
pub const VERIFY_DIFFERENCES: &str = "tandem_verify_differences";
/// Seconds since the last `tandem verify` of a table finished, per `table`.
pub const VERIFY_AGE: &str = "tandem_verify_age_seconds";

/// Buckets of [`APPLY_DURATION`], in seconds.
pub const APPLY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Describes every metric to the recorder (the `# HELP` lines).
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        TRANSACTIONS_CAPTURED,
        "Source transactions read by the link"
    );
    describe_counter!(CHANGES_CAPTURED, "Row changes read by the link");
    describe_counter!(
        TRANSACTIONS_APPLIED,
        "Source transactions committed on the target"
    );
    describe_counter!(CHANGES_APPLIED, "Row changes committed on the target");
    describe_counter!(
        ECHOES_SKIPPED,
        "Transactions tandem applied itself, not sent back"
    );
    describe_counter!(HEARTBEATS, "Heartbeat transactions carried by the link");
    describe_counter!(
        SOURCE_READ_BYTES,
        Unit::Bytes,
        "Bytes read from the source log"
    );
    describe_gauge!(
        LAG_SECONDS,
        Unit::Seconds,
        "Lag from source commit to target commit"
    );
    describe_gauge!(LAG_BYTES, Unit::Bytes, "Source log not yet applied");
    describe_gauge!(LAG_TRANSACTIONS, "Source GTIDs not yet applied");
    describe_gauge!(
        RETAINED_BYTES,
        Unit::Bytes,
        "Source log held back by the link"
    );
    describe_gauge!(
        POSITION_LOST,
        "1 while the link's position is gone from the source log"
    );
    describe_gauge!(LINK_UP, "1 while the link is running or catching up");
    describe_gauge!(
        LAST_APPLIED,
        Unit::Seconds,
        "Unix time of the last target commit"
    );
    describe_histogram!(
        APPLY_DURATION,
        Unit::Seconds,
        "Time to apply one target transaction"
    );
    describe_counter!(CONFLICTS, "Conflicts decided, by kind and decision");
    describe_counter!(DEAD_LETTERS, "Transactions sent to the dead-letter table");
    describe_counter!(RETRIES, "Retries after transient errors, by stage");
    describe_counter!(RECONNECTS, "Reconnects of the source stream");
    describe_gauge!(
        QUEUE_TRANSACTIONS,
        "Transactions held in memory for the apply in flight"
    );
    describe_gauge!(
        SPILL_BYTES,
        Unit::Bytes,
        "Spill files held by the apply in flight"
    );
    describe_counter!(
        SPILLED_TRANSACTIONS,
        "Transactions that went through a spill file"
    );
    describe_gauge!(CONFLICTS_OPEN, "Conflicts parked or deferred on the target");
    describe_gauge!(
        REVIEW_QUEUE,
        "Conflicts parked for manual review on the target"
    );
    describe_gauge!(
        OLDEST_PARKED_AGE,
        Unit::Seconds,
        "Age of the oldest parked conflict"
    );
    describe_gauge!(DEAD_LETTERS_OPEN, "Dead letters not replayed on the target");
    describe_gauge!(
        TABLE_PAUSED,
        "1 while the table's changes toward the target are held by a schema change"
    );
    describe_gauge!(
        COLUMNS_NOT_SYNCED,
        "Columns of the table's changes the target lacks: they stay on the source"
    );
    describe_gauge!(
        VERIFY_DIFFERENCES,
        "Differences the last tandem verify of the table found"
    );
    describe_gauge!(
        VERIFY_AGE,
        Unit::Seconds,
        "Time since the last tandem verify of the table finished"
    );
}

/// Every metric name, for the README check and the endpoint test.
pub const ALL: [&str; 28] = [
    TRANSACTIONS_CAPTURED,
    CHANGES_CAPTURED,
    TRANSACTIONS_APPLIED,
    CHANGES_APPLIED,
    ECHOES_SKIPPED,
    HEARTBEATS,
    SOURCE_READ_BYTES,
    LAG_SECONDS,
    LAG_BYTES,
    LAG_TRANSACTIONS,
    RETAINED_BYTES,
    POSITION_LOST,
    LINK_UP,
    LAST_APPLIED,
    APPLY_DURATION,
    CONFLICTS,
    DEAD_LETTERS,
    RETRIES,
    RECONNECTS,
    QUEUE_TRANSACTIONS,
    SPILL_BYTES,
    SPILLED_TRANSACTIONS,
    CONFLICTS_OPEN,
    REVIEW_QUEUE,
    OLDEST_PARKED_AGE,
    DEAD_LETTERS_OPEN,
    VERIFY_DIFFERENCES,
    VERIFY_AGE,
];

#[cfg(test)]
mod tests {
    #[test]
    fn every_metric_is_documented_in_the_readme() {
        let readme = include_str!("../../README.md");
        for name in super::ALL {
            assert!(
                readme.contains(&format!("| `{name}` |")),
                "README.md has no row for {name} in its metrics table"
            );
        }
    }
}
