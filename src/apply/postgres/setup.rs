//! `tandem setup` statements for a PostgreSQL node: the bookkeeping schema, and on each mapped table
//! the origin and version columns, the trigger that stamps local writes, and `REPLICA IDENTITY FULL`
//! (so that update and delete before-images carry the version the target checks).

use super::sql::{ident, qname};
use crate::apply::setup::{split_statements, SetupTable};

const BOOKKEEPING: &str = include_str!("../../../sql/postgres/001_bookkeeping.sql");
const TOMBSTONE: &str = include_str!("../../../sql/postgres/002_tombstone.sql");
const COPY: &str = include_str!("../../../sql/postgres/004_copy.sql");

/// Every statement, in order. Each is idempotent.
pub fn statements(
    node: &str,
    schema: &str,
    origin: &str,
    tables: &[SetupTable],
    manage: bool,
) -> Vec<String> {
    let mut out = split_statements(&BOOKKEEPING.replace("__SCHEMA__", &ident(schema)));
    out.extend(split_statements(
        &TOMBSTONE.replace("__SCHEMA__", &ident(schema)),
    ));
    out.extend(split_statements(
        &COPY.replace("__SCHEMA__", &ident(schema)),
    ));
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
            ident(&format!("stamp_{}_{}", t.table.schema, t.table.name))
        );
        let version = match &t.managed_version {
            Some(v) => format!(
                "  IF TG_OP = 'UPDATE' THEN\n    NEW.{v} := greatest(OLD.{v} + 1, (extract(epoch from clock_timestamp()) * 1000000)::bigint);\n  \
                 ELSE\n    NEW.{v} := greatest(coalesce(NEW.{v}, 0) + 1, (extract(epoch from clock_timestamp()) * 1000000)::bigint);\n  END IF;\n",
                v = ident(v)
            ),
            None => String::new(),
        };
        out.push(format!(
            "CREATE OR REPLACE FUNCTION {func}() RETURNS trigger LANGUAGE plpgsql AS $tandem$\nBEGIN\n  \
             IF current_setting('tandem.applying', true) = 'on' THEN\n    RETURN NEW;\n  END IF;\n  \
             NEW.{o} := '{n}';\n{version}  RETURN NEW;\nEND\n$tandem$",
            o = ident(origin),
            n = node.replace('\'', "''"),
        ));
        out.push(format!(
            "CREATE OR REPLACE TRIGGER tandem_stamp BEFORE INSERT OR UPDATE ON {q} FOR EACH ROW EXECUTE FUNCTION {func}()"
        ));
        if let Some(v) = &t.managed_version {
            out.extend(tombstone_trigger(schema, t, v));
        }
    }
    out
}

/// The AFTER DELETE trigger that records a local delete's key and stamp (the deleted row's version
/// + 1). The key text is built exactly as the applier builds it (`{"col":"text",…}`).
fn tombstone_trigger(schema: &str, t: &SetupTable, version: &str) -> Vec<String> {
    let q = qname(&t.table);
    let func = format!(
        "{}.{}",
        ident(schema),
        ident(&format!("tombstone_{}_{}", t.table.schema, t.table.name))
    );
    let key = t
        .key
        .iter()
        .map(|k| {
            format!(
                "to_json({}::text)::text || ':' || to_json(OLD.{}::text)::text",
                lit(k),
                ident(k)
            )
        })
        .collect::<Vec<_>>()
        .join(" || ',' || ");
    vec![
        format!(
            "CREATE OR REPLACE FUNCTION {func}() RETURNS trigger LANGUAGE plpgsql AS $tandem$\nBEGIN\n  \
             IF current_setting('tandem.applying', true) = 'on' THEN\n    RETURN OLD;\n  END IF;\n  \
             INSERT INTO {s}.tombstone (target_table, row_key, version) VALUES ({table}, '{{' || {key} || '}}', OLD.{v} + 1)\n  \
             ON CONFLICT (target_table, row_key) DO UPDATE SET version = greatest({s}.tombstone.version, EXCLUDED.version), deleted_at = now();\n  \
             RETURN OLD;\nEND\n$tandem$",
            s = ident(schema),
            table = lit(&t.table.to_string()),
            v = ident(version),
        ),
        format!(
            "CREATE OR REPLACE TRIGGER tandem_tombstone AFTER DELETE ON {q} FOR EACH ROW EXECUTE FUNCTION {func}()"
        ),
    ]
}

fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
