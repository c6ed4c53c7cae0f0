//! What differs between the engines' SQL, and nothing else: identifier quoting, placeholders and
//! how a text parameter becomes a typed value, the upsert form, the clock, how a value is read back
//! as text, and how a list of keys is passed. Statements written once (the bookkeeping in `book.rs`)
//! are templates that [`Dialect::render`] turns into the engine's text.
//!
//! ```text
//!  template: "UPDATE __S__.t SET at = {now} WHERE id = ?::bigint AND k = ?"
//!  Postgres: "UPDATE \"tandem\".t SET at = now() WHERE id = $1::text::bigint AND k = $2::text"
//!  Mysql:    "UPDATE `tandem`.t SET at = NOW(6) WHERE id = ? AND k = ?"
//! ```
//!
//! Template tokens: `?` is the next parameter, sent as text (`?::type` reads it as `type` on
//! PostgreSQL; MySQL/MariaDB converts by context); `{now}` the transaction's time, `{clock}` the wall
//! clock; `{text:EXPR}` EXPR read back as text; `{micros:EXPR}` a timestamp column as microseconds
//! since the epoch, as text; `__S__` the bookkeeping schema. Templates hold no other `?`, `{` or `::`.
//! Parameters are bound in the order their `?` appear.

use crate::connect::quote;

/// The SQL dialect of a target engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Postgres,
    Mysql,
}

/// What an upsert does to a column of the existing row.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Set {
    /// Takes the incoming value.
    New,
    /// Takes the current time.
    Now,
    /// Keeps the larger of the existing and the incoming value.
    Greatest,
}

impl Dialect {
    /// A quoted identifier.
    pub(crate) fn ident(self, name: &str) -> String {
        match self {
            Dialect::Postgres => quote::postgres::ident(name),
            Dialect::Mysql => quote::mysql::ident(name),
        }
    }

    /// The engine's text of `template` (see the module doc), with `__S__` naming `schema`.
    pub(crate) fn render(self, template: &str, schema: &str) -> String {
        let mut out = String::with_capacity(template.len() + 64);
        let mut n = 0;
        let mut rest = template;
        while let Some(i) = rest.find(['?', '{']) {
            out.push_str(&rest[..i]);
            rest = &rest[i..];
            if let Some(after) = rest.strip_prefix('?') {
                n += 1;
                let (ty, tail) = match after.strip_prefix("::") {
                    Some(t) => {
                        let end = t
                            .find(|c: char| !(c.is_ascii_alphanumeric() || "_[]".contains(c)))
                            .unwrap_or(t.len());
                        (Some(&t[..end]), &t[end..])
                    }
                    None => (None, after),
                };
                match (self, ty) {
                    (Dialect::Postgres, None) => out.push_str(&format!("${n}::text")),
                    (Dialect::Postgres, Some(ty)) => out.push_str(&format!("${n}::text::{ty}")),
                    (Dialect::Mysql, _) => out.push('?'),
                }
                rest = tail;
            } else {
                let end = rest.find('}').unwrap_or(rest.len() - 1);
                out.push_str(&self.token(&rest[1..end]));
                rest = &rest[end + 1..];
            }
        }
        out.push_str(rest);
        out.replace("__S__", &self.ident(schema))
    }

    fn token(self, token: &str) -> String {
        let (name, expr) = token.split_once(':').unwrap_or((token, ""));
        match (self, name) {
            (Dialect::Postgres, "now") => "now()".into(),
            (Dialect::Mysql, "now") => "NOW(6)".into(),
            (Dialect::Postgres, "clock") => "clock_timestamp()".into(),
            (Dialect::Mysql, "clock") => "SYSDATE(6)".into(),
            (Dialect::Postgres, "text") => format!("({expr})::text"),
            (Dialect::Mysql, "text") => format!("CAST({expr} AS CHAR)"),
            (Dialect::Postgres, "micros") => {
                format!("(extract(epoch from {expr}) * 1000000)::bigint::text")
            }
            (Dialect::Mysql, "micros") => {
                format!("CAST(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', {expr}) AS CHAR)")
            }
            (Dialect::Postgres, "age") => format!("(extract(epoch from now() - {expr}))::text"),
            (Dialect::Mysql, "age") => {
                format!("CAST(TIMESTAMPDIFF(MICROSECOND, {expr}, NOW(6)) / 1000000 AS CHAR)")
            }
            // Templates are the project's own; an unknown token is written back as it was, so the
            // server names it in its error.
            _ => format!("{{{token}}}"),
        }
    }

    /// The tail of an `INSERT` into `table` (its bare name) that, where a row with the same
    /// `key` exists, updates it as `sets` say.
    pub(crate) fn upsert(self, table: &str, key: &[&str], sets: &[(&str, Set)]) -> String {
        let sets: Vec<String> = sets
            .iter()
            .map(|(c, set)| match (self, set) {
                (Dialect::Postgres, Set::New) => format!("{c} = EXCLUDED.{c}"),
                (Dialect::Mysql, Set::New) => format!("{c} = VALUES({c})"),
                (_, Set::Now) => format!("{c} = {{now}}"),
                (Dialect::Postgres, Set::Greatest) => {
                    format!("{c} = greatest({table}.{c}, EXCLUDED.{c})")
                }
                (Dialect::Mysql, Set::Greatest) => format!("{c} = GREATEST({c}, VALUES({c}))"),
            })
            .collect();
        match self {
            Dialect::Postgres => format!(
                "ON CONFLICT ({}) DO UPDATE SET {}",
                key.join(", "),
                sets.join(", ")
            ),
            Dialect::Mysql => format!("ON DUPLICATE KEY UPDATE {}", sets.join(", ")),
        }
    }

    /// `{col} < {now} - secs` with the seconds as the next parameter.
    pub(crate) fn older_than(self, col: &str) -> String {
        match self {
            Dialect::Postgres => {
                format!("{col} < {{now}} - make_interval(secs => ?::double precision)")
            }
            Dialect::Mysql => format!("{col} < {{now}} - INTERVAL ? SECOND"),
        }
    }

    /// `{col}` is one of `keys`: the condition's template and its parameters (one text array on
    /// PostgreSQL, one parameter a key on MySQL/MariaDB). `keys` is not empty.
    pub(crate) fn one_of(self, col: &str, keys: &[String]) -> (String, Vec<Option<String>>) {
        match self {
            Dialect::Postgres => (
                format!("{col} = ANY(?::text[])"),
                vec![Some(pg_text_array(keys))],
            ),
            Dialect::Mysql => (
                format!("{col} IN ({})", vec!["?"; keys.len()].join(", ")),
                keys.iter().cloned().map(Some).collect(),
            ),
        }
    }

    /// `expr` equals `param`, NULL equal to NULL. PostgreSQL compares the text forms (a version
    /// read back as the source sent it, whatever its type).
    pub(crate) fn same(self, expr: &str, param: &str) -> String {
        match self {
            Dialect::Postgres => format!("{expr}::text IS NOT DISTINCT FROM ({param})::text"),
            Dialect::Mysql => format!("{expr} <=> {param}"),
        }
    }

    /// A condition that holds while a table may have tombstones, given its tombstone flag's
    /// qualified name as the parameter: the flag is up (`tandem setup`; the trigger on the
    /// tombstone table raises it before the first tombstone is visible, so a tombstone this
    /// statement sees has raised it), or nothing tells (no flag: a table set up by an earlier
    /// version; a role that may not read it). PostgreSQL evaluates it once per statement, before
    /// anything else; MySQL/MariaDB has no such gate here (`None`).
    pub(crate) fn may_have_tombstones(self) -> Option<&'static str> {
        match self {
            Dialect::Postgres => Some(
                "(SELECT CASE WHEN f IS NULL OR NOT has_sequence_privilege(f, 'SELECT,USAGE') \
                 THEN true ELSE pg_sequence_last_value(f) IS NOT NULL END FROM to_regclass(?) AS f)",
            ),
            Dialect::Mysql => None,
        }
    }

    /// The tail of an insert that skips a row whose key is taken; MySQL/MariaDB has none that
    /// keeps value errors errors (`INSERT IGNORE` turns them into warnings).
    pub(crate) fn on_conflict_nothing(self) -> &'static str {
        match self {
            Dialect::Postgres => " ON CONFLICT DO NOTHING",
            Dialect::Mysql => "",
        }
    }

    /// The head of a single-table delete of `qualified` aliased `t`.
    pub(crate) fn delete_from(self, qualified: &str) -> String {
        match self {
            Dialect::Postgres => format!("DELETE FROM {qualified} AS t"),
            Dialect::Mysql => format!("DELETE t FROM {qualified} t"),
        }
    }

    /// A timestamp parameter (microseconds since the epoch, UTC) in the form the engine reads.
    pub(crate) fn timestamp(self, micros: i64) -> String {
        let t = crate::model::time::format_timestamp(micros);
        match self {
            Dialect::Postgres => format!("{t}Z"),
            Dialect::Mysql => t.replace('T', " "),
        }
    }
}

/// A PostgreSQL text array literal: every element double-quoted, `"` and `\` escaped.
fn pg_text_array(items: &[String]) -> String {
    // One string, written once (a batch's 500 keys, twice a batch).
    let mut out = String::with_capacity(2 + items.iter().map(|s| s.len() + 8).sum::<usize>());
    out.push('{');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        for c in item.chars() {
            if c == '\\' || c == '"' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_or_positional() {
        let t = "UPDATE __S__.t SET at = {now}, n = ? WHERE id = ?::bigint AND k = ANY(?::text[])";
        assert_eq!(
            Dialect::Postgres.render(t, "tandem"),
            "UPDATE \"tandem\".t SET at = now(), n = $1::text WHERE id = $2::text::bigint AND k = ANY($3::text::text[])"
        );
        assert_eq!(
            Dialect::Mysql.render(t, "tan`dem"),
            "UPDATE `tan``dem`.t SET at = NOW(6), n = ? WHERE id = ? AND k = ANY(?)"
        );
    }

    #[test]
    fn text_and_micros_tokens() {
        let t = "SELECT {text:id}, {micros:commit_time} FROM x WHERE a = '{}'";
        assert_eq!(
            Dialect::Mysql.render(t, "s"),
            "SELECT CAST(id AS CHAR), CAST(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', commit_time) AS CHAR) FROM x WHERE a = '{}'"
        );
        assert!(Dialect::Postgres
            .render(t, "s")
            .starts_with("SELECT (id)::text, (extract(epoch from commit_time)"));
    }

    #[test]
    fn upserts() {
        let sets = [("v", Set::Greatest), ("at", Set::Now), ("p", Set::New)];
        assert_eq!(
            Dialect::Postgres.render(&Dialect::Postgres.upsert("tomb", &["k"], &sets), "s"),
            "ON CONFLICT (k) DO UPDATE SET v = greatest(tomb.v, EXCLUDED.v), at = now(), p = EXCLUDED.p"
        );
        assert_eq!(
            Dialect::Mysql.render(&Dialect::Mysql.upsert("tomb", &["k"], &sets), "s"),
            "ON DUPLICATE KEY UPDATE v = GREATEST(v, VALUES(v)), at = NOW(6), p = VALUES(p)"
        );
    }

    #[test]
    fn key_lists() {
        let keys = vec!["a\"b".to_string(), "c\\d".to_string(), "{e,f}".to_string()];
        let (sql, params) = Dialect::Postgres.one_of("row_key", &keys);
        assert_eq!(sql, "row_key = ANY(?::text[])");
        assert_eq!(params, vec![Some(r#"{"a\"b","c\\d","{e,f}"}"#.to_string())]);
        let (sql, params) = Dialect::Mysql.one_of("row_key", &keys);
        assert_eq!(sql, "row_key IN (?, ?, ?)");
        assert_eq!(params.len(), 3);
    }
}
