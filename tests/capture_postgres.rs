//! PostgreSQL capture against a real server: value round trips, TOAST, transaction boundaries,
//! rollbacks, spilling, acknowledgement, and resuming after lost connections and restarts.

pub use std::time::Duration;

pub use tandem::capture::postgres::{check_prerequisites, setup, PgSource, PgSourceOptions, Slot};
pub use tandem::capture::CaptureEvent;
pub use tandem::harness::{PgOptions, PgServer};
pub use tandem::model::{Change, ChangeSet, Lsn, Op, Position, TableRef, Transaction, Value};

pub use crate::support::unique_name;

mod ack;
mod prepare;
mod resume;
mod streaming;
mod values;

pub const DEADLINE: Duration = Duration::from_secs(60);

pub struct Fixture {
    pub pg: PgServer,
    pub db: String,
    pub client: tokio_postgres::Client,
}

impl Fixture {
    pub async fn start() -> Fixture {
        Self::start_with(PgOptions::default()).await
    }

    pub async fn start_with(options: PgOptions) -> Fixture {
        let pg = PgServer::start_with(options)
            .await
            .expect("PostgreSQL starts");
        let db = unique_name("cap");
        pg.create_database(&db).await.expect("create database");
        let client = pg.connect(&db).await.expect("connect");
        Fixture { pg, db, client }
    }

    pub fn url(&self) -> String {
        self.pg.url(&self.db)
    }

    pub async fn sql(&self, sql: &str) {
        self.client
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Publishes `tables` and opens a source on a fresh slot.
    pub async fn source(&self, tables: &[&str], budget: usize) -> PgSource {
        self.source_with(tables, budget, |_| {}).await
    }

    /// [`Fixture::source`] with `tweak` applied to the options first.
    pub async fn source_with(
        &self,
        tables: &[&str],
        budget: usize,
        tweak: impl FnOnce(&mut PgSourceOptions),
    ) -> PgSource {
        let tables: Vec<TableRef> = tables.iter().map(|t| TableRef::new("public", t)).collect();
        let slot = unique_name("tandem_link");
        setup(
            &self.url(),
            "tandem_pub",
            &tables,
            &[Slot::named(&slot)],
            false,
        )
        .await
        .expect("setup");
        let mut opts = options(&self.url(), &slot, tables, budget, None);
        tweak(&mut opts);
        PgSource::connect(opts).await.expect("source connects")
    }

    pub async fn walsender_pids(&self) -> Vec<i32> {
        self.client
            .query(
                "SELECT pid FROM pg_stat_replication WHERE application_name = 'tandem'",
                &[],
            )
            .await
            .expect("pg_stat_replication")
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    pub async fn confirmed_flush(&self, slot: &str) -> Lsn {
        let row = self
            .client
            .query_one(
                "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await
            .expect("slot row");
        row.get::<_, String>(0).parse().expect("an LSN")
    }
}

pub fn options(
    url: &str,
    slot: &str,
    tables: Vec<TableRef>,
    budget: usize,
    start: Option<Position>,
) -> PgSourceOptions {
    PgSourceOptions {
        node: "crm".into(),
        url: url.to_owned(),
        slot: slot.to_owned(),
        publication: "tandem_pub".into(),
        temporary_slot: false,
        tables,
        memory_budget_bytes: budget,
        spill_dir: std::env::temp_dir().join("tandem-capture-tests"),
        drop_applied: false,
        origin_none: false,
        start,
    }
}

/// The next transaction, skipping heartbeats.
pub async fn next_txn(src: &mut PgSource) -> Transaction {
    tokio::time::timeout(DEADLINE, async {
        loop {
            match src.next().await.expect("stream") {
                CaptureEvent::Transaction(t) => return t,
                CaptureEvent::Heartbeat(_) => {}
            }
        }
    })
    .await
    .expect("a transaction within the deadline")
}

pub fn changes(t: &Transaction) -> Vec<Change> {
    t.changes.to_vec().expect("read changes")
}

pub fn field(c: &Change, col: &str) -> Value {
    c.after
        .as_ref()
        .or(c.before.as_ref())
        .and_then(|r| r.get(col).cloned())
        .unwrap_or_else(|| panic!("{} {:?} has no column {col}", c.table, c.op))
}

pub fn int(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        other => panic!("expected an int, got {other:?}"),
    }
}
