//! Table resolution: physical names per node, key, conflict rules, deletes, filters and truncates.

use std::collections::{BTreeMap, BTreeSet};

use super::column::{resolve_column, Column};
use super::node::{Engine, Node};
use super::{check_node_ref, is_identifier};
use crate::config::file::{ColumnFile, ConflictRule, OnError, Scalar, Settings, TableFile};
use crate::config::Problem;
use crate::model::TableRef;

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

/// What a schema change of a table on one node does on the others (`ddl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DdlPolicy {
    /// Nothing: each node's schema is its DBA's; a column one node lacks stays home.
    #[default]
    Ignore,
    /// `ADD COLUMN` and `DROP COLUMN` seen in a node's changes are applied on the others.
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
    pub ddl: DdlPolicy,
    pub exclude: Vec<String>,
    /// Business column -> the values a synced row may hold there.
    pub filter: BTreeMap<String, Vec<Scalar>>,
    pub columns: Vec<Column>,
    /// `replica_identity = "full"`: the operator keeps the whole old row in the WAL.
    pub full_old_row: bool,
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

    /// Why a PostgreSQL node must log this table's whole old row (`REPLICA IDENTITY FULL`), or
    /// `None` when the key and the old version are enough: tandem's own version column (the
    /// update trigger keeps the old one beside it, the delete trigger's tombstone carries it), and
    /// no rule that reads the before-image's other values (a field merge, a system of record,
    /// which compares them to see what the source changed, or a row filter, which judges the old
    /// row).
    pub fn old_row_needed(&self) -> Option<&'static str> {
        let merges = self.conflict == ConflictRule::Merge
            || self
                .columns
                .iter()
                .any(|c| c.conflict == Some(ConflictRule::Merge));
        if self.full_old_row {
            Some("replica_identity = \"full\" in the file")
        } else if self.version.is_some() {
            Some("the table names its own version column")
        } else if merges {
            Some("a field merge reads the old values")
        } else if self.owner.is_some() || self.columns.iter().any(|c| c.owner.is_some()) {
            Some("a system of record compares the old values")
        } else if !self.filter.is_empty() {
            Some("the row filter judges the old row")
        } else {
            None
        }
    }
}

pub(super) fn delete_policy(
    v: &toml::Value,
    path: &str,
    problems: &mut Vec<Problem>,
) -> DeletePolicy {
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

/// One `[[tables]]` entry, resolved; every problem found is pushed with its path in the file.
pub(super) fn resolve_table(
    mut t: TableFile,
    path: &str,
    settings: &Settings,
    default_deletes: &DeletePolicy,
    nodes: &BTreeMap<String, Node>,
    node_ids: &BTreeSet<String>,
    problems: &mut Vec<Problem>,
) -> Table {
    check_name_and_key(&t, path, problems);
    let physical = physical_tables(&t, path, nodes, node_ids, problems);
    let (conflict, merge_fallback) = conflict_rules(&t, path, settings, node_ids, problems);
    let deletes = match &t.deletes {
        Some(v) => delete_policy(v, &format!("{path}.deletes"), problems),
        None => default_deletes.clone(),
    };
    check_column_roles(&t, &deletes, path, problems);
    let truncate = truncate_policy(&t, path, problems);
    let ddl = match t.ddl.as_deref() {
        None | Some("ignore") => DdlPolicy::Ignore,
        Some("propagate") => DdlPolicy::Propagate,
        Some(other) => {
            problems.push(Problem::error(
                format!("{path}.ddl"),
                format!("unknown ddl policy {other:?}"),
                "use \"ignore\" (each node's schema is changed by its DBA) or \"propagate\" (columns added or dropped on one node are added or dropped on the others)",
            ));
            DdlPolicy::Ignore
        }
    };
    let columns = resolve_columns(std::mem::take(&mut t.columns), &t, path, node_ids, problems);
    let full_old_row = match t.replica_identity.as_deref() {
        None => false,
        Some("full") => true,
        Some(other) => {
            problems.push(Problem::error(
                format!("{path}.replica_identity"),
                format!("unknown replica identity {other:?}"),
                "use \"full\" (the WAL keeps the whole old row of each update and delete) or leave it out (setup keeps only what the table's rules need)",
            ));
            false
        }
    };
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
        ddl,
        exclude: t.exclude,
        filter: t.filter,
        columns,
        full_old_row,
    }
}

/// The business name is an identifier; the key names at least one column, each once.
fn check_name_and_key(t: &TableFile, path: &str, problems: &mut Vec<Problem>) {
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
}

/// The physical table on every node: as `on` names it, else the business name in the node's
/// default schema (`public`) or database.
fn physical_tables(
    t: &TableFile,
    path: &str,
    nodes: &BTreeMap<String, Node>,
    node_ids: &BTreeSet<String>,
    problems: &mut Vec<Problem>,
) -> BTreeMap<String, TableRef> {
    for (node_id, name) in &t.on {
        if !node_ids.contains(node_id) {
            check_node_ref(
                &Some(node_id.clone()),
                format!("{path}.on.{node_id}"),
                node_ids,
                problems,
            );
        }
        if split_table_name(name).is_none() {
            problems.push(Problem::error(
                format!("{path}.on.{node_id}"),
                format!("{name:?} is not a table name"),
                "write schema.table (PostgreSQL), database.table or table (MySQL/MariaDB); quote a part that holds a dot or a quote: \"my.schema\".\"a \"\"b\"\"\" or `my.db`.`t`",
            ));
        }
    }
    let mut physical = BTreeMap::new();
    for (id, node) in nodes {
        let given = t.on.get(id).map(String::as_str);
        let parts = given.and_then(split_table_name);
        let table = match (node.engine, parts.as_deref()) {
            (_, Some([schema, name])) => TableRef::new(schema, name),
            (Engine::Postgres, Some([name])) => TableRef::new("public", name),
            (Engine::Mysql, Some([name])) => TableRef::new(&node.database, name),
            (Engine::Postgres, _) => TableRef::new("public", &t.name),
            (Engine::Mysql, _) => TableRef::new(&node.database, &t.name),
        };
        physical.insert(id.clone(), table);
    }
    physical
}

/// The conflict rule and merge fallback, with the nodes they name checked.
fn conflict_rules(
    t: &TableFile,
    path: &str,
    settings: &Settings,
    node_ids: &BTreeSet<String>,
    problems: &mut Vec<Problem>,
) -> (ConflictRule, ConflictRule) {
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
    (conflict, merge_fallback)
}

/// Columns with a role (key, version, soft-delete flag, filter) against `exclude` and each other.
fn check_column_roles(
    t: &TableFile,
    deletes: &DeletePolicy,
    path: &str,
    problems: &mut Vec<Problem>,
) {
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
    if let DeletePolicy::Soft(col) = deletes {
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
}

/// The `columns` entries, each listed once; an entry for an excluded column is unused (a warning).
fn resolve_columns(
    columns: Vec<ColumnFile>,
    t: &TableFile,
    path: &str,
    node_ids: &BTreeSet<String>,
    problems: &mut Vec<Problem>,
) -> Vec<Column> {
    let mut seen = BTreeSet::new();
    columns
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
        .collect()
}

/// A table name as the file writes it: `table` or `schema.table`, where a part may be quoted with
/// `"` (PostgreSQL) or `` ` `` (MySQL/MariaDB), the quote doubled inside, so that it can hold dots,
/// quotes and spaces. `None` when it is not one or two non-empty parts.
pub(crate) fn split_table_name(text: &str) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        let mut part = String::new();
        match chars.peek().copied() {
            Some(q @ ('"' | '`')) => {
                chars.next();
                loop {
                    match chars.next()? {
                        c if c == q && chars.peek() == Some(&q) => {
                            chars.next();
                            part.push(q);
                        }
                        c if c == q => break,
                        c => part.push(c),
                    }
                }
            }
            _ => {
                while let Some(&c) = chars.peek() {
                    if c == '.' {
                        break;
                    }
                    if c == '"' || c == '`' {
                        return None;
                    }
                    part.push(c);
                    chars.next();
                }
            }
        }
        if part.is_empty() {
            return None;
        }
        parts.push(part);
        match chars.next() {
            None => break,
            Some('.') => {}
            Some(_) => return None,
        }
    }
    (parts.len() <= 2).then_some(parts)
}

#[cfg(test)]
mod name_tests {
    use super::split_table_name;

    #[test]
    fn table_names_split_at_dots_outside_quotes() {
        let split = |t: &str| split_table_name(t);
        assert_eq!(split("t"), Some(vec!["t".into()]));
        assert_eq!(split("s.t"), Some(vec!["s".into(), "t".into()]));
        assert_eq!(
            split(r#""Quoted_"" . Schema"."Quoted_"" . Table""#),
            Some(vec![
                r#"Quoted_" . Schema"#.to_string(),
                r#"Quoted_" . Table"#.to_string()
            ])
        );
        assert_eq!(
            split("`my.db`.`a``b`"),
            Some(vec!["my.db".into(), "a`b".into()])
        );
        assert_eq!(split("\"a.b\""), Some(vec!["a.b".into()]));
        for bad in [
            "",
            ".",
            "a.",
            ".a",
            "a.b.c",
            "\"open",
            "a\"b",
            "\"\"",
            "\"a\"x",
            "`a`.`b`.`c`",
        ] {
            assert_eq!(split(bad), None, "{bad}");
        }
    }
}
