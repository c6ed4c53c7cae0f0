//! What `tandem setup` installs, on real servers: the cheap paths (column defaults, the tombstone
//! flag on PostgreSQL, the revive trigger only where needed) keep every guarantee of the row
//! triggers they replaced. PostgreSQL's tests are here, MariaDB's in `maria.rs`. A local insert of a key bumps the key's tombstones in its own
//! transaction, including a delete that was still open when the insert began.

use std::time::Duration;

use mysql_async::prelude::Queryable;

use crate::support::{tandem_cli, wait_for, Pair};

const PG_TABLE: &str = "CREATE TABLE items (id int PRIMARY KEY, v text)";
const MARIA_TABLE: &str = "CREATE TABLE items (id int PRIMARY KEY, v varchar(20))";

mod maria;

async fn pair() -> Pair {
    Pair::start(
        PG_TABLE,
        MARIA_TABLE,
        "[[tables]]\nname = \"items\"\nkey = [\"id\"]\n",
    )
    .await
}

/// `(node, revived)` of the tombstones of key `id` of `public.items` on PostgreSQL.
async fn pg_stones(c: &tokio_postgres::Client, id: i32) -> Vec<(String, i64)> {
    pg_stones_of(c, "public.items", id).await
}

/// `(node, revived)` of the tombstones of key `id` of `table` on PostgreSQL.
async fn pg_stones_of(c: &tokio_postgres::Client, table: &str, id: i32) -> Vec<(String, i64)> {
    c.query(
        "SELECT node, revived FROM tandem.tombstone WHERE target_table = $1 \
         AND row_key = $2 ORDER BY node",
        &[&table, &format!("{{\"id\":\"{id}\"}}")],
    )
    .await
    .expect("tombstones")
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

/// The insert of a key waits for a delete of it that is still open; the delete's tombstone, the
/// table's first of another node's delete (the applier's), is visible once it commits, and its
/// flag was raised before. The row trigger bumped tombstones before the row was in, so it missed
/// this one: the insert then read, on the other node, as concurrent with a delete it had waited
/// for. A local delete raises only the tombstone flag: the re-insert of its key bumps nothing (a
/// peer counts this node's own deletes as seen).
#[tokio::test]
async fn pg_a_local_insert_that_waited_for_a_delete_of_its_key_bumps_its_tombstone() {
    let pair = pair().await;
    let a = pair.pg.connect("crm").await.expect("connect");
    let b = pair.pg.connect("crm").await.expect("connect");
    // Watched from a session of its own: inside `a`'s open transaction pg_stat_activity would be
    // the snapshot of its first read, and a first read before the insert waits never changes.
    let watch = pair.pg.connect("crm").await.expect("connect");
    let flags = "SELECT pg_sequence_last_value('tandem.tombstoned_public_items'), \
                 pg_sequence_last_value('tandem.peer_tombstoned_public_items')";
    let raised = async |c: &tokio_postgres::Client| -> (Option<i64>, Option<i64>) {
        let r = c.query_one(flags, &[]).await.expect("flags");
        (r.get(0), r.get(1))
    };
    a.batch_execute(
        "INSERT INTO items VALUES (1, 'doomed'), (3, 'mine'); DELETE FROM items WHERE id = 3; \
         INSERT INTO items VALUES (3, 'mine again')",
    )
    .await
    .expect("a local delete and re-insert");
    assert_eq!(
        raised(&watch).await,
        (Some(1), None),
        "a local delete raises the tombstone flag only"
    );
    assert_eq!(
        pg_stones(&a, 3).await,
        vec![("crm".to_string(), 0)],
        "the re-insert left its own node's tombstone alone"
    );
    a.batch_execute(
        "SET tandem.applying = 'on'; BEGIN; DELETE FROM items WHERE id = 1; \
         INSERT INTO tandem.tombstone (target_table, row_key, version, node) \
         VALUES ('public.items', '{\"id\":\"1\"}', 42, 'helpdesk')",
    )
    .await
    .expect("an applied delete, open");
    assert_eq!(
        raised(&watch).await,
        (Some(1), Some(1)),
        "the applied delete's tombstone raised the peer flag before its commit"
    );
    let insert = tokio::spawn(async move {
        b.batch_execute("INSERT INTO items VALUES (1, 'again')")
            .await
            .map(|()| b)
    });
    wait_for(
        "the insert waiting for the delete",
        Duration::from_secs(30),
        || async {
            let waiting: i64 = watch
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
                     AND query LIKE 'INSERT INTO items%'",
                    &[],
                )
                .await
                .ok()?
                .get(0);
            (waiting == 1).then_some(())
        },
    )
    .await;
    a.batch_execute("COMMIT; SET tandem.applying = 'off'")
        .await
        .expect("the delete commits");
    insert
        .await
        .expect("the insert task")
        .expect("the insert, once the delete committed");
    assert_eq!(
        pg_stones(&a, 1).await,
        vec![("helpdesk".to_string(), 1)],
        "the re-insert bumped the tombstone of the delete it waited for"
    );
}

/// A table's first tombstone written by the applier (its session skips tandem's triggers) flags the
/// table too: the next local insert of the key bumps it. A table that never had a delete keeps its
/// flag down, so its inserts skip the lookup.
#[tokio::test]
async fn pg_a_local_insert_bumps_an_applied_tombstone_of_its_key() {
    let pair = pair().await;
    let c = pair.pg.connect("crm").await.expect("connect");
    let flag = "SELECT pg_sequence_last_value('tandem.tombstoned_public_items')";
    c.batch_execute("INSERT INTO items VALUES (1, 'a'), (2, 'b')")
        .await
        .expect("inserts");
    let up: Option<i64> = c.query_one(flag, &[]).await.expect("flag").get(0);
    assert_eq!(up, None, "inserts alone raise no flag");
    let applier = pair.pg.connect("crm").await.expect("connect");
    applier
        .batch_execute(
            "SET tandem.applying = 'on'; \
             INSERT INTO tandem.tombstone (target_table, row_key, version, node) \
             VALUES ('public.items', '{\"id\":\"7\"}', 42, 'helpdesk')",
        )
        .await
        .expect("an applied delete's tombstone");
    let up: Option<i64> = c.query_one(flag, &[]).await.expect("flag").get(0);
    assert_eq!(up, Some(1), "the applied tombstone raised the flag");
    c.batch_execute("INSERT INTO items VALUES (7, 'back'), (8, 'new')")
        .await
        .expect("a local insert");
    assert_eq!(
        pg_stones(&c, 7).await,
        vec![("helpdesk".to_string(), 1)],
        "the insert bumped the applied tombstone"
    );
    // A local delete of two rows and a re-insert of one: the re-inserted key's tombstone is bumped.
    c.batch_execute(
        "DELETE FROM items WHERE id IN (1, 2); INSERT INTO items VALUES (2, 'b again')",
    )
    .await
    .expect("delete and re-insert");
    assert_eq!(pg_stones(&c, 1).await, vec![("crm".to_string(), 0)]);
    assert_eq!(pg_stones(&c, 2).await, vec![("crm".to_string(), 1)]);
    let stamped: (String, bool) = c
        .query_one(
            "SELECT _tandem_origin, _tandem_version > 1000000000000000 FROM items WHERE id = 2",
            &[],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .expect("the row");
    assert_eq!(
        stamped,
        ("crm".to_string(), true),
        "defaults stamp the insert"
    );
}

/// An install made by the previous version (a BEFORE INSERT OR UPDATE trigger whose function bumped
/// tombstones, and the delete trigger) is moved onto the new triggers by running setup again: the
/// old function no longer bumps (a re-insert bumps its tombstone once, not twice), and the flag
/// goes up for the tombstones that were already there.
#[tokio::test]
async fn pg_setup_moves_an_earlier_install_onto_the_new_triggers() {
    let pair = pair().await;
    let c = pair.pg.connect("crm").await.expect("connect");
    // The previous version's stamp trigger, as it installed it.
    c.batch_execute(
        "DROP TRIGGER tandem_stamp ON items; DROP TRIGGER tandem_stamp_update ON items; \
         DROP TRIGGER IF EXISTS tandem_revive ON items; \
         CREATE OR REPLACE FUNCTION tandem.stamp_public_items() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN \
           IF current_setting('tandem.applying', true) = 'on' THEN RETURN NEW; END IF; \
           NEW._tandem_origin := 'crm'; \
           IF TG_OP = 'UPDATE' THEN \
             NEW._tandem_version := greatest(OLD._tandem_version + 1, (extract(epoch from clock_timestamp()) * 1000000)::bigint); \
           ELSE \
             NEW._tandem_version := greatest(coalesce(NEW._tandem_version, 0) + 1, (extract(epoch from clock_timestamp()) * 1000000)::bigint); \
             UPDATE tandem.tombstone SET revived = revived + 1 WHERE target_table = 'public.items' \
               AND row_key = '{' || to_json('id'::text)::text || ':' || to_json(NEW.id::text)::text || '}'; \
           END IF; \
           RETURN NEW; \
         END $$; \
         CREATE TRIGGER tandem_stamp BEFORE INSERT OR UPDATE ON items FOR EACH ROW \
           EXECUTE FUNCTION tandem.stamp_public_items(); \
         INSERT INTO tandem.tombstone (target_table, row_key, version, node) \
           VALUES ('public.items', '{\"id\":\"1\"}', 42, 'helpdesk'); \
         SELECT setval('tandem.tombstoned_public_items', 1, false); \
         DROP SEQUENCE tandem.peer_tombstoned_public_items CASCADE; \
         CREATE OR REPLACE FUNCTION tandem.mark_tombstoned() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN RETURN NULL; END $$",
    )
    .await
    .expect("the previous version's install");
    let setup = tandem_cli(&["setup"], &pair.config).await;
    assert!(
        setup.status.success(),
        "setup over the earlier install: {}",
        String::from_utf8_lossy(&setup.stderr)
    );
    let mut triggers: Vec<String> = c
        .query(
            "SELECT tgname::text FROM pg_trigger WHERE tgrelid = 'items'::regclass AND NOT tgisinternal",
            &[],
        )
        .await
        .expect("triggers")
        .iter()
        .map(|r| r.get(0))
        .collect();
    triggers.sort();
    assert_eq!(
        triggers,
        [
            "tandem_revive",
            "tandem_stamp",
            "tandem_stamp_update",
            "tandem_tombstone"
        ],
        "the table's triggers after the upgrade"
    );
    let def: String = c
        .query_one(
            "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'items'::regclass AND tgname = 'tandem_stamp'",
            &[],
        )
        .await
        .expect("the stamp trigger")
        .get(0);
    assert!(
        def.contains("BEFORE INSERT ON") && def.contains("WHEN"),
        "{def}"
    );
    c.batch_execute("INSERT INTO items VALUES (1, 'back')")
        .await
        .expect("a re-insert");
    assert_eq!(
        pg_stones(&c, 1).await,
        vec![("helpdesk".to_string(), 1)],
        "the tombstone written before the upgrade raised the flag and was bumped once"
    );
}

/// One statement inserting many keys back bumps each key's tombstone once (the revive trigger
/// runs once per statement, joined to the inserted rows), and leaves new keys' alone.
#[tokio::test]
async fn pg_a_statement_inserting_many_keys_back_bumps_each_tombstone_once() {
    let pair = pair().await;
    let c = pair.pg.connect("crm").await.expect("connect");
    c.batch_execute(
        "INSERT INTO items SELECT g, 'a' FROM generate_series(1, 3) g; \
         SET tandem.applying = 'on'; DELETE FROM items WHERE id IN (1, 2); \
         INSERT INTO tandem.tombstone (target_table, row_key, version, node) \
         VALUES ('public.items', '{\"id\":\"1\"}', 42, 'helpdesk'), \
         ('public.items', '{\"id\":\"2\"}', 42, 'helpdesk'); SET tandem.applying = 'off'; \
         INSERT INTO items SELECT g, 'back' FROM generate_series(1, 5) g WHERE g <> 3",
    )
    .await
    .expect("writes");
    for id in [1, 2] {
        assert_eq!(
            pg_stones(&c, id).await,
            vec![("helpdesk".to_string(), 1)],
            "key {id}"
        );
    }
    for id in [3, 4, 5] {
        assert!(pg_stones(&c, id).await.is_empty(), "key {id}");
    }
}

/// Whether `tandem_revive` on `table` is a row trigger (`pg_trigger.tgtype` bit 0); `None` when
/// the table has none.
async fn revive_is_row_trigger(c: &tokio_postgres::Client, table: &str) -> Option<bool> {
    c.query_opt(
        "SELECT tgtype FROM pg_trigger WHERE tgrelid = $1::text::regclass AND tgname = 'tandem_revive'",
        &[&table],
    )
    .await
    .expect("the revive trigger")
    .map(|r| r.get::<_, i16>(0) & 1 == 1)
}

/// The revive trigger comes with the table's first tombstone of another node's delete, in the
/// transaction that writes it when no applier made it before (a rolled-back one leaves none),
/// after waiting for the transactions that hold the table's write locks (at most a second longer
/// than `deadlock_timeout`); setup keeps it where such a tombstone is and drops it elsewhere.
/// Until then a bulk insert pays no transition table.
#[tokio::test]
async fn pg_the_revive_trigger_comes_with_the_first_tombstone_of_another_nodes_delete() {
    let pair = pair().await;
    let c = pair.pg.connect("crm").await.expect("connect");
    assert_eq!(
        revive_is_row_trigger(&c, "items").await,
        None,
        "after setup"
    );
    c.batch_execute(
        "INSERT INTO items VALUES (1, 'a'), (2, 'b'); DELETE FROM items WHERE id = 1; \
         INSERT INTO items VALUES (1, 'a again')",
    )
    .await
    .expect("a local delete and re-insert");
    assert_eq!(
        revive_is_row_trigger(&c, "items").await,
        None,
        "a local delete makes no revive trigger"
    );
    let applier = pair.pg.connect("crm").await.expect("connect");
    let stone = "INSERT INTO tandem.tombstone (target_table, row_key, version, node) \
                 VALUES ('public.items', '{\"id\":\"2\"}', 42, 'helpdesk')";
    applier
        .batch_execute(&format!(
            "BEGIN; SET LOCAL tandem.applying = 'on'; DELETE FROM items WHERE id = 2; {stone}; ROLLBACK"
        ))
        .await
        .expect("an applied delete, rolled back");
    assert_eq!(
        revive_is_row_trigger(&c, "items").await,
        None,
        "the trigger went with the rolled-back tombstone"
    );
    // A transaction of the application's open on the table: making the trigger waits a second
    // for it, then fails the applier's transaction (lock_not_available, which it retries).
    c.batch_execute("BEGIN; INSERT INTO items VALUES (3, 'open')")
        .await
        .expect("an open insert");
    let started = std::time::Instant::now();
    let refused = applier
        .batch_execute(&format!(
            "BEGIN; SET LOCAL tandem.applying = 'on'; DELETE FROM items WHERE id = 2; {stone}"
        ))
        .await
        .expect_err("the trigger cannot be made while the insert is open");
    assert_eq!(
        refused.code(),
        Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE),
        "{refused:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    applier.batch_execute("ROLLBACK").await.expect("rollback");
    c.batch_execute("COMMIT").await.expect("the insert commits");
    applier
        .batch_execute(&format!(
            "BEGIN; SET LOCAL tandem.applying = 'on'; DELETE FROM items WHERE id = 2; {stone}"
        ))
        .await
        .expect("the applied delete, again");
    let timeout: String = applier
        .query_one("SELECT current_setting('lock_timeout')", &[])
        .await
        .expect("lock_timeout")
        .get(0);
    assert_eq!(timeout, "0", "the applier's lock_timeout is put back");
    applier.batch_execute("COMMIT").await.expect("commit");
    assert_eq!(
        revive_is_row_trigger(&c, "items").await,
        Some(false),
        "the first tombstone of another node's delete made a statement trigger"
    );
    c.batch_execute("INSERT INTO items VALUES (2, 'back')")
        .await
        .expect("a local re-insert");
    assert_eq!(
        pg_stones(&c, 2).await,
        vec![("helpdesk".to_string(), 1)],
        "the re-insert bumped the applied tombstone"
    );
    let setup = crate::support::tandem_cli(&["setup"], &pair.config).await;
    assert!(
        setup.status.success(),
        "{}",
        crate::support::output_text(&setup)
    );
    assert_eq!(
        revive_is_row_trigger(&c, "items").await,
        Some(false),
        "setup keeps it where another node's tombstone is"
    );
    c.batch_execute("DELETE FROM tandem.tombstone WHERE node = 'helpdesk'")
        .await
        .expect("the tombstones pruned");
    let setup = crate::support::tandem_cli(&["setup"], &pair.config).await;
    assert!(
        setup.status.success(),
        "{}",
        crate::support::output_text(&setup)
    );
    assert_eq!(
        revive_is_row_trigger(&c, "items").await,
        None,
        "setup drops it where none is"
    );
}

/// Setup over the previous row-level revive trigger leaves one statement-level trigger, and a
/// re-insert bumps its tombstone once. On a partitioned table the trigger stays a row trigger
/// (cloned onto each partition), so that a row inserted into a partition directly bumps too.
#[tokio::test]
async fn pg_setup_moves_the_row_revive_trigger_to_a_statement_one_but_partitions_keep_rows() {
    let pair = Pair::start(
        "CREATE TABLE items (id int PRIMARY KEY, v text); \
         CREATE TABLE parts (id int PRIMARY KEY, v text) PARTITION BY RANGE (id); \
         CREATE TABLE parts_low PARTITION OF parts FOR VALUES FROM (0) TO (100); \
         CREATE TABLE parts_high PARTITION OF parts FOR VALUES FROM (100) TO (200)",
        "CREATE TABLE items (id int PRIMARY KEY, v varchar(20)); \
         CREATE TABLE parts (id int PRIMARY KEY, v varchar(20))",
        "[[tables]]\nname = \"items\"\nkey = [\"id\"]\n[[tables]]\nname = \"parts\"\nkey = [\"id\"]\n",
    )
    .await;
    let c = pair.pg.connect("crm").await.expect("connect");
    // Tombstones of another node's deletes, as the applier writes them, make the triggers.
    c.batch_execute(
        "INSERT INTO tandem.tombstone (target_table, row_key, version, node) \
         VALUES ('public.items', '{\"id\":\"1\"}', 42, 'helpdesk'), \
         ('public.parts', '{\"id\":\"150\"}', 42, 'helpdesk')",
    )
    .await
    .expect("tombstones");
    assert_eq!(revive_is_row_trigger(&c, "items").await, Some(false));
    assert_eq!(revive_is_row_trigger(&c, "parts").await, Some(true));
    // The previous version's row trigger, as it installed it.
    c.batch_execute(
        "DROP TRIGGER tandem_revive ON items; \
         CREATE TRIGGER tandem_revive AFTER INSERT ON items FOR EACH ROW \
         WHEN (pg_sequence_last_value('tandem.tombstoned_public_items'::regclass) IS NOT NULL) \
         EXECUTE FUNCTION tandem.revive_public_items()",
    )
    .await
    .expect("the previous row trigger");
    let setup = crate::support::tandem_cli(&["setup"], &pair.config).await;
    assert!(
        setup.status.success(),
        "{}",
        crate::support::output_text(&setup)
    );
    assert_eq!(revive_is_row_trigger(&c, "items").await, Some(false));
    assert_eq!(revive_is_row_trigger(&c, "parts").await, Some(true));
    c.batch_execute(
        "INSERT INTO items VALUES (1, 'back'); \
         INSERT INTO parts_high VALUES (150, 'back')",
    )
    .await
    .expect("writes");
    assert_eq!(pg_stones(&c, 1).await, vec![("helpdesk".to_string(), 1)]);
    assert_eq!(
        pg_stones_of(&c, "public.parts", 150).await,
        vec![("helpdesk".to_string(), 1)],
        "the partition's insert bumped"
    );
}

/// The applier's session runs with `session_replication_role = replica`, as PostgreSQL's own apply
/// workers do: no ordinary trigger fires for a replicated row (the application's own triggers
/// included, as with native replication), while the trigger that raises the tombstone flag is
/// `ENABLE ALWAYS`, so a replicated delete still raises it, and a later local insert of the key
/// bumps its tombstone.
#[tokio::test]
async fn pg_replicated_rows_fire_no_ordinary_trigger_but_raise_the_tombstone_flag() {
    let pair = pair().await;
    let c = pair.pg.connect("crm").await.expect("connect");
    c.batch_execute(
        "CREATE TABLE fired (n int); \
         CREATE FUNCTION count_fired() RETURNS trigger LANGUAGE plpgsql AS \
           $$ BEGIN INSERT INTO fired VALUES (1); RETURN NEW; END $$; \
         CREATE TRIGGER app_audit AFTER INSERT OR UPDATE OR DELETE ON items FOR EACH ROW \
           EXECUTE FUNCTION count_fired()",
    )
    .await
    .expect("the application's trigger");
    let run = crate::support::start_tandem_run(&pair.config, 2).await;
    let mut desk = pair.maria.connect("desk").await.expect("connect");
    desk.query_drop(
        "INSERT INTO items VALUES (1, 'a'), (2, 'b'), (3, 'c'); \
         UPDATE items SET v = 'b2' WHERE id = 2; DELETE FROM items WHERE id = 3",
    )
    .await
    .expect("writes on helpdesk");
    wait_for(
        "helpdesk's writes on crm",
        Duration::from_secs(60),
        || async {
            let rows: Vec<(i32, String)> = c
                .query("SELECT id, v FROM items ORDER BY id", &[])
                .await
                .ok()?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            (rows == [(1, "a".to_string()), (2, "b2".to_string())]).then_some(())
        },
    )
    .await;
    let count = "SELECT count(*) FROM fired";
    let fired: i64 = c.query_one(count, &[]).await.expect("count").get(0);
    assert_eq!(
        fired, 0,
        "the application's trigger fired for replicated rows"
    );
    let flag: Option<i64> = c
        .query_one(
            "SELECT pg_sequence_last_value('tandem.tombstoned_public_items')",
            &[],
        )
        .await
        .expect("flag")
        .get(0);
    assert_eq!(
        flag,
        Some(1),
        "the replicated delete's tombstone raised the flag"
    );
    let peer: Option<i64> = c
        .query_one(
            "SELECT pg_sequence_last_value('tandem.peer_tombstoned_public_items')",
            &[],
        )
        .await
        .expect("peer flag")
        .get(0);
    assert_eq!(peer, Some(1), "and the peer flag");
    c.batch_execute("INSERT INTO items VALUES (3, 'back')")
        .await
        .expect("a local insert");
    assert_eq!(
        pg_stones(&c, 3).await,
        vec![("helpdesk".to_string(), 1)],
        "the local insert bumped the replicated delete's tombstone"
    );
    let fired: i64 = c.query_one(count, &[]).await.expect("count").get(0);
    assert_eq!(fired, 1, "a local write fires the application's trigger");
    crate::support::stop_tandem_run(run).await;
}
