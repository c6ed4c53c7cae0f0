//! Fixtures for the apply tests: shared throwaway servers, one database and bookkeeping schema per
//! test, a small portable query helper, and builders for synthetic source transactions.
#![allow(dead_code)]

use mysql_async::prelude::Queryable;
use tandem::apply::{self, Applier};
use tandem::config::Config;
use tandem::harness::{MariaDb, PgServer};
use tandem::model::{
    BinlogPosition, Change, ChangeSet, Field, ImageKind, LoopMarks, Lsn, Op, PgPosition, Position,
    RowImage, TableRef, Transaction, Value,
};
use tokio::sync::OnceCell;

use crate::support::unique_name;

static PG: OnceCell<PgServer> = OnceCell::const_new();
static MARIA: OnceCell<MariaDb> = OnceCell::const_new();

pub async fn pg() -> &'static PgServer {
    PG.get_or_init(|| async { PgServer::start().await.expect("PostgreSQL starts") })
        .await
}

pub async fn maria() -> &'static MariaDb {
    MARIA
        .get_or_init(|| async { MariaDb::start().await.expect("MariaDB starts") })
        .await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pg,
    My,
}

/// A client session on one test database.
pub enum Db {
    Pg(tokio_postgres::Client),
    My(mysql_async::Conn),
}

impl Db {
    pub async fn open(kind: Kind, db: &str) -> Db {
        match kind {
            Kind::Pg => Db::Pg(pg().await.connect(db).await.expect("connect")),
            Kind::My => Db::My(maria().await.connect(db).await.expect("connect")),
        }
    }

    pub async fn exec(&mut self, sql: &str) {
        match self {
            Db::Pg(c) => c
                .batch_execute(sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e:?}")),
            Db::My(c) => c
                .query_drop(sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
        }
    }

    /// Every row of a query, every value as text.
    pub async fn rows(&mut self, sql: &str) -> Vec<Vec<Option<String>>> {
        match self {
            Db::Pg(c) => c
                .simple_query(sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
                .into_iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => {
                        Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
                    }
                    _ => None,
                })
                .collect(),
            Db::My(c) => {
                let rows: Vec<mysql_async::Row> =
                    c.query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
                rows.into_iter()
                    .map(|r| {
                        (0..r.len())
                            .map(|i| match r.as_ref(i) {
                                Some(mysql_async::Value::NULL) | None => None,
                                Some(mysql_async::Value::Bytes(b)) => {
                                    Some(String::from_utf8_lossy(b).into_owned())
                                }
                                Some(v) => Some(v.as_sql(true).trim_matches('\'').to_string()),
                            })
                            .collect()
                    })
                    .collect()
            }
        }
    }

    pub async fn one(&mut self, sql: &str) -> Option<String> {
        self.rows(sql)
            .await
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next().flatten())
    }
}

/// One test's target node: a fresh database with a `customer` table (and `orders`), tandem set up.
pub struct Fixture {
    pub kind: Kind,
    pub db_name: String,
    pub schema: String,
    pub config: Config,
    pub db: Db,
    /// The source node's id (`SOURCE` unless the test needs its own).
    pub source: String,
}

pub const TARGET: &str = "t";
pub const SOURCE: &str = "s";

const CUSTOMER: &str =
    "CREATE TABLE customer (id INT PRIMARY KEY, name VARCHAR(20), email VARCHAR(40), \
    deleted_at TIMESTAMP NULL, gone BOOLEAN NOT NULL DEFAULT FALSE)";
const TYPED_PG: &str = "CREATE TABLE typed (id INT PRIMARY KEY, b BOOLEAN, i BIGINT, f DOUBLE PRECISION, \
    d NUMERIC(12,3), t TEXT, bin BYTEA, j JSONB, u UUID, dt DATE, tm TIME, ts TIMESTAMP, tz TIMESTAMPTZ)";
const TYPED_MY: &str = "CREATE TABLE typed (id INT PRIMARY KEY, b BOOLEAN, i BIGINT, f DOUBLE, \
    d DECIMAL(12,3), t TEXT, bin VARBINARY(16), j JSON, u CHAR(36), dt DATE, tm TIME(6), ts DATETIME(6), tz TIMESTAMP(6) NULL)";
const ORDERS: &str =
    "CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT, total NUMERIC(10,2))";

impl Fixture {
    /// `table_extra` is added to the customer table's `[[tables]]` section (`conflict = "merge"`).
    /// `target_priority` is the target node's priority (the source's is 0).
    pub async fn new(kind: Kind, table_extra: &str, target_priority: i32) -> Fixture {
        Self::with_source(kind, table_extra, target_priority, SOURCE).await
    }

    /// A fixture whose source node has its own id (replication origins are server-wide).
    pub async fn with_source(
        kind: Kind,
        table_extra: &str,
        target_priority: i32,
        source: &str,
    ) -> Fixture {
        let server = match kind {
            Kind::Pg => None,
            Kind::My => Some(maria().await),
        };
        Self::build(kind, table_extra, target_priority, source, server).await
    }

    /// A MySQL/MariaDB fixture on `server` instead of the shared one (a server started with
    /// settings of its own).
    pub async fn on_maria(server: &MariaDb) -> Fixture {
        Self::build(Kind::My, "", 0, SOURCE, Some(server)).await
    }

    async fn build(
        kind: Kind,
        table_extra: &str,
        target_priority: i32,
        source: &str,
        maria: Option<&MariaDb>,
    ) -> Fixture {
        let db_name = unique_name("ap");
        let schema = unique_name("tk");
        let (url, other, target_table, source_table) = match kind {
            Kind::Pg => {
                pg().await
                    .create_database(&db_name)
                    .await
                    .expect("create db");
                (
                    pg().await.url(&db_name),
                    "mysql://root@127.0.0.1:9/src".to_string(),
                    "public".to_string(),
                    "src".to_string(),
                )
            }
            Kind::My => {
                let maria = maria.expect("a MariaDB server for a MySQL fixture");
                maria.create_database(&db_name).await.expect("create db");
                (
                    maria.url(&db_name),
                    "postgres://postgres@127.0.0.1:9/src".to_string(),
                    db_name.clone(),
                    "public".to_string(),
                )
            }
        };
        let text = format!(
            r#"
[tandem]
schema = "{schema}"
[nodes.{TARGET}]
url = "{url}"
priority = {target_priority}
[nodes.{source}]
url = "{other}"

[[tables]]
name = "customer"
key = ["id"]
on = {{ {TARGET} = "{target_table}.customer", {source} = "{source_table}.customer" }}
{table_extra}

[[tables]]
name = "orders"
key = ["id"]
on = {{ {TARGET} = "{target_table}.orders", {source} = "{source_table}.orders" }}

[[tables]]
name = "typed"
key = ["id"]
on = {{ {TARGET} = "{target_table}.typed", {source} = "{source_table}.typed" }}
"#
        );
        let (config, _) = Config::from_str_with_env(&text, "test.toml", &|_| None)
            .unwrap_or_else(|e| panic!("test config: {:?}", e.problems));
        let mut db = match kind {
            Kind::Pg => Db::open(kind, &db_name).await,
            Kind::My => Db::My(
                maria
                    .expect("a MariaDB server for a MySQL fixture")
                    .connect(&db_name)
                    .await
                    .expect("connect"),
            ),
        };
        db.exec(CUSTOMER).await;
        db.exec(ORDERS).await;
        db.exec(if kind == Kind::Pg { TYPED_PG } else { TYPED_MY })
            .await;
        apply::setup(&config, TARGET, false)
            .await
            .expect("setup runs");
        Fixture {
            kind,
            db_name,
            schema,
            config,
            db,
            source: source.to_string(),
        }
    }

    pub async fn applier(&self) -> Applier {
        Applier::connect(&self.config, &self.source, TARGET)
            .await
            .expect("applier connects")
    }

    /// Applies the source's insert of customer 1 (`ann`, version 10) with `a`, then edits the row
    /// locally on the target (`name = 'local'`), so that the source's next change of it conflicts.
    pub async fn replicated_then_edited_locally(&mut self, a: &mut Applier) {
        let insert = self.tx(
            1,
            vec![self.change(
                Op::Insert,
                None,
                Some(customer(1, "ann", "a@x", 10, SOURCE)),
            )],
        );
        a.apply(&[insert]).await.expect("apply");
        self.db
            .exec("UPDATE customer SET name = 'local' WHERE id = 1")
            .await;
    }

    /// The source's physical customer table.
    pub fn source_table(&self, name: &str) -> TableRef {
        match self.kind {
            Kind::Pg => TableRef::new("src", name),
            Kind::My => TableRef::new("public", name),
        }
    }

    /// A source position: binlog offsets for a MySQL source, LSNs for a PostgreSQL one.
    pub fn position(&self, n: u64) -> Position {
        match self.kind {
            Kind::Pg => Position::Binlog(BinlogPosition {
                file: "bin.000001".into(),
                offset: n,
            }),
            Kind::My => Position::Postgres(PgPosition {
                commit_lsn: Lsn(n),
                lsn: Lsn(n),
            }),
        }
    }

    pub fn tx(&self, n: u64, changes: Vec<Change>) -> Transaction {
        Transaction {
            origin: self.source.as_str().into(),
            position: self.position(n),
            commit_time: 1_700_000_000_000_000 + n as i64,
            xid: None,
            marks: LoopMarks::default(),
            changes: ChangeSet::Memory(changes),
        }
    }

    /// Source transaction `n`: an insert of customer `id` (version 10) whose name is too long for
    /// the target's column, a definite error (the dead-letter tests' usual refusal).
    pub fn too_long_insert(&self, n: u64, id: i32) -> Transaction {
        let long = "x".repeat(30);
        self.tx(
            n,
            vec![self.change(
                Op::Insert,
                None,
                Some(customer(id, &long, "a@x", 10, SOURCE)),
            )],
        )
    }

    pub fn change(&self, op: Op, before: Option<RowImage>, after: Option<RowImage>) -> Change {
        Change {
            table: self.source_table("customer"),
            op,
            before,
            after,
        }
    }

    /// `name, email, version, origin` of customer `id` on the target, as text.
    pub async fn row(&mut self, id: i32) -> Option<Vec<Option<String>>> {
        self.db
            .rows(&format!(
                "SELECT name, email, _tandem_version, _tandem_origin FROM customer WHERE id = {id}"
            ))
            .await
            .into_iter()
            .next()
    }

    /// `(kind, decision, state)` of every conflict record, oldest first.
    pub async fn conflicts(&mut self) -> Vec<(String, String, String)> {
        let q = match self.kind {
            Kind::Pg => format!(
                "SELECT kind, decision, state FROM \"{}\".conflict ORDER BY id",
                self.schema
            ),
            Kind::My => format!(
                "SELECT kind, decision, state FROM `{}`.conflict ORDER BY id",
                self.schema
            ),
        };
        self.db
            .rows(&q)
            .await
            .into_iter()
            .map(|r| {
                let v: Vec<String> = r.into_iter().map(Option::unwrap_or_default).collect();
                (v[0].clone(), v[1].clone(), v[2].clone())
            })
            .collect()
    }

    /// The state of every conflict record, oldest first.
    pub async fn conflict_states(&mut self) -> Vec<String> {
        self.conflicts()
            .await
            .into_iter()
            .map(|(_, _, state)| state)
            .collect()
    }

    pub fn book(&self, table: &str) -> String {
        match self.kind {
            Kind::Pg => format!("\"{}\".{table}", self.schema),
            Kind::My => format!("`{}`.{table}", self.schema),
        }
    }
}

/// A full customer row image as the source sends it (with the source's version and origin).
pub fn customer(id: i32, name: &str, email: &str, version: i64, origin: &str) -> RowImage {
    image(&[
        ("id", Value::Int(i64::from(id))),
        ("name", Value::Text(name.into())),
        ("email", Value::Text(email.into())),
        ("_tandem_version", Value::Int(version)),
        ("_tandem_origin", Value::Text(origin.into())),
    ])
}

pub fn image(fields: &[(&str, Value)]) -> RowImage {
    RowImage::new(
        ImageKind::Full,
        fields
            .iter()
            .map(|(n, v)| Field {
                name: (*n).into(),
                value: v.clone(),
            })
            .collect(),
    )
}
