//! `tandem setup`: the bookkeeping schema and, where `manage_columns` is on, the origin and version
//! columns and stamping triggers on every mapped table of one node. Every statement is idempotent, so
//! setup can run again after an upgrade or a new table; a dry run returns the statements unrun.

use crate::config::{Config, Engine};
use crate::model::TableRef;

/// A mapped table on the node being set up.
#[derive(Debug, Clone)]
pub struct SetupTable {
    pub table: TableRef,
    /// The managed version column to add, when the table names no version column of its own.
    pub managed_version: Option<String>,
    /// The key columns on this node, in key order (for the tombstone the delete trigger writes).
    pub key: Vec<String>,
    /// Why a PostgreSQL node logs the table's whole old rows (`REPLICA IDENTITY FULL`); `None`
    /// when the key and the old version are enough (see [`crate::config::Table::old_row_needed`]).
    pub old_row: Option<&'static str>,
}

/// The mapped tables of `node`.
pub fn tables_of(config: &Config, node: &str) -> Vec<SetupTable> {
    config
        .tables
        .iter()
        .filter_map(|t| {
            Some(SetupTable {
                table: t.physical.get(node)?.clone(),
                managed_version: t
                    .version
                    .is_none()
                    .then(|| config.settings.version_column.clone()),
                key: t
                    .key
                    .iter()
                    .map(|k| t.column_on(k, node).to_string())
                    .collect(),
                old_row: if config.settings.manage_columns {
                    t.old_row_needed()
                } else {
                    Some("setup does not manage the table's columns (manage_columns = false)")
                },
            })
        })
        .collect()
}

/// What setup installs on one mapped table of a node and what that costs the application's own
/// writes, for `tandem check` to show before anything is installed (measured by
/// `benches/footprint.rs`; the README has one run).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Footprint {
    pub node: String,
    /// The physical table on the node.
    pub table: String,
    /// The objects setup adds to or sets on the table, in words.
    pub installs: Vec<String>,
    /// What each kind of local write pays: `insert: …`, `update: …`, `delete: …`.
    pub costs: Vec<String>,
}

/// The footprint of setup on every mapped table of every node.
pub fn footprint(config: &Config) -> Vec<Footprint> {
    let s = &config.settings;
    config
        .nodes
        .values()
        .flat_map(|n| {
            tables_of(config, &n.id).into_iter().map(move |t| {
                let (installs, costs) = match n.engine {
                    Engine::Postgres => super::postgres::setup::footprint(
                        &n.id,
                        &s.schema,
                        &s.origin_column,
                        &t,
                        s.manage_columns,
                    ),
                    Engine::Mysql => super::mysql::setup::footprint(
                        &n.id,
                        &s.schema,
                        &s.origin_column,
                        &t,
                        s.manage_columns,
                    ),
                };
                Footprint {
                    node: n.id.clone(),
                    table: t.table.to_string(),
                    installs,
                    costs,
                }
            })
        })
        .collect()
}

/// Every statement setup runs on `node`, in order.
pub fn statements(config: &Config, node: &str) -> Option<Vec<String>> {
    let n = config.node(node)?;
    let s = &config.settings;
    let tables = tables_of(config, node);
    Some(match n.engine {
        Engine::Postgres => super::postgres::setup::statements(
            node,
            &s.schema,
            &s.origin_column,
            &tables,
            s.manage_columns,
        ),
        Engine::Mysql => super::mysql::setup::statements(
            node,
            &s.schema,
            &s.origin_column,
            &tables,
            s.manage_columns,
        ),
    })
}

/// Splits a SQL file into statements: each ends with `;` at the end of a line. Comment lines are
/// dropped.
pub fn split_statements(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("--") || trimmed.is_empty() {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if trimmed.ends_with(';') {
            let stmt = current.trim().trim_end_matches(';').trim().to_string();
            out.push(stmt);
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_string());
    }
    out
}

/// The bookkeeping migrations of one engine (`sql/<engine>/00N_*.sql`), in order, as text with
/// `__SCHEMA__` standing for the schema; each is idempotent. Versions and file names are the same
/// for every engine: [`BOOKKEEPING_VERSIONS`] numbers them.
macro_rules! migrations {
    ($engine:literal) => {
        [
            include_str!(concat!("../../../sql/", $engine, "/001_bookkeeping.sql")),
            include_str!(concat!("../../../sql/", $engine, "/002_tombstone.sql")),
            include_str!(concat!("../../../sql/", $engine, "/003_heartbeat.sql")),
            include_str!(concat!("../../../sql/", $engine, "/004_copy.sql")),
            include_str!(concat!(
                "../../../sql/",
                $engine,
                "/005_tombstone_origin.sql"
            )),
            include_str!(concat!(
                "../../../sql/",
                $engine,
                "/006_conflict_table_wide.sql"
            )),
            include_str!(concat!(
                "../../../sql/",
                $engine,
                "/007_dead_letter_parts.sql"
            )),
            include_str!(concat!("../../../sql/", $engine, "/008_text_payloads.sql")),
            include_str!(concat!("../../../sql/", $engine, "/009_verify_result.sql")),
            include_str!(concat!(
                "../../../sql/",
                $engine,
                "/010_resolution_note.sql"
            )),
            include_str!(concat!("../../../sql/", $engine, "/011_held.sql")),
            include_str!(concat!(
                "../../../sql/",
                $engine,
                "/012_tombstone_last_version.sql"
            )),
        ]
    };
}
pub(crate) use migrations;

/// Every statement of the migrations, in order, with `placeholder` (as the files write it)
/// replaced by the quoted schema.
pub fn bookkeeping_statements(migrations: &[&str], placeholder: &str, schema: &str) -> Vec<String> {
    migrations
        .iter()
        .flat_map(|file| split_statements(&file.replace(placeholder, schema)))
        .collect()
}

/// The bookkeeping schema versions this tandem needs (`sql/*/00N_*.sql`); `tandem run` refuses a
/// node that lacks one.
pub const BOOKKEEPING_VERSIONS: [i32; 12] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
