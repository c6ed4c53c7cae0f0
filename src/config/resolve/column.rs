//! Column resolution: physical names, value maps, per-column conflict rules, transforms and `null_as`.

use std::collections::{BTreeMap, BTreeSet};

use super::check_node_ref;
use crate::config::file::{ColumnFile, ConflictRule, Scalar};
use crate::config::Problem;
use crate::mapping::transform::Transform;

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

pub(super) fn resolve_column(
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
