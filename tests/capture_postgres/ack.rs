//! Acknowledgement discipline, heartbeats on a quiet slot, keepalives on an idle stream.

use super::*;
use tandem::model::PgPosition;

#[tokio::test]
async fn pg_flush_advances_only_on_confirm_and_heartbeats_move_a_quiet_slot() {
    let f = Fixture::start().await;
    f.sql("CREATE TABLE q (id int PRIMARY KEY); CREATE TABLE unpublished (id int)")
        .await;
    let tables = vec![TableRef::new("public", "q")];
    let slot = unique_name("tandem_ack");
    setup(
        &f.url(),
        "tandem_pub",
        &tables,
        &[Slot::named(&slot)],
        false,
    )
    .await
    .expect("setup");
    let created_at = f.confirmed_flush(&slot).await;
    let mut src = PgSource::connect(options(&f.url(), &slot, tables, 1 << 20, None))
        .await
        .expect("connect");
    f.sql("INSERT INTO q VALUES (1)").await;
    let t = next_txn(&mut src).await;
    let Position::Postgres(pos) = t.position.clone() else {
        panic!("not a PostgreSQL position")
    };
    // Unconfirmed: keep the stream busy for a while and check the slot did not move.
    f.sql("INSERT INTO unpublished VALUES (1)").await;
    for _ in 0..3 {
        let _ = tokio::time::timeout(Duration::from_millis(300), src.next()).await;
    }
    assert_eq!(
        f.confirmed_flush(&slot).await,
        created_at,
        "flushed without a confirm"
    );
    src.confirm(&t.position);
    // The keepalive that followed the unpublished insert comes out as a heartbeat once the
    // transaction before it is confirmed.
    let mut early = None;
    drive_until(&mut src, "the slot to reach the confirmed position", |ev| {
        if let Some(CaptureEvent::Heartbeat(Position::Postgres(p))) = ev {
            early = Some(p);
        }
        async { (f.confirmed_flush(&slot).await >= pos.lsn).then_some(()) }
    })
    .await;
    // Quiet as far as this slot goes: WAL moves on (an unpublished table), and heartbeats let the
    // consumer confirm past it.
    f.sql("INSERT INTO unpublished SELECT generate_series(1, 100)")
        .await;
    let wal_now: Lsn = f
        .client
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .expect("current lsn")
        .get::<_, String>(0)
        .parse()
        .expect("an LSN");
    // The first heartbeat may stop short of the end (a keepalive sent while the walsender was still
    // reading the insert's records); it is not acknowledged until confirmed, and once confirmed the
    // later end comes out as the next one.
    let mut beat = match early {
        Some(b) => b,
        None => next_heartbeat(&mut src).await,
    };
    assert!(
        beat.lsn > pos.lsn,
        "a heartbeat at {} behind the slot",
        beat.lsn
    );
    for _ in 0..3 {
        let _ = tokio::time::timeout(Duration::from_millis(300), src.next()).await;
    }
    assert_eq!(
        f.confirmed_flush(&slot).await,
        pos.lsn,
        "a heartbeat was acknowledged unconfirmed"
    );
    while beat.lsn < wal_now {
        src.confirm(&Position::Postgres(beat));
        beat = next_heartbeat(&mut src).await;
    }
    src.confirm(&Position::Postgres(beat));
    drive_until(&mut src, "the slot to pass the quiet WAL", |_| async {
        (f.confirmed_flush(&slot).await >= beat.lsn).then_some(())
    })
    .await;
}

/// Reads the stream until a heartbeat; any transaction is a failure.
async fn next_heartbeat(src: &mut PgSource) -> PgPosition {
    drive_until(src, "a heartbeat past the unpublished writes", |ev| {
        let found = match ev {
            Some(CaptureEvent::Heartbeat(Position::Postgres(p))) => Some(p),
            Some(CaptureEvent::Transaction(t)) => {
                panic!("unexpected transaction at {}", t.position)
            }
            _ => None,
        };
        async move { found }
    })
    .await
}

/// Keeps reading the stream (status updates ride on `next()`) until `check` says done, with a deadline.
pub async fn drive_until<T, Fut>(
    src: &mut PgSource,
    what: &str,
    mut check: impl FnMut(Option<CaptureEvent>) -> Fut,
) -> T
where
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = std::time::Instant::now();
    loop {
        let ev = match tokio::time::timeout(Duration::from_millis(200), src.next()).await {
            Ok(ev) => Some(ev.expect("stream")),
            Err(_) => None,
        };
        if let Some(v) = check(ev).await {
            return v;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "timed out after {DEADLINE:?} waiting for {what}"
        );
    }
}

#[tokio::test]
async fn pg_idle_stream_answers_keepalives_and_survives_a_short_sender_timeout() {
    let f = Fixture::start_with(PgOptions {
        settings: vec![("wal_sender_timeout".into(), "2s".into())],
        ..PgOptions::default()
    })
    .await;
    f.sql("CREATE TABLE k (id int PRIMARY KEY)").await;
    let mut src = f.source(&["k"], 1 << 20).await;
    f.sql("INSERT INTO k VALUES (1)").await;
    next_txn(&mut src).await;
    // Several sender timeouts of silence, read through repeatedly cancelled next() calls.
    let quiet = std::time::Instant::now();
    drive_until(&mut src, "8 s of an idle stream", |ev| {
        if let Some(CaptureEvent::Transaction(t)) = ev {
            panic!("unexpected transaction at {}", t.position);
        }
        async move { (quiet.elapsed() > Duration::from_secs(8)).then_some(()) }
    })
    .await;
    assert_eq!(
        src.reconnects(),
        0,
        "the server dropped an idle but live stream"
    );
    f.sql("INSERT INTO k VALUES (2)").await;
    assert_eq!(
        field(&changes(&next_txn(&mut src).await)[0], "id"),
        Value::Int(2)
    );
}
