//! MySQL/MariaDB statement text for the row operations, with positional `?` parameters.

use mysql_async::Value as My;

use super::types::to_my;
use crate::apply::dialect::Dialect;
use crate::apply::statement::RowStatements;
use crate::apply::target::{Checked, ColKind, Probe, TableInfo, Write};
use crate::model::{Field, TableRef, Value};

pub use crate::connect::quote::mysql::{ident, literal};

pub fn qname(t: &TableRef) -> String {
    format!("{}.{}", ident(&t.schema), ident(&t.name))
}

/// A statement and its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Sql {
    pub text: String,
    pub params: Vec<My>,
}

/// How a statement that writes an ENUM's empty error value relaxes its own sql_mode: the server's
/// per-statement form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Relax {
    /// It does not: the value is refused (values from a source that cannot hold it, or a server
    /// without a per-statement form, MySQL before 8.0).
    #[default]
    No,
    /// MariaDB: `SET STATEMENT sql_mode = … FOR <statement>`.
    SetStatement,
    /// MySQL 8.0 and later: the optimizer hint `/*+ SET_VAR(sql_mode = …) */` after the verb.
    SetVarHint,
}

impl Relax {
    /// The form for a server that reports `version` (`SELECT VERSION()`).
    pub fn for_server(version: &str) -> Relax {
        if version.to_ascii_lowercase().contains("mariadb") {
            return Relax::SetStatement;
        }
        let major = version
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|m| m.parse::<u32>().ok());
        match major {
            Some(m) if m >= 8 => Relax::SetVarHint,
            _ => Relax::No,
        }
    }
}

pub struct Builder<'a> {
    info: &'a TableInfo,
    offset: i32,
    params: Vec<My>,
    relax: Relax,
    /// An ENUM column is given `''`, which a strict sql_mode refuses.
    empty_enum: bool,
}

/// The sql_mode of a statement that writes an ENUM's empty error value: the session's without
/// STRICT_ALL_TABLES, which is what refuses it.
const EMPTY_ENUM_MODE: &str =
    "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION,NO_BACKSLASH_ESCAPES";

impl<'a> Builder<'a> {
    pub fn new(info: &'a TableInfo, target_offset_secs: i32) -> Self {
        Builder {
            info,
            offset: target_offset_secs,
            params: Vec::new(),
            relax: Relax::No,
            empty_enum: false,
        }
    }

    /// Lets the statement write an ENUM's empty error value `''` (index 0), which a MySQL/MariaDB
    /// source holds when its sql_mode admitted an invalid label: such a statement runs, alone,
    /// under a non-strict sql_mode, in the server's form (see [`Relax`]). Only for values from
    /// such a source.
    pub fn admit_empty_enum(mut self, relax: Relax) -> Self {
        self.relax = relax;
        self
    }

    fn kind(&self, name: &str) -> ColKind {
        self.info.column(name).map_or(ColKind::Other, |c| c.kind)
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
        let text = format!(
            "INSERT INTO {} ({}) VALUES {}",
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
                let vals: Vec<String> = k
                    .iter()
                    .zip(&names)
                    .map(|(f, n)| {
                        self.bind(&f.name, &f.value);
                        format!("? AS {n}")
                    })
                    .collect();
                format!("SELECT {i} AS i, {}", vals.join(", "))
            })
            .collect();
        let on: Vec<String> = names.iter().map(|n| format!("t.{n} = v.{n}")).collect();
        let text = format!(
            "SELECT v.i FROM ({}) v JOIN {} t ON {} FOR UPDATE",
            rows.join(" UNION ALL "),
            qname(&self.info.table),
            on.join(" AND ")
        );
        self.finish(text)
    }

    /// `(SELECT 0 AS i, ? AS k0…, ? AS b, ? AS s0… UNION ALL SELECT 1, ?…) v` for a checked batch,
    /// and the condition that joins it to `t`: the key, and the version check as
    /// [`Builder::update`] writes it. Binary values are cast so that they pass the derived table
    /// as bytes, not as text in the connection's character set.
    fn checked_rows(&mut self, rows: &[Checked], version: &str) -> (String, String) {
        let Some(first) = rows.first() else {
            return ("(SELECT 0 AS i) v".into(), "FALSE".into());
        };
        let checked = first.check.is_some();
        let selects: Vec<String> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let named = i == 0;
                let alias = |name: String| {
                    if named {
                        format!(" AS {name}")
                    } else {
                        String::new()
                    }
                };
                let mut vals = vec![format!("{i}{}", alias("i".into()))];
                for (j, f) in r.write.key.iter().enumerate() {
                    vals.push(format!(
                        "{}{}",
                        self.slot(&f.name, &f.value),
                        alias(format!("k{j}"))
                    ));
                }
                if checked {
                    let v = r.check.as_ref().unwrap_or(&Value::Null);
                    vals.push(format!("{}{}", self.slot(version, v), alias("b".into())));
                }
                for (j, f) in r.write.set.iter().enumerate() {
                    vals.push(format!(
                        "{}{}",
                        self.slot(&f.name, &f.value),
                        alias(format!("s{j}"))
                    ));
                }
                format!("SELECT {}", vals.join(", "))
            })
            .collect();
        let mut cond: Vec<String> = first
            .write
            .key
            .iter()
            .enumerate()
            .map(|(j, f)| format!("t.{} = v.k{j}", ident(&f.name)))
            .collect();
        if checked {
            cond.push(format!("t.{} <=> v.b", ident(version)));
        }
        (
            format!("({}) v", selects.join(" UNION ALL ")),
            cond.join(" AND "),
        )
    }

    /// A parameter for a derived-table column.
    fn slot(&mut self, name: &str, v: &Value) -> &'static str {
        let binary = self.kind(name) == ColKind::Bytes;
        self.bind(name, v);
        if binary {
            "CAST(? AS BINARY)"
        } else {
            "?"
        }
    }

    /// The indexes of a checked batch's rows whose row exists with the version checked, locking
    /// those rows.
    pub fn checked_locked(mut self, rows: &[Checked], version: &str) -> Sql {
        let (derived, cond) = self.checked_rows(rows, version);
        let text = format!(
            "SELECT v.i FROM {derived} JOIN {} t ON {cond} FOR UPDATE",
            qname(&self.info.table)
        );
        self.finish(text)
    }

    /// Updates a checked batch (see `Target::update_many`); affects the rows `checked_locked` found.
    pub fn update_many(mut self, rows: &[Checked], version: &str) -> Sql {
        let (derived, cond) = self.checked_rows(rows, version);
        let sets: Vec<String> = rows
            .first()
            .map(|r| {
                r.write
                    .set
                    .iter()
                    .enumerate()
                    .map(|(j, f)| format!("t.{} = v.s{j}", ident(&f.name)))
                    .collect()
            })
            .unwrap_or_default();
        let text = format!(
            "UPDATE {} t JOIN {derived} ON {cond} SET {}",
            qname(&self.info.table),
            sets.join(", ")
        );
        self.finish(text)
    }

    /// Deletes a checked batch (see `Target::delete_many`); affects the rows `checked_locked` found.
    pub fn delete_many(mut self, rows: &[Checked], version: &str) -> Sql {
        let (derived, cond) = self.checked_rows(rows, version);
        let text = format!(
            "DELETE t FROM {} t JOIN {derived} ON {cond}",
            qname(&self.info.table)
        );
        self.finish(text)
    }

    /// Columns: version key, origin, row JSON, then one 0/1 per compared value.
    pub fn current(mut self, probe: &Probe) -> Sql {
        let v = format!("t.{}", ident(&probe.version));
        let version_key = match self.info.column(&probe.version).map(|c| c.kind) {
            Some(ColKind::Int) => format!("CAST({v} AS CHAR)"),
            Some(ColKind::Numeric) => format!("CAST(TRUNCATE({v}, 0) AS CHAR)"),
            Some(ColKind::Timestamp | ColKind::TimestampTz) => {
                format!("CAST(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', {v}) AS CHAR)")
            }
            _ => "NULL".into(),
        };
        let origin = match &probe.origin {
            Some(o) => format!("CAST(t.{} AS CHAR)", ident(o)),
            None => "NULL".into(),
        };
        let json = self
            .info
            .columns
            .iter()
            .map(|c| format!("{}, t.{}", literal(&c.name), ident(&c.name)))
            .collect::<Vec<_>>()
            .join(", ");
        let mut same = Vec::new();
        for f in probe.before.iter().chain(&probe.after) {
            self.bind(&f.name, &f.value);
            let col = format!("t.{}", ident(&f.name));
            same.push(match self.kind(&f.name) {
                ColKind::Text | ColKind::Json => {
                    format!("(CAST({col} AS BINARY) <=> CAST(? AS BINARY))")
                }
                _ => format!("({col} <=> ?)"),
            });
        }
        let cond = self.key_where(&probe.key);
        let same = if same.is_empty() {
            String::new()
        } else {
            format!(", {}", same.join(", "))
        };
        let text = format!(
            "SELECT {version_key}, {origin}, CAST(JSON_OBJECT({json}) AS CHAR){same} FROM {} t WHERE {cond} FOR UPDATE",
            qname(&self.info.table)
        );
        self.finish(text)
    }
}

impl RowStatements for Builder<'_> {
    type Sql = Sql;

    fn dialect(&self) -> Dialect {
        Dialect::Mysql
    }

    fn table(&self) -> &TableInfo {
        self.info
    }

    fn bind(&mut self, name: &str, v: &Value) -> String {
        let kind = self.kind(name);
        if self.relax != Relax::No
            && matches!(v, Value::Enum(e) | Value::Text(e) if e.is_empty())
            && self
                .info
                .column(name)
                .is_some_and(|c| c.base_type == "enum")
        {
            self.empty_enum = true;
        }
        self.params.push(to_my(v, kind, self.offset));
        "?".into()
    }

    fn finish(self, text: String) -> Sql {
        let text = match (self.empty_enum, self.relax) {
            (true, Relax::SetStatement) => {
                format!("SET STATEMENT sql_mode = '{EMPTY_ENUM_MODE}' FOR {text}")
            }
            (true, Relax::SetVarHint) => match text.split_once(' ') {
                Some((verb, rest)) => {
                    format!("{verb} /*+ SET_VAR(sql_mode = '{EMPTY_ENUM_MODE}') */ {rest}")
                }
                None => text,
            },
            _ => text,
        };
        Sql {
            text,
            params: self.params,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::statement::Taken;
    use crate::apply::target::ColumnInfo;

    #[test]
    fn an_empty_enum_value_relaxes_only_its_own_statement_when_admitted() {
        let col = |n: &str, data: &str| ColumnInfo {
            name: n.into(),
            type_name: data.into(),
            base_type: data.into(),
            kind: super::super::types::kind_of(data, data),
            identity_always: false,
            array_delim: ',',
        };
        let info = TableInfo {
            table: TableRef::new("app", "t"),
            columns: vec![col("id", "int"), col("k", "enum"), col("v", "varchar")],
        };
        let write = |k: &str| Write {
            key: vec![Field {
                name: "id".into(),
                value: Value::Int(1),
            }],
            set: vec![
                Field {
                    name: "id".into(),
                    value: Value::Int(1),
                },
                Field {
                    name: "k".into(),
                    value: Value::Enum(k.into()),
                },
            ],
        };
        let relaxed = Builder::new(&info, 0)
            .admit_empty_enum(Relax::SetStatement)
            .insert(&write(""), Taken::Fail);
        assert_eq!(
            relaxed.text,
            "SET STATEMENT sql_mode = 'ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION,NO_BACKSLASH_ESCAPES' FOR \
             INSERT INTO `app`.`t` (`id`, `k`) VALUES (?, ?)"
        );
        let label = Builder::new(&info, 0)
            .admit_empty_enum(Relax::SetStatement)
            .insert(&write("a"), Taken::Fail);
        assert!(label.text.starts_with("INSERT"), "{}", label.text);
        let strict = Builder::new(&info, 0).insert(&write(""), Taken::Fail);
        assert!(strict.text.starts_with("INSERT"), "{}", strict.text);
        // MySQL 8 has no SET STATEMENT: the optimizer hint after the verb, for this statement only.
        let hinted = Builder::new(&info, 0)
            .admit_empty_enum(Relax::SetVarHint)
            .update(&write(""), "v", None);
        assert_eq!(
            hinted.text,
            "UPDATE /*+ SET_VAR(sql_mode = 'ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION,NO_BACKSLASH_ESCAPES') */ \
             `app`.`t` t SET `id` = ?, `k` = ? WHERE t.`id` = ?"
        );
    }

    #[test]
    fn the_per_statement_form_follows_the_server() {
        assert_eq!(
            Relax::for_server("10.11.6-MariaDB-0+deb12u1-log"),
            Relax::SetStatement
        );
        assert_eq!(Relax::for_server("8.0.36"), Relax::SetVarHint);
        assert_eq!(Relax::for_server("8.4.0-commercial"), Relax::SetVarHint);
        assert_eq!(Relax::for_server("5.7.44-log"), Relax::No);
        assert_eq!(Relax::for_server(""), Relax::No);
    }
}
