//! Parsing and validation: the minimal file works as written, and each error path names its place.

use super::*;

const MINIMAL: &str = r#"
[nodes.a]
url = "postgres://postgres@127.0.0.1:5433/app"

[nodes.b]
url = "mysql://root@127.0.0.1:3307/app"

[[tables]]
name = "customers"
key = ["id"]
"#;

fn no_env(_: &str) -> Option<String> {
    None
}

fn load(text: &str) -> Result<(Config, Vec<Problem>), ConfigError> {
    Config::from_str_with_env(text, "test.toml", &no_env)
}

/// The problems of a broken file, as `path: message` lines.
fn problems(text: &str) -> Vec<Problem> {
    match load(text) {
        Ok((_, warnings)) => panic!("expected errors, got a valid config (warnings: {warnings:?})"),
        Err(e) => e.problems,
    }
}

fn assert_problem(text: &str, path: &str, needle: &str) {
    let found = problems(text);
    assert!(
        found
            .iter()
            .any(|p| p.path == path && p.message.contains(needle) && p.severity == Severity::Error),
        "expected an error at {path} mentioning {needle:?}; got:\n{}",
        found
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn minimal_file_resolves_default_physical_tables() {
    let (config, warnings) = load(MINIMAL).expect("the minimal file is valid");
    assert!(warnings.is_empty(), "{warnings:?}");
    let t = &config.tables[0];
    assert_eq!(t.physical["a"].to_string(), "public.customers");
    assert_eq!(t.physical["b"].to_string(), "app.customers");
    assert_eq!(config.nodes["a"].engine, Engine::Postgres);
    assert_eq!(config.nodes["b"].engine, Engine::Mysql);
    assert_eq!(t.conflict, ConflictRule::LastWriteWins);
    assert_eq!(t.deletes, DeletePolicy::Propagate);
    assert_eq!(
        config.links(),
        vec![("a".into(), "b".into()), ("b".into(), "a".into())]
    );
}

#[test]
fn issue_mapping_shape_parses() {
    let text = r#"
[nodes.crm]
url = "postgres://postgres@127.0.0.1:5433/crm"
[nodes.helpdesk]
url = "mysql://root@127.0.0.1:3307/desk"

[[tables]]
name = "customer"
key = ["id"]
on = { crm = "public.customers", helpdesk = "clients" }

[[tables.columns]]
name = "id"
on = { crm = "id", helpdesk = "client_id" }

[[tables.columns]]
name = "status"
on = { crm = "status", helpdesk = "status_code" }
values = { helpdesk = { "Approved" = 1, "Pending review" = 2 } }
"#;
    let (config, _) = load(text).expect("valid");
    let t = &config.tables[0];
    assert_eq!(t.physical["helpdesk"].to_string(), "desk.clients");
    assert_eq!(t.column_on("id", "helpdesk"), "client_id");
    assert_eq!(t.column_on("id", "crm"), "id");
    assert_eq!(t.column_on("email", "helpdesk"), "email");
    assert_eq!(
        t.columns[1].values["helpdesk"],
        vec![
            ("Approved".into(), Scalar::Int(1)),
            ("Pending review".into(), Scalar::Int(2))
        ]
    );
}

#[test]
fn environment_variables_are_substituted() {
    let text = MINIMAL.replace("postgres@127", "app:${PGPW}@127");
    let env = |n: &str| (n == "PGPW").then(|| "hunter2".to_string());
    let (config, _) = Config::from_str_with_env(&text, "t", &env).expect("valid");
    assert!(config.nodes["a"].url.expose().contains("hunter2"));
    assert!(
        !format!("{config:?}").contains("hunter2"),
        "Debug output leaks the password"
    );
}

#[test]
fn unset_variable_is_an_error_at_its_path() {
    assert_problem(
        &MINIMAL.replace("postgres@127", "app:${PGPW}@127"),
        "nodes.a.url",
        "PGPW is not set",
    );
}

#[test]
fn syntax_error() {
    assert_problem("[nodes.a\nurl = 1", "(file)", "not valid TOML");
}

#[test]
fn unknown_keys_everywhere_are_all_reported() {
    let text =
        format!("{MINIMAL}\nsurprise = 1\n[metrics]\nlisten = \"127.0.0.1:9464\"\nport = 3\n")
            .replace("key = [\"id\"]", "key = [\"id\"]\nkye = 1\ncolour = 2")
            .replace("[nodes.b]", "[nodes.b]\npasword = \"x\"");
    let found = problems(&text);
    for path in [
        "tables[0].surprise",
        "tables[0].kye",
        "tables[0].colour",
        "nodes.b.pasword",
        "metrics.port",
    ] {
        assert!(
            found
                .iter()
                .any(|p| p.path == path && p.message == "unknown key"),
            "no unknown-key error at {path}: {found:?}"
        );
    }
}

#[test]
fn wrong_type() {
    assert_problem(
        &MINIMAL.replace("key = [\"id\"]", "key = \"id\""),
        "tables[0]",
        "invalid type",
    );
}

#[test]
fn fewer_than_two_nodes() {
    assert_problem(
        "[nodes.a]\nurl = \"postgres://u@h/db\"\n[[tables]]\nname = \"t\"\nkey = [\"id\"]\n",
        "nodes",
        "1 node(s)",
    );
}

#[test]
fn no_tables() {
    assert_problem(
        "[nodes.a]\nurl = \"postgres://u@h/db\"\n[nodes.b]\nurl = \"mysql://u@h/db\"\n",
        "tables",
        "no tables",
    );
}

#[test]
fn bad_node_id() {
    assert_problem(
        &MINIMAL.replace("[nodes.a]", "[nodes.\"Big Node\"]"),
        "nodes.Big Node",
        "node id",
    );
}

#[test]
fn bad_url_scheme_and_missing_database() {
    assert_problem(
        &MINIMAL.replace("postgres://postgres@127.0.0.1:5433/app", "oracle://x@h/db"),
        "nodes.a.url",
        "unsupported scheme",
    );
    assert_problem(
        &MINIMAL.replace("127.0.0.1:3307/app", "127.0.0.1:3307"),
        "nodes.b.url",
        "no database",
    );
    assert_problem(
        &MINIMAL.replace("postgres://postgres@127.0.0.1:5433/app", "not a url"),
        "nodes.a.url",
        "not a valid URL",
    );
}

#[test]
fn url_errors_never_echo_the_password() {
    let text = MINIMAL.replace(
        "postgres://postgres@127.0.0.1:5433/app",
        "postgres://u:topsecret@[bad/app",
    );
    let found = problems(&text);
    assert!(
        found.iter().all(|p| !p.to_string().contains("topsecret")),
        "{found:?}"
    );
}

#[test]
fn bad_tls_and_timezone() {
    assert_problem(
        &MINIMAL.replace("5433/app\"", "5433/app\"\ntls = \"sometimes\""),
        "nodes.a.tls",
        "unknown TLS mode",
    );
    assert_problem(
        &MINIMAL.replace("5433/app\"", "5433/app\"\ntimezone = \"Mars/Olympus\""),
        "nodes.a.timezone",
        "not a UTC offset",
    );
    assert_problem(
        &MINIMAL.replace("5433/app\"", "5433/app\"\ntls = \"verify-ca\""),
        "nodes.a.tls",
        "verify-ca is not supported",
    );
}

#[test]
fn forward_replicated_defaults_to_true_and_only_a_postgresql_node_turns_it_off() {
    let (config, _) = load(MINIMAL).expect("valid");
    assert!(config.nodes["a"].forward_replicated && config.nodes["b"].forward_replicated);
    let off = MINIMAL.replace("5433/app\"", "5433/app\"\nforward_replicated = false");
    let (config, _) = load(&off).expect("valid");
    assert!(!config.nodes["a"].forward_replicated);
    assert_problem(
        &MINIMAL.replace("3307/app\"", "3307/app\"\nforward_replicated = false"),
        "nodes.b.forward_replicated",
        "only a PostgreSQL node",
    );
}

#[test]
fn empty_and_duplicate_keys() {
    assert_problem(
        &MINIMAL.replace("key = [\"id\"]", "key = []"),
        "tables[0].key",
        "empty",
    );
    assert_problem(
        &MINIMAL.replace("key = [\"id\"]", "key = [\"id\", \"id\"]"),
        "tables[0].key",
        "twice",
    );
}

#[test]
fn duplicate_table_names_and_physical_tables() {
    let text = format!("{MINIMAL}\n[[tables]]\nname = \"customers\"\nkey = [\"id\"]\n");
    assert_problem(&text, "tables[1].name", "defined twice");
    assert_problem(&text, "tables[1].on.a", "already mapped");
}

#[test]
fn references_to_unknown_nodes() {
    let text = MINIMAL.replace(
        "key = [\"id\"]",
        "key = [\"id\"]\non = { c = \"x\" }\nowner = \"z\"\nprefer = \"q\"",
    );
    assert_problem(&text, "tables[0].on.c", "no node named");
    assert_problem(&text, "tables[0].owner", "no node named");
    assert_problem(&text, "tables[0].prefer", "no node named");
}

#[test]
fn bad_physical_table_name() {
    assert_problem(
        &MINIMAL.replace("key = [\"id\"]", "key = [\"id\"]\non = { a = \"a.b.c\" }"),
        "tables[0].on.a",
        "not a table name",
    );
}

#[test]
fn prefer_without_node() {
    assert_problem(
        &MINIMAL.replace("key = [\"id\"]", "key = [\"id\"]\nconflict = \"prefer\""),
        "tables[0].prefer",
        "names no node",
    );
    assert_problem(
        &format!("[tandem]\nconflict = \"prefer\"\n{MINIMAL}"),
        "tandem.conflict",
        "needs a node",
    );
}

#[test]
fn unknown_conflict_rule() {
    assert_problem(
        &MINIMAL.replace("key = [\"id\"]", "key = [\"id\"]\nconflict = \"coin_flip\""),
        "tables[0]",
        "unknown variant",
    );
}

#[test]
fn merge_fallback_rules() {
    assert_problem(
        &MINIMAL.replace(
            "key = [\"id\"]",
            "key = [\"id\"]\nconflict = \"merge\"\nmerge_fallback = \"merge\"",
        ),
        "tables[0].merge_fallback",
        "cannot fall back",
    );
}

#[test]
fn delete_policies() {
    let (c, _) = load(&MINIMAL.replace(
        "key = [\"id\"]",
        "key = [\"id\"]\ndeletes = { soft = \"deleted_at\" }",
    ))
    .unwrap();
    assert_eq!(c.tables[0].deletes, DeletePolicy::Soft("deleted_at".into()));
    let (c, _) = load(&format!("[tandem]\ndeletes = \"ignore\"\n{MINIMAL}")).unwrap();
    assert_eq!(c.tables[0].deletes, DeletePolicy::Ignore);
    assert_problem(
        &MINIMAL.replace("key = [\"id\"]", "key = [\"id\"]\ndeletes = \"shred\""),
        "tables[0].deletes",
        "unknown delete policy",
    );
}

#[test]
fn key_and_version_column_rules() {
    assert_problem(
        &MINIMAL.replace("key = [\"id\"]", "key = [\"id\"]\nexclude = [\"id\"]"),
        "tables[0].exclude[0]",
        "cannot be excluded",
    );
    assert_problem(
        &MINIMAL.replace("key = [\"id\"]", "key = [\"id\"]\nversion = \"id\""),
        "tables[0].version",
        "part of the key",
    );
}

#[test]
fn value_maps_must_be_one_to_one() {
    let text = format!("{MINIMAL}\n[[tables.columns]]\nname = \"status\"\nvalues = {{ b = {{ \"Approved\" = 1, \"OK\" = 1 }} }}\n");
    assert_problem(
        &text,
        "tables[0].columns[0].values.b",
        "cannot be read back",
    );
}

#[test]
fn bad_settings_and_metrics() {
    assert_problem(
        &format!("[tandem]\norigin_column = \"bad name\"\n{MINIMAL}"),
        "tandem.origin_column",
        "not a plain identifier",
    );
    assert_problem(
        &format!("[tandem]\nmemory_budget_mib = 0\n{MINIMAL}"),
        "tandem.memory_budget_mib",
        "at least 1",
    );
    assert_problem(
        &format!("{MINIMAL}\n[metrics]\nlisten = \"everywhere\"\n"),
        "metrics.listen",
        "not an address",
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = r#"
[nodes.a]
url = "oracle://x@h/db"
[nodes.b]
url = "mysql://root@h"
bogus = true
[[tables]]
name = "t"
key = []
[[tables]]
name = "u"
key = ["id"]
owner = "nobody"
"#;
    let found = problems(text);
    let paths: Vec<&str> = found.iter().map(|p| p.path.as_str()).collect();
    for want in [
        "nodes.a.url",
        "nodes.b.bogus",
        "tables[0].key",
        "tables[1].owner",
    ] {
        assert!(paths.contains(&want), "missing {want} in {paths:?}");
    }
}

#[test]
fn heartbeat_interval_is_read_and_checked() {
    let (c, _) = load(&format!("{MINIMAL}\n[heartbeat]\ninterval = \"1500ms\"\n")).unwrap();
    assert_eq!(c.heartbeat, Some(std::time::Duration::from_millis(1500)));
    let (c, _) = load(&format!("{MINIMAL}\n[heartbeat]\ninterval = \"2m\"\n")).unwrap();
    assert_eq!(c.heartbeat, Some(std::time::Duration::from_secs(120)));
    let (c, _) = load(MINIMAL).unwrap();
    assert_eq!(c.heartbeat, None);
    for bad in ["10", "often", "5ms", "s"] {
        assert_problem(
            &format!("{MINIMAL}\n[heartbeat]\ninterval = \"{bad}\"\n"),
            "heartbeat.interval",
            "not a duration",
        );
    }
    assert_problem(
        &format!("{MINIMAL}\n[heartbeat]\ninterval = \"1s\"\nevery = 2\n"),
        "heartbeat.every",
        "unknown key",
    );
}

#[test]
fn copy_section_is_read_and_checked() {
    let (c, _) = load(&format!("{MINIMAL}\n[copy]\nfrom = \"a\"\n")).unwrap();
    assert_eq!(
        c.copy,
        Some(CopySettings {
            from: "a".into(),
            batch_rows: 1000
        })
    );
    let (c, _) = load(MINIMAL).unwrap();
    assert_eq!(c.copy, None);
    assert_problem(
        &format!("{MINIMAL}\n[copy]\nfrom = \"nobody\"\n"),
        "copy.from",
        "no node named",
    );
    assert_problem(
        &format!("{MINIMAL}\n[copy]\nfrom = \"a\"\nbatch_rows = 0\n"),
        "copy.batch_rows",
        "out of range",
    );
    assert_problem(
        &format!("{MINIMAL}\n[copy]\nfrom = \"a\"\nbatchrows = 5\n"),
        "copy.batchrows",
        "unknown key",
    );
}

#[test]
fn truncate_policy_is_read_and_checked() {
    let (config, _) = load(MINIMAL).unwrap();
    assert_eq!(config.tables[0].truncate, TruncatePolicy::Ignore);
    let text = MINIMAL.replace("key = [\"id\"]", "key = [\"id\"]\ntruncate = \"propagate\"");
    let (config, _) = load(&text).unwrap();
    assert_eq!(config.tables[0].truncate, TruncatePolicy::Propagate);
    assert_problem(
        &MINIMAL.replace("key = [\"id\"]", "key = [\"id\"]\ntruncate = \"cascade\""),
        "tables[0].truncate",
        "unknown truncate policy",
    );
    let filtered = MINIMAL.replace(
        "key = [\"id\"]",
        "key = [\"id\"]\ntruncate = \"propagate\"\nfilter = { region = [\"EU\"] }",
    );
    assert_problem(&filtered, "tables[0].truncate", "filter");
    let fix = problems(&filtered)
        .into_iter()
        .find(|p| p.path == "tables[0].truncate")
        .map(|p| p.fix)
        .unwrap_or_default();
    assert!(
        fix.contains("remove truncate = \"propagate\"") && fix.contains("remove the filter"),
        "{fix}"
    );
    let ignored = filtered.replace("\"propagate\"", "\"ignore\"");
    assert!(load(&ignored).is_ok(), "ignore goes with a filter");
}

#[test]
fn node_tls_keys_are_folded_into_the_url() {
    let text = MINIMAL
        .replace(
            "5433/app\"",
            "5433/app\"\ntls = \"verify-full\"\ntls_ca_file = \"/etc/tandem/crm-ca.pem\"",
        )
        .replace("3307/app\"", "3307/app\"\ntls = \"require\"");
    let (config, _) = load(&text).expect("valid");
    let a = &config.nodes["a"];
    assert_eq!(a.tls, TlsMode::VerifyFull);
    assert_eq!(a.url.param("sslmode").as_deref(), Some("verify-full"));
    assert_eq!(
        a.url.param("sslrootcert").as_deref(),
        Some("/etc/tandem/crm-ca.pem")
    );
    let b = &config.nodes["b"];
    assert_eq!(b.url.param("require_ssl").as_deref(), Some("true"));
    assert_eq!(b.url.param("verify_ca").as_deref(), Some("false"));
    assert_problem(
        &MINIMAL.replace(
            "5433/app\"",
            "5433/app?sslmode=require\"\ntls = \"verify-full\"",
        ),
        "nodes.a.tls",
        "sslmode",
    );
}

#[test]
fn tombstone_retention_is_read_and_checked() {
    let (c, _) = load(MINIMAL).unwrap();
    assert_eq!(
        c.settings.tombstone_retention(),
        Some(std::time::Duration::from_secs(7 * 86_400))
    );
    let (c, _) = load(&format!(
        "[tandem]\ntombstone_retention = \"12h\"\n{MINIMAL}"
    ))
    .unwrap();
    assert_eq!(
        c.settings.tombstone_retention(),
        Some(std::time::Duration::from_secs(12 * 3_600))
    );
    let (c, _) = load(&format!(
        "[tandem]\ntombstone_retention = \"never\"\n{MINIMAL}"
    ))
    .unwrap();
    assert_eq!(c.settings.tombstone_retention(), None);
    for bad in ["0s", "500ms", "soon", "7"] {
        assert_problem(
            &format!("[tandem]\ntombstone_retention = \"{bad}\"\n{MINIMAL}"),
            "tandem.tombstone_retention",
            "at least 1s",
        );
    }
}

#[test]
fn two_tables_whose_generated_names_collide_are_refused_naming_both() {
    // `a_b.c` reads two ways, so its functions are hashed; a table named after that hashed name
    // would take them over.
    let hashed = crate::names::pg_stamp_function(&crate::model::TableRef::new("a_b", "c"));
    let table = hashed.trim_start_matches("stamp_a_");
    let text = format!(
        "[nodes.a]\nurl = \"postgres://postgres@127.0.0.1:5433/app\"\n\
         [nodes.b]\nurl = \"mysql://root@127.0.0.1:3307/app\"\n\
         [[tables]]\nname = \"one\"\nkey = [\"id\"]\non = {{ a = \"a_b.c\" }}\n\
         [[tables]]\nname = \"two\"\nkey = [\"id\"]\non = {{ a = \"a.{table}\" }}\n"
    );
    let found = problems(&text);
    assert!(
        found.iter().any(|p| p.path == "tables[1].on.a"
            && p.message.contains("table a_b.c")
            && p.message.contains(&format!("table a.{table}"))),
        "{found:?}"
    );
}

/// Durations are read by `humantime`: every form the hand-written reader took still works (a space
/// before the unit, surrounding spaces), spans add up, and a bare number is still refused.
#[test]
fn durations_take_the_humantime_forms() {
    for (text, want) in [
        ("10 s", std::time::Duration::from_secs(10)),
        (" 2m ", std::time::Duration::from_secs(120)),
        ("1h 30m", std::time::Duration::from_secs(5_400)),
        ("7d", std::time::Duration::from_secs(7 * 86_400)),
    ] {
        let (c, _) = load(&format!("{MINIMAL}\n[heartbeat]\ninterval = \"{text}\"\n")).unwrap();
        assert_eq!(c.heartbeat, Some(want), "{text:?}");
    }
    let found = problems(&format!("{MINIMAL}\n[heartbeat]\ninterval = \"10\"\n"));
    let p = found
        .iter()
        .find(|p| p.path == "heartbeat.interval")
        .expect("a problem at heartbeat.interval");
    assert!(p.message.contains("unit"), "{}", p.message);
    assert!(p.fix.contains("\"10s\""), "{}", p.fix);
}

#[test]
fn group_wait_is_read_and_checked() {
    let (c, _) = load(MINIMAL).unwrap();
    assert_eq!(c.settings.group_wait(), std::time::Duration::from_millis(2));
    for (text, want) in [("0s", 0), ("500us", 500), ("1s", 1_000_000)] {
        let (c, _) = load(&format!("[tandem]\ngroup_wait = \"{text}\"\n{MINIMAL}")).unwrap();
        assert_eq!(
            c.settings.group_wait(),
            std::time::Duration::from_micros(want)
        );
    }
    assert_problem(
        &format!("[tandem]\ngroup_wait = \"2s\"\n{MINIMAL}"),
        "tandem.group_wait",
        "longer than 1s",
    );
    assert_problem(
        &format!("[tandem]\ngroup_wait = \"soon\"\n{MINIMAL}"),
        "tandem.group_wait",
        "not a duration",
    );
}
