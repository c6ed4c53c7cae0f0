//! The demo's schemas and its scripted edits, each followed until the other side shows it.

use std::future::Future;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;

use super::{step, DemoError, Links};
use crate::harness::{MariaDb, PgServer};

const DEADLINE: Duration = Duration::from_secs(30);

type Row = (i64, String, String, String);

pub(super) async fn create_schemas(pg: &PgServer, maria: &MariaDb) -> Result<(), DemoError> {
    pg.connect("crm")
        .await?
        .batch_execute(
            "CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, status text NOT NULL)",
        )
        .await
        .map_err(|e| step("creating the CRM table")(e.to_string()))?;
    let mut conn = maria.connect("desk").await?;
    conn.query_drop(
        "CREATE TABLE clients (client_id int PRIMARY KEY, full_name varchar(200) NOT NULL, status_code tinyint NOT NULL)",
    )
    .await
    .map_err(|e| step("creating the help desk table")(e.to_string()))?;
    let _ = conn.disconnect().await;
    println!(
        "   crm:      customers (id, name, status text: 'Approved', 'Pending review', 'Closed')"
    );
    println!("   helpdesk: clients (client_id, full_name, status_code tinyint: 1, 2, 3)");
    Ok(())
}

async fn crm(pg: &PgServer, sql: &str) -> Result<(), DemoError> {
    println!("\n   crm> {sql}");
    pg.connect("crm")
        .await?
        .batch_execute(sql)
        .await
        .map_err(|e| step("a CRM edit")(e.to_string()))
}

async fn helpdesk(maria: &MariaDb, sql: &str) -> Result<(), DemoError> {
    println!("\n   helpdesk> {sql}");
    let mut c = maria.connect("desk").await?;
    let r = c
        .query_drop(sql)
        .await
        .map_err(|e| step("a help desk edit")(e.to_string()));
    let _ = c.disconnect().await;
    r
}

async fn crm_rows(pg: &PgServer) -> Result<Vec<Row>, DemoError> {
    let rows = pg
        .connect("crm")
        .await?
        .query(
            "SELECT id::bigint, name, status, _tandem_origin FROM customers ORDER BY id",
            &[],
        )
        .await
        .map_err(|e| step("reading the CRM")(e.to_string()))?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect())
}

async fn helpdesk_rows(maria: &MariaDb) -> Result<Vec<Row>, DemoError> {
    let mut c = maria.connect("desk").await?;
    let rows: Vec<(i64, String, i64, String)> = c
        .query("SELECT client_id, full_name, status_code, _tandem_origin FROM clients ORDER BY client_id")
        .await
        .map_err(|e| step("reading the help desk")(e.to_string()))?;
    let _ = c.disconnect().await;
    Ok(rows
        .into_iter()
        .map(|(id, n, s, o)| (id, n, s.to_string(), o))
        .collect())
}

/// Polls `check` until it holds, or fails the demo after the deadline.
async fn until<F, Fut>(what: &str, mut check: F) -> Result<(), DemoError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, DemoError>>,
{
    let start = Instant::now();
    while !check().await? {
        if start.elapsed() > DEADLINE {
            return Err(step(what)(format!(
                "not seen within {} s",
                DEADLINE.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn show(label: &str, rows: &[Row]) {
    println!("   {label}:");
    if rows.is_empty() {
        println!("     (no rows)");
    }
    for (id, name, status, origin) in rows {
        println!("     {id:>3}  {name:<28} {status:<16} origin={origin}");
    }
}

async fn show_both(pg: &PgServer, maria: &MariaDb) -> Result<(), DemoError> {
    show("crm.customers", &crm_rows(pg).await?);
    show("helpdesk.clients", &helpdesk_rows(maria).await?);
    Ok(())
}

/// The two tables hold the same records (through the mapping).
async fn converged(pg: &PgServer, maria: &MariaDb) -> Result<bool, DemoError> {
    let code = |s: &str| match s {
        "Approved" => "1",
        "Pending review" => "2",
        "Closed" => "3",
        _ => "?",
    };
    let a: Vec<(i64, String, String)> = crm_rows(pg)
        .await?
        .into_iter()
        .map(|(i, n, s, _)| (i, n, code(&s).to_string()))
        .collect();
    let b: Vec<(i64, String, String)> = helpdesk_rows(maria)
        .await?
        .into_iter()
        .map(|(i, n, s, _)| (i, n, s))
        .collect();
    Ok(a == b)
}

/// Whether each node has recorded its side of the conflict (the nodes can agree on the row before
/// the losing edit has reached the node whose edit won).
async fn both_recorded(pg: &PgServer, maria: &MariaDb) -> Result<bool, DemoError> {
    let sql = "SELECT COUNT(*) FROM tandem.conflict";
    let on_crm: i64 = pg
        .connect("crm")
        .await?
        .query_one(sql, &[])
        .await
        .map_err(|e| step("reading conflicts")(e.to_string()))?
        .get(0);
    let mut c = maria.connect("desk").await?;
    let on_desk: Option<i64> = c
        .query_first(sql)
        .await
        .map_err(|e| step("reading conflicts")(e.to_string()))?;
    let _ = c.disconnect().await;
    Ok(on_crm > 0 && on_desk.unwrap_or(0) > 0)
}

async fn print_conflicts(pg: &PgServer, maria: &MariaDb) -> Result<(), DemoError> {
    let sql = "SELECT link, kind, decision, rule, row_key FROM tandem.conflict ORDER BY id";
    for r in pg
        .connect("crm")
        .await?
        .query(sql, &[])
        .await
        .map_err(|e| step("reading conflicts")(e.to_string()))?
    {
        let (link, kind, decision, rule, key): (String, String, String, String, String) =
            (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
        println!("     on crm:      {kind} for key {key} (link {link}): {decision} by rule {rule}");
    }
    let mut c = maria.connect("desk").await?;
    let rows: Vec<(String, String, String, String, String)> = c
        .query(sql)
        .await
        .map_err(|e| step("reading conflicts")(e.to_string()))?;
    let _ = c.disconnect().await;
    for (link, kind, decision, rule, key) in rows {
        println!("     on helpdesk: {kind} for key {key} (link {link}): {decision} by rule {rule}");
    }
    Ok(())
}

pub(super) async fn run(
    pg: &PgServer,
    maria: &MariaDb,
    links: &mut Links,
) -> Result<(), DemoError> {
    println!(
        "\n== 1. a new customer in the CRM reaches the help desk, its status label becoming a code"
    );
    crm(
        pg,
        "INSERT INTO customers VALUES (1, 'Ada Lovelace', 'Approved')",
    )
    .await?;
    until("customer 1 on the help desk", || async {
        Ok(helpdesk_rows(maria).await?.iter().any(|r| r.0 == 1))
    })
    .await?;
    show_both(pg, maria).await?;

    println!("\n== 2. a new client in the help desk reaches the CRM, its code becoming a label");
    helpdesk(maria, "INSERT INTO clients VALUES (2, 'Grace Hopper', 2)").await?;
    until("client 2 in the CRM", || async {
        Ok(crm_rows(pg).await?.iter().any(|r| r.0 == 2))
    })
    .await?;
    show_both(pg, maria).await?;

    println!("\n== 3. the help desk approves client 2 (a row tandem wrote, edited locally: it replicates)");
    helpdesk(
        maria,
        "UPDATE clients SET status_code = 1 WHERE client_id = 2",
    )
    .await?;
    until("the approval in the CRM", || async {
        Ok(crm_rows(pg)
            .await?
            .iter()
            .any(|r| r.0 == 2 && r.2 == "Approved"))
    })
    .await?;
    show_both(pg, maria).await?;

    println!("\n== 4. a conflict: both sides edit customer 1 while replication is paused");
    links.stop().await;
    crm(pg, "UPDATE customers SET name = 'Ada King' WHERE id = 1").await?;
    tokio::time::sleep(Duration::from_millis(20)).await; // the help desk's edit is the later one
    helpdesk(
        maria,
        "UPDATE clients SET full_name = 'Ada, Countess of Lovelace' WHERE client_id = 1",
    )
    .await?;
    println!("   resuming replication; each side sees the other's edit conflict with its own");
    links.restart().await;
    until("both sides to agree on customer 1", || converged(pg, maria)).await?;
    until("both sides to record the conflict", || {
        both_recorded(pg, maria)
    })
    .await?;
    println!(
        "   resolved by last_write_wins: the later edit (the help desk's) wins on both sides:"
    );
    print_conflicts(pg, maria).await?;
    show_both(pg, maria).await?;

    println!("\n== 5. the CRM deletes customer 2; the delete follows (deletes = \"propagate\")");
    crm(pg, "DELETE FROM customers WHERE id = 2").await?;
    until("the delete on the help desk", || async {
        Ok(!helpdesk_rows(maria).await?.iter().any(|r| r.0 == 2))
    })
    .await?;
    show_both(pg, maria).await?;
    Ok(())
}
