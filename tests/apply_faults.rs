//! Faults: the target restarts under the applier. A transient error is retried from the checkpoint
//! stored in the target; nothing is lost and nothing is applied twice.

use tandem::apply::{self, apply_retrying, Applier};
use tandem::config::Config;
use tandem::harness::{MariaDb, PgServer};
use tandem::model::Op;

use crate::apply_support::*;

fn config(url: &str, other: &str, target_table: &str, source_table: &str) -> Config {
    let text = format!(
        "[nodes.t]\nurl = \"{url}\"\n[nodes.s]\nurl = \"{other}\"\n[[tables]]\nname = \"customer\"\nkey = [\"id\"]\n\
         on = {{ t = \"{target_table}\", s = \"{source_table}\" }}\n"
    );
    Config::from_str_with_env(&text, "faults.toml", &|_| None)
        .unwrap_or_else(|e| panic!("{:?}", e.problems))
        .0
}

/// Builds transactions in the shape the fixture uses, without a fixture (these tests own a server).
struct Txs {
    kind: Kind,
}

impl Txs {
    fn insert(&self, n: u64, id: i32) -> tandem::model::Transaction {
        let table = match self.kind {
            Kind::Pg => tandem::model::TableRef::new("src", "customer"),
            Kind::My => tandem::model::TableRef::new("public", "customer"),
        };
        let position = match self.kind {
            Kind::Pg => tandem::model::Position::Binlog(tandem::model::BinlogPosition {
                file: "bin.000001".into(),
                offset: n,
            }),
            Kind::My => tandem::model::Position::Postgres(tandem::model::PgPosition {
                commit_lsn: tandem::model::Lsn(n),
                lsn: tandem::model::Lsn(n),
            }),
        };
        tandem::model::Transaction {
            origin: "s".into(),
            position,
            commit_time: 0,
            xid: None,
            marks: Default::default(),
            changes: tandem::model::ChangeSet::Memory(vec![tandem::model::Change {
                table,
                op: Op::Insert,
                before: None,
                after: Some(customer(id, "n", "e", 1, "s")),
            }]),
        }
    }
}

enum Server {
    Pg(PgServer),
    My(MariaDb),
}

impl Server {
    async fn restart(&mut self) {
        match self {
            Server::Pg(s) => s.restart().await.expect("restart"),
            Server::My(s) => s.restart().await.expect("restart"),
        }
    }
}

/// A server of its own (it restarts), a customer table, setup run.
async fn own_target(kind: Kind) -> (Server, Config, Db) {
    const DDL: &str = "CREATE TABLE customer (id INT PRIMARY KEY, name TEXT, email TEXT)";
    match kind {
        Kind::Pg => {
            let server = PgServer::start().await.expect("start");
            server.create_database("f").await.expect("db");
            let mut db = Db::Pg(server.connect("f").await.expect("connect"));
            db.exec(DDL).await;
            let c = config(
                &server.url("f"),
                "mysql://root@127.0.0.1:9/src",
                "public.customer",
                "src.customer",
            );
            (Server::Pg(server), c, db)
        }
        Kind::My => {
            let server = MariaDb::start().await.expect("start");
            server.create_database("f").await.expect("db");
            let mut db = Db::My(server.connect("f").await.expect("connect"));
            db.exec(DDL).await;
            let c = config(
                &server.url("f"),
                "postgres://postgres@127.0.0.1:9/src",
                "f.customer",
                "public.customer",
            );
            (Server::My(server), c, db)
        }
    }
}

async fn survives_a_restart(kind: Kind) {
    let (mut server, config, db) = own_target(kind).await;
    drop(db);
    apply::setup(&config, "t", false).await.expect("setup");
    let txs = Txs { kind };
    let mut applier = Some(Applier::connect(&config, "s", "t").await.expect("connect"));
    apply_retrying(&config, "s", "t", &mut applier, &[txs.insert(1, 1)], 5)
        .await
        .expect("apply");
    server.restart().await;
    // The old session is gone: the first attempt fails transiently, the retry reconnects, reads the
    // checkpoint, skips transaction 1 as a duplicate and applies 2.
    let committed = apply_retrying(
        &config,
        "s",
        "t",
        &mut applier,
        &[txs.insert(1, 1), txs.insert(2, 2)],
        10,
    )
    .await
    .expect("retried after the restart");
    assert_eq!(committed, Some(txs.insert(2, 2).position));
    let mut fresh = Applier::connect(&config, "s", "t").await.expect("connect");
    assert_eq!(fresh.committed(), committed.as_ref());
    assert!(
        fresh
            .list_conflicts(false, 10)
            .await
            .expect("list")
            .is_empty(),
        "transaction 1 was not applied twice"
    );
}

#[tokio::test]
async fn apply_faults_pg_target_restart_is_retried_from_the_checkpoint() {
    survives_a_restart(Kind::Pg).await;
}

#[tokio::test]
async fn apply_faults_mariadb_target_restart_is_retried_from_the_checkpoint() {
    survives_a_restart(Kind::My).await;
}

/// A target that refuses a row with an error known to be definite (a PostgreSQL `RAISE`, P0001; a
/// MariaDB `SIGNAL`, 1644) dead-letters that transaction at once, and one that refuses it with an
/// error of unknown class (PostgreSQL XX000; MariaDB error 31999) dead-letters it once the same
/// error repeated at the same position; the transactions around them apply. Before, both were
/// retried as transient until the attempts ran out and the link halted.
async fn refused_rows_are_dead_lettered(kind: Kind) {
    let (_server, config, mut db) = own_target(kind).await;
    match kind {
        Kind::Pg => {
            db.exec(
                "CREATE FUNCTION refuse(id int) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN \
                 IF id = 2 THEN RAISE EXCEPTION 'refused by a business rule'; END IF; \
                 IF id = 3 THEN RAISE EXCEPTION 'strange' USING ERRCODE = 'XX000'; END IF; \
                 RETURN true; END $$",
            )
            .await;
            db.exec("ALTER TABLE customer ADD CONSTRAINT refused CHECK (refuse(id))")
                .await;
        }
        Kind::My => {
            db.exec(
                "CREATE TRIGGER refuse BEFORE INSERT ON customer FOR EACH ROW BEGIN \
                 IF NEW.id = 2 THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by a business rule'; END IF; \
                 IF NEW.id = 3 THEN SIGNAL SQLSTATE '45000' SET MYSQL_ERRNO = 31999, MESSAGE_TEXT = 'strange'; END IF; \
                 END",
            )
            .await;
        }
    }
    apply::setup(&config, "t", false).await.expect("setup");
    let txs = Txs { kind };
    let group: Vec<_> = (1..=4).map(|id| txs.insert(id as u64, id)).collect();
    let mut applier = Some(Applier::connect(&config, "s", "t").await.expect("connect"));
    let committed = apply_retrying(&config, "s", "t", &mut applier, &group, 20)
        .await
        .expect("the refused rows are dead-lettered, not retried until the link halts");
    assert_eq!(committed, Some(txs.insert(4, 4).position));
    let mut fresh = Applier::connect(&config, "s", "t").await.expect("connect");
    let letters = fresh.list_dead_letters(true).await.expect("dead letters");
    let errors: Vec<&str> = letters.iter().map(|d| d.error.as_str()).collect();
    assert_eq!(letters.len(), 2, "{errors:?}");
    let (definite, unknown) = match kind {
        Kind::Pg => ("P0001", "XX000"),
        Kind::My => ("1644", "31999"),
    };
    assert!(
        errors[0].contains(definite) && !errors[0].contains("failed the same way"),
        "{errors:?}"
    );
    assert!(
        errors[1].contains(unknown) && errors[1].contains("failed the same way 5 times"),
        "{errors:?}"
    );
    assert_eq!(
        letters[0].source_position,
        txs.insert(2, 2).position.to_string()
    );
    assert_eq!(
        letters[1].source_position,
        txs.insert(3, 3).position.to_string()
    );
}

#[tokio::test]
async fn apply_faults_pg_refused_rows_are_dead_lettered() {
    refused_rows_are_dead_lettered(Kind::Pg).await;
}

#[tokio::test]
async fn apply_faults_mariadb_refused_rows_are_dead_lettered() {
    refused_rows_are_dead_lettered(Kind::My).await;
}
