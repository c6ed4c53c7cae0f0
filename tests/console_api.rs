//! The steward's console served by `tandem run`, against real servers: the token gate, the JSON API
//! over a parked conflict (list, show, resolve with a note, the audit record), dead letters, the
//! rule set, the login cookie and its CSRF check, and the pages.

use std::time::Duration;

use crate::conflicts_cli::{names, parked_conflict_with, Parked};
use crate::support::{free_port, wait_for};

pub(crate) const TOKEN: &str = "console-test-token-0123456789";

/// One HTTP/1.1 exchange (the console closes every connection after its answer): status, head, body.
pub(crate) async fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Option<(u16, String, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await.ok()?;
    s.write_all(body.as_bytes()).await.ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).await.ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, head.to_string(), body.to_string()))
}

async fn api(port: u16, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let auth = format!("Bearer {TOKEN}");
    let (code, _, body) = request(
        port,
        method,
        path,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body,
    )
    .await
    .unwrap_or_else(|| panic!("{method} {path}: no answer"));
    let doc = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("{method} {path}: {code}, not JSON ({e}): {body}"));
    (code, doc)
}

pub(crate) fn console_section(port: u16) -> String {
    format!("[console]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{TOKEN}\"\n")
}

#[tokio::test]
async fn console_api_resolves_a_parked_conflict_with_a_note_behind_the_token() {
    let port = free_port();
    let Parked {
        pg,
        maria,
        config,
        mut run,
        id,
        m,
    } = parked_conflict_with(&console_section(port)).await;

    // The token gate: nothing without it, nothing with another one.
    for (path, method) in [
        ("/api/links", "GET"),
        ("/api/conflicts?state=open", "GET"),
        ("/api/rules", "GET"),
        ("/api/dead-letters", "GET"),
        (&*format!("/api/conflicts/helpdesk/{id}/resolve"), "POST"),
    ] {
        let (code, head, _) = request(port, method, path, &[], "{}")
            .await
            .expect("answer");
        assert_eq!(code, 401, "{method} {path} without a token");
        assert!(
            head.to_ascii_lowercase()
                .contains("www-authenticate: bearer"),
            "{head}"
        );
        let (code, _, _) = request(
            port,
            method,
            path,
            &[("Authorization", "Bearer console-test-token-0123456788")],
            "{}",
        )
        .await
        .expect("answer");
        assert_eq!(code, 401, "{method} {path} with a wrong token");
    }

    // The review queue holds the parked conflict, with the differing field named.
    let (code, doc) = api(port, "GET", "/api/conflicts?state=open&table=items", "").await;
    assert_eq!(code, 200, "{doc}");
    let entry = doc["conflicts"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["id"] == id && e["node"] == "helpdesk"))
        .unwrap_or_else(|| panic!("conflict {id} on helpdesk in the open queue: {doc}"))
        .clone();
    assert_eq!(entry["state"], "parked", "{entry}");
    assert_eq!(entry["differing"], serde_json::json!(["name"]), "{entry}");
    let (_, none) = api(port, "GET", "/api/conflicts?state=open&table=other", "").await;
    assert_eq!(
        none["conflicts"],
        serde_json::json!([]),
        "the table filter: {none}"
    );
    // The age filter, on the age the node computes.
    assert!(
        entry["age_seconds"]
            .as_f64()
            .is_some_and(|a| (0.0..600.0).contains(&a)),
        "{entry}"
    );
    let (_, young) = api(port, "GET", "/api/conflicts?state=open&older_than=1h", "").await;
    assert_eq!(
        young["conflicts"],
        serde_json::json!([]),
        "older_than=1h: {young}"
    );
    let (_, any) = api(
        port,
        "GET",
        "/api/conflicts?state=open&older_than=0s&node=helpdesk",
        "",
    )
    .await;
    assert_eq!(
        any["conflicts"].as_array().map(Vec::len),
        Some(1),
        "older_than=0s on helpdesk: {any}"
    );
    let (code, bad) = api(port, "GET", "/api/conflicts?older_than=soon", "").await;
    assert_eq!(code, 400, "{bad}");

    let (code, shown) = api(port, "GET", &format!("/api/conflicts/helpdesk/{id}"), "").await;
    assert_eq!(code, 200, "{shown}");
    assert_eq!(shown["current"]["name"], "desk edit", "{shown}");
    assert_eq!(shown["incoming"]["name"], "crm edit", "{shown}");
    let (code, _) = api(port, "GET", "/api/conflicts/helpdesk/999999", "").await;
    assert_eq!(code, 404);
    let (code, _) = api(port, "GET", "/api/conflicts/nowhere/1", "").await;
    assert_eq!(code, 404);

    // A resolve needs a note and one way to resolve; refused ones change nothing.
    let resolve = format!("/api/conflicts/helpdesk/{id}/resolve");
    for (body, why) in [
        (r#"{"take":"incoming"}"#, "a note is required"),
        (r#"{"take":"incoming","note":" "}"#, "a note is required"),
        (r#"{"note":"x"}"#, "say how to resolve"),
        (r#"{"take":"sideways","note":"x"}"#, "not \"sideways\""),
        (
            r#"{"take":"incoming","note":"x","extra":1}"#,
            "unknown field",
        ),
        ("not json", "not a resolve document"),
    ] {
        let (code, doc) = api(port, "POST", &resolve, body).await;
        assert_eq!(code, 400, "{body}: {doc}");
        assert!(
            doc["error"].as_str().is_some_and(|e| e.contains(why)),
            "{body}: {doc}"
        );
    }
    let (_, still) = api(port, "GET", &format!("/api/conflicts/helpdesk/{id}"), "").await;
    assert_eq!(still["state"], "parked", "{still}");

    // A browser session: the login trades the token for an HttpOnly, SameSite=Strict cookie; a POST
    // with the cookie alone (a cross-site form could send it) is refused without the CSRF token.
    let (code, head, _) = request(
        port,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        "token=wrong-token-wrong-token&name=eve&next=%2F",
    )
    .await
    .expect("answer");
    assert_eq!(code, 401, "{head}");
    let (code, head, _) = request(
        port,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &format!("token={TOKEN}&name=ana&next=%2Fconflicts"),
    )
    .await
    .expect("answer");
    assert_eq!(code, 303, "{head}");
    let set_cookie = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("a cookie: {head}"));
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    let cookie = set_cookie
        .split_once(':')
        .and_then(|(_, v)| v.trim().split(';').next())
        .expect("name=value")
        .to_string();
    let (code, head, page) = request(
        port,
        "GET",
        "/conflicts?state=open",
        &[("Cookie", &cookie)],
        "",
    )
    .await
    .expect("answer");
    assert_eq!(code, 200);
    // Under `no-referrer` a browser sends `Origin: null` with the page's forms, which the Origin
    // check refuses (found by the browser test).
    assert!(
        head.to_ascii_lowercase()
            .contains("referrer-policy: same-origin"),
        "{head}"
    );
    assert!(
        page.contains(&format!("/conflicts/helpdesk/{id}")),
        "{page}"
    );
    let (code, _, _) = request(
        port,
        "POST",
        &resolve,
        &[("Cookie", &cookie), ("Content-Type", "application/json")],
        r#"{"take":"incoming","note":"forged"}"#,
    )
    .await
    .expect("answer");
    assert_eq!(code, 403, "a cookie-only POST is refused");
    let (code, _, _) = request(
        port,
        "POST",
        &format!("/conflicts/helpdesk/{id}/resolve"),
        &[
            ("Cookie", &cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", "http://evil.example"),
        ],
        "how=incoming&note=forged&csrf=x",
    )
    .await
    .expect("answer");
    assert_eq!(code, 403, "a POST from another site is refused");
    let (code, _, _) = request(port, "GET", "/", &[], "").await.expect("answer");
    assert_eq!(code, 303, "a page without a session goes to the login");

    // Taking the incoming change (crm's) with a note: both nodes converge, the queue empties, and
    // the audit record says who, how and why.
    let (code, doc) = api(
        port,
        "POST",
        &resolve,
        r#"{"take":"incoming","note":"crm holds the signed contract"}"#,
    )
    .await;
    assert_eq!(code, 200, "{doc}");
    wait_for(
        "both nodes to hold crm's edit",
        Duration::from_secs(30),
        || async {
            (names(&pg, &maria).await == (Some("crm edit".into()), Some("crm edit".into())))
                .then_some(())
        },
    )
    .await;
    wait_for("an empty review queue", Duration::from_secs(30), || async {
        let (_, doc) = api(port, "GET", "/api/conflicts?state=open", "").await;
        (doc["conflicts"] == serde_json::json!([])).then_some(())
    })
    .await;
    let (_, done) = api(port, "GET", &format!("/api/conflicts/helpdesk/{id}"), "").await;
    assert_eq!(done["state"], "resolved", "{done}");
    assert_eq!(done["resolution"], "take_incoming", "{done}");
    assert_eq!(done["resolved_by"], "api", "{done}");
    assert_eq!(done["note"], "crm holds the signed contract", "{done}");
    let (code, doc) = api(
        port,
        "POST",
        &resolve,
        r#"{"take":"current","note":"again"}"#,
    )
    .await;
    assert_eq!(
        code, 409,
        "a resolved conflict is not resolved twice: {doc}"
    );

    // The links, dead letters and the rule set.
    let (code, links) = api(port, "GET", "/api/links", "").await;
    assert_eq!(code, 200, "{links}");
    let names_of: Vec<&str> = links["links"]
        .as_array()
        .map(|a| a.iter().filter_map(|l| l["link"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names_of, ["crm_to_helpdesk", "helpdesk_to_crm"], "{links}");
    assert!(
        links["links"][0]["process_state"].is_string()
            && links["links"][0]["changes_per_second"].is_number()
            && links["links"][0]["changes_applied"]
                .as_u64()
                .is_some_and(|n| n >= 1),
        "this process's view of the link: {links}"
    );
    let (code, dead) = api(port, "GET", "/api/dead-letters", "").await;
    assert_eq!(code, 200, "{dead}");
    assert_eq!(dead["dead_letters"], serde_json::json!([]), "{dead}");
    let (code, _) = api(port, "POST", "/api/dead-letters/helpdesk/424242/replay", "").await;
    assert_eq!(code, 404);
    let (code, rules) = api(port, "GET", "/api/rules", "").await;
    assert_eq!(code, 200, "{rules}");
    assert_eq!(rules["tables"][0]["name"], "items", "{rules}");
    assert_eq!(
        rules["tables"][0]["conflict"], "manual (prefer helpdesk)",
        "{rules}"
    );

    // Every page answers for the session, and the audit page shows the note.
    for path in [
        "/",
        "/conflicts",
        "/audit",
        "/dead-letters",
        "/rules",
        &*format!("/conflicts/helpdesk/{id}"),
    ] {
        let (code, _, page) = request(port, "GET", path, &[("Cookie", &cookie)], "")
            .await
            .expect("answer");
        assert_eq!(code, 200, "{path}: {page}");
        assert!(page.contains("<h1>"), "{path}: {page}");
    }
    let (_, _, audit) = request(port, "GET", "/audit", &[("Cookie", &cookie)], "")
        .await
        .expect("answer");
    assert!(audit.contains("crm holds the signed contract"), "{audit}");

    run.kill().await.ok();
    drop(m);
    std::fs::remove_file(&config).ok();
}

/// A transaction MariaDB refuses (a name too long for its column) is dead-lettered; the console
/// lists it, a replay before the fix fails and leaves it open with one more attempt, and a replay
/// after widening the column applies it.
#[tokio::test]
async fn console_api_replays_a_dead_letter_after_its_cause_is_fixed() {
    use mysql_async::prelude::Queryable;
    let port = free_port();
    let p = crate::support::Pair::start(
        "CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL)",
        "CREATE TABLE customers (id int PRIMARY KEY, name varchar(8) NOT NULL)",
        &format!(
            "[[tables]]\nname = \"customers\"\nkey = [\"id\"]\non_error = \"dead_letter\"\n\n{}",
            console_section(port)
        ),
    )
    .await;
    let mut run = crate::support::start_tandem_run(&p.config, 2).await;
    let crm = p.pg.connect("crm").await.unwrap();
    crm.execute(
        "INSERT INTO customers VALUES (7, 'far too long for eight')",
        &[],
    )
    .await
    .unwrap();
    let letter = wait_for(
        "a dead letter on helpdesk",
        Duration::from_secs(30),
        || async {
            let (_, doc) = api(port, "GET", "/api/dead-letters", "").await;
            doc["dead_letters"]
                .as_array()
                .and_then(|a| a.iter().find(|d| d["node"] == "helpdesk"))
                .cloned()
        },
    )
    .await;
    assert_eq!(letter["state"], "open", "{letter}");
    assert_eq!(letter["changes"], 1, "{letter}");
    assert!(
        letter.get("payload").is_none(),
        "row values stay out of the list: {letter}"
    );
    let id = letter["id"].as_i64().expect("id");
    let replay = format!("/api/dead-letters/helpdesk/{id}/replay");

    let (code, doc) = api(port, "POST", &replay, "").await;
    assert!(
        code == 409 || code == 502,
        "the cause is still there: {code} {doc}"
    );
    assert!(
        doc["error"]
            .as_str()
            .is_some_and(|e| e.ends_with("; the entry stays open with this error")),
        "a definite failure is recorded on the entry: {doc}"
    );
    let (_, doc) = api(port, "GET", "/api/dead-letters?node=helpdesk", "").await;
    assert_eq!(doc["dead_letters"][0]["state"], "open", "{doc}");
    assert_eq!(
        doc["dead_letters"][0]["attempts"], 2,
        "one more attempt: {doc}"
    );

    let mut desk = p.maria.connect("desk").await.unwrap();
    desk.query_drop("ALTER TABLE customers MODIFY name varchar(50) NOT NULL")
        .await
        .unwrap();
    let (code, doc) = api(port, "POST", &replay, "").await;
    assert_eq!(code, 200, "{doc}");
    let name: Option<String> = desk
        .query_first("SELECT name FROM customers WHERE id = 7")
        .await
        .unwrap();
    assert_eq!(name.as_deref(), Some("far too long for eight"));
    let (_, open) = api(port, "GET", "/api/dead-letters", "").await;
    assert_eq!(open["dead_letters"], serde_json::json!([]), "{open}");
    let (_, all) = api(port, "GET", "/api/dead-letters?all=true", "").await;
    assert_eq!(all["dead_letters"][0]["state"], "replayed", "{all}");
    desk.disconnect().await.unwrap();
    run.kill().await.ok();
}
