//! Spill files hold row values: `tandem run` keeps them in a private directory of its own and, at
//! start, removes the ones a killed tandem left behind, never a running one's.

use std::os::unix::fs::PermissionsExt;

use crate::support::{start_tandem_run, unique_name, Pair};

/// Before the fix spill files went straight into the spill directory with the umask's mode
/// (0644 in a 0755 directory) and a SIGKILLed process's files stayed forever.
#[tokio::test]
async fn run_sweeps_spill_files_of_dead_processes_into_a_private_directory() {
    let base = std::env::temp_dir().join(unique_name("tandem_spill_base"));
    let dir = tandem::model::spill::private_dir(&base);
    std::fs::create_dir_all(&dir).expect("spill dir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    // A pid above any pid_max never runs; this test's own process does.
    let orphan = dir.join("tandem-spill-4000000000-3.jsonl");
    let running = dir.join(format!("tandem-spill-{}-3.jsonl", std::process::id()));
    for f in [&orphan, &running] {
        std::fs::write(f, "{}\n").expect("plant a spill file");
    }
    let p = Pair::start(
        "CREATE TABLE customers (id int PRIMARY KEY, name text)",
        "CREATE TABLE customers (id int PRIMARY KEY, name text)",
        &format!(
            "[[tables]]\nname = \"customers\"\nkey = [\"id\"]\n[tandem]\nspill_dir = \"{}\"\n",
            base.display()
        ),
    )
    .await;
    let mut run = start_tandem_run(&p.config, 2).await;
    let mode = std::fs::metadata(&dir).expect("dir").permissions().mode() & 0o777;
    let (orphan_left, running_left) = (orphan.exists(), running.exists());
    run.kill().await.expect("kill tandem run");
    let _ = std::fs::remove_dir_all(&base);
    assert_eq!(mode, 0o700, "the spill directory is closed to others");
    assert!(!orphan_left, "the dead process's spill file was not swept");
    assert!(running_left, "a running process's spill file was removed");
}
