//! `tandem setup` statements for a PostgreSQL node: the bookkeeping schema, and on each mapped table
//! the origin and version columns, the triggers that stamp local writes and keep tombstones, and
//! the replica identity: `DEFAULT` (the key) where the table's rules need only the key and the old
//! version, which the update trigger keeps in `_tandem_version_prev` and the delete trigger writes
//! into the tombstone just before the row goes (see `mapping/old_version.rs`); `FULL` where a field
//! merge, a system of record or a row filter reads the old values, or the file asks for it.
//!
//! What a local write pays, cheapest first (measured by `benches/footprint.rs`):
//!
//! ```text
//!  insert  column defaults stamp origin and version; the stamp trigger fires only for a row that
//!          names another origin or a NULL version (WHEN, evaluated in the executor, no PL/pgSQL);
//!          the revive trigger exists only once the table holds a tombstone of another node's
//!          delete (the applier makes it before it writes the first, `apply/revive.rs`), and then
//!          bumps the keys' tombstones (one UPDATE per statement)
//!  update  the stamp trigger (PL/pgSQL, no SQL statement): origin, the version bump and the old
//!          version; any BEFORE ROW UPDATE trigger makes PostgreSQL lock the row first, a 54-byte
//!          WAL record
//!  delete  a PL/pgSQL row trigger: one INSERT … ON CONFLICT of the row's tombstone
//! ```
//!
//! A table has two flags. The tombstone flag is set, before its transaction commits, by whoever
//! writes the table's first tombstone (a trigger on the tombstone table); the applier skips the
//! lookup of a batch's keys while it is down. The peer flag is set so by the first tombstone of
//! another node's delete (the applier's): a local insert need not bump the tombstones of this
//! node's own deletes, which a peer counts as seen (`Link::unseen`), so an insert that finds the
//! peer flag unset has no tombstone of its key to bump: a delete of the same key that committed
//! first made the insert wait for it before the flag was read. Neither is ever cleared (pruning
//! races new tombstones).

use super::sql::{ident, literal as lit, qname};
use crate::apply::setup::{bookkeeping_statements, migrations, SetupTable};
use crate::model::TableRef;
use crate::names;

/// Setup's transactions read what committed before each statement (a server whose default is
/// REPEATABLE READ would read its first snapshot, taken before the locks were granted).
const ISOLATION: &str = "SET TRANSACTION ISOLATION LEVEL READ COMMITTED";

/// The version a local write gets: microseconds since the epoch.
const NOW_MICROS: &str = "(extract(epoch from clock_timestamp()) * 1000000)::bigint";
/// The same as a column default, in double precision (cheaper per row; a version only needs to
/// grow).
const NOW_MICROS_DEFAULT: &str = "(date_part('epoch', clock_timestamp()) * 1000000)::bigint";
/// How long making a revive trigger waits for the table's lock, in milliseconds, as text: a second
/// longer than `deadlock_timeout`, so that a waiter first cancels an autovacuum that holds the
/// table (PostgreSQL does so once `deadlock_timeout` passed) instead of timing out with it.
const LOCK_WAIT: &str =
    "(extract(epoch from current_setting('deadlock_timeout')::interval) * 1000 + 1000)::bigint::text";

/// The applier's statements that make `table`'s revive trigger where it is missing, between its
/// transactions (`apply/revive.rs`): a transaction of their own, so that the table's lock is held
/// only as long as the DDL takes, not for the applier's whole group (whose row locks an
/// application transaction may wait on meanwhile: a deadlock). A trigger made for a tombstone that
/// then does not commit costs a bulk insert its transition table until setup drops it.
pub fn make_revive(schema: &str, table: &TableRef) -> String {
    let q = qname(table);
    // The lock first: two links into this node making it at once wait for each other, and the
    // second then finds it (a later statement, a later snapshot).
    let body = format!(
        "BEGIN\n  LOCK TABLE ONLY {q} IN SHARE ROW EXCLUSIVE MODE;\n  \
         IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = {rel}::regclass \
         AND tgname = 'tandem_revive') THEN\n  {create}\n  END IF;\nEND",
        rel = lit(&q),
        create = create_revive(schema, table),
    );
    format!(
        "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT set_config('lock_timeout', {LOCK_WAIT}, true); \
         DO {}; COMMIT",
        dollar_quoted(&body)
    )
}

/// Every statement, in order. Each is idempotent, and an install made by an earlier version (row
/// triggers that bumped tombstones on every insert) is moved onto these objects in one transaction
/// per table.
pub fn statements(
    node: &str,
    schema: &str,
    origin: &str,
    tables: &[SetupTable],
    manage: bool,
) -> Vec<String> {
    let mut out = bookkeeping_statements(&migrations!("postgres"), "__SCHEMA__", &ident(schema));
    for t in tables {
        if lean(t, manage).is_none() {
            out.push(format!(
                "ALTER TABLE {} REPLICA IDENTITY FULL",
                qname(&t.table)
            ));
        }
    }
    if !manage {
        return out;
    }
    for t in tables {
        out.extend(columns(node, origin, t));
    }
    // The flags exist, are up for the tombstones already there, and are set by every tombstone
    // written from now on, before any table's revive trigger reads its flag. One transaction,
    // with tombstone writers held off: a flag is never seen down while its table has tombstones
    // (the applier skips the lookup of a batch's keys then).
    let managed: Vec<&SetupTable> = tables
        .iter()
        .filter(|t| t.managed_version.is_some())
        .collect();
    if !managed.is_empty() {
        out.push("BEGIN".into());
        // The looks at the tombstones after the locks see what committed before them.
        out.push(ISOLATION.into());
        // Writers of tombstones queue behind the lock while it waits: not for long.
        out.push("SET LOCAL lock_timeout = '10s'".into());
        out.push(format!(
            "LOCK TABLE {}.tombstone IN SHARE ROW EXCLUSIVE MODE",
            ident(schema)
        ));
        for t in &managed {
            out.push(format!("CREATE SEQUENCE IF NOT EXISTS {}", flag(schema, t)));
            out.push(format!(
                "CREATE SEQUENCE IF NOT EXISTS {}",
                peer_flag(schema, t)
            ));
            // The trigger on the tombstone table makes revive triggers with it.
            out.push(revive_function(schema, t));
        }
        out.extend(flag_trigger(schema, node, &managed));
        for t in &managed {
            out.push(raise_flag(schema, t, &flag(schema, t), None));
            out.push(raise_flag(schema, t, &peer_flag(schema, t), Some(node)));
        }
        out.push("COMMIT".into());
    }
    for t in tables {
        out.push("BEGIN".into());
        out.push(ISOLATION.into());
        if let Some(v) = &t.managed_version {
            out.extend(tombstone_trigger(schema, node, t, v));
            out.push(revive_where_needed(schema, node, t));
        }
        out.extend(stamp_triggers(schema, node, origin, t));
        if lean(t, manage).is_some() {
            // After the triggers that put the old version in the log, in their transaction.
            out.push(key_only_identity(t));
        }
        out.push("COMMIT".into());
    }
    out.extend(drop_legacy_functions(schema, tables));
    out
}

/// The managed version column of a table whose old rows stay out of the WAL (`REPLICA IDENTITY
/// DEFAULT`): the update trigger keeps the old version beside the new one
/// ([`names::prev_version_column`]) and the delete trigger writes it into the tombstone, just
/// before the row goes (the reader pairs the two, see `mapping/old_version.rs`). `None`: the
/// table logs whole old rows (`REPLICA IDENTITY FULL`).
fn lean(t: &SetupTable, manage: bool) -> Option<&str> {
    if !manage || t.old_row.is_some() {
        return None;
    }
    t.managed_version.as_deref()
}

/// `REPLICA IDENTITY DEFAULT` when the table's primary key is the mapped key (a delete is then
/// logged with the key tandem matches rows by), `FULL` otherwise. A deferrable or invalid primary
/// key is no replica identity to PostgreSQL (DEFAULT would then log nothing, and it refuses the
/// application's updates and deletes of a published table): FULL.
fn key_only_identity(t: &SetupTable) -> String {
    let q = qname(&t.table);
    let key: Vec<String> = t.key.iter().map(|k| lit(k)).collect();
    let body = format!(
        "DECLARE\n  pk text[] := ARRAY(SELECT a.attname::text FROM pg_index i JOIN pg_attribute a \
         ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) \
         WHERE i.indrelid = {rel}::regclass AND i.indisprimary AND i.indimmediate AND i.indisvalid);\n  \
         k text[] := ARRAY[{key}]::text[];\nBEGIN\n  \
         IF pk @> k AND pk <@ k THEN\n    ALTER TABLE {q} REPLICA IDENTITY DEFAULT;\n  \
         ELSE\n    ALTER TABLE {q} REPLICA IDENTITY FULL;\n  END IF;\nEND",
        rel = lit(&q),
        key = key.join(", "),
    );
    format!("DO {}", dollar_quoted(&body))
}

/// What [`statements`] installs on `t`, and what each kind of local write then pays (see
/// [`crate::apply::setup::Footprint`]).
pub fn footprint(
    node: &str,
    schema: &str,
    origin: &str,
    t: &SetupTable,
    manage: bool,
) -> (Vec<String>, Vec<String>) {
    let why = t.old_row.unwrap_or_default();
    let full = format!(
        "the WAL carries the whole old row (REPLICA IDENTITY FULL, because {why}), about 1.5x the \
         WAL of an update of a narrow row, more for wide rows"
    );
    if !manage {
        return (
            vec![format!("REPLICA IDENTITY FULL ({why})")],
            vec![
                "insert: nothing".into(),
                format!("update: {full}"),
                "delete: the WAL carries the whole old row".into(),
            ],
        );
    }
    let lean = lean(t, manage).is_some();
    let mut installs = vec![format!("column {origin} text DEFAULT '{node}'")];
    let (insert, delete) = match &t.managed_version {
        Some(v) => {
            installs.push(format!(
                "column {v} bigint NOT NULL DEFAULT the clock in microseconds"
            ));
            if lean {
                installs.push(format!(
                    "column {} bigint (the version before the row's last local update)",
                    names::prev_version_column(v)
                ));
            }
            installs.push(format!(
                "triggers tandem_stamp (BEFORE INSERT, only for a row that names another origin \
                 or a NULL version), tandem_stamp_update (BEFORE UPDATE), tandem_revive (AFTER \
                 INSERT per statement, made with the table's first tombstone of another node's \
                 delete), \
                 tandem_tombstone ({} DELETE); their functions in schema {schema}; the sequences \
                 {schema}.{} and {schema}.{} (raised by the trigger tandem_mark on \
                 {schema}.tombstone)",
                if lean { "BEFORE" } else { "AFTER" },
                names::tombstone_flag(&t.table),
                names::peer_tombstone_flag(&t.table)
            ));
            (
                "insert: the column defaults; no trigger function runs (the WHEN is false), and no \
                 revive trigger exists, until the table has a tombstone of another node's delete \
                 (applied here), then one UPDATE of the tombstone table per insert statement, \
                 joined to the inserted rows"
                    .to_string(),
                format!(
                    "delete: a PL/pgSQL row trigger, one INSERT … ON CONFLICT into the tombstone \
                     table per deleted row; the WAL carries {} and the tombstone",
                    if lean {
                        "the key"
                    } else {
                        "the whole old row"
                    }
                ),
            )
        }
        None => {
            installs.push(
                "triggers tandem_stamp (BEFORE INSERT, only for a row that names another origin), \
                 tandem_stamp_update (BEFORE UPDATE)"
                    .into(),
            );
            (
                "insert: the column default; no trigger function runs unless the row names another \
                 origin"
                    .to_string(),
                "delete: the WAL carries the whole old row".to_string(),
            )
        }
    };
    let update = if lean {
        installs.push(
            "REPLICA IDENTITY DEFAULT when the primary key is the key (FULL otherwise)".into(),
        );
        "update: a PL/pgSQL row trigger that runs no SQL and keeps the old version beside the \
         new; the WAL carries the new row (8 bytes more) and no old row"
            .to_string()
    } else {
        installs.push(format!("REPLICA IDENTITY FULL ({why})"));
        format!("update: a PL/pgSQL row trigger that runs no SQL; {full}")
    };
    (installs, vec![insert, update, delete])
}

/// The origin and version columns, defaulting to what the stamp trigger would write, so that an
/// insert that names neither needs no trigger. The version is added with a constant default (no
/// table rewrite; existing rows get 0, as before) and then given the clock.
fn columns(node: &str, origin: &str, t: &SetupTable) -> Vec<String> {
    let q = qname(&t.table);
    let mut out = vec![
        format!(
            "ALTER TABLE {q} ADD COLUMN IF NOT EXISTS {} text",
            ident(origin)
        ),
        format!(
            "ALTER TABLE {q} ALTER COLUMN {} SET DEFAULT {}",
            ident(origin),
            lit(node)
        ),
    ];
    if let Some(v) = &t.managed_version {
        out.push(format!(
            "ALTER TABLE {q} ADD COLUMN IF NOT EXISTS {} bigint NOT NULL DEFAULT 0",
            ident(v)
        ));
        out.push(format!(
            "ALTER TABLE {q} ALTER COLUMN {} SET DEFAULT {NOW_MICROS_DEFAULT}",
            ident(v)
        ));
        if t.old_row.is_none() {
            out.push(format!(
                "ALTER TABLE {q} ADD COLUMN IF NOT EXISTS {} bigint",
                ident(&names::prev_version_column(v))
            ));
        }
    }
    out
}

/// The table's tombstone flag, qualified.
fn flag(schema: &str, t: &SetupTable) -> String {
    format!(
        "{}.{}",
        ident(schema),
        ident(&names::tombstone_flag(&t.table))
    )
}

/// The table's flag for tombstones of other nodes' deletes, qualified: the revive trigger's.
fn peer_flag(schema: &str, t: &SetupTable) -> String {
    peer_flag_of(schema, &t.table)
}

fn peer_flag_of(schema: &str, table: &TableRef) -> String {
    format!(
        "{}.{}",
        ident(schema),
        ident(&names::peer_tombstone_flag(table))
    )
}

fn func(schema: &str, name: &str) -> String {
    format!("{}.{}", ident(schema), ident(name))
}

/// The stamp function and its two triggers: every local update, and a local insert only when a
/// column default did not already stamp it (the row names another origin, or a NULL version).
fn stamp_triggers(schema: &str, node: &str, origin: &str, t: &SetupTable) -> Vec<String> {
    let q = qname(&t.table);
    let f = func(schema, &names::pg_stamp_function(&t.table));
    let o = ident(origin);
    let n = lit(node);
    let (version, unstamped) = match &t.managed_version {
        Some(v) => (
            format!(
                "  IF TG_OP = 'UPDATE' THEN\n{prev}    NEW.{v} := greatest(OLD.{v} + 1, {NOW_MICROS});\n  \
                 ELSE\n    NEW.{v} := greatest(coalesce(NEW.{v}, 0) + 1, {NOW_MICROS});\n  END IF;\n",
                v = ident(v),
                prev = match t.old_row {
                    None => format!(
                        "    NEW.{} := OLD.{};\n",
                        ident(&names::prev_version_column(v)),
                        ident(v)
                    ),
                    Some(_) => String::new(),
                },
            ),
            format!(" OR NEW.{} IS NULL", ident(v)),
        ),
        None => (String::new(), String::new()),
    };
    let body = format!(
        "BEGIN\n  IF current_setting('tandem.applying', true) = 'on' THEN\n    RETURN NEW;\n  END IF;\n  \
         NEW.{o} := {n};\n{version}  RETURN NEW;\nEND"
    );
    vec![
        format!(
            "CREATE OR REPLACE FUNCTION {f}() RETURNS trigger LANGUAGE plpgsql AS {}",
            dollar_quoted(&body)
        ),
        format!(
            "CREATE OR REPLACE TRIGGER tandem_stamp_update BEFORE UPDATE ON {q} FOR EACH ROW EXECUTE FUNCTION {f}()"
        ),
        format!(
            "CREATE OR REPLACE TRIGGER tandem_stamp BEFORE INSERT ON {q} FOR EACH ROW \
             WHEN (NEW.{o} IS DISTINCT FROM {n}{unstamped}) EXECUTE FUNCTION {f}()"
        ),
    ]
}

/// The function of the trigger that bumps the tombstones of each key a local insert brings back,
/// in the inserting transaction: the insert then carries, in the log, which deletes of the key
/// this node had seen (see `sql/postgres/005_tombstone_origin.sql`). The trigger runs after the
/// statement's rows are in, so a delete of one of their keys that was still open has committed by
/// then (the insert waited for it) and its tombstone is bumped too.
///
/// One `UPDATE` per statement, joined to the rows it inserted (a transition table): a bulk insert
/// into a table with tombstones pays one join instead of an `UPDATE` per row (200,000 rows: 0.5
/// against 1.7 s), and a one-row insert pays about what the row trigger did. A partitioned table
/// keeps a row trigger (PostgreSQL clones it onto each partition; a statement trigger on the parent
/// does not see rows inserted into a partition directly).
fn revive_function(schema: &str, t: &SetupTable) -> String {
    let f = func(schema, &names::pg_revive_function(&t.table));
    let body = format!(
        "BEGIN\n  IF current_setting('tandem.applying', true) = 'on' THEN\n    RETURN NULL;\n  END IF;\n  \
         IF TG_LEVEL = 'ROW' THEN\n    \
         UPDATE {s}.tombstone SET revived = revived + 1, last_version = NULL \
         WHERE target_table = {table} AND row_key = '{{' || {row_key} || '}}';\n  \
         ELSE\n    \
         UPDATE {s}.tombstone t SET revived = t.revived + 1, last_version = NULL \
         FROM tandem_inserted n WHERE t.target_table = {table} AND t.row_key = '{{' || {key} || '}}';\n  \
         END IF;\n  \
         RETURN NULL;\nEND",
        s = ident(schema),
        table = lit(&t.table.to_string()),
        row_key = key_text(t, "NEW"),
        key = key_text(t, "n"),
    );
    format!(
        "CREATE OR REPLACE FUNCTION {f}() RETURNS trigger LANGUAGE plpgsql AS {}",
        dollar_quoted(&body)
    )
}

/// PL/pgSQL that makes the revive trigger on `t` (it must not exist): per statement, or per row on
/// a partitioned table.
///
/// The trigger exists only on a table that holds a tombstone of another node's delete: PostgreSQL
/// copies each inserted row into a statement trigger's transition table whenever the trigger
/// exists, before its `WHEN` is read (about 5% of a bulk insert's server time, measured with the
/// trigger's `WHEN` false). Until then a local insert has no tombstone to bump (a peer counts this
/// node's own deletes as seen, `Link::unseen`). The applier makes it before it writes the first
/// such tombstone ([`make_revive`]); `tandem_mark` makes it in the writing transaction if it is
/// still missing ([`flag_trigger`]); setup makes it where one is there already and drops it
/// elsewhere ([`revive_where_needed`]). Its `WHEN` still reads the peer flag, as installs of the
/// fifteenth session did.
fn create_revive(schema: &str, table: &TableRef) -> String {
    let q = qname(table);
    let f = func(schema, &names::pg_revive_function(table));
    let when = format!(
        "WHEN (pg_sequence_last_value({}::regclass) IS NOT NULL) EXECUTE FUNCTION {f}()",
        lit(&peer_flag_of(schema, table))
    );
    format!(
        "IF (SELECT c.relkind FROM pg_class c WHERE c.oid = {rel}::regclass) = 'p' THEN\n    \
         CREATE TRIGGER tandem_revive AFTER INSERT ON {q} FOR EACH ROW {when};\n  \
         ELSE\n    \
         CREATE TRIGGER tandem_revive AFTER INSERT ON {q} \
         REFERENCING NEW TABLE AS tandem_inserted FOR EACH STATEMENT {when};\n  \
         END IF;",
        rel = lit(&q),
    )
}

/// Setup's part of the revive trigger, in the table's transaction: dropped (an earlier install put
/// it on every table, a row trigger before that, whose clones go with it) and made again where the
/// table holds a tombstone of another node's delete. The table is locked first (`SHARE ROW
/// EXCLUSIVE`, which the applier's `ROW EXCLUSIVE` in `tandem_mark` waits for and holds off), so a
/// first such tombstone written meanwhile either committed before the look (the trigger is made
/// here) or comes after this transaction (and makes it then).
fn revive_where_needed(schema: &str, node: &str, t: &SetupTable) -> String {
    let q = qname(&t.table);
    let body = format!(
        "BEGIN\n  LOCK TABLE ONLY {q} IN SHARE ROW EXCLUSIVE MODE;\n  \
         DROP TRIGGER IF EXISTS tandem_revive ON {q};\n  \
         IF EXISTS (SELECT 1 FROM {s}.tombstone WHERE target_table = {table} AND node <> {n}) THEN\n  \
         {create}\n  END IF;\nEND",
        s = ident(schema),
        table = lit(&t.table.to_string()),
        n = lit(node),
        create = create_revive(schema, &t.table),
    );
    format!("DO {}", dollar_quoted(&body))
}

/// Raises flag `p` of the table for tombstones written before it existed (with `not_of`, only
/// tombstones of other nodes' deletes than that one).
fn raise_flag(schema: &str, t: &SetupTable, p: &str, not_of: Option<&str>) -> String {
    format!(
        "SELECT setval({p}::regclass, 1) WHERE pg_sequence_last_value({p}::regclass) IS NULL \
         AND EXISTS (SELECT 1 FROM {s}.tombstone WHERE target_table = {table}{node})",
        p = lit(p),
        s = ident(schema),
        table = lit(&t.table.to_string()),
        node = not_of
            .map(|n| format!(" AND node <> {}", lit(n)))
            .unwrap_or_default(),
    )
}

/// The trigger on the tombstone table that sets a table's flag when its first tombstone is written,
/// by a local delete or by the applier (whose session fires it too), and its peer flag when its
/// first tombstone of another node's delete is (by the applier): a local insert need not revive
/// this node's own deletes, which the link that carries the insert to a peer carried first (the
/// peer counts them as seen, `Link::unseen`). `setval` is not transactional: a flag is up before
/// the tombstone is visible.
///
/// A tombstone of another node's delete also makes the table's revive trigger if it is still
/// missing ([`create_revive`]; the applier makes it first, between its transactions, see
/// [`make_revive`]), in the same transaction, so that both commit or neither does. The table is
/// locked `ROW EXCLUSIVE` first (the applier's delete took that lock already, unless the row was
/// missing), which setup's `SHARE ROW EXCLUSIVE` waits for. Making the trigger waits for the
/// transactions that hold the table's write locks at most a second longer than
/// `deadlock_timeout` (`lock_timeout`, set back afterwards), during which the table's new writes
/// queue behind it, and then holds them off until the writing transaction commits; a timeout
/// fails the transaction, which the applier retries. Inside a transaction holding row locks this
/// can deadlock with an application transaction waiting on one of them (PostgreSQL aborts one).
fn flag_trigger(schema: &str, node: &str, tables: &[&SetupTable]) -> Vec<String> {
    let raise = |p: &str| {
        format!(
            "IF pg_sequence_last_value({p}::regclass) IS NULL THEN\n      \
             PERFORM setval({p}::regclass, 1);\n    END IF;\n"
        )
    };
    let branches: Vec<String> = tables
        .iter()
        .map(|t| {
            let q = qname(&t.table);
            format!(
                "IF NEW.target_table = {table} THEN\n    {}    IF NEW.node <> {n} THEN\n    {}      \
                 LOCK TABLE ONLY {q} IN ROW EXCLUSIVE MODE;\n      \
                 IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = {rel}::regclass \
                 AND tgname = 'tandem_revive') THEN\n      \
                 waited := current_setting('lock_timeout');\n      \
                 PERFORM set_config('lock_timeout', {LOCK_WAIT}, true);\n      \
                 {create}\n      \
                 PERFORM set_config('lock_timeout', waited, true);\n      \
                 END IF;\n    END IF;\n",
                raise(&lit(&flag(schema, t))),
                raise(&lit(&peer_flag(schema, t))),
                table = lit(&t.table.to_string()),
                n = lit(node),
                rel = lit(&q),
                create = create_revive(schema, &t.table),
            )
        })
        .collect();
    let body = format!(
        "DECLARE\n  waited text;\nBEGIN\n  {}  END IF;\n  RETURN NULL;\nEND",
        branches.join("  ELS")
    );
    let f = func(schema, "mark_tombstoned");
    vec![
        format!(
            "CREATE OR REPLACE FUNCTION {f}() RETURNS trigger LANGUAGE plpgsql AS {}",
            dollar_quoted(&body)
        ),
        format!(
            "CREATE OR REPLACE TRIGGER tandem_mark AFTER INSERT ON {}.tombstone FOR EACH ROW EXECUTE FUNCTION {f}()",
            ident(schema)
        ),
        // It fires for the applier too, whose session skips ordinary triggers
        // (`session_replication_role = replica`).
        format!(
            "ALTER TABLE {}.tombstone ENABLE ALWAYS TRIGGER tandem_mark",
            ident(schema)
        ),
    ]
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
                names::pg_revive_function(&t.table),
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

/// The delete trigger that records each local delete's key and stamp (the deleted row's version
/// plus one), and the deleted row's version itself (`last_version`). The key text is built exactly as
/// the applier builds it (`{"col":"text",…}`).
///
/// On a table logged without its old rows it runs BEFORE the delete, so that its tombstone write
/// comes just before the key-only delete in the log, where the reader finds the version the
/// delete's check needs; the row is locked (and, under READ COMMITTED, re-read) before BEFORE
/// triggers run, so the version is the deleted row's. Like any BEFORE trigger, it fires in name
/// order among the table's others: one of the application's that sorts after `tandem_tombstone`
/// and cancels a delete leaves a tombstone for a row that stays (an insert of its key is then
/// weighed against a delete that did not happen, a conflict, never a loss). Elsewhere it runs
/// AFTER the delete, as it did before.
///
/// A row trigger: a statement trigger with a transition table (one set-based upsert per statement)
/// halves the cost per row of a bulk delete, but costs a one-row delete about 4 µs more of server
/// CPU (about 37 against 33 µs, plain 16 µs), and one-row deletes are what a busy application
/// sends.
fn tombstone_trigger(schema: &str, node: &str, t: &SetupTable, version: &str) -> Vec<String> {
    let q = qname(&t.table);
    let f = func(schema, &names::pg_tombstone_function(&t.table));
    // A BEFORE trigger lets the row go by returning it; an AFTER trigger's result is ignored.
    // Only a BEFORE trigger's tombstone comes before its delete, where the reader pairs them: an
    // AFTER trigger's leaves `last_version` NULL, so that no reader waits for its delete.
    let (when, done, last) = if t.old_row.is_none() {
        ("BEFORE", "OLD", format!("OLD.{}", ident(version)))
    } else {
        ("AFTER", "NULL", "NULL".to_string())
    };
    let body = format!(
        "BEGIN\n  IF current_setting('tandem.applying', true) = 'on' THEN\n    RETURN {done};\n  END IF;\n  \
         INSERT INTO {s}.tombstone AS t (target_table, row_key, version, node, last_version) \
         VALUES ({table}, '{{' || {key} || '}}', OLD.{v} + 1, {n}, {last})\n  \
         ON CONFLICT (target_table, row_key, node) DO UPDATE SET \
         version = greatest(t.version, EXCLUDED.version), deleted_at = now(), \
         last_version = EXCLUDED.last_version;\n  \
         RETURN {done};\nEND",
        s = ident(schema),
        table = lit(&t.table.to_string()),
        key = key_text(t, "OLD"),
        v = ident(version),
        n = lit(node),
    );
    vec![
        format!(
            "CREATE OR REPLACE FUNCTION {f}() RETURNS trigger LANGUAGE plpgsql AS {}",
            dollar_quoted(&body)
        ),
        format!(
            "CREATE OR REPLACE TRIGGER tandem_tombstone {when} DELETE ON {q} FOR EACH ROW EXECUTE FUNCTION {f}()"
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

#[cfg(test)]
#[path = "setup_tests.rs"]
mod tests;
