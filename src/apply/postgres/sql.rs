//! PostgreSQL statement text for the row operations. Every parameter is sent as text and cast to the
//! column's base type, so one code path handles every type and the server's own input rules apply.

use crate::apply::dialect::Dialect;
use crate::apply::statement::{overriding, RowStatements};
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

/// A statement over arrays: one `text[]` parameter per column, whatever the number of rows, so
/// that its text depends only on the table and the columns written and stays small: the server
/// parses a few casts, where a `VALUES` list of one parameter per value made it parse and plan
/// thousands per batch. The rows are `unnest(…)` of the arrays, cast to each column's type as the
/// row statements cast a parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArraySql {
    pub text: String,
    pub columns: Vec<Vec<Option<String>>>,
    /// Whether the statement joins the rows to the table (a lookup by key whose plan depends on
    /// the table's size): then it is planned at each run, else prepared once.
    pub joins_table: bool,
}

/// Gathers the arrays of an [`ArraySql`].
struct ArrayBuilder<'a> {
    info: &'a TableInfo,
    source_offset_secs: i32,
    columns: Vec<Vec<Option<String>>>,
}

impl<'a> ArrayBuilder<'a> {
    fn new(info: &'a TableInfo, source_offset_secs: i32) -> Self {
        ArrayBuilder {
            info,
            source_offset_secs,
            columns: Vec::new(),
        }
    }

    /// Adds the array of the values of column `name` (one per row; `None`, a missing value, is
    /// NULL) and returns `v.a<n>::<base type>`, the value of one row.
    fn column<'v>(
        &mut self,
        name: &str,
        values: impl Iterator<Item = Option<&'v Value>>,
    ) -> String {
        let col = column_info(self.info, name);
        let texts = values
            .map(|v| v.and_then(|v| value_text(&col, v, self.source_offset_secs)))
            .collect();
        self.columns.push(texts);
        format!(
            "v.a{}::{}",
            self.columns.len() - 1,
            cast_type(&col.base_type)
        )
    }

    /// `unnest($1::text[], …) AS v(a0, …)`, with the row's 1-based index `i` when `ordinal`.
    fn from(&self, ordinal: bool) -> String {
        let params: Vec<String> = (1..=self.columns.len())
            .map(|n| format!("${n}::text[]"))
            .collect();
        let mut names: Vec<String> = (0..self.columns.len()).map(|n| format!("a{n}")).collect();
        if ordinal {
            names.push("i".into());
        }
        format!(
            "unnest({}){} AS v({})",
            params.join(", "),
            if ordinal { " WITH ORDINALITY" } else { "" },
            names.join(", ")
        )
    }

    fn finish(self, text: String, joins_table: bool) -> ArraySql {
        ArraySql {
            text,
            columns: self.columns,
            joins_table,
        }
    }
}

/// The arrays of the rows to insert (every row with the first row's columns): the first row's
/// fields, the column names and each column's value of one row (`v.a<n>::<type>`).
fn insert_arrays<'r>(
    a: &mut ArrayBuilder,
    rows: &'r [Write],
) -> (&'r [Field], Vec<String>, Vec<String>) {
    let first = rows.first().map(|w| w.set.as_slice()).unwrap_or_default();
    let cols = first.iter().map(|f| ident(&f.name)).collect();
    let vals = first
        .iter()
        .enumerate()
        .map(|(j, f)| a.column(&f.name, rows.iter().map(|w| w.set.get(j).map(|f| &f.value))))
        .collect();
    (first, cols, vals)
}

/// A column's type with its modifier as a cast target (`character(4)`, `numeric(12,2)`).
fn full_type(type_name: &str) -> String {
    match type_name {
        // Without a modifier these mean one character and one bit.
        "character" | "bit" => cast_type(type_name),
        t => t.to_string(),
    }
}

pub(super) fn column_info(info: &TableInfo, name: &str) -> ColumnInfo {
    info.column(name).cloned().unwrap_or(ColumnInfo {
        name: name.to_string(),
        type_name: "text".into(),
        base_type: "text".into(),
        kind: ColKind::Text,
        identity_always: false,
        array_delim: ',',
    })
}

/// The text PostgreSQL reads for `v` in column `col`.
pub(super) fn value_text(col: &ColumnInfo, v: &Value, source_offset_secs: i32) -> Option<String> {
    let literal = match v {
        // A JSON array (a MySQL JSON column) into an array column: as an array literal. Any other
        // JSON goes as its text, which the server refuses (naming no column: see `row_err`).
        Value::Json(j) if col.base_type.ends_with("[]") => super::types::json_array_text(j),
        Value::Array(items) => Some(super::types::array_text(items, col.array_delim)),
        _ => None,
    };
    literal.or_else(|| to_text(v, col.kind, source_offset_secs))
}

/// A `COPY … FROM STDIN` of rows, in COPY's text format: the statement (it depends only on the
/// table and the columns written, so it is prepared once) and the data, one line per row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySql {
    pub text: String,
    pub data: Vec<u8>,
}

/// Appends `text` as one field of COPY's text format: backslash, tab, newline and carriage return
/// escaped, the rest as it is (the server reads the field with the column's input function, the
/// same that a cast from text uses).
fn copy_field(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    if !bytes
        .iter()
        .any(|b| matches!(b, b'\\' | b'\t' | b'\n' | b'\r'))
    {
        out.extend_from_slice(bytes);
        return;
    }
    for &b in bytes {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b => out.push(b),
        }
    }
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

    /// Inserts the rows (every row with the same columns) whose key is free, over arrays (see
    /// [`ArraySql`]), and returns the indexes of the rows inserted: the keys the insert returns,
    /// joined to the rows' keys cast to the column's full type (with its modifier, as the stored
    /// key was). `None` when a key column is not among the columns written.
    pub fn insert_new(self, rows: &[Write]) -> Option<ArraySql> {
        let mut a = ArrayBuilder::new(self.info, self.source_offset_secs);
        let (first, cols, vals) = insert_arrays(&mut a, rows);
        let key = rows.first().map(|w| w.key.as_slice()).unwrap_or_default();
        let on = key
            .iter()
            .map(|k| {
                let j = first.iter().position(|f| f.name == k.name)?;
                let col = column_info(self.info, &k.name);
                Some(format!(
                    "ins.{n} = v.a{j}::{}",
                    full_type(&col.type_name),
                    n = ident(&k.name)
                ))
            })
            .collect::<Option<Vec<String>>>()
            .filter(|on| !on.is_empty())?;
        let returning: Vec<String> = key.iter().map(|k| ident(&k.name)).collect();
        let text = format!(
            "WITH v AS MATERIALIZED (SELECT * FROM {}), \
             ins AS (INSERT INTO {} ({}) {}SELECT {} FROM v ON CONFLICT DO NOTHING RETURNING {}) \
             SELECT (v.i - 1)::text FROM v JOIN ins ON {}",
            a.from(true),
            qname(&self.info.table),
            cols.join(", "),
            overriding(self.info, first),
            vals.join(", "),
            returning.join(", "),
            on.join(" AND ")
        );
        Some(a.finish(text, false))
    }

    /// The indexes (into `keys`) of the keys the table has, locking those rows.
    pub fn existing(self, keys: &[Vec<Field>]) -> ArraySql {
        let mut a = ArrayBuilder::new(self.info, self.source_offset_secs);
        let first = keys.first().map(Vec::as_slice).unwrap_or_default();
        let on: Vec<String> = first
            .iter()
            .enumerate()
            .map(|(j, f)| {
                let v = a.column(&f.name, keys.iter().map(|k| k.get(j).map(|f| &f.value)));
                format!("t.{} = {v}", ident(&f.name))
            })
            .collect();
        let text = format!(
            "SELECT (v.i - 1)::text FROM {} JOIN {} t ON {} FOR UPDATE OF t",
            a.from(true),
            qname(&self.info.table),
            on.join(" AND ")
        );
        a.finish(text, true)
    }

    /// Inserts the rows (every row with the same columns) over arrays, without `ON CONFLICT` and
    /// without returning anything: every row goes in, or the statement fails (a key taken is
    /// `23505`). What [`Builder::insert_new`] does, at about half the server's cost per row: no
    /// speculative insertion (an extra index probe and WAL record per row) and no join back.
    pub fn insert_plain(self, rows: &[Write]) -> ArraySql {
        let mut a = ArrayBuilder::new(self.info, self.source_offset_secs);
        let (first, cols, vals) = insert_arrays(&mut a, rows);
        let text = format!(
            "INSERT INTO {} ({}) {}SELECT {} FROM {}",
            qname(&self.info.table),
            cols.join(", "),
            overriding(self.info, first),
            vals.join(", "),
            a.from(false),
        );
        a.finish(text, false)
    }

    /// The rows (every row with the first row's columns) as one `COPY` into the table: what
    /// [`Builder::insert_plain`] inserts, read by the server the way a bulk load is. An identity
    /// column `GENERATED ALWAYS` takes the values given, as `OVERRIDING SYSTEM VALUE` does.
    pub fn copy_plain(self, rows: &[Write]) -> CopySql {
        use std::io::Write as _;
        let first = rows.first().map(|w| w.set.as_slice()).unwrap_or_default();
        let cols: Vec<ColumnInfo> = first
            .iter()
            .map(|f| column_info(self.info, &f.name))
            .collect();
        let names: Vec<String> = first.iter().map(|f| ident(&f.name)).collect();
        let text = format!(
            "COPY {} ({}) FROM STDIN",
            qname(&self.info.table),
            names.join(", ")
        );
        let mut data = Vec::with_capacity(rows.len() * (16 + 8 * cols.len()));
        for w in rows {
            for (j, col) in cols.iter().enumerate() {
                if j > 0 {
                    data.push(b'\t');
                }
                // Text and integers as `value_text` writes them, without a string of their own.
                match w.set.get(j).map(|f| &f.value) {
                    Some(Value::Text(t)) => copy_field(&mut data, t),
                    Some(Value::Int(i)) => {
                        let _ = write!(data, "{i}");
                    }
                    Some(v) => match value_text(col, v, self.source_offset_secs) {
                        Some(t) => copy_field(&mut data, &t),
                        None => data.extend_from_slice(b"\\N"),
                    },
                    None => data.extend_from_slice(b"\\N"),
                }
            }
            data.push(b'\n');
        }
        CopySql { text, data }
    }

    /// The arrays of a checked batch (`k…`: key, `b`: before version, `s…`: values) and the
    /// condition that joins them to `t`: the key, and the version check as [`Builder::update`]
    /// writes it (`IS NOT DISTINCT FROM` covers both the value and the NULL case). Returns the
    /// condition and the `SET` list.
    fn checked_arrays(a: &mut ArrayBuilder, rows: &[Checked], version: &str) -> (String, String) {
        let Some(first) = rows.first() else {
            return ("false".into(), String::new());
        };
        let mut cond: Vec<String> = first
            .write
            .key
            .iter()
            .enumerate()
            .map(|(j, f)| {
                let v = a.column(
                    &f.name,
                    rows.iter().map(|r| r.write.key.get(j).map(|f| &f.value)),
                );
                format!("t.{} = {v}", ident(&f.name))
            })
            .collect();
        if first.check.is_some() {
            let b = a.column(
                version,
                rows.iter()
                    .map(|r| Some(r.check.as_ref().unwrap_or(&Value::Null))),
            );
            cond.push(format!(
                "t.{}::text IS NOT DISTINCT FROM ({b})::text",
                ident(version)
            ));
        }
        let sets: Vec<String> = first
            .write
            .set
            .iter()
            .enumerate()
            .map(|(j, f)| {
                let v = a.column(
                    &f.name,
                    rows.iter().map(|r| r.write.set.get(j).map(|f| &f.value)),
                );
                format!("{} = {v}", ident(&f.name))
            })
            .collect();
        (cond.join(" AND "), sets.join(", "))
    }

    /// Updates a checked batch (see `Target::update_many`); returns the indexes of the rows applied.
    pub fn update_many(self, rows: &[Checked], version: &str) -> ArraySql {
        let mut a = ArrayBuilder::new(self.info, self.source_offset_secs);
        let (cond, sets) = Self::checked_arrays(&mut a, rows, version);
        let text = format!(
            "UPDATE {} AS t SET {sets} FROM {} WHERE {cond} RETURNING (v.i - 1)::text",
            qname(&self.info.table),
            a.from(true)
        );
        a.finish(text, true)
    }

    /// Deletes a checked batch (see `Target::delete_many`); returns the indexes of the rows deleted.
    pub fn delete_many(self, rows: &[Checked], version: &str) -> ArraySql {
        let mut a = ArrayBuilder::new(self.info, self.source_offset_secs);
        let (cond, _) = Self::checked_arrays(&mut a, rows, version);
        let text = format!(
            "DELETE FROM {} AS t USING {} WHERE {cond} RETURNING (v.i - 1)::text",
            qname(&self.info.table),
            a.from(true)
        );
        a.finish(text, true)
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

impl RowStatements for Builder<'_> {
    type Sql = Sql;

    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn table(&self) -> &TableInfo {
        self.info
    }

    /// `$n::text::<base type>` for a value of column `column`.
    fn bind(&mut self, column: &str, v: &Value) -> String {
        let col = column_info(self.info, column);
        self.params
            .push(value_text(&col, v, self.source_offset_secs));
        format!(
            "${}::text::{}",
            self.params.len(),
            cast_type(&col.base_type)
        )
    }

    fn finish(self, text: String) -> Sql {
        Sql {
            text,
            params: self.params,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::postgres::types::kind_of;
    use crate::apply::statement::Taken;

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
            "UPDATE \"public\".\"customers\" t SET \"name\" = $1::text::character varying \
             WHERE t.\"id\" = $2::text::integer \
             AND t.\"_tandem_version\"::text IS NOT DISTINCT FROM ($3::text::bigint)::text"
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
        let sql = Builder::new(&info, 0)
            .insert_new(std::slice::from_ref(&w))
            .expect("the key is written");
        assert_eq!(
            sql.text,
            "WITH v AS MATERIALIZED (SELECT * FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS v(a0, a1, i)), \
             ins AS (INSERT INTO \"public\".\"customers\" (\"id\", \"name\") OVERRIDING SYSTEM VALUE \
             SELECT v.a0::integer, v.a1::character varying FROM v ON CONFLICT DO NOTHING RETURNING \"id\") \
             SELECT (v.i - 1)::text FROM v JOIN ins ON ins.\"id\" = v.a0::integer"
        );
        assert_eq!(
            sql.columns,
            vec![vec![Some("7".to_string())], vec![Some("x".to_string())]]
        );
        let plain = Builder::new(&info, 0).insert_plain(std::slice::from_ref(&w));
        assert_eq!(
            plain.text,
            "INSERT INTO \"public\".\"customers\" (\"id\", \"name\") OVERRIDING SYSTEM VALUE \
             SELECT v.a0::integer, v.a1::character varying FROM unnest($1::text[], $2::text[]) AS v(a0, a1)"
        );
        assert_eq!(plain.columns, sql.columns);
        assert!(!plain.joins_table, "prepared once");
        let keyless = Write {
            key: w.key.clone(),
            set: vec![f("name", Value::Text("x".into()))],
        };
        assert_eq!(
            Builder::new(&info, 0).insert_new(&[keyless]),
            None,
            "a key column not written cannot be joined back"
        );
        let w = Write {
            key: w.key,
            set: vec![f("name", Value::Text("x".into()))],
        };
        let sql = Builder::new(&info, 0).insert(&w, Taken::Skip);
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
            "UPDATE \"public\".\"customers\" AS t SET \"name\" = v.a2::character varying FROM \
             unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS v(a0, a1, a2, i) \
             WHERE t.\"id\" = v.a0::integer AND t.\"_tandem_version\"::text IS NOT DISTINCT FROM (v.a1::bigint)::text \
             RETURNING (v.i - 1)::text"
        );
        let t = |v: &str| Some(v.to_string());
        assert_eq!(
            sql.columns,
            vec![
                vec![t("1"), t("2")],
                vec![t("3"), None],
                vec![t("a"), t("b")]
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
            "DELETE FROM \"public\".\"customers\" AS t USING unnest($1::text[]) WITH ORDINALITY \
             AS v(a0, i) WHERE t.\"id\" = v.a0::integer RETURNING (v.i - 1)::text"
        );
    }

    #[test]
    fn copy_writes_one_escaped_line_per_row_and_nulls_as_backslash_n() {
        let info = info();
        let row = |id: i64, name: Value| Write {
            key: vec![f("id", Value::Int(id))],
            set: vec![f("id", Value::Int(id)), f("name", name)],
        };
        let rows = [
            row(1, Value::Text("a\tb\nc\\d\re".into())),
            row(2, Value::Null),
            row(3, Value::Text("plain".into())),
        ];
        let sql = Builder::new(&info, 0).copy_plain(&rows);
        assert_eq!(
            sql.text,
            "COPY \"public\".\"customers\" (\"id\", \"name\") FROM STDIN"
        );
        assert_eq!(
            String::from_utf8(sql.data).expect("utf-8"),
            "1\ta\\tb\\nc\\\\d\\re\n2\t\\N\n3\tplain\n"
        );
    }
}
