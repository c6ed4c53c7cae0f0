//! `tandem run`: run the links of one node (the sidecar beside it) or of every node, until SIGTERM or
//! SIGINT. SIGHUP reloads the file (the tables' mapping and rules).

use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use tokio::sync::watch;

use super::{load_config, ConfigArg};
use crate::config::Config;
use crate::run::{run_link, LinkEnd};

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Run only the links whose source is this node (the sidecar beside it); default: every link.
    #[arg(long)]
    pub node: Option<String>,
}

pub async fn run(args: RunArgs) -> ExitCode {
    let config = match load_config(&args.config) {
        Ok(c) => Arc::new(c),
        Err(code) => return code,
    };
    if let Some(n) = &args.node {
        if config.node(n).is_none() {
            eprintln!("error: no node {n:?} in {}", args.config.path.display());
            return ExitCode::from(2);
        }
    }
    // The MySQL/MariaDB shares of the keys are globals a restart without my.cnf loses.
    let refusals = crate::keys::refusals_at_start(&config).await;
    if !refusals.is_empty() {
        for p in &refusals {
            eprintln!("{p}");
        }
        eprintln!(
            "error: not starting: the key generators of {} table(s) can collide; apply the fix above (`tandem check` shows the same)",
            refusals.len()
        );
        return ExitCode::from(1);
    }
    let links: Vec<(String, String)> = config
        .links()
        .into_iter()
        .filter(|(s, _)| args.node.as_ref().is_none_or(|n| n == s))
        .collect();
    let mut background = Vec::new();
    if let Some(addr) = config.metrics_listen {
        match crate::observe::server::start(addr).await {
            Ok((listener, handle)) => {
                background.push(tokio::spawn(crate::observe::server::serve(
                    listener,
                    handle.clone(),
                )));
                background.push(tokio::spawn(crate::observe::server::tick(
                    config.clone(),
                    args.node.clone(),
                    handle,
                )));
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        }
    }
    if let Some(settings) = &config.console {
        match crate::console::start(settings).await {
            Ok(endpoint) => background.push(tokio::spawn(crate::console::serve(
                endpoint,
                crate::console::Console::new(config.clone(), settings),
            ))),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        }
    }
    if let Some(every) = config.heartbeat {
        let sources: std::collections::BTreeSet<String> =
            links.iter().map(|(s, _)| s.clone()).collect();
        for node in sources {
            background.push(tokio::spawn(crate::observe::heartbeat::run(
                config.clone(),
                node,
                every,
            )));
        }
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let (config_tx, config_rx) = watch::channel(config.clone());
    // Registered before any link starts: an unhandled SIGHUP would end the process.
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(hangup) => background.push(tokio::spawn(reload_on_hangup(
            hangup,
            args.config.path.clone(),
            config_tx,
        ))),
        Err(e) => {
            tracing::warn!(error = %e, "SIGHUP cannot be handled here: the file is not reloaded")
        }
    }
    let tasks: Vec<_> = links
        .into_iter()
        .map(|(s, t)| tokio::spawn(run_link(config_rx.clone(), s, t, stop_rx.clone(), None)))
        .collect();
    tracing::info!(
        links = tasks.len(),
        "tandem running; stop with SIGTERM or Ctrl-C"
    );
    let watcher = tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("stopping: finishing the transactions in flight");
        let _ = stop_tx.send(true);
    });
    let mut halted = 0;
    for task in tasks {
        match task.await {
            Ok(LinkEnd::Stopped) => {}
            Ok(LinkEnd::Halted(message)) => {
                eprintln!("error: {message}");
                halted += 1;
            }
            Err(e) => {
                eprintln!("error: a link task failed: {e}");
                halted += 1;
            }
        }
    }
    watcher.abort();
    for task in background {
        task.abort();
    }
    if halted > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// On each SIGHUP, reads the file again and hands it to the links when it is valid and changes only
/// what can change while they run (see [`crate::run::reloadable`]); otherwise logs why and keeps the
/// file in use.
async fn reload_on_hangup(
    mut hangup: tokio::signal::unix::Signal,
    path: std::path::PathBuf,
    configs: watch::Sender<Arc<Config>>,
) {
    while hangup.recv().await.is_some() {
        let new = match Config::load(&path) {
            Ok((new, _)) => new,
            Err(e) => {
                let problems: Vec<String> = e.problems.iter().map(ToString::to_string).collect();
                tracing::error!(file = %path.display(), problems = %problems.join("; "), "reload refused: the file has problems; the links keep the file they run with");
                continue;
            }
        };
        let verdict = crate::run::reloadable(&configs.borrow(), &new);
        match verdict {
            Ok(()) => {
                tracing::info!(file = %path.display(), "file reloaded");
                configs.send_replace(Arc::new(new));
            }
            Err(why) => {
                tracing::error!(file = %path.display(), reason = %why, "reload refused; the links keep the file they run with")
            }
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
