//! PostgreSQL catalog queries: the one reader of a table's columns, types and keys on PostgreSQL
//! ([`read_table`]), used on their own sessions by `check`, the applier, the initial copy and verify.

use std::collections::BTreeMap;

use tokio_postgres::Client;

use super::{CatalogError, ForeignKey, Generator, GeneratorKind, TableExtras, TableGenerators};
use crate::config::Node;
use crate::model::schema::{parse_postgres, ColumnSchema, TableSchema};
use crate::model::TableRef;

const COLUMNS: &str = "
SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,
       (a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> ''),
       CASE WHEN t.typtype = 'e' THEN
         (SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid)
       WHEN et.typtype = 'e' THEN
         (SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = et.oid)
       END,
       format_type(a.atttypid, NULL), a.atttypid, a.attidentity = 'a', a.attgenerated <> '',
       CASE WHEN t.typlen = -1 THEN et.typdelim::text END
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typelem <> 0
WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum";

const KEYS: &str = "
SELECT i.indisprimary, array_agg(a.attname::text ORDER BY k.ord)
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
WHERE n.nspname = $1 AND c.relname = $2 AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
GROUP BY i.indexrelid, i.indisprimary";

/// Every column's sequence: the one its default calls `nextval` on (serial, or a hand-written
/// default) and the one behind an identity column.
const GENERATORS: &str = "
SELECT a.attname::text, quote_ident(sn.nspname) || '.' || quote_ident(sq.relname), s.seqincrement
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL (
  SELECT d.refobjid AS seq FROM pg_attrdef ad
  JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid
   AND d.refclassid = 'pg_class'::regclass
  JOIN pg_class sc ON sc.oid = d.refobjid AND sc.relkind = 'S'
  WHERE ad.adrelid = a.attrelid AND ad.adnum = a.attnum
  UNION
  SELECT d.objid FROM pg_depend d
  JOIN pg_class sc ON sc.oid = d.objid AND sc.relkind = 'S'
  WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
    AND d.refobjid = a.attrelid AND d.refobjsubid = a.attnum AND d.deptype = 'i'
) q
JOIN pg_sequence s ON s.seqrelid = q.seq
JOIN pg_class sq ON sq.oid = q.seq
JOIN pg_namespace sn ON sn.oid = sq.relnamespace
WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum";

/// The sequences behind `table`'s columns, each with the value its next `nextval` returns and the
/// column's largest value.
pub async fn read_table_generators(
    client: &Client,
    table: &TableRef,
) -> Result<Vec<Generator>, tokio_postgres::Error> {
    use crate::connect::quote::postgres::ident as q;
    let mut out = Vec::new();
    for r in client
        .query(GENERATORS, &[&&*table.schema, &&*table.name])
        .await?
    {
        let column: String = r.try_get(0)?;
        let name: String = r.try_get(1)?;
        let increment: i64 = r.try_get(2)?;
        // The name as the server quotes it (`quote_ident`), schema-qualified.
        let state = client
            .query_one(&format!("SELECT last_value, is_called FROM {name}"), &[])
            .await?;
        let (last, called): (i64, bool) = (state.try_get(0)?, state.try_get(1)?);
        let max = client
            .query_one(
                &format!(
                    "SELECT max({})::text FROM {}.{}",
                    q(&column),
                    q(&table.schema),
                    q(&table.name)
                ),
                &[],
            )
            .await?;
        let max: Option<String> = max.try_get(0)?;
        out.push(Generator {
            column,
            kind: GeneratorKind::Sequence {
                name,
                increment,
                next: if called {
                    last.saturating_add(increment)
                } else {
                    last
                },
            },
            max: max.and_then(|m| m.parse().ok()),
        });
    }
    Ok(out)
}

/// A session of the catalog's own on `node`, and the task that drives its connection.
async fn connect(node: &Node) -> Result<(Client, tokio::task::JoinHandle<()>), CatalogError> {
    let (client, conn) = crate::connect::postgres(node.url.expose())
        .await
        .map_err(|e| CatalogError::Connect {
            node: node.id.clone(),
            detail: e.to_string(),
        })?;
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok((client, task))
}

pub(super) async fn read_generators(
    node: &Node,
    tables: &[TableRef],
) -> Result<TableGenerators, CatalogError> {
    let read = each_table(node, tables, read_table_generators).await?;
    Ok(read.into_iter().filter(|(_, g)| !g.is_empty()).collect())
}

/// Runs `read` for each of `tables`, in order, on one session of the catalog's own on `node`; a
/// failure is the server's own message.
async fn each_table<T>(
    node: &Node,
    tables: &[TableRef],
    read: impl AsyncFn(&Client, &TableRef) -> Result<T, tokio_postgres::Error>,
) -> Result<Vec<(TableRef, T)>, CatalogError> {
    let (client, task) = connect(node).await?;
    let mut out = Vec::with_capacity(tables.len());
    for t in tables {
        let value = read(&client, t).await.map_err(|e| CatalogError::Query {
            node: node.id.clone(),
            detail: e
                .as_db_error()
                .map_or_else(|| e.to_string(), |d| d.message().to_string()),
        })?;
        out.push((t.clone(), value));
    }
    drop(client);
    let _ = task.await;
    Ok(out)
}

/// `table` as the catalog declares it, read on `client`'s session (inside whatever transaction or
/// snapshot it has open); `None` when there is no such table.
pub async fn read_table(
    client: &Client,
    table: &TableRef,
) -> Result<Option<TableSchema>, tokio_postgres::Error> {
    let rows = client
        .query(COLUMNS, &[&&*table.schema, &&*table.name])
        .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut columns = Vec::with_capacity(rows.len());
    for r in &rows {
        let declared: String = r.try_get(1)?;
        let labels: Option<Vec<String>> = r.try_get(4)?;
        let delim: Option<String> = r.try_get(9)?;
        columns.push(ColumnSchema {
            name: r.try_get(0)?,
            ty: parse_postgres(&declared, labels),
            declared,
            nullable: r.try_get(2)?,
            has_default: r.try_get(3)?,
            charset: None,
            base: r.try_get(5)?,
            type_oid: Some(r.try_get(6)?),
            identity_always: r.try_get(7)?,
            generated: r.try_get(8)?,
            array_delim: delim.and_then(|d| d.chars().next()).unwrap_or(','),
        });
    }
    let mut schema = TableSchema {
        table: table.clone(),
        columns,
        primary_key: Vec::new(),
        unique_keys: Vec::new(),
    };
    for r in client
        .query(KEYS, &[&&*table.schema, &&*table.name])
        .await?
    {
        let primary: bool = r.try_get(0)?;
        let cols: Vec<String> = r.try_get(1)?;
        if primary {
            schema.primary_key = cols;
        } else {
            schema.unique_keys.push(cols);
        }
    }
    Ok(Some(schema))
}

pub(super) async fn read_tables(
    node: &Node,
    tables: &[TableRef],
) -> Result<BTreeMap<TableRef, Option<TableSchema>>, CatalogError> {
    Ok(each_table(node, tables, read_table)
        .await?
        .into_iter()
        .collect())
}

pub(super) async fn sample_json(
    node: &Node,
    table: &TableRef,
    limit: u32,
) -> Result<Vec<String>, CatalogError> {
    let (client, task) = connect(node).await?;
    use crate::connect::quote::postgres::ident as q;
    let sql = format!(
        // `t.*`: the alias's whole row even when the table has a column named `t`.
        "SELECT row_to_json(t.*)::text FROM {}.{} t LIMIT {limit}",
        q(&table.schema),
        q(&table.name)
    );
    let rows = client
        .query(&sql, &[])
        .await
        .map_err(|e| CatalogError::Query {
            node: node.id.clone(),
            // The server's own message, not the driver's bare "db error".
            detail: e
                .as_db_error()
                .map_or_else(|| e.to_string(), |d| d.message().to_string()),
        })?;
    drop(client);
    let _ = task.await;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Every column's default (the sequence calls of serial columns included) and comment, and the
/// table's comment.
const EXTRAS_COLUMNS: &str = "
SELECT a.attname::text, pg_get_expr(d.adbin, d.adrelid), col_description(c.oid, a.attnum),
       obj_description(c.oid, 'pg_class')
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum";

const FOREIGN_KEYS: &str = "
SELECT con.conname::text, rn.nspname::text, rc.relname::text,
  (SELECT array_agg(a.attname::text ORDER BY k.ord) FROM unnest(con.conkey) WITH ORDINALITY k(n, ord)
   JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n),
  (SELECT array_agg(a.attname::text ORDER BY k.ord) FROM unnest(con.confkey) WITH ORDINALITY k(n, ord)
   JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n),
  con.confdeltype::text, con.confupdtype::text
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class rc ON rc.oid = con.confrelid
JOIN pg_namespace rn ON rn.oid = rc.relnamespace
WHERE con.contype = 'f' AND n.nspname = $1 AND c.relname = $2
ORDER BY con.conname";

/// `pg_constraint.confdeltype` / `confupdtype` in SQL words.
fn action(code: &str) -> String {
    match code {
        "r" => "RESTRICT",
        "c" => "CASCADE",
        "n" => "SET NULL",
        "d" => "SET DEFAULT",
        _ => "NO ACTION",
    }
    .to_string()
}

async fn table_extras(
    client: &Client,
    table: &TableRef,
) -> Result<Option<TableExtras>, tokio_postgres::Error> {
    let rows = client
        .query(EXTRAS_COLUMNS, &[&&*table.schema, &&*table.name])
        .await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let mut extras = TableExtras {
        comment: first.try_get(3)?,
        ..TableExtras::default()
    };
    for r in &rows {
        let column: String = r.try_get(0)?;
        if let Some(default) = r.try_get::<_, Option<String>>(1)? {
            extras.defaults.insert(column.clone(), default);
        }
        if let Some(comment) = r.try_get::<_, Option<String>>(2)? {
            extras.comments.insert(column, comment);
        }
    }
    for r in client
        .query(FOREIGN_KEYS, &[&&*table.schema, &&*table.name])
        .await?
    {
        let (schema, name): (String, String) = (r.try_get(1)?, r.try_get(2)?);
        extras.foreign_keys.push(ForeignKey {
            name: r.try_get(0)?,
            references: TableRef::new(&schema, &name),
            columns: r.try_get(3)?,
            ref_columns: r.try_get(4)?,
            on_delete: action(r.try_get(5)?),
            on_update: action(r.try_get(6)?),
        });
    }
    Ok(Some(extras))
}

pub(super) async fn read_extras(
    node: &Node,
    tables: &[TableRef],
) -> Result<BTreeMap<TableRef, TableExtras>, CatalogError> {
    let read = each_table(node, tables, table_extras).await?;
    Ok(read
        .into_iter()
        .filter_map(|(t, e)| Some((t, e?)))
        .collect())
}
