//! The rule set as people read it: every business table with its physical name on each node, its
//! column mappings and value maps, owners, conflict and delete rules, taken from the resolved file.
//! One document ([`document`]) rendered three ways: JSON (`GET /api/rules`), Markdown and HTML
//! (`tandem rules --format markdown|html`, the console's rule-set page).

use serde::Serialize;

use super::view::esc;
use crate::config::{Config, DdlPolicy, DeletePolicy, Table, TruncatePolicy};

/// The whole rule set.
#[derive(Debug, Clone, Serialize)]
pub struct RuleSet {
    pub nodes: Vec<NodeRule>,
    pub tables: Vec<TableRule>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeRule {
    pub id: String,
    pub engine: String,
    pub priority: i64,
}

/// One business table's rules.
#[derive(Debug, Clone, Serialize)]
pub struct TableRule {
    pub name: String,
    pub key: Vec<String>,
    /// Node -> `schema.table`.
    pub physical: Vec<(String, String)>,
    pub owner: Option<String>,
    /// `last_write_wins`, `prefer`, `merge` or `manual`, with its details in words.
    pub conflict: String,
    pub deletes: String,
    pub truncate: String,
    /// What a schema change on one node does on the others.
    pub ddl: String,
    pub on_error: String,
    /// Columns not synced.
    pub exclude: Vec<String>,
    /// Column -> the values a synced row may hold there.
    pub filter: Vec<(String, Vec<String>)>,
    pub columns: Vec<ColumnRule>,
}

/// A business column with anything that differs from "same name, same value everywhere".
#[derive(Debug, Clone, Serialize)]
pub struct ColumnRule {
    pub name: String,
    /// Node -> physical column name, where it differs.
    pub names: Vec<(String, String)>,
    /// Node -> `business value -> stored value` pairs.
    pub values: Vec<(String, Vec<(String, String)>)>,
    pub owner: Option<String>,
    pub conflict: Option<String>,
    /// Node -> transforms applied on the way there.
    pub transforms: Vec<(String, Vec<String>)>,
    /// Node -> the text that stands for NULL there.
    pub null_as: Vec<(String, String)>,
}

fn rule_name(r: crate::config::ConflictRule) -> &'static str {
    use crate::config::ConflictRule::*;
    match r {
        LastWriteWins => "last_write_wins",
        Prefer => "prefer",
        Merge => "merge",
        Manual => "manual",
    }
}

fn conflict_words(t: &Table) -> String {
    let mut s = rule_name(t.conflict).to_string();
    if let Some(p) = &t.prefer {
        s.push_str(&format!(" (prefer {p})"));
    }
    if t.conflict == crate::config::ConflictRule::Merge {
        s.push_str(&format!(
            ", a column changed on both sides: {}",
            rule_name(t.merge_fallback)
        ));
    }
    s
}

/// The rule set of `config`.
pub fn document(config: &Config) -> RuleSet {
    let nodes = config
        .nodes
        .values()
        .map(|n| NodeRule {
            id: n.id.clone(),
            engine: format!("{:?}", n.engine).to_lowercase(),
            priority: i64::from(n.priority),
        })
        .collect();
    let tables = config
        .tables
        .iter()
        .map(|t| TableRule {
            name: t.name.clone(),
            key: t.key.clone(),
            physical: t
                .physical
                .iter()
                .map(|(n, r)| (n.clone(), r.to_string()))
                .collect(),
            owner: t.owner.clone(),
            conflict: conflict_words(t),
            deletes: match &t.deletes {
                DeletePolicy::Propagate => "propagate".into(),
                DeletePolicy::Ignore => "ignore".into(),
                DeletePolicy::Soft(c) => format!("soft (sets {c})"),
            },
            truncate: match t.truncate {
                TruncatePolicy::Ignore => "ignore (recorded as a conflict)".into(),
                TruncatePolicy::Propagate => "propagate".into(),
            },
            ddl: match t.ddl {
                DdlPolicy::Ignore => "ignore (each node's schema is its own)".into(),
                DdlPolicy::Propagate => "propagate (columns added or dropped on a node are added or dropped on the others)".into(),
            },
            on_error: format!("{:?}", t.on_error).to_lowercase(),
            exclude: t.exclude.clone(),
            filter: t
                .filter
                .iter()
                .map(|(c, v)| (c.clone(), v.iter().map(ToString::to_string).collect()))
                .collect(),
            columns: t
                .columns
                .iter()
                .map(|c| ColumnRule {
                    name: c.name.clone(),
                    names: c.on.iter().map(|(n, p)| (n.clone(), p.clone())).collect(),
                    values: c
                        .values
                        .iter()
                        .map(|(n, pairs)| {
                            (
                                n.clone(),
                                pairs
                                    .iter()
                                    .map(|(b, s)| (b.clone(), s.to_string()))
                                    .collect(),
                            )
                        })
                        .collect(),
                    owner: c.owner.clone(),
                    conflict: c.conflict.map(|r| {
                        let mut s = rule_name(r).to_string();
                        if let Some(p) = &c.prefer {
                            s.push_str(&format!(" (prefer {p})"));
                        }
                        s
                    }),
                    transforms: c
                        .transform
                        .iter()
                        .map(|(n, ts)| (n.clone(), ts.iter().map(ToString::to_string).collect()))
                        .collect(),
                    null_as: c
                        .null_as
                        .iter()
                        .map(|(n, v)| (n.clone(), v.clone()))
                        .collect(),
                })
                .collect(),
        })
        .collect();
    RuleSet { nodes, tables }
}

fn pairs(p: &[(String, String)], sep: &str) -> String {
    p.iter()
        .map(|(a, b)| format!("{a}{sep}{b}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn column_lines(c: &ColumnRule) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if !c.names.is_empty() {
        out.push(("named".into(), pairs(&c.names, ": ")));
    }
    for (node, map) in &c.values {
        out.push((format!("values on {node}"), pairs(map, " → ")));
    }
    if let Some(o) = &c.owner {
        out.push(("owner".into(), o.clone()));
    }
    if let Some(r) = &c.conflict {
        out.push(("conflict".into(), r.clone()));
    }
    for (node, ts) in &c.transforms {
        out.push((format!("on the way to {node}"), ts.join(", ")));
    }
    for (node, v) in &c.null_as {
        out.push((format!("NULL on {node} is"), format!("{v:?}")));
    }
    out
}

fn table_lines(t: &TableRule) -> Vec<(String, String)> {
    let mut out = vec![
        ("key".to_string(), t.key.join(", ")),
        ("tables".into(), pairs(&t.physical, ": ")),
        (
            "owner".into(),
            t.owner
                .clone()
                .unwrap_or_else(|| "none (every node writes)".into()),
        ),
        ("conflict".into(), t.conflict.clone()),
        ("deletes".into(), t.deletes.clone()),
        ("truncate".into(), t.truncate.clone()),
        ("schema changes".into(), t.ddl.clone()),
        ("on error".into(), t.on_error.clone()),
    ];
    if !t.exclude.is_empty() {
        out.push(("not synced".into(), t.exclude.join(", ")));
    }
    for (c, v) in &t.filter {
        out.push((format!("only rows whose {c} is"), v.join(", ")));
    }
    out
}

/// Markdown for a wiki: a section per table.
pub fn markdown(r: &RuleSet) -> String {
    let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let mut s = String::from("# tandem rule set\n\n| node | engine | priority |\n|---|---|---|\n");
    for n in &r.nodes {
        s.push_str(&format!(
            "| {} | {} | {} |\n",
            cell(&n.id),
            n.engine,
            n.priority
        ));
    }
    for t in &r.tables {
        s.push_str(&format!(
            "\n## {}\n\n| rule | value |\n|---|---|\n",
            cell(&t.name)
        ));
        for (k, v) in table_lines(t) {
            s.push_str(&format!("| {k} | {} |\n", cell(&v)));
        }
        let cols: Vec<_> = t
            .columns
            .iter()
            .filter(|c| !column_lines(c).is_empty())
            .collect();
        if !cols.is_empty() {
            s.push_str("\n| column | rule | value |\n|---|---|---|\n");
            for c in cols {
                for (k, v) in column_lines(c) {
                    s.push_str(&format!("| {} | {k} | {} |\n", cell(&c.name), cell(&v)));
                }
            }
        }
    }
    s
}

/// The HTML body (no page around it): the console wraps it; `tandem rules --format html` wraps it
/// in a minimal page.
pub fn html_body(r: &RuleSet) -> String {
    let mut s = String::from("<table><tr><th>node</th><th>engine</th><th>priority</th></tr>");
    for n in &r.nodes {
        s.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&n.id),
            esc(&n.engine),
            n.priority
        ));
    }
    s.push_str("</table>");
    for t in &r.tables {
        s.push_str(&format!(
            "<h2 id=\"table-{0}\">{0}</h2><table>",
            esc(&t.name)
        ));
        for (k, v) in table_lines(t) {
            s.push_str(&format!(
                "<tr><th>{}</th><td>{}</td></tr>",
                esc(&k),
                esc(&v)
            ));
        }
        s.push_str("</table>");
        let cols: Vec<_> = t
            .columns
            .iter()
            .filter(|c| !column_lines(c).is_empty())
            .collect();
        if !cols.is_empty() {
            s.push_str("<table><tr><th>column</th><th>rule</th><th>value</th></tr>");
            for c in cols {
                for (k, v) in column_lines(c) {
                    s.push_str(&format!(
                        "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                        esc(&c.name),
                        esc(&k),
                        esc(&v)
                    ));
                }
            }
            s.push_str("</table>");
        }
    }
    s
}

/// A standalone HTML page of the rule set.
pub fn html_page(r: &RuleSet) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>tandem rule set</title>\
         <style>{}</style></head><body><h1>tandem rule set</h1>{}</body></html>\n",
        super::view::CSS,
        html_body(r)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[nodes.crm]
url = "postgres://postgres@127.0.0.1:5433/crm"
[nodes.helpdesk]
url = "mysql://root@127.0.0.1:3307/desk"

[[tables]]
name = "customer"
key = ["id"]
on = { crm = "public.customers", helpdesk = "clients" }
owner = "crm"
deletes = { soft = "deleted_at" }
exclude = ["notes"]

[[tables.columns]]
name = "id"
on = { crm = "id", helpdesk = "client_id" }

[[tables.columns]]
name = "status"
on = { helpdesk = "status_code" }
values = { helpdesk = { "Approved" = 1, "Pending | review" = 2 } }

[[tables.columns]]
name = "email"

[[tables]]
name = "ticket"
key = ["id"]
conflict = "merge"
"#;

    fn rules() -> RuleSet {
        let (config, _) = Config::from_str_with_env(FILE, "t.toml", &|_| None).expect("valid");
        document(&config)
    }

    #[test]
    fn markdown_names_every_table_its_physical_names_maps_and_rules() {
        let md = markdown(&rules());
        for want in [
            "| crm | postgres | 0 |",
            "## customer",
            "| tables | crm: public.customers, helpdesk: desk.clients |",
            "| owner | crm |",
            "| deletes | soft (sets deleted_at) |",
            "| not synced | notes |",
            "| id | named | crm: id, helpdesk: client_id |",
            "| status | values on helpdesk | Approved → 1, Pending \\| review → 2 |",
            "## ticket",
            "| conflict | merge, a column changed on both sides: last_write_wins |",
            "| owner | none (every node writes) |",
        ] {
            assert!(md.contains(want), "missing {want:?} in:\n{md}");
        }
        assert!(
            !md.contains("| email |"),
            "an unmapped column has no rule row:\n{md}"
        );
    }

    #[test]
    fn html_escapes_what_the_file_says() {
        let mut r = rules();
        r.tables[0].name = "<b>x</b>".into();
        let page = html_page(&r);
        assert!(
            page.contains("&lt;b&gt;x&lt;/b&gt;") && !page.contains("<b>x</b>"),
            "{page}"
        );
        assert!(page.contains("Approved → 1"), "{page}");
    }
}
