//! The row statements, written once over the dialect: the insert, the existence probe, and the
//! version-checked update and delete of one row. Each engine's `sql::Builder` implements
//! [`RowStatements`] by saying how it binds a value (PostgreSQL: a text parameter cast to the
//! column's type; MySQL/MariaDB: a typed `?`) and how it finishes a statement; what differs in the
//! statements' text is asked of the [`Dialect`].
//!
//! ```text
//!  insert  INSERT INTO s.t (c…) [OVERRIDING SYSTEM VALUE] VALUES (p…) [ON CONFLICT DO NOTHING]
//!  exists  SELECT 1 FROM s.t t WHERE t.k = p AND …
//!  update  UPDATE s.t t SET c = p, … WHERE t.k = p AND … [AND same(t.version, p)]
//!  delete  <delete from s.t t> WHERE t.k = p AND … [AND same(t.version, p)]
//! ```
//!
//! The batch forms (PostgreSQL over arrays, MySQL/MariaDB find-then-write) and the locking read of
//! the current row differ in kind between the engines and stay in their `sql.rs`.

use super::dialect::Dialect;
use super::target::{TableInfo, Write};
use crate::model::{Field, Value};

/// What an insert does when the key is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Taken {
    /// Inserts nothing and says so by its row count (PostgreSQL `ON CONFLICT DO NOTHING`). Where
    /// the dialect has no such form, the statement fails with the server's duplicate-key error.
    Skip,
    /// Fails with the server's error, which names the constraint.
    Fail,
}

/// The row statements of one table, built by an engine's binder.
pub(crate) trait RowStatements: Sized {
    /// A finished statement with its parameters.
    type Sql;

    fn dialect(&self) -> Dialect;

    fn table(&self) -> &TableInfo;

    /// Binds `v` as the next parameter, a value of column `column`, and returns the expression that
    /// reads it.
    fn bind(&mut self, column: &str, v: &Value) -> String;

    fn finish(self, text: String) -> Self::Sql;

    /// The schema-qualified, quoted name of the table.
    fn qualified(&self) -> String {
        let d = self.dialect();
        let t = &self.table().table;
        format!("{}.{}", d.ident(&t.schema), d.ident(&t.name))
    }

    /// `t.k = p AND …` for the key's columns.
    fn key_where(&mut self, key: &[Field]) -> String {
        let d = self.dialect();
        key.iter()
            .map(|f| {
                let p = self.bind(&f.name, &f.value);
                format!("t.{} = {p}", d.ident(&f.name))
            })
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    /// ` AND <the version is check>`, NULL equal to NULL; nothing without a check.
    fn version_check(&mut self, version: &str, check: Option<&Value>) -> String {
        let Some(v) = check else {
            return String::new();
        };
        let p = self.bind(version, v);
        let col = format!("t.{}", self.dialect().ident(version));
        format!(" AND {}", self.dialect().same(&col, &p))
    }

    /// One row with every column of `w.set`. A `GENERATED ALWAYS AS IDENTITY` column written
    /// (PostgreSQL) takes the given value (`OVERRIDING SYSTEM VALUE`): the source's value is the
    /// row's identity.
    fn insert(mut self, w: &Write, taken: Taken) -> Self::Sql {
        let d = self.dialect();
        let cols: Vec<String> = w.set.iter().map(|f| d.ident(&f.name)).collect();
        let vals: Vec<String> = w.set.iter().map(|f| self.bind(&f.name, &f.value)).collect();
        let text = format!(
            "INSERT INTO {} ({}) {}VALUES ({}){}",
            self.qualified(),
            cols.join(", "),
            overriding(self.table(), &w.set),
            vals.join(", "),
            match taken {
                Taken::Skip => d.on_conflict_nothing(),
                Taken::Fail => "",
            }
        );
        self.finish(text)
    }

    /// One row if the key exists.
    fn exists(mut self, key: &[Field]) -> Self::Sql {
        let cond = self.key_where(key);
        let text = format!("SELECT 1 FROM {} t WHERE {cond}", self.qualified());
        self.finish(text)
    }

    /// Sets `w.set` on the row of `w.key` if its version is `check` (any version without one).
    fn update(mut self, w: &Write, version: &str, check: Option<&Value>) -> Self::Sql {
        let d = self.dialect();
        let sets: Vec<String> = w
            .set
            .iter()
            .map(|f| format!("{} = {}", d.ident(&f.name), self.bind(&f.name, &f.value)))
            .collect();
        let cond = self.key_where(&w.key);
        let vcheck = self.version_check(version, check);
        let text = format!(
            "UPDATE {} t SET {} WHERE {cond}{vcheck}",
            self.qualified(),
            sets.join(", ")
        );
        self.finish(text)
    }

    /// Deletes the row of `key` if its version is `check` (any version without one).
    fn delete(mut self, key: &[Field], version: &str, check: Option<&Value>) -> Self::Sql {
        let cond = self.key_where(key);
        let vcheck = self.version_check(version, check);
        let text = format!(
            "{} WHERE {cond}{vcheck}",
            self.dialect().delete_from(&self.qualified())
        );
        self.finish(text)
    }
}

/// `OVERRIDING SYSTEM VALUE ` when an insert writes a `GENERATED ALWAYS AS IDENTITY` column
/// (PostgreSQL), which refuses a given value otherwise (SQLSTATE 428C9).
pub(crate) fn overriding(t: &TableInfo, set: &[Field]) -> &'static str {
    let always = set
        .iter()
        .any(|f| t.column(&f.name).is_some_and(|c| c.identity_always));
    if always {
        "OVERRIDING SYSTEM VALUE "
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::target::{ColKind, ColumnInfo};
    use crate::model::TableRef;

    /// Binds every value as `#n`, to show where each goes.
    struct Numbered {
        dialect: Dialect,
        info: TableInfo,
        bound: Vec<Value>,
    }

    impl RowStatements for Numbered {
        type Sql = (String, Vec<Value>);

        fn dialect(&self) -> Dialect {
            self.dialect
        }

        fn table(&self) -> &TableInfo {
            &self.info
        }

        fn bind(&mut self, _column: &str, v: &Value) -> String {
            self.bound.push(v.clone());
            format!("#{}", self.bound.len())
        }

        fn finish(self, text: String) -> (String, Vec<Value>) {
            (text, self.bound)
        }
    }

    fn numbered(dialect: Dialect) -> Numbered {
        let col = |name: &str, identity_always: bool| ColumnInfo {
            name: name.into(),
            type_name: "bigint".into(),
            base_type: "bigint".into(),
            kind: ColKind::Int,
            identity_always,
            array_delim: ',',
        };
        Numbered {
            dialect,
            info: TableInfo {
                table: TableRef::new("s", "t"),
                columns: vec![col("id", true), col("v", false)],
            },
            bound: Vec::new(),
        }
    }

    fn field(name: &str, v: i64) -> Field {
        Field {
            name: name.into(),
            value: Value::Int(v),
        }
    }

    #[test]
    fn deletes_check_the_version_null_safe_in_each_dialect() {
        let key = [field("id", 7)];
        let (pg, bound) = numbered(Dialect::Postgres).delete(&key, "v", Some(&Value::Null));
        assert_eq!(
            pg,
            "DELETE FROM \"s\".\"t\" AS t WHERE t.\"id\" = #1 AND t.\"v\"::text IS NOT DISTINCT FROM (#2)::text"
        );
        assert_eq!(bound.len(), 2);
        let (my, _) = numbered(Dialect::Mysql).delete(&key, "v", None);
        assert_eq!(my, "DELETE t FROM `s`.`t` t WHERE t.`id` = #1");
    }

    #[test]
    fn inserts_override_identity_and_skip_a_taken_key_where_the_dialect_can() {
        let w = Write {
            key: vec![field("id", 7)],
            set: vec![field("id", 7), field("v", 1)],
        };
        let (pg, _) = numbered(Dialect::Postgres).insert(&w, Taken::Skip);
        assert_eq!(
            pg,
            "INSERT INTO \"s\".\"t\" (\"id\", \"v\") OVERRIDING SYSTEM VALUE VALUES (#1, #2) ON CONFLICT DO NOTHING"
        );
        let (strict, _) = numbered(Dialect::Postgres).insert(&w, Taken::Fail);
        assert!(!strict.contains("ON CONFLICT"), "{strict}");
        let (my, _) = numbered(Dialect::Mysql).insert(&w, Taken::Skip);
        assert!(my.ends_with("VALUES (#1, #2)"), "{my}");
    }
}
