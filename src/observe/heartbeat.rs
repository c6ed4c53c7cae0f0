//! The heartbeat writer: with `[heartbeat] interval` set, `tandem run` updates `<schema>.heartbeat`
//! on every node whose links it runs. The write is captured by each outgoing link like any change, so
//! on a quiet database the link still commits its checkpoint (lag measured from a fresh commit time),
//! and the source releases its log (a PostgreSQL slot's confirmed position moves). No mapping names
//! the table, so the write is never applied as a row, and the target's checkpoint write it causes
//! is dropped by the loop guard like every write tandem makes.
//!
//! Error handling: a failed write is logged once per outage and retried at the next beat on a new
//! connection; heartbeats never stop a link.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use tracing::{info, warn};

use crate::config::{Config, Engine, Node};

enum Conn {
    Postgres(tokio_postgres::Client),
    Mysql(mysql_async::Conn),
}

/// Writes a heartbeat on `node` every `every`, until the task is dropped.
pub async fn run(config: std::sync::Arc<Config>, node: String, every: Duration) {
    let Some(n) = config.node(&node).cloned() else {
        return;
    };
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut conn: Option<Conn> = None;
    let mut failing = false;
    let mut beat: i64 = 0;
    info!(node = %node, interval_ms = every.as_millis() as u64, "heartbeats on");
    loop {
        ticker.tick().await;
        beat += 1;
        match write(&config, &n, &mut conn, beat).await {
            Ok(()) if failing => {
                info!(node = %node, "heartbeat written again");
                failing = false;
            }
            Ok(()) => {}
            Err(e) => {
                conn = None;
                if !failing {
                    warn!(node = %node, error = %crate::config::scrub(&e, &n.url), "heartbeat write failed; retrying at the next beat");
                    failing = true;
                }
            }
        }
    }
}

/// Writes one heartbeat on `node` on a connection of its own (`verify` uses it to make every link
/// out of a quiet node commit a checkpoint past a position).
pub(crate) async fn beat_once(config: &Config, node: &Node) -> Result<(), String> {
    let mut conn = None;
    write(config, node, &mut conn, 0).await
}

async fn write(
    config: &Config,
    n: &Node,
    conn: &mut Option<Conn>,
    beat: i64,
) -> Result<(), String> {
    if conn.is_none() {
        *conn = Some(match n.engine {
            Engine::Postgres => {
                let (client, c) = crate::connect::postgres(n.url.expose())
                    .await
                    .map_err(|e| e.to_string())?;
                tokio::spawn(async move {
                    let _ = c.await;
                });
                Conn::Postgres(client)
            }
            Engine::Mysql => Conn::Mysql(
                crate::connect::mysql(
                    crate::connect::mysql_opts(n.url.expose()).map_err(|e| e.to_string())?,
                )
                .await
                .map_err(|e| e.to_string())?,
            ),
        });
    }
    let schema = &config.settings.schema;
    match conn.as_mut() {
        Some(Conn::Postgres(c)) => {
            let sql = format!(
                "INSERT INTO {}.heartbeat (node, beat, beat_at) VALUES ($1, $2, now()) \
                 ON CONFLICT (node) DO UPDATE SET beat = EXCLUDED.beat, beat_at = now()",
                crate::apply::postgres::sql::ident(schema)
            );
            c.execute(&sql, &[&n.id, &beat])
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        }
        Some(Conn::Mysql(c)) => {
            let sql = format!(
                "INSERT INTO {}.heartbeat (node, beat, beat_at) VALUES (?, ?, UTC_TIMESTAMP(6)) \
                 ON DUPLICATE KEY UPDATE beat = VALUES(beat), beat_at = VALUES(beat_at)",
                crate::apply::mysql::sql::ident(schema)
            );
            c.exec_drop(sql, (n.id.clone(), beat))
                .await
                .map_err(|e| e.to_string())
        }
        None => Err("not connected".into()),
    }
}
