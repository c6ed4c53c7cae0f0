//! `tandem demo` runs its script to the end: both directions, value maps, a conflict, a delete.

use std::time::Duration;

#[tokio::test]
async fn demo_runs_its_script_and_stops() {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["demo", "--duration", "0"])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("demo finishes")
        .expect("run demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "1  Ada Lovelace                 1                origin=crm",
        "2  Grace Hopper                 Pending review   origin=helpdesk",
        "on crm:      update_differs",
        "on helpdesk: update_differs",
        "1  Ada, Countess of Lovelace    Approved         origin=helpdesk",
        "skipped a transaction tandem applied itself (no echo)",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in the demo output:\n{stdout}"
        );
    }
}
