//! `tandem demo`: a two-way sync between a throwaway PostgreSQL (a CRM) and a throwaway MariaDB (a help
//! desk), with a scripted series of edits on both sides, printed as it happens.
//!
//! ```text
//!  harness: PgServer (crm)        MariaDb (helpdesk)
//!           public.customers  <->  desk.clients
//!           id, name, status       client_id, full_name, status_code (1, 2, 3)
//!  setup -> links (run::run_link, watched) -> script: inserts, updates, a conflict, a delete
//!        -> keep running until Ctrl-C or --duration
//! ```
//!
//! The demo prints row values: they are its own sample data, shown to the person who asked for them.

mod script;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::harness::{HarnessError, MariaDb, PgServer};
use crate::run::{run_link, LinkEnd, LinkEvent};

/// The pairing the demo runs, with `{pg}` and `{maria}` standing for the two URLs.
const CONFIG: &str = r#"# tandem demo: a CRM on PostgreSQL and a help desk on MariaDB.
[nodes.crm]
url = "{pg}"

[nodes.helpdesk]
url = "{maria}"

[[tables]]
name = "customer"
key = ["id"]
on = { crm = "public.customers", helpdesk = "clients" }
conflict = "last_write_wins"

[[tables.columns]]
name = "id"
on = { helpdesk = "client_id" }

[[tables.columns]]
name = "name"
on = { helpdesk = "full_name" }

[[tables.columns]]
name = "status"
on = { helpdesk = "status_code" }
values = { helpdesk = { "Approved" = 1, "Pending review" = 2, "Closed" = 3 } }
"#;

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{0}")]
    Harness(#[from] HarnessError),
    #[error("{what}: {detail}")]
    Step { what: String, detail: String },
}

pub(crate) fn step(what: &str) -> impl FnOnce(String) -> DemoError + '_ {
    move |detail| DemoError::Step {
        what: what.to_string(),
        detail,
    }
}

/// Runs the demo until Ctrl-C, or for `duration` after the script when given.
pub async fn run(duration: Option<Duration>) -> Result<(), DemoError> {
    println!("== starting a throwaway PostgreSQL and MariaDB");
    let (pg, maria) = match tokio::join!(PgServer::start(), MariaDb::start()) {
        (Err(HarnessError::MissingBinary { .. }), _)
        | (_, Err(HarnessError::MissingBinary { .. })) => {
            install_servers().await?;
            tokio::join!(PgServer::start(), MariaDb::start())
        }
        other => other,
    };
    let (pg, maria) = (pg?, maria?);

    pg.create_database("crm").await?;
    maria.create_database("desk").await?;
    script::create_schemas(&pg, &maria).await?;
    let text = CONFIG
        .replace("{pg}", &pg.url("crm"))
        .replace("{maria}", &maria.url("desk"));
    let config_path = pg.root_dir().join("tandem-demo.toml");
    std::fs::write(&config_path, &text).map_err(|e| step("writing the config")(e.to_string()))?;
    let (config, _) = Config::from_str_with_env(&text, "demo", &|_| None)
        .map_err(|e| step("the demo configuration")(format!("{:?}", e.problems)))?;
    let config = Arc::new(config);
    println!(
        "   configuration ({}):\n{}",
        config_path.display(),
        indent(&text)
    );

    println!(
        "== tandem setup: bookkeeping schema, origin and version columns, publication and slots"
    );
    for node in config.nodes.values() {
        let statements = crate::setup::setup_node(&config, node, false)
            .await
            .map_err(step("setup"))?;
        println!("   {}: {} statement(s)", node.id, statements.len());
    }
    crate::setup::seed_checkpoints(&config, None, false)
        .await
        .map_err(step("seeding checkpoints"))?;

    let (mut links, events) = Links::start(config.clone());
    let printer = tokio::spawn(print_events(events));
    links.wait_started(2).await;
    script::run(&pg, &maria, &mut links).await?;

    println!(
        "\n== both directions keep running. Edit either database and watch the changes cross:"
    );
    println!("   psql {}", pg.url("crm"));
    println!("   mariadb -h 127.0.0.1 -P {} -u root desk", maria.port());
    println!(
        "   tandem tail --config {} --node crm",
        config_path.display()
    );
    match duration {
        Some(d) => {
            println!("   (stopping in {} s)", d.as_secs());
            tokio::select! {
                _ = tokio::time::sleep(d) => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        None => {
            println!("   (Ctrl-C stops the demo and removes both databases)");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    println!("== stopping");
    links.stop().await;
    printer.abort();
    Ok(())
}

/// The demo's links, in-process, with a channel of what they do.
pub(crate) struct Links {
    config: Arc<Config>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<LinkEnd>>,
    started: watch::Receiver<usize>,
    started_tx: Arc<watch::Sender<usize>>,
    events_tx: mpsc::UnboundedSender<LinkEvent>,
}

impl Links {
    fn start(config: Arc<Config>) -> (Links, mpsc::UnboundedReceiver<LinkEvent>) {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (started_tx, started) = watch::channel(0);
        let (stop, _) = watch::channel(false);
        let mut links = Links {
            config,
            stop,
            tasks: Vec::new(),
            started,
            started_tx: Arc::new(started_tx),
            events_tx,
        };
        links.spawn();
        (links, events_rx)
    }

    fn spawn(&mut self) {
        let _ = self.stop.send(false);
        let (relay_tx, mut relay_rx) = mpsc::unbounded_channel::<LinkEvent>();
        let out = self.events_tx.clone();
        let started = self.started_tx.clone();
        tokio::spawn(async move {
            while let Some(e) = relay_rx.recv().await {
                if matches!(e, LinkEvent::Started { .. }) {
                    started.send_modify(|n| *n += 1);
                }
                let _ = out.send(e);
            }
        });
        self.tasks = self
            .config
            .links()
            .into_iter()
            .map(|(s, t)| {
                tokio::spawn(run_link(
                    watch::channel(self.config.clone()).1,
                    s,
                    t,
                    self.stop.subscribe(),
                    Some(relay_tx.clone()),
                ))
            })
            .collect();
    }

    /// Waits until `n` link starts have been seen in total.
    pub(crate) async fn wait_started(&mut self, n: usize) {
        let _ = self.started.wait_for(|s| *s >= n).await;
    }

    /// Stops every link (each finishes the transaction it is applying).
    pub(crate) async fn stop(&mut self) {
        let _ = self.stop.send(true);
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }

    /// Starts the links again; they resume from their checkpoints.
    pub(crate) async fn restart(&mut self) {
        let before = *self.started.borrow();
        self.spawn();
        self.wait_started(before + 2).await;
    }
}

async fn print_events(mut events: mpsc::UnboundedReceiver<LinkEvent>) {
    while let Some(e) = events.recv().await {
        match e {
            LinkEvent::Started { link, checkpoint } => {
                println!(
                    "   [{link}] started at {}",
                    checkpoint
                        .as_deref()
                        .unwrap_or("the current end of the log")
                )
            }
            LinkEvent::Captured {
                link,
                position,
                tables,
            } => {
                let what: Vec<String> = tables.iter().map(|(t, op)| format!("{op} {t}")).collect();
                let what = if what.is_empty() {
                    "tandem's bookkeeping only".to_string()
                } else {
                    what.join(", ")
                };
                println!("   [{link}] captured {position}: {what}");
            }
            LinkEvent::Dropped { link, .. } => {
                println!("   [{link}] skipped a transaction tandem applied itself (no echo)")
            }
            LinkEvent::Applied { link, changes, .. } => {
                println!("   [{link}] applied {changes} change(s), checkpoint committed")
            }
        }
    }
}

/// Installs the database servers from Debian's packages (as root), as the quick start promises.
async fn install_servers() -> Result<(), DemoError> {
    const PACKAGES: [&str; 3] = ["postgresql", "mariadb-server", "mariadb-client"];
    let command = format!("apt-get install -y {}", PACKAGES.join(" "));
    if !crate::harness::running_as_root() {
        return Err(step("the database servers are not installed")(format!(
            "run `sudo {command}` and try again"
        )));
    }
    println!("== installing the database servers: {command}");
    apt_get(&["update", "-q"]).await?;
    let mut install = vec!["install", "-y", "-q", "--no-install-recommends"];
    install.extend(PACKAGES);
    apt_get(&install).await
}

async fn apt_get(args: &[&str]) -> Result<(), DemoError> {
    let status = tokio::process::Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .await
        .map_err(|e| step("running apt-get")(e.to_string()))?;
    if status.success() {
        Ok(())
    } else {
        Err(step("apt-get")(format!("exited with {status}")))
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("     {l}\n")).collect()
}
