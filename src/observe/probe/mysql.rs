//! The MySQL/MariaDB side of a status probe: bookkeeping rows, the binary logs, the GTID state and
//! the connected binlog readers; and the pure arithmetic of how far a link is behind.

use mysql_async::prelude::{FromValue, Queryable};
use mysql_async::{Conn, Row};

use super::{NodeReport, SourceSide, TargetRow, VerifyRow};
use crate::apply::mysql::sql::ident;
use crate::config::{Config, Node};
use crate::model::{MariaGtidList, Position};

fn col<T: FromValue>(row: &Row, i: usize) -> Option<T> {
    row.get_opt::<Option<T>, usize>(i)
        .and_then(Result::ok)
        .flatten()
}

pub(super) async fn ask(config: &Config, node: &Node) -> Result<NodeReport, String> {
    let opts = crate::connect::mysql_opts(node.url.expose()).map_err(|e| e.to_string())?;
    let mut conn = crate::connect::mysql(opts)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let result = ask_on(&mut conn, config).await;
    let _ = conn.disconnect().await;
    result.map_err(|e| e.to_string())
}

async fn ask_on(c: &mut Conn, config: &Config) -> Result<NodeReport, mysql_async::Error> {
    let s = ident(&config.settings.schema);
    let mut report = NodeReport::default();
    // The bookkeeping DATETIMEs are written by sessions in UTC.
    c.query_drop("SET SESSION time_zone = '+00:00'").await?;
    let epoch = "'1970-01-01 00:00:00'";
    let rows: Vec<Row> = c
        .query(format!(
            "SELECT source_node, position, CAST(TIMESTAMPDIFF(MICROSECOND, {epoch}, commit_time) AS SIGNED), \
             CAST(TIMESTAMPDIFF(MICROSECOND, {epoch}, applied_at) AS SIGNED) FROM {s}.checkpoint"
        ))
        .await?;
    for r in rows {
        let Some(source) = col::<String>(&r, 0) else {
            continue;
        };
        let row = report.targets.entry(source).or_default();
        row.position = col(&r, 1);
        row.commit_micros = col(&r, 2);
        row.applied_micros = col(&r, 3);
    }
    let rows: Vec<Row> = c
        .query(format!(
            "SELECT source_node, COUNT(*), CAST(SUM(state = 'parked') AS SIGNED), \
             CAST(TIMESTAMPDIFF(MICROSECOND, MIN(CASE WHEN state = 'parked' THEN detected_at END), NOW(6)) AS SIGNED) \
             FROM {s}.conflict WHERE state <> 'resolved' GROUP BY source_node"
        ))
        .await?;
    for r in rows {
        let Some(source) = col::<String>(&r, 0) else {
            continue;
        };
        let row: &mut TargetRow = report.targets.entry(source).or_default();
        row.conflicts_open = col(&r, 1).unwrap_or(0);
        row.review_queue = col(&r, 2).unwrap_or(0);
        row.oldest_parked_secs = col::<i64>(&r, 3).map(|us| us as f64 / 1e6);
    }
    let rows: Vec<Row> = c
        .query(format!(
            "SELECT source_node, COUNT(*) FROM {s}.dead_letter WHERE state = 'open' GROUP BY source_node"
        ))
        .await?;
    for r in rows {
        if let Some(source) = col::<String>(&r, 0) {
            report.targets.entry(source).or_default().dead_letters_open = col(&r, 1).unwrap_or(0);
        }
    }
    // Bookkeeping version 11; a node set up before it has no held changes (not an error).
    if let Ok(rows) = c.query::<Row, _>(super::paused_query(&s)).await {
        for r in rows {
            let (Some(source), Some(table), Some(reason)) = (
                col::<String>(&r, 0),
                col::<String>(&r, 1),
                col::<String>(&r, 3),
            ) else {
                continue;
            };
            report
                .targets
                .entry(source)
                .or_default()
                .paused
                .push(super::PausedTable {
                    table,
                    held: col(&r, 2).unwrap_or(0),
                    reason,
                });
        }
    }
    // Bookkeeping version 9; a node set up before it has no results (not an error).
    if let Ok(rows) = c
        .query::<Row, _>(format!(
            "SELECT table_name, rows_compared, differences, repaired, \
             CAST(TIMESTAMPDIFF(MICROSECOND, finished_at, NOW(6)) AS SIGNED) FROM {s}.verify_result"
        ))
        .await
    {
        report.verify = rows
            .iter()
            .filter_map(|r| {
                Some(VerifyRow {
                    table: col(r, 0)?,
                    rows: col(r, 1)?,
                    differences: col(r, 2)?,
                    repaired: col(r, 3).unwrap_or(0),
                    age_secs: col::<i64>(r, 4)?.max(0) as f64 / 1e6,
                })
            })
            .collect();
    }
    let binlogs: Vec<(String, u64)> = c
        .query::<Row, _>("SHOW BINARY LOGS")
        .await?
        .iter()
        .filter_map(|r| Some((col(r, 0)?, col(r, 1)?)))
        .collect();
    let end = c
        .query_first::<Row, _>("SHOW MASTER STATUS")
        .await
        .ok()
        .flatten()
        .and_then(|r| Some((col(&r, 0)?, col(&r, 1)?)));
    // MariaDB only; MySQL has no such variable or function.
    let gtid_pos = c
        .query_first::<Option<String>, _>("SELECT @@gtid_binlog_pos")
        .await
        .ok()
        .flatten()
        .flatten();
    let oldest_gtid = match (gtid_pos.is_some(), binlogs.first()) {
        (true, Some((file, _))) => c
            .exec_first::<Option<String>, _, _>("SELECT BINLOG_GTID_POS(?, 4)", (file.clone(),))
            .await
            .ok()
            .flatten()
            .flatten(),
        _ => None,
    };
    let replicas = match c.query::<Row, _>("SHOW SLAVE HOSTS").await {
        Ok(rows) => rows.iter().filter_map(|r| col::<u32>(r, 0)).collect(),
        Err(_) => Vec::new(),
    };
    report.source = Some(SourceSide::Mysql {
        binlogs,
        end,
        gtid_pos,
        oldest_gtid,
        replicas,
    });
    Ok(report)
}

/// How far a checkpoint is behind the end of a MySQL/MariaDB binlog.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Distance {
    pub lag_bytes: Option<i64>,
    pub lag_transactions: Option<i64>,
    pub retained_bytes: Option<i64>,
    /// Why the checkpoint is no longer in the binlog, when it is not.
    pub lost: Option<String>,
}

pub(crate) fn distance(
    checkpoint: Option<&Position>,
    binlogs: &[(String, u64)],
    end: Option<&(String, u64)>,
    gtid_pos: Option<&str>,
    oldest_gtid: Option<&str>,
) -> Distance {
    let mut d = Distance::default();
    match checkpoint {
        Some(Position::Binlog(b)) => {
            let Some(i) = binlogs.iter().position(|(f, _)| *f == b.file) else {
                d.lost = Some(format!(
                    "binlog {} was purged; the link cannot resume",
                    b.file
                ));
                return d;
            };
            let held: u64 = binlogs[i..].iter().map(|(_, size)| size).sum();
            d.retained_bytes = Some(held as i64);
            let end_offset = match end {
                Some((f, o)) if *f == binlogs[binlogs.len() - 1].0 => *o,
                _ => binlogs[binlogs.len() - 1].1,
            };
            let last_size = binlogs[binlogs.len() - 1].1;
            let total = held - last_size + end_offset;
            d.lag_bytes = Some(total.saturating_sub(b.offset) as i64);
        }
        Some(Position::MariaGtid(have)) => {
            let now: Option<MariaGtidList> = gtid_pos.and_then(|g| g.parse().ok());
            if let Some(now) = now {
                let behind: u64 = now
                    .domains
                    .values()
                    .map(|g| {
                        let seen = have.domains.get(&g.domain).map_or(0, |h| h.seq);
                        g.seq.saturating_sub(seen)
                    })
                    .sum();
                d.lag_transactions = Some(behind as i64);
            }
            let oldest: Option<MariaGtidList> = oldest_gtid.and_then(|g| g.parse().ok());
            if let Some(oldest) = oldest {
                for g in oldest.domains.values() {
                    if have.domains.get(&g.domain).is_some_and(|h| h.seq < g.seq) {
                        d.lost = Some(format!(
                            "the binlogs holding GTIDs after {have} were purged; the link cannot resume"
                        ));
                    }
                }
            }
            d.retained_bytes = Some(binlogs.iter().map(|(_, s)| *s as i64).sum());
        }
        _ => {}
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logs() -> Vec<(String, u64)> {
        vec![("b.000001".into(), 1000), ("b.000002".into(), 500)]
    }

    #[test]
    fn file_position_distance_counts_bytes_to_the_end() {
        let p: Position = "binlog:b.000001:400".parse().unwrap();
        let end = ("b.000002".to_string(), 500);
        let d = distance(Some(&p), &logs(), Some(&end), None, None);
        assert_eq!(d.lag_bytes, Some(600 + 500));
        assert_eq!(d.retained_bytes, Some(1500));
        assert_eq!(d.lost, None);
        let caught_up: Position = "binlog:b.000002:500".parse().unwrap();
        let d = distance(Some(&caught_up), &logs(), Some(&end), None, None);
        assert_eq!(d.lag_bytes, Some(0));
    }

    #[test]
    fn a_purged_file_is_lost() {
        let p: Position = "binlog:b.000000:4".parse().unwrap();
        let d = distance(Some(&p), &logs(), None, None, None);
        assert!(d.lost.is_some_and(|l| l.contains("purged")));
    }

    #[test]
    fn gtid_distance_counts_transactions_and_spots_purged_ones() {
        let p: Position = "mariadb-gtid:0-1-10".parse().unwrap();
        let d = distance(Some(&p), &logs(), None, Some("0-1-25,1-2-3"), Some("0-1-2"));
        assert_eq!(d.lag_transactions, Some(15 + 3));
        assert_eq!(d.lost, None);
        let d = distance(Some(&p), &logs(), None, Some("0-1-25"), Some("0-1-12"));
        assert!(d.lost.is_some());
    }
}
