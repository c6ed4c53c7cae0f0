//! Convergence under fire, under each automatic rule: the writers of `convergence` (random inserts, updates and deletes on both
//! nodes over the same keys, each transaction with an insert-only event) keep writing while
//! `tandem run` is killed with SIGKILL and restarted three times and each database is restarted once
//! cleanly and once by a crash, in a random order at random points. Afterwards: every mapped row is equal on both nodes, every
//! committed transaction arrived exactly once (no event lost, none met its own key again, no dead
//! letter), every conflict the writes forced left an audit row, and nothing echoes.
//! `TANDEM_FIRE_SEED` repeats a run's choices (fault order and points, the writers' operations); the
//! timing of course differs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;

use crate::support::converge::{
    assert_all, join_writers, pair, spawn_writers, start_run, Load, Rng,
};
use crate::support::{sigkill, start_tandem_run, stop_tandem_run, wait_for, Pair};

#[derive(Debug, Clone, Copy)]
enum Fault {
    KillTandem,
    RestartPostgres,
    RestartMariaDb,
    /// Immediate shutdown: crash recovery on start, and commits whose reply never came.
    CrashPostgres,
    /// SIGKILL of `mariadbd`.
    CrashMariaDb,
}

/// Events that crossed each way: (helpdesk's on crm, crm's on helpdesk); `None` while a server is down.
async fn crossed(p: &Pair) -> Option<(i64, i64)> {
    let c = p.pg.connect("crm").await.ok()?;
    let on_crm: i64 = c
        .query_one("SELECT count(*) FROM events WHERE id >= 2000000000", &[])
        .await
        .ok()?
        .get(0);
    let mut m = p.maria.connect("desk").await.ok()?;
    let on_desk: Option<i64> = m
        .query_first("SELECT COUNT(*) FROM events WHERE id < 2000000000")
        .await
        .ok()?;
    m.disconnect().await.ok();
    Some((on_crm, on_desk?))
}

/// Waits until at least `n` more events have crossed each way than at `since`; returns the counts.
async fn progress(p: &Pair, since: (i64, i64), n: i64, what: &str) -> (i64, i64) {
    wait_for(what, Duration::from_secs(120), || async {
        crossed(p)
            .await
            .filter(|c| c.0 >= since.0 + n && c.1 >= since.1 + n)
    })
    .await
}

async fn converge_under_fire(rule: &str, rule_name: &str) {
    let mut p = pair(rule).await;
    let seed = std::env::var("TANDEM_FIRE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64 | 1)
        });
    let what = format!("under `{rule_name}` and faults (TANDEM_FIRE_SEED={seed})");
    let mut rng = Rng(seed);
    let (mut tandem, _traces) = start_run(&p).await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = Load {
        per_node: 2,
        seed,
        deletes: true,
        ops: usize::MAX,
        stop: stop.clone(),
        pace_ms: 20,
    };
    let writers = spawn_writers(&p, &load);

    let mut faults = [
        Fault::KillTandem,
        Fault::KillTandem,
        Fault::KillTandem,
        Fault::RestartPostgres,
        Fault::RestartMariaDb,
        Fault::CrashPostgres,
        Fault::CrashMariaDb,
    ];
    for i in (1..faults.len()).rev() {
        faults.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut mark = (0, 0);
    for fault in faults {
        // A random point, once the links visibly move again after the previous fault.
        let n = 20 + rng.below(60) as i64;
        mark = progress(&p, mark, n, &format!("{what}: progress before {fault:?}")).await;
        match fault {
            Fault::KillTandem => {
                sigkill(&tandem);
                let _ = tandem.wait().await;
                tandem = start_tandem_run(&p.config, 2).await;
            }
            Fault::RestartPostgres => p.pg.restart().await.expect("PostgreSQL restarts"),
            Fault::RestartMariaDb => p.maria.restart().await.expect("MariaDB restarts"),
            Fault::CrashPostgres => {
                p.pg.crash().await.expect("PostgreSQL crashes");
                p.pg.start_again().await.expect("PostgreSQL recovers");
            }
            Fault::CrashMariaDb => {
                p.maria.crash().await.expect("MariaDB crashes");
                p.maria.start_again().await.expect("MariaDB recovers");
            }
        }
    }
    progress(&p, mark, 20, &format!("{what}: progress after the faults")).await;
    stop.store(true, Ordering::Relaxed);
    let reports = join_writers(writers).await;

    eprintln!("{what}: faults {faults:?}");
    assert_all(&p, &what, rule_name, &reports).await;
    stop_tandem_run(tandem).await;
}

#[tokio::test]
async fn converge_under_fire_last_write_wins() {
    converge_under_fire("conflict = \"last_write_wins\"", "last_write_wins").await;
}

#[tokio::test]
async fn converge_under_fire_prefer_a_node() {
    converge_under_fire("conflict = \"prefer\"\nprefer = \"helpdesk\"", "prefer").await;
}

#[tokio::test]
async fn converge_under_fire_merge() {
    converge_under_fire("conflict = \"merge\"", "merge").await;
}
