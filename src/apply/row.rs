//! One incoming row change, prepared for a target: key, versions, origin and the columns to write, in
//! the target's physical names and limited to the columns the target has.

use crate::conflict::audit::{fields_json, image_json, key_json};
use crate::mapping::TablePlan;
use crate::model::{Change, Field, ImageKind, Op, RowImage, Value};

use super::error::{ApplyError, DbCode, ErrorClass};
use super::target::{ColKind, TableInfo, Tombstone, Write};

/// The bookkeeping column names shared by every node (`[tandem]` settings).
#[derive(Debug, Clone)]
pub struct Names {
    pub origin_column: String,
    pub version_column: String,
}

/// An incoming row change, ready to apply.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RowChange {
    pub op: Op,
    /// The key that finds the target row (from the before-image when there is one).
    pub key: Vec<Field>,
    /// Version in the source's before-image (`None`: unknown, no check possible).
    pub before_version: Option<Value>,
    /// Version in the source's after-image.
    pub after_version: Option<Value>,
    /// The node whose write this is: the after-image's origin marker, else (and always for a
    /// delete) the source node.
    pub origin: String,
    /// Columns of the after-image the target has, without bookkeeping columns or unsent values.
    pub after: Vec<Field>,
    /// Columns of the before-image the target has (the merge base).
    pub before: Vec<Field>,
    /// The after-image lacked some values (PostgreSQL unchanged TOAST): it is not a whole row.
    pub partial: bool,
    /// Source commit time, microseconds.
    pub commit_time: i64,
    /// Physical version column on the target.
    pub version_column: String,
    /// Whether the version column is tandem's (written from `after_version`) or the application's
    /// (written as one of `after`).
    pub managed_version: bool,
    /// Origin column, when the target table has it.
    pub origin_column: Option<String>,
}

impl RowChange {
    /// Builds the row change from the source change and its mapped form, each value in the form the
    /// target column takes (see [`target_form`]); a value the target column cannot hold as it is
    /// is a definite error naming the column.
    pub fn new(
        plan: &TablePlan,
        info: &TableInfo,
        names: &Names,
        source: &Change,
        mapped: &Change,
        tx_origin: &str,
        commit_time: i64,
    ) -> Result<RowChange, RefusedValue> {
        let has = |name: &str| info.column(name).is_some();
        let keep = |img: &Option<RowImage>| -> Vec<Field> {
            img.as_ref()
                .map(|i| {
                    i.fields
                        .iter()
                        .filter(|f| has(&f.name) && !matches!(f.value, Value::Unchanged))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default()
        };
        let after = keep(&mapped.after);
        let before = keep(&mapped.before);
        let partial = mapped.after.as_ref().is_some_and(|a| {
            a.kind != ImageKind::Full || a.fields.iter().any(|f| f.value == Value::Unchanged)
        });
        let key_from = |fields: &[Field]| -> Option<Vec<Field>> {
            plan.key
                .iter()
                .map(|k| fields.iter().find(|f| &*f.name == k).cloned())
                .collect()
        };
        let key = key_from(&before)
            .or_else(|| key_from(&after))
            .unwrap_or_default();
        let convert = |fields: Vec<Field>| -> Result<Vec<Field>, RefusedValue> {
            fields
                .into_iter()
                .map(|f| {
                    let col = info.column(&f.name);
                    let kind = col.map_or(ColKind::Other, |c| c.kind);
                    // A time column that holds an offset (PostgreSQL `timetz`) takes one as it is.
                    let kind = match col {
                        Some(c) if c.base_type.contains("with time zone") => ColKind::Other,
                        _ => kind,
                    };
                    match target_form(f.value, kind) {
                        Ok(value) => Ok(Field {
                            name: f.name,
                            value,
                        }),
                        Err(why) => Err(refused(plan, info, &key, &f.name, why)),
                    }
                })
                .collect()
        };
        let (after, before, key) = (convert(after)?, convert(before)?, convert(key.clone())?);
        let (before_version, after_version) = if plan.managed_version {
            let v = |img: &Option<RowImage>| {
                img.as_ref()
                    .and_then(|i| i.get(&names.version_column))
                    .filter(|v| !matches!(v, Value::Null | Value::Unchanged))
                    .cloned()
            };
            (v(&source.before), v(&source.after))
        } else {
            let v = |fields: &[Field]| {
                fields
                    .iter()
                    .find(|f| *f.name == *plan.version)
                    .map(|f| f.value.clone())
            };
            (v(&before), v(&after))
        };
        // A delete is the source node's act: the before-image's origin only says who wrote the row
        // it removed.
        let origin = source
            .after
            .as_ref()
            .and_then(|i| i.get(&names.origin_column))
            .and_then(|v| match v {
                Value::Text(t) if !t.is_empty() => Some(t.clone()),
                _ => None,
            })
            .unwrap_or_else(|| tx_origin.to_string());
        Ok(RowChange {
            op: mapped.op,
            key,
            before_version,
            after_version,
            origin,
            after,
            before,
            partial,
            commit_time,
            version_column: plan.version.clone(),
            managed_version: plan.managed_version,
            origin_column: has(&plan.origin_column).then(|| plan.origin_column.clone()),
        })
    }

    pub fn key_text(&self) -> String {
        key_json(&self.key)
    }

    /// The bookkeeping fields this write carries: the incoming version (managed) and origin.
    pub fn stamp_fields(&self, version: bool) -> Vec<Field> {
        let mut out = Vec::new();
        if version && self.managed_version {
            if let Some(v) = &self.after_version {
                out.push(Field {
                    name: self.version_column.as_str().into(),
                    value: v.clone(),
                });
            }
        }
        if let Some(col) = &self.origin_column {
            out.push(Field {
                name: col.as_str().into(),
                value: Value::Text(self.origin.clone()),
            });
        }
        out
    }

    /// Whether [`RowChange::full_write`] of `other` writes the same columns, in the same order, as
    /// this row's (without making either write).
    pub fn writes_columns_of(&self, other: &RowChange) -> bool {
        fn stamps(r: &RowChange) -> (Option<&String>, &Option<String>) {
            let version = r.managed_version && r.after_version.is_some();
            (version.then_some(&r.version_column), &r.origin_column)
        }
        self.after.len() == other.after.len()
            && self
                .after
                .iter()
                .zip(&other.after)
                .all(|(a, b)| a.name == b.name)
            && stamps(self) == stamps(other)
    }

    /// How many columns [`RowChange::full_write`] writes.
    pub fn full_write_len(&self) -> usize {
        let version = self.managed_version && self.after_version.is_some();
        self.after.len() + usize::from(version) + usize::from(self.origin_column.is_some())
    }

    /// [`RowChange::full_write`], taking the row's fields instead of copying them.
    pub fn into_full_write(self) -> Write {
        let stamps = self.stamp_fields(true);
        let mut set = self.after;
        set.extend(stamps);
        Write { key: self.key, set }
    }

    /// The incoming row as a write: every after column plus version and origin.
    pub fn full_write(&self) -> Write {
        let mut set = self.after.clone();
        set.extend(self.stamp_fields(true));
        Write {
            key: self.key.clone(),
            set,
        }
    }

    /// The write of an update whose version check passed: only the columns the source changed (its
    /// after-image against its before-image), with the stamps. The target row then stands where
    /// the source row stood, except after a merge, where it also holds the other side's columns,
    /// which a whole-row write would undo. Without a before-image to compare, or when no value
    /// changed (a row rewritten as it is so that it replicates), the whole row.
    pub fn changed_write(&self) -> Write {
        // A key column the row is found by, holding the same value: never set (a source logged
        // without its old row, PostgreSQL `REPLICA IDENTITY DEFAULT`, gives no before-image to
        // compare it with, and a `GENERATED ALWAYS` key refuses even the same value).
        let same_key = |f: &Field| {
            self.key
                .iter()
                .any(|k| k.name == f.name && k.value == f.value)
        };
        let mut set: Vec<Field> = self
            .after
            .iter()
            .filter(|f| {
                self.before
                    .iter()
                    .find(|b| b.name == f.name)
                    .is_none_or(|b| b.value != f.value)
                    && !same_key(f)
            })
            .cloned()
            .collect();
        if set.is_empty() {
            return self.full_write();
        }
        set.extend(self.stamp_fields(true));
        Write {
            key: self.key.clone(),
            set,
        }
    }

    /// The after columns that are compared field by field in a conflict: everything except the key
    /// and an application version column.
    pub fn compared(&self) -> Vec<Field> {
        self.after
            .iter()
            .filter(|f| !self.key.iter().any(|k| k.name == f.name))
            .filter(|f| self.managed_version || *f.name != *self.version_column)
            .cloned()
            .collect()
    }

    /// The tombstone an applied delete of this row leaves (managed versions only): stamped as its
    /// node stamped it, the deleted row's version + 1.
    pub fn tombstone(&self) -> Option<Tombstone> {
        if !self.managed_version {
            return None;
        }
        let version = self.before_version.as_ref().and_then(version_key)?;
        Some(Tombstone {
            version: version + 1,
            node: self.origin.clone(),
            before_dead_letter: false,
        })
    }

    /// The before-image for the audit: its columns (the key, when the source logged only the key)
    /// and, when tandem manages the version, the version it had.
    pub fn before_json(&self) -> Option<serde_json::Value> {
        let version = self
            .before_version
            .as_ref()
            .filter(|_| self.managed_version)
            .map(|v| Field {
                name: self.version_column.as_str().into(),
                value: v.clone(),
            });
        if self.before.is_empty() && version.is_none() {
            return None;
        }
        let columns = if self.before.is_empty() {
            &self.key
        } else {
            &self.before
        };
        Some(fields_json(columns.iter().chain(version.as_ref())))
    }

    pub fn after_json(&self) -> Option<serde_json::Value> {
        (self.op != Op::Delete).then(|| {
            let mut fields = self.after.clone();
            fields.extend(self.stamp_fields(true));
            image_json(&RowImage::new(ImageKind::Partial, fields))
        })
    }
}

/// Why a value cannot be stored in a target column as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A spatial value whose SRID is not 0, for a column of plain bytes (WKB has no place for it).
    GeometrySrid,
    /// A time of day with a non-zero UTC offset (PostgreSQL `timetz`), for a time column without
    /// one (MySQL/MariaDB `TIME`).
    TimeOffset,
}

impl Refusal {
    /// The rule's name, the error code of its refusals.
    pub fn rule(self) -> &'static str {
        match self {
            Refusal::GeometrySrid => "geometry_srid",
            Refusal::TimeOffset => "time_offset",
        }
    }
}

/// `v` in the form a target column of `kind` takes. A spatial value in a plain bytes column (a
/// PostgreSQL `bytea`, a MySQL BLOB) is its OGC WKB, which has no SRID: one with SRID 0 is carried
/// as its WKB (and comes back to a spatial column with SRID 0, so unchanged); one with another SRID
/// is refused rather than stored without it.
pub fn target_form(v: Value, kind: ColKind) -> Result<Value, Refusal> {
    match (v, kind) {
        (Value::Geometry { srid: 0, wkb }, ColKind::Bytes) => Ok(Value::Bytes(wkb)),
        (Value::Geometry { .. }, ColKind::Bytes) => Err(Refusal::GeometrySrid),
        // A time column without an offset: the time of day at offset 0, none other.
        (
            Value::TimeTz {
                micros,
                offset_secs: 0,
            },
            ColKind::Time,
        ) => Ok(Value::Time(micros)),
        (Value::TimeTz { .. }, ColKind::Time) => Err(Refusal::TimeOffset),
        (v, _) => Ok(v),
    }
}

/// A value the target column cannot hold as it is: a definite error naming the column.
#[derive(Debug)]
pub struct RefusedValue(Box<Refused>);

#[derive(Debug)]
struct Refused {
    table: String,
    key: String,
    column: String,
    message: String,
    fix: String,
    /// The rule that refused it (the error's code).
    why: Refusal,
}

impl From<RefusedValue> for ApplyError {
    fn from(r: RefusedValue) -> ApplyError {
        let r = *r.0;
        ApplyError::Row {
            table: r.table,
            key: r.key,
            column: Some(r.column),
            message: r.message,
            code: DbCode::Refused(r.why.rule()),
            fix: r.fix,
            class: ErrorClass::Definite,
        }
    }
}

fn refused(
    plan: &TablePlan,
    info: &TableInfo,
    key: &[Field],
    column: &str,
    why: Refusal,
) -> RefusedValue {
    let ty = info.column(column).map_or("", |c| c.type_name.as_str());
    let (message, fix) = match why {
        Refusal::GeometrySrid => (
            format!(
                "a geometry with a non-zero SRID cannot be stored in {} column {column} ({ty}), which holds plain WKB without an SRID",
                info.table
            ),
            format!(
                "store the source's geometries with SRID 0 (on MariaDB: UPDATE … SET {column} = ST_GeomFromWKB(ST_AsBinary({column}), 0)), make the target column a PostGIS geometry, or exclude the column"
            ),
        ),
        Refusal::TimeOffset => (
            format!(
                "a time with a UTC offset other than 0 cannot be stored in {} column {column} ({ty}), which holds no offset",
                info.table
            ),
            "store the source's times at offset 0 (or as time without time zone), make the target column text, or exclude the column".to_string(),
        ),
    };
    RefusedValue(Box::new(Refused {
        table: plan.business.clone(),
        key: key_json(key),
        column: column.to_string(),
        message,
        fix,
        why,
    }))
}

/// A version value as an orderable number: integers as they are, times in microseconds.
pub fn version_key(v: &Value) -> Option<i128> {
    match v {
        Value::Int(i) => Some(i128::from(*i)),
        Value::UInt(u) => Some(i128::from(*u)),
        Value::Timestamp(t) | Value::TimestampTz(t) => Some(i128::from(*t)),
        Value::Decimal(d) => d.normalized().split('.').next()?.parse().ok(),
        Value::Text(t) => t.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn row(after: &[&str], version: Option<i64>, managed: bool, origin: bool) -> RowChange {
        let f = |n: &str| Field {
            name: n.into(),
            value: Value::Int(1),
        };
        RowChange {
            op: Op::Insert,
            key: vec![f("id")],
            before_version: None,
            after_version: version.map(Value::Int),
            origin: "a".into(),
            after: after.iter().map(|n| f(n)).collect(),
            before: Vec::new(),
            partial: false,
            commit_time: 0,
            version_column: "_v".into(),
            managed_version: managed,
            origin_column: origin.then(|| "_o".to_string()),
        }
    }

    /// An update logged without its old row (PostgreSQL `REPLICA IDENTITY DEFAULT`) has no
    /// before-image: its write sets every column but the key it is found by (a `GENERATED
    /// ALWAYS` key refused the same value, and the link halted), and its audit before-image is
    /// the key and the old version.
    #[test]
    fn an_update_without_a_before_image_sets_no_key_column() {
        let mut r = row(&["id", "a", "b"], Some(7), true, true);
        r.op = Op::Update;
        r.before_version = Some(Value::Int(5));
        let set: Vec<String> = r
            .changed_write()
            .set
            .iter()
            .map(|f| f.name.to_string())
            .collect();
        assert_eq!(set, ["a", "b", "_v", "_o"]);
        assert_eq!(
            r.before_json(),
            Some(serde_json::json!({"id": "1", "_v": "5"}))
        );
        // A changed key is set.
        r.key[0].value = Value::Int(9);
        assert!(r.changed_write().set.iter().any(|f| &*f.name == "id"));
    }

    /// The cheap comparison says what comparing the two writes' columns says.
    #[test]
    fn writes_columns_of_agrees_with_the_writes() {
        let rows = [
            row(&["id", "a"], Some(1), true, true),
            row(&["id", "a"], Some(2), true, true),
            row(&["id", "a"], None, true, true),
            row(&["id", "b"], Some(1), true, true),
            row(&["id"], Some(1), true, true),
            row(&["id", "a"], Some(1), false, true),
            row(&["id", "a"], Some(1), true, false),
        ];
        let names = |r: &RowChange| -> Vec<Arc<str>> {
            r.full_write().set.into_iter().map(|f| f.name).collect()
        };
        for x in &rows {
            assert_eq!(x.full_write_len(), names(x).len());
            let (copied, moved) = (x.full_write(), x.clone().into_full_write());
            assert_eq!(format!("{copied:?}"), format!("{moved:?}"), "{x:?}");
            for y in &rows {
                assert_eq!(
                    x.writes_columns_of(y),
                    names(x) == names(y),
                    "{x:?} / {y:?}"
                );
            }
        }
    }

    #[test]
    fn geometry_in_a_bytes_column_is_its_wkb_or_refused() {
        let g = |srid| Value::Geometry {
            srid,
            wkb: vec![1, 1, 0, 0, 0],
        };
        assert_eq!(
            target_form(g(0), ColKind::Bytes),
            Ok(Value::Bytes(vec![1, 1, 0, 0, 0]))
        );
        assert_eq!(
            target_form(g(4326), ColKind::Bytes),
            Err(Refusal::GeometrySrid)
        );
        assert_eq!(target_form(g(4326), ColKind::Geometry), Ok(g(4326)));
        assert_eq!(
            Value::geometry_from_server(&Value::geometry_server_bytes(3857, &[1, 2])),
            Value::Geometry {
                srid: 3857,
                wkb: vec![1, 2]
            }
        );
        assert_eq!(
            Value::geometry_from_server(&[1, 2]),
            Value::Bytes(vec![1, 2])
        );
    }
}
