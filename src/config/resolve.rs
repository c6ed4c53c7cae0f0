//! From the file as written to the resolved configuration, checking every rule that needs no database.
//!
//! The top level and `[tandem]` settings are here; nodes, tables and columns each resolve in their own
//! submodule (`node`, `table`, `column`), using the shared checks at the end of this file.

mod column;
mod console;
mod node;
mod table;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use super::file::{ConflictRule, FileConfig, Settings};
use super::Problem;
use crate::model::TableRef;

pub use column::Column;
pub use console::ConsoleSettings;
pub use node::{Engine, Node, TlsMode};
pub use table::{DdlPolicy, DeletePolicy, Table, TruncatePolicy};

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub settings: Settings,
    pub nodes: BTreeMap<String, Node>,
    pub tables: Vec<Table>,
    pub metrics_listen: Option<SocketAddr>,
    /// `[heartbeat] interval`: how often `tandem run` writes a heartbeat on each source node.
    pub heartbeat: Option<std::time::Duration>,
    /// `[copy]`, when the file asks for an initial copy.
    pub copy: Option<CopySettings>,
    /// `[console]`, when `tandem run` serves the steward's console.
    pub console: Option<ConsoleSettings>,
}

/// The initial copy, resolved (`[copy]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySettings {
    /// The node whose rows are copied to the others.
    pub from: String,
    /// Rows per target transaction.
    pub batch_rows: u32,
}

/// Rows per copy batch when `[copy] batch_rows` is not set.
pub const DEFAULT_COPY_BATCH_ROWS: u32 = 1000;

impl Config {
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.get(id)
    }

    /// The physical tables of `node`, in the file's order.
    pub fn tables_on(&self, node: &str) -> Vec<TableRef> {
        self.tables
            .iter()
            .filter_map(|t| t.physical.get(node).cloned())
            .collect()
    }

    /// Every link (source, target) between the nodes: N*(N-1) of them.
    pub fn links(&self) -> Vec<(String, String)> {
        let ids: Vec<&String> = self.nodes.keys().collect();
        ids.iter()
            .flat_map(|s| {
                ids.iter()
                    .filter(move |t| s != *t)
                    .map(move |t| ((*s).clone(), (*t).clone()))
            })
            .collect()
    }
}

pub(super) fn resolve(file: FileConfig, problems: &mut Vec<Problem>) -> Option<Config> {
    let settings = file.tandem;
    check_settings(&settings, problems);
    if file.complete && file.nodes.len() < 2 {
        problems.push(Problem::error(
            "nodes",
            format!(
                "{} node(s) defined; tandem keeps at least two in sync",
                file.nodes.len()
            ),
            "add a [nodes.<id>] section with a url for each database",
        ));
    }
    let mut nodes = BTreeMap::new();
    for (i, (id, n)) in file.nodes.into_iter().enumerate() {
        if let Some(node) = node::resolve_node(&id, n, i as u32, problems) {
            nodes.insert(id, node);
        }
    }
    if file.complete && file.tables.is_empty() {
        problems.push(Problem::error(
            "tables",
            "no tables to sync",
            "add a [[tables]] section with a name and a key",
        ));
    }
    let node_ids: BTreeSet<String> = nodes.keys().cloned().collect();
    let default_deletes = match &settings.deletes {
        Some(v) => table::delete_policy(v, "tandem.deletes", problems),
        None => DeletePolicy::Propagate,
    };
    let mut tables = Vec::new();
    let mut seen_names = BTreeSet::new();
    let mut seen_physical: BTreeMap<(String, TableRef), usize> = BTreeMap::new();
    for (i, t) in file.tables.into_iter().enumerate() {
        let path = format!("tables[{i}]");
        if !seen_names.insert(t.name.clone()) {
            problems.push(Problem::error(
                format!("{path}.name"),
                format!("table {:?} is defined twice", t.name),
                "give each [[tables]] a distinct name",
            ));
        }
        let table = table::resolve_table(
            t,
            &path,
            &settings,
            &default_deletes,
            &nodes,
            &node_ids,
            problems,
        );
        for (node, physical) in &table.physical {
            if let Some(other) = seen_physical.insert((node.clone(), physical.clone()), i) {
                problems.push(Problem::error(
                    format!("{path}.on.{node}"),
                    format!("{physical} on node {node} is already mapped by tables[{other}]"),
                    "map each physical table to one business table",
                ));
            }
        }
        tables.push(table);
    }
    let metrics_listen = file
        .metrics
        .and_then(|m| match m.listen.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                problems.push(Problem::error(
                    "metrics.listen",
                    format!("{:?} is not an address", m.listen),
                    "write host:port, e.g. \"127.0.0.1:9464\"",
                ));
                None
            }
        });
    let heartbeat = file.heartbeat.and_then(|h| {
        duration_at_least(&h.interval, Duration::from_millis(100))
            .map_err(|why| {
                problems.push(Problem::error(
                    "heartbeat.interval",
                    format!(
                        "{:?} is not a duration of at least 100ms ({why})",
                        h.interval
                    ),
                    "write a number with a unit: \"10s\", \"500ms\", \"1m\"",
                ));
            })
            .ok()
    });
    let copy = file.copy.and_then(|c| resolve_copy(c, &nodes, problems));
    let console = file.console.and_then(|c| console::resolve(c, problems));
    let config = Config {
        settings,
        nodes,
        tables,
        metrics_listen,
        heartbeat,
        copy,
        console,
    };
    check_generated_names(&config, problems);
    Some(config)
}

/// Refuses two objects that would get one name from `tandem setup` (one would take the other's
/// slot, function or trigger); see `crate::names`.
fn check_generated_names(config: &Config, problems: &mut Vec<Problem>) {
    for c in crate::names::collisions(config) {
        problems.push(Problem::error(
            c.path,
            format!(
                "{} and {} would both be named {:?} ({})",
                c.first, c.second, c.name, c.namespace
            ),
            "rename one of the two tables or nodes",
        ));
    }
}

fn resolve_copy(
    c: super::file::CopyFile,
    nodes: &BTreeMap<String, Node>,
    problems: &mut Vec<Problem>,
) -> Option<CopySettings> {
    let mut ok = true;
    if !nodes.contains_key(&c.from) {
        problems.push(Problem::error(
            "copy.from",
            format!("no node named {:?}", c.from),
            format!(
                "name the node whose rows are copied, one of: {}",
                nodes.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        ));
        ok = false;
    }
    let batch_rows = c.batch_rows.unwrap_or(DEFAULT_COPY_BATCH_ROWS);
    if !(1..=100_000).contains(&batch_rows) {
        problems.push(Problem::error(
            "copy.batch_rows",
            format!("{batch_rows} is out of range"),
            "use 1 to 100000 rows per batch (default 1000)",
        ));
        ok = false;
    }
    ok.then_some(CopySettings {
        from: c.from,
        batch_rows,
    })
}

/// A duration as the file writes it, read by `humantime`: a number with a unit (`"10s"`, `"500ms"`,
/// `"2m"`, `"1h"`, `"7d"`), a space between them allowed (`"10 s"`), several spans added up
/// (`"1h 30m"`). A bare number is refused, as it always was: which unit it means would be a guess.
/// `m` is minutes (`M` is months).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, humantime::DurationError> {
    humantime::parse_duration(text.trim())
}

/// [`parse_duration`], refusing anything shorter than `min`; the error says why, for the problem text.
fn duration_at_least(text: &str, min: Duration) -> Result<Duration, String> {
    match parse_duration(text) {
        Ok(d) if d >= min => Ok(d),
        Ok(d) => Err(format!("{} is shorter", humantime::format_duration(d))),
        Err(e) => Err(e.to_string()),
    }
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !s.as_bytes()[0].is_ascii_digit()
}

fn check_settings(s: &Settings, problems: &mut Vec<Problem>) {
    let retention = s.tombstone_retention.trim();
    let checked = match retention {
        "never" => Ok(()),
        text => duration_at_least(text, Duration::from_secs(1)).map(drop),
    };
    if let Err(why) = checked {
        problems.push(Problem::error(
            "tandem.tombstone_retention",
            format!(
                "{:?} is not a duration of at least 1s ({why})",
                s.tombstone_retention
            ),
            "write a number with a unit (\"7d\", \"12h\", \"90m\", \"30s\") or \"never\"",
        ));
    }
    let wrong = match parse_duration(s.group_wait.trim()) {
        Ok(d) if d <= Duration::from_secs(1) => None,
        Ok(_) => Some(format!("{:?} is longer than 1s", s.group_wait)),
        Err(why) => Some(format!("{:?} is not a duration ({why})", s.group_wait)),
    };
    if let Some(message) = wrong {
        problems.push(Problem::error(
            "tandem.group_wait",
            message,
            "write a short duration (\"2ms\", \"500us\") or \"0s\" to apply each group at once",
        ));
    }
    for (key, value) in [
        ("origin_column", &s.origin_column),
        ("version_column", &s.version_column),
        ("schema", &s.schema),
    ] {
        if !is_identifier(value) {
            problems.push(Problem::error(
                format!("tandem.{key}"),
                format!("{value:?} is not a plain identifier"),
                "use letters, digits and _ only, starting with a letter or _",
            ));
        }
    }
    if s.memory_budget_mib == 0 {
        problems.push(Problem::error(
            "tandem.memory_budget_mib",
            "must be at least 1",
            "set a budget in MiB, e.g. 64",
        ));
    }
    if s.conflict == ConflictRule::Prefer {
        problems.push(Problem::error(
            "tandem.conflict",
            "\"prefer\" needs a node, which only a table can name",
            "set conflict = \"prefer\" with prefer = \"<node>\" on each table",
        ));
    }
}

fn check_node_ref(
    node: &Option<String>,
    path: String,
    nodes: &BTreeSet<String>,
    problems: &mut Vec<Problem>,
) {
    if let Some(n) = node {
        if !nodes.contains(n) {
            problems.push(Problem::error(
                path,
                format!("no node named {n:?}"),
                format!(
                    "use one of: {}",
                    nodes.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
}
