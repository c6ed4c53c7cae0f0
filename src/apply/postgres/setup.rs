//! `tandem setup` statements for a PostgreSQL node: the bookkeeping schema, and on each mapped table
//! the origin and version columns, the trigger that stamps local writes, and `REPLICA IDENTITY FULL`
//! (so that update and delete before-images carry the version the target checks).

use super::sql::{ident, literal as lit, qname};
use crate::apply::setup::{split_statements, SetupTable};
use crate::names;

const BOOKKEEPING: &str = include_str!("../../../sql/postgres/001_bookkeeping.sql");
const TOMBSTONE: &str = include_str!("../../../sql/postgres/002_tombstone.sql");
const TOMBSTONE_ORIGIN: &str = include_str!("../../../sql/postgres/005_tombstone_origin.sql");
const HEARTBEAT: &str = include_str!("../../../sql/postgres/003_heartbeat.sql");
const COPY: &str = include_str!("../../../sql/postgres/004_copy.sql");
const TABLE_WIDE_CONFLICT: &str = include_str!("../../../sql/postgres/006_conflict_table_wide.sql");
const DEAD_LETTER_PARTS: &str = include_str!("../../../sql/postgres/007_dead_letter_parts.sql");
const TEXT_PAYLOADS: &str = include_str!("../../../sql/postgres/008_text_payloads.sql");
const VERIFY_RESULT: &str = include_str!("../../../sql/postgres/009_verify_result.sql");

/// Every statement, in order. Each is idempotent.
pub fn statements(
    node: &str,
    schema: &str,
    origin: &str,
    tables: &[SetupTable],
    manage: bool,
) -> Vec<String> {
    let mut out = split_statements(&BOOKKEEPING.replace("__SCHEMA__", &ident(schema)));
    for file in [
        TOMBSTONE,
        HEARTBEAT,
        COPY,
        TOMBSTONE_ORIGIN,
        TABLE_WIDE_CONFLICT,
        DEAD_LETTER_PARTS,
        TEXT_PAYLOADS,
        VERIFY_RESULT,
    ] {
        out.extend(split_statements(
            &file.replace("__SCHEMA__", &ident(schema)),
        ));
    }
    for t in tables {
        let q = qname(&t.table);
        out.push(format!("ALTER TABLE {q} REPLICA IDENTITY FULL"));
        if !manage {
            continue;
        }
        out.push(format!(
            "ALTER TABLE {q} ADD COLUMN IF NOT EXISTS {} text",
            ident(origin)
        ));
        if let Some(v) = &t.managed_version {
            out.push(format!(
                "ALTER TABLE {q} ADD COLUMN IF NOT EXISTS {} bigint NOT NULL DEFAULT 0",
                ident(v)
            ));
        }
        let func = format!(
            "{}.{}",
            ident(schema),
            ident(&names::pg_stamp_function(&t.table))
        );
        let version = match &t.managed_version {
            Some(v) => format!(
                "  IF TG_OP = 'UPDATE' THEN\n    NEW.{v} := greatest(OLD.{v} + 1, (extract(epoch from clock_timestamp()) * 1000000)::bigint);\n  \
                 ELSE\n    NEW.{v} := greatest(coalesce(NEW.{v}, 0) + 1, (extract(epoch from clock_timestamp()) * 1000000)::bigint);\n    \
                 UPDATE {s}.tombstone SET revived = revived + 1 WHERE target_table = {table} AND row_key = '{{' || {key} || '}}';\n  END IF;\n",
                v = ident(v),
                s = ident(schema),
                table = lit(&t.table.to_string()),
                key = key_text(t, "NEW"),
            ),
            None => String::new(),
        };
        let body = format!(
            "BEGIN\n  IF current_setting('tandem.applying', true) = 'on' THEN\n    RETURN NEW;\n  END IF;\n  \
             NEW.{o} := {n};\n{version}  RETURN NEW;\nEND",
            o = ident(origin),
            n = lit(node),
        );
        out.push(format!(
            "CREATE OR REPLACE FUNCTION {func}() RETURNS trigger LANGUAGE plpgsql AS {}",
            dollar_quoted(&body)
        ));
        out.push(format!(
            "CREATE OR REPLACE TRIGGER tandem_stamp BEFORE INSERT OR UPDATE ON {q} FOR EACH ROW EXECUTE FUNCTION {func}()"
        ));
        if let Some(v) = &t.managed_version {
            out.extend(tombstone_trigger(schema, node, t, v));
        }
    }
    if manage {
        out.extend(drop_legacy_functions(schema, tables));
    }
    out
}

/// Earlier versions named the functions `stamp_<schema>_<table>` and `tombstone_<schema>_<table>`,
/// which two tables could share (`a_b.c` and `a.b_c`). Once every trigger points at its table's own
/// function, an earlier name that no trigger uses any more and that is no current name is dropped.
fn drop_legacy_functions(schema: &str, tables: &[SetupTable]) -> Vec<String> {
    let current: Vec<String> = tables
        .iter()
        .flat_map(|t| {
            [
                names::pg_stamp_function(&t.table),
                names::pg_tombstone_function(&t.table),
            ]
        })
        .collect();
    let mut legacy: Vec<String> = tables
        .iter()
        .flat_map(|t| names::legacy_pg_functions(&t.table))
        .filter(|l| !current.contains(l))
        .collect();
    legacy.sort();
    legacy.dedup();
    legacy
        .iter()
        .map(|l| {
            let f = format!("{}.{}", ident(schema), ident(l));
            let body = format!(
                "BEGIN\n  IF to_regprocedure({p}) IS NOT NULL \
                 AND NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgfoid = to_regprocedure({p})) THEN\n    \
                 DROP FUNCTION {f}();\n  END IF;\nEND",
                p = lit(&format!("{f}()")),
            );
            format!("DO {}", dollar_quoted(&body))
        })
        .collect()
}

/// `body` between dollar quotes whose tag it does not contain (a table or column name can hold
/// `$tandem$`).
fn dollar_quoted(body: &str) -> String {
    let mut tag = String::from("$tandem$");
    let mut n = 0;
    while body.contains(&tag) {
        n += 1;
        tag = format!("$tandem{n}$");
    }
    format!("{tag}\n{body}\n{tag}")
}

/// The AFTER DELETE trigger that records a local delete's key and stamp (the deleted row's version
/// + 1). The key text is built exactly as the applier builds it (`{"col":"text",…}`).
fn tombstone_trigger(schema: &str, node: &str, t: &SetupTable, version: &str) -> Vec<String> {
    let q = qname(&t.table);
    let func = format!(
        "{}.{}",
        ident(schema),
        ident(&names::pg_tombstone_function(&t.table))
    );
    let key = key_text(t, "OLD");
    vec![
        format!(
            "CREATE OR REPLACE FUNCTION {func}() RETURNS trigger LANGUAGE plpgsql AS {}",
            dollar_quoted(&format!(
            "BEGIN\n  \
             IF current_setting('tandem.applying', true) = 'on' THEN\n    RETURN OLD;\n  END IF;\n  \
             INSERT INTO {s}.tombstone (target_table, row_key, version, node) VALUES ({table}, '{{' || {key} || '}}', OLD.{v} + 1, {n})\n  \
             ON CONFLICT (target_table, row_key, node) DO UPDATE SET \
             version = greatest({s}.tombstone.version, EXCLUDED.version), deleted_at = now();\n  \
             RETURN OLD;\nEND",
            s = ident(schema),
            table = lit(&t.table.to_string()),
            v = ident(version),
            n = lit(node),
        ))),
        format!(
            "CREATE OR REPLACE TRIGGER tandem_tombstone AFTER DELETE ON {q} FOR EACH ROW EXECUTE FUNCTION {func}()"
        ),
    ]
}

/// The key text of the row `rec` (`OLD` or `NEW`) without its braces, built exactly as the applier
/// builds it (`"col":"text",…`).
fn key_text(t: &SetupTable, rec: &str) -> String {
    t.key
        .iter()
        .map(|k| {
            format!(
                "to_json({}::text)::text || ':' || to_json({rec}.{}::text)::text",
                lit(k),
                ident(k)
            )
        })
        .collect::<Vec<_>>()
        .join(" || ',' || ")
}
