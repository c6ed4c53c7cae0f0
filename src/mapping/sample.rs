//! The sample dry run behind `tandem check --sample N`: rows read from one node are mapped to another
//! and held against the target's schema, to find what the target would reject before anything is
//! written: a value with no entry in a value map (or that a transform cannot normalise), a NULL for a
//! NOT NULL column, a text longer than the column allows, and every value the target's engine has no
//! form for (see [`super::refusals::refuses`]). Pure; the caller reads the rows.

use std::collections::BTreeMap;

use super::Mapper;
use crate::config::{Engine, Problem};
use crate::model::schema::ColumnType;
use crate::model::schema::TableSchema;
use crate::model::{Change, Op, RowImage, TableRef, Value};

/// Findings for the rows of `source_table` mapped by `mapper` onto `target` (its live schema). Each
/// kind of rejection is reported once per column, with how many sampled rows it hit and the key of
/// the first.
pub fn analyze(
    path: &str,
    mapper: &Mapper,
    source_table: &TableRef,
    rows: &[RowImage],
    target: &TableSchema,
    target_engine: Engine,
) -> Vec<Problem> {
    let Some(plan) = mapper.plan_for_source(source_table) else {
        return Vec::new();
    };
    // (column, what) -> (count, key of the first row)
    let mut found: BTreeMap<(String, String), (usize, String)> = BTreeMap::new();
    let key_of = |img: &RowImage, names: &[String]| -> String {
        names
            .iter()
            .map(|k| {
                img.get(k)
                    .map_or_else(|| "?".to_string(), |v| format!("{k}={v}"))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    for row in rows {
        let change = Change {
            table: source_table.clone(),
            op: Op::Insert,
            before: None,
            after: Some(row.clone()),
        };
        let mapped = match mapper.map(&change) {
            None => continue, // filtered out: stays home
            Some(Err(e)) => {
                let entry = found
                    .entry((e.column.clone(), e.reason.clone()))
                    .or_insert((0, key_of(row, &plan.key)));
                entry.0 += 1;
                continue;
            }
            Some(Ok(c)) => c,
        };
        let Some(after) = mapped.after else { continue };
        let key = key_of(&after, &plan.key);
        for col in &target.columns {
            let what = match (after.get(&col.name), &col.ty) {
                (Some(Value::Null), _) if !col.nullable => {
                    Some("NULL for a NOT NULL column".to_string())
                }
                (
                    Some(Value::Text(t)),
                    ColumnType::Text {
                        max_chars: Some(n), ..
                    },
                ) if t.chars().count() as u64 > *n => {
                    Some(format!("longer than {} allows", col.declared))
                }
                (Some(v), _) => super::refusals::refuses(v, col, target_engine),
                _ => None,
            };
            if let Some(what) = what {
                found
                    .entry((col.name.clone(), what))
                    .or_insert((0, key.clone()))
                    .0 += 1;
            }
        }
    }
    found
        .into_iter()
        .map(|((column, what), (count, key))| {
            Problem::error(
                path,
                format!(
                    "{} would reject {count} of {} sampled row(s) from {} in column {column}: {what} (first: {key})",
                    target.table,
                    rows.len(),
                    mapper.source()
                ),
                "fix those rows at the source, widen the target column, or extend the mapping",
            )
        })
        .collect()
}
