//! Holding the file's mapping against the live schemas of every node: the analysis behind
//! `tandem check`. Pure: the caller reads the schemas (see `crate::catalog`) and passes them in.
//!
//! For every business table it reports, each as a [`Problem`] with its path in the file: a missing
//! table or column; a key that is not a primary or unique key; a version column that is not there;
//! columns present on some nodes only (not synced); NOT NULL columns that no other node can fill; and,
//! for every synced column pair, the type verdict of [`super::types::round_trip`]: a lossy two-way pair
//! is an error, a narrowing or conventional one a warning. A column with an owner is one-way (owner to
//! the others), so only that direction has to be lossless.

use std::collections::{BTreeMap, BTreeSet};

use super::refusals;
use super::types::{fits, round_trip, Fit};
use crate::config::{Config, Problem, Table};
use crate::model::schema::TableSchema;
use crate::model::TableRef;

/// Schemas read per node: physical table -> schema (`None`: the table does not exist).
pub type NodeSchemas = BTreeMap<String, BTreeMap<TableRef, Option<TableSchema>>>;

pub fn analyze(config: &Config, schemas: &NodeSchemas) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (i, table) in config.tables.iter().enumerate() {
        analyze_table(
            config,
            table,
            &format!("tables[{i}]"),
            schemas,
            &mut problems,
        );
    }
    problems
}

fn analyze_table(
    config: &Config,
    t: &Table,
    path: &str,
    schemas: &NodeSchemas,
    problems: &mut Vec<Problem>,
) {
    let mut present: BTreeMap<&str, &TableSchema> = BTreeMap::new();
    for (node, physical) in &t.physical {
        match schemas.get(node).and_then(|s| s.get(physical)) {
            Some(Some(schema)) => {
                present.insert(node, schema);
            }
            Some(None) => problems.push(Problem::error(
                format!("{path}.on.{node}"),
                format!("table {physical} does not exist on node {node}"),
                format!("create it, or point tables.on.{node} at the right table"),
            )),
            None => {}
        }
    }
    let business = business_columns(config, t, &present);
    for (node, schema) in &present {
        check_key(t, path, node, schema, problems);
        check_version(config, t, path, node, schema, problems);
    }
    for (j, c) in t.columns.iter().enumerate() {
        for (node, schema) in &present {
            let physical = t.column_on(&c.name, node);
            if schema.column(physical).is_none() {
                problems.push(Problem::error(
                    format!("{path}.columns[{j}]"),
                    format!(
                        "column {physical} does not exist in {} on node {node}",
                        schema.table
                    ),
                    "correct the column's name in tables.columns.on, or add the column",
                ));
            }
        }
    }
    let excluded: BTreeSet<&str> = t.exclude.iter().map(String::as_str).collect();
    for (name, on) in &business {
        let synced = on.len() == present.len() && !excluded.contains(name.as_str());
        if !synced {
            report_unsynced(t, path, name, on, &present, &excluded, problems);
            continue;
        }
        check_types(config, t, path, name, on, &present, problems);
    }
}

/// Business column -> (node -> physical column), for every column each present node has, without
/// the bookkeeping columns.
fn business_columns<'a>(
    config: &Config,
    t: &'a Table,
    present: &BTreeMap<&'a str, &'a TableSchema>,
) -> BTreeMap<String, BTreeMap<&'a str, &'a str>> {
    let bookkeeping = |c: &str| config.settings.is_own_column(c, t.version.is_none());
    let mut business: BTreeMap<String, BTreeMap<&str, &str>> = BTreeMap::new();
    for (node, schema) in present {
        for col in schema.columns.iter().filter(|c| !bookkeeping(&c.name)) {
            let name = t
                .columns
                .iter()
                .find(|c| c.on.get(*node).is_some_and(|p| *p == col.name))
                .map_or(col.name.as_str(), |c| c.name.as_str());
            business
                .entry(name.to_string())
                .or_default()
                .insert(node, &col.name);
        }
    }
    business
}

/// A column some nodes of a business table have and the others lack, not excluded in the file: its
/// values stay on the nodes that have it (`tandem status` lists these).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unsynced {
    pub table: String,
    pub column: String,
    /// The nodes that have it.
    pub on: Vec<String>,
}

/// Every [`Unsynced`] column of the file's tables, over the nodes whose schema was read.
pub fn unsynced(config: &Config, schemas: &NodeSchemas) -> Vec<Unsynced> {
    let mut out = Vec::new();
    for t in &config.tables {
        let present: BTreeMap<&str, &TableSchema> = t
            .physical
            .iter()
            .filter_map(|(node, physical)| {
                Some((node.as_str(), schemas.get(node)?.get(physical)?.as_ref()?))
            })
            .collect();
        for (name, on) in business_columns(config, t, &present) {
            if on.len() < present.len() && !t.exclude.contains(&name) {
                out.push(Unsynced {
                    table: t.name.clone(),
                    column: name,
                    on: on.keys().map(|n| n.to_string()).collect(),
                });
            }
        }
    }
    out
}

fn check_key(t: &Table, path: &str, node: &str, schema: &TableSchema, problems: &mut Vec<Problem>) {
    let key: Vec<String> = t
        .key
        .iter()
        .map(|k| t.column_on(k, node).to_string())
        .collect();
    let missing: Vec<&String> = key.iter().filter(|k| schema.column(k).is_none()).collect();
    if !missing.is_empty() {
        problems.push(Problem::error(
            format!("{path}.key"),
            format!(
                "key column(s) {missing:?} do not exist in {} on node {node}",
                schema.table
            ),
            "correct the key, or map the key column's name with tables.columns.on",
        ));
    } else if !schema.is_unique_key(&key) {
        problems.push(Problem::error(
            format!("{path}.key"),
            format!(
                "({}) is not a primary key or NOT NULL unique key of {} on node {node}",
                key.join(", "),
                schema.table
            ),
            format!(
                "ALTER TABLE {} ADD PRIMARY KEY ({}), or name the table's real key",
                schema.table,
                key.join(", ")
            ),
        ));
    }
}

fn check_version(
    config: &Config,
    t: &Table,
    path: &str,
    node: &str,
    schema: &TableSchema,
    problems: &mut Vec<Problem>,
) {
    let (column, named) = match &t.version {
        Some(v) => (t.column_on(v, node).to_string(), true),
        None => (config.settings.version_column.clone(), false),
    };
    if schema.column(&column).is_some() {
        return;
    }
    if named {
        problems.push(Problem::error(
            format!("{path}.version"),
            format!("version column {column} does not exist in {} on node {node}", schema.table),
            "name an existing column that changes on every write, or remove `version` to let setup manage one",
        ));
    } else if !config.settings.manage_columns {
        problems.push(Problem::error(
            format!("{path}.version"),
            format!("{} on node {node} has no version column {column} and manage_columns is off", schema.table),
            "set version = \"<column>\" on the table, or turn manage_columns on and run `tandem setup`",
        ));
    } else {
        problems.push(Problem::warning(
            format!("{path}.version"),
            format!("{} on node {node} has no {column} column yet", schema.table),
            "run `tandem setup` to add the version and origin columns",
        ));
    }
}

fn report_unsynced(
    t: &Table,
    path: &str,
    name: &str,
    on: &BTreeMap<&str, &str>,
    present: &BTreeMap<&str, &TableSchema>,
    excluded: &BTreeSet<&str>,
    problems: &mut Vec<Problem>,
) {
    let nodes: Vec<&str> = on.keys().copied().collect();
    if !excluded.contains(name) {
        problems.push(Problem::warning(
            path.to_string(),
            format!("column {name} exists on {} only, so it is not synced", nodes.join(", ")),
            "add it on the other nodes, map it to a differently named column with tables.columns, or ignore this",
        ));
    }
    for (node, physical) in on {
        let Some(col) = present.get(node).and_then(|s| s.column(physical)) else {
            continue;
        };
        if !col.nullable && !col.has_default && !t.key.iter().any(|k| k == name) {
            problems.push(Problem::error(
                path.to_string(),
                format!("column {physical} on node {node} is NOT NULL without a default, and no other node sends it: rows inserted elsewhere cannot be applied there"),
                format!("give {physical} a default, make it nullable, or map a column of the other nodes to it"),
            ));
        }
    }
}

fn check_types(
    config: &Config,
    t: &Table,
    path: &str,
    name: &str,
    on: &BTreeMap<&str, &str>,
    present: &BTreeMap<&str, &TableSchema>,
    problems: &mut Vec<Problem>,
) {
    let listed = t.columns.iter().position(|c| c.name == name);
    let cpath = listed.map_or_else(|| path.to_string(), |j| format!("{path}.columns[{j}]"));
    let column = listed.map(|j| &t.columns[j]);
    if column.is_some_and(|c| !c.values.is_empty()) {
        return; // value maps convert between the stored forms; their entries are checked per value
    }
    let owner = column
        .and_then(|c| c.owner.as_deref())
        .or(t.owner.as_deref());
    let typed: Vec<(&str, &crate::model::schema::ColumnSchema)> = on
        .iter()
        .filter_map(|(node, physical)| {
            present
                .get(node)
                .and_then(|s| s.column(physical))
                .map(|c| (*node, c))
        })
        .collect();
    for (i, (a, ca)) in typed.iter().enumerate() {
        for (b, cb) in &typed[i + 1..] {
            let verdict = match owner {
                Some(o) if o == *a => fits(&ca.ty, &cb.ty),
                Some(o) if o == *b => fits(&cb.ty, &ca.ty),
                _ => round_trip(&ca.ty, &cb.ty),
            };
            let pair = format!(
                "column {name}: {} on {a} and {} on {b}",
                ca.declared, cb.declared
            );
            match verdict {
                Fit::Exact => {}
                Fit::Conventional(why) => problems.push(Problem::warning(&cpath, format!("{pair}: {why}"), "")),
                Fit::Narrowing(why) => problems.push(Problem::warning(
                    &cpath,
                    format!("{pair}: {why}"),
                    "widen the narrower column, or accept that such values are refused and dead-lettered",
                )),
                Fit::Lossy(why) => problems.push(Problem::error(
                    &cpath,
                    format!("{pair}: {why}; a two-way mapping would corrupt data or conflict forever"),
                    "widen the column so both types hold the same values, make the column one-way with owner = \"<node>\", or add a value map",
                )),
            }
            let engine = |node: &str| config.node(node).map(|n| n.engine);
            let (Some(ea), Some(eb)) = (engine(a), engine(b)) else {
                continue;
            };
            let directions = [
                ((*a, *ca, ea), (*b, *cb, eb)),
                ((*b, *cb, eb), (*a, *ca, ea)),
            ];
            for ((from, cf, ef), (to, ct, et)) in directions {
                if owner.is_some_and(|o| o != from) {
                    continue;
                }
                let side = |engine, column| refusals::Side { engine, column };
                for c in refusals::classes(side(ef, cf), side(et, ct)) {
                    let effect = if c.changed {
                        "stores"
                    } else {
                        "refuses (dead letter or halt)"
                    };
                    problems.push(Problem::warning(
                        &cpath,
                        format!(
                            "column {name} from {from} ({}) to {to} ({}) {effect} {}",
                            cf.declared, ct.declared, c.what
                        ),
                        c.fix,
                    ));
                }
            }
        }
    }
}
