//! Rows of different nodes held against each other in their business form, through the mapping the
//! appliers use: a row of node X is mapped to node Y exactly as a link X -> Y would map an insert of
//! it (renamed columns, value maps, transforms, null stand-ins, excluded columns, the row filter),
//! then compared with Y's row column by column, each value as Y would store it (time zones, numbers
//! of different widths, an enum label against a text). Pure: rows in, findings out.
//!
//! ```text
//!  key k: rows of the nodes that hold it (None where missing)
//!    ├─ a node without k where some holder's row maps to it (passes the row filter) -> missing_on
//!    └─ the first holder X against each other holder Y: map X -> Y (else Y -> X when only
//!       Y's row passes the filter) -> differing columns, in business names, kept where Y -> X
//!       differs too (a one-way transform holds in one direction only) -> differs
//! ```
//!
//! Never compared: the key (rows are matched on it), tandem's origin marker and managed version
//! column, the columns the file excludes, and columns one side does not have.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use crate::config::{Config, Table};
use crate::mapping::{Mapper, TablePlan};
use crate::model::{Change, Op, RowImage, TableRef, Value};

/// One node's side of a table.
#[derive(Debug, Clone)]
pub struct Side {
    pub node: String,
    pub table: TableRef,
    /// Physical key columns, in key order.
    pub key: Vec<String>,
    pub engine: crate::config::Engine,
    offset_secs: i32,
    /// Physical columns never compared here.
    skip: HashSet<String>,
    /// Physical column -> business name, where they differ.
    business: HashMap<String, String>,
}

impl Side {
    /// The node's UTC offset, at which its wall-clock date-times are read.
    pub fn offset_secs(&self) -> i32 {
        self.offset_secs
    }
}

/// What is wrong with one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The node lacks a row some other node's row maps to.
    MissingOn(String),
    /// The rows of `nodes` differ in these business columns.
    Differs {
        nodes: [String; 2],
        columns: Vec<String>,
    },
}

/// One business table across the nodes compared.
pub struct Form<'a> {
    pub table: &'a Table,
    pub sides: Vec<Side>,
    /// Mapper from side i to side j, at `i * n + j` (`None` on the diagonal).
    mappers: Vec<Option<Mapper>>,
}

impl<'a> Form<'a> {
    /// The table on those of `nodes` that map it.
    pub fn new(config: &Config, table: &'a Table, nodes: &[String]) -> Form<'a> {
        let sides: Vec<Side> = nodes
            .iter()
            .filter_map(|n| {
                let physical = table.physical.get(n)?.clone();
                let mut skip: HashSet<String> = table
                    .exclude
                    .iter()
                    .map(|e| table.column_on(e, n).to_string())
                    .collect();
                skip.insert(config.settings.origin_column.clone());
                if table.version.is_none() {
                    skip.insert(config.settings.version_column.clone());
                    skip.insert(crate::names::prev_version_column(
                        &config.settings.version_column,
                    ));
                }
                let key: Vec<String> = table
                    .key
                    .iter()
                    .map(|k| table.column_on(k, n).to_string())
                    .collect();
                skip.extend(key.iter().cloned());
                let business = table
                    .columns
                    .iter()
                    .filter_map(|c| Some((c.on.get(n)?.clone(), c.name.clone())))
                    .collect();
                Some(Side {
                    node: n.clone(),
                    table: physical,
                    key,
                    engine: config
                        .node(n)
                        .map_or(crate::config::Engine::Postgres, |c| c.engine),
                    offset_secs: config.node(n).map_or(0, |c| c.utc_offset_secs),
                    skip,
                    business,
                })
            })
            .collect();
        let mut mappers = Vec::new();
        for x in &sides {
            for y in &sides {
                mappers.push((x.node != y.node).then(|| Mapper::new(config, &x.node, &y.node)));
            }
        }
        Form {
            table,
            sides,
            mappers,
        }
    }

    /// The key of side `i`'s row, in key order; `None` when a key column is missing or NULL.
    pub fn key_of(&self, i: usize, row: &RowImage) -> Option<Vec<Value>> {
        self.sides[i]
            .key
            .iter()
            .map(|k| row.get(k).filter(|v| !v.is_null()).cloned())
            .collect()
    }

    /// Whether the judge compares side `i`'s physical column (not the key, a bookkeeping column
    /// or an excluded one).
    pub fn compared(&self, i: usize, physical: &str) -> bool {
        !self.sides[i].skip.contains(physical)
    }

    /// The business name of side `i`'s physical column.
    pub fn business_name<'b>(&'b self, i: usize, column: &'b str) -> &'b str {
        self.sides[i]
            .business
            .get(column)
            .map_or(column, String::as_str)
    }

    /// The plan of a link into side `i` (its physical version and origin columns, the table's
    /// rules); `None` when no other side maps the table to it.
    pub(super) fn plan(&self, i: usize) -> Option<&TablePlan> {
        (0..self.sides.len())
            .filter(|&j| j != i)
            .find_map(|j| self.mapper(j, i)?.plan_for_source(&self.sides[j].table))
    }

    fn mapper(&self, from: usize, to: usize) -> Option<&Mapper> {
        self.mappers
            .get(from * self.sides.len() + to)
            .and_then(Option::as_ref)
    }

    /// Side `from`'s row as a link to side `to` would write it; `None` when the row filter keeps it
    /// home. A value the mapping cannot carry is `Err` with the business column.
    pub(super) fn mapped(
        &self,
        from: usize,
        to: usize,
        row: &RowImage,
    ) -> Option<Result<RowImage, String>> {
        let change = Change {
            table: self.sides[from].table.clone(),
            op: Op::Insert,
            before: None,
            after: Some(row.clone()),
        };
        match self.mapper(from, to)?.map(&change)? {
            Ok(c) => c.after.map(Ok),
            Err(e) => Some(Err(e.column)),
        }
    }

    /// Everything wrong with one key, given each side's row (`None`: the side lacks it).
    pub fn judge(&self, rows: &[Option<&RowImage>]) -> Vec<Finding> {
        let mut out = Vec::new();
        let holders: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].is_some()).collect();
        for (y, row) in rows.iter().enumerate() {
            if row.is_some() {
                continue;
            }
            let expected = holders
                .iter()
                .any(|&x| rows[x].is_some_and(|r| self.mapped(x, y, r).is_some()));
            if expected {
                out.push(Finding::MissingOn(self.sides[y].node.clone()));
            }
        }
        let Some((&x, others)) = holders.split_first() else {
            return out;
        };
        for &y in others {
            let (Some(rx), Some(ry)) = (rows[x], rows[y]) else {
                continue;
            };
            let columns = match self.mapped(x, y, rx) {
                Some(m) => {
                    let mut columns = self.differing(x, y, m, ry);
                    // A one-way transform normalises on the way to one node only: a column
                    // differs when it differs in both directions (the same for every other rule).
                    if !columns.is_empty() {
                        if let Some(back) = self.mapped(y, x, ry) {
                            let back = self.differing(y, x, back, rx);
                            columns.retain(|c| back.contains(c));
                        }
                    }
                    columns
                }
                None => match self.mapped(y, x, ry) {
                    Some(m) => self.differing(y, x, m, rx),
                    None => continue, // both rows stay home: not synced
                },
            };
            if !columns.is_empty() {
                out.push(Finding::Differs {
                    nodes: [self.sides[x].node.clone(), self.sides[y].node.clone()],
                    columns,
                });
            }
        }
        out
    }

    /// The business columns in which `mapped` (side `from`'s row mapped to `to`) differs from
    /// side `to`'s row.
    fn differing(
        &self,
        from: usize,
        to: usize,
        mapped: Result<RowImage, String>,
        row: &RowImage,
    ) -> Vec<String> {
        let mapped = match mapped {
            Ok(m) => m,
            Err(column) => return vec![column],
        };
        let side = &self.sides[to];
        let mut columns = Vec::new();
        for f in &mapped.fields {
            if side.skip.contains(&*f.name) {
                continue;
            }
            let Some(theirs) = row.get(&f.name) else {
                continue; // a column the target does not have is not synced
            };
            if !same(
                &f.value,
                self.sides[from].offset_secs,
                theirs,
                side.offset_secs,
            ) {
                columns.push(self.business_name(to, &f.name).to_string());
            }
        }
        columns
    }
}

/// Whether `a` (a value of a node at UTC offset `a_off`) is what `b` (at `b_off`) holds, as the
/// appliers convert values: numbers by value, an enum label as its text, JSON as a document, a
/// wall-clock date-time at its node's offset against an instant.
pub fn same(a: &Value, a_off: i32, b: &Value, b_off: i32) -> bool {
    use Value::*;
    if a == b {
        return true;
    }
    match (a, b) {
        (Null, _) | (_, Null) => false,
        (Timestamp(x), TimestampTz(y)) => x - i64::from(a_off) * 1_000_000 == *y,
        (TimestampTz(x), Timestamp(y)) => *x == y - i64::from(b_off) * 1_000_000,
        (Json(x), Json(y)) | (Json(x), Text(y)) | (Text(x), Json(y)) => json_eq(x, y),
        (Time(x), TimeTz { micros, .. }) | (TimeTz { micros, .. }, Time(x)) => x == micros,
        (Array(x), Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, a_off, y, b_off))
        }
        _ => match (number(a), number(b)) {
            (Some(x), Some(y)) => x == y,
            (None, None) => text(a) == text(b),
            _ => false,
        },
    }
}

fn json_eq(x: &str, y: &str) -> bool {
    match (
        serde_json::from_str::<serde_json::Value>(x),
        serde_json::from_str::<serde_json::Value>(y),
    ) {
        (Ok(x), Ok(y)) => x == y,
        _ => x == y,
    }
}

/// A number, exactly: integers as themselves, decimals and floats by their shortest text.
#[derive(Debug, PartialEq)]
enum Num {
    Int(i128),
    Text(String),
}

fn number(v: &Value) -> Option<Num> {
    Some(match v {
        Value::Bool(b) => Num::Int(i128::from(*b)),
        Value::Int(i) => Num::Int(i128::from(*i)),
        Value::UInt(u) => Num::Int(i128::from(*u)),
        Value::Decimal(d) => match d.normalized().parse::<i128>() {
            Ok(i) => Num::Int(i),
            Err(_) => Num::Text(d.normalized().to_string()),
        },
        Value::Float32(f) => float(f64::from(*f)),
        Value::Float64(f) => float(*f),
        _ => return None,
    })
}

fn float(f: f64) -> Num {
    if f.fract() == 0.0 && f.abs() < 1e18 {
        Num::Int(f as i128)
    } else {
        Num::Text(f.to_string())
    }
}

/// The text a value stands for where kinds differ (an enum label, a SET list, bytes that are UTF-8).
fn text(v: &Value) -> String {
    match v {
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        other => other.to_string(),
    }
}

/// Key order: the order the readers return keys in ([`crate::copy::KeyOrder::Bytes`]): numbers by
/// value, text and bytes by their bytes, dates and times by value.
pub fn cmp_key(a: &[Value], b: &[Value]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let o = cmp_value(x, y);
        if o != Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

fn cmp_value(a: &Value, b: &Value) -> Ordering {
    use Value::*;
    match (a, b) {
        (Date(x), Date(y)) => x.cmp(y),
        (Time(x), Time(y)) | (Timestamp(x), Timestamp(y)) | (TimestampTz(x), TimestampTz(y)) => {
            x.cmp(y)
        }
        (Uuid(x), Uuid(y)) => x.cmp(y),
        (Bytes(x), Bytes(y)) => x.cmp(y),
        _ => match (number(a), number(b)) {
            (Some(Num::Int(x)), Some(Num::Int(y))) => x.cmp(&y),
            (Some(x), Some(y)) => {
                let f = |n: Num| match n {
                    Num::Int(i) => i as f64,
                    Num::Text(t) => t.parse().unwrap_or(f64::NAN),
                };
                f(x).total_cmp(&f(y))
            }
            _ => text(a).as_bytes().cmp(text(b).as_bytes()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Decimal;

    #[test]
    fn values_compare_as_the_appliers_store_them() {
        assert!(same(&Value::Int(1), 0, &Value::UInt(1), 0));
        assert!(same(&Value::Bool(true), 0, &Value::Int(1), 0));
        assert!(!same(&Value::Bool(true), 0, &Value::Int(2), 0));
        let d: Decimal = "12.50".parse().unwrap();
        assert!(same(
            &Value::Decimal(d.clone()),
            0,
            &Value::Float64(12.5),
            0
        ));
        assert!(!same(&Value::Decimal(d), 0, &Value::Float64(12.51), 0));
        assert!(same(
            &Value::Enum("open".into()),
            0,
            &Value::Text("open".into()),
            0
        ));
        assert!(!same(&Value::Text("a".into()), 0, &Value::Null, 0));
        assert!(same(
            &Value::Json(r#"{"a": 1, "b": [2]}"#.into()),
            0,
            &Value::Json(r#"{"b":[2],"a":1}"#.into()),
            0
        ));
        // A DATETIME on a node at +02:00 against the instant two hours earlier.
        let h = 3_600_000_000;
        assert!(same(
            &Value::Timestamp(10 * h),
            7200,
            &Value::TimestampTz(8 * h),
            0
        ));
        assert!(same(
            &Value::TimestampTz(8 * h),
            0,
            &Value::Timestamp(10 * h),
            7200
        ));
        assert!(!same(
            &Value::Timestamp(10 * h),
            0,
            &Value::TimestampTz(8 * h),
            0
        ));
        assert!(!same(&Value::Text("1".into()), 0, &Value::Int(2), 0));
    }

    fn row(fields: &[(&str, Value)]) -> RowImage {
        RowImage::new(
            crate::model::ImageKind::Full,
            fields
                .iter()
                .map(|(n, v)| crate::model::Field {
                    name: (*n).into(),
                    value: v.clone(),
                })
                .collect(),
        )
    }

    #[test]
    fn rows_are_judged_through_the_mapping() {
        let text = r#"
[nodes.crm]
url = "postgres://u@h/db"
[nodes.desk]
url = "mysql://u@h/db"
[[tables]]
name = "customer"
key = ["id"]
owner = "crm"
exclude = ["secret"]
filter = { region = ["EU"] }
[[tables.columns]]
name = "id"
on = { desk = "client_id" }
[[tables.columns]]
name = "status"
on = { desk = "status_code" }
values = { desk = { "Approved" = 1, "Pending" = 2 } }
[[tables.columns]]
name = "email"
transform = { desk = ["lowercase"] }
"#;
        let (config, _) = Config::from_str_with_env(text, "t", &|_| None).expect("valid file");
        let nodes = vec!["crm".to_string(), "desk".to_string()];
        let form = Form::new(&config, &config.tables[0], &nodes);
        let t = |s: &str| Value::Text(s.into());
        let crm = |status: &str, email: &str, region: &str| {
            row(&[
                ("id", Value::Int(1)),
                ("status", t(status)),
                ("email", t(email)),
                ("region", t(region)),
                ("secret", t("crm's")),
                ("_tandem_origin", t("crm")),
                ("_tandem_version", Value::Int(3)),
            ])
        };
        let desk = |code: i64, email: &str| {
            row(&[
                ("client_id", Value::Int(1)),
                ("status_code", Value::Int(code)),
                ("email", t(email)),
                ("region", t("EU")),
                ("secret", t("desk's")),
                ("_tandem_origin", t("desk")),
                ("_tandem_version", Value::Int(9)),
            ])
        };
        let same_row = crm("Approved", "Ann@X.org", "EU");
        assert_eq!(
            form.judge(&[Some(&same_row), Some(&desk(1, "ann@x.org"))]),
            vec![],
            "value map, one-way transform, excluded and bookkeeping columns"
        );
        let reversed = vec!["desk".to_string(), "crm".to_string()];
        let from_desk = Form::new(&config, &config.tables[0], &reversed);
        assert_eq!(
            from_desk.judge(&[Some(&desk(1, "ann@x.org")), Some(&same_row)]),
            vec![],
            "the transform holds from the owner only: judged in both directions"
        );
        assert_eq!(
            form.judge(&[Some(&same_row), Some(&desk(2, "bob@x.org"))]),
            vec![Finding::Differs {
                nodes: ["crm".into(), "desk".into()],
                columns: vec!["status".into(), "email".into()],
            }]
        );
        assert_eq!(
            form.judge(&[Some(&same_row), None]),
            vec![Finding::MissingOn("desk".into())]
        );
        assert_eq!(
            form.judge(&[Some(&crm("Approved", "a", "US")), None]),
            vec![],
            "a row the filter keeps home is not expected elsewhere"
        );
        assert_eq!(
            form.judge(&[None, Some(&desk(1, "a"))]),
            vec![Finding::MissingOn("crm".into())]
        );
    }

    #[test]
    fn keys_order_numbers_by_value_and_text_by_bytes() {
        let k = |v: Value| vec![v];
        assert_eq!(
            cmp_key(&k(Value::Int(9)), &k(Value::UInt(10))),
            Ordering::Less
        );
        assert_eq!(
            cmp_key(&k(Value::Text("B".into())), &k(Value::Text("a".into()))),
            Ordering::Less
        );
        assert_eq!(
            cmp_key(
                &[Value::Int(1), Value::Int(2)],
                &[Value::Int(1), Value::Int(2)]
            ),
            Ordering::Equal
        );
        assert_eq!(
            cmp_key(
                &[Value::Int(1), Value::Int(3)],
                &[Value::Int(2), Value::Int(0)]
            ),
            Ordering::Less
        );
    }
}
