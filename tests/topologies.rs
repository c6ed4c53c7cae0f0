//! Topologies: PostgreSQL <-> PostgreSQL, MariaDB <-> MariaDB, and a three-node full mesh in which every
//! node writes; each change reaches every other node once and never comes home.

use std::collections::BTreeMap;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use tandem::harness::{MariaDb, PgServer};
use tokio::process::Command;

use crate::support::{start_tandem_run, stop_tandem_run, unique_name, wait_for};

enum Server {
    Pg(PgServer),
    Maria(MariaDb),
}

impl Server {
    async fn start(pg: bool) -> Server {
        if pg {
            let s = PgServer::start().await.expect("PostgreSQL starts");
            s.create_database("app").await.unwrap();
            s.connect("app")
                .await
                .unwrap()
                .batch_execute("CREATE TABLE items (id int PRIMARY KEY, v text NOT NULL)")
                .await
                .unwrap();
            Server::Pg(s)
        } else {
            let s = MariaDb::start().await.expect("MariaDB starts");
            s.create_database("app").await.unwrap();
            let mut c = s.connect("app").await.unwrap();
            c.query_drop("CREATE TABLE items (id int PRIMARY KEY, v varchar(100) NOT NULL)")
                .await
                .unwrap();
            c.disconnect().await.unwrap();
            Server::Maria(s)
        }
    }

    fn url(&self) -> String {
        match self {
            Server::Pg(s) => s.url("app"),
            Server::Maria(s) => s.url("app"),
        }
    }

    async fn exec(&self, sql: &str) {
        match self {
            Server::Pg(s) => s
                .connect("app")
                .await
                .unwrap()
                .batch_execute(sql)
                .await
                .unwrap(),
            Server::Maria(s) => {
                let mut c = s.connect("app").await.unwrap();
                c.query_drop(sql).await.unwrap();
                c.disconnect().await.unwrap();
            }
        }
    }

    async fn rows(&self) -> BTreeMap<i32, String> {
        match self {
            Server::Pg(s) => {
                let c = s.connect("app").await.unwrap();
                c.query("SELECT id, v FROM items", &[])
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| (r.get(0), r.get(1)))
                    .collect()
            }
            Server::Maria(s) => {
                let mut c = s.connect("app").await.unwrap();
                let rows: Vec<(i32, String)> = c.query("SELECT id, v FROM items").await.unwrap();
                c.disconnect().await.unwrap();
                rows.into_iter().collect()
            }
        }
    }

    async fn conflicts(&self) -> i64 {
        match self {
            Server::Pg(s) => s
                .connect("app")
                .await
                .unwrap()
                .query_one("SELECT count(*) FROM tandem.conflict", &[])
                .await
                .unwrap()
                .get(0),
            Server::Maria(s) => {
                let mut c = s.connect("app").await.unwrap();
                let n: Option<i64> = c
                    .query_first("SELECT COUNT(*) FROM tandem.conflict")
                    .await
                    .unwrap();
                c.disconnect().await.unwrap();
                n.unwrap_or(-1)
            }
        }
    }
}

async fn mesh(kinds: &[bool]) {
    let names = ["n1", "n2", "n3"];
    let servers: Vec<Server> = start_each(kinds.iter().map(|pg| Server::start(*pg))).await;
    let mut text = String::new();
    for (name, s) in names.iter().zip(&servers) {
        text += &format!("[nodes.{name}]\nurl = \"{}\"\n", s.url());
    }
    text += "[[tables]]\nname = \"items\"\nkey = [\"id\"]\n";
    let config = std::env::temp_dir().join(format!("{}.toml", unique_name("tandem_mesh")));
    std::fs::write(&config, text).unwrap();
    let setup = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["setup", "--config"])
        .arg(&config)
        .output()
        .await
        .unwrap();
    assert!(
        setup.status.success(),
        "setup: {}",
        String::from_utf8_lossy(&setup.stderr)
    );
    let n = servers.len();
    let tandem = start_tandem_run(&config, n * (n - 1)).await;

    // Every node writes its own rows, then updates one written elsewhere.
    for (i, s) in servers.iter().enumerate() {
        s.exec(&format!(
            "INSERT INTO items VALUES ({}, 'from {}')",
            i + 1,
            names[i]
        ))
        .await;
    }
    let want: BTreeMap<i32, String> = (0..n)
        .map(|i| (i as i32 + 1, format!("from {}", names[i])))
        .collect();
    for (i, s) in servers.iter().enumerate() {
        wait_for(
            &format!("all inserts on {}", names[i]),
            Duration::from_secs(30),
            || async { (s.rows().await == want).then_some(()) },
        )
        .await;
    }
    for (i, s) in servers.iter().enumerate() {
        let other = (i + 1) % n + 1;
        s.exec(&format!(
            "UPDATE items SET v = 'edited on {}' WHERE id = {other}",
            names[i]
        ))
        .await;
        let mut want = want.clone();
        want.insert(other as i32, format!("edited on {}", names[i]));
        for (j, t) in servers.iter().enumerate() {
            wait_for(
                &format!("the update from {} on {}", names[i], names[j]),
                Duration::from_secs(30),
                || async {
                    (t.rows().await.get(&(other as i32)) == want.get(&(other as i32))).then_some(())
                },
            )
            .await;
        }
    }
    // A marker written last on each node: once all have arrived everywhere, any echo of the earlier
    // writes would have arrived before them (each log is ordered) and shown as a conflict.
    for (i, s) in servers.iter().enumerate() {
        s.exec(&format!("INSERT INTO items VALUES ({}, 'marker')", 100 + i))
            .await;
    }
    for (j, t) in servers.iter().enumerate() {
        wait_for(
            &format!("every marker on {}", names[j]),
            Duration::from_secs(30),
            || async {
                let rows = t.rows().await;
                (0..n)
                    .all(|i| rows.contains_key(&(100 + i as i32)))
                    .then_some(())
            },
        )
        .await;
    }
    for (j, t) in servers.iter().enumerate() {
        assert_eq!(
            t.conflicts().await,
            0,
            "conflicts on {}: a change came back or arrived twice",
            names[j]
        );
    }
    let first = servers[0].rows().await;
    for (j, t) in servers.iter().enumerate().skip(1) {
        assert_eq!(t.rows().await, first, "{} differs from n1", names[j]);
    }
    stop_tandem_run(tandem).await;
    std::fs::remove_file(&config).ok();
}

/// Awaits each future in turn.
async fn start_each<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = futures.collect();
    let mut out = Vec::new();
    for f in handles {
        out.push(f.await);
    }
    out
}

#[tokio::test]
async fn topology_postgres_to_postgres() {
    mesh(&[true, true]).await;
}

#[tokio::test]
async fn topology_mariadb_to_mariadb() {
    mesh(&[false, false]).await;
}

#[tokio::test]
async fn topology_three_node_mesh() {
    mesh(&[true, false, true]).await;
}
