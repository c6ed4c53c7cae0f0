//! The console in a real browser: a parked conflict on real servers, `tandem run` serving the
//! console, and `node tests/console/e2e.mjs` (playwright-core driving Debian's chromium) logging
//! in, resolving it with a note and watching the queue empty; then both nodes must hold the
//! resolved row. Screenshots land in `target/console-e2e/`.
//!
//! Needs `chromium`, `node` and `tests/console/node_modules/playwright-core` (installed by
//! `.ci/run`). Without them the test is skipped with a message, except under `CI=true`, where a
//! missing piece fails it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::conflicts_cli::{names, parked_conflict_with, Parked};
use crate::console_api::{console_section, TOKEN};
use crate::support::{free_port, wait_for};

/// What the browser test needs, or what is missing.
fn tools() -> Result<(PathBuf, PathBuf), String> {
    let chromium = std::env::var_os("TANDEM_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| {
            ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
                .iter()
                .map(PathBuf::from)
                .find(|p| p.exists())
        })
        .ok_or("chromium is not installed (apt-get install chromium)")?;
    let node_ok = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !node_ok {
        return Err("node is not installed (apt-get install nodejs npm)".into());
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console");
    if !dir
        .join("node_modules/playwright-core/package.json")
        .exists()
    {
        return Err(format!(
            "playwright-core is not installed: npm ci --prefix {}",
            dir.display()
        ));
    }
    Ok((chromium, dir.join("e2e.mjs")))
}

#[tokio::test]
async fn console_e2e_a_steward_resolves_a_parked_conflict_in_the_browser() {
    let (chromium, script) = match tools() {
        Ok(t) => t,
        Err(missing) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("the browser test cannot run under CI: {missing}")
        }
        Err(missing) => {
            eprintln!("skipping the browser test: {missing}");
            return;
        }
    };
    let port = free_port();
    let Parked {
        pg,
        maria,
        config,
        mut run,
        id,
        m,
    } = parked_conflict_with(&console_section(port)).await;
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-e2e");
    let browser = tokio::process::Command::new("node")
        .arg(&script)
        .env("CONSOLE_URL", format!("http://127.0.0.1:{port}"))
        .env("CONSOLE_TOKEN", TOKEN)
        .env("CONFLICT", format!("helpdesk/{id}"))
        .env("CHROMIUM", &chromium)
        .env("SHOTS", &shots)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(180), browser)
        .await
        .expect("the browser test finishes within 3 minutes")
        .expect("node runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the browser test failed:\n{text}");
    assert!(text.contains("e2e: ok"), "{text}");
    // The browser took crm's change on helpdesk: both nodes hold it.
    wait_for(
        "both nodes to hold crm's edit",
        Duration::from_secs(30),
        || async {
            (names(&pg, &maria).await == (Some("crm edit".into()), Some("crm edit".into())))
                .then_some(())
        },
    )
    .await;
    for shot in ["02-overview", "04-conflict", "07-audit", "09-rules"] {
        assert!(
            shots.join(format!("{shot}.png")).exists(),
            "screenshot {shot} in {}",
            shots.display()
        );
    }
    run.kill().await.ok();
    drop(m);
    std::fs::remove_file(&config).ok();
}
