//! Preparing a PostgreSQL node for capture: prerequisite checks whose errors name the fix, and the
//! idempotent creation of the publication and the per-link replication slots (with a dry run that only
//! returns the SQL it would run).

use std::fmt;

use super::error::PgCaptureError;
use super::tls::{catalog_client, ConnParams};
use crate::model::TableRef;

/// One unmet prerequisite: what is wrong, and what to run or change about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub message: String,
    pub fix: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; fix: {}", self.message, self.fix)
    }
}

/// One outgoing link's replication slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// The slot's name (`crate::names::slot`).
    pub name: String,
    /// The name an earlier version gave it, where different: setup moves that slot's position to
    /// `name` (a copy keeps what the link has not confirmed yet) and drops it.
    pub legacy: Option<String>,
}

impl Slot {
    /// The slot of the link `source` -> `target`, with the name earlier versions gave it.
    pub fn for_link(source: &str, target: &str) -> Slot {
        let name = crate::names::slot(source, target);
        let legacy = crate::names::legacy_slot(source, target);
        Slot {
            legacy: (legacy != name).then_some(legacy),
            name,
        }
    }

    /// A slot no earlier version named otherwise.
    pub fn named(name: &str) -> Slot {
        Slot {
            name: name.to_string(),
            legacy: None,
        }
    }
}

pub use crate::connect::quote::postgres::{ident as quote_ident, literal as quote_literal};

fn qualified(t: &TableRef) -> String {
    format!("{}.{}", quote_ident(&t.schema), quote_ident(&t.name))
}

/// What `forward_replicated = false` would do on this server: nothing before PostgreSQL 16; and
/// from 16 on, leave out what the subscriptions and replication origins other than tandem's
/// write into the node. Each finding is a warning (empty: nothing to say).
pub async fn check_origin_filter(url: &str) -> Vec<Problem> {
    let found = async {
        let c = catalog_client(&ConnParams::parse(url)?).await?;
        let r = c
            .query_one(
                "SELECT current_setting('server_version_num')::int, \
                 (SELECT count(*)::int FROM pg_subscription), \
                 (SELECT string_agg(roname, ', ' ORDER BY roname) FROM pg_replication_origin \
                  WHERE roname NOT LIKE 'tandem\\_%')",
                &[],
            )
            .await?;
        Ok::<_, PgCaptureError>((
            r.try_get::<_, i32>(0)?,
            r.try_get::<_, i32>(1)?,
            r.try_get::<_, Option<String>>(2)?,
        ))
    };
    match found.await {
        Err(e) => vec![Problem {
            message: format!("cannot check what forward_replicated = false would leave out: {e}"),
            fix: "make sure the server is reachable with the configured URL and credentials".into(),
        }],
        Ok((version, _, _)) if version < 160000 => vec![Problem {
            message: "forward_replicated = false changes nothing before PostgreSQL 16 (no origin filter in the server)".into(),
            fix: "remove the key, or upgrade the server to PostgreSQL 16 or later".into(),
        }],
        Ok((_, subscriptions, origins)) if subscriptions > 0 || origins.is_some() => vec![Problem {
            message: format!(
                "forward_replicated = false leaves out what other replication writes into this node \
                 ({subscriptions} subscription(s) in the database; replication origins of the cluster \
                 other than tandem's: {})",
                origins.as_deref().unwrap_or("none")
            ),
            fix: "remove the key (rows replicated into this node are then sent on), or make sure \
                  those rows need not reach the other nodes"
                .into(),
        }],
        Ok(_) => Vec::new(),
    }
}

/// Checks everything capture needs and returns every problem found (empty: ready).
pub async fn check_prerequisites(url: &str, tables: &[TableRef]) -> Vec<Problem> {
    match check(url, tables).await {
        Ok(problems) => problems,
        Err(e) => vec![Problem {
            message: format!("cannot check the PostgreSQL prerequisites: {e}"),
            fix: "make sure the server is reachable with the configured URL and credentials".into(),
        }],
    }
}

async fn check(url: &str, tables: &[TableRef]) -> Result<Vec<Problem>, PgCaptureError> {
    let params = ConnParams::parse(url)?;
    let c = catalog_client(&params).await?;
    let mut problems = Vec::new();
    let r = c
        .query_one(
            "SELECT current_setting('wal_level'), \
             current_setting('max_replication_slots')::int, \
             (SELECT count(*)::int FROM pg_replication_slots), \
             current_setting('max_wal_senders')::int, \
             (SELECT count(*)::int FROM pg_stat_activity WHERE backend_type = 'walsender'), \
             (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user), \
             current_user::text",
            &[],
        )
        .await?;
    let wal_level: String = r.try_get(0)?;
    if wal_level != "logical" {
        problems.push(Problem {
            message: format!("wal_level is {wal_level}, logical replication needs logical"),
            fix: "run ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL".into(),
        });
    }
    let (max_slots, used_slots): (i32, i32) = (r.try_get(1)?, r.try_get(2)?);
    if used_slots >= max_slots {
        problems.push(Problem {
            message: format!("all {max_slots} replication slots are in use (max_replication_slots)"),
            fix: format!(
                "run ALTER SYSTEM SET max_replication_slots = {}; then restart PostgreSQL, or drop unused slots with pg_drop_replication_slot",
                max_slots + 4
            ),
        });
    }
    let (max_senders, used_senders): (i32, i32) = (r.try_get(3)?, r.try_get(4)?);
    if used_senders >= max_senders {
        problems.push(Problem {
            message: format!("all {max_senders} WAL senders are in use (max_wal_senders)"),
            fix: format!(
                "run ALTER SYSTEM SET max_wal_senders = {}; then restart PostgreSQL",
                max_senders + 4
            ),
        });
    }
    let can_replicate: Option<bool> = r.try_get(5)?;
    let user: String = r.try_get(6)?;
    if can_replicate != Some(true) {
        problems.push(Problem {
            message: format!("role {user} lacks the REPLICATION privilege"),
            fix: format!("run ALTER ROLE {} WITH REPLICATION;", quote_ident(&user)),
        });
    }
    for t in tables {
        let rows = c
            .query(
                "SELECT c.relreplident::text, \
                 EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary \
                 AND i.indimmediate AND i.indisvalid) \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')",
                &[&&*t.schema, &&*t.name],
            )
            .await?;
        let Some(row) = rows.first() else {
            problems.push(Problem {
                message: format!("table {t} does not exist"),
                fix: format!("create {t} or remove it from the configuration"),
            });
            continue;
        };
        let ident: String = row.try_get(0)?;
        let has_pk: bool = row.try_get(1)?;
        let identified = match ident.as_str() {
            "f" | "i" => true,
            "d" => has_pk,
            _ => false,
        };
        if !identified {
            problems.push(Problem {
                message: format!(
                    "table {t} has no primary key or replica identity, so its updates and deletes cannot be captured"
                ),
                fix: format!(
                    "run ALTER TABLE {} REPLICA IDENTITY FULL; (or add a primary key)",
                    qualified(t)
                ),
            });
        }
    }
    Ok(problems)
}

/// Creates the publication for `tables` (or adds the missing tables to it) and the logical slots
/// `slots` that do not exist yet. With `dry_run`, runs nothing and returns the statements it would
/// run; otherwise returns the statements it ran. Running it twice runs nothing the second time.
pub async fn setup(
    url: &str,
    publication: &str,
    tables: &[TableRef],
    slots: &[Slot],
    dry_run: bool,
) -> Result<Vec<String>, PgCaptureError> {
    let params = ConnParams::parse(url)?;
    let c = catalog_client(&params).await?;
    let mut sql = Vec::new();
    // `None`: no such publication; `Some(true)`: one `FOR ALL TABLES`, which has every table.
    let all_tables: Option<bool> = c
        .query(
            "SELECT puballtables FROM pg_publication WHERE pubname = $1",
            &[&publication],
        )
        .await?
        .first()
        .map(|r| r.try_get(0))
        .transpose()?;
    if all_tables.is_none() {
        if tables.is_empty() {
            sql.push(format!("CREATE PUBLICATION {}", quote_ident(publication)));
        } else {
            let list: Vec<String> = tables.iter().map(qualified).collect();
            sql.push(format!(
                "CREATE PUBLICATION {} FOR TABLE {}",
                quote_ident(publication),
                list.join(", ")
            ));
        }
    } else if all_tables == Some(false) {
        // The tables named in the publication (a partitioned table is one, while
        // `pg_publication_tables` lists its partitions instead).
        let rows = c
            .query(
                "SELECT n.nspname::text, c.relname::text FROM pg_publication_rel r \
                 JOIN pg_publication p ON p.oid = r.prpubid \
                 JOIN pg_class c ON c.oid = r.prrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace WHERE p.pubname = $1",
                &[&publication],
            )
            .await?;
        let mut published = Vec::new();
        for r in &rows {
            let (s, n): (String, String) = (r.try_get(0)?, r.try_get(1)?);
            published.push(TableRef::new(&s, &n));
        }
        let missing: Vec<String> = tables
            .iter()
            .filter(|t| !published.contains(t))
            .map(qualified)
            .collect();
        if !missing.is_empty() {
            sql.push(format!(
                "ALTER PUBLICATION {} ADD TABLE {}",
                quote_ident(publication),
                missing.join(", ")
            ));
        }
    }
    sql.extend(slot_statements(&c, slots).await?);
    if !dry_run {
        for s in &sql {
            tracing::info!(statement = %s, "postgres setup");
            c.batch_execute(s).await?;
        }
    }
    Ok(sql)
}

/// Refuses to stream a link whose slot an earlier version made under another name while the new
/// one does not exist yet: the stream would create the new slot at the current end of the WAL and
/// skip what the earlier slot still holds for the link. `tandem setup` moves it.
pub async fn check_slot_moved(url: &str, slot: &Slot) -> Result<(), PgCaptureError> {
    let Some(legacy) = &slot.legacy else {
        return Ok(());
    };
    let c = catalog_client(&ConnParams::parse(url)?).await?;
    let rows = c
        .query(
            "SELECT slot_name::text FROM pg_replication_slots WHERE slot_name = ANY($1)",
            &[&vec![slot.name.clone(), legacy.clone()]],
        )
        .await?;
    let names: Vec<String> = rows
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    if names.contains(legacy) && !names.contains(&slot.name) {
        return Err(PgCaptureError::Prerequisite(format!(
            "replication slot {legacy} was made by an earlier tandem under a name this one no \
             longer uses; run `tandem setup` to move it to {} (it keeps its position)",
            slot.name
        )));
    }
    Ok(())
}

/// The statements that create the missing slots, copying a slot an earlier version made under
/// another name (its confirmed position is where the link's unconfirmed changes start), then dropping
/// those earlier slots that no link uses any more. An earlier slot in use by a running reader is an
/// error: that reader would go on confirming positions the copy does not see.
async fn slot_statements(
    c: &tokio_postgres::Client,
    slots: &[Slot],
) -> Result<Vec<String>, PgCaptureError> {
    let mut existing = std::collections::BTreeMap::new();
    for r in c
        .query(
            "SELECT slot_name::text, active FROM pg_replication_slots WHERE slot_type = 'logical'",
            &[],
        )
        .await?
    {
        let (name, active): (String, bool) = (r.try_get(0)?, r.try_get(1)?);
        existing.insert(name, active);
    }
    let mut sql = Vec::new();
    let mut copied: Vec<&str> = Vec::new();
    for slot in slots.iter().filter(|s| !existing.contains_key(&s.name)) {
        let legacy = slot.legacy.as_deref().filter(|l| existing.contains_key(*l));
        match legacy {
            Some(l) if existing.get(l) == Some(&true) => {
                return Err(PgCaptureError::Prerequisite(format!(
                    "replication slot {l} is in use; stop the tandem that reads it, then run setup again \
                     (setup renames it to {}, keeping its position)",
                    slot.name
                )))
            }
            Some(l) => {
                sql.push(format!(
                    "SELECT pg_copy_logical_replication_slot({}, {})",
                    quote_literal(l),
                    quote_literal(&slot.name)
                ));
                if !copied.contains(&l) {
                    copied.push(l);
                }
            }
            None => sql.push(format!(
                "SELECT pg_create_logical_replication_slot({}, 'pgoutput')",
                quote_literal(&slot.name)
            )),
        }
    }
    for l in copied
        .into_iter()
        .filter(|l| slots.iter().all(|s| s.name != *l))
    {
        sql.push(format!(
            "SELECT pg_drop_replication_slot({})",
            quote_literal(l)
        ));
    }
    Ok(sql)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
