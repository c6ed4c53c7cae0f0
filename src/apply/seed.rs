//! Seeding a link's checkpoint at setup time, so that a link whose source has no slot to hold its place
//! (MySQL/MariaDB) starts where setup left it rather than wherever `tandem run` first connects: writes
//! made between `setup` and `run` are not lost.
//!
//! A PostgreSQL source needs no seed: its slot, created by setup, holds every change from then on.
//! An existing checkpoint is never replaced.

use mysql_async::prelude::Queryable;

use crate::config::{Config, Engine, Node};
use crate::model::Position;

/// The statement that records `position` as the checkpoint of `source` on `target`, unless one exists.
pub fn statement(config: &Config, target: &Node, source: &str, position: &Position) -> String {
    use crate::connect::quote::{mysql, postgres};
    let schema = &config.settings.schema;
    let position = position.to_string();
    match target.engine {
        Engine::Postgres => format!(
            "INSERT INTO {}.checkpoint (source_node, position) VALUES ({}, {}) ON CONFLICT (source_node) DO NOTHING",
            postgres::ident(schema),
            postgres::literal(source),
            postgres::literal(&position)
        ),
        Engine::Mysql => format!(
            "INSERT IGNORE INTO {}.checkpoint (source_node, position) VALUES ({}, {})",
            mysql::ident(schema),
            mysql::literal(source),
            mysql::literal(&position)
        ),
    }
}

/// Runs `sql` on `target`.
pub async fn run(target: &Node, sql: &str) -> Result<(), String> {
    let scrub = |e: String| crate::config::scrub(&e, &target.url);
    match target.engine {
        Engine::Postgres => {
            let (client, conn) = crate::connect::postgres(target.url.expose())
                .await
                .map_err(|e| scrub(e.to_string()))?;
            let task = tokio::spawn(conn);
            let r = client
                .batch_execute(sql)
                .await
                .map_err(|e| scrub(e.to_string()));
            drop(client);
            let _ = task.await;
            r
        }
        Engine::Mysql => {
            let opts = crate::connect::mysql_opts(target.url.expose())
                .map_err(|e| scrub(e.to_string()))?;
            let mut conn = crate::connect::mysql(opts)
                .await
                .map_err(|e| scrub(e.to_string()))?;
            let r = conn.query_drop(sql).await.map_err(|e| scrub(e.to_string()));
            let _ = conn.disconnect().await;
            r
        }
    }
}
