//! `tandem schema`: a node's tables made from another node's catalog, through the mapping and the
//! type rules `check` uses.
//!
//! ```text
//!  catalog::read_tables / read_extras / read_generators on --from  ─> Source per physical table
//!    └─> plan(config, from, to, sources)   pure: names through the mapping, types (types.rs),
//!          │                               keys, defaults, generators, comments, foreign keys
//!          └─> order()                     foreign keys' dependency order
//!                └─> render::statements    the target's dialect (render.rs)
//!                      └─> run::apply      one transaction on PostgreSQL; MariaDB checks first
//! ```
//!
//! Error handling: every column without a lossless counterpart is reported at once, each naming the
//! table, the column, its type and the candidates with why each was refused; nothing is rendered
//! then. What has no counterpart but loses nothing by being left out (a default expression, a
//! foreign key to an unmapped table, a computed column) is a warning.

mod render;
pub mod run;
mod types;

pub use render::statements;
pub use types::{choose as choose_type, DefaultValue};

use std::collections::BTreeMap;

use crate::catalog::{ForeignKey, Generator, GeneratorKind, TableExtras};
use crate::config::{Config, Engine, Problem, Table};
use crate::mapping::types::Fit;
use crate::model::schema::{ColumnSchema, TableSchema};
use crate::model::TableRef;

/// What the source node's catalog says about one table.
#[derive(Debug, Clone)]
pub struct Source {
    pub schema: TableSchema,
    pub extras: TableExtras,
    pub generators: Vec<Generator>,
}

/// One table to create, engine-neutral apart from its column types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTable {
    /// The business table's name, for messages.
    pub business: String,
    pub table: TableRef,
    pub columns: Vec<NewColumn>,
    pub primary_key: Vec<String>,
    pub unique_keys: Vec<Vec<String>>,
    pub foreign_keys: Vec<NewForeignKey>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewColumn {
    pub name: String,
    /// The type in the target's DDL.
    pub sql_type: String,
    pub nullable: bool,
    pub default: Option<DefaultValue>,
    /// A generated key: the value its first default insert takes.
    pub identity_start: Option<i64>,
    /// An enum stored as text: the labels a CHECK holds it to.
    pub labels: Option<Vec<String>>,
    pub comment: Option<String>,
}

/// A foreign key in the target's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewForeignKey {
    pub key: ForeignKey,
    /// Added by `ALTER TABLE` after every table exists (its table is created later: a cycle).
    pub deferred: bool,
}

/// The tables to create in creation order, and the warnings.
#[derive(Debug, Clone)]
pub struct Plan {
    pub tables: Vec<NewTable>,
    pub warnings: Vec<Problem>,
}

/// The tables of `config` (or only `only`, a business table) as node `to` should declare them,
/// made from `sources` (node `from`'s physical tables). Every problem at once when any column has
/// no counterpart.
pub fn plan(
    config: &Config,
    from: &str,
    to: &str,
    only: Option<&str>,
    sources: &BTreeMap<TableRef, Source>,
) -> Result<Plan, Vec<Problem>> {
    let engine = |id: &str| config.node(id).map_or(Engine::Postgres, |n| n.engine);
    let ctx = Context {
        config,
        from,
        to,
        engines: (engine(from), engine(to)),
    };
    let mut problems = Vec::new();
    let mut tables = Vec::new();
    for (i, t) in config.tables.iter().enumerate() {
        if only.is_some_and(|o| o != t.name) {
            continue;
        }
        let path = format!("tables[{i}]");
        let physical = &t.physical[from];
        match sources.get(physical) {
            Some(source) => tables.push(ctx.table(t, &path, source, &mut problems)),
            None => problems.push(Problem::error(
                &path,
                format!("table {physical} does not exist on node {from}"),
                format!("create it on {from}, or point tables.on.{from} at the right table"),
            )),
        }
    }
    if problems
        .iter()
        .any(|p| p.severity == crate::config::Severity::Error)
    {
        return Err(problems);
    }
    if ctx.engines.1 == Engine::Mysql {
        unique_key_names(&mut tables);
    }
    Ok(Plan {
        tables: order(tables),
        warnings: problems,
    })
}

struct Context<'a> {
    config: &'a Config,
    from: &'a str,
    to: &'a str,
    engines: (Engine, Engine),
}

impl Context<'_> {
    fn table(
        &self,
        t: &Table,
        path: &str,
        source: &Source,
        problems: &mut Vec<Problem>,
    ) -> NewTable {
        let (from, to) = (self.from, self.to);
        let settings = &self.config.settings;
        let bookkeeping = |c: &str| settings.is_own_column(c, t.version.is_none());
        // Source physical column -> target physical column, for every column created.
        let mut names: BTreeMap<&str, String> = BTreeMap::new();
        let mut columns = Vec::new();
        for col in source
            .schema
            .columns
            .iter()
            .filter(|c| !bookkeeping(&c.name))
        {
            if let Some(new) = self.column(t, path, source, col, problems) {
                names.insert(&col.name, new.name.clone());
                columns.push(new);
            }
        }
        let rename = |cols: &[String]| -> Option<Vec<String>> {
            cols.iter()
                .map(|c| names.get(c.as_str()).cloned())
                .collect()
        };
        let primary_key = rename(&source.schema.primary_key).unwrap_or_default();
        if primary_key.is_empty() {
            problems.push(Problem::error(
                path,
                format!(
                    "{} on node {from} has no primary key whose columns are all created",
                    source.schema.table
                ),
                "give the source table a primary key, or stop excluding its columns",
            ));
        }
        if self.engines.1 == Engine::Mysql {
            let unbounded = |c: &&NewColumn| {
                primary_key.contains(&c.name)
                    && (c.sql_type.ends_with("text") || c.sql_type.ends_with("blob"))
            };
            for c in columns.iter().filter(unbounded) {
                problems.push(Problem::error(
                    path,
                    format!("key column {} of table {} would be {} on {to}, which MySQL/MariaDB cannot index as a primary key", c.name, t.name, c.sql_type),
                    format!("declare it varchar(n) on {from} (n <= 768, what a utf8mb4 key holds), or create {} on {to} by hand", t.name),
                ));
            }
        }
        let unique_keys: Vec<Vec<String>> = source
            .schema
            .unique_keys
            .iter()
            .filter_map(|k| rename(k))
            .collect();
        self.keep_leading_generator(t, path, &mut columns, &primary_key, &unique_keys, problems);
        let foreign_keys = source
            .extras
            .foreign_keys
            .iter()
            .filter_map(|fk| self.foreign_key(fk, &rename, path, problems))
            .collect();
        NewTable {
            business: t.name.clone(),
            table: t.physical[to].clone(),
            columns,
            primary_key,
            unique_keys,
            foreign_keys,
            comment: source.extras.comment.clone(),
        }
    }

    /// The target column made from source column `col`; `None` when it is not created (excluded,
    /// computed, or without a type: the last is an error in `problems`).
    fn column(
        &self,
        t: &Table,
        path: &str,
        source: &Source,
        col: &ColumnSchema,
        problems: &mut Vec<Problem>,
    ) -> Option<NewColumn> {
        let (from, to) = (self.from, self.to);
        let business = t
            .columns
            .iter()
            .find(|c| c.on.get(from).is_some_and(|p| *p == col.name))
            .map_or(col.name.as_str(), |c| c.name.as_str());
        if t.exclude.iter().any(|e| e == business) {
            return None; // it never leaves its node, so the target has no use for it
        }
        let what = format!(
            "column {} ({} on node {from}) of table {}",
            col.name, col.declared, t.name
        );
        if col.generated {
            problems.push(Problem::warning(
                path,
                format!(
                    "{what} is computed: its expression is not carried over, so it is not created"
                ),
                format!("add it on {to} by hand, or exclude it"),
            ));
            return None;
        }
        let choice = self.column_type(t, business, col, path, &what, problems)?;
        let generator = source.generators.iter().find(|g| g.column == col.name);
        let value_mapped = t
            .columns
            .iter()
            .any(|c| c.name == business && !c.values.is_empty());
        let default = match (generator, source.extras.defaults.get(&col.name)) {
            (None, Some(expr)) if value_mapped => {
                problems.push(Problem::warning(
                    path,
                    format!("{what}: its default {expr} is a stored value of {from}, which the value map stores otherwise on {to}, so the column is created without one"),
                    format!("add the default on {to} by hand, in {to}'s stored form"),
                ));
                None
            }
            (None, Some(expr)) => types::parse_default(expr).unwrap_or_else(|()| {
                problems.push(Problem::warning(
                    path,
                    format!("{what}: its default {expr} has no counterpart on {to}, so the column is created without one"),
                    format!("add a default on {to} by hand if the applications need one"),
                ));
                None
            }),
            _ => None,
        };
        Some(NewColumn {
            name: t.column_on(business, to).to_string(),
            sql_type: choice.sql,
            nullable: col.nullable && generator.is_none(),
            default,
            identity_start: generator.map(|g| next_value(g, source.extras.auto_increment)),
            labels: choice.labels,
            comment: source.extras.comments.get(&col.name).cloned(),
        })
    }

    /// A generated key must lead a key (MySQL/MariaDB's rule), and one per table: the others lose
    /// their generator, with a warning.
    fn keep_leading_generator(
        &self,
        t: &Table,
        path: &str,
        columns: &mut [NewColumn],
        primary_key: &[String],
        unique_keys: &[Vec<String>],
        problems: &mut Vec<Problem>,
    ) {
        let mut generated = 0;
        for c in columns.iter_mut().filter(|c| c.identity_start.is_some()) {
            let leads = |k: &[String]| k.first() == Some(&c.name);
            if generated > 0 || !(leads(primary_key) || unique_keys.iter().any(|k| leads(k))) {
                c.identity_start = None;
                problems.push(Problem::warning(
                    path,
                    format!("column {} of table {} is generated on {}, but is not the first column of a key (or not the table's first generated column), so it is created without a generator", c.name, t.name, self.from),
                    format!("add the generator on {} by hand", self.to),
                ));
            } else {
                generated += 1;
            }
        }
    }

    /// The column's target type, or `None` after an error naming the candidates.
    fn column_type(
        &self,
        t: &Table,
        business: &str,
        col: &ColumnSchema,
        path: &str,
        what: &str,
        problems: &mut Vec<Problem>,
    ) -> Option<types::Choice> {
        let (from, to) = self.engines;
        if let Some(mapped) = types::mapped(t, business, to, self.to) {
            return match mapped {
                Ok(sql) => Some(types::Choice {
                    sql,
                    fit: Fit::Exact,
                    labels: None,
                }),
                Err(why) => {
                    problems.push(Problem::error(
                        path,
                        format!("{what}: {why}"),
                        "store one kind of value per node",
                    ));
                    None
                }
            };
        }
        match types::choose(col, from, to) {
            Ok(choice) => {
                match &choice.fit {
                    Fit::Conventional(why) | Fit::Narrowing(why) => {
                        problems.push(Problem::warning(
                            path,
                            format!("{what} becomes {} on {}: {why}", choice.sql, self.to),
                            "",
                        ))
                    }
                    _ => {}
                }
                Some(choice)
            }
            Err(refused) => {
                let choices = if refused.is_empty() {
                    format!("{} has no type for it", to.name())
                } else {
                    format!("the candidates lose values: {}", refused.join("; "))
                };
                problems.push(Problem::error(
                    path,
                    format!("{what} has no lossless counterpart on node {} ({}): {choices}", self.to, to.name()),
                    format!(
                        "change its type on {} to one both engines hold{}, exclude it with tables.exclude = [\"{business}\"], or create {} on {} by hand",
                        self.from,
                        if matches!(col.ty, crate::model::schema::ColumnType::Decimal { precision: None, .. }) {
                            " (numeric(p,s) with p <= 65 and s <= 30)"
                        } else {
                            ""
                        },
                        t.name,
                        self.to
                    ),
                ));
                None
            }
        }
    }

    fn foreign_key(
        &self,
        fk: &ForeignKey,
        rename: &dyn Fn(&[String]) -> Option<Vec<String>>,
        path: &str,
        problems: &mut Vec<Problem>,
    ) -> Option<NewForeignKey> {
        let referenced = self
            .config
            .tables
            .iter()
            .find(|t| t.physical.get(self.from) == Some(&fk.references));
        let (Some(referenced), Some(columns)) = (referenced, rename(&fk.columns)) else {
            problems.push(Problem::warning(
                path,
                format!("foreign key {} references {}, which no [[tables]] entry maps (or its columns are not created), so it is not created", fk.name, fk.references),
                "map the referenced table too, or add the constraint by hand",
            ));
            return None;
        };
        let ref_columns = fk
            .ref_columns
            .iter()
            .map(|c| {
                let business = referenced
                    .columns
                    .iter()
                    .find(|m| m.on.get(self.from) == Some(c))
                    .map_or(c.as_str(), |m| m.name.as_str());
                referenced.column_on(business, self.to).to_string()
            })
            .collect();
        Some(NewForeignKey {
            key: ForeignKey {
                columns,
                references: referenced.physical[self.to].clone(),
                ref_columns,
                ..fk.clone()
            },
            deferred: false,
        })
    }
}

/// MySQL/MariaDB want foreign key names unique in the database (PostgreSQL only in the table): a
/// name more than one table uses gets its table's name in front.
fn unique_key_names(tables: &mut [NewTable]) {
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for fk in tables.iter().flat_map(|t| &t.foreign_keys) {
        *count.entry(fk.key.name.clone()).or_default() += 1;
    }
    for t in tables.iter_mut() {
        for fk in &mut t.foreign_keys {
            if count.get(&fk.key.name).is_some_and(|n| *n > 1) {
                fk.key.name = format!("{}_{}", t.table.name, fk.key.name);
            }
        }
    }
}

/// The value a copy of `g`'s table should hand out next: above every key it holds.
fn next_value(g: &Generator, auto_increment: Option<i64>) -> i64 {
    let next = match g.kind {
        GeneratorKind::Sequence { next, .. } => next,
        GeneratorKind::AutoIncrement { .. } => auto_increment.unwrap_or(1),
    };
    next.max(g.max.map_or(1, |m| m.saturating_add(1))).max(1)
}

/// `tables` in dependency order: a table after the tables its foreign keys reference (stable
/// otherwise); a foreign key to a table created after it (a cycle) is marked `deferred`.
pub fn order(tables: Vec<NewTable>) -> Vec<NewTable> {
    let mut left = tables;
    let mut out: Vec<NewTable> = Vec::with_capacity(left.len());
    while !left.is_empty() {
        let ready = left.iter().position(|t| {
            t.foreign_keys.iter().all(|fk| {
                fk.key.references == t.table || !left.iter().any(|o| o.table == fk.key.references)
            })
        });
        // In a cycle nothing is ready: take the first, and its keys wait for the others.
        out.push(left.remove(ready.unwrap_or(0)));
    }
    let created: Vec<TableRef> = out.iter().map(|t| t.table.clone()).collect();
    for (i, t) in out.iter_mut().enumerate() {
        for fk in &mut t.foreign_keys {
            fk.deferred = created[i + 1..].contains(&fk.key.references);
        }
    }
    out
}

#[cfg(test)]
mod tests;
