//! PostgreSQL statement text for the row operations. Every parameter is sent as text and cast to the
//! column's base type, so one code path handles every type and the server's own input rules apply.

use crate::apply::target::{Checked, ColKind, ColumnInfo, Probe, TableInfo, Write};
use crate::model::{Field, TableRef, Value};

use super::types::{cast_type, to_text};

pub use crate::connect::quote::postgres::{ident, literal};

pub fn qname(t: &TableRef) -> String {
    format!("{}.{}", ident(&t.schema), ident(&t.name))
}

/// A statement and its text parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sql {
    pub text: String,
    pub params: Vec<Option<String>>,
}

/// Builds statements for one table.
pub struct Builder<'a> {
    pub info: &'a TableInfo,
    pub source_offset_secs: i32,
    params: Vec<Option<String>>,
}

impl<'a> Builder<'a> {
    pub fn new(info: &'a TableInfo, source_offset_secs: i32) -> Self {
        Builder {
            info,
            source_offset_secs,
            params: Vec::new(),
        }
    }

    fn column(&self, name: &str) -> ColumnInfo {
        self.info.column(name).cloned().unwrap_or(ColumnInfo {
            name: name.to_string(),
            type_name: "text".into(),
            base_type: "text".into(),
            kind: ColKind::Text,
            identity_always: false,
            array_delim: ',',
        })
    }

    /// `$n::text::<base type>` for a value of column `name`.
    fn bind(&mut self, name: &str, v: &Value) -> String {
        let col = self.column(name);
        let text = match v {
            // A JSON array (a MySQL JSON column) into an array column: as an array literal.
            Value::Json(j) if col.base_type.ends_with("[]") => super::types::json_array_text(j),
            Value::Array(items) => Some(super::types::array_text(items, col.array_delim)),
            _ => None,
        };
        self.params
            .push(text.or_else(|| to_text(v, col.kind, self.source_offset_secs)));
        format!(
            "${}::text::{}",
            self.params.len(),
            cast_type(&col.base_type)
        )
    }

    /// `OVERRIDING SYSTEM VALUE ` when the insert writes a `GENERATED ALWAYS AS IDENTITY` column, which
    /// refuses a given value otherwise (SQLSTATE 428C9); the source's value is the row's identity.
    fn overriding(&self, set: &[Field]) -> &'static str {
        let always = set
            .iter()
            .any(|f| self.info.column(&f.name).is_some_and(|c| c.identity_always));
        if always {
            "OVERRIDING SYSTEM VALUE "
        } else {
            ""
        }
    }

    fn key_where(&mut self, key: &[Field]) -> String {
        key.iter()
            .map(|f| {
                let p = self.bind(&f.name, &f.value);
                format!("t.{} = {p}", ident(&f.name))
            })
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    fn version_check(&mut self, version: &str, check: Option<&Value>) -> String {
        match check {
            None => String::new(),
            Some(Value::Null) => format!(" AND t.{} IS NULL", ident(version)),
            Some(v) => {
                let p = self.bind(version, v);
                format!(" AND t.{}::text = ({p})::text", ident(version))
            }
        }
    }

    fn finish(self, text: String) -> Sql {
        Sql {
            text,
            params: self.params,
        }
    }

    pub fn insert(mut self, w: &Write) -> Sql {
        let cols: Vec<String> = w.set.iter().map(|f| ident(&f.name)).collect();
        let vals: Vec<String> = w.set.iter().map(|f| self.bind(&f.name, &f.value)).collect();
        let text = format!(
            "INSERT INTO {} ({}) {}VALUES ({}) ON CONFLICT DO NOTHING",
            qname(&self.info.table),
            cols.join(", "),
            self.overriding(&w.set),
            vals.join(", ")
        );
        self.finish(text)
    }

    /// One multi-row insert (every row with the same columns).
    pub fn insert_many(mut self, rows: &[Write]) -> Sql {
        let cols: Vec<String> = rows
            .first()
            .map(|w| w.set.iter().map(|f| ident(&f.name)).collect())
            .unwrap_or_default();
        let values: Vec<String> = rows
            .iter()
            .map(|w| {
                let vals: Vec<String> =
                    w.set.iter().map(|f| self.bind(&f.name, &f.value)).collect();
                format!("({})", vals.join(", "))
            })
            .collect();
        let overriding = rows.first().map_or("", |w| self.overriding(&w.set));
        let text = format!(
            "INSERT INTO {} ({}) {overriding}VALUES {}",
            qname(&self.info.table),
            cols.join(", "),
            values.join(", ")
        );
        self.finish(text)
    }

    /// The indexes (into `keys`) of the keys the table has, locking those rows.
    pub fn existing(mut self, keys: &[Vec<Field>]) -> Sql {
        let names: Vec<String> = keys
            .first()
            .map(|k| k.iter().map(|f| ident(&f.name)).collect())
            .unwrap_or_default();
        let rows: Vec<String> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let vals: Vec<String> = k.iter().map(|f| self.bind(&f.name, &f.value)).collect();
                format!("({i}, {})", vals.join(", "))
            })
            .collect();
        let on: Vec<String> = names.iter().map(|n| format!("t.{n} = v.{n}")).collect();
        let text = format!(
            "SELECT v.i::text FROM (VALUES {}) AS v(i, {}) JOIN {} t ON {} FOR UPDATE OF t",
            rows.join(", "),
            names.join(", "),
            qname(&self.info.table),
            on.join(" AND ")
        );
        self.finish(text)
    }

    /// The same insert without `ON CONFLICT`, to surface the real error of a conflicting insert on a
    /// constraint other than the key.
    pub fn insert_strict(self, w: &Write) -> Sql {
        let mut sql = self.insert(w);
        sql.text = sql.text.replace(" ON CONFLICT DO NOTHING", "");
        sql
    }

    pub fn exists(mut self, key: &[Field]) -> Sql {
        let cond = self.key_where(key);
        let text = format!("SELECT 1 FROM {} t WHERE {cond}", qname(&self.info.table));
        self.finish(text)
    }

    pub fn update(mut self, w: &Write, version: &str, check: Option<&Value>) -> Sql {
        let sets: Vec<String> = w
            .set
            .iter()
            .map(|f| format!("{} = {}", ident(&f.name), self.bind(&f.name, &f.value)))
            .collect();
        let cond = self.key_where(&w.key);
        let vcheck = self.version_check(version, check);
        let text = format!(
            "UPDATE {} AS t SET {} WHERE {cond}{vcheck}",
            qname(&self.info.table),
            sets.join(", ")
        );
        self.finish(text)
    }

    pub fn delete(mut self, key: &[Field], version: &str, check: Option<&Value>) -> Sql {
        let cond = self.key_where(key);
        let vcheck = self.version_check(version, check);
        let text = format!(
            "DELETE FROM {} AS t WHERE {cond}{vcheck}",
            qname(&self.info.table)
        );
        self.finish(text)
    }

    /// `(VALUES (0, key…, before version, value…), …) AS v(i, k0…, b, s0…)` for a checked batch, and
    /// the condition that joins it to `t`: the key, and the version check as [`Builder::update`]
    /// writes it (`IS NOT DISTINCT FROM` covers both the value and the NULL case).
    fn checked_values(&mut self, rows: &[Checked], version: &str) -> (String, String) {
        let Some(first) = rows.first() else {
            return ("(VALUES (0)) AS v(i)".into(), "false".into());
        };
        let checked = first.check.is_some();
        let tuples: Vec<String> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let mut vals = vec![i.to_string()];
                for f in &r.write.key {
                    vals.push(self.bind(&f.name, &f.value));
                }
                if checked {
                    vals.push(self.bind(version, r.check.as_ref().unwrap_or(&Value::Null)));
                }
                for f in &r.write.set {
                    vals.push(self.bind(&f.name, &f.value));
                }
                format!("({})", vals.join(", "))
            })
            .collect();
        let mut names = vec!["i".to_string()];
        names.extend((0..first.write.key.len()).map(|j| format!("k{j}")));
        if checked {
            names.push("b".into());
        }
        names.extend((0..first.write.set.len()).map(|j| format!("s{j}")));
        let mut cond: Vec<String> = first
            .write
            .key
            .iter()
            .enumerate()
            .map(|(j, f)| format!("t.{} = v.k{j}", ident(&f.name)))
            .collect();
        if checked {
            cond.push(format!(
                "t.{}::text IS NOT DISTINCT FROM v.b::text",
                ident(version)
            ));
        }
        (
            format!("(VALUES {}) AS v({})", tuples.join(", "), names.join(", ")),
            cond.join(" AND "),
        )
    }

    /// Updates a checked batch (see `Target::update_many`); returns the indexes of the rows applied.
    pub fn update_many(mut self, rows: &[Checked], version: &str) -> Sql {
        let (values, cond) = self.checked_values(rows, version);
        let sets: Vec<String> = rows
            .first()
            .map(|r| {
                r.write
                    .set
                    .iter()
                    .enumerate()
                    .map(|(j, f)| format!("{} = v.s{j}", ident(&f.name)))
                    .collect()
            })
            .unwrap_or_default();
        let text = format!(
            "UPDATE {} AS t SET {} FROM {values} WHERE {cond} RETURNING v.i::text",
            qname(&self.info.table),
            sets.join(", ")
        );
        self.finish(text)
    }

    /// Deletes a checked batch (see `Target::delete_many`); returns the indexes of the rows deleted.
    pub fn delete_many(mut self, rows: &[Checked], version: &str) -> Sql {
        let (values, cond) = self.checked_values(rows, version);
        let text = format!(
            "DELETE FROM {} AS t USING {values} WHERE {cond} RETURNING v.i::text",
            qname(&self.info.table)
        );
        self.finish(text)
    }

    /// Reads and locks the current row: version key, origin, per-column equality with the incoming
    /// before and after values, and the row as JSON.
    pub fn current(mut self, probe: &Probe) -> Sql {
        let version_key = match self.info.column(&probe.version).map(|c| c.kind) {
            Some(ColKind::Int) => format!("t.{}::text", ident(&probe.version)),
            Some(ColKind::Numeric) => format!("trunc(t.{})::text", ident(&probe.version)),
            Some(ColKind::Timestamp | ColKind::TimestampTz) => format!(
                "(extract(epoch from t.{}) * 1000000)::bigint::text",
                ident(&probe.version)
            ),
            _ => "NULL::text".into(),
        };
        let origin = match &probe.origin {
            Some(o) => format!("t.{}::text", ident(o)),
            None => "NULL::text".into(),
        };
        let mut same = Vec::new();
        for f in probe.before.iter().chain(&probe.after) {
            let p = self.bind(&f.name, &f.value);
            same.push(format!(
                "(t.{}::text IS NOT DISTINCT FROM ({p})::text)",
                ident(&f.name)
            ));
        }
        let cond = self.key_where(&probe.key);
        let text = format!(
            "SELECT {version_key}, {origin}, ARRAY[{}]::boolean[], to_jsonb(t)::text FROM {} t WHERE {cond} FOR UPDATE",
            same.join(", "),
            qname(&self.info.table)
        );
        self.finish(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::postgres::types::kind_of;

    fn info() -> TableInfo {
        let col = |n: &str, t: &str, b: &str| ColumnInfo {
            name: n.into(),
            type_name: t.into(),
            base_type: b.into(),
            kind: kind_of(b),
            identity_always: n == "id",
            array_delim: ',',
        };
        TableInfo {
            table: TableRef::new("public", "customers"),
            columns: vec![
                col("id", "integer", "integer"),
                col("name", "character varying(5)", "character varying"),
                col("_tandem_version", "bigint", "bigint"),
            ],
        }
    }

    fn f(n: &str, v: Value) -> Field {
        Field {
            name: n.into(),
            value: v,
        }
    }

    #[test]
    fn update_checks_key_and_version() {
        let info = info();
        let w = Write {
            key: vec![f("id", Value::Int(7))],
            set: vec![f("name", Value::Text("x".into()))],
        };
        let sql = Builder::new(&info, 0).update(&w, "_tandem_version", Some(&Value::Int(3)));
        assert_eq!(
            sql.text,
            "UPDATE \"public\".\"customers\" AS t SET \"name\" = $1::text::character varying \
             WHERE t.\"id\" = $2::text::integer AND t.\"_tandem_version\"::text = ($3::text::bigint)::text"
        );
        assert_eq!(
            sql.params,
            vec![Some("x".into()), Some("7".into()), Some("3".into())]
        );
    }

    #[test]
    fn inserts_into_an_identity_always_column_override_it() {
        let info = info();
        let w = Write {
            key: vec![f("id", Value::Int(7))],
            set: vec![f("id", Value::Int(7)), f("name", Value::Text("x".into()))],
        };
        let sql = Builder::new(&info, 0).insert_many(std::slice::from_ref(&w));
        assert_eq!(
            sql.text,
            "INSERT INTO \"public\".\"customers\" (\"id\", \"name\") OVERRIDING SYSTEM VALUE \
             VALUES ($1::text::integer, $2::text::character varying)"
        );
        let w = Write {
            key: w.key,
            set: vec![f("name", Value::Text("x".into()))],
        };
        let sql = Builder::new(&info, 0).insert(&w);
        assert!(sql.text.contains("(\"name\") VALUES"), "{}", sql.text);
    }

    #[test]
    fn update_many_joins_keys_and_versions_and_returns_the_rows_applied() {
        let info = info();
        let row = |id: i64, name: &str, before: Value| Checked {
            write: Write {
                key: vec![f("id", Value::Int(id))],
                set: vec![f("name", Value::Text(name.into()))],
            },
            check: Some(before),
        };
        let sql = Builder::new(&info, 0).update_many(
            &[row(1, "a", Value::Int(3)), row(2, "b", Value::Null)],
            "_tandem_version",
        );
        assert_eq!(
            sql.text,
            "UPDATE \"public\".\"customers\" AS t SET \"name\" = v.s0 FROM (VALUES \
             (0, $1::text::integer, $2::text::bigint, $3::text::character varying), \
             (1, $4::text::integer, $5::text::bigint, $6::text::character varying)) AS v(i, k0, b, s0) \
             WHERE t.\"id\" = v.k0 AND t.\"_tandem_version\"::text IS NOT DISTINCT FROM v.b::text \
             RETURNING v.i::text"
        );
        assert_eq!(
            sql.params,
            vec![
                Some("1".into()),
                Some("3".into()),
                Some("a".into()),
                Some("2".into()),
                None,
                Some("b".into())
            ]
        );
        let unchecked = Checked {
            write: Write {
                key: vec![f("id", Value::Int(1))],
                set: Vec::new(),
            },
            check: None,
        };
        let sql = Builder::new(&info, 0).delete_many(&[unchecked], "_tandem_version");
        assert_eq!(
            sql.text,
            "DELETE FROM \"public\".\"customers\" AS t USING (VALUES (0, $1::text::integer)) \
             AS v(i, k0) WHERE t.\"id\" = v.k0 RETURNING v.i::text"
        );
    }
}
