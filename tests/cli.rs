//! The command line as a user meets it: exit codes and messages.

use std::process::Command;

fn tandem(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(args)
        .env_remove("TANDEM_CONFIG")
        .output()
        .expect("run tandem");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write_config(text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "{}.toml",
        crate::support::unique_name("tandem_cli")
    ));
    std::fs::write(&path, text).expect("write config");
    path
}

const MINIMAL: &str = r#"
[nodes.a]
url = "postgres://postgres@127.0.0.1:5433/app"

[nodes.b]
url = "mysql://root@127.0.0.1:3307/app"

[[tables]]
name = "customers"
key = ["id"]
"#;

#[test]
fn cli_check_accepts_the_minimal_file() {
    let path = write_config(MINIMAL);
    let (code, stdout, stderr) =
        tandem(&["check", "--offline", "--config", path.to_str().unwrap()]);
    std::fs::remove_file(&path).ok();
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stdout.contains("2 node(s), 1 table(s), 2 link(s)"),
        "{stdout}"
    );
}

#[test]
fn cli_check_names_every_problem_and_exits_1() {
    let broken = MINIMAL
        .replace(
            "postgres://postgres@127.0.0.1:5433/app",
            "postgres://app:pa55word@127.0.0.1:5433",
        )
        .replace("key = [\"id\"]", "key = []\ncolour = \"blue\"");
    let path = write_config(&broken);
    let (code, stdout, _) = tandem(&["check", "--offline", "--config", path.to_str().unwrap()]);
    std::fs::remove_file(&path).ok();
    assert_eq!(code, 1, "{stdout}");
    for expected in [
        "nodes.a.url",
        "no database",
        "tables[0].key",
        "tables[0].colour",
        "unknown key",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    assert!(
        !stdout.contains("pa55word"),
        "the password leaked:\n{stdout}"
    );
}

#[test]
fn cli_check_json_report() {
    let path = write_config(&MINIMAL.replace("key = [\"id\"]", "key = []"));
    let (code, stdout, _) = tandem(&[
        "check",
        "--format",
        "json",
        "--config",
        path.to_str().unwrap(),
    ]);
    std::fs::remove_file(&path).ok();
    assert_eq!(code, 1);
    let doc: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON document");
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["problems"][0]["path"], "tables[0].key");
    assert_eq!(doc["problems"][0]["severity"], "error");
}

#[test]
fn cli_config_from_environment_variable() {
    let path = write_config(MINIMAL);
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["check", "--offline"])
        .env("TANDEM_CONFIG", &path)
        .output()
        .expect("run tandem");
    std::fs::remove_file(&path).ok();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn cli_usage_errors_exit_2() {
    let (code, _, stderr) = tandem(&["check"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--config"), "{stderr}");
    let (code, _, _) = tandem(&["frobnicate"]);
    assert_eq!(code, 2);
}

#[test]
fn cli_missing_file_is_a_problem_not_a_crash() {
    let (code, stdout, _) = tandem(&["check", "--offline", "--config", "/nonexistent/tandem.toml"]);
    assert_eq!(code, 1);
    assert!(
        stdout.contains("cannot read /nonexistent/tandem.toml"),
        "{stdout}"
    );
}

#[test]
fn cli_the_docker_example_config_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docker/tandem.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["check", "--offline", "--config", path])
        .env("CRM_PASSWORD", "x")
        .env("HELPDESK_PASSWORD", "y")
        .output()
        .expect("run tandem");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// `check` says, per node and table, what `tandem setup` will install and what each kind of local
/// write then pays, before anything is installed (offline: from the file alone).
#[test]
fn cli_check_says_what_setup_installs_and_what_it_costs() {
    let path = write_config(MINIMAL);
    let (code, stdout, stderr) =
        tandem(&["check", "--offline", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    for expected in [
        "setup on a public.customers: column _tandem_origin text DEFAULT 'a'",
        "tandem_revive (AFTER INSERT per statement, made with the table's first tombstone of another node's delete)",
        "REPLICA IDENTITY DEFAULT when the primary key is the key (FULL otherwise)",
        "column _tandem_version_prev bigint",
        "  insert: the column defaults; no trigger function runs (the WHEN is false), and no revive trigger exists, until the table has a tombstone of another node's delete",
        "  update: a PL/pgSQL row trigger that runs no SQL and keeps the old version beside the new; the WAL carries the new row (8 bytes more) and no old row",
        "  delete: a PL/pgSQL row trigger, one INSERT … ON CONFLICT into the tombstone table per deleted row; the WAL carries the key and the tombstone",
        "setup on b app.customers: column _tandem_origin VARCHAR(64) INVISIBLE DEFAULT 'b'",
        "tandem_revive_customers (AFTER INSERT) only once the table holds a tombstone of another node's delete",
        "  insert: the column defaults, no trigger; once the table holds a tombstone of another node's delete, a row trigger",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?} in:\n{stdout}");
    }
    let (_, json, _) = tandem(&[
        "check",
        "--offline",
        "--format",
        "json",
        "--config",
        path.to_str().unwrap(),
    ]);
    std::fs::remove_file(&path).ok();
    let doc: serde_json::Value = serde_json::from_str(json.trim()).expect("one JSON document");
    assert_eq!(doc["footprint"][0]["node"], "a", "{doc}");
    assert_eq!(doc["footprint"][0]["table"], "public.customers", "{doc}");
    assert_eq!(
        doc["footprint"][0]["costs"].as_array().map(Vec::len),
        Some(3),
        "{doc}"
    );
}

#[test]
fn cli_rules_prints_the_rule_set_for_a_wiki() {
    let path = write_config(MINIMAL);
    let p = path.to_str().unwrap();
    let (code, md, stderr) = tandem(&["rules", "--config", p]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        md.starts_with("# tandem rule set") && md.contains("## customers"),
        "{md}"
    );
    let (code, html, stderr) = tandem(&["rules", "--format", "html", "--config", p]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        html.starts_with("<!doctype html>") && html.contains("<h2 id=\"table-customers\">"),
        "{html}"
    );
    std::fs::remove_file(&path).ok();
}

#[test]
fn cli_run_refuses_a_console_without_a_token_or_on_a_public_address() {
    for (section, want) in [
        ("[console]\nlisten = \"127.0.0.1:9465\"\n", "console.token"),
        (
            "[console]\nlisten = \"0.0.0.0:9465\"\ntoken = \"0123456789abcdef0123\"\n",
            "console.listen",
        ),
    ] {
        let path = write_config(&format!("{MINIMAL}\n{section}"));
        let (code, _, stderr) = tandem(&["run", "--config", path.to_str().unwrap()]);
        std::fs::remove_file(&path).ok();
        assert_eq!(code, 1, "{stderr}");
        assert!(
            stderr.contains(&format!("error: {want}")) && stderr.contains("fix:"),
            "{stderr}"
        );
    }
}

#[test]
fn cli_cutover_refuses_an_unknown_node_and_is_not_ready_while_nodes_are_down() {
    let path = write_config(MINIMAL);
    let config = path.to_str().unwrap();
    let (code, _, stderr) = tandem(&["cutover", "--to", "c", "--config", config]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no node \"c\""), "{stderr}");
    // Nothing listens on the file's ports: every condition that needs a node is unmet, named.
    let (code, stdout, stderr) = tandem(&["cutover", "--to", "a", "--config", config]);
    std::fs::remove_file(&path).ok();
    assert_eq!(code, 1, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.starts_with("cutover to a: NOT READY"), "{stdout}");
    for unmet in [
        "unmet node (a_to_b)",
        "unmet streaming (b_to_a)",
        "unmet rollback (a_to_b)",
        "unmet verify (all tables)",
        "unmet generators (a)",
    ] {
        assert!(stdout.contains(unmet), "no {unmet:?} in:\n{stdout}");
    }
}

/// `tandem dead-letter replay --node a 1` with node a at `url` (node b never answers): exit code,
/// stdout and stderr.
fn replay_on(url: &str) -> (i32, String, String) {
    let path = write_config(&format!(
        "[nodes.a]\nurl = \"{url}\"\n\
         [nodes.b]\nurl = \"mysql://root@127.0.0.1:9/app\"\n\
         [[tables]]\nname = \"customers\"\nkey = [\"id\"]\n"
    ));
    let out = tandem(&[
        "dead-letter",
        "replay",
        "--node",
        "a",
        "--config",
        path.to_str().unwrap(),
        "1",
    ]);
    std::fs::remove_file(&path).ok();
    out
}

/// A definite error before the replay reached the entry (here an unreadable CA file) records
/// nothing on it: the operator is told so, not that the entry holds this error.
#[test]
fn cli_a_replay_refused_before_it_ran_says_nothing_was_replayed() {
    let (code, stdout, stderr) = replay_on(
        "postgres://postgres@127.0.0.1:9/app?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
    );
    assert_eq!(code, 1, "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stderr.contains("/nonexistent/ca.pem")
            && stderr.contains(
                "the entry is as it was (nothing was replayed: fix this, then replay it)"
            )
            && !stderr.contains("stays open with this error"),
        "{stderr}"
    );
}

/// A replay that fails for a transient reason (here: the node does not answer) changed nothing,
/// and says so, instead of claiming the entry now holds that error.
#[test]
fn cli_a_replay_that_cannot_reach_the_node_says_the_entry_is_unchanged() {
    let (code, stdout, stderr) = replay_on("postgres://postgres@127.0.0.1:9/app");
    assert_eq!(code, 1, "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stderr.contains("the entry is as it was (the error is transient: replay it again)")
            && !stderr.contains("stays open with this error"),
        "{stderr}"
    );
}
