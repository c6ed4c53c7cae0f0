//! Prerequisite checks, publication and slot setup, authentication and TLS.

use super::*;

#[tokio::test]
async fn pg_prerequisite_checks_name_the_fix() {
    let f = Fixture::start_with(PgOptions {
        settings: vec![("wal_level".into(), "replica".into())],
        ..PgOptions::default()
    })
    .await;
    f.sql(
        "CREATE TABLE keyed (id int PRIMARY KEY); CREATE TABLE nokey (v text);
           CREATE ROLE bob LOGIN",
    )
    .await;
    let tables = [
        TableRef::new("public", "keyed"),
        TableRef::new("public", "nokey"),
        TableRef::new("public", "missing"),
    ];
    let problems = check_prerequisites(&f.url(), &tables).await;
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    let has = |needle: &str| text.iter().any(|p| p.contains(needle));
    assert!(has("ALTER SYSTEM SET wal_level = logical"), "{text:#?}");
    assert!(
        has("ALTER TABLE \"public\".\"nokey\" REPLICA IDENTITY FULL"),
        "{text:#?}"
    );
    assert!(has("public.missing does not exist"), "{text:#?}");
    assert!(
        !has("keyed"),
        "a table with a primary key was refused: {text:#?}"
    );
    assert_eq!(problems.len(), 3, "{text:#?}");
    let bob_url = f.url().replace("postgres@", "bob@");
    let problems = check_prerequisites(&bob_url, &tables[..1]).await;
    assert!(
        problems
            .iter()
            .any(|p| p.fix.contains("ALTER ROLE \"bob\" WITH REPLICATION")),
        "{problems:#?}"
    );
}

#[tokio::test]
async fn pg_setup_is_idempotent_and_dry_run_runs_nothing() {
    let f = Fixture::start().await;
    f.sql("CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY)")
        .await;
    let a = vec![TableRef::new("public", "a")];
    let slots = vec![Slot::named(&tandem::names::slot("crm", "helpdesk"))];
    let planned = setup(&f.url(), "tandem_pub", &a, &slots, true)
        .await
        .expect("dry run");
    assert_eq!(
        planned,
        vec![
            "CREATE PUBLICATION \"tandem_pub\" FOR TABLE \"public\".\"a\"".to_string(),
            "SELECT pg_create_logical_replication_slot('tandem_crm_to_helpdesk', 'pgoutput')"
                .to_string(),
        ]
    );
    let pubs: i64 = f
        .client
        .query_one("SELECT count(*) FROM pg_publication", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(pubs, 0, "the dry run created something");
    assert_eq!(
        setup(&f.url(), "tandem_pub", &a, &slots, false)
            .await
            .expect("setup"),
        planned
    );
    assert!(setup(&f.url(), "tandem_pub", &a, &slots, false)
        .await
        .expect("again")
        .is_empty());
    let both = vec![TableRef::new("public", "a"), TableRef::new("public", "b")];
    assert_eq!(
        setup(&f.url(), "tandem_pub", &both, &slots, false)
            .await
            .expect("add b"),
        vec!["ALTER PUBLICATION \"tandem_pub\" ADD TABLE \"public\".\"b\"".to_string()]
    );
}

#[tokio::test]
async fn pg_password_authentication_scram_and_md5() {
    let f = Fixture::start_with(PgOptions {
        hba_lines: vec![
            "host all alice 127.0.0.1/32 scram-sha-256".into(),
            "host all bob 127.0.0.1/32 md5".into(),
        ],
        ..PgOptions::default()
    })
    .await;
    f.sql(
        "CREATE TABLE t (id int PRIMARY KEY);
         CREATE ROLE alice LOGIN REPLICATION PASSWORD 's3cret:alice';
         SET password_encryption = 'md5';
         CREATE ROLE bob LOGIN REPLICATION PASSWORD 'bob-pw';
         GRANT SELECT ON t TO alice, bob;",
    )
    .await;
    let tables = vec![TableRef::new("public", "t")];
    setup(&f.url(), "tandem_pub", &tables, &[], false)
        .await
        .expect("setup");
    let port = f.pg.port();
    for (user, password) in [("alice", "s3cret%3Aalice"), ("bob", "bob-pw")] {
        let url = format!("postgres://{user}:{password}@127.0.0.1:{port}/{}", f.db);
        let slot = unique_name(&format!("tandem_{user}"));
        let mut opts = options(&url, &slot, tables.clone(), 1 << 20, None);
        opts.temporary_slot = true;
        let mut src = PgSource::connect(opts)
            .await
            .unwrap_or_else(|e| panic!("{user} connects: {e}"));
        f.sql("INSERT INTO t SELECT coalesce(max(id), 0) + 1 FROM t")
            .await;
        let t = next_txn(&mut src).await;
        assert_eq!(changes(&t).len(), 1, "{user}");
        let dbg = format!("{src:?}");
        assert!(
            !dbg.contains("s3cret") && !dbg.contains("bob-pw"),
            "password in Debug: {dbg}"
        );
    }
    let url = format!("postgres://alice:wrong-pw@127.0.0.1:{port}/{}", f.db);
    let err = PgSource::connect(options(&url, "tandem_x", tables, 1 << 20, None))
        .await
        .expect_err("a wrong password is refused");
    assert!(
        !err.is_transient(),
        "a wrong password is not worth retrying: {err}"
    );
    assert!(
        !format!("{err} {err:?}").contains("wrong-pw"),
        "password in the error: {err:?}"
    );
}

/// A server that asks for the password in clear text over a connection that `sslmode=prefer` left
/// unencrypted (the server has no TLS) gets no password: the error names the fix. With
/// `sslmode=disable` the operator chose plain text, and it is sent.
#[tokio::test]
async fn pg_cleartext_password_is_not_sent_after_a_prefer_downgrade() {
    let f = Fixture::start_with(PgOptions {
        hba_lines: vec!["host all carl 127.0.0.1/32 password".into()],
        ..PgOptions::default()
    })
    .await;
    f.sql(
        "CREATE TABLE t (id int PRIMARY KEY);
         CREATE ROLE carl LOGIN REPLICATION PASSWORD 'carl-pw';
         GRANT SELECT ON t TO carl;",
    )
    .await;
    let tables = vec![TableRef::new("public", "t")];
    setup(&f.url(), "tandem_pub", &tables, &[], false)
        .await
        .expect("setup");
    let base = format!("postgres://carl:carl-pw@127.0.0.1:{}/{}", f.pg.port(), f.db);
    let err = PgSource::connect(options(&base, "tandem_c", tables.clone(), 1 << 20, None))
        .await
        .expect_err("no clear-text password after a TLS downgrade");
    let text = err.to_string();
    assert!(
        text.contains("clear text") && text.contains("sslmode=disable"),
        "{text}"
    );
    assert!(!err.is_transient(), "{err}");
    let mut opts = options(
        &format!("{base}?sslmode=disable"),
        &unique_name("tandem_carl"),
        tables,
        1 << 20,
        None,
    );
    opts.temporary_slot = true;
    PgSource::connect(opts)
        .await
        .expect("sslmode=disable sends it knowingly");
}

#[tokio::test]
async fn pg_tls_require_and_verify_full() {
    let certs = crate::support::make_certificates();
    let f = Fixture::start_with(PgOptions {
        settings: vec![
            ("ssl".into(), "on".into()),
            (
                "ssl_cert_file".into(),
                certs.join("server.pem").display().to_string(),
            ),
            (
                "ssl_key_file".into(),
                certs.join("server.key").display().to_string(),
            ),
        ],
        ..PgOptions::default()
    })
    .await;
    f.sql("CREATE TABLE t (id int PRIMARY KEY)").await;
    let tables = vec![TableRef::new("public", "t")];
    setup(&f.url(), "tandem_pub", &tables, &[], false)
        .await
        .expect("setup");
    let port = f.pg.port();
    let ca = certs.join("ca.pem").display().to_string();
    let urls = [
        format!(
            "postgres://postgres@127.0.0.1:{port}/{}?sslmode=require",
            f.db
        ),
        format!(
            "postgres://postgres@localhost:{port}/{}?sslmode=verify-full&sslrootcert={ca}",
            f.db
        ),
    ];
    for url in urls {
        let mut opts = options(
            &url,
            &unique_name("tandem_tls"),
            tables.clone(),
            1 << 20,
            None,
        );
        opts.temporary_slot = true;
        let mut src = PgSource::connect(opts)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        f.sql("INSERT INTO t SELECT coalesce(max(id), 0) + 1 FROM t")
            .await;
        next_txn(&mut src).await;
        let rows = f
            .client
            .query(
                "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'tandem'",
                &[],
            )
            .await
            .expect("pg_stat_ssl");
        assert!(!rows.is_empty(), "no tandem connection found");
        assert!(
            rows.iter().all(|r| r.get::<_, bool>(0)),
            "a tandem connection is not encrypted ({url})"
        );
    }
    // verify-full against the public roots must refuse a private CA, definitively.
    let url = format!(
        "postgres://postgres@localhost:{port}/{}?sslmode=verify-full",
        f.db
    );
    let err = PgSource::connect(options(&url, "tandem_tls_bad", tables, 1 << 20, None))
        .await
        .expect_err("an unknown CA is refused under verify-full");
    assert!(!err.is_transient(), "{err}");
    let _ = std::fs::remove_dir_all(&certs);
}
