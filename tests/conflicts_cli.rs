//! `tandem conflicts` and `tandem dead-letter` as an operator uses them: a manual conflict parked in
//! the review queue, listed, shown, resolved, and the result on both nodes; a dead letter listed.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use tandem::harness::{MariaDb, PgServer};
use tokio::process::Command;

use crate::support::{start_tandem_run, unique_name, wait_for};

async fn tandem(args: &[&str], config: &std::path::Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

pub(crate) async fn names(pg: &PgServer, maria: &MariaDb) -> (Option<String>, Option<String>) {
    let c = pg.connect("crm").await.unwrap();
    let a = c
        .query_opt("SELECT name FROM items WHERE id = 1", &[])
        .await
        .unwrap()
        .map(|r| r.get(0));
    let mut m = maria.connect("desk").await.unwrap();
    let b: Option<String> = m
        .query_first("SELECT name FROM items WHERE id = 1")
        .await
        .unwrap();
    m.disconnect().await.unwrap();
    (a, b)
}

/// Two servers, `items` under `manual` with helpdesk deciding, and a conflict parked on helpdesk
/// (crm's edit against helpdesk's) while `tandem run` runs.
pub(crate) struct Parked {
    pub pg: PgServer,
    pub maria: MariaDb,
    pub config: std::path::PathBuf,
    pub run: tokio::process::Child,
    pub id: i64,
    pub m: mysql_async::Conn,
}

pub(crate) async fn parked_conflict() -> Parked {
    parked_conflict_with("").await
}

/// [`parked_conflict`] with `extra` appended to the configuration file (a `[console]` section).
pub(crate) async fn parked_conflict_with(extra: &str) -> Parked {
    let (pg, maria) = tokio::join!(PgServer::start(), MariaDb::start());
    let (pg, maria) = (
        pg.expect("PostgreSQL starts"),
        maria.expect("MariaDB starts"),
    );
    pg.create_database("crm").await.unwrap();
    let c = pg.connect("crm").await.unwrap();
    c.batch_execute("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)")
        .await
        .unwrap();
    maria.create_database("desk").await.unwrap();
    let mut m = maria.connect("desk").await.unwrap();
    m.query_drop("CREATE TABLE items (id int PRIMARY KEY, name varchar(50) NOT NULL)")
        .await
        .unwrap();
    let config = std::env::temp_dir().join(format!("{}.toml", unique_name("tandem_conflicts")));
    std::fs::write(
        &config,
        format!(
            "[nodes.crm]\nurl = \"{}\"\n[nodes.helpdesk]\nurl = \"{}\"\n[[tables]]\nname = \"items\"\nkey = [\"id\"]\n\
             conflict = \"manual\"\nprefer = \"helpdesk\"\n{extra}",
            pg.url("crm"),
            maria.url("desk")
        ),
    )
    .unwrap();
    assert_eq!(tandem(&["setup"], &config).await.0, 0);
    let mut run = start_tandem_run(&config, 2).await;
    c.batch_execute("INSERT INTO items VALUES (1, 'original')")
        .await
        .unwrap();
    wait_for("the row on MariaDB", Duration::from_secs(30), || async {
        (names(&pg, &maria).await.1.as_deref() == Some("original")).then_some(())
    })
    .await;
    // Both sides edit the row while tandem is down.
    run.kill().await.unwrap();
    c.batch_execute("UPDATE items SET name = 'crm edit' WHERE id = 1")
        .await
        .unwrap();
    m.query_drop("UPDATE items SET name = 'desk edit' WHERE id = 1")
        .await
        .unwrap();
    let run = start_tandem_run(&config, 2).await;

    // helpdesk (the preferred node) decides: it parks crm's change in its review queue.
    let id = wait_for(
        "a parked conflict on helpdesk",
        Duration::from_secs(30),
        || async {
            let (code, out) = tandem(
                &[
                    "conflicts",
                    "list",
                    "--open",
                    "--node",
                    "helpdesk",
                    "--format",
                    "json",
                ],
                &config,
            )
            .await;
            assert_eq!(code, 0, "{out}");
            out.lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .find(|e| e["state"] == "parked")
                .and_then(|e| e["id"].as_i64())
        },
    )
    .await;
    Parked {
        pg,
        maria,
        config,
        run,
        id,
        m,
    }
}

/// Resolves conflict `id` on helpdesk with `--take <take>`, then waits until both nodes hold `name`
/// and neither has an open conflict left.
pub(crate) async fn resolve_and_settle(
    pg: &PgServer,
    maria: &MariaDb,
    config: &std::path::Path,
    id: i64,
    take: &str,
    name: &str,
) {
    let id = id.to_string();
    let args = [
        "conflicts",
        "resolve",
        "--node",
        "helpdesk",
        &id,
        "--take",
        take,
        "--note",
        "checked with the account owner",
        "--by",
        "ana",
    ];
    let (code, out) = tandem(&args, config).await;
    assert_eq!(code, 0, "{out}");
    wait_for(
        &format!("both nodes to hold {name:?}"),
        Duration::from_secs(30),
        || async {
            (names(pg, maria).await == (Some(name.into()), Some(name.into()))).then_some(())
        },
    )
    .await;
    wait_for(
        "no open conflict on either node",
        Duration::from_secs(30),
        || async {
            let (code, out) = tandem(&["conflicts", "list", "--open"], config).await;
            assert_eq!(code, 0, "{out}");
            out.contains("0 conflict record(s)").then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn conflicts_cli_lists_shows_and_resolves_a_parked_conflict() {
    let Parked {
        pg,
        maria,
        config,
        mut run,
        id,
        m,
    } = parked_conflict().await;
    let (code, text) = tandem(&["conflicts", "list"], &config).await;
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("update_differs") && text.contains("parked"),
        "{text}"
    );
    let (code, shown) = tandem(
        &["conflicts", "show", "--node", "helpdesk", &id.to_string()],
        &config,
    )
    .await;
    assert_eq!(code, 0, "{shown}");
    assert!(
        shown.contains("crm edit") && shown.contains("desk edit"),
        "show has both images:\n{shown}"
    );

    // Keeping helpdesk's edit is a local write that replicates; crm deferred to helpdesk, and the
    // resolution's write reaching crm releases that entry too.
    resolve_and_settle(&pg, &maria, &config, id, "current", "desk edit").await;
    let (code, out) = tandem(&["dead-letter", "list"], &config).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 dead letter(s)"), "{out}");
    let (code, _) = tandem(
        &[
            "conflicts",
            "resolve",
            "--node",
            "helpdesk",
            &id.to_string(),
        ],
        &config,
    )
    .await;
    assert_eq!(code, 2, "resolve without a choice is a usage error");
    run.kill().await.ok();
    m.disconnect().await.unwrap();
    std::fs::remove_file(&config).ok();
}

/// Taking the incoming row (crm's) on the decider: both nodes end with crm's edit, and crm, which
/// deferred to helpdesk, closes its deferral when the resolution reaches it.
#[tokio::test]
async fn conflicts_cli_take_incoming_closes_both_sides() {
    let Parked {
        pg,
        maria,
        config,
        mut run,
        id,
        m,
    } = parked_conflict().await;
    resolve_and_settle(&pg, &maria, &config, id, "incoming", "crm edit").await;
    // The audit record says who resolved it, how and why.
    let (code, shown) = tandem(
        &["conflicts", "show", "--node", "helpdesk", &id.to_string()],
        &config,
    )
    .await;
    assert_eq!(code, 0, "{shown}");
    let doc: serde_json::Value = serde_json::from_str(&shown).expect("show prints JSON");
    assert_eq!(doc["state"], "resolved", "{shown}");
    assert_eq!(doc["resolution"], "take_incoming", "{shown}");
    assert_eq!(doc["resolved_by"], "ana", "{shown}");
    assert_eq!(doc["note"], "checked with the account owner", "{shown}");
    run.kill().await.ok();
    m.disconnect().await.unwrap();
    std::fs::remove_file(&config).ok();
}
