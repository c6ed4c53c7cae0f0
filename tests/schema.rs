//! `tandem schema` on real servers (#19): Debezium's `inventory` schema on MariaDB created on
//! PostgreSQL with its keys, foreign keys and generators, copied and then written on both sides with
//! default keys; PostgreSQL tables (serial, identity, numeric, timestamptz, text, unique, foreign
//! key, comments, a renamed table and column) created on MariaDB and passing `tandem check`; a
//! column without a lossless counterpart refused by name; `--apply` refusing an existing table.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use tandem::harness::{MariaDb, PgServer};

use crate::support::{
    output_text as text, start_tandem_run, stop_tandem_run, tandem_cli as tandem, wait_for, Pair,
};

const DEADLINE: Duration = Duration::from_secs(90);

/// Panics naming each of `expected` that `found` lacks.
fn assert_has(found: &[String], expected: &[&str]) {
    let missing: Vec<&&str> = expected
        .iter()
        .filter(|e| !found.iter().any(|f| f == *e))
        .collect();
    assert!(missing.is_empty(), "missing {missing:#?} in {found:#?}");
}

/// `tandem schema <args>` on `pair`'s file; panics with its output unless it succeeds.
async fn schema_ok(pair: &Pair, args: &[&str]) -> String {
    let args: Vec<&str> = ["schema"].iter().chain(args).copied().collect();
    let out = tandem(&args, &pair.config).await;
    assert!(
        out.status.success(),
        "tandem {args:?} failed:\n{}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `tandem schema <args>`: its exit code and everything it printed.
async fn schema_code(pair: &Pair, args: &[&str]) -> (Option<i32>, String) {
    let args: Vec<&str> = ["schema"].iter().chain(args).copied().collect();
    let out = tandem(&args, &pair.config).await;
    (out.status.code(), text(&out))
}

const INVENTORY_TABLES: &str = r#"
[copy]
from = "helpdesk"

[[tables]]
name = "products"
key = ["id"]

[[tables]]
name = "products_on_hand"
key = ["product_id"]

[[tables]]
name = "customers"
key = ["id"]

[[tables]]
name = "orders"
key = ["order_number"]
"#;

async fn pg_strings(pg: &PgServer, sql: &str) -> Vec<String> {
    let c = pg.connect("crm").await.unwrap();
    c.query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect()
}

async fn customers_pg(pg: &PgServer) -> Option<Vec<(i64, String)>> {
    let c = pg.connect("crm").await.ok()?;
    let rows = c
        .query("SELECT id::bigint, email FROM customers ORDER BY id", &[])
        .await
        .ok()?;
    Some(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

async fn customers_maria(maria: &MariaDb) -> Option<Vec<(i64, String)>> {
    let mut m = maria.connect("desk").await.ok()?;
    let rows = m
        .query("SELECT id, email FROM customers ORDER BY id")
        .await
        .ok()?;
    let _ = m.disconnect().await;
    Some(rows)
}

async fn insert_pg(pg: &PgServer, n: usize) -> Result<(), String> {
    let c = pg.connect("crm").await.map_err(|e| e.to_string())?;
    c.execute(
        "INSERT INTO customers (first_name, last_name, email) VALUES ('Crm', $1, $2)",
        &[&format!("Round {n}"), &format!("crm{n}@example.com")],
    )
    .await
    .map(|_| ())
    .map_err(|e| format!("{e:?}"))
}

async fn insert_maria(maria: &MariaDb, n: usize) -> Result<(), String> {
    // A new session each time, as an application's pool opened after setup would.
    let mut m = maria.connect("desk").await.map_err(|e| e.to_string())?;
    m.exec_drop(
        "INSERT INTO customers (first_name, last_name, email) VALUES ('Desk', ?, ?)",
        (format!("Round {n}"), format!("desk{n}@example.com")),
    )
    .await
    .map_err(|e| e.to_string())?;
    m.disconnect().await.map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn inventory_from_mariadb_created_on_postgres_copied_and_written_on_both_sides() {
    let s = Pair::create("", include_str!("fixtures/inventory.sql"), INVENTORY_TABLES).await;
    schema_ok(&s, &["--from", "helpdesk", "--to", "crm", "--apply"]).await;

    // Keys, the unique email, and the foreign keys, each to the right table (InnoDB's default
    // action reads as RESTRICT, and is kept).
    let keys = pg_strings(
        &s.pg,
        "SELECT conrelid::regclass::text || ' ' || contype::text || ' ' || pg_get_constraintdef(oid)
         FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1",
    )
    .await;
    assert_has(
        &keys,
        &[
        "customers p PRIMARY KEY (id)",
        "customers u UNIQUE (email)",
        "orders f FOREIGN KEY (purchaser) REFERENCES customers(id) ON UPDATE RESTRICT ON DELETE RESTRICT",
        "orders f FOREIGN KEY (product_id) REFERENCES products(id) ON UPDATE RESTRICT ON DELETE RESTRICT",
        "orders p PRIMARY KEY (order_number)",
        "products p PRIMARY KEY (id)",
        "products_on_hand f FOREIGN KEY (product_id) REFERENCES products(id) ON UPDATE RESTRICT ON DELETE RESTRICT",
        "products_on_hand p PRIMARY KEY (product_id)",
        ],
    );
    // The generators continue where AUTO_INCREMENT stands; the types are the lossless ones.
    let columns = pg_strings(
        &s.pg,
        "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' '
                || coalesce(identity_generation, '-') || ' ' || coalesce(identity_start, '-')
         FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1",
    )
    .await;
    assert_has(
        &columns,
        &[
            "customers.id integer NO BY DEFAULT 1005",
            "customers.email character varying NO - -",
            "orders.order_date date NO - -",
            "orders.order_number integer NO BY DEFAULT 10006",
            "products.id integer NO BY DEFAULT 110",
            "products.description character varying YES - -",
            "products.weight real YES - -",
        ],
    );

    let out = tandem(&["setup"], &s.config).await;
    assert!(out.status.success(), "setup failed:\n{}", text(&out));
    let out = tandem(&["check"], &s.config).await;
    assert!(
        out.status.success(),
        "check refuses what schema created:\n{}",
        text(&out)
    );
    let run = start_tandem_run(&s.config, 2).await;

    // The initial copy brings every row, the two-digit year read as 2016.
    wait_for("the copied rows on PostgreSQL", DEADLINE, || async {
        let n = pg_strings(
            &s.pg,
            "SELECT (SELECT count(*) FROM products) || ' ' || (SELECT count(*) FROM products_on_hand)
                 || ' ' || (SELECT count(*) FROM customers) || ' ' || (SELECT count(*) FROM orders)",
        )
        .await;
        (n == ["9 9 4 5"]).then_some(())
    })
    .await;
    let copied = pg_strings(
        &s.pg,
        "SELECT (SELECT order_date::text FROM orders WHERE order_number = 10005)
             || ' ' || (SELECT weight::text FROM products WHERE id = 101)",
    )
    .await;
    assert_eq!(copied, ["2016-02-21 3.14"]);

    // 10 rounds of simultaneous inserts with default keys on both sides.
    for round in 0..10 {
        let (a, b) = tokio::join!(insert_pg(&s.pg, round), insert_maria(&s.maria, round));
        a.unwrap_or_else(|e| panic!("round {round}: the PostgreSQL insert failed: {e}"));
        b.unwrap_or_else(|e| panic!("round {round}: the MariaDB insert failed: {e}"));
    }
    let rows = wait_for("24 customers, equal on both nodes", DEADLINE, || async {
        let (a, b) = (customers_pg(&s.pg).await?, customers_maria(&s.maria).await?);
        (a.len() == 24 && a == b).then_some(a)
    })
    .await;
    assert_eq!(
        rows.iter().filter(|(_, e)| e.starts_with("crm")).count(),
        10
    );

    // Switching the applications to PostgreSQL loses nothing.
    let out = tandem(
        &["cutover", "--to", "crm", "--settle-timeout", "20"],
        &s.config,
    )
    .await;
    assert!(
        out.status.success() && text(&out).contains("cutover to crm: ready"),
        "cutover to crm is not ready:\n{}",
        text(&out)
    );

    stop_tandem_run(run).await;
}

const PG_ACCOUNTS: &str = "
CREATE TABLE accounts (
  id serial PRIMARY KEY,
  name text NOT NULL,
  email varchar(120) UNIQUE,
  balance numeric(12,2) NOT NULL DEFAULT 0,
  opened timestamptz NOT NULL DEFAULT now(),
  note text DEFAULT 'none'
);
COMMENT ON TABLE accounts IS 'customer accounts';
COMMENT ON COLUMN accounts.email IS 'where the invoices go';
CREATE TABLE payments (
  id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  account_id int NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  amount numeric(12,2) NOT NULL,
  paid_at timestamptz,
  settled boolean NOT NULL DEFAULT true
);
INSERT INTO accounts (name, email) VALUES ('a', 'a@x'), ('b', 'b@x'), ('c', 'c@x');
INSERT INTO payments (account_id, amount) VALUES (1, 9.99), (2, 5);
";

/// Listed before the table it references; `accounts` is `clients` on MariaDB, `name` is `full_name`.
const PG_TABLES: &str = r#"
[[tables]]
name = "payments"
key = ["id"]

[[tables]]
name = "accounts"
key = ["id"]
on = { helpdesk = "clients" }

[[tables.columns]]
name = "name"
on = { helpdesk = "full_name" }
"#;

async fn maria_strings(maria: &MariaDb, sql: &str) -> Vec<String> {
    let mut m = maria.connect("desk").await.unwrap();
    let rows: Vec<String> = m.query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    m.disconnect().await.unwrap();
    rows
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_tables_created_on_mariadb_pass_check() {
    let s = Pair::create(PG_ACCOUNTS, "", PG_TABLES).await;
    let sql = schema_ok(&s, &["--from", "crm", "--to", "helpdesk"]).await;
    let (clients, payments) = (
        sql.find("CREATE TABLE `desk`.`clients`"),
        sql.find("CREATE TABLE `desk`.`payments`"),
    );
    assert!(
        matches!((clients, payments), (Some(c), Some(p)) if c < p),
        "the referenced table is not created first:\n{sql}"
    );
    assert!(
        maria_strings(
            &s.maria,
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'desk'"
        )
        .await
        .is_empty(),
        "schema without --apply created something"
    );

    schema_ok(&s, &["--from", "crm", "--to", "helpdesk", "--apply"]).await;
    let columns = maria_strings(
        &s.maria,
        "SELECT CONCAT_WS(' ', table_name, column_name, column_type, is_nullable, extra,
                          IFNULL(column_default, '-'), IF(column_comment = '', '-', column_comment))
         FROM information_schema.columns WHERE table_schema = 'desk' ORDER BY 1",
    )
    .await;
    assert_has(
        &columns,
        &[
            "clients balance decimal(12,2) NO  0.00 -",
            "clients email varchar(120) YES  NULL where the invoices go",
            "clients full_name longtext NO  - -",
            "clients id int(11) NO auto_increment - -",
            "clients note longtext YES  'none' -",
            "clients opened datetime(6) NO  current_timestamp(6) -",
            "payments account_id int(11) NO  - -",
            "payments id bigint(20) NO auto_increment - -",
            "payments paid_at datetime(6) YES  NULL -",
            "payments settled tinyint(1) NO  1 -",
        ],
    );
    let tables = maria_strings(
        &s.maria,
        "SELECT CONCAT_WS(' ', table_name, auto_increment, IF(table_comment = '', '-', table_comment))
         FROM information_schema.tables WHERE table_schema = 'desk' ORDER BY 1",
    )
    .await;
    assert_eq!(tables, ["clients 4 customer accounts", "payments 3 -"]);
    let keys = maria_strings(
        &s.maria,
        "SELECT CONCAT_WS(' ', k.table_name, k.column_name, k.constraint_name, IFNULL(k.referenced_table_name, '-'),
                          IFNULL(r.delete_rule, '-'))
         FROM information_schema.key_column_usage k
         LEFT JOIN information_schema.referential_constraints r
           ON r.constraint_schema = k.constraint_schema AND r.constraint_name = k.constraint_name
         WHERE k.table_schema = 'desk' ORDER BY 1",
    )
    .await;
    assert_eq!(
        keys,
        [
            "clients email email - -",
            "clients id PRIMARY - -",
            "payments account_id payments_account_id_fkey clients CASCADE",
            "payments id PRIMARY - -",
        ],
        "{keys:#?}"
    );

    // What schema made passes the check that gates `run`, once setup has done its part.
    let out = tandem(&["setup"], &s.config).await;
    assert!(out.status.success(), "setup failed:\n{}", text(&out));
    let out = tandem(&["check"], &s.config).await;
    assert!(
        out.status.success(),
        "check refuses what schema created:\n{}",
        text(&out)
    );
}

const PG_LEDGER: &str = "
CREATE TABLE ledger (id int PRIMARY KEY, amount numeric NOT NULL, label text);
CREATE TABLE items (id int PRIMARY KEY, v text NOT NULL);
";

const LEDGER_TABLES: &str = r#"
[[tables]]
name = "ledger"
key = ["id"]

[[tables]]
name = "items"
key = ["id"]
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_column_without_a_lossless_type_and_an_existing_table_are_refused() {
    let s = Pair::create(
        PG_LEDGER,
        "CREATE TABLE items (id INT PRIMARY KEY, v LONGTEXT NOT NULL)",
        LEDGER_TABLES,
    )
    .await;
    let (code, printed) = schema_code(&s, &["--from", "crm", "--to", "helpdesk"]).await;
    assert_eq!(code, Some(1), "{printed}");
    assert!(
        printed.contains("column amount (numeric on node crm) of table ledger has no lossless counterpart on node helpdesk")
            && printed.contains("decimal(65,30) (")
            && printed.contains("exclude it with tables.exclude = [\"amount\"]"),
        "the refusal does not name the column, its type and the choices:\n{printed}"
    );
    assert!(
        !printed.contains("CREATE TABLE"),
        "SQL printed despite the error:\n{printed}"
    );

    // An existing table is refused before anything is made, on either engine.
    for (from, to, table) in [
        ("crm", "helpdesk", "desk.items"),
        ("helpdesk", "crm", "public.items"),
    ] {
        let args = ["--from", from, "--to", to, "--table", "items", "--apply"];
        let (code, printed) = schema_code(&s, &args).await;
        assert_eq!(code, Some(1), "{printed}");
        assert!(
            printed.contains(&format!("node {to}: table(s) {table} exist already")),
            "{printed}"
        );
    }

    // Usage errors: an unknown node or table.
    let (code, printed) = schema_code(&s, &["--from", "crm", "--to", "nowhere"]).await;
    assert_eq!(code, Some(2), "{printed}");
    let args = ["--from", "crm", "--to", "helpdesk", "--table", "nosuch"];
    let (code, printed) = schema_code(&s, &args).await;
    assert_eq!(code, Some(2), "{printed}");
}
