//! The harness starts real servers, and leaves no process or directory behind.

use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use tandem::harness::{MariaDb, PgServer};

use crate::support::wait_for;

async fn gone(root: PathBuf, port: u16) {
    wait_for(
        &format!("{} and port {port} to be gone", root.display()),
        Duration::from_secs(20),
        || {
            let root = root.clone();
            async move {
                let listening = TcpStream::connect(("127.0.0.1", port)).is_ok();
                (!root.exists() && !listening).then_some(())
            }
        },
    )
    .await
}

#[tokio::test]
async fn harness_starts_both_servers_and_cleans_up() {
    let (pg, maria) = tokio::join!(PgServer::start(), MariaDb::start());
    let pg = pg.expect("PostgreSQL starts");
    let maria = maria.expect("MariaDB starts");

    let client = pg.connect("postgres").await.expect("connect to PostgreSQL");
    let row = client
        .query_one("SHOW wal_level", &[])
        .await
        .expect("query PostgreSQL");
    assert_eq!(row.get::<_, String>(0), "logical");

    let mut conn = maria.connect("").await.expect("connect to MariaDB");
    let (format, image, metadata, charset): (String, String, String, String) = conn
        .query_first(
            "SELECT @@binlog_format, @@binlog_row_image, @@binlog_row_metadata, @@character_set_server",
        )
        .await
        .expect("query MariaDB")
        .expect("one row");
    assert_eq!(
        (
            format.as_str(),
            image.as_str(),
            metadata.as_str(),
            charset.as_str()
        ),
        ("ROW", "FULL", "FULL", "utf8mb4")
    );
    let server_id: u32 = conn
        .query_first("SELECT @@server_id")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(server_id, maria.server_id());
    conn.disconnect().await.unwrap();
    drop(client);

    let pg_place = (pg.root_dir().to_path_buf(), pg.port());
    let maria_place = (maria.root_dir().to_path_buf(), maria.port());
    drop(pg);
    drop(maria);
    // Drop waits for the supervisor, so both are gone at once; the wait only guards a slow socket close.
    gone(pg_place.0, pg_place.1).await;
    gone(maria_place.0, maria_place.1).await;
}

#[tokio::test]
async fn harness_cleans_up_after_a_panicking_test() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let pg = PgServer::start().await.expect("PostgreSQL starts");
        let _ = tx.send((pg.root_dir().to_path_buf(), pg.port()));
        panic!("deliberate panic while the server runs");
    });
    let (root, port) = rx.await.expect("server started before the panic");
    assert!(task.await.is_err(), "the task panicked");
    gone(root, port).await;
}

#[tokio::test]
async fn harness_restarts_a_server_keeping_its_data() {
    let mut maria = MariaDb::start().await.expect("MariaDB starts");
    maria.create_database("keep").await.unwrap();
    maria.restart().await.expect("restart");
    let mut conn = maria
        .connect("keep")
        .await
        .expect("database survives a restart");
    conn.query_drop("CREATE TABLE t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    conn.disconnect().await.unwrap();

    let mut pg = PgServer::start().await.expect("PostgreSQL starts");
    pg.create_database("keep").await.unwrap();
    pg.crash().await.expect("crash");
    pg.start_again().await.expect("start after crash");
    pg.connect("keep").await.expect("database survives a crash");
}

/// Run as a child process by `harness_cleans_up_when_the_test_process_dies`: starts a server, prints
/// where it lives, and dies without unwinding.
#[tokio::test]
async fn harness_child_that_aborts() {
    if std::env::var_os("TANDEM_HARNESS_ABORT_CHILD").is_none() {
        return;
    }
    let maria = MariaDb::start().await.expect("MariaDB starts");
    println!("SERVER {} {}", maria.root_dir().display(), maria.port());
    std::process::abort();
}

#[tokio::test]
async fn harness_cleans_up_when_the_test_process_dies() {
    let exe = std::env::current_exe().unwrap();
    let out = tokio::process::Command::new(exe)
        .args([
            "harness::harness_child_that_aborts",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("TANDEM_HARNESS_ABORT_CHILD", "1")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("SERVER ").map(|(_, rest)| rest))
        .unwrap_or_else(|| {
            panic!(
                "child did not report its server: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let (root, port) = line.rsplit_once(' ').unwrap();
    gone(PathBuf::from(root), port.parse().unwrap()).await;
}

/// A PostgreSQL fast shutdown waits until every logical reader confirmed all the WAL it was sent
/// (a walsender's shutdown handshake). A reader in the test's own runtime can only answer while
/// the harness's stop leaves that runtime free: it once blocked it, the reader froze, and the stop
/// took the whole `wal_sender_timeout` (with `tandem run` as the reader and a writer task frozen
/// holding a row lock `tandem run` waited for, `convergence_fire` hung for good).
#[tokio::test]
async fn harness_stop_leaves_the_runtime_free_for_a_replication_reader() {
    use tandem::capture::postgres::{setup, PgSource, PgSourceOptions, Slot};
    use tandem::capture::CaptureEvent;
    use tandem::model::TableRef;
    let timeout = Duration::from_secs(20);
    let mut pg = PgServer::start_with(tandem::harness::PgOptions {
        settings: vec![(
            "wal_sender_timeout".into(),
            format!("{}s", timeout.as_secs()),
        )],
        ..Default::default()
    })
    .await
    .expect("PostgreSQL starts");
    let client = pg.connect("postgres").await.expect("connect");
    client
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY)")
        .await
        .expect("create table");
    let url = pg.url("postgres");
    let tables = vec![TableRef::new("public", "t")];
    setup(&url, "tandem_pub", &tables, &[Slot::named("reader")], false)
        .await
        .expect("publication and slot");
    let mut source = PgSource::connect(PgSourceOptions {
        node: "crm".into(),
        url: url.clone(),
        slot: "reader".into(),
        publication: "tandem_pub".into(),
        temporary_slot: false,
        tables,
        memory_budget_bytes: 1 << 20,
        spill_dir: std::env::temp_dir(),
        drop_applied: false,
        origin_none: false,
        start: None,
    })
    .await
    .expect("source connects");
    // The reader confirms everything it is given, as `tandem run` does once its target committed.
    let read = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = read.clone();
    let reader = tokio::spawn(async move {
        while let Ok(event) = source.next().await {
            let position = match event {
                CaptureEvent::Transaction(t) => t.position,
                CaptureEvent::Heartbeat(p) => p,
            };
            source.confirm(&position);
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    client
        .batch_execute("INSERT INTO t VALUES (1)")
        .await
        .expect("insert");
    wait_for("the reader to read", Duration::from_secs(20), || async {
        (read.load(std::sync::atomic::Ordering::Relaxed) > 0).then_some(())
    })
    .await;
    // An open transaction: the shutdown ends its session, which writes an abort record, WAL the
    // reader has yet to confirm when the walsender finishes.
    client
        .batch_execute("BEGIN; INSERT INTO t VALUES (2)")
        .await
        .expect("insert");
    let began = std::time::Instant::now();
    pg.stop().await.expect("PostgreSQL stops");
    let took = began.elapsed();
    reader.abort();
    drop(client);
    assert!(
        took < timeout / 2,
        "the fast shutdown took {took:?}: the reader could not confirm while the harness waited"
    );
}
