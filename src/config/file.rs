//! The configuration file as written: plain data, one doc comment per key.
//!
//! Every sidecar reads the same file. Unknown keys are errors (collected by the loader with their
//! paths); `${VAR}` in any string is replaced from the environment before these types are read.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
pub struct FileConfig {
    /// Settings that apply to every link unless a table overrides them.
    #[serde(default)]
    pub tandem: Settings,
    /// The databases taking part, by node id (the id is also the origin tag written on rows).
    #[serde(default)]
    pub nodes: BTreeMap<String, NodeFile>,
    /// The business tables kept in sync.
    #[serde(default)]
    pub tables: Vec<TableFile>,
    /// Prometheus metrics endpoint for `tandem run`.
    pub metrics: Option<MetricsFile>,
    /// Periodic heartbeat writes on each source node, for honest lag on a quiet database.
    pub heartbeat: Option<HeartbeatFile>,
    /// Initial copy of the rows that exist before the links first start.
    pub copy: Option<CopyFile>,
    /// The steward's console (web pages and JSON API) served by `tandem run`.
    pub console: Option<ConsoleFile>,
    /// False when a section could not be read (its problem is reported): checks that count nodes or
    /// tables are then skipped, as they would report what is only a consequence.
    #[serde(skip, default = "yes")]
    pub complete: bool,
}

fn yes() -> bool {
    true
}

/// Global settings (`[tandem]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Name of the origin marker column on every synced table.
    pub origin_column: String,
    /// Name of the version column `tandem setup` manages where a table names none of its own.
    pub version_column: String,
    /// Name of the bookkeeping schema (PostgreSQL) or database (MySQL/MariaDB) on every node.
    pub schema: String,
    /// Whether `tandem setup` adds the origin and version columns and their triggers to mapped tables.
    pub manage_columns: bool,
    /// In-memory budget per transaction, in MiB; larger transactions spill to `spill_dir`.
    pub memory_budget_mib: u64,
    /// Directory for spilled transactions (default: the system temp directory).
    pub spill_dir: Option<String>,
    /// Default conflict rule for tables that name none.
    pub conflict: ConflictRule,
    /// Default delete policy: `"propagate"`, `"ignore"`, or `{ soft = "<column>" }`.
    pub deletes: Option<toml::Value>,
    /// What a definite apply error does: `dead_letter` (record it, go on) or `halt` (stop the link).
    pub on_error: OnError,
    /// How long a tombstone (the record of a deleted key) is kept: `"7d"` (default), any duration
    /// of at least one second (`"12h"`, `"90m"`), or `"never"` to keep them all. An insert that
    /// arrives later than this after a delete of its key is weighed without that delete's record.
    pub tombstone_retention: String,
    /// How long a link waits, when the source has nothing more ready, for more transactions to
    /// join a small group it is about to apply: `"2ms"` (default), up to `"1s"`; `"0s"` applies
    /// each group at once.
    pub group_wait: String,
}

impl Settings {
    /// Whether `column` is one of tandem's own columns on a table (its origin column; with
    /// `managed_version`, its version column and the old version beside it), never a business one.
    pub fn is_own_column(&self, column: &str, managed_version: bool) -> bool {
        column == self.origin_column
            || (managed_version
                && (column == self.version_column
                    || column == crate::names::prev_version_column(&self.version_column)))
    }

    /// The tombstone retention, `None` for `"never"` (validated when the file is read).
    pub fn tombstone_retention(&self) -> Option<std::time::Duration> {
        match self.tombstone_retention.trim() {
            "never" => None,
            text => super::resolve::parse_duration(text).ok(),
        }
    }

    /// The group wait (validated when the file is read; the default where it does not parse).
    pub fn group_wait(&self) -> std::time::Duration {
        super::resolve::parse_duration(self.group_wait.trim())
            .unwrap_or(std::time::Duration::from_millis(2))
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            origin_column: "_tandem_origin".into(),
            version_column: "_tandem_version".into(),
            schema: "tandem".into(),
            manage_columns: true,
            memory_budget_mib: 16,
            spill_dir: None,
            conflict: ConflictRule::LastWriteWins,
            deletes: None,
            on_error: OnError::DeadLetter,
            tombstone_retention: "7d".into(),
            group_wait: "2ms".into(),
        }
    }
}

/// One node (`[nodes.<id>]`).
#[derive(Debug, Clone, Deserialize)]
pub struct NodeFile {
    /// Connection URL: `postgres://user@host:port/db` or `mysql://user@host:port/db` (MariaDB too).
    /// Put a password in the environment: `postgres://app:${CRM_PASSWORD}@db/crm`.
    pub url: String,
    /// TLS mode for every connection to the node: `disable`, `prefer` (PostgreSQL only), `require`
    /// (encrypted, certificate unchecked), `verify-full` (CA and host name checked). Folded into the
    /// URL (`sslmode`; `require_ssl`/`verify_ca`); a URL that says otherwise is an error.
    pub tls: Option<String>,
    /// CA certificate file (PEM) trusted under `verify-full`, alone (`sslrootcert`; `ssl_ca`).
    pub tls_ca_file: Option<String>,
    /// Time zone of the node's zone-less date-times (MySQL DATETIME), as a UTC offset like `+02:00`
    /// or `UTC`. Default `UTC`.
    pub timezone: Option<String>,
    /// MySQL/MariaDB: base `server_id` for this node's binlog readers; each link adds its index.
    pub server_id: Option<u32>,
    /// Priority for the `last_write_wins` tie-break and `prefer` defaults: higher wins. Default 0.
    pub priority: Option<i32>,
    /// PostgreSQL: whether rows that another replication tool (a native subscription, anything
    /// with a replication origin of its own) wrote into this node are sent on to the other nodes.
    /// Default true. `false` lets a PostgreSQL 16+ server leave out every transaction with a
    /// replication origin, tandem's own among them, before it sends them (`origin = none`).
    pub forward_replicated: Option<bool>,
}

/// Conflict resolution rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictRule {
    /// The change with the later source commit time wins; equal times go to the higher node priority,
    /// then the greater node id.
    LastWriteWins,
    /// The node named by `prefer` (or the table's `owner`) wins.
    Prefer,
    /// Field by field: columns changed on one side only all survive; a column changed on both sides
    /// falls back to `merge_fallback`.
    Merge,
    /// Park the incoming change for a person to resolve; later changes to the same key wait behind it.
    Manual,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    DeadLetter,
    Halt,
}

/// One business table (`[[tables]]`).
#[derive(Debug, Clone, Deserialize)]
pub struct TableFile {
    /// Business name of the table.
    pub name: String,
    /// Business columns that identify a row (a primary key or unique key on every node).
    pub key: Vec<String>,
    /// Physical table per node: PostgreSQL `schema.table` (default `public.<name>`), MySQL/MariaDB
    /// `database.table` or `table` (default `<name>` in the URL's database).
    #[serde(default)]
    pub on: BTreeMap<String, String>,
    /// Business column holding the row version (`lock_version`, `updated_at`); default: the managed
    /// `_tandem_version` column.
    pub version: Option<String>,
    /// Conflict rule for this table (default: `[tandem].conflict`).
    pub conflict: Option<ConflictRule>,
    /// With `conflict = "prefer"`: the node that wins.
    pub prefer: Option<String>,
    /// System of record: changes to this table from other nodes are not applied (logged as `not_owner`).
    pub owner: Option<String>,
    /// With `conflict = "merge"`: rule for a column changed on both sides (`last_write_wins`, `prefer`,
    /// `manual`). Default `last_write_wins`.
    pub merge_fallback: Option<ConflictRule>,
    /// Delete policy for this table (default: `[tandem].deletes`): `"propagate"`, `"ignore"`, or
    /// `{ soft = "<column>" }` (set that column instead of deleting the row).
    pub deletes: Option<toml::Value>,
    /// Definite-error policy for this table (default: `[tandem].on_error`).
    pub on_error: Option<OnError>,
    /// What a captured `TRUNCATE` of this table does on the other nodes: `"ignore"` (the default:
    /// nothing is emptied, the truncate is recorded in the target's conflict log) or `"propagate"`
    /// (the target table is emptied in the same transaction). `"propagate"` cannot go with `filter`.
    pub truncate: Option<String>,
    /// What a schema change of this table on one node does on the others: `"ignore"` (the default:
    /// each node's DBA changes its own schema; a column one node lacks stays home) or `"propagate"`
    /// (a column added on a node is added on the others, with its type mapped through the type
    /// rules; a column dropped on a node is dropped on the others; each recorded in the audit log).
    pub ddl: Option<String>,
    /// Business columns that never leave their node.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// PostgreSQL nodes: `"full"` keeps `REPLICA IDENTITY FULL` on this table, so that the WAL
    /// carries the whole old row of every update and delete (the conflict log then shows the
    /// before-image's values). Unset: setup logs only the key and the old version where the
    /// table's rules allow it (see [`crate::config::Table::old_row_needed`]).
    pub replica_identity: Option<String>,
    /// Row filter: only rows whose business column holds one of the listed values are synced, e.g.
    /// `filter = { region = ["EU", "UK"] }` (every listed column must match). A row updated into the
    /// filter arrives as an insert, one updated out of it as a delete.
    #[serde(default)]
    pub filter: BTreeMap<String, Vec<Scalar>>,
    /// Columns whose names, values or rules differ per node. Columns with the same name on every node
    /// map by name without being listed.
    #[serde(default)]
    pub columns: Vec<ColumnFile>,
}

/// One business column (`[[tables.columns]]`).
#[derive(Debug, Clone, Deserialize)]
pub struct ColumnFile {
    /// Business name of the column.
    pub name: String,
    /// Physical column per node (default: the business name).
    #[serde(default)]
    pub on: BTreeMap<String, String>,
    /// Value maps: for each node, business value -> stored value. A node without a map stores the
    /// business value itself. Each map must be one-to-one.
    #[serde(default)]
    pub values: BTreeMap<String, BTreeMap<String, Scalar>>,
    /// System of record for this column: other nodes' changes to it are not applied.
    pub owner: Option<String>,
    /// Conflict rule for this column, overriding the table's.
    pub conflict: Option<ConflictRule>,
    /// With `conflict = "prefer"`: the node that wins for this column.
    pub prefer: Option<String>,
    /// One-way transforms applied on the way to a node, in order: `trim`, `lowercase`, `uppercase`,
    /// `squeeze`, `e164`, `e164:+<country code>`. The column needs an owner.
    #[serde(default)]
    pub transform: BTreeMap<String, Vec<String>>,
    /// Per node: the text that stands for NULL there (`""` for a NOT NULL text column); it reads back
    /// as NULL.
    #[serde(default)]
    pub null_as: BTreeMap<String, String>,
}

/// A scalar written in the file (a stored value in a value map).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
}

impl std::fmt::Display for Scalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scalar::Int(i) => write!(f, "{i}"),
            Scalar::Float(x) => write!(f, "{x}"),
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Text(s) => write!(f, "{s:?}"),
        }
    }
}

/// `[metrics]`.
#[derive(Debug, Clone, Deserialize)]
pub struct MetricsFile {
    /// Address for `/metrics` and `/health`, e.g. `127.0.0.1:9464`.
    pub listen: String,
}

/// `[console]`: the steward's console. Not `Debug`: it holds the token.
#[derive(Clone, Deserialize)]
pub struct ConsoleFile {
    /// Address for the console, e.g. `127.0.0.1:9465`. Loopback unless `insecure = true`.
    pub listen: String,
    /// The bearer token that opens the console and its API; write it as `"${TANDEM_CONSOLE_TOKEN}"`
    /// so it stays out of the file. At least 16 characters.
    pub token: Option<String>,
    /// PEM file with the console's certificate chain: with `tls_key`, the console serves HTTPS.
    pub tls_cert: Option<String>,
    /// PEM file with the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub tls_key: Option<String>,
    /// Serve on a non-loopback address over plain HTTP (no `tls_cert`: a TLS-terminating proxy in
    /// front, or a trusted network). Default false.
    #[serde(default)]
    pub insecure: bool,
}

impl std::fmt::Debug for ConsoleFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleFile")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field("insecure", &self.insecure)
            .finish()
    }
}

/// `[heartbeat]`.
#[derive(Debug, Clone, Deserialize)]
pub struct HeartbeatFile {
    /// How often `tandem run` writes a heartbeat row on each node whose links it runs, e.g. `"10s"`,
    /// `"500ms"`, `"1m"`. The write travels every outgoing link as progress (lag, checkpoint, slot
    /// position) but never as data.
    pub interval: String,
}

/// `[copy]`: the initial copy. Before a link out of `from` first streams, every mapped row of `from`
/// is copied to the link's target (compared where the key exists there), and the stream then starts
/// exactly where the copy's snapshot was taken.
#[derive(Debug, Clone, Deserialize)]
pub struct CopyFile {
    /// The node whose rows are copied to every other node.
    pub from: String,
    /// Rows per target transaction (and per progress record). Default 1000.
    pub batch_rows: Option<u32>,
}
