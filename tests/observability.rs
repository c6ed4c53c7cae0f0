//! Observability against real servers: the `/metrics` and `/health` endpoint of `tandem run`, and
//! `tandem status` reading the databases with no tandem process running.

use std::time::Duration;

use mysql_async::prelude::Queryable;

use crate::support::{free_port, http_get as get, start_tandem_run, wait_for, Pair};

const PG_SQL: &str = "CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL)";
const MARIA_SQL: &str = "CREATE TABLE customers (id int PRIMARY KEY, name varchar(8) NOT NULL)";

/// The value of the series `name{…}` whose labels contain every one of `labels` (`key="value"`).
fn value(metrics: &str, name: &str, labels: &[&str]) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| labels.iter().all(|want| l.contains(want)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn maria_count(p: &Pair) -> i64 {
    let mut c = p.maria.connect("desk").await.unwrap();
    let n: Option<i64> = c
        .query_first("SELECT COUNT(*) FROM customers")
        .await
        .unwrap();
    c.disconnect().await.unwrap();
    n.unwrap_or(0)
}

#[tokio::test]
async fn observability_metrics_count_applies_exactly_and_health_turns_503_when_a_link_halts() {
    let port = free_port();
    let p = Pair::start(
        PG_SQL,
        MARIA_SQL,
        &format!(
            "[[tables]]\nname = \"customers\"\nkey = [\"id\"]\nowner = \"crm\"\non_error = \"halt\"\n\n\
             [metrics]\nlisten = \"127.0.0.1:{port}\"\n\n[heartbeat]\ninterval = \"1s\"\n"
        ),
    )
    .await;
    let mut tandem = start_tandem_run(&p.config, 2).await;
    let crm = p.pg.connect("crm").await.unwrap();
    for id in 1..=5i32 {
        crm.execute("INSERT INTO customers VALUES ($1, 'ok')", &[&id])
            .await
            .unwrap();
    }
    wait_for("five rows on MariaDB", Duration::from_secs(30), || async {
        (maria_count(&p).await == 5).then_some(())
    })
    .await;
    let to_desk = "link=\"crm_to_helpdesk\"";
    let to_crm = "link=\"helpdesk_to_crm\"";
    // Changes applied are counted exactly (heartbeats carried on the same link are not changes), and
    // a caught-up link reports a lag near zero.
    let metrics = wait_for(
        "5 changes applied and lag near zero on crm_to_helpdesk",
        Duration::from_secs(30),
        || async {
            let (_, m) = get(port, "/metrics").await?;
            let applied = value(&m, "tandem_changes_applied_total", &[to_desk])?;
            let lag = value(&m, "tandem_link_lag_seconds", &[to_desk])?;
            let beats = value(&m, "tandem_heartbeats_total", &[to_desk])?;
            (applied == 5.0 && lag < 5.0 && beats >= 1.0).then_some(m)
        },
    )
    .await;
    assert_eq!(
        value(&metrics, "tandem_transactions_applied_total", &[to_desk]),
        Some(5.0),
        "five source transactions applied:\n{metrics}"
    );
    assert!(
        value(&metrics, "tandem_source_read_bytes_total", &[to_desk]).unwrap_or(0.0) > 0.0,
        "bytes read from the WAL:\n{metrics}"
    );
    assert!(
        value(&metrics, "tandem_apply_duration_seconds_count", &[to_desk]).unwrap_or(0.0) >= 1.0,
        "apply latency histogram:\n{metrics}"
    );
    assert_eq!(get(port, "/health").await.map(|r| r.0), Some(200));

    // A change from the non-owner is a conflict (not_owner, keep_current), counted and logged.
    let mut desk = p.maria.connect("desk").await.unwrap();
    desk.query_drop("UPDATE customers SET name = 'desk' WHERE id = 1")
        .await
        .unwrap();
    let metrics = wait_for(
        "the not_owner conflict counted",
        Duration::from_secs(30),
        || async {
            let (_, m) = get(port, "/metrics").await?;
            let n = value(
                &m,
                "tandem_conflicts_total",
                &[to_crm, "table=\"customers\"", "kind=\"not_owner\""],
            )?;
            let review = value(&m, "tandem_review_queue_conflicts", &[to_crm])?;
            (n == 1.0 && review == 0.0).then_some(m)
        },
    )
    .await;
    let missing: Vec<&str> = tandem::observe::names::ALL
        .iter()
        .copied()
        // GTID distance exists only for a MariaDB source at a GTID position; position loss only
        // where a probe reached the source; both are checked by name where they apply.
        .filter(|n| *n != tandem::observe::names::LAG_TRANSACTIONS)
        // The verify gauges exist once a `tandem verify` ran (tests/verify.rs checks them).
        .filter(|n| !n.starts_with("tandem_verify_"))
        .filter(|n| !metrics.contains(&format!("\n{n}")))
        .collect();
    assert!(
        missing.is_empty(),
        "metrics missing {missing:?}:\n{metrics}"
    );
    assert!(
        value(&metrics, "tandem_link_lag_bytes", &[to_desk]).is_some(),
        "WAL distance of the PostgreSQL source:\n{metrics}"
    );
    assert!(
        value(&metrics, "tandem_link_lag_bytes", &[to_crm]).is_some()
            || value(&metrics, "tandem_link_lag_transactions", &[to_crm]).is_some(),
        "binlog distance of the MariaDB source:\n{metrics}"
    );

    // A name MariaDB cannot hold halts crm_to_helpdesk (on_error = halt): /health turns 503 and
    // names it, and its lag grows while it stands still.
    crm.execute(
        "INSERT INTO customers VALUES (99, 'far too long for eight')",
        &[],
    )
    .await
    .unwrap();
    let (code, body) = wait_for("/health to turn 503", Duration::from_secs(30), || async {
        get(port, "/health").await.filter(|r| r.0 == 503)
    })
    .await;
    assert_eq!(code, 503);
    assert!(
        body.contains("crm_to_helpdesk: halted"),
        "the reason names the link: {body}"
    );
    wait_for(
        "the halted link's lag to grow",
        Duration::from_secs(30),
        || async {
            let (_, m) = get(port, "/metrics").await?;
            let lag = value(&m, "tandem_link_lag_seconds", &[to_desk])?;
            let up = value(&m, "tandem_link_up", &[to_desk])?;
            (lag > 3.0 && up == 0.0).then_some(())
        },
    )
    .await;
    let (_, m) = get(port, "/metrics").await.expect("metrics after the halt");
    assert_eq!(
        value(&m, "tandem_changes_applied_total", &[to_desk]),
        Some(5.0),
        "the halted transaction is not counted as applied:\n{m}"
    );
    tandem.kill().await.unwrap();
}

async fn status_json(p: &Pair) -> (bool, serde_json::Value) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["status", "--format", "json", "--config"])
        .arg(&p.config)
        .output()
        .await
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "status --format json printed no JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), json)
}

fn link<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    status["links"]
        .as_array()
        .and_then(|links| links.iter().find(|l| l["link"] == name))
        .unwrap_or_else(|| panic!("no link {name} in {status}"))
}

#[tokio::test]
async fn observability_status_shows_a_stopped_links_growing_lag() {
    let p = Pair::start(
        PG_SQL,
        MARIA_SQL,
        "[[tables]]\nname = \"customers\"\nkey = [\"id\"]\n\n[heartbeat]\ninterval = \"1s\"\n",
    )
    .await;
    let mut tandem = start_tandem_run(&p.config, 2).await;
    let crm = p.pg.connect("crm").await.unwrap();
    crm.execute("INSERT INTO customers VALUES (1, 'a')", &[])
        .await
        .unwrap();
    wait_for("the row on MariaDB", Duration::from_secs(30), || async {
        (maria_count(&p).await == 1).then_some(())
    })
    .await;
    // Running: both links stream, are caught up within seconds (heartbeats), nothing waits.
    wait_for(
        "both links streaming and caught up",
        Duration::from_secs(30),
        || async {
            let (ok, s) = status_json(&p).await;
            let fine = ["crm_to_helpdesk", "helpdesk_to_crm"].iter().all(|name| {
                let l = link(&s, name);
                l["state"] == "streaming" && l["lag_seconds"].as_f64().is_some_and(|x| x < 5.0)
            });
            (ok && fine).then_some(())
        },
    )
    .await;

    tandem.kill().await.unwrap();
    tandem.wait().await.unwrap();
    crm.execute("INSERT INTO customers VALUES (2, 'b')", &[])
        .await
        .unwrap();
    let (ok, s) = wait_for(
        "crm_to_helpdesk reported stopped",
        Duration::from_secs(30),
        || async {
            let (ok, s) = status_json(&p).await;
            (link(&s, "crm_to_helpdesk")["state"] == "stopped").then_some((ok, s))
        },
    )
    .await;
    assert!(!ok, "a stopped link makes status exit 1");
    let l = link(&s, "crm_to_helpdesk");
    let first = l["lag_seconds"].as_f64().expect("a lag in seconds");
    assert!(
        l["lag_bytes"].as_i64().is_some_and(|b| b > 0),
        "the unapplied insert shows as WAL behind: {l}"
    );
    assert!(
        l["confirmed_position"]
            .as_str()
            .is_some_and(|p| p.starts_with("pg:")),
        "{l}"
    );
    assert!(
        l["source_position"]
            .as_str()
            .is_some_and(|p| p.starts_with("pg:")),
        "{l}"
    );
    assert_eq!(l["retention"], "ok", "{l}");
    wait_for(
        "the stopped link's lag to grow",
        Duration::from_secs(30),
        || async {
            let (_, s) = status_json(&p).await;
            let lag = link(&s, "crm_to_helpdesk")["lag_seconds"].as_f64()?;
            (lag > first + 2.0).then_some(())
        },
    )
    .await;
    let text = tokio::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["status", "--config"])
        .arg(&p.config)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("link crm_to_helpdesk (crm -> helpdesk): stopped  <- look here"),
        "{text}"
    );
    assert!(text.contains("bytes of log behind"), "{text}");
}
