//! TLS on every connection tandem makes: a PostgreSQL that accepts TLS only (`hostssl` lines, plain
//! `host` rejected) and a MariaDB whose user must use TLS (`REQUIRE SSL`), paired through
//! `sslmode=verify-full` and `require_ssl=true&ssl_ca=…`: setup, check, status and a run that
//! replicates both ways. Then the errors of a wrong root certificate and of a host name the
//! certificate does not list.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mysql_async::prelude::Queryable;
use tandem::connect::ConnectError;
use tandem::harness::{MariaDb, MariaDbOptions, PgOptions, PgServer};

use crate::support::{make_certificates, start_tandem_run, unique_name, wait_for};

const DEADLINE: Duration = Duration::from_secs(30);
const PG_PASSWORD: &str = "pg-s3cret";
const MARIA_PASSWORD: &str = "maria-s3cret";

const MAPPING: &str = r#"
[[tables]]
name = "customer"
key = ["id"]
on = { crm = "public.customers", helpdesk = "clients" }

[[tables.columns]]
name = "id"
on = { helpdesk = "client_id" }
"#;

struct TlsServers {
    pg: PgServer,
    maria: MariaDb,
    certs: PathBuf,
}

impl Drop for TlsServers {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.certs);
    }
}

/// PostgreSQL with ssl on and only `hostssl` entries for TCP, MariaDB with a certificate and a
/// `tandem` user that must use TLS; both hold the tables of [`MAPPING`]. `None` (outside CI only)
/// when this PostgreSQL build has no TLS.
async fn tls_servers() -> Option<TlsServers> {
    let certs = make_certificates();
    let file = |name: &str| certs.join(name).display().to_string();
    let pg = PgServer::start_with(PgOptions {
        settings: vec![
            ("ssl".into(), "on".into()),
            ("ssl_cert_file".into(), file("server.pem")),
            ("ssl_key_file".into(), file("server.key")),
        ],
        hba_lines: vec![
            "hostssl all postgres 127.0.0.1/32 trust".into(),
            "hostssl all all 127.0.0.1/32 scram-sha-256".into(),
            "host all all all reject".into(),
        ],
    });
    let maria = MariaDb::start_with(MariaDbOptions {
        settings: vec![
            ("ssl-cert".into(), file("server.pem")),
            ("ssl-key".into(), file("server.key")),
            ("ssl-ca".into(), file("ca.pem")),
        ],
    });
    let (pg, maria) = tokio::join!(pg, maria);
    let pg = match pg {
        Err(tandem::harness::HarnessError::NotReady { log, .. })
            if log.contains("not supported by this build")
                && std::env::var("CI").as_deref() != Ok("true") =>
        {
            eprintln!("skipped: this PostgreSQL build has no TLS (set PG_BIN to one that has)");
            let _ = std::fs::remove_dir_all(&certs);
            return None;
        }
        other => other.expect("PostgreSQL with ssl=on starts"),
    };
    let maria = maria.expect("MariaDB with TLS starts");
    pg.create_database("crm").await.unwrap();
    let c = pg.connect("crm").await.expect("harness connects over TLS");
    c.batch_execute(&format!(
        "CREATE ROLE tandem LOGIN SUPERUSER PASSWORD '{PG_PASSWORD}';
         CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL)"
    ))
    .await
    .expect("PostgreSQL schema");
    maria.create_database("desk").await.unwrap();
    let mut m = maria.connect("desk").await.unwrap();
    m.query_drop(format!(
        "CREATE USER 'tandem'@'%' IDENTIFIED BY '{MARIA_PASSWORD}' REQUIRE SSL;
         GRANT ALL PRIVILEGES ON *.* TO 'tandem'@'%' WITH GRANT OPTION;
         CREATE TABLE clients (client_id int PRIMARY KEY, name varchar(200) NOT NULL)"
    ))
    .await
    .expect("MariaDB schema");
    m.disconnect().await.unwrap();
    Some(TlsServers { pg, maria, certs })
}

impl TlsServers {
    fn pg_url(&self, host: &str, ca: &Path) -> String {
        format!(
            "postgres://tandem:{PG_PASSWORD}@{host}:{}/crm?sslmode=verify-full&sslrootcert={}",
            self.pg.port(),
            ca.display()
        )
    }

    fn maria_url(&self, host: &str, ca: &Path) -> String {
        format!(
            "mysql://tandem:{MARIA_PASSWORD}@{host}:{}/desk?require_ssl=true&ssl_ca={}",
            self.maria.port(),
            ca.display()
        )
    }

    /// A configuration file pairing both nodes with `ca` as their trusted root.
    fn config(&self, ca: &Path) -> PathBuf {
        let text = format!(
            "[nodes.crm]\nurl = \"{}\"\n[nodes.helpdesk]\nurl = \"{}\"\n{MAPPING}",
            self.pg_url("localhost", ca),
            self.maria_url("localhost", ca)
        );
        let path = std::env::temp_dir().join(format!("{}.toml", unique_name("tandem_tls")));
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// Runs `tandem <command> --config <config>`: whether it succeeded, and what it printed.
async fn tandem(command: &str, config: &Path) -> (bool, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args([command, "--config"])
        .arg(config)
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn setup_check_and_run_both_ways_over_verified_tls() {
    let Some(s) = tls_servers().await else {
        return;
    };
    // The servers really refuse plain connections, so whatever works below went through TLS.
    let plain = format!(
        "postgres://tandem:{PG_PASSWORD}@127.0.0.1:{}/crm?sslmode=disable",
        s.pg.port()
    );
    let err = tandem::connect::postgres(&plain)
        .await
        .map(drop)
        .expect_err("hostssl-only PostgreSQL refuses a plain connection");
    assert!(
        err.to_string().contains("sslmode=require"),
        "the refusal names the fix: {err}"
    );
    let plain = format!(
        "mysql://tandem:{MARIA_PASSWORD}@127.0.0.1:{}/desk",
        s.maria.port()
    );
    let opts = tandem::connect::mysql_opts(&plain).unwrap();
    assert!(
        tandem::connect::mysql(opts).await.is_err(),
        "a REQUIRE SSL user connects in plain text"
    );

    let config = s.config(&s.certs.join("ca.pem"));
    for command in ["setup", "check"] {
        let (ok, out) = tandem(command, &config).await;
        assert!(ok, "tandem {command} over TLS failed:\n{out}");
    }
    let mut run = start_tandem_run(&config, 2).await;

    let pg = s.pg.connect("crm").await.unwrap();
    let mut maria = s.maria.connect("desk").await.unwrap();
    pg.batch_execute("INSERT INTO customers VALUES (1, 'Ada')")
        .await
        .unwrap();
    maria
        .query_drop("INSERT INTO clients VALUES (2, 'Grace')")
        .await
        .unwrap();
    wait_for("PostgreSQL's row on MariaDB", DEADLINE, || async {
        let mut c = s.maria.connect("desk").await.ok()?;
        let name: Option<String> = c
            .query_first("SELECT name FROM clients WHERE client_id = 1")
            .await
            .ok()?;
        let _ = c.disconnect().await;
        (name.as_deref() == Some("Ada")).then_some(())
    })
    .await;
    wait_for("MariaDB's row on PostgreSQL", DEADLINE, || async {
        let row = pg
            .query_opt("SELECT name FROM customers WHERE id = 2", &[])
            .await
            .ok()??;
        (row.get::<_, String>(0) == "Grace").then_some(())
    })
    .await;

    // Every session tandem holds on PostgreSQL (apply, replication, heartbeat) is encrypted.
    let row = pg
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE NOT s.ssl) FROM pg_stat_ssl s \
             JOIN pg_stat_activity a USING (pid) WHERE a.usename = 'tandem'",
            &[],
        )
        .await
        .unwrap();
    let (sessions, plain): (i64, i64) = (row.get(0), row.get(1));
    assert!(
        sessions >= 2,
        "expected tandem's apply and replication sessions, saw {sessions}"
    );
    assert_eq!(
        plain, 0,
        "{plain} of {sessions} tandem sessions are not encrypted"
    );

    let (_, out) = tandem("status", &config).await;
    assert!(
        !out.contains("cannot connect"),
        "tandem status could not reach a node over TLS:\n{out}"
    );
    run.kill().await.ok();
    let _ = std::fs::remove_file(&config);
}

#[tokio::test]
async fn a_wrong_root_certificate_or_host_name_is_refused_with_the_fix() {
    let Some(s) = tls_servers().await else {
        return;
    };
    let other = make_certificates();
    let config = s.config(&other.join("ca.pem"));
    let (ok, out) = tandem("setup", &config).await;
    let _ = std::fs::remove_file(&config);
    let _ = std::fs::remove_dir_all(&other);
    assert!(
        !ok,
        "setup succeeded with an untrusted server certificate:\n{out}"
    );
    for needle in [
        "TLS to PostgreSQL at localhost",
        "TLS to MySQL/MariaDB at localhost",
        "not trusted",
        "set sslrootcert",
        "add ssl_ca=",
    ] {
        assert!(
            out.contains(needle),
            "setup output lacks {needle:?}:\n{out}"
        );
    }
    for secret in [PG_PASSWORD, MARIA_PASSWORD] {
        assert!(!out.contains(secret), "a password in the output:\n{out}");
    }

    // The right CA, but a host name the certificate (DNS:localhost) does not list.
    let ca = s.certs.join("ca.pem");
    let err = tandem::connect::postgres(&s.pg_url("127.0.0.1", &ca))
        .await
        .map(drop)
        .expect_err("verify-full refuses a certificate for another name");
    assert!(matches!(err, ConnectError::Tls(_)), "{err:?}");
    assert!(
        err.to_string().contains("does not name the host 127.0.0.1"),
        "{err}"
    );
    let opts = tandem::connect::mysql_opts(&s.maria_url("127.0.0.1", &ca)).unwrap();
    let err = tandem::connect::mysql(opts)
        .await
        .map(drop)
        .expect_err("verify_identity refuses a certificate for another name");
    assert!(
        err.to_string().contains("does not name the host 127.0.0.1"),
        "{err}"
    );
    // …and encrypting without checking the certificate accepts it.
    let url = format!("{}&verify_ca=false", s.maria_url("127.0.0.1", &ca));
    let opts = tandem::connect::mysql_opts(&url).unwrap();
    let mut conn = tandem::connect::mysql(opts)
        .await
        .unwrap_or_else(|e| panic!("verify_ca=false: {e}"));
    let cipher: Option<(String, String)> = conn
        .query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        .await
        .unwrap();
    assert!(
        cipher.is_some_and(|(_, c)| !c.is_empty()),
        "the session is not encrypted"
    );
    conn.disconnect().await.unwrap();
}

#[tokio::test]
async fn node_keys_tls_and_tls_ca_file_apply_to_every_connection() {
    let Some(s) = tls_servers().await else {
        return;
    };
    // URLs without a TLS parameter: the node keys alone ask for verify-full against a CA file.
    let config_with = |ca: &Path| {
        let text = format!(
            "[nodes.crm]\nurl = \"postgres://tandem:{PG_PASSWORD}@localhost:{}/crm\"\n\
             tls = \"verify-full\"\ntls_ca_file = \"{ca}\"\n\
             [nodes.helpdesk]\nurl = \"mysql://tandem:{MARIA_PASSWORD}@localhost:{}/desk\"\n\
             tls = \"verify-full\"\ntls_ca_file = \"{ca}\"\n{MAPPING}",
            s.pg.port(),
            s.maria.port(),
            ca = ca.display(),
        );
        let path = std::env::temp_dir().join(format!("{}.toml", unique_name("tandem_tls_keys")));
        std::fs::write(&path, text).unwrap();
        path
    };

    // Another CA in tls_ca_file is refused on both nodes: the keys are applied, not just read (a
    // URL without parameters would have connected to PostgreSQL unverified).
    let other = make_certificates();
    let config = config_with(&other.join("ca.pem"));
    let (ok, out) = tandem("setup", &config).await;
    let _ = std::fs::remove_file(&config);
    let _ = std::fs::remove_dir_all(&other);
    assert!(!ok, "setup trusted a CA other than tls_ca_file:\n{out}");
    for needle in [
        "TLS to PostgreSQL at localhost",
        "TLS to MySQL/MariaDB at localhost",
        "not trusted",
    ] {
        assert!(
            out.contains(needle),
            "setup output lacks {needle:?}:\n{out}"
        );
    }

    let config = config_with(&s.certs.join("ca.pem"));
    for command in ["setup", "check"] {
        let (ok, out) = tandem(command, &config).await;
        assert!(ok, "tandem {command} with the node TLS keys failed:\n{out}");
        for secret in [PG_PASSWORD, MARIA_PASSWORD] {
            assert!(!out.contains(secret), "a password in the output:\n{out}");
        }
    }
    let mut run = start_tandem_run(&config, 2).await;
    let pg = s.pg.connect("crm").await.unwrap();
    let mut maria = s.maria.connect("desk").await.unwrap();
    pg.batch_execute("INSERT INTO customers VALUES (1, 'Ada')")
        .await
        .unwrap();
    maria
        .query_drop("INSERT INTO clients VALUES (2, 'Grace')")
        .await
        .unwrap();
    wait_for("PostgreSQL's row on MariaDB", DEADLINE, || async {
        let mut c = s.maria.connect("desk").await.ok()?;
        let name: Option<String> = c
            .query_first("SELECT name FROM clients WHERE client_id = 1")
            .await
            .ok()?;
        let _ = c.disconnect().await;
        (name.as_deref() == Some("Ada")).then_some(())
    })
    .await;
    wait_for("MariaDB's row on PostgreSQL", DEADLINE, || async {
        let row = pg
            .query_opt("SELECT name FROM customers WHERE id = 2", &[])
            .await
            .ok()??;
        (row.get::<_, String>(0) == "Grace").then_some(())
    })
    .await;
    let row = pg
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE NOT s.ssl) FROM pg_stat_ssl s \
             JOIN pg_stat_activity a USING (pid) WHERE a.usename = 'tandem'",
            &[],
        )
        .await
        .unwrap();
    let (sessions, plain): (i64, i64) = (row.get(0), row.get(1));
    assert!(
        sessions >= 2,
        "expected tandem's apply and replication sessions, saw {sessions}"
    );
    assert_eq!(
        plain, 0,
        "{plain} of {sessions} tandem sessions are not encrypted"
    );
    run.kill().await.ok();
    maria.disconnect().await.unwrap();
    let _ = std::fs::remove_file(&config);
}
