//! One source stream per node, whatever its engine: what `tandem tail` and the links read from.

use std::path::PathBuf;

use super::mysql::{MysqlCaptureError, MysqlSource, MysqlSourceOptions};
use super::postgres::{PgCaptureError, PgSource, PgSourceOptions};
use super::CaptureEvent;
use crate::config::{Config, Engine, Node};
use crate::model::{Position, TableRef};

/// Who reads the stream, which decides the slot or replica id it uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reader {
    /// `tandem tail`: a temporary slot (PostgreSQL) and a replica id of its own (MySQL/MariaDB); moves
    /// no link's position.
    Tail,
    /// The link from the node to `target`.
    Link { target: String },
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error(transparent)]
    Postgres(#[from] PgCaptureError),
    #[error(transparent)]
    Mysql(#[from] MysqlCaptureError),
    /// tandem's spill directory cannot be made private (or created); retrying will not help.
    #[error("spill directory: {0}")]
    SpillDir(#[source] std::io::Error),
}

impl CaptureError {
    pub fn is_transient(&self) -> bool {
        match self {
            CaptureError::Postgres(e) => e.is_transient(),
            CaptureError::Mysql(e) => e.is_transient(),
            CaptureError::SpillDir(_) => false,
        }
    }
}

/// Running totals of one stream since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceStats {
    /// Bytes of log read from the server (pgoutput XLogData payloads; binlog event bodies).
    pub bytes_read: u64,
    /// Reconnects after transient failures.
    pub reconnects: u64,
}

/// A node's change stream.
#[derive(Debug)]
pub enum Source {
    Postgres(Box<PgSource>),
    Mysql(Box<MysqlSource>),
}

/// The name of the publication `tandem setup` creates on every PostgreSQL node.
pub fn publication_name(config: &Config) -> String {
    config.settings.schema.clone()
}

/// The link's name in slots and logs: `<source>_to_<target>`.
pub fn link_name(source: &str, target: &str) -> String {
    format!("{source}_to_{target}")
}

/// The tables a node's streams read: every mapped table of the node, tandem's checkpoint table
/// (its writes mark the transactions tandem applied, which the loop guard drops), its heartbeat
/// table (progress on a quiet source; no mapping names it, so it is never applied as a row), and its
/// tombstone table (a local insert that revives tombstones tells the peers which deletes it had seen).
pub fn capture_tables(config: &Config, node: &Node) -> Vec<TableRef> {
    let mut tables: Vec<TableRef> = config.tables_on(&node.id);
    tables.push(TableRef::new(&config.settings.schema, "checkpoint"));
    tables.push(TableRef::new(
        &config.settings.schema,
        crate::observe::HEARTBEAT_TABLE,
    ));
    tables.push(TableRef::new(&config.settings.schema, "tombstone"));
    tables
}

/// The replica `server_id` a MySQL/MariaDB reader registers with: distinct per link, and one for tail.
pub fn replica_server_id(config: &Config, node: &Node, reader: &Reader) -> u32 {
    match reader {
        Reader::Tail => node.server_id + 99,
        Reader::Link { target } => {
            let index = config.nodes.keys().position(|k| k == target).unwrap_or(0) as u32;
            node.server_id + 1 + index
        }
    }
}

impl Source {
    /// Opens the node's stream for `reader`, resuming after `start` (`None`: from now).
    pub async fn open(
        config: &Config,
        node: &Node,
        reader: Reader,
        start: Option<Position>,
    ) -> Result<Source, CaptureError> {
        let spill_dir = crate::model::spill::private_dir(
            &config
                .settings
                .spill_dir
                .as_ref()
                .map_or_else(std::env::temp_dir, PathBuf::from),
        );
        let swept = crate::model::spill::prepare_dir(&spill_dir).map_err(CaptureError::SpillDir)?;
        if swept > 0 {
            tracing::info!(node = %node.id, dir = %spill_dir.display(), files = swept, "removed spill files of tandem processes that no longer run");
        }
        let memory_budget_bytes = usize::try_from(config.settings.memory_budget_mib)
            .unwrap_or(usize::MAX / (1 << 20))
            << 20;
        let tables = capture_tables(config, node);
        // A link forwards nothing tandem applied (the loop guard), so its reader need not decode it.
        let drop_applied = matches!(reader, Reader::Link { .. });
        match node.engine {
            Engine::Postgres => {
                let (slot, temporary_slot) = match &reader {
                    Reader::Tail => (
                        format!("tandem_tail_{}_{}", node.id, std::process::id()),
                        true,
                    ),
                    Reader::Link { target } => {
                        let slot = super::postgres::Slot::for_link(&node.id, target);
                        super::postgres::check_slot_moved(node.url.expose(), &slot).await?;
                        (slot.name, false)
                    }
                };
                let opts = PgSourceOptions {
                    node: node.id.as_str().into(),
                    url: node.url.expose().to_string(),
                    slot,
                    publication: publication_name(config),
                    temporary_slot,
                    tables,
                    memory_budget_bytes,
                    spill_dir,
                    drop_applied,
                    origin_none: drop_applied && !node.forward_replicated,
                    start,
                };
                Ok(Source::Postgres(Box::new(PgSource::connect(opts).await?)))
            }
            Engine::Mysql => {
                let opts = MysqlSourceOptions {
                    node: node.id.as_str().into(),
                    url: node.url.expose().to_string(),
                    server_id: replica_server_id(config, node, &reader),
                    tables,
                    memory_budget_bytes,
                    spill_dir,
                    drop_applied,
                    start,
                };
                Ok(Source::Mysql(Box::new(MysqlSource::connect(opts).await?)))
            }
        }
    }

    /// The next transaction or heartbeat. Transient failures are retried inside; what comes out is
    /// definite.
    pub async fn next(&mut self) -> Result<CaptureEvent, CaptureError> {
        match self {
            Source::Postgres(s) => Ok(s.next().await?),
            Source::Mysql(s) => Ok(s.next().await?),
        }
    }

    /// Running totals of the stream, for metrics.
    pub fn stats(&self) -> SourceStats {
        match self {
            Source::Postgres(s) => SourceStats {
                bytes_read: s.bytes_read(),
                reconnects: s.reconnects(),
            },
            Source::Mysql(s) => SourceStats {
                bytes_read: s.bytes_read(),
                reconnects: s.reconnects(),
            },
        }
    }

    /// Tells the source that everything up to `position` is durably applied.
    pub fn confirm(&mut self, position: &Position) {
        match self {
            Source::Postgres(s) => s.confirm(position),
            Source::Mysql(s) => s.confirm(position),
        }
    }
}
