//! The three workloads of issue #15 run from a PostgreSQL source (`replicate.rs` against a
//! PostgreSQL target, `chameleon.rs`'s PostgreSQL -> MariaDB leg), waiting on whichever target.
//!
//! Each workload is timed from its first source statement until the target holds the result: the
//! client then commits one row into the small `mark` table that every tool replicates in commit
//! order, and the clock stops when the target has it. The source's own time (until its last
//! commit returned) is kept beside it: no replicator can deliver before that.

use std::time::{Duration, Instant};

use super::{connect, Error, Figures, Meters, Sizes};

/// How long a tool may take to deliver one workload before the run fails.
const CATCH_UP: Duration = Duration::from_secs(1800);

/// Where the workloads look for their marks.
pub trait Marks {
    /// Whether the target holds mark `n`; an error when the tool can no longer deliver it (its
    /// process exited).
    fn holds(&mut self, n: i32) -> impl std::future::Future<Output = Result<bool, Error>>;
}

/// Commits mark `n` on the source and waits until the target has it.
async fn mark_and_wait(
    src: &tokio_postgres::Client,
    dst: &mut impl Marks,
    n: i32,
    what: &str,
) -> Result<(), Error> {
    src.execute("INSERT INTO mark VALUES ($1)", &[&n]).await?;
    let start = Instant::now();
    while !dst.holds(n).await? {
        if start.elapsed() > CATCH_UP {
            return Err(format!(
                "{what}: the target did not catch up in {} s (mark {n})",
                CATCH_UP.as_secs()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// Runs the three workloads on the PostgreSQL database at `src_url` (tables `items (id, name,
/// qty, price)` and `mark (id)`), waiting on `dst` after each. The caller compares the rows.
pub async fn workloads(
    src_url: &str,
    dst: &mut impl Marks,
    sizes: &Sizes,
    what: &str,
    meters: &Meters,
) -> Result<Figures, Error> {
    let src = connect(src_url).await?;
    let mut f = Figures::default();
    // Not timed: the tool is up and delivering.
    mark_and_wait(&src, dst, 0, what).await?;

    let cpu = meters.read();
    let start = Instant::now();
    src.batch_execute(&format!(
        "INSERT INTO items SELECT g, 'name ' || g, g % 100, g * 1.5 FROM generate_series(1, {}) g",
        sizes.bulk
    ))
    .await?;
    f.source_done(0, start);
    mark_and_wait(&src, dst, 1, what).await?;
    f.bulk = sizes.bulk as f64 / f.delivered(0, start);
    f.cpu[0] = meters.since(cpu);

    let insert = src
        .prepare("INSERT INTO items VALUES ($1, 'single ' || $1::bigint, 1, 2.5)")
        .await?;
    let cpu = meters.read();
    let start = Instant::now();
    for i in 0..sizes.singles {
        src.execute(&insert, &[&(10_000_000 + i)]).await?;
    }
    f.source_done(1, start);
    mark_and_wait(&src, dst, 2, what).await?;
    f.singles = sizes.singles as f64 / f.delivered(1, start);
    f.cpu[1] = meters.since(cpu);

    // The clients connect before the clock starts, as the single client did.
    let mut clients = Vec::new();
    for _ in 0..sizes.clients {
        clients.push(connect(src_url).await?);
    }
    let cpu = meters.read();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (c, client) in clients.into_iter().enumerate() {
        let (each, rows) = (sizes.updates_each, sizes.updated_rows);
        tasks.push(tokio::spawn(async move {
            let update = client
                .prepare("UPDATE items SET qty = qty + 1 WHERE id = $1")
                .await?;
            for id in super::update_keys(c as u64, each, rows) {
                client.execute(&update, &[&id]).await?;
            }
            Ok::<(), Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    f.source_done(2, start);
    mark_and_wait(&src, dst, 3, what).await?;
    f.updates = (sizes.clients * sizes.updates_each) as f64 / f.delivered(2, start);
    f.cpu[2] = meters.since(cpu);
    Ok(f)
}

/// A PostgreSQL target's marks.
pub struct PgMarks<'a>(pub &'a tokio_postgres::Client);

impl Marks for PgMarks<'_> {
    async fn holds(&mut self, n: i32) -> Result<bool, Error> {
        Ok(self
            .0
            .query_opt("SELECT 1 FROM mark WHERE id = $1", &[&n])
            .await?
            .is_some())
    }
}
