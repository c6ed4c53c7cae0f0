//! Spill files hold row values: `tandem run` keeps them in a private directory of its own and, at
//! start, removes the ones a killed tandem left behind, never a running one's.

use std::os::unix::fs::PermissionsExt;

use crate::support::{start_tandem_run, unique_name, wait_for, Pair};

/// Before the fix spill files went straight into the spill directory with the umask's mode
/// (0644 in a 0755 directory) and a SIGKILLed process's files stayed forever.
#[tokio::test]
async fn run_sweeps_spill_files_of_dead_processes_into_a_private_directory() {
    let base = std::env::temp_dir().join(unique_name("tandem_spill_base"));
    let dir = tandem::model::spill::private_dir(&base);
    std::fs::create_dir_all(&dir).expect("spill dir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    // A pid above any pid_max never runs; this test's own process does.
    let orphan = dir.join("tandem-spill-4000000000-3.jsonl");
    let running = dir.join(format!("tandem-spill-{}-3.jsonl", std::process::id()));
    for f in [&orphan, &running] {
        std::fs::write(f, "{}\n").expect("plant a spill file");
    }
    let p = Pair::start(
        "CREATE TABLE customers (id int PRIMARY KEY, name text)",
        "CREATE TABLE customers (id int PRIMARY KEY, name text)",
        &format!(
            "[[tables]]\nname = \"customers\"\nkey = [\"id\"]\n[tandem]\nspill_dir = \"{}\"\n",
            base.display()
        ),
    )
    .await;
    let mut run = start_tandem_run(&p.config, 2).await;
    let mode = std::fs::metadata(&dir).expect("dir").permissions().mode() & 0o777;
    let (orphan_left, running_left) = (orphan.exists(), running.exists());
    run.kill().await.expect("kill tandem run");
    let _ = std::fs::remove_dir_all(&base);
    assert_eq!(mode, 0o700, "the spill directory is closed to others");
    assert!(!orphan_left, "the dead process's spill file was not swept");
    assert!(running_left, "a running process's spill file was removed");
}

/// A spilled transaction the target refuses is recorded part by part. Before the fix the whole
/// transaction was read into memory and sent as one dead-letter row: here its 24 MB payload is over
/// MariaDB's 16 MiB `max_allowed_packet`, the insert failed, and the link retried it forever without
/// applying anything after it. Now the dead letter has parts of about 1 MiB, the link goes on, and the
/// replay (after the cause is fixed) reads the parts back one by one.
#[tokio::test(flavor = "multi_thread")]
async fn a_spilled_transaction_is_dead_lettered_in_parts_and_replayed() {
    use mysql_async::prelude::Queryable;
    use std::time::Duration;
    const ROWS: i64 = 20_000;
    let p = Pair::start(
        "CREATE TABLE items (id int PRIMARY KEY, v text NOT NULL)",
        "CREATE TABLE items (id INT PRIMARY KEY, v TEXT NOT NULL, CONSTRAINT v_ok CHECK (v <> 'refused'))",
        "[[tables]]\nname = \"items\"\nkey = [\"id\"]\n[tandem]\nmemory_budget_mib = 1\n",
    )
    .await;
    let _run = start_tandem_run(&p.config, 2).await;
    let pg = p.pg.connect("crm").await.expect("connect");
    pg.batch_execute(&format!(
        "BEGIN; INSERT INTO items SELECT g, repeat('x', 1200) FROM generate_series(1, {}) g; \
         INSERT INTO items VALUES ({ROWS}, 'refused'); COMMIT; \
         INSERT INTO items VALUES ({}, 'after');",
        ROWS - 1,
        ROWS + 1
    ))
    .await
    .expect("the large transaction");
    let maria = &p.maria;
    let count = || async {
        let mut c = maria.connect("desk").await.ok()?;
        let n: Option<i64> = c.query_first("SELECT COUNT(*) FROM items").await.ok()?;
        n
    };
    wait_for(
        "the transaction after the refused one",
        Duration::from_secs(120),
        || async { (count().await? == 1).then_some(()) },
    )
    .await;
    let mut conn = maria.connect("desk").await.expect("connect");
    let dead: Vec<(i64, String)> = conn
        .query("SELECT id, state FROM tandem.dead_letter")
        .await
        .expect("dead letters");
    assert_eq!(dead.len(), 1, "one dead letter: {dead:?}");
    let parts: Option<i64> = conn
        .query_first(format!(
            "SELECT COUNT(*) FROM tandem.dead_letter_part WHERE dead_letter_id = {}",
            dead[0].0
        ))
        .await
        .expect("parts");
    assert!(
        parts.unwrap_or(0) >= 20,
        "a 24 MB transaction in parts of about 1 MiB: {parts:?} parts after part 0"
    );
    conn.query_drop("ALTER TABLE items DROP CONSTRAINT v_ok")
        .await
        .expect("drop the check");
    conn.disconnect().await.expect("disconnect");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["dead-letter", "replay", "--node", "helpdesk", "--config"])
        .arg(&p.config)
        .arg(dead[0].0.to_string())
        .output()
        .await
        .expect("run replay");
    assert!(
        out.status.success(),
        "replay: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        count().await,
        Some(ROWS + 1),
        "every row of the replayed letter"
    );
    let mut conn = maria.connect("desk").await.expect("connect");
    let state: Option<String> = conn
        .query_first("SELECT state FROM tandem.dead_letter")
        .await
        .expect("state");
    assert_eq!(state.as_deref(), Some("replayed"));
}
