//! Faults: tandem killed with SIGKILL mid-stream and restarted, and each database restarted mid-stream.
//! Afterwards every row is on both nodes and nothing was applied twice (a redelivered transaction that
//! slipped past the checkpoint would show as a conflict).

use std::time::Duration;

use mysql_async::prelude::Queryable;
use tandem::harness::{MariaDb, PgServer};

use crate::support::{sigkill, start_tandem_run, wait_for, Pair};

const ROWS: i32 = 300;

async fn count_pg(pg: &PgServer) -> i64 {
    match pg.connect("crm").await {
        Ok(c) => c
            .query_one("SELECT count(*) FROM items", &[])
            .await
            .map_or(-1, |r| r.get(0)),
        Err(_) => -1,
    }
}

async fn count_maria(maria: &MariaDb) -> i64 {
    let Ok(mut c) = maria.connect("desk").await else {
        return -1;
    };
    let n: Option<i64> = c
        .query_first("SELECT COUNT(*) FROM items")
        .await
        .ok()
        .flatten();
    let _ = c.disconnect().await;
    n.unwrap_or(-1)
}

async fn bookkeeping_counts(pg: &PgServer, maria: &MariaDb) -> (i64, i64, i64, i64) {
    let c = pg.connect("crm").await.unwrap();
    let pc: i64 = c
        .query_one("SELECT count(*) FROM tandem.conflict", &[])
        .await
        .unwrap()
        .get(0);
    let pd: i64 = c
        .query_one("SELECT count(*) FROM tandem.dead_letter", &[])
        .await
        .unwrap()
        .get(0);
    let mut m = maria.connect("desk").await.unwrap();
    let mc: Option<i64> = m
        .query_first("SELECT COUNT(*) FROM tandem.conflict")
        .await
        .unwrap();
    let md: Option<i64> = m
        .query_first("SELECT COUNT(*) FROM tandem.dead_letter")
        .await
        .unwrap();
    m.disconnect().await.unwrap();
    (pc, pd, mc.unwrap_or(-1), md.unwrap_or(-1))
}

async fn setup() -> Pair {
    const TABLE: &str = "CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL)";
    Pair::start(TABLE, TABLE, "[[tables]]\nname = \"items\"\nkey = [\"id\"]").await
}

/// Inserts ROWS rows on each side (PostgreSQL ids 1.., MariaDB ids 10001..), one transaction each,
/// retrying a row while its server is restarting.
async fn write_both(pg_url: String, maria_url: String) {
    let pg = tokio::spawn(async move {
        for i in 1..=ROWS {
            loop {
                if let Ok((c, conn)) = tokio_postgres::connect(&pg_url, tokio_postgres::NoTls).await
                {
                    tokio::spawn(conn);
                    if c.execute(
                        "INSERT INTO items VALUES ($1, $1) ON CONFLICT DO NOTHING",
                        &[&i],
                    )
                    .await
                    .is_ok()
                    {
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    let maria = tokio::spawn(async move {
        for i in 1..=ROWS {
            loop {
                if let Ok(mut c) = mysql_async::Conn::from_url(maria_url.clone()).await {
                    let ok = c
                        .exec_drop("INSERT IGNORE INTO items VALUES (?, ?)", (10_000 + i, i))
                        .await
                        .is_ok();
                    let _ = c.disconnect().await;
                    if ok {
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    pg.await.unwrap();
    maria.await.unwrap();
}

async fn all_arrived_exactly_once(pg: &PgServer, maria: &MariaDb) {
    wait_for(
        "every row on both nodes",
        Duration::from_secs(90),
        || async {
            (count_pg(pg).await == 2 * i64::from(ROWS)
                && count_maria(maria).await == 2 * i64::from(ROWS))
            .then_some(())
        },
    )
    .await;
    assert_eq!(
        bookkeeping_counts(pg, maria).await,
        (0, 0, 0, 0),
        "conflicts or dead letters: a change applied twice or lost"
    );
}

#[tokio::test]
async fn fault_sigkill_and_restart_loses_nothing_and_applies_nothing_twice() {
    let p = setup().await;
    let (pg, maria, config) = (&p.pg, &p.maria, &p.config);
    let mut tandem = start_tandem_run(config, 2).await;
    let writer = tokio::spawn(write_both(pg.url("crm"), maria.url("desk")));
    for round in 1..=3i64 {
        // Kill once the stream is visibly moving: the round's share of rows has crossed both ways.
        wait_for(
            "progress before a kill",
            Duration::from_secs(60),
            || async {
                let done = count_pg(pg).await.min(count_maria(maria).await);
                (done >= round * i64::from(ROWS) / 3).then_some(())
            },
        )
        .await;
        sigkill(&tandem);
        let _ = tandem.wait().await;
        tandem = start_tandem_run(config, 2).await;
    }
    writer.await.unwrap();
    all_arrived_exactly_once(pg, maria).await;
    sigkill(&tandem);
}

#[tokio::test]
async fn fault_database_restarts_lose_nothing() {
    let mut p = setup().await;
    let config = p.config.clone();
    let tandem = start_tandem_run(&config, 2).await;
    let writer = tokio::spawn(write_both(p.pg.url("crm"), p.maria.url("desk")));
    wait_for(
        "progress before the MariaDB restart",
        Duration::from_secs(60),
        || async { (count_pg(&p.pg).await >= i64::from(ROWS) / 3).then_some(()) },
    )
    .await;
    p.maria.restart().await.expect("MariaDB restarts");
    wait_for(
        "progress before the PostgreSQL restart",
        Duration::from_secs(60),
        || async { (count_maria(&p.maria).await >= i64::from(ROWS)).then_some(()) },
    )
    .await;
    p.pg.restart().await.expect("PostgreSQL restarts");
    writer.await.unwrap();
    all_arrived_exactly_once(&p.pg, &p.maria).await;
    sigkill(&tandem);
}

/// SIGTERM stops `tandem run` within seconds even while a link's write waits on the target (here a
/// lock held by another session), and the change arrives after a restart.
#[tokio::test(flavor = "multi_thread")]
async fn fault_sigterm_stops_a_link_whose_write_waits() {
    let pair = setup().await;
    let tandem = start_tandem_run(&pair.config, 2).await;
    let (locker, conn) = tokio_postgres::connect(&pair.pg.url("crm"), tokio_postgres::NoTls)
        .await
        .expect("connect PostgreSQL");
    tokio::spawn(conn);
    locker
        .batch_execute("BEGIN; LOCK TABLE items IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock the target table");
    let mut m = pair.maria.connect("desk").await.expect("connect MariaDB");
    m.query_drop("INSERT INTO items VALUES (1, 1)")
        .await
        .expect("insert on MariaDB");
    m.disconnect().await.ok();
    // The link's write is waiting once PostgreSQL shows it blocked on the lock.
    let watcher = pair.pg.connect("crm").await.expect("connect PostgreSQL");
    wait_for(
        "the link's write waiting on the lock",
        Duration::from_secs(30),
        || async {
            let row = watcher
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
                     AND datname = 'crm'",
                    &[],
                )
                .await
                .ok()?;
            (row.get::<_, i64>(0) > 0).then_some(())
        },
    )
    .await;
    let mut tandem = tandem;
    let pid = tandem.id().expect("pid");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let status = tokio::time::timeout(Duration::from_secs(10), tandem.wait())
        .await
        .expect("tandem run stops within 10 s of SIGTERM while a write waits")
        .expect("wait for tandem run");
    assert!(status.success(), "tandem run exited with {status}");
    locker.batch_execute("COMMIT").await.expect("release");
    let _tandem = start_tandem_run(&pair.config, 2).await;
    wait_for(
        "the row after the restart",
        Duration::from_secs(30),
        || async { (count_pg(&pair.pg).await == 1).then_some(()) },
    )
    .await;
}
