//! From the file as written to the resolved configuration, checking every rule that needs no database.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;

use super::file::{
    ColumnFile, ConflictRule, FileConfig, NodeFile, OnError, Scalar, Settings, TableFile,
};
use super::{ConnUrl, Problem};
use crate::mapping::transform::Transform;
use crate::model::TableRef;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    Postgres,
    /// MySQL or MariaDB.
    Mysql,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Postgres => "PostgreSQL",
            Engine::Mysql => "MySQL/MariaDB",
        }
    }
}

/// The TLS mode in effect for a node (from its `tls` key or its URL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    Prefer,
    Require,
    VerifyFull,
}

/// A node, resolved.
#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    pub engine: Engine,
    /// The connection URL, with the node keys `tls` and `tls_ca_file` folded in; prints redacted.
    pub url: ConnUrl,
    /// The database the URL names (PostgreSQL database; MySQL/MariaDB default schema).
    pub database: String,
    /// The TLS mode in effect (the `tls` key, else the URL's parameters).
    pub tls: TlsMode,
    /// The `tls_ca_file` key (already folded into `url`).
    pub tls_ca_file: Option<PathBuf>,
    /// Offset of the node's zone-less date-times from UTC, in seconds.
    pub utc_offset_secs: i32,
    /// MySQL/MariaDB: base replica `server_id` for this node's binlog readers.
    pub server_id: u32,
    pub priority: i32,
}

/// What a delete does at the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeletePolicy {
    Propagate,
    Ignore,
    /// Set this business column (to the current time, or true) instead of deleting.
    Soft(String),
}

/// What a captured `TRUNCATE` does at the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TruncatePolicy {
    /// Nothing is emptied; the truncate is recorded in the target's conflict log.
    #[default]
    Ignore,
    /// The target table is emptied in the target transaction that applies the source transaction.
    Propagate,
}

/// A business table, resolved.
#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    pub key: Vec<String>,
    /// Physical table per node (every node has one).
    pub physical: BTreeMap<String, TableRef>,
    /// Business column holding the version; `None` means the managed version column.
    pub version: Option<String>,
    pub conflict: ConflictRule,
    pub prefer: Option<String>,
    pub owner: Option<String>,
    pub merge_fallback: ConflictRule,
    pub deletes: DeletePolicy,
    pub on_error: OnError,
    pub truncate: TruncatePolicy,
    pub exclude: Vec<String>,
    /// Business column -> the values a synced row may hold there.
    pub filter: BTreeMap<String, Vec<Scalar>>,
    pub columns: Vec<Column>,
}

/// A business column listed in the file, resolved.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    /// Physical name per node; nodes not listed use the business name.
    pub on: BTreeMap<String, String>,
    /// Per node: business value -> stored value (one-to-one).
    pub values: BTreeMap<String, Vec<(String, Scalar)>>,
    pub owner: Option<String>,
    pub conflict: Option<ConflictRule>,
    pub prefer: Option<String>,
    /// Per node: one-way transforms applied on the way there.
    pub transform: BTreeMap<String, Vec<Transform>>,
    /// Per node: the text that stands for NULL there.
    pub null_as: BTreeMap<String, String>,
}

impl Table {
    /// The physical name of business column `column` on `node`.
    pub fn column_on<'a>(&'a self, column: &'a str, node: &str) -> &'a str {
        self.columns
            .iter()
            .find(|c| c.name == column)
            .and_then(|c| c.on.get(node))
            .map_or(column, String::as_str)
    }
}

impl Config {
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.get(id)
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
        if let Some(node) = resolve_node(&id, n, i as u32, problems) {
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
        Some(v) => delete_policy(v, "tandem.deletes", problems),
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
        let table = resolve_table(
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
    let heartbeat = file
        .heartbeat
        .and_then(|h| match parse_duration(&h.interval) {
            Some(d) if d >= std::time::Duration::from_millis(100) => Some(d),
            _ => {
                problems.push(Problem::error(
                    "heartbeat.interval",
                    format!("{:?} is not a duration of at least 100ms", h.interval),
                    "write a number with a unit: \"10s\", \"500ms\", \"1m\"",
                ));
                None
            }
        });
    let copy = file.copy.and_then(|c| resolve_copy(c, &nodes, problems));
    Some(Config {
        settings,
        nodes,
        tables,
        metrics_listen,
        heartbeat,
        copy,
    })
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

/// `"10s"`, `"500ms"`, `"2m"`, `"1h"` to a duration.
pub(crate) fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let millis = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    Some(std::time::Duration::from_millis(n.checked_mul(millis)?))
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !s.as_bytes()[0].is_ascii_digit()
}

fn check_settings(s: &Settings, problems: &mut Vec<Problem>) {
    let retention = s.tombstone_retention.trim();
    if retention != "never"
        && parse_duration(retention).is_none_or(|d| d < std::time::Duration::from_secs(1))
    {
        problems.push(Problem::error(
            "tandem.tombstone_retention",
            format!(
                "{:?} is not a duration of at least 1s",
                s.tombstone_retention
            ),
            "write a number with a unit (\"7d\", \"12h\", \"90m\", \"30s\") or \"never\"",
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

fn resolve_node(id: &str, n: NodeFile, index: u32, problems: &mut Vec<Problem>) -> Option<Node> {
    let path = format!("nodes.{id}");
    if !id
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        || id.is_empty()
        || id.len() > 32
    {
        problems.push(Problem::error(
            path.clone(),
            format!("node id {id:?} must be 1 to 32 characters of a-z, 0-9 and _"),
            "rename the node: its id names replication slots and is written on every row",
        ));
    }
    let url = match ConnUrl::parse(&n.url) {
        Ok(u) => u,
        Err(e) => {
            // Never echo the text: it may hold a password.
            problems.push(Problem::error(
                format!("{path}.url"),
                format!("not a valid URL ({e})"),
                "write postgres://user@host:port/database or mysql://user@host:port/database",
            ));
            return None;
        }
    };
    let engine = match url.scheme() {
        "postgres" | "postgresql" => Engine::Postgres,
        "mysql" | "mariadb" => Engine::Mysql,
        other => {
            problems.push(Problem::error(
                format!("{path}.url"),
                format!("unsupported scheme {other:?}"),
                "use postgres:// for PostgreSQL or mysql:// for MySQL/MariaDB",
            ));
            return None;
        }
    };
    if url.host().is_none_or(|h| h.is_empty()) {
        problems.push(Problem::error(
            format!("{path}.url"),
            "the URL names no host",
            "write the server's host, e.g. postgres://user@127.0.0.1:5432/app",
        ));
    }
    let database = url.database().unwrap_or_default();
    if database.is_empty() {
        problems.push(Problem::error(
            format!("{path}.url"),
            "the URL names no database",
            format!(
                "end the URL with /<database>, e.g. {}://user@host/app",
                url.scheme()
            ),
        ));
    }
    let (url, tls) = super::tls::fold(
        engine,
        url,
        n.tls.as_deref(),
        n.tls_ca_file.as_deref(),
        &path,
        problems,
    );
    let utc_offset_secs = match n.timezone.as_deref() {
        None => 0,
        Some(tz) => parse_offset(tz).unwrap_or_else(|| {
            problems.push(Problem::error(
                format!("{path}.timezone"),
                format!("{tz:?} is not a UTC offset"),
                "write UTC or an offset like +02:00 or -05:30",
            ));
            0
        }),
    };
    Some(Node {
        id: id.to_string(),
        engine,
        url,
        database,
        tls,
        tls_ca_file: n.tls_ca_file.map(PathBuf::from),
        utc_offset_secs,
        server_id: n.server_id.unwrap_or(4_000_000 + index * 100),
        priority: n.priority.unwrap_or(0),
    })
}

fn parse_offset(tz: &str) -> Option<i32> {
    if matches!(tz, "UTC" | "utc" | "Z" | "GMT") {
        return Some(0);
    }
    let (sign, rest) = match tz.as_bytes().first()? {
        b'+' => (1, &tz[1..]),
        b'-' => (-1, &tz[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    ((0..=15).contains(&h) && (0..60).contains(&m)).then_some(sign * (h * 3600 + m * 60))
}

fn delete_policy(v: &toml::Value, path: &str, problems: &mut Vec<Problem>) -> DeletePolicy {
    match v {
        toml::Value::String(s) if s == "propagate" => DeletePolicy::Propagate,
        toml::Value::String(s) if s == "ignore" => DeletePolicy::Ignore,
        toml::Value::Table(t)
            if t.len() == 1 && matches!(t.get("soft"), Some(toml::Value::String(_))) =>
        {
            DeletePolicy::Soft(
                t.get("soft")
                    .and_then(toml::Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            )
        }
        _ => {
            problems.push(Problem::error(
                path,
                "unknown delete policy",
                "use \"propagate\", \"ignore\" or { soft = \"<column>\" }",
            ));
            DeletePolicy::Propagate
        }
    }
}

/// `truncate = "ignore" | "propagate"`; `propagate` on a filtered table is refused, since a truncate
/// would empty the rows the filter keeps home too.
fn truncate_policy(t: &TableFile, path: &str, problems: &mut Vec<Problem>) -> TruncatePolicy {
    let policy = match t.truncate.as_deref() {
        None | Some("ignore") => TruncatePolicy::Ignore,
        Some("propagate") => TruncatePolicy::Propagate,
        Some(other) => {
            problems.push(Problem::error(
                format!("{path}.truncate"),
                format!("unknown truncate policy {other:?}"),
                "use \"ignore\" (record it, empty nothing) or \"propagate\" (empty the table on the other nodes)",
            ));
            TruncatePolicy::Ignore
        }
    };
    if policy == TruncatePolicy::Propagate && !t.filter.is_empty() {
        problems.push(Problem::error(
            format!("{path}.truncate"),
            "\"propagate\" on a table with a filter would empty the other nodes' rows outside the filter too",
            "remove truncate = \"propagate\" (a truncate is then recorded, not applied) or remove the filter",
        ));
    }
    policy
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

fn resolve_table(
    t: TableFile,
    path: &str,
    settings: &Settings,
    default_deletes: &DeletePolicy,
    nodes: &BTreeMap<String, Node>,
    node_ids: &BTreeSet<String>,
    problems: &mut Vec<Problem>,
) -> Table {
    if !is_identifier(&t.name) {
        problems.push(Problem::error(
            format!("{path}.name"),
            format!("{:?} is not a plain identifier", t.name),
            "use letters, digits and _ only",
        ));
    }
    if t.key.is_empty() {
        problems.push(Problem::error(
            format!("{path}.key"),
            "the key is empty",
            "name the column(s) of the primary key, e.g. key = [\"id\"]",
        ));
    }
    let mut key_seen = BTreeSet::new();
    for k in &t.key {
        if !key_seen.insert(k) {
            problems.push(Problem::error(
                format!("{path}.key"),
                format!("column {k:?} appears twice"),
                "list each key column once",
            ));
        }
    }
    let mut physical = BTreeMap::new();
    for (node_id, name) in &t.on {
        if !node_ids.contains(node_id) {
            check_node_ref(
                &Some(node_id.clone()),
                format!("{path}.on.{node_id}"),
                node_ids,
                problems,
            );
        }
        if name.is_empty() || name.split('.').count() > 2 || name.split('.').any(str::is_empty) {
            problems.push(Problem::error(
                format!("{path}.on.{node_id}"),
                format!("{name:?} is not a table name"),
                "write schema.table (PostgreSQL), database.table or table (MySQL/MariaDB)",
            ));
        }
    }
    for (id, node) in nodes {
        let given = t.on.get(id).map(String::as_str);
        let table = match (node.engine, given.and_then(|g| g.split_once('.'))) {
            (_, Some((schema, name))) => TableRef::new(schema, name),
            (Engine::Postgres, None) => TableRef::new("public", given.unwrap_or(&t.name)),
            (Engine::Mysql, None) => TableRef::new(&node.database, given.unwrap_or(&t.name)),
        };
        physical.insert(id.clone(), table);
    }
    let conflict = t.conflict.unwrap_or(settings.conflict);
    check_node_ref(&t.prefer, format!("{path}.prefer"), node_ids, problems);
    check_node_ref(&t.owner, format!("{path}.owner"), node_ids, problems);
    if conflict == ConflictRule::Prefer && t.prefer.is_none() && t.owner.is_none() {
        problems.push(Problem::error(
            format!("{path}.prefer"),
            "conflict = \"prefer\" names no node",
            "add prefer = \"<node>\" naming the system of record",
        ));
    }
    let merge_fallback = t.merge_fallback.unwrap_or(ConflictRule::LastWriteWins);
    if merge_fallback == ConflictRule::Merge {
        problems.push(Problem::error(
            format!("{path}.merge_fallback"),
            "merge cannot fall back to merge",
            "use last_write_wins, prefer or manual",
        ));
    }
    if merge_fallback == ConflictRule::Prefer && t.prefer.is_none() {
        problems.push(Problem::error(
            format!("{path}.merge_fallback"),
            "falls back to \"prefer\" but the table names no prefer node",
            "add prefer = \"<node>\"",
        ));
    }
    let deletes = match &t.deletes {
        Some(v) => delete_policy(v, &format!("{path}.deletes"), problems),
        None => default_deletes.clone(),
    };
    for (i, ex) in t.exclude.iter().enumerate() {
        if t.key.contains(ex) {
            problems.push(Problem::error(
                format!("{path}.exclude[{i}]"),
                format!("key column {ex:?} cannot be excluded"),
                "remove it from exclude: rows are matched by their key",
            ));
        }
    }
    if let Some(v) = &t.version {
        if t.key.contains(v) {
            problems.push(Problem::error(
                format!("{path}.version"),
                format!("the version column {v:?} is part of the key"),
                "name a column that changes on every write, e.g. lock_version or updated_at",
            ));
        }
        if t.exclude.contains(v) {
            problems.push(Problem::error(
                format!("{path}.version"),
                format!("the version column {v:?} is excluded"),
                "remove it from exclude: versions must travel with the row",
            ));
        }
    }
    if let DeletePolicy::Soft(col) = &deletes {
        if t.key.contains(col) {
            problems.push(Problem::error(
                format!("{path}.deletes.soft"),
                format!("the soft-delete column {col:?} is part of the key"),
                "name a flag or timestamp column, e.g. deleted_at",
            ));
        }
    }
    for (column, allowed) in &t.filter {
        if allowed.is_empty() {
            problems.push(Problem::error(
                format!("{path}.filter.{column}"),
                "an empty list lets no row through",
                "list the values whose rows are synced, or remove the filter",
            ));
        }
        if t.exclude.contains(column) {
            problems.push(Problem::error(
                format!("{path}.filter.{column}"),
                format!("column {column:?} is excluded, so the filter could not see it on the other nodes"),
                "filter on a column that is synced",
            ));
        }
    }
    let truncate = truncate_policy(&t, path, problems);
    let mut seen = BTreeSet::new();
    let columns = t
        .columns
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let cpath = format!("{path}.columns[{i}]");
            if !seen.insert(c.name.clone()) {
                problems.push(Problem::error(
                    format!("{cpath}.name"),
                    format!("column {:?} is listed twice", c.name),
                    "list each column once",
                ));
            }
            if t.exclude.contains(&c.name) {
                problems.push(Problem::warning(
                    format!("{cpath}.name"),
                    format!("column {:?} is excluded, so its mapping is unused", c.name),
                    "remove the column entry or the exclusion",
                ));
            }
            resolve_column(c, &cpath, t.owner.as_deref(), node_ids, problems)
        })
        .collect();
    Table {
        name: t.name,
        key: t.key,
        physical,
        version: t.version,
        conflict,
        prefer: t.prefer,
        owner: t.owner,
        merge_fallback,
        deletes,
        on_error: t.on_error.unwrap_or(settings.on_error),
        truncate,
        exclude: t.exclude,
        filter: t.filter,
        columns,
    }
}

fn resolve_column(
    c: ColumnFile,
    path: &str,
    table_owner: Option<&str>,
    nodes: &BTreeSet<String>,
    problems: &mut Vec<Problem>,
) -> Column {
    if c.name.is_empty() {
        problems.push(Problem::error(
            format!("{path}.name"),
            "the column has no name",
            "give the business column a name",
        ));
    }
    for (node, name) in &c.on {
        check_node_ref(
            &Some(node.clone()),
            format!("{path}.on.{node}"),
            nodes,
            problems,
        );
        if name.is_empty() {
            problems.push(Problem::error(
                format!("{path}.on.{node}"),
                "empty column name",
                "write the physical column name",
            ));
        }
    }
    check_node_ref(&c.owner, format!("{path}.owner"), nodes, problems);
    check_node_ref(&c.prefer, format!("{path}.prefer"), nodes, problems);
    if c.conflict == Some(ConflictRule::Prefer) && c.prefer.is_none() && c.owner.is_none() {
        problems.push(Problem::error(
            format!("{path}.prefer"),
            "conflict = \"prefer\" names no node",
            "add prefer = \"<node>\"",
        ));
    }
    if c.conflict == Some(ConflictRule::Merge) {
        problems.push(Problem::error(
            format!("{path}.conflict"),
            "merge is a table rule, not a column rule",
            "set conflict = \"merge\" on the table, and a per-column rule here",
        ));
    }
    let mut values = BTreeMap::new();
    for (node, map) in c.values {
        check_node_ref(
            &Some(node.clone()),
            format!("{path}.values.{node}"),
            nodes,
            problems,
        );
        let mut stored_seen: Vec<(&Scalar, &String)> = Vec::new();
        for (business, stored) in &map {
            if let Some((_, first)) = stored_seen.iter().find(|(s, _)| *s == stored) {
                problems.push(Problem::error(
                    format!("{path}.values.{node}"),
                    format!("{first:?} and {business:?} are both stored as {stored}, so the map cannot be read back"),
                    "give every business value its own stored value",
                ));
            }
            stored_seen.push((stored, business));
        }
        values.insert(node, map.into_iter().collect());
    }
    let mut transform = BTreeMap::new();
    for (node, names) in c.transform {
        check_node_ref(
            &Some(node.clone()),
            format!("{path}.transform.{node}"),
            nodes,
            problems,
        );
        let mut list = Vec::new();
        for (k, name) in names.iter().enumerate() {
            match name.parse::<Transform>() {
                Ok(t) => list.push(t),
                Err(e) => problems.push(Problem::error(
                    format!("{path}.transform.{node}[{k}]"),
                    e,
                    "correct the transform's name",
                )),
            }
        }
        let owner = c.owner.as_deref().or(table_owner);
        if !list.is_empty() && owner.is_none() {
            problems.push(Problem::error(
                format!("{path}.transform.{node}"),
                "a one-way transform on a column without an owner: the transformed value would flow back and overwrite the original",
                "give the column (or the table) an owner = \"<node>\" whose values are the originals",
            ));
        }
        if owner == Some(node.as_str()) {
            problems.push(Problem::warning(
                format!("{path}.transform.{node}"),
                "the transform is on the owner node, which takes no values from the others, so it never runs",
                "put the transform on the nodes that receive the owner's values",
            ));
        }
        transform.insert(node, list);
    }
    for node in c.null_as.keys() {
        check_node_ref(
            &Some(node.clone()),
            format!("{path}.null_as.{node}"),
            nodes,
            problems,
        );
    }
    Column {
        name: c.name,
        on: c.on,
        values,
        owner: c.owner,
        conflict: c.conflict,
        prefer: c.prefer,
        transform,
        null_as: c.null_as,
    }
}
