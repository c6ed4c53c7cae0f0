//! What every link looks like from the databases alone: the bookkeeping tables on each target
//! (checkpoint, open conflicts, open dead letters) and the source's own replication views (slot,
//! binlogs). `tandem status` asks once, with no tandem process needed; `tandem run` asks every few
//! seconds for the gauges no single process can count.
//!
//! ```text
//!  each node, concurrently:  as target ─ checkpoint, conflict, dead_letter  (per source node)
//!                            as source ─ slots + WAL end  |  binary logs + GTID state + replicas
//!  per link: combine the source side of its source with the target side of its target
//! ```
//!
//! Error handling: a node that cannot be reached leaves its fields empty and adds a problem to every
//! link it takes part in; the other nodes are still reported.

mod mysql;
mod postgres;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::capture::link_name;
use crate::config::{Config, Engine, Node};
use crate::model::Position;

/// One incoming link's bookkeeping on its target.
#[derive(Debug, Clone, Default)]
pub(crate) struct TargetRow {
    pub position: Option<String>,
    pub commit_micros: Option<i64>,
    pub applied_micros: Option<i64>,
    pub conflicts_open: i64,
    pub review_queue: i64,
    pub oldest_parked_secs: Option<f64>,
    pub dead_letters_open: i64,
    /// Tables paused by a schema change of this node (bookkeeping version 11).
    pub paused: Vec<PausedTable>,
}

/// A table whose changes toward a node are held by a schema change there.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PausedTable {
    pub table: String,
    /// Changes held, in order, in the node's bookkeeping (`held`).
    pub held: i64,
    /// Which column or table is gone, and the fix.
    pub reason: String,
}

/// The statement both engines answer with `(source_node, table_name, held, reason)` rows: each
/// paused table of each incoming link, with the reason of its oldest held change.
fn paused_query(schema: &str) -> String {
    format!(
        "SELECT h.source_node, h.table_name, c.n, h.reason FROM {schema}.held h JOIN \
         (SELECT source_node, table_name, MIN(id) AS first, COUNT(*) AS n FROM {schema}.held \
         GROUP BY source_node, table_name) c ON h.id = c.first ORDER BY h.source_node, h.table_name"
    )
}

/// A PostgreSQL slot as the server sees it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Slot {
    pub active: bool,
    pub confirmed_flush: Option<String>,
    pub lag_bytes: Option<i64>,
    pub retained_bytes: Option<i64>,
    pub wal_status: Option<String>,
}

/// What a source node says about its log.
#[derive(Debug, Clone)]
pub(crate) enum SourceSide {
    Postgres {
        current_lsn: String,
        slots: BTreeMap<String, Slot>,
    },
    Mysql {
        /// `(file, size)`, oldest first.
        binlogs: Vec<(String, u64)>,
        /// End of the log: `file`, `offset`.
        end: Option<(String, u64)>,
        /// `@@gtid_binlog_pos` (MariaDB).
        gtid_pos: Option<String>,
        /// The GTID state at the start of the oldest binlog (MariaDB).
        oldest_gtid: Option<String>,
        /// `server_id`s of the connected binlog readers.
        replicas: Vec<u32>,
    },
}

/// One table's last verify, as a node recorded it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct VerifyRow {
    pub table: String,
    pub rows: i64,
    pub differences: i64,
    pub repaired: i64,
    pub age_secs: f64,
}

/// A business table's most recent `tandem verify`, over the nodes that recorded one.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LastVerify {
    pub table: String,
    pub rows: i64,
    /// Differences that persisted (listed or not).
    pub differences: i64,
    /// Differences `--repair` settled by writing.
    pub repaired: i64,
    /// Seconds since it finished.
    pub age_seconds: f64,
}

/// Everything learned from one node.
#[derive(Debug, Clone, Default)]
pub(crate) struct NodeReport {
    /// Incoming links by source node.
    pub targets: BTreeMap<String, TargetRow>,
    /// The last verify of each table, as this node recorded it.
    pub verify: Vec<VerifyRow>,
    pub source: Option<SourceSide>,
    pub error: Option<String>,
}

/// One link, as `tandem status` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct LinkStatus {
    pub link: String,
    pub source: String,
    pub target: String,
    /// `streaming` (a reader is connected), `stopped` (none is), `lost` (its position is gone from
    /// the source log), `unknown` (a node could not be asked).
    pub state: String,
    /// The end of the source log now.
    pub source_position: Option<String>,
    /// The position the target committed (its checkpoint).
    pub confirmed_position: Option<String>,
    /// Seconds from the source commit of the last applied transaction to now.
    pub lag_seconds: Option<f64>,
    pub lag_bytes: Option<i64>,
    pub lag_transactions: Option<i64>,
    /// When the target last committed for this link (UTC, RFC 3339).
    pub last_applied: Option<String>,
    pub conflicts_open: i64,
    pub review_queue: i64,
    pub oldest_parked_seconds: Option<f64>,
    pub dead_letters_open: i64,
    /// Tables whose changes wait for a schema fix on the target.
    pub paused: Vec<PausedTable>,
    /// Source log held back for this link.
    pub retained_bytes: Option<i64>,
    /// `ok`, `at_risk: …` or `lost: …`.
    pub retention: String,
    pub problems: Vec<String>,
}

impl LinkStatus {
    /// A link nothing is known of yet: state `unknown`, no positions, nothing open.
    pub fn unknown(source: &str, target: &str) -> LinkStatus {
        LinkStatus {
            link: link_name(source, target),
            source: source.to_string(),
            target: target.to_string(),
            state: "unknown".into(),
            source_position: None,
            confirmed_position: None,
            lag_seconds: None,
            lag_bytes: None,
            lag_transactions: None,
            last_applied: None,
            conflicts_open: 0,
            review_queue: 0,
            oldest_parked_seconds: None,
            dead_letters_open: 0,
            paused: Vec::new(),
            retained_bytes: None,
            retention: "ok".into(),
            problems: Vec::new(),
        }
    }

    /// Whether an operator should look at this link.
    pub fn needs_attention(&self) -> bool {
        self.state != "streaming"
            || self.retention != "ok"
            || self.dead_letters_open > 0
            || self.review_queue > 0
            || !self.paused.is_empty()
            || !self.problems.is_empty()
    }
}

/// Asks one node; connections are opened per call (a status is rare, the gauges every few seconds).
pub(crate) async fn ask_node(config: &Config, node: &Node) -> NodeReport {
    let result = match node.engine {
        Engine::Postgres => postgres::ask(config, node).await,
        Engine::Mysql => mysql::ask(config, node).await,
    };
    match result {
        Ok(r) => r,
        Err(e) => NodeReport {
            error: Some(crate::config::scrub(&e, &node.url)),
            ..NodeReport::default()
        },
    }
}

/// The status of every link between `nodes` (every node of the file when empty).
pub async fn status(config: &Config, only_source: Option<&str>) -> Vec<LinkStatus> {
    survey(config, only_source).await.0
}

/// The status of every link (as [`status`]) and each table's most recent verify.
pub async fn survey(
    config: &Config,
    only_source: Option<&str>,
) -> (Vec<LinkStatus>, Vec<LastVerify>) {
    let asks = config.nodes.values().map(|n| async move {
        let r = ask_node(config, n).await;
        (n.id.clone(), r)
    });
    let reports: BTreeMap<String, NodeReport> = futures_util::future::join_all(asks)
        .await
        .into_iter()
        .collect();
    let links = config
        .links()
        .into_iter()
        .filter(|(s, _)| only_source.is_none_or(|o| o == s))
        .map(|(s, t)| combine(config, &s, &t, &reports))
        .collect();
    (links, last_verify(reports.values().flat_map(|r| &r.verify)))
}

/// Per table, the youngest of the results the nodes recorded.
fn last_verify<'a>(rows: impl Iterator<Item = &'a VerifyRow>) -> Vec<LastVerify> {
    let mut by_table: BTreeMap<&str, &VerifyRow> = BTreeMap::new();
    for r in rows {
        let e = by_table.entry(r.table.as_str()).or_insert(r);
        if r.age_secs < e.age_secs {
            *e = r;
        }
    }
    by_table
        .into_values()
        .map(|r| LastVerify {
            table: r.table.clone(),
            rows: r.rows,
            differences: r.differences,
            repaired: r.repaired,
            age_seconds: r.age_secs,
        })
        .collect()
}

fn combine(
    config: &Config,
    source: &str,
    target: &str,
    reports: &BTreeMap<String, NodeReport>,
) -> LinkStatus {
    let mut st = LinkStatus::unknown(source, target);
    let now = super::now_micros();
    for node in [source, target] {
        if let Some(e) = reports.get(node).and_then(|r| r.error.as_ref()) {
            st.problems.push(format!("node {node}: {e}"));
        }
    }
    let row = reports
        .get(target)
        .and_then(|r| r.targets.get(source))
        .cloned()
        .unwrap_or_default();
    st.confirmed_position = row.position.clone();
    st.lag_seconds = row.commit_micros.map(|c| ((now - c) as f64 / 1e6).max(0.0));
    st.last_applied = row.applied_micros.map(rfc3339);
    st.conflicts_open = row.conflicts_open;
    st.review_queue = row.review_queue;
    st.oldest_parked_seconds = row.oldest_parked_secs;
    st.dead_letters_open = row.dead_letters_open;
    st.paused = row.paused.clone();
    let checkpoint: Option<Position> = row.position.as_deref().and_then(|p| p.parse().ok());
    match reports.get(source).and_then(|r| r.source.as_ref()) {
        Some(SourceSide::Postgres { current_lsn, slots }) => {
            st.source_position = Some(format!("pg:{current_lsn}"));
            let slot_name = crate::names::slot(source, target);
            match slots.get(&slot_name) {
                Some(slot) => {
                    st.state = if slot.active { "streaming" } else { "stopped" }.into();
                    st.lag_bytes = slot.lag_bytes;
                    st.retained_bytes = slot.retained_bytes;
                    st.retention = match slot.wal_status.as_deref() {
                        Some("lost") => "lost: the slot's WAL was removed; set the link up again".into(),
                        Some("unreserved") => "at_risk: WAL beyond max_slot_wal_keep_size; the next checkpoint may remove it".into(),
                        Some("extended") => "at_risk: the slot holds WAL beyond max_wal_size".into(),
                        _ => "ok".into(),
                    };
                    if st.retention.starts_with("lost") {
                        st.state = "lost".into();
                    }
                    if st.confirmed_position.is_none() {
                        st.confirmed_position =
                            slot.confirmed_flush.as_ref().map(|l| format!("pg:{l}"));
                    }
                }
                None => {
                    st.state = "lost".into();
                    st.retention =
                        format!("lost: no slot {slot_name} on {source}; run `tandem setup`");
                }
            }
        }
        Some(SourceSide::Mysql {
            binlogs,
            end,
            gtid_pos,
            oldest_gtid,
            replicas,
        }) => {
            let node = config.node(source);
            let reader = crate::capture::Reader::Link {
                target: target.to_string(),
            };
            let server_id = node.map(|n| crate::capture::replica_server_id(config, n, &reader));
            st.state = if server_id.is_some_and(|id| replicas.contains(&id)) {
                "streaming"
            } else {
                "stopped"
            }
            .into();
            st.source_position = match (gtid_pos, end) {
                (Some(g), _) if matches!(checkpoint, Some(Position::MariaGtid(_))) => {
                    Some(format!("mariadb-gtid:{g}"))
                }
                (_, Some((f, o))) => Some(format!("binlog:{f}:{o}")),
                (Some(g), None) => Some(format!("mariadb-gtid:{g}")),
                (None, None) => None,
            };
            let d = mysql::distance(
                checkpoint.as_ref(),
                binlogs,
                end.as_ref(),
                gtid_pos.as_deref(),
                oldest_gtid.as_deref(),
            );
            st.lag_bytes = d.lag_bytes;
            st.lag_transactions = d.lag_transactions;
            st.retained_bytes = d.retained_bytes;
            if let Some(lost) = d.lost {
                st.retention = format!("lost: {lost}");
                st.state = "lost".into();
            }
        }
        None => {}
    }
    st
}

fn rfc3339(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_youngest_verify_of_each_table_is_reported() {
        let row = |table: &str, differences, age_secs| VerifyRow {
            table: table.into(),
            rows: 10,
            differences,
            repaired: 0,
            age_secs,
        };
        let rows = [row("a", 3, 50.0), row("b", 0, 9.0), row("a", 1, 5.0)];
        let last = last_verify(rows.iter());
        assert_eq!(last.len(), 2);
        assert_eq!((last[0].table.as_str(), last[0].differences), ("a", 1));
        assert_eq!((last[1].table.as_str(), last[1].age_seconds), ("b", 9.0));
    }

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000_123_456), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400_000_000), "2000-02-29T00:00:00Z");
    }
}
